//! The scheduled connections of `inlet serve`: one task per connection with a `schedule`, so a
//! connection never runs twice at once. Each firing waits a random jitter (a tenth of the
//! interval, at most 30 s), syncs (`run_once`), loads into BigQuery when `[bigquery]` is set,
//! and retries a failure with exponential backoff (10 s, 20 s, 40 s ... at most 10 min) as long as
//! the retry comes before the next scheduled run. A run longer than the interval makes the next
//! one start when it finishes; the firings it overlapped are not made up.

use crate::config::{ConfigError, LoadedConfig};
use crate::credentials::GoogleAuth;
use crate::lake::{Lake, Trigger, record_run};
use crate::logging::{Severity, say};
use crate::progress::Reporter;
use crate::runtime::Runtime;
use crate::schedule::Schedule;
use crate::sync::{self, SyncError, SyncReport};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The first wait after a failed run; each further failure doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// The longest jitter before a firing.
const MAX_JITTER: Duration = Duration::from_secs(30);

/// What the scheduled runs of one connection share: the runtime, the lake, the config.
#[derive(Clone)]
pub struct ScheduleContext {
    /// The WebAssembly runtime.
    pub runtime: Arc<Runtime>,
    /// The lake runs commit into.
    pub lake: Lake,
    /// The checked config (plans, destinations).
    pub loaded: Arc<LoadedConfig>,
    /// Google credentials of the lake and BigQuery, when opened.
    pub google: Option<Arc<GoogleAuth>>,
    /// Where runs report commits and connector logs.
    pub reporter: Arc<Reporter>,
}

/// Why one scheduled run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The connection's plan could not be made (a secret went missing).
    #[error(transparent)]
    Plan(#[from] ConfigError),
    /// The sync failed; what it committed before is kept.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The sync went well but loading into BigQuery did not (the log says why).
    #[error(
        "connection `{connection}`: loading into BigQuery failed (see above); the next run loads it"
    )]
    Load {
        /// The connection.
        connection: String,
    },
}

/// Counters of one scheduled connection, for `/metrics`.
#[derive(Debug, Default)]
pub struct ScheduleMetrics {
    runs_ok: AtomicU64,
    runs_failed: AtomicU64,
    /// Unix seconds of the last successful run's end; 0 before the first.
    last_success: AtomicU64,
    consecutive_failures: AtomicU64,
    /// Unix seconds of the next firing (a retry's included).
    next_run: AtomicU64,
    running: AtomicBool,
    rows: Mutex<BTreeMap<String, u64>>,
}

/// One scheduled connection: its schedule and counters.
pub struct Scheduled {
    /// The connection.
    pub name: String,
    /// When it runs.
    pub schedule: Schedule,
    /// How it went.
    pub metrics: Arc<ScheduleMetrics>,
    /// `schedule.typical_interval()`, computed once.
    interval: Duration,
}

impl Scheduled {
    /// Starts the connection's task; it ends once `stop` turns true, interrupting a run.
    pub fn start(
        context: ScheduleContext,
        name: &str,
        schedule: Schedule,
        stop: watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let metrics = Arc::new(ScheduleMetrics::default());
        let task = tokio::spawn(run_schedule(
            context,
            name.to_owned(),
            schedule.clone(),
            metrics.clone(),
            stop,
        ));
        let scheduled = Self {
            name: name.to_owned(),
            interval: schedule.typical_interval(),
            schedule,
            metrics,
        };
        (scheduled, task)
    }

    /// This connection's lines in the Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        let m = &self.metrics;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let name = &self.name;
        let mut line = |metric: &str, labels: &str, value: String| {
            let _ = writeln!(out, "{metric}{{connection=\"{name}\"{labels}}} {value}");
        };
        line(
            "inlet_schedule_runs_total",
            ",outcome=\"ok\"",
            load(&m.runs_ok).to_string(),
        );
        line(
            "inlet_schedule_runs_total",
            ",outcome=\"failed\"",
            load(&m.runs_failed).to_string(),
        );
        line(
            "inlet_schedule_last_success_timestamp_seconds",
            "",
            load(&m.last_success).to_string(),
        );
        line(
            "inlet_schedule_consecutive_failures",
            "",
            load(&m.consecutive_failures).to_string(),
        );
        line(
            "inlet_schedule_next_run_timestamp_seconds",
            "",
            load(&m.next_run).to_string(),
        );
        line(
            "inlet_schedule_running",
            "",
            u8::from(m.running.load(Ordering::Relaxed)).to_string(),
        );
        line(
            "inlet_schedule_interval_seconds",
            "",
            self.interval.as_secs().to_string(),
        );
        let rows = m.rows.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (stream, count) in rows {
            line(
                "inlet_schedule_rows_total",
                &format!(",stream=\"{stream}\""),
                count.to_string(),
            );
        }
    }
}

/// One scheduled run of `connection`, start to end: its plan from the config, the sync, then
/// (whatever the sync's outcome: a failed one may have committed checkpoints) the load into
/// BigQuery when `[bigquery]` is set. Rows committed are counted in `metrics`.
pub async fn run_once(
    context: &ScheduleContext,
    connection: &str,
    metrics: &ScheduleMetrics,
) -> Result<SyncReport, RunError> {
    let plan = context.loaded.plan(connection)?;
    let started_at = Utc::now();
    let synced = sync::sync(
        &context.runtime,
        &context.lake,
        &plan,
        context.reporter.clone(),
    )
    .await;
    let recorded = record_run(
        &context.lake,
        connection,
        Trigger::Schedule,
        started_at,
        &synced,
    );
    if let Err(error) = recorded.await {
        tracing::warn!(connection, "the run record was not written: {error}");
    }
    if let Ok(report) = &synced {
        let mut rows = metrics.rows.lock().unwrap_or_else(|e| e.into_inner());
        for (stream, stats) in &report.streams {
            *rows.entry(stream.clone()).or_default() += stats.rows;
        }
    }
    let load_failed = if context.loaded.config.bigquery.is_some() {
        let mut google = context.google.clone();
        let names = [connection.to_owned()];
        match crate::load::load_connections(&context.loaded, &context.lake, &mut google, &names)
            .await
        {
            Ok(failures) => failures > 0,
            Err(error) => {
                say(
                    Severity::Error,
                    &format!("error: connection `{connection}`: loading into BigQuery: {error:#}"),
                    &[("connection", connection)],
                );
                true
            }
        }
    } else {
        false
    };
    let report = synced?;
    if load_failed {
        return Err(RunError::Load {
            connection: connection.to_owned(),
        });
    }
    Ok(report)
}

/// Waits until `stop` turns true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        // The server dropped the sender: it is going away too.
    }
}

/// Sleeps until `at`; false when `stop` came first.
async fn sleep_until(at: DateTime<Utc>, stop: &mut watch::Receiver<bool>) -> bool {
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stopped(stop) => false,
    }
}

/// A random delay before a firing: up to a tenth of the wait until the firing after it, at most
/// 30 s, so replicas and connections on one schedule do not hit a source at the same second.
fn jitter(interval: Duration) -> Duration {
    let max = (interval / 10).min(MAX_JITTER);
    let fraction = f64::from(crate::random::random_u32()) / f64::from(u32::MAX);
    max.mul_f64(fraction)
}

/// The wait before retry number `attempt` (1, 2, ...): 10 s, 20 s, 40 s ... at most 10 min.
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

fn unix_seconds(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

/// The task of one scheduled connection.
async fn run_schedule(
    context: ScheduleContext,
    name: String,
    schedule: Schedule,
    metrics: Arc<ScheduleMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut planned = schedule.next_after(Utc::now());
    let mut late = false;
    loop {
        // Jitter, except for a run that starts late because the previous one ran long.
        let delay = if late {
            Duration::ZERO
        } else {
            let interval = (schedule.next_after(planned) - planned)
                .to_std()
                .unwrap_or_default();
            jitter(interval)
        };
        let fire_at = planned + chrono::TimeDelta::from_std(delay).unwrap_or_default();
        metrics
            .next_run
            .store(unix_seconds(fire_at), Ordering::Relaxed);
        if !sleep_until(fire_at, &mut stop).await {
            return;
        }
        let mut attempt = 0u32;
        loop {
            metrics.running.store(true, Ordering::Relaxed);
            let outcome = tokio::select! {
                outcome = run_once(&context, &name, &metrics) => outcome,
                _ = stopped(&mut stop) => {
                    say(Severity::Warning, &format!("inlet serve: `{name}`: run interrupted by the stop; its commits are kept, the next run goes on from them"), &[("connection", &name)]);
                    return;
                }
            };
            metrics.running.store(false, Ordering::Relaxed);
            match outcome {
                Ok(_) => {
                    metrics.runs_ok.fetch_add(1, Ordering::Relaxed);
                    metrics.consecutive_failures.store(0, Ordering::Relaxed);
                    metrics
                        .last_success
                        .store(unix_seconds(Utc::now()), Ordering::Relaxed);
                    break;
                }
                Err(error) => {
                    metrics.runs_failed.fetch_add(1, Ordering::Relaxed);
                    let failures = metrics.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                    attempt += 1;
                    let wait = backoff(attempt);
                    let now = Utc::now();
                    let next = schedule.next_after(planned.max(now));
                    say(
                        Severity::Error,
                        &format!(
                            "error: scheduled run of `{name}` failed ({failures} in a row): {}",
                            crate::cli::report::render(&anyhow::Error::new(error))
                        ),
                        &[("connection", &name)],
                    );
                    let Some(retry_at) = retry_time(now, wait, next) else {
                        say(
                            Severity::Info,
                            &format!(
                                "inlet serve: `{name}`: no retry: the next scheduled run ({next}) comes first"
                            ),
                            &[("connection", &name)],
                        );
                        break;
                    };
                    say(
                        Severity::Info,
                        &format!(
                            "inlet serve: `{name}`: retrying in {} s (backoff doubles up to {} s, never past the next scheduled run at {next})",
                            wait.as_secs(),
                            MAX_BACKOFF.as_secs()
                        ),
                        &[("connection", &name)],
                    );
                    metrics
                        .next_run
                        .store(unix_seconds(retry_at), Ordering::Relaxed);
                    if !sleep_until(retry_at, &mut stop).await {
                        return;
                    }
                }
            }
        }
        let next = schedule.next_after(planned);
        (planned, late) = following(&schedule, planned, Utc::now());
        if late {
            say(
                Severity::Warning,
                &format!(
                    "inlet serve: `{name}`: the run due at {next} could not start on time: the one before ran until after it; starting it now, once, instead of stacking runs (schedule `{schedule}`)"
                ),
                &[("connection", &name)],
            );
        }
    }
}

/// When to retry a run that failed at `now`, `wait` from now; `None` when the next scheduled run
/// at `next` comes first (it is the retry then).
fn retry_time(now: DateTime<Utc>, wait: Duration, next: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let retry_at = now + chrono::TimeDelta::from_std(wait).ok()?;
    (retry_at < next).then_some(retry_at)
}

/// The firing after the run planned for `planned`, which ended at `now`: the schedule's next
/// time, or `now` (and `true`: late) when that time passed while the run went on.
fn following(
    schedule: &Schedule,
    planned: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, bool) {
    let next = schedule.next_after(planned);
    if next <= now {
        (now, true)
    } else {
        (next, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_ten_minutes() {
        let seconds: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(seconds, [10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn jitter_is_a_tenth_of_the_interval_at_most_thirty_seconds() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(2)) <= Duration::from_millis(200));
            assert!(jitter(Duration::from_secs(3600)) <= MAX_JITTER);
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_retry_never_goes_past_the_next_scheduled_run() {
        let now = at("2026-01-01T10:00:00Z");
        let next = at("2026-01-01T10:01:00Z");
        assert_eq!(
            retry_time(now, Duration::from_secs(40), next),
            Some(at("2026-01-01T10:00:40Z"))
        );
        assert_eq!(retry_time(now, Duration::from_secs(60), next), None);
        assert_eq!(retry_time(now, Duration::from_secs(80), next), None);
    }

    #[test]
    fn a_run_longer_than_the_interval_makes_the_next_start_when_it_ends() {
        let every = Schedule::parse("every 1m", chrono_tz::UTC).unwrap();
        let planned = at("2026-01-01T10:00:00Z");
        // On time: the next minute.
        assert_eq!(
            following(&every, planned, at("2026-01-01T10:00:30Z")),
            (at("2026-01-01T10:01:00Z"), false)
        );
        // Ran 3.5 minutes: one run at once, not three stacked ones.
        let ended = at("2026-01-01T10:03:30Z");
        assert_eq!(following(&every, planned, ended), (ended, true));
        // After that late run, the schedule goes on from where the clock is.
        assert_eq!(
            following(&every, ended, at("2026-01-01T10:03:40Z")),
            (at("2026-01-01T10:04:00Z"), false)
        );
    }
}

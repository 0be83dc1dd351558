//! Integration tests of the `inlet` binary and its config: one test binary for the crate.

mod bigquery;
mod cli;
mod crash;
mod credentials;
mod faults;
mod image;
mod messages;
mod scaffold;
mod schedule;
mod secrets;
mod serve;
mod shard;
mod status;
mod ui;

// Shared with the e2e tests, which use all of it.
#[path = "../../../tests/src/gcp.rs"]
mod gcp;
#[allow(dead_code)]
#[path = "../../../tests/src/http_fixture.rs"]
mod http_fixture;
// Shared with the e2e tests, which use all of it.
#[allow(dead_code)]
#[path = "../../../tests/src/postgres.rs"]
mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every file under `dir`, at any depth (none when `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Runs the real `inlet` binary in `dir`, with a compile cache shared by the tests.
pub fn inlet(dir: &Path, args: &[&str]) -> Output {
    inlet_with_env(dir, args, &[])
}

/// Like [`inlet`], with extra environment variables.
pub fn inlet_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inlet"));
    command
        .current_dir(dir)
        .args(args)
        .env("INLET_CACHE_DIR", cache_dir())
        // Messages are compared as text; JSON lines have their own test.
        .env("INLET_LOG_FORMAT", "text")
        .env_remove("INLET_FAULT");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the inlet binary runs")
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inlet-cache")
}

/// Stdout and stderr of a finished command, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// xorshift64*: the seeded, replayable randomness of the fault-injection tests.
pub struct FaultRng(u64);

impl FaultRng {
    /// Starts from `seed` (any value; zero is avoided).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The seed of a fault-injection test: `INLET_FAULT_SEED`, or the clock; printed for replay.
pub fn fault_seed() -> u64 {
    let seed = std::env::var("INLET_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("fault injection seed: {seed} (replay with INLET_FAULT_SEED={seed})");
    seed
}

//! The `sample` connector: a deterministic online-pharmacy source for demos, tests and benchmarks.
//!
//! Each read is one "generation" of a growing shop: generation 1 holds the initial patients,
//! consultations and orders; every later generation adds new rows and updates some existing ones.
//! Every value derives from the seed, the row id and the generation, so two reads of the same
//! generation are identical and an incremental read returns exactly the rows that changed.

mod generator;
mod streams;

use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

/// Settings of the sample connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Seed of the generator; the same seed gives the same shop. Example: `42`.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Patients in generation 1; consultations and orders scale from it (x2, x3). Example: `1000`.
    #[serde(default = "default_patients")]
    pub patients: u64,
    /// Patients added by each later generation. Example: `50`.
    #[serde(default = "default_new_per_run")]
    pub new_per_run: u64,
    /// Existing patients updated by each later generation. Example: `20`.
    #[serde(default = "default_updates_per_run")]
    pub updates_per_run: u64,
    /// Pins the generation instead of advancing it from the saved state. Example: `3`.
    #[serde(default)]
    pub generation: Option<u64>,
    /// Rows per emitted batch. Example: `8192`.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_seed() -> u64 {
    42
}
fn default_patients() -> u64 {
    1000
}
fn default_new_per_run() -> u64 {
    50
}
fn default_updates_per_run() -> u64 {
    20
}
fn default_batch_rows() -> usize {
    8192
}

/// The connector type exported to the host.
#[derive(Default)]
pub struct Sample;

impl Source for Sample {
    type Config = SampleConfig;

    fn spec() -> Spec {
        Spec::new(
            "sample",
            env!("CARGO_PKG_VERSION"),
            "A deterministic online pharmacy: patients, consultations and orders",
        )
    }

    fn check(config: &SampleConfig) -> Result<(), Error> {
        if config.patients == 0 {
            return Err(Error::config("`patients` must be at least 1"));
        }
        if config.batch_rows == 0 {
            return Err(Error::config("`batch_rows` must be at least 1"));
        }
        if config.generation == Some(0) {
            return Err(Error::config("`generation` starts at 1"));
        }
        Ok(())
    }

    fn discover(config: &SampleConfig) -> Result<Vec<Stream>, Error> {
        Self::check(config)?;
        Ok(streams::all()
            .iter()
            .map(|s| {
                Stream::new(s.name)
                    .schema(s.schema())
                    .primary_key(["id"])
                    .cursor("updated_at")
            })
            .collect())
    }

    fn read(
        config: &SampleConfig,
        selected: &[ConfiguredStream],
        mut state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        Self::check(config)?;
        let previous: u64 = state.get("generation")?.unwrap_or(0);
        let generation = config.generation.unwrap_or(previous + 1);
        state.set("generation", &generation)?;
        let shop = generator::Shop::new(config, generation);
        for wanted in selected {
            let stream = streams::all()
                .iter()
                .find(|s| s.name == wanted.name)
                .ok_or_else(|| Error::NotFound(format!("stream `{}`", wanted.name)))?;
            let cursor: Option<i64> = match wanted.sync_mode {
                SyncMode::Incremental => state.get(&cursor_key(stream.name))?,
                SyncMode::FullRefresh => None,
            };
            let newest = stream.emit(&shop, cursor, config.batch_rows, out)?;
            if let Some(newest) = newest.or(cursor) {
                state.set(&cursor_key(stream.name), &newest)?;
            }
            out.checkpoint(&state)?;
        }
        out.log(
            LogLevel::Info,
            &format!("generation {generation} read ({} streams)", selected.len()),
        );
        Ok(())
    }
}

fn cursor_key(stream: &str) -> String {
    format!("{stream}.updated_at")
}

inlet_sdk::export_source!(Sample);

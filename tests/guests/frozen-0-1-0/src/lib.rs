//! A connector built against the released `inlet:connector@0.1.0` contract with wit-bindgen
//! alone (no SDK): the host must keep loading and running components like it after the contract
//! moves on. It emits `ticks` rows as NDJSON (the host infers the schema) after the `tick` saved
//! in its state, and checkpoints after each one.

wit_bindgen::generate!({
    path: "../../../wit/released/0.1.0",
    world: "source-connector",
});

use exports::inlet::connector::source::{ConfiguredStream, ConnectorSpec, Guest, Stream};
use inlet::connector::host;
use inlet::connector::types::{BatchFormat, Error, SyncMode};

struct Frozen;

/// `{"ticks": N}`: how many ticks exist; nothing else is accepted.
fn ticks(config: &str) -> Result<u64, Error> {
    let config = config.trim();
    let inner = config
        .strip_prefix('{')
        .and_then(|c| c.strip_suffix('}'))
        .ok_or_else(|| Error::Config(format!("settings must be an object, got `{config}`")))?;
    let (key, value) = inner
        .split_once(':')
        .ok_or_else(|| Error::Config("the setting `ticks` is required".into()))?;
    if key.trim() != "\"ticks\"" {
        return Err(Error::Config(format!(
            "unknown setting {}, expected `ticks`",
            key.trim()
        )));
    }
    value.trim().parse().map_err(|_| {
        Error::Config(format!(
            "`ticks` must be a whole number, got `{}`",
            value.trim()
        ))
    })
}

/// The `tick` in a state `{"tick": N}`, 0 without one.
fn saved_tick(state: Option<&str>) -> u64 {
    state
        .and_then(|s| s.split_once(':'))
        .and_then(|(_, v)| v.trim().trim_end_matches('}').trim().parse().ok())
        .unwrap_or(0)
}

impl Guest for Frozen {
    fn spec() -> ConnectorSpec {
        ConnectorSpec {
            name: "frozen-0-1-0".into(),
            version: "0.1.0".into(),
            description: "Ticks, from a component built against the released 0.1.0 contract".into(),
            config_schema: r#"{"type":"object","properties":{"ticks":{"type":"integer","minimum":0}},"required":["ticks"],"additionalProperties":false}"#.into(),
            secret_fields: Vec::new(),
            destinations: Vec::new(),
        }
    }

    fn check(config: String) -> Result<(), Error> {
        ticks(&config).map(|_| ())
    }

    fn discover(config: String) -> Result<Vec<Stream>, Error> {
        ticks(&config)?;
        Ok(vec![Stream {
            name: "ticks".into(),
            schema: None,
            primary_key: vec!["tick".into()],
            cursor_field: Some("tick".into()),
            sync_modes: vec![SyncMode::Incremental, SyncMode::FullRefresh],
        }])
    }

    fn partitions(_: String, _: String, _: u32) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    fn read(
        config: String,
        streams: Vec<ConfiguredStream>,
        state: Option<String>,
    ) -> Result<(), Error> {
        let last = ticks(&config)?;
        for stream in streams {
            let after = match stream.sync_mode {
                SyncMode::Incremental => saved_tick(state.as_deref()),
                SyncMode::FullRefresh => 0,
            };
            for tick in after + 1..=last {
                let row = format!("{{\"tick\": {tick}, \"label\": \"tick {tick}\"}}\n");
                host::emit(&stream.name, BatchFormat::Ndjson, row.as_bytes())?;
                host::checkpoint(&format!("{{\"tick\": {tick}}}"))?;
            }
        }
        host::log(host::LogLevel::Info, "read from the 0.1.0 contract");
        Ok(())
    }
}

export!(Frozen);

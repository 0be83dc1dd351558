//! A connector that declares `{host}:{port}` and connects to `target` (default: the declared one),
//! or only looks up the name `lookup`, so tests can show the host allows exactly the declared
//! destination and lookups of its name only.

use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::io::{Read, Write};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    host: String,
    port: u16,
    /// Where to actually connect, `host:port`; the declared destination when absent.
    target: Option<String>,
    /// Instead of connecting, look this host name up (and fail with the answer).
    lookup: Option<String>,
}

struct Probe;

impl Source for Probe {
    type Config = ProbeConfig;

    fn spec() -> Spec {
        Spec::new("net-probe", "0.0.0", "connects where it is told").tcp("{host}:{port}")
    }

    fn check(config: &ProbeConfig) -> Result<(), Error> {
        if let Some(name) = &config.lookup {
            let answer = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
                .map(|addresses| addresses.map(|a| a.ip().to_string()).collect::<Vec<_>>());
            return Err(Error::data(format!("lookup of `{name}`: {answer:?}")));
        }
        let target = config
            .target
            .clone()
            .unwrap_or_else(|| format!("{}:{}", config.host, config.port));
        let mut stream = std::net::TcpStream::connect(&target)
            .map_err(|e| Error::Transient(format!("connect to {target}: {e}")))?;
        stream
            .write_all(b"ping")
            .map_err(|e| Error::Transient(e.to_string()))?;
        let mut reply = [0u8; 4];
        stream
            .read_exact(&mut reply)
            .map_err(|e| Error::Transient(e.to_string()))?;
        if &reply != b"pong" {
            return Err(Error::data(format!("unexpected reply {reply:?}")));
        }
        Ok(())
    }

    fn discover(_: &ProbeConfig) -> Result<Vec<Stream>, Error> {
        Ok(vec![Stream::new("replies")])
    }

    fn read(
        config: &ProbeConfig,
        _: &[ConfiguredStream],
        state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        Self::check(config)?;
        out.emit_json("replies", &[serde_json::json!({"reply": "pong"})])?;
        out.checkpoint(&state)
    }
}

inlet_sdk::export_source!(Probe);

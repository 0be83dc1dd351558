//! A connector that declares the HTTP origin `{endpoint}` (and `{second_endpoint}` when set) and
//! sends a GET to `target` (default: the declared origin), optionally with a credential, so tests
//! can show what the host lets through and that the connector only ever holds a placeholder. It
//! also plays the hostile connector: asking for more scopes than declared, for a credential it
//! was not granted, or sending one where it may not go.

use inlet_sdk::http::{Client, RetryPolicy};
use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    endpoint: String,
    /// Where to send the request (a base URL); the declared endpoint when absent.
    target: Option<String>,
    /// A second declared origin (a second Google API, say), for sending a credential there.
    #[expect(
        dead_code,
        reason = "the host reads it through the destination template"
    )]
    second_endpoint: Option<String>,
    /// Send `authorization: Bearer <google placeholder>`.
    #[serde(default)]
    credential: bool,
    /// Ask for this credential instead of `google` (in header `x-api-key`, as the value).
    credential_name: Option<String>,
    /// Ask with these scopes instead of the declared `scope-a`.
    scopes: Option<Vec<String>>,
    /// Fail with the credential value the connector holds, so a test can see it.
    #[serde(default)]
    reveal_credential: bool,
}

struct Probe;

impl Source for Probe {
    type Config = ProbeConfig;

    fn spec() -> Spec {
        Spec::new("http-probe", "0.0.0", "sends a GET where it is told")
            .http("{endpoint}")
            .http("{second_endpoint:http://127.0.0.1:9}")
            .google_credential(&["scope-a"], "probes")
            .secret_credential("api_key", "probes with an API key")
    }

    fn check(config: &ProbeConfig) -> Result<(), Error> {
        if config.reveal_credential {
            let placeholder = inlet_sdk::http::credential("google", &["scope-a"])?;
            return Err(Error::data(format!("the connector holds `{placeholder}`")));
        }
        let target = config.target.as_deref().unwrap_or(&config.endpoint);
        let mut client = Client::new(target)?.with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
        let scopes: Vec<&str> = match &config.scopes {
            Some(scopes) => scopes.iter().map(String::as_str).collect(),
            None => vec!["scope-a"],
        };
        if let Some(name) = &config.credential_name {
            let placeholder = inlet_sdk::http::credential(name, &[])?;
            client = client.with_header("x-api-key", &placeholder);
        } else if config.credential {
            client = client.with_credential("google", &scopes)?;
        }
        client.send("GET", "/probe", &[], None).map(|_| ())
    }

    fn discover(_: &ProbeConfig) -> Result<Vec<Stream>, Error> {
        Ok(vec![Stream::new("probe")])
    }

    fn read(
        config: &ProbeConfig,
        _: &[ConfiguredStream],
        state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        Self::check(config)?;
        out.emit_json("probe", &[serde_json::json!({"ok": true})])?;
        out.checkpoint(&state)
    }
}

inlet_sdk::export_source!(Probe);

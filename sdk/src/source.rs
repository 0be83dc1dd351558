//! The `Source` trait a connector implements, and the adapter that exports it through the WIT contract.

use crate::bindings::exports::inlet::connector::source::Guest;
use crate::bindings::inlet::connector::types as wit;
use crate::{ConfiguredStream, Error, Output, State, Stream};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// What a connector tells the host about itself, before any configuration is known.
#[derive(Debug, Clone)]
pub struct Spec {
    name: String,
    version: String,
    description: String,
    secret_fields: Vec<String>,
    destinations: Vec<wit::Destination>,
    credentials: Vec<serde_json::Value>,
}

impl Spec {
    /// A spec with a name (lowercase, dashes), a version and a one-line description.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            secret_fields: Vec::new(),
            destinations: Vec::new(),
            credentials: Vec::new(),
        }
    }

    /// Marks a configuration field as secret: the host redacts its value from logs and errors.
    pub fn secret(mut self, field: &str) -> Self {
        self.secret_fields.push(field.to_owned());
        self
    }

    /// Declares a TCP destination, a template over top-level config fields such as `{host}:{port}`.
    /// The connector can reach nothing else.
    pub fn tcp(mut self, template: &str) -> Self {
        self.destinations
            .push(wit::Destination::Tcp(template.to_owned()));
        self
    }

    /// Declares that the connector asks for the Google identity credential `google` with `scopes`
    /// (through [`crate::http::Client::with_credential`]), and why. The operator sees it in
    /// `inlet spec` and grants it (or not) per connection; asking at run time for a scope not
    /// granted is refused.
    pub fn google_credential(self, scopes: &[&str], purpose: &str) -> Self {
        self.credential("google", "google", scopes, purpose)
    }

    /// Declares that the connector asks for the secret `name` (an API token the host writes into a
    /// header in place of its placeholder), and why.
    pub fn secret_credential(self, name: &str, purpose: &str) -> Self {
        self.credential(name, "secret", &[], purpose)
    }

    fn credential(mut self, name: &str, kind: &str, scopes: &[&str], purpose: &str) -> Self {
        let mut ask = serde_json::json!({"name": name, "kind": kind, "purpose": purpose});
        if !scopes.is_empty() {
            ask["scopes"] = scopes.iter().map(|s| (*s).to_owned()).collect();
        }
        self.credentials.push(ask);
        self
    }

    /// Declares an HTTP origin, `scheme://host[:port]`, or a template such as
    /// `{endpoint:https://sheets.googleapis.com}` (the config field `endpoint`, else the default).
    /// [`crate::http::Client`] requests to any other origin are refused.
    pub fn http(mut self, template: &str) -> Self {
        self.destinations
            .push(wit::Destination::Http(template.to_owned()));
        self
    }
}

/// The config-schema keyword that carries a connector's credential asks.
pub const CREDENTIALS_KEY: &str = "x-inlet-credentials";

/// A source connector.
///
/// Only [`Source::spec`], [`Source::discover`] and [`Source::read`] are required; [`Source::check`]
/// defaults to running `discover`.
pub trait Source {
    /// The configuration, deserialized from the user's JSON. Derive `Deserialize` and `JsonSchema`,
    /// and use `#[serde(deny_unknown_fields)]` so typos are caught.
    type Config: DeserializeOwned + JsonSchema;

    /// Describes the connector. Must not use the network.
    fn spec() -> Spec;

    /// Verifies the configuration works (connects, authenticates).
    fn check(config: &Self::Config) -> Result<(), Error> {
        Self::discover(config).map(|_| ())
    }

    /// Lists the streams the source offers.
    fn discover(config: &Self::Config) -> Result<Vec<Stream>, Error>;

    /// Splits a full-refresh read of `stream` into at most `count` disjoint parts covering it, for
    /// parallel reads; each descriptor comes back in [`ConfiguredStream::partition`]. The default,
    /// an empty list, means "cannot be split": the stream is read whole.
    fn partitions(config: &Self::Config, stream: &str, count: u32) -> Result<Vec<String>, Error> {
        let _ = (config, stream, count);
        Ok(Vec::new())
    }

    /// Reads `streams`, emitting rows and checkpoints through `output`.
    fn read(
        config: &Self::Config,
        streams: &[ConfiguredStream],
        state: State,
        output: &mut Output,
    ) -> Result<(), Error>;
}

/// Adapts a [`Source`] to the generated WIT exports. Used by [`crate::export_source!`].
#[doc(hidden)]
pub struct Adapter<S>(PhantomData<S>);

fn parse_config<S: Source>(config: &str) -> Result<S::Config, Error> {
    parse_settings(config)
}

/// Parses the settings the host passes (compact JSON it built), naming the setting that is wrong
/// (`setting `tables.public.x.where`: ...`) instead of a line and column of that JSON.
pub(crate) fn parse_settings<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_str(config);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let mut message = inner.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        // An unknown key's path ends with the key itself, which the message names already.
        let (path, message) = match message.strip_prefix("unknown field") {
            Some(rest) => (
                path.rsplit_once('.')
                    .map_or(".", |(parent, _)| parent)
                    .to_owned(),
                format!("unknown setting{rest}"),
            ),
            None => (path, message),
        };
        if path == "." || path.is_empty() {
            Error::config(message)
        } else {
            Error::config(format!("setting `{path}`: {message}"))
        }
    })
}

impl<S: Source> Guest for Adapter<S> {
    fn spec() -> wit::ConnectorSpec {
        let spec = S::spec();
        let mut schema = serde_json::to_value(schemars::schema_for!(S::Config))
            .unwrap_or_else(|_| serde_json::json!({}));
        // The contract's spec has no field for credential asks; JSON Schema allows extension
        // keywords, so they travel in the config schema where the host reads them.
        if !spec.credentials.is_empty()
            && let Some(object) = schema.as_object_mut()
        {
            object.insert(
                CREDENTIALS_KEY.to_owned(),
                serde_json::Value::Array(spec.credentials),
            );
        }
        wit::ConnectorSpec {
            name: spec.name,
            version: spec.version,
            description: spec.description,
            config_schema: schema.to_string(),
            secret_fields: spec.secret_fields,
            destinations: spec.destinations,
        }
    }

    fn check(config: String) -> Result<(), wit::Error> {
        let config = parse_config::<S>(&config)?;
        S::check(&config).map_err(Into::into)
    }

    fn discover(config: String) -> Result<Vec<wit::Stream>, wit::Error> {
        let config = parse_config::<S>(&config)?;
        let streams = S::discover(&config)?;
        streams
            .into_iter()
            .map(|s| s.into_wit().map_err(Into::into))
            .collect()
    }

    fn partitions(config: String, stream: String, count: u32) -> Result<Vec<String>, wit::Error> {
        let config = parse_config::<S>(&config)?;
        S::partitions(&config, &stream, count).map_err(Into::into)
    }

    fn read(
        config: String,
        streams: Vec<wit::ConfiguredStream>,
        state: Option<String>,
    ) -> Result<(), wit::Error> {
        let config = parse_config::<S>(&config)?;
        let state = State::parse(state.as_deref())?;
        let streams: Vec<ConfiguredStream> = streams.into_iter().map(Into::into).collect();
        let mut output = Output::new();
        S::read(&config, &streams, state, &mut output).map_err(Into::into)
    }
}

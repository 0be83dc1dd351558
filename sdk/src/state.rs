//! The connector's cursor state: a JSON object the host keeps with every commit.

use crate::Error;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// Cursor state carried from one run to the next.
///
/// A JSON object with one entry per key: a stream's cursor under the stream's name or under keys
/// that start with `<stream>.` (`orders.updated_at`), plus whatever global values the connector
/// needs under other names. The host stores it with each durable checkpoint and hands the newest
/// back to the next `read`. Keep to the naming: `inlet state reset <connection> --stream orders`
/// removes exactly the keys named after `orders`, and the next read of `orders` must then start
/// from the beginning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    values: Map<String, Value>,
}

impl State {
    /// An empty state (a first run, or after `inlet state reset`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the state the host passed to `read`.
    pub fn parse(json: Option<&str>) -> Result<Self, Error> {
        match json {
            None => Ok(Self::new()),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(values)) => Ok(Self { values }),
                Ok(Value::Null) => Ok(Self::new()),
                Ok(other) => Err(Error::config(format!(
                    "state must be a JSON object, got `{other}`"
                ))),
                Err(e) => Err(Error::config(format!("state is not valid JSON: {e}"))),
            },
        }
    }

    /// Reads the value under `key`, if present, as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| {
                    Error::config(format!("state key `{key}` has an unexpected shape: {e}"))
                }),
        }
    }

    /// Sets the value under `key`.
    pub fn set<T: Serialize>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let value = serde_json::to_value(value)
            .map_err(|e| Error::internal(format!("state key `{key}` cannot be serialized: {e}")))?;
        self.values.insert(key.to_owned(), value);
        Ok(())
    }

    /// Removes the value under `key`.
    pub fn remove(&mut self, key: &str) {
        self.values.remove(key);
    }

    /// The state as the JSON text given to the host.
    pub fn to_json(&self) -> String {
        Value::Object(self.values.clone()).to_string()
    }
}

//! Stream descriptions: what `discover` returns and what `read` is asked for.

use crate::bindings::inlet::connector::types as wit;
use arrow_schema::{Schema, SchemaRef};
use std::sync::Arc;

/// How a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Everything, every time.
    FullRefresh,
    /// Only what changed since the cursor kept in the state.
    Incremental,
}

impl From<wit::SyncMode> for SyncMode {
    fn from(mode: wit::SyncMode) -> Self {
        match mode {
            wit::SyncMode::FullRefresh => SyncMode::FullRefresh,
            wit::SyncMode::Incremental => SyncMode::Incremental,
        }
    }
}

impl From<SyncMode> for wit::SyncMode {
    fn from(mode: SyncMode) -> Self {
        match mode {
            SyncMode::FullRefresh => wit::SyncMode::FullRefresh,
            SyncMode::Incremental => wit::SyncMode::Incremental,
        }
    }
}

/// A stream the connector offers: one output table.
#[derive(Debug, Clone)]
pub struct Stream {
    name: String,
    schema: Option<SchemaRef>,
    primary_key: Vec<String>,
    cursor_field: Option<String>,
    sync_modes: Vec<SyncMode>,
}

impl Stream {
    /// A stream with no declared schema, no key, supporting full refresh only.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            schema: None,
            primary_key: Vec::new(),
            cursor_field: None,
            sync_modes: vec![SyncMode::FullRefresh],
        }
    }

    /// Declares the Arrow schema every batch of this stream will have.
    pub fn schema(mut self, schema: impl Into<Arc<Schema>>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Declares the primary key columns, in order.
    pub fn primary_key<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.primary_key = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Declares the incremental cursor column and adds incremental as the default sync mode.
    pub fn cursor(mut self, column: impl Into<String>) -> Self {
        self.cursor_field = Some(column.into());
        self.sync_modes = vec![SyncMode::Incremental, SyncMode::FullRefresh];
        self
    }

    /// The stream name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared schema, if any.
    pub fn declared_schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    pub(crate) fn into_wit(self) -> Result<wit::Stream, crate::Error> {
        let schema = match &self.schema {
            Some(schema) => Some(crate::output::encode_schema(schema)?),
            None => None,
        };
        Ok(wit::Stream {
            name: self.name,
            schema,
            primary_key: self.primary_key,
            cursor_field: self.cursor_field,
            sync_modes: self.sync_modes.into_iter().map(Into::into).collect(),
        })
    }
}

/// A stream the host asked to read, with its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredStream {
    /// The stream name, as returned by `discover`.
    pub name: String,
    /// The mode to read it in.
    pub sync_mode: SyncMode,
    /// Only this part of the stream (a descriptor from [`crate::Source::partitions`]), if set.
    pub partition: Option<String>,
}

impl From<wit::ConfiguredStream> for ConfiguredStream {
    fn from(stream: wit::ConfiguredStream) -> Self {
        Self {
            name: stream.name,
            sync_mode: stream.sync_mode.into(),
            partition: stream.partition,
        }
    }
}

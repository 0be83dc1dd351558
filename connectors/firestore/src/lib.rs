//! The `firestore` connector: collections (and collection groups) of a Firestore database as
//! streams, read with the REST API's `runQuery` in pages ordered by document name, or, with a
//! `cursor_field`, incrementally: ordered by that timestamp field, resuming after the last
//! document read.
//!
//! Rows carry `__name__` (the resource name, the primary key), `__id__`, `__create_time__`,
//! `__update_time__` (Firestore reserves `__*__` names, so no field can collide) and the
//! document's fields (see `value.rs` for the type mapping).

mod value;

use inlet_sdk::http::Client;
use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use value::{FsType, MapMode};

const SCOPE: &str = "https://www.googleapis.com/auth/datastore";
const DEFAULT_ENDPOINT: &str = "https://firestore.googleapis.com";

/// Settings of the Firestore connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirestoreConfig {
    /// The Google Cloud project. Example: `"my-app-prod"`.
    pub project: String,
    /// The database id. Example: `"(default)"`.
    #[serde(default = "default_database")]
    pub database: String,
    /// The collections to read.
    pub collections: Vec<CollectionConfig>,
    /// Map fields as structs (`"struct"`, the default) or JSON text (`"json"`).
    #[serde(default)]
    pub maps: MapMode,
    /// Documents per request (1 to 10000). Example: `1000`.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The Firestore endpoint (emulators, private endpoints). Example: `"https://firestore.googleapis.com"`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// One collection or collection group.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// A collection path: `users`, or `users/alice/orders` for one subcollection. With `group`,
    /// a collection id.
    pub path: String,
    /// Read every collection with this id, at any depth (a collection group query).
    #[serde(default)]
    pub group: bool,
    /// A timestamp field that grows when a document changes (`updated_at`): reads become
    /// incremental. Documents without the field are not read (Firestore leaves them out of
    /// queries ordered by it).
    #[serde(default)]
    pub cursor_field: Option<String>,
    /// The stream name; by default the path with `/` as `_`.
    #[serde(default)]
    pub stream: Option<String>,
}

fn default_database() -> String {
    "(default)".into()
}
fn default_page_size() -> u32 {
    1000
}

impl CollectionConfig {
    fn stream_name(&self) -> String {
        self.stream
            .clone()
            .unwrap_or_else(|| self.path.trim_matches('/').replace('/', "_"))
    }
}

/// The connector type exported to the host.
#[derive(Default)]
pub struct Firestore;

struct Session {
    client: Client,
    documents: String,
    maps: MapMode,
    page_size: u32,
}

impl Session {
    fn new(config: &FirestoreConfig) -> Result<Self, Error> {
        if !(1..=10_000).contains(&config.page_size) {
            return Err(Error::config("`page_size` must be between 1 and 10000"));
        }
        if config.collections.is_empty() {
            return Err(Error::config("`collections` lists no collection"));
        }
        for collection in &config.collections {
            let segments = collection.path.trim_matches('/').split('/').count();
            if collection.group && segments != 1 {
                return Err(Error::config(format!(
                    "collection group `{}`: give the collection id alone (no `/`)",
                    collection.path
                )));
            }
            if !collection.group && segments % 2 == 0 {
                return Err(Error::config(format!(
                    "`{}` is a document path; a collection path has an odd number of segments (`users` or `users/alice/orders`)",
                    collection.path
                )));
            }
        }
        let endpoint = config.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        Ok(Self {
            client: Client::new(endpoint)?.with_credential("google", &[SCOPE])?,
            documents: format!(
                "projects/{}/databases/{}/documents",
                config.project, config.database
            ),
            maps: config.maps,
            page_size: config.page_size,
        })
    }

    /// One `runQuery` page: documents of `collection` ordered by `order` (field paths),
    /// starting after `after` (values of those fields) when given.
    fn page(
        &self,
        collection: &CollectionConfig,
        order: &[&str],
        after: Option<&[Value]>,
        limit: u32,
    ) -> Result<Vec<Value>, Error> {
        let path = collection.path.trim_matches('/');
        let (parent, id) = match path.rsplit_once('/') {
            Some((parent, id)) if !collection.group => (format!("{}/{parent}", self.documents), id),
            _ => (self.documents.clone(), path),
        };
        let mut query = json!({
            "from": [{"collectionId": id, "allDescendants": collection.group}],
            "orderBy": order.iter().map(|f| json!({"field": {"fieldPath": f}, "direction": "ASCENDING"})).collect::<Vec<_>>(),
            "limit": limit,
        });
        if let Some(values) = after {
            query["startAt"] = json!({"values": values, "before": false});
        }
        let answer: Vec<Value> = self
            .client
            .post_json(
                &format!("/v1/{parent}:runQuery"),
                &[],
                &json!({"structuredQuery": query}),
            )
            .map_err(|e| match e {
                Error::NotFound(m) => Error::NotFound(format!(
                    "{m} (check `project` and `database`, and that the Firestore API is enabled)"
                )),
                Error::Auth(m) => Error::Auth(format!(
                    "{m} (the account needs roles/datastore.viewer on the project)"
                )),
                other => other,
            })?;
        Ok(answer
            .into_iter()
            .filter_map(|entry| entry.get("document").cloned())
            .collect())
    }
}

/// Documents as batches: consecutive documents whose field types agree share a batch; a
/// disagreement starts a new one, and the host's schema evolution absorbs the change.
struct Batcher {
    maps: MapMode,
    types: BTreeMap<String, FsType>,
    rows: Vec<Value>,
}

impl Batcher {
    fn new(maps: MapMode) -> Self {
        Self {
            maps,
            types: BTreeMap::new(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, document: &Value, stream: &str, out: &mut Output) -> Result<(), Error> {
        let data = |e: String| Error::data(format!("stream `{stream}`: {e}"));
        let fields = document["fields"].as_object();
        let types = value::fields_type(fields, self.maps).map_err(data)?;
        let mut merged = self.types.clone();
        let mut conflict = false;
        for (name, t) in &types {
            match merged.get(name).map(|have| have.unify(t)) {
                Some(None) => conflict = true,
                Some(Some(unified)) => {
                    merged.insert(name.clone(), unified);
                }
                None => {
                    merged.insert(name.clone(), t.clone());
                }
            }
        }
        if conflict {
            self.flush(stream, out)?;
            merged = types;
        }
        self.types = merged;
        let name = document["name"].as_str().unwrap_or_default();
        let mut row = Map::new();
        row.insert("__name__".into(), json!(name));
        row.insert(
            "__id__".into(),
            json!(name.rsplit('/').next().unwrap_or(name)),
        );
        row.insert("__create_time__".into(), document["createTime"].clone());
        row.insert("__update_time__".into(), document["updateTime"].clone());
        for (key, value) in fields.into_iter().flatten() {
            row.insert(key.clone(), value::plain(value, self.maps).map_err(data)?);
        }
        self.rows.push(Value::Object(row));
        Ok(())
    }

    fn flush(&mut self, stream: &str, out: &mut Output) -> Result<(), Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        let mut fields = vec![
            Field::new("__name__", DataType::Utf8, false),
            Field::new("__id__", DataType::Utf8, false),
            Field::new("__create_time__", timestamp.clone(), false),
            Field::new("__update_time__", timestamp, false),
        ];
        fields.extend(self.types.iter().map(|(name, t)| t.field(name)));
        let mut encoder = RowEncoder::new(Arc::new(Schema::new(fields)))?;
        let batch = encoder.encode(&self.rows)?;
        out.emit(stream, &batch)?;
        self.rows.clear();
        self.types.clear();
        Ok(())
    }
}

impl Source for Firestore {
    type Config = FirestoreConfig;

    fn spec() -> Spec {
        Spec::new(
            "firestore",
            env!("CARGO_PKG_VERSION"),
            "Firestore: collections and collection groups, incremental by a timestamp field",
        )
        .http("{endpoint:https://firestore.googleapis.com}")
        .google_credential(
            &[SCOPE],
            "reads the documents of the configured collections",
        )
    }

    fn check(config: &FirestoreConfig) -> Result<(), Error> {
        let session = Session::new(config)?;
        for collection in &config.collections {
            session.page(collection, &["__name__"], None, 1)?;
        }
        Ok(())
    }

    fn discover(config: &FirestoreConfig) -> Result<Vec<Stream>, Error> {
        Session::new(config)?;
        let mut streams: Vec<Stream> = Vec::new();
        for collection in &config.collections {
            let name = collection.stream_name();
            if streams.iter().any(|s| s.name() == name) {
                return Err(Error::config(format!(
                    "two collections would both be stream `{name}`; set `stream` on one"
                )));
            }
            let stream = Stream::new(name).primary_key(["__name__"]);
            streams.push(match &collection.cursor_field {
                Some(field) => stream.cursor(field.clone()),
                None => stream,
            });
        }
        Ok(streams)
    }

    fn read(
        config: &FirestoreConfig,
        selected: &[ConfiguredStream],
        mut state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        let session = Session::new(config)?;
        for wanted in selected {
            let collection = config
                .collections
                .iter()
                .find(|c| c.stream_name() == wanted.name)
                .ok_or_else(|| Error::NotFound(format!("stream `{}`", wanted.name)))?;
            let incremental = wanted.sync_mode == SyncMode::Incremental;
            let cursor = collection.cursor_field.as_deref().filter(|_| incremental);
            let order: Vec<&str> = cursor.into_iter().chain(["__name__"]).collect();
            // Where the last read stopped: the order fields' values of the last document.
            let mut after: Option<Vec<Value>> = match cursor {
                Some(_) => state.get(&wanted.name)?,
                None => None,
            };
            let mut batcher = Batcher::new(session.maps);
            let mut read = 0u64;
            loop {
                let page = session.page(collection, &order, after.as_deref(), session.page_size)?;
                for document in &page {
                    batcher.push(document, &wanted.name, out)?;
                }
                read += page.len() as u64;
                let Some(last) = page.last() else { break };
                let name = json!({"referenceValue": last["name"]});
                after = Some(match cursor {
                    Some(field) => {
                        let value = last["fields"][field].clone();
                        if value.is_null() {
                            return Err(Error::data(format!(
                                "document `{}` has no `{field}` but came back from a query ordered by it",
                                last["name"]
                            )));
                        }
                        vec![value, name]
                    }
                    None => vec![name],
                });
                if cursor.is_some() {
                    // Every page is durable with the position after it.
                    batcher.flush(&wanted.name, out)?;
                    state.set(&wanted.name, &after)?;
                    out.checkpoint(&state)?;
                }
                out.progress(&wanted.name, None);
                if (page.len() as u32) < session.page_size {
                    break;
                }
            }
            batcher.flush(&wanted.name, out)?;
            out.log(
                LogLevel::Info,
                &format!("`{}`: {read} documents", wanted.name),
            );
        }
        out.checkpoint(&state)
    }
}

inlet_sdk::export_source!(Firestore);

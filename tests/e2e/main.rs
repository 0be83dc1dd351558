//! End-to-end tests: real components (built from `tests/guests` and `connectors/`) in the real host.

mod bigquery;
mod bigquery_exactly_once;
mod contract;
mod drain;
mod firestore;
mod gated_store;
mod google_ads;
mod harness;
mod history;
mod lake;
mod load;
mod meta_ads;
mod network_pinning;
mod postgres;
mod postgres_cdc;
mod postgres_parts;
mod postgres_tls;
mod python_connector;
mod sandbox;
mod sheets;

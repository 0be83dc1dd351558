//! End-to-end tests: real components (built from `tests/guests` and `connectors/`) in the real host.

mod bigquery;
mod drain;
mod firestore;
mod harness;
mod history;
mod lake;
mod load;
mod postgres;
mod sandbox;
mod sheets;

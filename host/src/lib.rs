//! The Inlet host: runs sandboxed connector components, writes what they emit to a Parquet lake
//! with atomic commits, and offers it all through the `inlet` command.
//!
//! The flow of one sync (see `ARCHITECTURE.md`): [`config`] is parsed, [`connectors`] finds the
//! component, [`runtime`] compiles (or loads from cache) and sandboxes it, [`sync`] drives
//! `discover` and `read`, and [`lake`] turns emitted batches into Parquet files and commits.

pub mod bigquery;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod connectors;
pub mod credentials;
pub mod lake;
pub mod load;
pub mod logging;
pub mod progress;
pub mod random;
pub mod replication_slot;
pub mod runtime;
pub mod scaffold;
pub mod schedule;
pub mod secrets;
pub mod serve;
pub mod shard;
pub mod sync;
#[cfg(test)]
mod test_rng;

//! Shared pieces of the end-to-end tests: the built test components, and helpers every
//! connector's tests can call (a small conformance kit).

/// Paths of the test components in `tests/guests`, built by `build.rs`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

pub mod conformance;
pub mod firestore;
pub mod gcp;
pub mod google_ads_fixture;
pub mod http_fixture;
pub mod meta_ads_fixture;
pub mod orders_fixture;
pub mod pg_tls;
pub mod postgres;
pub mod sheets_fixture;

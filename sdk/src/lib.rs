//! Write Inlet connectors in Rust.
//!
//! A connector is a WebAssembly component that the Inlet host runs in a sandbox. With this crate a
//! connector is an ordinary Rust library: implement [`Source`] for a type, call [`export_source!`],
//! and build with `cargo build --release --target wasm32-wasip2`. See the crate README for a walk
//! through from an empty folder to a `.wasm` file.
//!
//! ```ignore
//! use inlet_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct HelloConfig { /// How many rows to emit.
//!     rows: u32 }
//!
//! impl Source for Hello {
//!     type Config = HelloConfig;
//!     fn spec() -> Spec { Spec::new("hello", env!("CARGO_PKG_VERSION"), "Emits greetings") }
//!     fn discover(_: &HelloConfig) -> Result<Vec<Stream>, Error> { Ok(vec![Stream::new("greetings")]) }
//!     fn read(config: &HelloConfig, streams: &[ConfiguredStream], state: State, out: &mut Output) -> Result<(), Error> {
//!         let rows: Vec<_> = (0..config.rows).map(|i| serde_json::json!({"id": i})).collect();
//!         out.emit_json("greetings", &rows)?;
//!         out.checkpoint(&state)
//!     }
//! }
//! inlet_sdk::export_source!(Hello);
//! ```
#![deny(missing_docs)]

mod error;
pub mod http;
mod output;
mod push;
mod source;
mod state;
mod stream;
pub mod time;
pub mod versions;

#[doc(hidden)]
pub mod bindings {
    //! Generated bindings of the `inlet:connector` WIT package. Not part of the public API.
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "../wit",
        // The superset world: every SDK component exports `source` and `push`; a pull connector's
        // `push` answers that it takes no pushes (see `export_source!`).
        world: "push-connector",
        pub_export_macro: true,
        export_macro_name: "__export_push_connector",
        default_bindings_module: "inlet_sdk::bindings",
    });
}

pub use error::Error;
pub use output::{LogLevel, Output, RowEncoder};
pub use push::{Push, PushAdapter, Request, Response};
pub use source::{Adapter, Source, Spec};
pub use state::State;
pub use stream::{ConfiguredStream, Stream, SyncMode};

/// The Arrow crates the SDK speaks, re-exported so a connector uses the same versions.
pub mod arrow {
    pub use arrow_array as array;
    pub use arrow_buffer as buffer;
    pub use arrow_schema as schema;
}

/// Everything a connector usually needs, in one `use`.
pub mod prelude {
    pub use crate::arrow::array::RecordBatch;
    pub use crate::arrow::schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
    pub use crate::{
        ConfiguredStream, Error, LogLevel, Output, RowEncoder, Source, Spec, State, Stream,
        SyncMode,
    };
}

/// Exports a [`Source`] implementation as the connector's component entry points.
///
/// Call it once, at the top level of the connector crate, with the type implementing [`Source`].
#[macro_export]
macro_rules! export_source {
    ($source:ty) => {
        #[doc(hidden)]
        type __InletSourceAdapter = $crate::Adapter<$source>;
        $crate::bindings::__export_push_connector!(
            __InletSourceAdapter with_types_in $crate::bindings
        );
    };
}

/// Exports a [`Push`] implementation (which is also a [`Source`]) as the connector's component
/// entry points, for `inlet serve`.
#[macro_export]
macro_rules! export_push {
    ($push:ty) => {
        #[doc(hidden)]
        type __InletPushAdapter = $crate::PushAdapter<$push>;
        $crate::bindings::__export_push_connector!(
            __InletPushAdapter with_types_in $crate::bindings
        );
    };
}

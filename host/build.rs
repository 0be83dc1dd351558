//! Builds the first-party connectors (`connectors/`) and embeds them, so `inlet` finds them by name.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let components = inlet_build_support::build_components(
        &root.join("connectors"),
        &root.join("connectors/target"),
        &[
            &root.join("sdk/src"),
            &root.join("sdk/Cargo.toml"),
            &root.join("wit"),
        ],
    );
    inlet_build_support::write_embedded_table("builtin_connectors.rs", &components);
}

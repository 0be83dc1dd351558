//! Builds the test components in `tests/guests` and writes a constant with the path of each.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let components = inlet_build_support::build_components(
        &root.join("tests/guests"),
        &root.join("connectors/target"),
        &[
            &root.join("sdk/src"),
            &root.join("sdk/Cargo.toml"),
            &root.join("wit"),
        ],
    );
    inlet_build_support::write_path_constants("guests.rs", &components);
}

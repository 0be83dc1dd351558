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
    // A test component no test uses is dead weight in every build: refuse it.
    let tests_dir = root.join("tests/e2e");
    println!("cargo:rerun-if-changed={}", tests_dir.display());
    let sources: String = std::fs::read_dir(&tests_dir)
        .expect("tests/e2e exists")
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .collect();
    for component in &components {
        let constant = component.name.to_uppercase().replace('-', "_");
        assert!(
            sources.contains(&constant),
            "test component `{}` (constant `{constant}`) is not used by any test in tests/e2e",
            component.name
        );
    }
}

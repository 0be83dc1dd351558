//! Golden tests for invalid `inlet.toml` files: each `tests/ui/invalid/X.toml` must fail with the
//! text in `X.err`. `INLET_BLESS=1` rewrites the `.err` files.

use inlet_host::config::LoadedConfig;
use std::path::Path;

#[test]
fn invalid_configs_fail_with_the_expected_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/invalid");
    let bless = std::env::var_os("INLET_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "the golden cases are present");
    let mut mismatches = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&case).unwrap();
        let actual = match LoadedConfig::parse(&text, &name, Path::new("/nonexistent")) {
            Ok(_) => "(accepted)".to_owned(),
            Err(error) => error.to_string(),
        };
        let golden = case.with_extension("err");
        if bless {
            std::fs::write(&golden, format!("{actual}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected.trim_end() != actual.trim_end() {
            mismatches.push(format!(
                "--- {}\n+++ actual\n-{}\n+{}",
                golden.display(),
                expected.trim_end().replace('\n', "\n-"),
                actual.replace('\n', "\n+")
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches (INLET_BLESS=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn every_example_config_is_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let file = entry.unwrap().path().join("inlet.toml");
        if file.is_file() {
            let loaded = LoadedConfig::load(&file)
                .unwrap_or_else(|e| panic!("{} is not valid: {e}", file.display()));
            checked.push(loaded.config.connections.len());
        }
    }
    assert!(
        checked.len() >= 2,
        "quickstart and bigquery examples: {checked:?}"
    );
}

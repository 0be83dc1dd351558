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

#[test]
fn grants_resolve_their_secrets_and_default_identity_hosts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meta.token"), "EAAB-token\n").unwrap();
    let text = r#"
[lake]
url = "lake"

[google]
credentials = "none"

[connections.ads]
connector = "sample"

[connections.ads.grants.google]
identity = "operator"
scopes = ["https://www.googleapis.com/auth/adwords"]

[connections.ads.grants.access_token]
secret = { file = "meta.token" }
hosts = ["graph.facebook.com", "127.0.0.1:8080"]
"#;
    let file = dir.path().join("inlet.toml");
    std::fs::write(&file, text).unwrap();
    let loaded = LoadedConfig::load(&file).unwrap();
    let grants = loaded.grants("ads").unwrap();
    let token = grants.iter().find(|g| g.name == "access_token").unwrap();
    assert_eq!(
        token.secret().unwrap().expose(),
        "EAAB-token",
        "the newline is dropped"
    );
    assert!(token.reaches("https", "graph.facebook.com", 443));
    assert!(!token.reaches("http", "graph.facebook.com", 80));
    assert!(token.reaches("http", "127.0.0.1", 8080));
    assert!(!format!("{token:?}").contains("EAAB"), "{token:?}");
    let google = grants.iter().find(|g| g.name == "google").unwrap();
    assert_eq!(google.hosts_description(), "*.googleapis.com");
    assert!(
        google
            .source_description()
            .contains("credentials = \"none\"")
    );
    assert!(
        loaded.grants("other").unwrap().is_empty(),
        "none implicitly"
    );

    std::fs::remove_file(dir.path().join("meta.token")).unwrap();
    let missing = loaded.grants("ads").unwrap_err().to_string();
    assert!(
        missing.contains("connections.ads.grants.access_token") && missing.contains("meta.token"),
        "{missing}"
    );
}

#[test]
fn connection_examples_in_the_readmes_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut readmes: Vec<_> = std::fs::read_dir(root.join("connectors"))
        .unwrap()
        .map(|e| e.unwrap().path().join("README.md"))
        .filter(|p| p.is_file())
        .collect();
    readmes.push(root.join("README.md"));
    let mut checked = 0;
    for readme in readmes {
        let text = std::fs::read_to_string(&readme).unwrap();
        for block in text.split("```toml\n").skip(1) {
            let block = block.split("```").next().unwrap();
            // Whole connections only: snippets of a single table are shown for their keys.
            if !block.contains("connector = ") {
                continue;
            }
            let config = match block.contains("[lake]") {
                true => block.to_owned(),
                false => format!("[lake]\nurl = \"lake\"\n\n{block}"),
            };
            if let Err(error) = LoadedConfig::parse(&config, &readme.display().to_string(), &root) {
                panic!(
                    "an example in {} is not valid: {error}\n{block}",
                    readme.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "the examples were found ({checked})");
}

//! `inlet connector new` as an author uses it: each kind of crate is generated, its unit tests
//! pass, it builds with one cargo command, `inlet connector test` passes as generated (the HTTP
//! one from its replay tape, with no network), and `inlet sync ./x.wasm` lands its rows.

use super::{inlet, text};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the crate in `dir` as its README says; the target folder is the first-party
/// connectors', so the SDK's dependencies (same versions, same profile) are compiled once.
fn cargo(dir: &Path, args: &[&str]) {
    // The versions the repository is tested with (a fresh crate would take the newest).
    std::fs::copy(repo().join("connectors/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let output = Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", repo().join("connectors/target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo {args:?} in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn component(crate_name: &str) -> String {
    repo()
        .join("connectors/target/wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"))
        .display()
        .to_string()
}

#[test]
fn each_kind_of_new_connector_builds_and_passes_the_kit_as_generated() {
    let root = tempfile::tempdir().unwrap();
    let sdk = repo().join("sdk");
    for (kind, name) in [
        ("pull", "scaffold-pull"),
        ("http", "scaffold-http"),
        ("push", "scaffold-push"),
    ] {
        let made = inlet(
            root.path(),
            &[
                "connector",
                "new",
                name,
                "--kind",
                kind,
                "--sdk",
                sdk.to_str().unwrap(),
            ],
        );
        assert!(made.status.success(), "{}", text(&made));
        let printed = String::from_utf8_lossy(&made.stdout);
        assert!(
            printed.contains("cargo build --release --target wasm32-wasip2"),
            "{printed}"
        );
        let dir = root.path().join(name);
        // As generated, the code is formatted the way `cargo fmt` would.
        cargo(&dir, &["fmt", "--check"]);
        cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2"]);

        let crate_name = name.replace('-', "_");
        let mut args = vec![
            "connector".to_owned(),
            "test".to_owned(),
            component(&crate_name),
            "--config".to_owned(),
            "test-config.json".to_owned(),
        ];
        if kind == "http" {
            args.extend(["--replay".to_owned(), "tests/tape".to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let tested = inlet(&dir, &args);
        let report = String::from_utf8_lossy(&tested.stdout).into_owned();
        assert!(tested.status.success(), "{kind}: {}", text(&tested));
        assert!(report.contains("checks passed"), "{report}");
        match kind {
            "pull" => {
                assert!(report.contains("first read: `events` 25 rows"), "{report}");
                assert!(
                    report.contains("1 incremental streams read nothing new"),
                    "{report}"
                );
            }
            "http" => {
                assert!(report.contains("first read: `items` 3 rows"), "{report}");
                assert!(
                    report.contains("1 incremental streams read nothing new"),
                    "{report}"
                );
            }
            _ => assert!(
                report.contains("ok    push: opens with the settings"),
                "{report}"
            ),
        }
    }

    // The pull connector's unit tests pass natively, and a sync lands its rows, then resumes.
    let pull = root.path().join("scaffold-pull");
    // The native target the connectors' unit tests use (run.sh), so nothing is compiled twice.
    let rustc = Command::new("rustc").arg("-vV").output().unwrap();
    let host_triple = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap();
    cargo(&pull, &["test", "--lib", "--target", &host_triple]);
    let wasm = component("scaffold_pull");
    for (round, expected) in [(1, "25"), (2, "0")] {
        let synced = inlet(
            &pull,
            &[
                "sync",
                &wasm,
                "--to",
                "lake",
                "--config",
                "test-config.json",
            ],
        );
        assert!(synced.status.success(), "round {round}: {}", text(&synced));
        let said = String::from_utf8_lossy(&synced.stderr);
        // The summary's total line: connection, `(total)`, rows, files, bytes.
        let rows = said
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.get(1) == Some(&"(total)"))
            .map(|words| words[2].to_owned());
        assert_eq!(rows.as_deref(), Some(expected), "round {round}: {said}");
    }
}

#[test]
fn a_bad_name_or_a_used_folder_is_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let bad = inlet(root.path(), &["connector", "new", "Acme_Orders"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("`Acme_Orders` is not a connector name: use lowercase letters"),
        "{}",
        text(&bad)
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);

    std::fs::create_dir(root.path().join("taken")).unwrap();
    std::fs::write(root.path().join("taken/keep.txt"), "mine").unwrap();
    let taken = inlet(
        root.path(),
        &[
            "connector",
            "new",
            "acme",
            "--dir",
            "taken",
            "--sdk",
            "../sdk-missing",
        ],
    );
    assert!(!taken.status.success());
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("exists and is not empty"),
        "{}",
        text(&taken)
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );

    let no_sdk = inlet(
        root.path(),
        &[
            "connector",
            "new",
            "acme",
            "--sdk",
            root.path().to_str().unwrap(),
        ],
    );
    assert!(!no_sdk.status.success());
    assert!(
        String::from_utf8_lossy(&no_sdk.stderr).contains("is not the SDK"),
        "{}",
        text(&no_sdk)
    );
}

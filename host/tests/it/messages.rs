//! Golden tests of what the CLI says about common mistakes: each `tests/ui/cli/X.cmd` (one
//! command line, split on spaces) runs in a fresh folder (with `X.toml` as `inlet.toml` and the
//! commands of `X.setup` run first, when present) and must fail with exactly the stderr in
//! `X.err` (log lines left out: they carry timestamps). `INLET_BLESS=1` rewrites the `.err` files.

use super::{inlet, text};
use std::path::Path;

#[test]
fn cli_mistakes_get_the_expected_messages() {
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/cli");
    let bless = std::env::var_os("INLET_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&cases_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cmd"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the golden cases are present");
    let mut mismatches = Vec::new();
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.wasm"), "not a component").unwrap();
        if let Ok(config) = std::fs::read_to_string(case.with_extension("toml")) {
            std::fs::write(dir.path().join("inlet.toml"), config).unwrap();
        }
        let run = |line: &str| inlet(dir.path(), &line.split_whitespace().collect::<Vec<_>>());
        if let Ok(setup) = std::fs::read_to_string(case.with_extension("setup")) {
            for line in setup.lines().filter(|l| !l.trim().is_empty()) {
                let output = run(line);
                assert!(output.status.success(), "setup `{line}`: {}", text(&output));
            }
        }
        let line = std::fs::read_to_string(&case).unwrap();
        let output = run(line.trim());
        assert!(
            !output.status.success(),
            "{} should fail: {}",
            case.display(),
            text(&output)
        );
        // Log lines carry timestamps; the golden part is what the user is told.
        let actual: String = String::from_utf8_lossy(&output.stderr)
            .replace(&dir.path().display().to_string(), "$DIR")
            .lines()
            .filter(|line| !is_log_line(line))
            .map(|line| format!("{line}\n"))
            .collect();
        let golden = case.with_extension("err");
        if bless {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            mismatches.push(format!(
                "--- {}\n{expected}+++ actual\n{actual}",
                golden.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches (INLET_BLESS=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

/// `2026-11-29T09:22:19.332640Z  WARN ...`: a tracing line.
fn is_log_line(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() > 28
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && line[..30].contains("Z ")
}

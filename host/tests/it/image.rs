//! The container image's build steps, run as the script the Dockerfile runs (no Docker engine
//! runs here): the staged binary works, every built-in connector is in the staged compile cache
//! (a second process compiles nothing), and the Dockerfile copies what the script staged to where
//! the image looks for it.

use super::text;
use std::path::Path;

#[test]
fn the_image_stages_a_binary_and_a_complete_compile_cache() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tempfile::tempdir().unwrap();
    let staged = std::process::Command::new(root.join("deploy/stage-image.sh"))
        .arg(out.path())
        .env("INLET_BINARY", env!("CARGO_BIN_EXE_inlet"))
        .output()
        .unwrap();
    assert!(staged.status.success(), "{}", text(&staged));
    let said = String::from_utf8_lossy(&staged.stdout);
    let compiled = said.lines().filter(|l| l.ends_with(": compiled")).count();
    assert_eq!(compiled, 7, "every built-in connector: {said}");
    assert!(said.contains("staged"), "{said}");

    // What a cold start of the image does: a new process, the cache from the image.
    let spec = std::process::Command::new(out.path().join("bin/inlet"))
        .args(["spec", "sample"])
        .env("INLET_CACHE_DIR", out.path().join("cache"))
        .output()
        .unwrap();
    assert!(spec.status.success(), "{}", text(&spec));
    let again = std::process::Command::new(out.path().join("bin/inlet"))
        .args(["precompile"])
        .env("INLET_CACHE_DIR", out.path().join("cache"))
        .output()
        .unwrap();
    let again = String::from_utf8_lossy(&again.stdout);
    assert_eq!(
        again
            .lines()
            .filter(|l| l.ends_with(": in the cache"))
            .count(),
        7,
        "a new process finds every connector compiled: {again}"
    );

    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    for line in [
        "RUN deploy/stage-image.sh /out",
        "COPY --from=build /out/bin/inlet /usr/local/bin/inlet",
        "COPY --from=build /out/cache /opt/inlet/cache",
        "ENV INLET_CACHE_DIR=/opt/inlet/cache",
        "USER nonroot",
    ] {
        assert!(
            dockerfile.lines().any(|l| l.trim() == line),
            "the Dockerfile lacks `{line}`"
        );
    }
}

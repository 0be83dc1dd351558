//! Loading components: clear errors for files that are not connectors, and the compile cache.

use crate::harness::runtime;
use inlet_host::runtime::{CacheOutcome, LoadError, Runtime, RuntimeOptions};
use inlet_tests::guests::{MISBEHAVE, WRONG_WORLD};

#[test]
fn a_file_that_is_not_webassembly_is_named() {
    let error = runtime()
        .load("notes.txt", b"hello, I am text")
        .err()
        .expect("text is refused");
    assert!(matches!(error, LoadError::NotWasm { .. }));
    assert_eq!(
        error.to_string(),
        "`notes.txt` is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)"
    );
}

#[test]
fn a_core_module_is_told_to_build_a_component() {
    let core_module = b"\0asm\x01\0\0\0";
    let error = runtime()
        .load("old.wasm", core_module)
        .err()
        .expect("core modules are refused");
    assert!(matches!(error, LoadError::CoreModule { .. }));
    assert!(error.to_string().contains("wasm32-wasip2"), "{error}");
}

#[test]
fn a_component_of_another_world_is_named() {
    let bytes = std::fs::read(WRONG_WORLD).unwrap();
    let error = runtime()
        .load("other.wasm", &bytes)
        .err()
        .expect("other worlds are refused");
    let message = error.to_string();
    assert!(matches!(error, LoadError::WrongWorld { .. }));
    assert!(
        message.contains("inlet:connector/source@0.1.0") && message.contains("answer"),
        "{message}"
    );
}

#[test]
fn second_load_hits_the_compile_cache() {
    let cache = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(MISBEHAVE).unwrap();
    let first = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_owned()),
    })
    .unwrap();
    assert_eq!(
        first.load("m", &bytes).unwrap().cache_outcome(),
        CacheOutcome::Compiled
    );
    let second = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_owned()),
    })
    .unwrap();
    assert_eq!(
        second.load("m", &bytes).unwrap().cache_outcome(),
        CacheOutcome::Hit
    );
}

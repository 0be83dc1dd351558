//! The on-disk cache of compiled components, so a second start of a connector skips compilation.
//!
//! Entries are keyed by the SHA-256 of the component bytes and by the engine's compatibility hash
//! (wasmtime version and every setting that changes machine code). Only artifacts this cache wrote
//! are ever loaded: the directory belongs to Inlet, and each entry is written to a temporary file
//! and renamed into place, so a crash never leaves a half-written entry behind.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The compile cache.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a previously compiled artifact.
    Hit,
    /// Compiled now (and stored, when the cache has a directory).
    Compiled,
}

impl CompileCache {
    /// A cache in `dir`, or no cache at all when `dir` is `None`.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("wasmtime{}-{:016x}", wasmtime_version(), hasher.finish());
        Self { dir, engine_key }
    }

    /// The default location: `$INLET_CACHE_DIR`, else `$XDG_CACHE_HOME/inlet`, else `~/.cache/inlet`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("INLET_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(PathBuf::from(dir).join("inlet"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/inlet"))
    }

    /// Returns the compiled component for `bytes`, compiling and storing it on a miss.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome, String)> {
        let digest = hex(&Sha256::digest(bytes));
        let Some(path) = self.entry_path(&digest) else {
            return Ok((
                Component::new(engine, bytes)?,
                CacheOutcome::Compiled,
                digest,
            ));
        };
        if path.is_file() {
            // SAFETY: the file was produced by `Engine::precompile_component` of an engine with the
            // same compatibility hash (it is part of the file name), and written atomically.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit, digest)),
                Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", path.display()),
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = write_atomically(&path, &compiled) {
            tracing::warn!(
                "could not store compiled component in {}: {e}",
                path.display()
            );
        }
        // SAFETY: `compiled` was just produced by this engine.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, CacheOutcome::Compiled, digest))
    }

    fn entry_path(&self, digest: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| {
            dir.join("components")
                .join(format!("{digest}-{}.cwasm", self.engine_key))
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{}.{}.tmp", std::process::id(), rand_suffix()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn wasmtime_version() -> &'static str {
    // Matches the `=48.0.8` pin in the workspace manifest; the compatibility hash covers the rest.
    "48"
}

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

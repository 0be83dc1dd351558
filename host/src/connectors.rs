//! Finding a connector component: a built-in name (embedded at build time) or a path to a `.wasm`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// First-party connectors, built from `connectors/` by `build.rs` and embedded in the binary.
const BUILTIN: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/builtin_connectors.rs"));

/// A connector, by built-in name or by file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorRef {
    /// A first-party connector embedded in this binary.
    Builtin(&'static str),
    /// A component file.
    File(PathBuf),
}

/// Why a connector reference does not lead to a component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    #[error(
        "connector `{reference}` is neither a built-in connector ({builtins}) nor a `.wasm` path"
    )]
    UnknownName { reference: String, builtins: String },
    #[error("connector file `{}` does not exist", path.display())]
    MissingFile { path: PathBuf },
}

impl ConnectorRef {
    /// Resolves `reference`: a built-in name, or a path (relative to `base`) when it contains a
    /// path separator or ends in `.wasm`.
    pub fn resolve(reference: &str, base: &Path) -> Result<Self, ResolveError> {
        let looks_like_path =
            reference.contains('/') || reference.contains('\\') || reference.ends_with(".wasm");
        if !looks_like_path {
            return BUILTIN
                .iter()
                .find(|(name, _)| *name == reference)
                .map(|(name, _)| ConnectorRef::Builtin(name))
                .ok_or_else(|| ResolveError::UnknownName {
                    reference: reference.to_owned(),
                    builtins: builtin_names().join(", "),
                });
        }
        let path = base.join(reference);
        if !path.is_file() {
            return Err(ResolveError::MissingFile { path });
        }
        Ok(ConnectorRef::File(path))
    }

    /// The name used in messages: the built-in name or the file name.
    pub fn display_name(&self) -> String {
        match self {
            ConnectorRef::Builtin(name) => (*name).to_owned(),
            ConnectorRef::File(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }

    /// The component bytes.
    pub fn bytes(&self) -> std::io::Result<Cow<'static, [u8]>> {
        match self {
            ConnectorRef::Builtin(name) => {
                let (_, bytes) = BUILTIN
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect("resolved built-ins exist");
                Ok(Cow::Borrowed(bytes))
            }
            ConnectorRef::File(path) => std::fs::read(path).map(Cow::Owned),
        }
    }
}

/// Names of the built-in connectors.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

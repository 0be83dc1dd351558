//! `inlet connector new`: writes a connector crate that builds, with one `cargo build --release
//! --target wasm32-wasip2`, into a component that `inlet connector test` passes as generated.
//! The templates are compiled into the binary, so the command works wherever `inlet` runs.

use std::path::{Component, Path, PathBuf};

/// What the new connector does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A source the host asks to read (an incremental stream, no network).
    Pull,
    /// A source reading an HTTP JSON API (a declared origin, a secret key, pages, a replay tape).
    Http,
    /// A receiver of pushed requests (webhooks, drains) under `inlet serve`.
    Push,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct Options {
    /// The connector's name: lowercase letters, digits and dashes, starting with a letter.
    pub name: String,
    /// The folder to create (default: `./<name>`).
    pub dir: Option<PathBuf>,
    /// The template.
    pub kind: Kind,
    /// The `sdk/` folder of an Inlet checkout, when the new crate is outside one.
    pub sdk: Option<PathBuf>,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    /// The crate's folder.
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// The SDK the crate depends on, as written in its Cargo.toml.
    pub sdk_path: String,
    /// The component `cargo build --release --target wasm32-wasip2` makes, relative to `dir`.
    pub component: PathBuf,
}

/// Why nothing was created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "`{0}` is not a connector name: use lowercase letters, digits and dashes, starting with a letter (e.g. `acme-orders`)"
    )]
    Name(String),
    #[error("`{}` exists and is not empty: choose another --dir", .0.display())]
    NotEmpty(PathBuf),
    #[error("`{}` is not the SDK: {reason}", path.display())]
    NotSdk { path: PathBuf, reason: String },
    #[error(
        "inlet-sdk is not published yet and no Inlet checkout was found above `{}`: pass --sdk PATH to the `sdk/` folder of a checkout (git clone https://github.com/inlet-dev/inlet)",
        .0.display()
    )]
    NoSdk(PathBuf),
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A file of a template: its path in the new crate, and its text with `{{...}}` fields.
type Template = (&'static str, &'static str);

const COMMON: &[Template] = &[
    (
        "Cargo.toml",
        include_str!("templates/common/Cargo.toml.tmpl"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("templates/common/rust-toolchain.toml.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("templates/common/gitignore.tmpl"),
    ),
];

const PULL: &[Template] = &[
    ("src/lib.rs", include_str!("templates/pull/lib.rs.tmpl")),
    ("README.md", include_str!("templates/pull/README.md.tmpl")),
    (
        "test-config.json",
        include_str!("templates/pull/test-config.json.tmpl"),
    ),
];

const HTTP: &[Template] = &[
    ("src/lib.rs", include_str!("templates/http/lib.rs.tmpl")),
    ("README.md", include_str!("templates/http/README.md.tmpl")),
    (
        "test-config.json",
        include_str!("templates/http/test-config.json.tmpl"),
    ),
    (
        "tests/tape/0001-get-api.example.com.json",
        include_str!("templates/http/tape/0001-get-api.example.com.json.tmpl"),
    ),
    (
        "tests/tape/0002-get-api.example.com.json",
        include_str!("templates/http/tape/0002-get-api.example.com.json.tmpl"),
    ),
    (
        "tests/tape/0003-get-api.example.com.json",
        include_str!("templates/http/tape/0003-get-api.example.com.json.tmpl"),
    ),
    (
        "tests/tape/0004-get-api.example.com.json",
        include_str!("templates/http/tape/0004-get-api.example.com.json.tmpl"),
    ),
];

const PUSH: &[Template] = &[
    ("src/lib.rs", include_str!("templates/push/lib.rs.tmpl")),
    ("README.md", include_str!("templates/push/README.md.tmpl")),
    (
        "test-config.json",
        include_str!("templates/push/test-config.json.tmpl"),
    ),
];

/// Where the SDK tutorial lives, for the generated README.
const TUTORIAL: &str = "https://github.com/inlet-dev/inlet/blob/main/sdk/README.md";

/// Creates the crate `options` describe; `cwd` anchors relative paths.
pub fn create(options: &Options, cwd: &Path) -> Result<Created, ScaffoldError> {
    check_name(&options.name)?;
    let dir = absolute(
        cwd,
        options.dir.as_deref().unwrap_or(Path::new(&options.name)),
    );
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ScaffoldError::NotEmpty(dir));
    }
    let sdk = match &options.sdk {
        Some(path) => {
            let path = absolute(cwd, path);
            check_sdk(&path)?;
            path
        }
        None => find_sdk(&dir).ok_or_else(|| ScaffoldError::NoSdk(dir.clone()))?,
    };
    // Relative inside the checkout (the crate moves with it), absolute from anywhere else.
    let checkout = sdk.parent().unwrap_or(&sdk);
    let sdk_path = if dir.starts_with(checkout) {
        relative_to(&sdk, &dir)
    } else {
        sdk.to_string_lossy().into_owned()
    };
    let crate_name = options.name.replace('-', "_");
    let fields = [
        ("{{name}}", options.name.as_str()),
        ("{{crate_name}}", crate_name.as_str()),
        (
            "{{sdk_dependency}}",
            &format!("{{ path = {} }}", toml_string(&sdk_path)),
        ),
        (
            "{{sdk_comment}}",
            "The SDK from an Inlet checkout; once it is published: inlet-sdk = \"0.1\"",
        ),
        ("{{tutorial}}", TUTORIAL),
    ];
    let kind_files = match options.kind {
        Kind::Pull => PULL,
        Kind::Http => HTTP,
        Kind::Push => PUSH,
    };
    let mut files = Vec::new();
    for (relative, template) in COMMON.iter().chain(kind_files) {
        let text = fields
            .iter()
            .fold((*template).to_owned(), |text, (field, value)| {
                text.replace(field, value)
            });
        let path = dir.join(relative);
        let write_error = |source| ScaffoldError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        std::fs::write(&path, text).map_err(write_error)?;
        files.push(PathBuf::from(relative));
    }
    Ok(Created {
        component: Path::new("target/wasm32-wasip2/release").join(format!("{crate_name}.wasm")),
        dir,
        files,
        sdk_path,
    })
}

/// The spec's naming rule: lowercase letters, digits and dashes, starting with a letter.
fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let good = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 64;
    if good {
        Ok(())
    } else {
        Err(ScaffoldError::Name(name.to_owned()))
    }
}

/// Whether `path` is the SDK crate's folder.
fn check_sdk(path: &Path) -> Result<(), ScaffoldError> {
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| ScaffoldError::NotSdk {
        path: path.to_owned(),
        reason: format!("cannot read {}: {e}", manifest.display()),
    })?;
    if text.lines().any(|l| l.trim() == "name = \"inlet-sdk\"") {
        Ok(())
    } else {
        Err(ScaffoldError::NotSdk {
            path: path.to_owned(),
            reason: "its Cargo.toml is not the `inlet-sdk` package".to_owned(),
        })
    }
}

/// The SDK of the Inlet checkout `dir` is in, else of the checkout this binary was built from.
fn find_sdk(dir: &Path) -> Option<PathBuf> {
    let enclosing = dir
        .ancestors()
        .map(|a| a.join("sdk"))
        .find(|sdk| check_sdk(sdk).is_ok());
    enclosing.or_else(|| {
        let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        check_sdk(&built_from)
            .is_ok()
            .then(|| normalize(&built_from))
    })
}

/// `path` against `cwd` when relative, with `.` and `..` resolved.
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    normalize(&cwd.join(path))
}

/// `.` and `..` resolved without touching the file system (the path may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `target` written relative to `from` (both absolute), with `/` separators.
fn relative_to(target: &Path, from: &Path) -> String {
    let target: Vec<_> = target.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = target.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_rule() {
        for good in ["acme", "acme-orders", "a1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme", "1acme", "acme_orders", "acme-", "acme orders"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        assert_eq!(
            relative_to(Path::new("/r/inlet/sdk"), Path::new("/r/inlet/examples/x")),
            "../../sdk"
        );
        assert_eq!(
            relative_to(Path::new("/r/inlet/sdk"), Path::new("/home/me/x")),
            "../../../r/inlet/sdk"
        );
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
    }

    #[test]
    fn every_kind_writes_a_crate_with_the_sdk_by_path_and_refuses_to_overwrite() {
        let root = tempfile::tempdir().unwrap();
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        for kind in [Kind::Pull, Kind::Http, Kind::Push] {
            let options = Options {
                name: "acme-orders".into(),
                dir: Some(format!("{kind:?}").into()),
                kind,
                sdk: Some(sdk.clone()),
            };
            let created = create(&options, root.path()).unwrap();
            let manifest = std::fs::read_to_string(created.dir.join("Cargo.toml")).unwrap();
            assert!(manifest.contains("name = \"acme-orders\""), "{manifest}");
            assert!(manifest.contains("inlet-sdk = { path = \"/"), "{manifest}");
            for file in &created.files {
                let text = std::fs::read_to_string(created.dir.join(file)).unwrap();
                for field in ["{{name}}", "{{crate_name}}", "{{sdk_", "{{tutorial}}"] {
                    assert!(!text.contains(field), "{field} left in {}", file.display());
                }
            }
            let lib = std::fs::read_to_string(created.dir.join("src/lib.rs")).unwrap();
            assert!(lib.contains("\"acme-orders\""));
            assert!(created.files.contains(&PathBuf::from("test-config.json")));
            assert_eq!(
                created.component,
                Path::new("target/wasm32-wasip2/release/acme_orders.wasm")
            );
            assert!(matches!(
                create(&options, root.path()),
                Err(ScaffoldError::NotEmpty(_))
            ));
        }
        // Inside a checkout, the path is relative.
        let inside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-unit-test");
        let _ = std::fs::remove_dir_all(&inside);
        let created = create(
            &Options {
                name: "inside".into(),
                dir: Some(inside.clone()),
                kind: Kind::Pull,
                sdk: None,
            },
            root.path(),
        )
        .unwrap();
        assert_eq!(created.sdk_path, "../../sdk");
        std::fs::remove_dir_all(&inside).unwrap();
        let not_sdk = Options {
            name: "x".into(),
            dir: Some("other".into()),
            kind: Kind::Pull,
            sdk: Some(root.path().to_owned()),
        };
        assert!(matches!(
            create(&not_sdk, root.path()),
            Err(ScaffoldError::NotSdk { .. })
        ));
    }
}

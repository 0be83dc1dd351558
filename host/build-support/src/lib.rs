//! Compiles a workspace of connector components from a build script, so that `cargo build` of the
//! host (or of the tests) is the only command anyone runs: the `.wasm` files follow their sources.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A component built from a workspace member.
#[derive(Debug, Clone)]
pub struct BuiltComponent {
    /// The member's folder name (`sample`, `net-probe`).
    pub name: String,
    /// The built `.wasm` file.
    pub wasm: PathBuf,
}

/// Builds every member of the wasm32-wasip2 workspace at `workspace` in release mode, into
/// `target_dir` (shared between component workspaces, so dependencies compile once), and returns
/// the components, one per member folder. Asks cargo to re-run the build script when a member, the
/// SDK or the WIT changes.
///
/// # Panics
/// When cargo fails: a build script has no better way to report it.
pub fn build_components(
    workspace: &Path,
    target_dir: &Path,
    also_watch: &[&Path],
) -> Vec<BuiltComponent> {
    let workspace = workspace
        .canonicalize()
        .expect("the component workspace exists");
    let members = member_dirs(&workspace);
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    for member in &members {
        println!(
            "cargo:rerun-if-changed={}",
            member.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", member.join("src").display());
    }
    for path in also_watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--workspace",
            "--target-dir",
        ])
        .arg(target_dir);
    // The outer build's settings belong to the host target, not to the components.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("cargo can be started");
    assert!(
        status.success(),
        "building the components in {} failed",
        workspace.display()
    );

    let out = target_dir.join("wasm32-wasip2/release");
    members
        .iter()
        .map(|member| {
            let name = member.file_name().unwrap().to_string_lossy().into_owned();
            let package = package_name(member);
            let wasm = out.join(format!("{}.wasm", package.replace('-', "_")));
            assert!(
                wasm.exists(),
                "expected component {} after the build",
                wasm.display()
            );
            BuiltComponent { name, wasm }
        })
        .collect()
}

/// The target the components compile to.
const WASM_TARGET: &str = "wasm32-wasip2";

/// Makes sure the toolchain can compile for [`WASM_TARGET`]: `rust-toolchain.toml` lists it, but
/// rustup does not add a toolchain file's targets to a toolchain that is already installed. Adds
/// it with rustup when rustup is there; otherwise stops with the one command that fixes it.
///
/// # Panics
/// When the target is missing and cannot be added.
pub fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let installed = |rustc: &str| {
        Command::new(rustc)
            .args(["--print", "sysroot"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                Path::new(&sysroot)
                    .join("lib/rustlib")
                    .join(WASM_TARGET)
                    .join("lib")
                    .is_dir()
            })
    };
    if installed(&rustc) != Some(false) {
        return;
    }
    println!(
        "cargo:warning=adding the {WASM_TARGET} target with rustup (the connectors compile to it)"
    );
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .is_ok_and(|status| status.success());
    if !added || installed(&rustc) == Some(false) {
        panic!(
            "the Rust target {WASM_TARGET} is not installed and could not be added: run `rustup target add {WASM_TARGET}` and build again"
        );
    }
}

fn member_dirs(workspace: &Path) -> Vec<PathBuf> {
    let mut members: Vec<PathBuf> = std::fs::read_dir(workspace)
        .expect("the component workspace can be listed")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    members.sort();
    members
}

fn package_name(member: &Path) -> String {
    let manifest =
        std::fs::read_to_string(member.join("Cargo.toml")).expect("member manifest is readable");
    manifest
        .lines()
        .find_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("name")?
                .trim_start()
                .strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_owned())
        })
        .expect("member manifest has a package name")
}

/// Writes `components` as a Rust array of `(name, bytes)` pairs into `OUT_DIR/<file>`.
pub fn write_embedded_table(file: &str, components: &[BuiltComponent]) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    let mut code = String::from("&[\n");
    for component in components {
        code.push_str(&format!(
            "    ({:?}, include_bytes!({:?}).as_slice()),\n",
            component.name,
            component.wasm.display().to_string()
        ));
    }
    code.push(']');
    std::fs::write(out.join(file), code).expect("OUT_DIR is writable");
}

/// Writes `components` as `pub const NAME: &str = "path";` constants into `OUT_DIR/<file>`.
pub fn write_path_constants(file: &str, components: &[BuiltComponent]) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    let mut code = String::new();
    for component in components {
        let constant = component.name.to_uppercase().replace('-', "_");
        code.push_str(&format!(
            "/// The built `{}` component.\npub const {constant}: &str = {:?};\n",
            component.name,
            component.wasm.display().to_string()
        ));
    }
    std::fs::write(out.join(file), code).expect("OUT_DIR is writable");
}

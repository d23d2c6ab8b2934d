//! Builds WebAssembly guests of a workspace for `wasm32-wasip2` from a build script. Shared by
//! the build scripts of `reqsync-project` (the default modules the binary embeds) and
//! `reqsync-test-guests` (the test suite's guests), which include this file with `#[path]`.
//!
//! The guests build in their own target directory: the outer cargo holds the lock on the main
//! one while build scripts run.

use std::path::Path;
use std::process::Command;

/// The default transform modules (package, the variable that hands its path to the crate):
/// embedded by `reqsync-project`, loaded from their files by tests and benches.
pub const DEFAULT_MODULES: [(&str, &str); 2] = [
    ("transform-patients", "REQSYNC_PATIENTS_WASM"),
    ("transform-vaccine-doses", "REQSYNC_VACCINE_DOSES_WASM"),
];

/// Builds `guests` (package, env var) of the workspace at `workspace` for `wasm32-wasip2` and
/// hands each module's path to the crate in its variable.
pub fn build_guests(workspace: &Path, target_dir: &Path, guests: &[(&str, &str)]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target_dir);
    for (package, _) in guests {
        cmd.args(["-p", package]);
    }
    // Flags meant for the host build (coverage, sanitizers, target-cpu) must not leak into the
    // wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("cannot run cargo to build the transform modules");
    if !status.success() {
        panic!(
            "building the transform modules in {} failed; is the wasm32-wasip2 target installed? \
             (`rustup target add wasm32-wasip2`, or `rustup toolchain install` in the repo)",
            workspace.display()
        );
    }
    for (package, var) in guests {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let path = target_dir.join("wasm32-wasip2").join("release").join(file);
        assert!(path.is_file(), "missing {}", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

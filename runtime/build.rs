//! Builds the default transform modules (`transforms/`) for `wasm32-wasip2`, so that
//! `reqsync init` and `reqsync demo` can write them into a project folder. The host never runs
//! these embedded copies: a run loads modules from the files its config names.
//!
//! The guests build in their own target directory: the outer cargo holds the lock on the main
//! one while build scripts run.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: [(&str, &str); 12] = [
    ("transform-patients", "REQSYNC_PATIENTS_WASM"),
    ("transform-vaccine-doses", "REQSYNC_VACCINE_DOSES_WASM"),
    // Sandbox test modules (tests/guests): built here so the test suite can load them; only
    // their paths reach the crate, the binary never embeds them.
    ("test-guest-hostile", "REQSYNC_TEST_GUEST_HOSTILE"),
    ("test-guest-capability", "REQSYNC_TEST_GUEST_CAPABILITY"),
    ("test-guest-swap-v1", "REQSYNC_TEST_GUEST_SWAP_V1"),
    ("test-guest-swap-v2", "REQSYNC_TEST_GUEST_SWAP_V2"),
    // One deliberate defect each, for the tests of `reqsync transform test`.
    ("test-guest-flawed-date", "REQSYNC_TEST_GUEST_FLAWED_DATE"),
    ("test-guest-flawed-state", "REQSYNC_TEST_GUEST_FLAWED_STATE"),
    ("test-guest-flawed-quote", "REQSYNC_TEST_GUEST_FLAWED_QUOTE"),
    ("test-guest-flawed-panic", "REQSYNC_TEST_GUEST_FLAWED_PANIC"),
    ("test-guest-flawed-field", "REQSYNC_TEST_GUEST_FLAWED_FIELD"),
    (
        "test-guest-flawed-long-name",
        "REQSYNC_TEST_GUEST_FLAWED_LONG_NAME",
    ),
];

/// Test guests that cannot be members of the main workspace: `tests/guests/wit-v1` carries its
/// own copy of a retired WIT package (and a guest that panics while the host loads it), with its
/// own lock file. Built like the others, into the same target directory.
const OUTSIDE_GUESTS: [(&str, &str); 2] = [
    ("test-guest-wit-v1", "REQSYNC_TEST_GUEST_WIT_V1"),
    (
        "test-guest-describe-panics",
        "REQSYNC_TEST_GUEST_DESCRIBE_PANICS",
    ),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("runtime/ is inside the workspace")
        .to_path_buf();
    for dir in ["guest-sdk", "transforms", "tests/guests", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("guests");
    build_guests(&root, &target_dir, &GUESTS);
    build_guests(
        &root.join("tests").join("guests").join("wit-v1"),
        &target_dir,
        &OUTSIDE_GUESTS,
    );
}

/// Builds `guests` (package, env var) of the workspace at `workspace` for `wasm32-wasip2` and
/// hands each module's path to the crate in its variable.
fn build_guests(workspace: &Path, target_dir: &Path, guests: &[(&str, &str)]) {
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

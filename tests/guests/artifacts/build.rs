//! Builds the test suite's WebAssembly guests (`tests/guests`) and the default modules for
//! `wasm32-wasip2`, and hands their paths to the crate (`src/lib.rs`). Only tests and benches
//! depend on this crate, so a change to a test guest rebuilds test binaries, never the `reqsync`
//! binary or the pipeline library.

use std::path::PathBuf;

#[path = "../../../project/build/wasm_guests.rs"]
mod wasm_guests;

const GUESTS: [(&str, &str); 10] = [
    // Sandbox test modules.
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
    let guests_dir = manifest_dir.parent().expect("inside tests/guests");
    let root = guests_dir
        .parent()
        .and_then(|tests| tests.parent())
        .expect("tests/guests/artifacts is inside the workspace")
        .to_path_buf();
    for dir in ["guest-sdk", "transforms", "tests/guests", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("project/build").display()
    );
    let target_dir = root.join("target").join("guests");
    // The default modules too (the same build as the one `reqsync-project` embeds): tests and
    // benches load them from their files.
    let guests: Vec<_> = wasm_guests::DEFAULT_MODULES
        .iter()
        .chain(&GUESTS)
        .copied()
        .collect();
    wasm_guests::build_guests(&root, &target_dir, &guests);
    wasm_guests::build_guests(&guests_dir.join("wit-v1"), &target_dir, &OUTSIDE_GUESTS);
}

//! Builds the default transform modules (`transforms/`) for `wasm32-wasip2`, so that
//! `reqsync init` and `reqsync demo` can write them into a project folder. The host never runs
//! these embedded copies: a run loads modules from the files its config names.

use std::path::PathBuf;

#[path = "build/wasm_guests.rs"]
mod wasm_guests;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("project/ is inside the workspace")
        .to_path_buf();
    for dir in ["guest-sdk", "transforms", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=build");
    wasm_guests::build_guests(
        &root,
        &root.join("target").join("guests"),
        &wasm_guests::DEFAULT_MODULES,
    );
}

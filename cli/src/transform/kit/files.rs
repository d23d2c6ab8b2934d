//! The files of the analyst's kit, compiled into the `reqsync` binary: the WIT world, the guest
//! SDK of each language and the default modules as starting points. `reqsync transform new`
//! writes them out, `reqsync transform build` refreshes the SDK's own files from them, so a
//! module folder builds anywhere without the reqsync repository — and always against the WIT
//! world of the `reqsync` that runs it.

/// One file of the kit: where it goes in a module folder, and its content.
#[derive(Debug, Clone, Copy)]
pub struct KitFile {
    pub path: &'static str,
    pub contents: &'static [u8],
}

/// `"dest" <= "source"`: the file at `source` (relative to the repository root) written at
/// `dest` (relative to the module folder).
macro_rules! kit_files {
    ($($dest:literal <= $src:literal),* $(,)?) => {
        &[$(KitFile {
            path: $dest,
            contents: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $src)),
        }),*]
    };
}

/// The WIT world every language builds against.
pub const WIT: &[KitFile] = kit_files!["wit/transform.wit" <= "guest-sdk/wit/transform.wit",];

/// The Rust guest SDK crate, as a path dependency of the module (its `Cargo.toml` is
/// [`RUST_SDK_MANIFEST`]: the repository's inherits from a workspace).
pub const RUST_SDK: &[KitFile] = kit_files![
    "sdk/reqsync-guest/README.md" <= "guest-sdk/README.md",
    "sdk/reqsync-guest/wit/transform.wit" <= "guest-sdk/wit/transform.wit",
    "sdk/reqsync-guest/src/lib.rs" <= "guest-sdk/src/lib.rs",
    "sdk/reqsync-guest/src/columns.rs" <= "guest-sdk/src/columns.rs",
    "sdk/reqsync-guest/src/engine.rs" <= "guest-sdk/src/engine.rs",
    "sdk/reqsync-guest/src/row.rs" <= "guest-sdk/src/row.rs",
    "sdk/reqsync-guest/src/types.rs" <= "guest-sdk/src/types.rs",
    "sdk/reqsync-guest/src/writer.rs" <= "guest-sdk/src/writer.rs",
    "sdk/reqsync-guest/src/rules/mod.rs" <= "guest-sdk/src/rules/mod.rs",
    "sdk/reqsync-guest/src/rules/codes.rs" <= "guest-sdk/src/rules/codes.rs",
    "sdk/reqsync-guest/src/rules/contact.rs" <= "guest-sdk/src/rules/contact.rs",
    "sdk/reqsync-guest/src/rules/date.rs" <= "guest-sdk/src/rules/date.rs",
    "sdk/reqsync-guest/src/rules/name.rs" <= "guest-sdk/src/rules/name.rs",
    "sdk/reqsync-guest/src/rules/text.rs" <= "guest-sdk/src/rules/text.rs",
    "sdk/reqsync-guest/src/testing/mod.rs" <= "guest-sdk/src/testing/mod.rs",
    "sdk/reqsync-guest/src/testing/strategies.rs" <= "guest-sdk/src/testing/strategies.rs",
];

pub const RUST_SDK_MANIFEST: &str = r#"# The reqsync guest SDK, written by `reqsync transform new` and refreshed by
# `reqsync transform build` to match the reqsync that builds the module. Not yours to edit:
# changes here are overwritten.
[package]
name = "reqsync-guest"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
license = "BSD-3-Clause"
publish = false

[features]
testing = ["dep:serde_json", "dep:serde", "dep:proptest"]

[dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc"] }
serde = { version = "1", features = ["derive"], optional = true }
serde_json = { version = "1", optional = true }
proptest = { version = "1.12", optional = true }
"#;

/// The default mapping rules both default modules share: the analyst's to change.
pub const RUST_CLINIC_RULES: &[KitFile] =
    kit_files!["clinic-rules/src/lib.rs" <= "transforms/clinic-rules/src/lib.rs",];

pub const RUST_CLINIC_RULES_MANIFEST: &str = r#"[package]
name = "clinic-rules"
description = "The default mapping rules shared by the patients and vaccine-doses transforms"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[dependencies]
reqsync-guest = { path = "../sdk/reqsync-guest" }

[dev-dependencies]
proptest = "1.12"
"#;

/// The default `patients` module in Rust.
pub const RUST_PATIENTS: &[KitFile] = kit_files![
    "src/lib.rs" <= "transforms/patients/src/lib.rs",
    "tests/properties.rs" <= "transforms/patients/tests/properties.rs",
    "examples.json" <= "transforms/patients/examples.json",
];

/// The default `vaccine-doses` module in Rust; its property tests also run the default
/// `patients` module (doses of a patient it rejects must be held back), shipped beside the SDK.
pub const RUST_VACCINE_DOSES: &[KitFile] = kit_files![
    "src/lib.rs" <= "transforms/vaccine-doses/src/lib.rs",
    "tests/properties.rs" <= "transforms/vaccine-doses/tests/properties.rs",
    "examples.json" <= "transforms/vaccine-doses/examples.json",
    "build.rs" <= "transforms/vaccine-doses/build.rs",
    "data/cvx_codes.csv" <= "transforms/vaccine-doses/data/cvx_codes.csv",
    "data/README.md" <= "transforms/vaccine-doses/data/README.md",
    "sdk/transform-patients/src/lib.rs" <= "transforms/patients/src/lib.rs",
    "sdk/transform-patients/examples.json" <= "transforms/patients/examples.json",
];

pub const RUST_PATIENTS_DEPENDENCY_MANIFEST: &str = r#"# The default patients module, which the vaccine-doses property tests run beside this module.
# Written by `reqsync transform new`; refreshed by `reqsync transform build`.
[package]
name = "transform-patients"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[dependencies]
reqsync-guest = { path = "../reqsync-guest" }
clinic-rules = { path = "../../clinic-rules" }

[dev-dependencies]
reqsync-guest = { path = "../reqsync-guest", features = ["testing"] }
serde_json = "1"
"#;

/// The Python glue to the WIT world and the value helpers (twins of the Rust SDK's).
pub const PYTHON_SDK: &[KitFile] = kit_files![
    "reqsync_guest.py" <= "guest-sdk/python/reqsync_guest.py",
    "value_rules.py" <= "guest-sdk/python/value_rules.py",
];

/// The default mapping rules both default modules share, in Python: the analyst's to change.
pub const PYTHON_CLINIC_RULES: &[KitFile] =
    kit_files!["clinic_rules.py" <= "transforms/clinic-rules/python/clinic_rules.py",];

/// The default `patients` module in Python.
pub const PYTHON_PATIENTS: &[KitFile] = kit_files![
    "app.py" <= "transforms/patients-py/app.py",
    "examples.json" <= "transforms/patients/examples.json",
];

/// The default `vaccine-doses` module in Python; the CVX list is read from the CSV when the
/// module is built.
pub const PYTHON_VACCINE_DOSES: &[KitFile] = kit_files![
    "app.py" <= "transforms/vaccine-doses-py/app.py",
    "cvx_codes.py" <= "transforms/vaccine-doses-py/cvx_codes.py",
    "cvx_codes.csv" <= "transforms/vaccine-doses/data/cvx_codes.csv",
    "examples.json" <= "transforms/vaccine-doses/examples.json",
];

/// The JavaScript glue to the WIT world and the value helpers (twins of the Rust SDK's).
pub const JAVASCRIPT_SDK: &[KitFile] = kit_files![
    "reqsync-guest.js" <= "guest-sdk/javascript/reqsync-guest.js",
    "rules.js" <= "guest-sdk/javascript/rules.js",
];

/// The default mapping rules both default modules share, in JavaScript.
pub const JAVASCRIPT_CLINIC_RULES: &[KitFile] =
    kit_files!["clinic-rules.js" <= "transforms/clinic-rules/javascript/clinic-rules.js",];

/// The default `patients` module in JavaScript.
pub const JAVASCRIPT_PATIENTS: &[KitFile] = kit_files![
    "patients.js" <= "transforms/patients-js/patients.js",
    "examples.json" <= "transforms/patients/examples.json",
];

/// The default `vaccine-doses` module in JavaScript; `transform build` runs its
/// `generate-cvx-codes.mjs` (the CSV into `cvx-codes.js`) before building.
pub const JAVASCRIPT_VACCINE_DOSES: &[KitFile] = kit_files![
    "vaccine-doses.js" <= "transforms/vaccine-doses-js/vaccine-doses.js",
    "generate-cvx-codes.mjs" <= "transforms/vaccine-doses-js/generate-cvx-codes.mjs",
    "cvx_codes.csv" <= "transforms/vaccine-doses/data/cvx_codes.csv",
    "examples.json" <= "transforms/vaccine-doses/examples.json",
];

/// The JavaScript build tool: written into the per-user toolchain folder, not the module's.
pub const JAVASCRIPT_TOOLCHAIN: &[KitFile] = kit_files![
    "build.mjs" <= "guest-sdk/javascript/build.mjs",
    "package.json" <= "guest-sdk/javascript/package.json",
    "package-lock.json" <= "guest-sdk/javascript/package-lock.json",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every source file of the guest SDK crate must be in the kit: a module built from the kit
    /// would otherwise fail to compile on a file the repository's build never misses.
    #[test]
    fn the_kit_ships_every_rust_sdk_source_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/src");
        let mut on_disk = BTreeSet::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("guest-sdk/src is readable") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path.strip_prefix(&root).expect("under src");
                    on_disk.insert(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let shipped: BTreeSet<String> = RUST_SDK
            .iter()
            .filter_map(|f| f.path.strip_prefix("sdk/reqsync-guest/src/"))
            .map(str::to_owned)
            .collect();
        assert_eq!(shipped, on_disk);
    }

    /// The kit's SDK manifest must ask for the dependency versions the repository builds with.
    #[test]
    fn the_kit_sdk_manifest_matches_the_workspace_dependencies() {
        let workspace =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
                .expect("the workspace manifest");
        let wit_bindgen = workspace
            .lines()
            .find(|l| l.starts_with("wit-bindgen"))
            .expect("wit-bindgen in [workspace.dependencies]");
        assert!(
            RUST_SDK_MANIFEST.contains(wit_bindgen),
            "the kit's SDK manifest should say `{wit_bindgen}`"
        );
        let sdk = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/Cargo.toml"),
        )
        .expect("the SDK manifest");
        // The optional dependencies (the `testing` feature's) at the same versions.
        for line in sdk
            .lines()
            .filter(|l| l.contains("optional = true") && !l.contains("workspace = true"))
        {
            assert!(RUST_SDK_MANIFEST.contains(line), "missing `{line}`");
        }
    }
}

//! The analyst's kit: `reqsync transform new` writes a module folder outside any repository,
//! `transform build` builds it with the kit's own toolchains (componentize-py and
//! componentize-js installed on first use, the user's cargo for Rust), `transform test` passes
//! on what was built, and `transform dev --once` deploys into a project only what passed.
//!
//! The toolchains go into one folder under the test target (`--toolchain-dir`), installed by the
//! first test that needs them and reused by later runs; Rust builds share one cargo target
//! folder for the same reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::support::{World, module_cache_dir, xdg_state_home};

/// The default toolchain folder under the tests' XDG_CACHE_HOME, which the tutorial's test uses
/// too: one install of each toolchain per target folder.
fn toolchain_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache/reqsync/toolchains")
}

/// `reqsync transform ARGS…` in `dir`, with the shared toolchains, module cache and Rust target.
fn transform(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .arg("transform")
        .args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", xdg_state_home())
        .env(
            "XDG_CACHE_HOME",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
        )
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kit-rust-target"),
        )
        .env_remove("REQSYNC_LOG")
        .output()
        .expect("run reqsync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns stdout.
fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

/// `new`, then `build` with the shared toolchains; returns the built module's path.
fn new_and_build(parent: &Path, folder: &str, lang: &str, from: &str, name: &str) -> PathBuf {
    ok(&transform(
        parent,
        &["new", folder, "--lang", lang, "--from", from],
    ));
    let tools = toolchain_dir();
    let built = ok(&transform(
        parent,
        &[
            "build",
            folder,
            "--toolchain-dir",
            tools.to_str().expect("utf-8"),
            "--cache-dir",
            module_cache_dir().to_str().expect("utf-8"),
        ],
    ));
    assert!(built.starts_with(&format!("built {name} ")), "{built}");
    let module = parent
        .join(folder)
        .join("build")
        .join(format!("{name}.wasm"));
    assert!(module.is_file(), "{}", module.display());
    assert!(
        parent
            .join(folder)
            .join("build")
            .join(format!("{name}.examples.json"))
            .is_file(),
        "the example cases are copied beside the module"
    );
    module
}

/// `transform test` on a built module, with a fixed seed.
fn passes_its_tests(dir: &Path, module: &Path) {
    let out = ok(&transform(
        dir,
        &[
            "test",
            module.to_str().expect("utf-8"),
            "--cases",
            "100",
            "--seed",
            "7",
            "--cache-dir",
            module_cache_dir().to_str().expect("utf-8"),
        ],
    ));
    assert!(out.trim_end().ends_with("PASS"), "{out}");
}

#[test]
fn a_new_module_folder_has_everything_to_build_outside_the_repository() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (lang, from, expected) in [
        (
            "rust",
            "patients",
            &[
                "Cargo.toml",
                "src/lib.rs",
                "clinic-rules/src/lib.rs",
                "sdk/reqsync-guest/src/lib.rs",
                "sdk/reqsync-guest/wit/transform.wit",
                "rust-toolchain.toml",
                "tests/properties.rs",
            ][..],
        ),
        (
            "rust",
            "vaccine-doses",
            &[
                "build.rs",
                "data/cvx_codes.csv",
                "sdk/transform-patients/src/lib.rs",
            ][..],
        ),
        (
            "python",
            "patients",
            &[
                "app.py",
                "clinic_rules.py",
                "reqsync_guest.py",
                "value_rules.py",
                "wit/transform.wit",
            ][..],
        ),
        (
            "js",
            "patients",
            &[
                "patients.js",
                "clinic-rules.js",
                "reqsync-guest.js",
                "rules.js",
                "wit/transform.wit",
            ][..],
        ),
        (
            "python",
            "vaccine-doses",
            &["app.py", "clinic_rules.py", "cvx_codes.py", "cvx_codes.csv"][..],
        ),
        (
            "js",
            "vaccine-doses",
            &[
                "vaccine-doses.js",
                "clinic-rules.js",
                "generate-cvx-codes.mjs",
                "cvx_codes.csv",
            ][..],
        ),
    ] {
        let folder = format!("{lang}-{from}");
        ok(&transform(
            dir.path(),
            &["new", &folder, "--lang", lang, "--from", from],
        ));
        for file in [
            "reqsync-module.toml",
            "README.md",
            "examples.json",
            ".gitignore",
        ]
        .iter()
        .chain(expected)
        {
            let path = dir.path().join(&folder).join(file);
            assert!(
                path.is_file(),
                "{lang} {from}: {} is missing",
                path.display()
            );
            assert!(
                !std::fs::symlink_metadata(&path)
                    .expect("meta")
                    .file_type()
                    .is_symlink(),
                "{}: a link would point into a repository the analyst does not have",
                path.display()
            );
        }
        let manifest =
            std::fs::read_to_string(dir.path().join(&folder).join("reqsync-module.toml"))
                .expect("manifest");
        assert!(
            manifest.contains(&format!("name = \"{from}\"")),
            "{manifest}"
        );
    }
    // A second `new` into a folder with files is refused and changes nothing.
    let app = dir.path().join("python-patients/app.py");
    std::fs::write(&app, "# the analyst's work").expect("edit");
    let again = transform(dir.path(), &["new", "python-patients", "--lang", "python"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&app).expect("read"),
        "# the analyst's work"
    );
}

#[test]
fn a_python_vaccine_doses_module_from_the_kit_builds_and_passes_its_tests() {
    // Its CVX list is read from the CSV beside it while componentize-py builds it.
    let dir = tempfile::tempdir().expect("temp dir");
    let module = new_and_build(
        dir.path(),
        "rules",
        "python",
        "vaccine-doses",
        "vaccine-doses",
    );
    passes_its_tests(dir.path(), &module);
}

#[test]
fn a_javascript_vaccine_doses_module_from_the_kit_builds_and_passes_its_tests() {
    // Its generate-cvx-codes.mjs turns the CSV into JavaScript before componentize-js runs.
    let dir = tempfile::tempdir().expect("temp dir");
    let module = new_and_build(dir.path(), "rules", "js", "vaccine-doses", "vaccine-doses");
    assert!(dir.path().join("rules/cvx-codes.js").is_file());
    passes_its_tests(dir.path(), &module);
}

#[test]
fn a_rust_vaccine_doses_module_from_the_kit_builds_and_passes_its_tests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = new_and_build(
        dir.path(),
        "doses",
        "rust",
        "vaccine-doses",
        "vaccine-doses",
    );
    passes_its_tests(dir.path(), &module);
}

#[test]
fn a_build_restores_the_kits_own_files_and_leaves_the_analysts_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    ok(&transform(dir.path(), &["new", "m", "--lang", "python"]));
    let glue = dir.path().join("m/reqsync_guest.py");
    let original = std::fs::read(&glue).expect("glue");
    std::fs::write(&glue, "broken = True\n").expect("edit");
    let tools = toolchain_dir();
    let out = transform(
        dir.path(),
        &[
            "build",
            "m",
            "--toolchain-dir",
            tools.to_str().expect("utf-8"),
            "--cache-dir",
            module_cache_dir().to_str().expect("utf-8"),
        ],
    );
    ok(&out);
    assert!(
        text(&out.stderr).contains("reqsync_guest.py"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&glue).expect("glue"), original);
}

#[test]
fn a_module_that_fails_its_examples_is_never_deployed_and_a_passing_one_is() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt.block_on(World::kcmo());
    let project_module = world.path("transforms/patients.wasm");
    let before = sha256(&project_module);
    let dir = tempfile::tempdir().expect("temp dir");
    ok(&transform(
        dir.path(),
        &["new", "rules", "--lang", "python"],
    ));
    let app = dir.path().join("rules/app.py");
    let source = std::fs::read_to_string(&app).expect("app.py");
    let config = world.path("reqsync.toml");
    let tools = toolchain_dir();
    let dev = |dir: &Path| {
        transform(
            dir,
            &[
                "dev",
                "rules",
                "--config",
                config.to_str().expect("utf-8"),
                "--once",
                "--cases",
                "50",
                "--toolchain-dir",
                tools.to_str().expect("utf-8"),
            ],
        )
    };

    // Every first name in capitals: example cases with mixed-case names fail.
    let broken = source.replacen(
        "out.put(\"first_name\", patient.first_name)",
        "out.put(\"first_name\", patient.first_name.upper())",
        1,
    );
    assert_ne!(broken, source, "the edit applies");
    std::fs::write(&app, broken).expect("edit");
    let failed = dev(dir.path());
    let said = text(&failed.stdout);
    assert_eq!(
        failed.status.code(),
        Some(5),
        "{said}\n{}",
        text(&failed.stderr)
    );
    assert!(
        said.contains("examples") && said.contains("not deployed"),
        "{said}"
    );
    assert_eq!(
        sha256(&project_module),
        before,
        "nothing deployed after a failure"
    );

    // A new version that passes is deployed, with its example cases beside it.
    std::fs::write(&app, source.replacen("1.0.0+python", "1.1.0+python", 1)).expect("edit");
    let deployed = dev(dir.path());
    let said = ok(&deployed);
    assert!(said.contains("built patients 1.1.0+python"), "{said}");
    let cases: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("rules/examples.json")).expect("examples"),
    )
    .expect("JSON");
    let n = cases["cases"].as_array().expect("cases").len();
    assert!(said.contains(&format!("examples {n}/{n}")), "{said}");
    assert!(said.contains("rows change"), "{said}");
    assert!(said.contains("deployed →"), "{said}");
    assert_eq!(
        sha256(&project_module),
        sha256(&dir.path().join("rules/build/patients.wasm"))
    );
    assert_eq!(
        std::fs::read(world.path("transforms/patients.examples.json")).expect("examples"),
        std::fs::read(dir.path().join("rules/examples.json")).expect("examples"),
    );

    // The same source again: the project already runs it.
    let again = ok(&dev(dir.path()));
    assert!(again.contains("already"), "{again}");
}

//! The default transform modules pass the example cases shipped beside them.

use reqsync_runtime::transform::examples::ExampleFile;
use reqsync_runtime::transform::{SandboxLimits, TransformEngine, TransformInstance};

fn check(module: &str) {
    let dir = tempfile::tempdir().expect("dir");
    reqsync_project::write_project(dir.path(), "sqlite://x.db", "http://127.0.0.1:1", false)
        .expect("project");
    let engine = TransformEngine::new(SandboxLimits::default(), None).expect("engine");
    let compiled = engine
        .load(&dir.path().join(format!("transforms/{module}.wasm")))
        .expect("module loads");
    let mut instance = TransformInstance::new(&engine, &compiled).expect("instantiates");
    let examples = ExampleFile::load(
        &dir.path()
            .join(format!("transforms/{module}.examples.json")),
    )
    .expect("examples");
    assert!(
        examples.cases.len() >= 10,
        "{module} ships too few example cases"
    );
    let failures = examples.run(&mut instance).expect("runs");
    assert!(failures.is_empty(), "{module}: {failures:#?}");
}

#[test]
fn patients_module_passes_its_example_cases() {
    check("patients");
}

#[test]
fn vaccine_doses_module_passes_its_example_cases() {
    check("vaccine-doses");
}

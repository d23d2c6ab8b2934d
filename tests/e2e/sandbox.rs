//! Hostile modules are contained: a loop, an allocation bomb, a panic or an oversized record
//! rejects its own row and nothing else; a module asking for a capability is refused at load.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use reqsync_runtime::source::{ColumnInfo, RowBatch, Value};
use reqsync_runtime::transform::{
    BatchPlan, SandboxLimits, TransformEngine, TransformError, TransformInstance, Verdict,
};

fn engine() -> TransformEngine {
    let limits = SandboxLimits {
        // Short, so the looping row costs the suite a fraction of a second.
        call_deadline: Duration::from_millis(300),
        memory_bytes: 64 << 20,
        ..SandboxLimits::default()
    };
    TransformEngine::new(limits, None).expect("engine")
}

fn rows(modes: &[Option<&str>]) -> (Vec<ColumnInfo>, RowBatch) {
    let columns = ["patno", "mode"]
        .iter()
        .map(|n| ColumnInfo {
            name: n.to_string(),
            declared_type: String::new(),
        })
        .collect();
    let rows = modes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            vec![
                Value::Int(i as i64 + 1),
                m.map_or(Value::Null, |m| Value::Text(m.into())),
            ]
        })
        .collect::<Vec<_>>();
    (columns, RowBatch::from_rows(2, rows))
}

fn codes(v: &Verdict) -> Vec<String> {
    match v {
        Verdict::Reject { findings } => findings.iter().map(|f| f.code.clone()).collect(),
        Verdict::Emit { .. } => vec!["emit".into()],
        Verdict::Skip { code, .. } => vec![format!("skip:{code}")],
    }
}

#[test]
fn each_misbehaving_row_is_rejected_alone_and_the_rest_of_the_batch_goes_through() {
    let engine = engine();
    let module = engine
        .load(Path::new(reqsync_test_guests::HOSTILE))
        .expect("loads");
    let mut instance = TransformInstance::new(&engine, &module).expect("instantiates");
    let (columns, batch) = rows(&[
        None,
        Some("loop"),
        None,
        Some("alloc"),
        Some("panic"),
        Some("huge"),
        Some("undeclared"),
        Some("twice"),
        None,
    ]);
    let plan =
        BatchPlan::new(instance.info(), &columns, chrono_tz::America::Chicago).expect("plan");
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    let outcomes = instance
        .process(&plan, &batch, as_of)
        .expect("the host survives");
    let got: Vec<Vec<String>> = outcomes.iter().map(|o| codes(&o.verdict)).collect();
    assert_eq!(
        got,
        vec![
            vec!["emit".to_string()],
            vec!["transform-timeout".into()],
            vec!["emit".into()],
            vec!["transform-memory-limit".into()],
            vec!["transform-trap".into()],
            vec!["transform-output-too-large".into()],
            vec!["undeclared-field".into()],
            vec!["field-repeated".into()],
            vec!["emit".into()],
        ]
    );
    // The instance was replaced and keeps working.
    let (_, good) = rows(&[None, None]);
    let again = instance.process(&plan, &good, as_of).expect("next batch");
    assert!(
        again
            .iter()
            .all(|o| matches!(o.verdict, Verdict::Emit { .. }))
    );
}

#[test]
fn a_module_importing_the_filesystem_is_refused_at_load_naming_the_import() {
    let err = engine()
        .load(Path::new(reqsync_test_guests::CAPABILITY))
        .expect_err("must be refused");
    assert!(
        matches!(err, TransformError::ForbiddenImport { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("wasi:filesystem"), "{err}");
}

#[test]
fn default_modules_import_nothing_beyond_the_sandbox() {
    // The default modules load under the restricted linker: they import nothing beyond it.
    let dir = tempfile::tempdir().expect("dir");
    reqsync_project::write_project(dir.path(), "sqlite://x.db", "http://127.0.0.1:1", false)
        .expect("project");
    let engine = engine();
    for m in ["patients", "vaccine-doses"] {
        let module = engine
            .load(&dir.path().join(format!("transforms/{m}.wasm")))
            .expect("loads");
        TransformInstance::new(&engine, &module).expect("instantiates");
    }
}

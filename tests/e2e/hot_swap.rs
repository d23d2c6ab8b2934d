//! Hot swap under a running job: every batch is processed by exactly one version, no row is lost
//! or processed twice, a broken version is refused and the active one keeps working.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use reqsync_runtime::source::{ColumnInfo, RowBatch, Value};
use reqsync_runtime::transform::{
    LiveTransform, ModuleRegistry, SandboxLimits, TransformEngine, TransformInstance, Verdict,
};

const V1: &str = reqsync_test_guests::SWAP_V1;
const V2: &str = reqsync_test_guests::SWAP_V2;

fn guest_examples(version: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../tests/guests/swap-v{version}/examples.json"))
}

/// Replaces `dest` the way deployment tools do: write beside it, then rename over it.
fn replace_atomically(dest: &Path, bytes: &[u8]) {
    let tmp = dest.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dest).expect("rename");
}

fn columns() -> Vec<ColumnInfo> {
    vec![ColumnInfo {
        name: "patno".into(),
        declared_type: "INTEGER".into(),
    }]
}

fn batch(first: i64, n: i64) -> RowBatch {
    RowBatch::from_rows(1, (first..first + n).map(|p| vec![Value::Int(p)]))
}

/// `(patient number, version)` of every emitted record of a batch.
fn versions(outcomes: &[reqsync_runtime::transform::RowOutcome]) -> Vec<(i64, String)> {
    outcomes
        .iter()
        .map(|o| match &o.verdict {
            Verdict::Emit { record, .. } => (
                record["patient_number"].as_i64().expect("number"),
                record["first_name"].as_str().expect("version").to_string(),
            ),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

struct Service {
    _dir: tempfile::TempDir,
    module: PathBuf,
    registry: Arc<ModuleRegistry>,
    _watch: reqsync_runtime::transform::registry::Watch,
    engine: TransformEngine,
    live: LiveTransform,
}

fn service() -> Service {
    let dir = tempfile::tempdir().expect("dir");
    let module = dir.path().join("swap.wasm");
    std::fs::copy(V1, &module).expect("v1");
    std::fs::copy(guest_examples(1), dir.path().join("swap.examples.json")).expect("examples");
    let cache = crate::support::module_cache();
    let engine = TransformEngine::new(SandboxLimits::default(), Some(cache)).expect("engine");
    let registry = ModuleRegistry::new(engine.clone());
    let slot = registry.slot(&module).expect("slot");
    let watch = registry.watch().expect("watch");
    let (version, active) = slot.current();
    let instance = TransformInstance::new(&engine, &active).expect("instance");
    let live = LiveTransform::new(
        instance,
        Some((slot, version)),
        &columns(),
        None,
        chrono_tz::UTC,
    )
    .expect("live");
    Service {
        _dir: dir,
        module,
        registry,
        _watch: watch,
        engine,
        live,
    }
}

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
}

#[test]
fn a_swap_under_a_continuous_stream_processes_every_row_exactly_once_by_one_version() {
    let mut s = service();
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut next = 1;
    let mut swapped_at: Option<Instant> = None;
    let mut latency = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while latency.is_none() || seen.len() < 2000 {
        assert!(Instant::now() < deadline, "v2 never became active");
        let outcomes = s
            .live
            .process(&s.engine, &batch(next, 20), as_of())
            .expect("batch");
        next += 20;
        let got = versions(&outcomes);
        let batch_versions: BTreeSet<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            batch_versions.len(),
            1,
            "a batch mixed versions: {batch_versions:?}"
        );
        if latency.is_none() && got[0].1 == "v2" {
            latency = swapped_at.map(|t| t.elapsed());
        }
        seen.extend(got);
        if seen.len() == 400 && swapped_at.is_none() {
            // The analyst ships v2 with its example cases.
            std::fs::copy(guest_examples(2), s.module.with_extension("examples.json"))
                .expect("examples");
            replace_atomically(&s.module, &std::fs::read(V2).expect("v2"));
            swapped_at = Some(Instant::now());
        }
        // Keep the stream going at a realistic pace rather than spinning.
        std::thread::sleep(Duration::from_millis(2));
    }
    let latency = latency.expect("measured");
    eprintln!(
        "hot swap: file replaced → new version in use after {} ms",
        latency.as_millis()
    );

    // Every row exactly once, in order; versions switch once, from v1 to v2.
    let numbers: Vec<i64> = seen.iter().map(|(p, _)| *p).collect();
    assert_eq!(numbers, (1..next).collect::<Vec<_>>());
    let first_v2 = seen.iter().position(|(_, v)| v == "v2").expect("v2 seen");
    assert!(seen[..first_v2].iter().all(|(_, v)| v == "v1"));
    assert!(seen[first_v2..].iter().all(|(_, v)| v == "v2"));
    assert_eq!(s.live.versions_used().len(), 2);
    let history = s.registry.history();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(history[0].refused.is_none());
}

fn wait_for_refusal(registry: &ModuleRegistry) -> reqsync_runtime::transform::SwapReport {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = registry.history().into_iter().find(|r| r.refused.is_some()) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "the broken module was never refused"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_broken_module_is_refused_and_the_active_version_keeps_working() {
    let mut s = service();
    let active_before = s.registry.active();
    replace_atomically(&s.module, b"\0asm but not really a component");
    let refusal = wait_for_refusal(&s.registry);
    assert!(
        refusal
            .refused
            .as_deref()
            .unwrap_or("")
            .contains("not a valid WebAssembly component"),
        "{refusal:?}"
    );
    assert_eq!(
        s.registry.active(),
        active_before,
        "the active version must not change"
    );
    let got = versions(
        &s.live
            .process(&s.engine, &batch(1, 5), as_of())
            .expect("still works"),
    );
    assert!(got.iter().all(|(_, v)| v == "v1"));
}

#[test]
fn a_module_failing_its_example_cases_is_refused() {
    let mut s = service();
    // v2's code shipped with v1's example cases (which expect "v1"): validation must catch it.
    replace_atomically(&s.module, &std::fs::read(V2).expect("v2"));
    let refusal = wait_for_refusal(&s.registry);
    assert!(
        refusal
            .refused
            .as_deref()
            .unwrap_or("")
            .contains("example cases fail"),
        "{refusal:?}"
    );
    // The status says the file on disk is not what runs, and why.
    let status = s.registry.status_of(&s.module).expect("a status");
    assert_eq!(status.version, "v1");
    assert_eq!(status.generation, 1);
    let refused = status.refused.expect("the refused version is reported");
    assert_eq!(refused.sha256, refusal.new_sha256);
    assert!(refused.reason.contains("example cases fail"), "{refused:?}");
    let got = versions(
        &s.live
            .process(&s.engine, &batch(1, 5), as_of())
            .expect("still works"),
    );
    assert!(got.iter().all(|(_, v)| v == "v1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_run_uses_the_version_swapped_in_since_the_last_run() {
    use reqsync_runtime::pipeline::RunOptions;
    use reqsync_seeder::SeedOptions;

    let world = crate::support::World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    let config = world.config();
    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(config.module_cache().expect("module cache")),
    )
    .expect("engine");
    let registry = ModuleRegistry::new(engine.clone());
    for job in &config.jobs {
        registry.slot(&job.transform).expect("slot");
    }
    let _watch = registry.watch().expect("watch");
    let first = crate::support::run_on(
        config.clone(),
        engine.clone(),
        Some(registry.clone()),
        RunOptions::default(),
    )
    .await
    .expect("first run");
    let default_sha = first.jobs[0].module.sha256.clone();

    // The analyst replaces the patients module (and its example cases) while the service runs.
    std::fs::copy(
        guest_examples(2),
        world.path("transforms/patients.examples.json"),
    )
    .expect("examples");
    replace_atomically(
        &world.path("transforms/patients.wasm"),
        &std::fs::read(V2).expect("v2"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !registry.history().iter().any(|r| r.refused.is_none()) {
        assert!(
            Instant::now() < deadline,
            "never swapped: {:?}",
            registry.history()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let second = crate::support::run_on(
        config,
        engine,
        Some(registry.clone()),
        RunOptions {
            full: true,
            ..RunOptions::default()
        },
    )
    .await
    .expect("second run");
    let patients_job = &second.jobs[0];
    assert_ne!(patients_job.module_versions, vec![default_sha]);
    assert_eq!(patients_job.module.version, "v2");
    let dump = world.dump();
    assert!(
        dump.patients.iter().all(|p| p["first_name"] == "v2"),
        "every patient re-sent by v2"
    );
}

//! Per-row cost of the `patients` transform in each guest language, in one process: the Rust
//! module (the baseline), the Python one (componentize-py) and the JavaScript one
//! (componentize-js), all loaded by the same host with the same sandbox limits.
//!
//!     cargo bench -p reqsync --bench transform_languages
//!
//! Rows: the KCMO test patients and 5,000 synthetic ones (invalid ones included), read through
//! the real SQLite source and batch plan in batches of 500, as a sync reads them. Each module
//! runs every batch `ROUNDS` times after one warm-up round; the figure is the median over all
//! batch timings of (batch time / rows in the batch). Build the Python and JavaScript modules
//! first: `scripts/build-guest-python`, `scripts/build-guest-javascript`.
//!
//! `REQSYNC_BENCH_MODULES="label=path;label=path"` measures other builds of `patients` (paths
//! relative to the workspace) after the Rust one instead of the default Python and JavaScript
//! ones: `scripts/bench-guest-glue` measures stripped-down builds that way, to show where a
//! guest language's time per row goes (docs/PERFORMANCE.md, "Guest languages").

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use reqsync_runtime::source::{self, Query, RowBatch, SourceUrl};
use reqsync_runtime::transform::{
    BatchPlan, ModuleCache, SandboxLimits, TransformEngine, TransformInstance,
};
use reqsync_seeder::{SeedOptions, SyntheticOptions, seed_sqlite};

const CLINIC_TZ: chrono_tz::Tz = chrono_tz::America::Chicago;
const ROUNDS: usize = 15;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ is in the workspace")
        .to_path_buf()
}

fn main() {
    let mut modules = vec![(
        "Rust".to_owned(),
        PathBuf::from(reqsync_test_guests::PATIENTS),
    )];
    match std::env::var("REQSYNC_BENCH_MODULES") {
        Ok(list) => modules.extend(list.split(';').filter(|m| !m.is_empty()).map(|m| {
            let (label, path) = m
                .split_once('=')
                .expect("REQSYNC_BENCH_MODULES: label=path;label=path");
            (label.to_owned(), workspace().join(path))
        })),
        Err(_) => modules.extend([
            (
                "Python".to_owned(),
                workspace().join("target/guests/patients-py.wasm"),
            ),
            (
                "JavaScript".to_owned(),
                workspace().join("target/guests/patients-js.wasm"),
            ),
        ]),
    }
    for (language, path) in &modules {
        assert!(
            path.is_file(),
            "{language} module {} is missing: run scripts/build-guest-python and \
             scripts/build-guest-javascript first",
            path.display()
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (columns, batches) = read_rows(dir.path().join("clinic.db"));
    let rows: usize = batches.iter().map(RowBatch::len).sum();
    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(
            ModuleCache::open(&dir.path().join("cache"), &dir.path().join("cache.key"))
                .expect("module cache"),
        ),
    )
    .expect("engine");
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");

    println!("patients transform, {rows} rows in batches of 500, {ROUNDS} rounds after a warm-up");
    println!(
        "{:<11} {:>12} {:>14} {:>10} {:>12}",
        "module", "load (ms)", "instantiate", "per row", "vs Rust"
    );
    let mut baseline = None;
    for (language, path) in &modules {
        let started = Instant::now();
        let module = engine.load(path).expect("module loads");
        let load = started.elapsed();
        let started = Instant::now();
        let mut instance = TransformInstance::new(&engine, &module).expect("instantiates");
        let instantiate = started.elapsed();
        let plan = BatchPlan::new(instance.info(), &columns, CLINIC_TZ).expect("plan");
        for batch in &batches {
            instance.process(&plan, batch, as_of).expect("warm-up");
        }
        let mut per_row = Vec::with_capacity(ROUNDS * batches.len());
        for _ in 0..ROUNDS {
            for batch in &batches {
                let started = Instant::now();
                let outcomes = instance.process(&plan, batch, as_of).expect("batch");
                per_row.push(started.elapsed() / outcomes.len() as u32);
            }
        }
        per_row.sort();
        let median = per_row[per_row.len() / 2];
        let base = *baseline.get_or_insert(median);
        println!(
            "{language:<11} {:>12.1} {:>11.2} ms {:>7.2} µs {:>11.1}×",
            load.as_secs_f64() * 1e3,
            instantiate.as_secs_f64() * 1e3,
            micros(median),
            median.as_secs_f64() / base.as_secs_f64(),
        );
    }
    println!("(load: compile, or read from the module cache of this run: the first load compiles)");
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Seeds a clinic database and reads every patient row through the default query.
fn read_rows(db: PathBuf) -> (Vec<source::ColumnInfo>, Vec<RowBatch>) {
    seed_sqlite(
        &db,
        &SeedOptions {
            kcmo: true,
            synthetic: Some(SyntheticOptions::new(5_000, 7)),
            ..SeedOptions::default()
        },
    )
    .expect("seed");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let source = source::open(&SourceUrl::Sqlite(db), CLINIC_TZ).expect("source");
        let query = Query {
            name: "patients.sql".into(),
            sql: std::fs::read_to_string(workspace().join("queries/patients.sql")).expect("query"),
        };
        let start = NaiveDate::from_ymd_opt(1900, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("date");
        let mut stream = source.stream(&query, start, 500).await.expect("query runs");
        let mut batches = Vec::new();
        while let Some(batch) = stream.next_batch().await {
            batches.push(batch.expect("batch"));
        }
        (stream.columns.clone(), batches)
    })
}

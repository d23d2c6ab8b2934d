//! Transform cost: the default `patients` and `vaccine-doses` modules against the same rule
//! logic compiled natively, in one process; instantiation and module loading; and what epoch
//! interruption and fuel metering cost per row.
//!
//!     cargo bench -p reqsync --bench transform_cost
//!
//! The setup is the project `reqsync init` writes (its config, queries and modules), over a
//! SQLite clinic database seeded with the KCMO test patients and 5,000 synthetic ones (invalid
//! ones included). Both default queries are read with the full-sync window through the real
//! source, in batches of the config's `transform_batch_rows`, and planned as a run plans them.
//! Every per-row figure is the median over all batch timings of (batch time / rows in the
//! batch), `ROUNDS` rounds after a warm-up round. Within a round each batch goes through every
//! variant in turn, so a noisy neighbour on the machine slows them all alike.
//!
//! Per batch:
//! - `wasm`: `TransformInstance::process`, the host's whole path: columnar conversion, lowering,
//!   the guest, lifting, and the host's checks of every emitted record;
//! - `convert`: the host's columnar conversion alone (`BatchPlan::convert`);
//! - `wasm call`: `process_converted` on a batch converted beforehand: `wasm` less `convert`;
//! - `native`: the module's own crate, linked into this bench, run through
//!   `reqsync_guest::testing::transform_unchecked` (the code the component's export runs) on the
//!   same batch built beforehand, then the host's record writing over the typed fields it hands
//!   over (`RecordWriterForBenchmarks`: a native runtime writes the same JSON); checked once to
//!   give the same outcomes as the module;
//! - `native rules`: `transform_unchecked` alone, without writing the records' JSON (the
//!   strictest comparison: no native runtime could send its typed fields as they are);
//! - `native batch`: building that batch from the source rows (host conversion, then JSON rows,
//!   then the guest SDK's `batch_from_rows`: a detour only the bench takes, so an upper bound).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use reqsync_guest::Transform;
use reqsync_guest::testing;
use reqsync_runtime::config::{Config, JobConfig};
use reqsync_runtime::source::{self, ColumnInfo, Query, RowBatch, SourceUrl};
use reqsync_runtime::transform::{
    BatchPlan, FieldLists, RecordWriterForBenchmarks, RowOutcome, TransformEngine, TransformError,
    TransformInstance, Verdict,
};
use reqsync_seeder::{SeedOptions, SyntheticOptions, seed_sqlite};

const ROUNDS: usize = 21;
/// The variants timed per batch (see the module docs, and `Timings`).
const VARIANTS: usize = 8;
/// Cold compiles are slow (hundreds of milliseconds); a few give a stable median.
const COMPILES: usize = 5;
const LOADS: usize = 20;
const INSTANTIATIONS: usize = 50;
/// Fuel per call for the fuel-metered engine: far more than a batch needs (about 10^4 wasm
/// instructions a row), so no call runs dry; the amount does not change the cost of metering.
const FUEL_PER_CALL: u64 = 10_000_000_000;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    reqsync_project::write_project(
        dir.path(),
        "sqlite://clinic.db",
        "https://reqcheck.invalid",
        false,
    )
    .expect("project");
    let config = Config::load(&dir.path().join("reqsync.toml")).expect("the default config");
    let SourceUrl::Sqlite(db) =
        SourceUrl::parse(&config.source_url, Some(config.base_dir())).expect("source URL")
    else {
        unreachable!("the project above reads SQLite")
    };
    seed_sqlite(
        &db,
        &SeedOptions {
            kcmo: true,
            synthetic: Some(SyntheticOptions::new(5_000, 7)),
            ..SeedOptions::default()
        },
    )
    .expect("seed");
    let engines = Engines::new(&config);
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    println!(
        "batches of {} rows (transform_batch_rows), {ROUNDS} rounds after a warm-up; medians",
        config.transform_batch_rows
    );
    measure::<transform_patients::Patients>(&config, job(&config, "patients"), &engines, as_of);
    measure::<transform_vaccine_doses::VaccineDoses>(
        &config,
        job(&config, "vaccine-doses"),
        &engines,
        as_of,
    );
}

fn job<'a>(config: &'a Config, name: &str) -> &'a JobConfig {
    config
        .jobs
        .iter()
        .find(|j| j.name == name)
        .unwrap_or_else(|| panic!("the default config has no job `{name}`"))
}

/// One engine per interruption policy, with the default config's sandbox limits; all but the
/// cold one share the module cache folder of the project (each under its own fingerprint).
struct Engines {
    epoch: TransformEngine,
    fuel: TransformEngine,
    unbounded: TransformEngine,
    cold: TransformEngine,
}

impl Engines {
    fn new(config: &Config) -> Self {
        let cache = || Some(config.module_cache().expect("module cache"));
        let limits = || config.sandbox.clone();
        Self {
            epoch: TransformEngine::new(limits(), cache()).expect("engine"),
            fuel: TransformEngine::with_fuel(limits(), cache(), FUEL_PER_CALL).expect("engine"),
            unbounded: TransformEngine::without_interruption_for_benchmarks(limits(), cache())
                .expect("engine"),
            cold: TransformEngine::new(limits(), None).expect("engine"),
        }
    }
}

/// Per-row timings of one variant.
#[derive(Default)]
struct PerRow(Vec<Duration>);

impl PerRow {
    fn time<R>(&mut self, rows: usize, f: impl FnOnce() -> R) -> R {
        let started = Instant::now();
        let result = f();
        self.0.push(started.elapsed() / rows as u32);
        result
    }

    fn median(&self) -> Duration {
        median(&self.0)
    }
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn measure<T: Transform>(config: &Config, job: &JobConfig, engines: &Engines, as_of: NaiveDate) {
    let (columns, batches) = read_rows(config, job);
    let rows: usize = batches.iter().map(RowBatch::len).sum();
    let as_of_text = as_of.format("%Y-%m-%d").to_string();

    let load = |engine: &TransformEngine| engine.load(&job.transform).expect("module loads");
    let module = load(&engines.epoch);
    let instance = |engine: &TransformEngine| {
        TransformInstance::new(engine, &load(engine)).expect("instantiates")
    };
    let mut epoch = instance(&engines.epoch);
    let mut fuel = instance(&engines.fuel);
    let mut unbounded = instance(&engines.unbounded);
    let plan = plan(&epoch, &columns, job, config);

    // Converted once for `wasm call`, and turned into the guest's own batch for `native`.
    let converted: Vec<_> = batches.iter().map(|b| plan.convert(b)).collect();
    let native_batches: Vec<_> = converted
        .iter()
        .map(|c| native_batch::<T>(c.rows_as_json()))
        .collect();

    let mut tally = Tally::default();
    let mut emitted = Vec::with_capacity(batches.len());
    for (batch, native) in batches.iter().zip(&native_batches) {
        let outcomes = epoch.process(&plan, batch, as_of).expect("batch");
        emitted.push(
            outcomes
                .iter()
                .filter(|o| matches!(o.verdict, Verdict::Emit { .. }))
                .count(),
        );
        for other in [&mut fuel, &mut unbounded] {
            assert_eq!(
                other.process(&plan, batch, as_of).expect("batch").len(),
                outcomes.len()
            );
        }
        let expected = testing::run_batch::<T>(&as_of_text, native).expect("native batch");
        tally.compare(&outcomes, &expected);
    }

    let mut native_writer = RecordWriterForBenchmarks::new(&epoch.info().output_fields);
    let mut t = Timings::default();
    for round in 0..ROUNDS {
        let each = batches
            .iter()
            .zip(&native_batches)
            .zip(&converted)
            .zip(&emitted);
        for (((batch, native), converted), &emitted) in each {
            let n = batch.len();
            // Each round starts with another variant: whichever runs first after another batch
            // finds the caches cold, and none should always be that one.
            for variant in (0..VARIANTS).map(|v| (v + round) % VARIANTS) {
                match variant {
                    0 => check(t.wasm.time(n, || epoch.process(&plan, batch, as_of)), n),
                    1 => drop(t.convert.time(n, || plan.convert(batch))),
                    2 => {
                        let input = converted.clone();
                        let outcomes = t
                            .wasm_call
                            .time(n, || epoch.process_converted(input, as_of));
                        check(outcomes, n);
                    }
                    3 => {
                        let records = t.native.time(n, || {
                            native_records::<T>(&as_of_text, native, &mut native_writer)
                        });
                        assert_eq!(records, emitted);
                    }
                    4 => drop(
                        t.native_batch
                            .time(n, || native_batch::<T>(plan.convert(batch).rows_as_json())),
                    ),
                    5 => check(t.fuel.time(n, || fuel.process(&plan, batch, as_of)), n),
                    6 => {
                        let result = t
                            .native_rules
                            .time(n, || testing::transform_unchecked::<T>(&as_of_text, native));
                        assert_eq!(result.map(|r| r.outcomes.len()), Ok(n));
                    }
                    _ => check(
                        t.unbounded
                            .time(n, || unbounded.process(&plan, batch, as_of)),
                        n,
                    ),
                }
            }
        }
    }

    let name = &job.name;
    println!();
    println!(
        "{name}: {rows} rows in {} batches ({} emit, {} skip, {} reject; native outcomes \
         identical on the {} rows the host converted cleanly)",
        batches.len(),
        tally.emit,
        tally.skip,
        tally.reject,
        tally.compared
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let (wasm, convert, call, native) = (
        t.wasm.median(),
        t.convert.median(),
        t.wasm_call.median(),
        t.native.median(),
    );
    println!(
        "  {:<34} {:>8.2} µs/row",
        "wasm (process: the whole path)",
        us(wasm)
    );
    println!(
        "  {:<34} {:>8.2} µs/row",
        "  convert (host, columnar)",
        us(convert)
    );
    println!(
        "  {:<34} {:>8.2} µs/row",
        "  wasm call (process_converted)",
        us(call)
    );
    println!(
        "  {:<34} {:>8.2} µs/row",
        "native (rules + records)",
        us(native)
    );
    let rules = t.native_rules.median();
    println!(
        "  {:<34} {:>8.2} µs/row",
        "  native rules alone (typed)",
        us(rules)
    );
    println!(
        "  {:<34} {:>8.2} µs/row",
        "  native batch (built, via JSON)",
        us(t.native_batch.median())
    );
    println!("  {:<34} {:>8.2}×", "wasm / native", ratio(wasm, native));
    println!(
        "  {:<34} {:>8.2}×",
        "wasm call / native",
        ratio(call, native)
    );
    println!(
        "  {:<34} {:>8.2}×",
        "wasm / (convert + native)",
        ratio(wasm, convert + native)
    );
    println!(
        "  {:<34} {:>8.2}×",
        "wasm / native rules alone",
        ratio(wasm, rules)
    );
    let (fuel_row, unbounded_row) = (t.fuel.median(), t.unbounded.median());
    println!(
        "  interruption (process, µs/row): epoch {:.2}, fuel {:.2} ({:.2}× epoch), none {:.2} ({:.2}× epoch; unsafe, bench only)",
        us(wasm),
        us(fuel_row),
        ratio(fuel_row, wasm),
        us(unbounded_row),
        ratio(unbounded_row, wasm),
    );

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let compile = median(
        &(0..COMPILES)
            .map(|_| timed(|| load(&engines.cold)))
            .collect::<Vec<_>>(),
    );
    let cached = median(
        &(0..LOADS)
            .map(|_| timed(|| load(&engines.epoch)))
            .collect::<Vec<_>>(),
    );
    let instantiate = median(
        &(0..INSTANTIATIONS)
            .map(|_| {
                timed(|| TransformInstance::new(&engines.epoch, &module).expect("instantiates"))
            })
            .collect::<Vec<_>>(),
    );
    println!(
        "  load: cold compile {:.1} ms, from the module cache {:.2} ms; instantiate + describe \
         {:.3} ms ({} KiB module)",
        ms(compile),
        ms(cached),
        ms(instantiate),
        file_kib(&job.transform)
    );
}

#[derive(Default)]
struct Timings {
    wasm: PerRow,
    convert: PerRow,
    wasm_call: PerRow,
    native: PerRow,
    native_rules: PerRow,
    native_batch: PerRow,
    fuel: PerRow,
    unbounded: PerRow,
}

/// A timed batch went through: one outcome per row.
fn check(outcomes: Result<Vec<RowOutcome>, TransformError>, rows: usize) {
    assert_eq!(outcomes.expect("batch").len(), rows);
}

fn timed<R>(f: impl FnOnce() -> R) -> Duration {
    let started = Instant::now();
    let result = f();
    let elapsed = started.elapsed();
    drop(result);
    elapsed
}

fn file_kib(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() >> 10)
}

/// The plan a run makes (`LiveTransform`): the module's columns, and the job's group column.
fn plan(
    instance: &TransformInstance,
    columns: &[ColumnInfo],
    job: &JobConfig,
    config: &Config,
) -> BatchPlan {
    let plan = BatchPlan::new(instance.info(), columns, config.clinic_tz).expect("plan");
    match &job.group_by_column {
        Some(column) => plan
            .with_group_column(column, columns)
            .expect("group column"),
        None => plan,
    }
}

/// `native`: the module's native build on a batch, then the host's record writing over the
/// typed fields it handed over: the work the sandboxed path does, without the sandbox. Answers
/// the number of records written.
fn native_records<T: Transform>(
    as_of: &str,
    batch: &reqsync_guest::bindings::reqsync::transform::types::RowBatch,
    writer: &mut RecordWriterForBenchmarks,
) -> usize {
    use reqsync_guest::bindings::reqsync::transform::types::Outcome;
    let result = testing::transform_unchecked::<T>(as_of, batch).expect("native batch");
    let lists = FieldLists {
        text: &result.text,
        indexes: &result.field_indexes,
        kinds: &result.kinds,
        values: &result.values,
    };
    let records: Vec<Box<str>> = result
        .outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Emit(e) => Some(writer.write(&lists, e.first, e.count).expect("a record")),
            _ => None,
        })
        .collect();
    records.len()
}

/// The guest's own batch of `rows` (a converted batch's `rows_as_json`): what the module
/// receives for the same source rows.
fn native_batch<T: Transform>(
    rows: Vec<serde_json::Map<String, serde_json::Value>>,
) -> reqsync_guest::bindings::reqsync::transform::types::RowBatch {
    let rows: Vec<serde_json::Value> = rows.into_iter().map(serde_json::Value::Object).collect();
    testing::batch_from_rows(T::info().input_columns, &rows)
}

/// What the module and its native build made of every row, counted, after checking they agree.
#[derive(Default)]
struct Tally {
    emit: usize,
    skip: usize,
    reject: usize,
    compared: usize,
}

impl Tally {
    fn compare(&mut self, wasm: &[RowOutcome], native: &[testing::RowOutcome]) {
        assert_eq!(wasm.len(), native.len());
        let codes = |findings: &[reqsync_runtime::transform::Finding]| {
            let mut codes: Vec<String> = findings
                .iter()
                .map(|f| format!("{}:{}", f.field, f.code))
                .collect();
            codes.sort();
            codes
        };
        for (i, (w, n)) in wasm.iter().zip(native).enumerate() {
            let same = match (&w.verdict, n) {
                (Verdict::Reject { findings }, _)
                    if findings.iter().any(|f| f.code == "invalid-source-value") =>
                {
                    // The host overrides the verdict of a row it could not convert.
                    self.reject += 1;
                    continue;
                }
                (
                    Verdict::Emit { record, warnings },
                    testing::RowOutcome::Emit {
                        record: native_record,
                        warnings: native_warnings,
                    },
                ) => {
                    self.emit += 1;
                    record == native_record && codes(warnings) == *native_warnings
                }
                (Verdict::Skip { code, .. }, testing::RowOutcome::Skip { code: native, .. }) => {
                    self.skip += 1;
                    code == native
                }
                (Verdict::Reject { findings }, testing::RowOutcome::Reject(native)) => {
                    self.reject += 1;
                    codes(findings) == *native
                }
                _ => false,
            };
            assert!(same, "row {i}: the module and its native build disagree");
            self.compared += 1;
        }
    }
}

/// Reads every row of the job's query with the full-sync window, as `reqsync run --full` does.
fn read_rows(config: &Config, job: &JobConfig) -> (Vec<ColumnInfo>, Vec<RowBatch>) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let url = SourceUrl::parse(&config.source_url, Some(config.base_dir())).expect("url");
        let source = source::open(&url, config.clinic_tz).expect("source");
        let query = Query {
            name: job.query.display().to_string(),
            sql: std::fs::read_to_string(&job.query).expect("query"),
        };
        let start = NaiveDate::from_ymd_opt(1900, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("date");
        let mut stream = source
            .stream(&query, start, config.transform_batch_rows)
            .await
            .expect("query runs");
        let mut batches = Vec::new();
        while let Some(batch) = stream.next_batch().await {
            batches.push(batch.expect("batch"));
        }
        (stream.columns.clone(), batches)
    })
}

//! A module checked alone, with no database and no network: its example cases, then rows
//! generated from its declared input columns ([`generate`]), each outcome held to the
//! properties in [`checks`]. A failure shrinks to a minimal row and is reproducible from the
//! seed. This is what `reqsync transform test` runs.

pub mod checks;
pub mod generate;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde::Serialize;
use serde_json::{Map, Value};

use self::checks::{Property, Violation, check_outcome};
use self::generate::GeneratedRow;
use super::examples::{ExampleError, ExampleFile};
use super::json_rows::batch_from_json;
use super::{
    CompiledModule, ModuleInfo, RowOutcome, SandboxLimits, TransformEngine, TransformError,
    TransformInstance,
};
use crate::reqcheck::record_schema::RecordSchema;

/// How often `reqsync transform test` starts a fresh instance to compare against, in cases.
pub const DEFAULT_FRESH_EVERY: u32 = 32;

/// How a test run is set up.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Generated rows to check (after the example cases).
    pub cases: u32,
    /// Seeds the row generator: the same seed, case count and as-of date give the same rows.
    pub seed: u64,
    /// The as-of date generated rows are judged at (example cases carry their own).
    pub as_of: NaiveDate,
    /// The example-case file; `None` means none is checked.
    pub examples: Option<PathBuf>,
    /// Every this many cases the fresh-instance comparison starts a new instance.
    pub fresh_every: u32,
    /// Upper bound on the time spent shrinking a failure to a minimal row.
    pub max_shrink_time: Duration,
}

/// What a test run found; serialises as the `--json` output.
#[derive(Debug, Serialize)]
pub struct TestReport {
    pub module: ModuleSummary,
    pub seed: u64,
    pub as_of: String,
    pub examples: Option<ExamplesSummary>,
    pub cases_requested: u32,
    /// Generated rows checked (including the retries made while shrinking a failure).
    pub cases_run: u64,
    pub outcomes: OutcomeCounts,
    /// The whole test: loading, example cases, generated rows, batch check.
    pub elapsed_ms: u64,
    /// Generated rows checked per second (each row runs three times: twice on one instance,
    /// once on a fresh one), timed over the generation phase alone.
    pub cases_per_second: f64,
    /// The first property that broke, with its minimal row; `None` when all held.
    pub failure: Option<PropertyFailure>,
    pub passed: bool,
}

#[derive(Debug, Serialize)]
pub struct ModuleSummary {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub target: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct ExamplesSummary {
    pub file: PathBuf,
    pub cases: usize,
    pub failures: Vec<ExampleFailure>,
}

#[derive(Debug, Serialize)]
pub struct ExampleFailure {
    pub case: String,
    pub reason: String,
}

/// How generated rows ended: shows whether the hints reach the module's emit paths.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct OutcomeCounts {
    pub emit: u64,
    pub skip: u64,
    pub reject: u64,
}

#[derive(Debug, Serialize)]
pub struct PropertyFailure {
    pub property: Property,
    pub detail: String,
    /// The minimal failing row (made-up data), as `reqsync transform try --row` takes it;
    /// `None` for failures that are not about one row (declaration, examples).
    pub row: Option<Map<String, Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Examples(#[from] ExampleError),
}

/// Runs the whole check of `module`.
pub fn test_module(
    engine: &TransformEngine,
    module: &CompiledModule,
    options: &TestOptions,
) -> Result<TestReport, TestRunError> {
    let started = Instant::now();
    let mut instance = TransformInstance::new(engine, module)?;
    let info = instance.info().clone();
    let mut report = TestReport {
        module: ModuleSummary {
            path: module.path.clone(),
            name: info.name.clone(),
            version: info.version.clone(),
            target: info.target.clone(),
            sha256: module.sha256.clone(),
        },
        seed: options.seed,
        as_of: options.as_of.format("%Y-%m-%d").to_string(),
        examples: None,
        cases_requested: options.cases,
        cases_run: 0,
        outcomes: OutcomeCounts::default(),
        elapsed_ms: 0,
        cases_per_second: 0.0,
        failure: None,
        passed: false,
    };

    let schema = match check_declaration(&info) {
        Ok(schema) => schema,
        Err(v) => return Ok(finish(report, Some(v.into()), started)),
    };
    if let Some(file) = &options.examples {
        report.examples = Some(run_examples(file, &mut instance)?);
    }
    let strategy = match generate::rows(&info, options.as_of) {
        Ok(s) => s,
        Err(e) => {
            let v = Violation::new(Property::Declaration, e.to_string());
            return Ok(finish(report, Some(v.into()), started));
        }
    };

    let generated = Generated::new(engine, module, instance, options, &info, schema);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: options.cases,
            max_shrink_time: options.max_shrink_time.as_millis().min(u32::MAX as u128) as u32,
            failure_persistence: None,
            source_file: None,
            // Generated rows are never rejected as inputs; a module that panics the harness
            // is a failure like any other.
            max_global_rejects: 0,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(options.seed)),
    );
    let generation = Instant::now();
    let result = runner.run(&strategy, |row| generated.check(row));
    report.cases_per_second =
        generated.cases_run.get() as f64 / generation.elapsed().as_secs_f64().max(1e-9);
    report.cases_run = generated.cases_run.get();
    report.outcomes = generated.counts.get();
    let failure = match result {
        Ok(()) => generated.check_batches()?,
        Err(TestError::Fail(reason, row)) => Some(PropertyFailure {
            row: Some(row_object(&info, &row)),
            ..decode(&reason.to_string()).into()
        }),
        Err(TestError::Abort(reason)) => Some(
            Violation::new(
                Property::NoFault,
                format!("the test run was aborted: {reason}"),
            )
            .into(),
        ),
    };
    Ok(finish(report, failure, started))
}

fn finish(
    mut report: TestReport,
    failure: Option<PropertyFailure>,
    started: Instant,
) -> TestReport {
    let elapsed = started.elapsed();
    report.elapsed_ms = elapsed.as_millis() as u64;
    let examples_ok = report
        .examples
        .as_ref()
        .is_none_or(|e| e.failures.is_empty());
    report.passed = failure.is_none() && examples_ok;
    report.failure = failure;
    report
}

impl From<Violation> for PropertyFailure {
    fn from(v: Violation) -> Self {
        Self {
            property: v.property,
            detail: v.detail,
            row: None,
        }
    }
}

/// The module's declaration, checked against ReqCheck's record type before any row runs.
fn check_declaration(info: &ModuleInfo) -> Result<&'static RecordSchema, Violation> {
    let bad = |detail: String| Violation::new(Property::Declaration, detail);
    let schema = RecordSchema::for_target(&info.target).ok_or_else(|| {
        bad(format!(
            "target `{}` is not a ReqCheck record type (patient_data, vaccine_dose_data)",
            info.target
        ))
    })?;
    if !info.input_columns.iter().any(|c| c.name == info.key_column) {
        return Err(bad(format!(
            "key column `{}` is not an input column",
            info.key_column
        )));
    }
    for f in &info.output_fields {
        if !schema.target.fields.contains(&f.name.as_str()) {
            return Err(bad(format!(
                "output field `{}` is not on ReqCheck's `{}` whitelist",
                f.name, info.target
            )));
        }
    }
    for required in schema.target.required {
        if !info
            .output_fields
            .iter()
            .any(|f| f.name == *required && f.required)
        {
            return Err(bad(format!(
                "ReqCheck requires `{required}` on every `{}` record; the module must declare it \
                 as a required output field",
                info.target
            )));
        }
    }
    Ok(schema)
}

fn run_examples(
    file: &Path,
    instance: &mut TransformInstance,
) -> Result<ExamplesSummary, TestRunError> {
    let examples = ExampleFile::load(file)?;
    let failures = examples
        .run(instance)?
        .into_iter()
        .map(|f| ExampleFailure {
            case: f.name,
            reason: f.reason,
        })
        .collect();
    Ok(ExamplesSummary {
        file: file.to_path_buf(),
        cases: examples.cases.len(),
        failures,
    })
}

/// The state the property closure needs; proptest takes a `Fn`, hence the cells.
struct Generated<'a> {
    engine: &'a TransformEngine,
    module: &'a CompiledModule,
    info: &'a ModuleInfo,
    schema: &'static RecordSchema,
    as_of: NaiveDate,
    fresh_every: u64,
    /// Sees every row twice, in generation order.
    main: RefCell<TransformInstance>,
    /// Replaced every `fresh_every` rows.
    fresh: RefCell<Option<TransformInstance>>,
    cases_run: Cell<u64>,
    counts: Cell<OutcomeCounts>,
    /// Rows that passed and their outcome, for the batch-consistency check.
    passed: RefCell<Vec<(GeneratedRow, RowOutcome)>>,
}

impl<'a> Generated<'a> {
    fn new(
        engine: &'a TransformEngine,
        module: &'a CompiledModule,
        main: TransformInstance,
        options: &TestOptions,
        info: &'a ModuleInfo,
        schema: &'static RecordSchema,
    ) -> Self {
        Self {
            engine,
            module,
            info,
            schema,
            as_of: options.as_of,
            fresh_every: u64::from(options.fresh_every.max(1)),
            main: RefCell::new(main),
            fresh: RefCell::new(None),
            cases_run: Cell::new(0),
            counts: Cell::new(OutcomeCounts::default()),
            passed: RefCell::new(Vec::new()),
        }
    }

    fn check(&self, row: GeneratedRow) -> Result<(), TestCaseError> {
        let n = self.cases_run.get();
        self.cases_run.set(n + 1);
        self.check_row(&row, n)
            .map_err(|v| TestCaseError::fail(encode(&v)))
    }

    fn check_row(&self, row: &GeneratedRow, n: u64) -> Result<(), Violation> {
        let first = self.run_on(&mut self.main.borrow_mut(), row)?;
        check_outcome(self.info, self.schema, row, &first)?;
        let again = self.run_on(&mut self.main.borrow_mut(), row)?;
        if again != first {
            return Err(Violation::new(
                Property::Deterministic,
                format!(
                    "the same row gave {} the first time and {} the second",
                    shape(&first),
                    shape(&again)
                ),
            ));
        }
        let mut fresh = self.fresh.borrow_mut();
        if fresh.is_none() || n.is_multiple_of(self.fresh_every) {
            *fresh = Some(TransformInstance::new(self.engine, self.module).map_err(fault)?);
        }
        if let Some(instance) = fresh.as_mut() {
            let other = self.run_on(instance, row)?;
            if other != first {
                return Err(Violation::new(
                    Property::FreshInstance,
                    format!(
                        "the row gave {} on one instance and {} on a newer one: the module keeps \
                         state between rows",
                        shape(&first),
                        shape(&other)
                    ),
                ));
            }
        }
        let mut counts = self.counts.get();
        match first.verdict {
            super::Verdict::Emit { .. } => counts.emit += 1,
            super::Verdict::Skip { .. } => counts.skip += 1,
            super::Verdict::Reject { .. } => counts.reject += 1,
        }
        self.counts.set(counts);
        self.passed.borrow_mut().push((row.clone(), first));
        Ok(())
    }

    fn run_on(
        &self,
        instance: &mut TransformInstance,
        row: &GeneratedRow,
    ) -> Result<RowOutcome, Violation> {
        let object = row_object(self.info, row);
        let batch = batch_from_json(self.info, &[&object]).map_err(|e| {
            Violation::new(
                Property::NoFault,
                format!("host could not build the row: {e}"),
            )
        })?;
        let mut outcomes = instance
            .process_converted(batch, self.as_of)
            .map_err(fault)?;
        outcomes
            .pop()
            .ok_or_else(|| Violation::new(Property::NoFault, "no outcome for the row"))
    }

    /// Every passing row again, in batches of the size syncs use, on a new instance: each must
    /// end as it did alone.
    fn check_batches(&self) -> Result<Option<PropertyFailure>, TestRunError> {
        const BATCH: usize = 500;
        let passed = self.passed.borrow();
        for chunk in passed.chunks(BATCH) {
            // The deadline is per call, and this call is a whole batch.
            let base = self.engine.limits();
            let limits = SandboxLimits {
                call_deadline: base.call_deadline.saturating_mul(chunk.len() as u32),
                ..base.clone()
            };
            let mut instance = TransformInstance::with_limits(self.engine, self.module, limits)?;
            let objects: Vec<Map<String, Value>> = chunk
                .iter()
                .map(|(row, _)| row_object(self.info, row))
                .collect();
            let refs: Vec<&Map<String, Value>> = objects.iter().collect();
            let batch = match batch_from_json(self.info, &refs) {
                Ok(b) => b,
                Err(e) => {
                    return Ok(Some(
                        Violation::new(
                            Property::NoFault,
                            format!("host could not build a batch: {e}"),
                        )
                        .into(),
                    ));
                }
            };
            let outcomes = match instance.process_converted(batch, self.as_of) {
                Ok(o) => o,
                Err(e) => {
                    return Ok(Some(
                        Violation::new(
                            Property::BatchConsistent,
                            format!("a batch of rows that each pass alone failed as a whole: {e}"),
                        )
                        .into(),
                    ));
                }
            };
            for ((row, alone), in_batch) in chunk.iter().zip(&outcomes) {
                if alone != in_batch {
                    return Ok(Some(PropertyFailure {
                        property: Property::BatchConsistent,
                        detail: format!(
                            "the row gave {} alone and {} inside a batch of {}",
                            shape(alone),
                            shape(in_batch),
                            chunk.len()
                        ),
                        row: Some(row_object(self.info, row)),
                    }));
                }
            }
        }
        Ok(None)
    }
}

fn fault(e: TransformError) -> Violation {
    Violation::new(Property::NoFault, e.to_string())
}

/// An outcome's shape for messages: kind and codes, no values.
fn shape(o: &RowOutcome) -> String {
    match &o.verdict {
        super::Verdict::Emit { record, warnings } => {
            let w: Vec<String> = warnings.iter().map(|w| w.tag()).collect();
            format!("emit ({} fields, warnings {w:?})", record.len())
        }
        super::Verdict::Skip { code, .. } => format!("skip `{code}`"),
        super::Verdict::Reject { findings } => {
            let f: Vec<String> = findings.iter().map(|f| f.tag()).collect();
            format!("reject {f:?}")
        }
    }
}

/// The row as a JSON object keyed by column name (NULL columns included as `null`).
pub fn row_object(info: &ModuleInfo, row: &GeneratedRow) -> Map<String, Value> {
    info.input_columns
        .iter()
        .zip(row)
        .map(|(c, v)| (c.name.clone(), v.clone().unwrap_or(Value::Null)))
        .collect()
}

// proptest carries a failure's reason as text; the violation travels through it as JSON.
fn encode(v: &Violation) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| v.detail.clone())
}

fn decode(reason: &str) -> Violation {
    #[derive(serde::Deserialize)]
    struct Encoded {
        property: String,
        detail: String,
    }
    match serde_json::from_str::<Encoded>(reason) {
        Ok(e) => Violation::new(
            Property::from_id(&e.property).unwrap_or(Property::NoFault),
            e.detail,
        ),
        // Not ours: a panic inside the harness, caught by proptest.
        Err(_) => Violation::new(Property::NoFault, reason.to_owned()),
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.rotate_left(i as u32 * 16).to_le_bytes());
    }
    bytes
}

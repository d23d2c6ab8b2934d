//! A module checked alone, with no database and no network: its example cases, then rows
//! generated from its declared input columns ([`generate`]), each outcome held to the
//! properties in [`checks`]. A failure shrinks to a minimal row ([`shrink`]) and is
//! reproducible from the seed. This is what `reqsync transform test` runs.
//!
//! Generated rows go to the module in batches ([`GENERATED_BATCH_ROWS`]), each run twice on
//! one instance; every [`SYNC_BATCH_ROWS`] rows run once more, as one batch laid out
//! differently, on a new instance. A call costs an interpreted module (Python, JavaScript) far
//! more than a row, and a new instance several milliseconds, so this is several times faster
//! than three calls per row; each property is still checked per row. A row that traps is
//! retried alone on a fresh instance inside the call and rejected as `transform-trap`, which
//! names that row; a batch that fails as a whole in any other way is checked again row by row;
//! a row whose outcome changes on the new instance is run again in its own batch to tell state
//! kept between rows (`fresh-instance`) from a layout that changes outcomes
//! (`batch-consistent`). Shrinking checks rows alone.

pub mod checks;
pub mod generate;
pub mod shrink;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::Serialize;
use serde_json::{Map, Value};

use self::checks::{Property, Violation, check_outcome};
use self::generate::GeneratedRow;
use self::shrink::{Plainest, ShrinkSummary};
use super::columnar::ConvertedBatch;
use super::examples::{ExampleError, ExampleFile};
use super::json_rows::batch_from_values;
use super::{
    CompiledModule, ModuleInfo, RowOutcome, SandboxLimits, TransformEngine, TransformError,
    TransformInstance,
};
use crate::reqcheck::record_schema::RecordSchema;

/// Generated rows per call into the module. The per-call cost of the Python and JavaScript
/// modules is mostly gone by a few dozen rows (docs/PERFORMANCE.md, "Property tests"); more
/// rows per call only make a failing batch's row-by-row retry dearer.
pub(crate) const GENERATED_BATCH_ROWS: usize = 50;

/// Rows per batch of the new-instance pass: the size of a sync's batches (`batch_size`).
pub(crate) const SYNC_BATCH_ROWS: usize = 500;

/// How often a row checked alone (while shrinking) gets a new instance to compare against, in
/// rows.
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
    /// Rows checked alone (while shrinking) are compared against an instance replaced every
    /// this many rows.
    pub fresh_every: u32,
    /// Upper bound on the time spent shrinking a failure to a minimal row.
    pub max_shrink_time: Duration,
    /// Time box of the generated rows: none are started once this much time has gone into
    /// them, even short of `cases` (`reqsync transform dev` checks on every save and must
    /// answer quickly whatever the module's speed). `None`: all `cases`. Rows come from the seed
    /// in the same order either way, so a failure found within the box reproduces with the
    /// same seed and `cases`.
    pub max_generation_time: Option<Duration>,
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
    /// Whether the time box (`max_generation_time`) ended the generated rows before
    /// `cases_requested`.
    pub time_boxed: bool,
    pub outcomes: OutcomeCounts,
    /// The whole test: loading, example cases, generated rows, batch check, shrinking.
    pub elapsed_ms: u64,
    /// Generated rows checked per second: generating them, running each three times (twice on
    /// one instance, once on another) and holding every outcome to every property. Shrinking
    /// a failure is not counted.
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
    /// `None` for failures that are not about one row (declaration, examples, a batch).
    pub row: Option<Map<String, Value>>,
    /// How the row was shrunk; `None` without a row.
    pub shrink: Option<ShrinkSummary>,
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
        time_boxed: false,
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
    let (strategy, plainest) = match generate::rows(&info, options.as_of)
        .and_then(|s| Ok((s, generate::plainest_values(&info, options.as_of)?)))
    {
        Ok(plan) => plan,
        Err(e) => {
            let v = Violation::new(Property::Declaration, e.to_string());
            return Ok(finish(report, Some(v.into()), started));
        }
    };
    let ties = generate::tie_groups(&info);
    let plainest: Vec<Plainest> = info
        .input_columns
        .iter()
        .zip(plainest)
        .enumerate()
        .map(|(i, (c, value))| Plainest {
            nullable: c.nullable,
            value,
            tied: ties
                .iter()
                .filter(|g| g.contains(&i))
                .flatten()
                .copied()
                .filter(|&t| t != i)
                .collect(),
        })
        .collect();

    let mut generated = Generated::new(engine, module, instance, options, &info, schema);
    let mut runner = TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            source_file: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(options.seed)),
    );
    let generation = Instant::now();
    let mut generated_rows = 0u64;
    let mut remaining = options.cases as usize;
    let mut checked = Checked::Passed;
    while remaining > 0 && checked.passed() {
        if options
            .max_generation_time
            .is_some_and(|limit| generation.elapsed() >= limit)
        {
            report.time_boxed = true;
            break;
        }
        let n = remaining.min(GENERATED_BATCH_ROWS);
        remaining -= n;
        let trees = match (0..n)
            .map(|_| strategy.new_tree(&mut runner))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(trees) => trees,
            Err(reason) => {
                checked = Checked::Whole(Violation::new(
                    Property::NoFault,
                    format!("the test run was aborted: {reason}"),
                ));
                break;
            }
        };
        generated_rows += n as u64;
        checked = generated.check_batch(trees);
        if checked.passed() && generated.pending.len() >= SYNC_BATCH_ROWS {
            checked = generated.check_sync_batch()?;
        }
    }
    if checked.passed() {
        checked = generated.check_sync_batch()?;
    }
    report.cases_per_second = generated_rows as f64 / generation.elapsed().as_secs_f64().max(1e-9);
    let failure = match checked {
        Checked::Passed => None,
        Checked::Whole(v) => Some(v.into()),
        Checked::Row {
            tree: Some(mut tree),
            violation,
            ..
        } => Some(generated.shrink(&mut *tree, violation, &plainest, options)),
        Checked::Row {
            tree: None,
            row,
            violation,
        } => Some(PropertyFailure {
            property: violation.property,
            detail: violation.detail,
            row: Some(row_object(&info, &row)),
            shrink: None,
        }),
    };
    report.cases_run = generated.cases_run;
    report.outcomes = generated.counts;
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
            shrink: None,
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

/// A generated row's value tree: what shrinking works on.
type Tree = Box<dyn ValueTree<Value = GeneratedRow>>;

/// How a check of generated rows ended.
enum Checked {
    Passed,
    /// A row broke a property. Its value tree shrinks it, unless the failure needs the batch
    /// the row was in (`None`: the row is reported as generated).
    Row {
        tree: Option<Tree>,
        row: GeneratedRow,
        violation: Violation,
    },
    /// A batch failed as a whole though each of its rows passes alone.
    Whole(Violation),
}

impl Checked {
    fn passed(&self) -> bool {
        matches!(self, Checked::Passed)
    }

    /// Row `i` of a batch broke `violation`.
    fn row(mut trees: Vec<Tree>, i: usize, violation: Violation) -> Self {
        let tree = trees.swap_remove(i);
        Checked::Row {
            row: tree.current(),
            tree: Some(tree),
            violation,
        }
    }
}

/// A row that passed in its batch of generated rows, until the sync-sized batch has seen it.
struct Pending {
    tree: Tree,
    row: GeneratedRow,
    outcome: RowOutcome,
}

/// The instances generated rows run on, and what they gave.
struct Generated<'a> {
    engine: &'a TransformEngine,
    module: &'a CompiledModule,
    info: &'a ModuleInfo,
    schema: &'static RecordSchema,
    as_of: NaiveDate,
    fresh_every: u64,
    /// Sees every generated row twice, in its batch of generated rows.
    main: TransformInstance,
    /// The other instance of a row checked alone; replaced every `fresh_every` rows.
    fresh: Option<TransformInstance>,
    /// Rows the fresh instance has seen.
    fresh_rows: u64,
    cases_run: u64,
    counts: OutcomeCounts,
    /// Rows that passed, in generation order, for the sync-sized batch.
    pending: Vec<Pending>,
    /// Where in `pending` each batch of generated rows starts.
    batch_starts: Vec<usize>,
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
            main,
            fresh: None,
            fresh_rows: 0,
            cases_run: 0,
            counts: OutcomeCounts::default(),
            pending: Vec::new(),
            batch_starts: Vec::new(),
        }
    }

    /// Runs a batch of generated rows twice on the main instance and holds each row's outcomes
    /// to every property but the two the sync-sized batch checks, in generation order.
    fn check_batch(&mut self, trees: Vec<Tree>) -> Checked {
        let rows: Vec<GeneratedRow> = trees.iter().map(|t| t.current()).collect();
        self.cases_run += rows.len() as u64;
        let (first, again) = match self.run_twice(&rows) {
            Ok(outcomes) => outcomes,
            // Not one row's trap (the call retries those row by row itself): the module
            // refused the batch, or gave output that does not fit it. Alone, each row says
            // whether it is the cause.
            Err(whole) => return self.check_rows_alone(trees, &rows, whole),
        };
        for (i, row) in rows.iter().enumerate() {
            let judged = check_outcome(self.info, self.schema, row, &first[i])
                .and_then(|()| same_again(&first[i], &again[i]));
            if let Err(v) = judged {
                // The rows before it passed.
                for outcome in &first[..i] {
                    self.count(outcome);
                }
                return Checked::row(trees, i, v);
            }
        }
        self.batch_starts.push(self.pending.len());
        for ((tree, row), outcome) in trees.into_iter().zip(rows).zip(first) {
            self.count(&outcome);
            self.pending.push(Pending { tree, row, outcome });
        }
        Checked::Passed
    }

    /// The batch's outcomes on the main instance, and again there; or the property a failure
    /// of a whole call breaks, with why.
    fn run_twice(&mut self, rows: &[GeneratedRow]) -> Result<TwoRuns, (Property, Violation)> {
        let (as_of, n) = (self.as_of, rows.len());
        let refs: Vec<&GeneratedRow> = rows.iter().collect();
        let batch = self.batch(&refs).map_err(|v| (Property::NoFault, v))?;
        let first =
            run(&mut self.main, &batch, as_of, n).map_err(|v| (Property::BatchConsistent, v))?;
        let again =
            run(&mut self.main, &batch, as_of, n).map_err(|v| (Property::Deterministic, v))?;
        Ok((first, again))
    }

    /// After a whole call failed (breaking `property` unless a row is the cause): each row
    /// alone, in order.
    fn check_rows_alone(
        &mut self,
        trees: Vec<Tree>,
        rows: &[GeneratedRow],
        (property, whole): (Property, Violation),
    ) -> Checked {
        for (i, row) in rows.iter().enumerate() {
            if let Err(v) = self.check_alone(row) {
                return Checked::row(trees, i, v);
            }
        }
        let when = match property {
            Property::Deterministic => "the second time it ran on one instance",
            _ => "as a whole",
        };
        Checked::Whole(Violation::new(
            property,
            format!(
                "a batch of {} generated rows failed {when}, though each row passes alone: {}",
                rows.len(),
                whole.detail
            ),
        ))
    }

    /// One row alone: twice on the main instance, once on the fresh one. What shrinking runs.
    fn check_alone(&mut self, row: &GeneratedRow) -> Result<RowOutcome, Violation> {
        let as_of = self.as_of;
        let batch = self.batch(&[row])?;
        let first = one(run(&mut self.main, &batch, as_of, 1)?)?;
        check_outcome(self.info, self.schema, row, &first)?;
        let again = one(run(&mut self.main, &batch, as_of, 1)?)?;
        same_again(&first, &again)?;
        let other = one(run(self.fresh()?, &batch, as_of, 1)?)?;
        same_elsewhere(&first, &other)?;
        Ok(first)
    }

    fn count(&mut self, outcome: &RowOutcome) {
        match outcome.verdict {
            super::Verdict::Emit { .. } => self.counts.emit += 1,
            super::Verdict::Skip { .. } => self.counts.skip += 1,
            super::Verdict::Reject { .. } => self.counts.reject += 1,
        }
    }

    /// The fresh instance for the next row: a new one every `fresh_every` rows.
    fn fresh(&mut self) -> Result<&mut TransformInstance, Violation> {
        if self.fresh.is_none() || self.fresh_rows >= self.fresh_every {
            self.fresh = Some(TransformInstance::new(self.engine, self.module).map_err(fault)?);
            self.fresh_rows = 0;
        }
        self.fresh_rows += 1;
        self.fresh
            .as_mut()
            .ok_or_else(|| Violation::new(Property::NoFault, "no fresh instance"))
    }

    fn batch(&self, rows: &[&GeneratedRow]) -> Result<ConvertedBatch, Violation> {
        batch(self.info, rows)
    }

    /// Shrinks the failing row of `tree` (found failing with `violation`), checking rows alone.
    fn shrink(
        &mut self,
        tree: &mut dyn ValueTree<Value = GeneratedRow>,
        violation: Violation,
        plainest: &[Plainest],
        options: &TestOptions,
    ) -> PropertyFailure {
        let (row, violation, summary) =
            shrink::shrink(tree, violation, plainest, options.max_shrink_time, |row| {
                self.cases_run += 1;
                self.check_alone(row).map(drop)
            });
        PropertyFailure {
            property: violation.property,
            detail: violation.detail,
            row: Some(row_object(self.info, &row)),
            shrink: Some(summary),
        }
    }

    /// The rows waiting for the sync-sized batch, checked (see [`SyncBatch::check`]) and
    /// dropped.
    fn check_sync_batch(&mut self) -> Result<Checked, TestRunError> {
        if self.pending.is_empty() {
            return Ok(Checked::Passed);
        }
        let starts = std::mem::take(&mut self.batch_starts);
        let (mut trees, mut rows, mut outcomes) = (Vec::new(), Vec::new(), Vec::new());
        for p in std::mem::take(&mut self.pending) {
            trees.push(p.tree);
            rows.push(p.row);
            outcomes.push(p.outcome);
        }
        let batch = SyncBatch {
            rows,
            outcomes,
            starts,
        };
        Ok(batch.check(self)?.with_trees(trees))
    }
}

/// Rows that passed their batches of generated rows, with their outcomes there, in generation
/// order, apart from their value trees.
struct SyncBatch {
    rows: Vec<GeneratedRow>,
    outcomes: Vec<RowOutcome>,
    /// Where each batch of generated rows starts.
    starts: Vec<usize>,
}

/// How a sync-sized batch fared; rows by their index in it.
enum SyncVerdict {
    Passed,
    /// Row `index` broke a property; `shrinkable` when the failure does not need the batch.
    Row {
        index: usize,
        violation: Violation,
        shrinkable: bool,
    },
    Whole(Violation),
}

impl SyncVerdict {
    /// As a check's verdict, with the rows' value trees.
    fn with_trees(self, mut trees: Vec<Tree>) -> Checked {
        match self {
            SyncVerdict::Passed => Checked::Passed,
            SyncVerdict::Whole(v) => Checked::Whole(v),
            SyncVerdict::Row {
                index,
                violation,
                shrinkable,
            } => {
                let tree = trees.swap_remove(index);
                Checked::Row {
                    row: tree.current(),
                    tree: shrinkable.then_some(tree),
                    violation,
                }
            }
        }
    }
}

impl SyncBatch {
    /// The rows again, as one batch of about a sync's size laid out differently (in reverse),
    /// on a new instance: each row must end as it did on the main instance. When one does not,
    /// its own batch of generated rows runs again on a new instance to say why: a different
    /// outcome there is state the module kept (`fresh-instance`), the same one means the
    /// batch's layout changed it (`batch-consistent`).
    fn check(self, cx: &Generated<'_>) -> Result<SyncVerdict, TransformError> {
        let n = self.rows.len();
        // The deadline is per call, and this call is a whole batch.
        let base = cx.engine.limits();
        let limits = SandboxLimits {
            call_deadline: base.call_deadline.saturating_mul(n as u32),
            ..base.clone()
        };
        let mut instance = TransformInstance::with_limits(cx.engine, cx.module, limits)?;
        let reversed: Vec<&GeneratedRow> = self.rows.iter().rev().collect();
        let mut outcomes =
            match batch(cx.info, &reversed).and_then(|b| run(&mut instance, &b, cx.as_of, n)) {
                Ok(o) => o,
                Err(e) => {
                    return Ok(SyncVerdict::Whole(Violation::new(
                        Property::BatchConsistent,
                        format!(
                            "a batch of {n} rows that each pass in batches of \
                         {GENERATED_BATCH_ROWS} failed as a whole: {}",
                            e.detail
                        ),
                    )));
                }
            };
        outcomes.reverse();
        let Some(i) = self
            .outcomes
            .iter()
            .zip(&outcomes)
            .position(|(before, in_sync)| before != in_sync)
        else {
            return Ok(SyncVerdict::Passed);
        };
        let start = self.starts.iter().copied().rfind(|&s| s <= i).unwrap_or(0);
        let end = self.starts.iter().copied().find(|&s| s > i).unwrap_or(n);
        let own: Vec<&GeneratedRow> = self.rows[start..end].iter().collect();
        let mut newer = TransformInstance::new(cx.engine, cx.module)?;
        let before = &self.outcomes[i];
        Ok(
            match batch(cx.info, &own).and_then(|b| run(&mut newer, &b, cx.as_of, own.len())) {
                Ok(again) => match same_elsewhere(before, &again[i - start]) {
                    Err(violation) => SyncVerdict::Row {
                        index: i,
                        violation,
                        shrinkable: true,
                    },
                    Ok(()) => SyncVerdict::Row {
                        index: i,
                        violation: Violation::new(
                            Property::BatchConsistent,
                            format!(
                                "the row gave {} in a batch of {} and {} in a batch of {n} laid \
                                 out differently",
                                shape(before),
                                end - start,
                                shape(&outcomes[i])
                            ),
                        ),
                        shrinkable: false,
                    },
                },
                Err(e) => SyncVerdict::Whole(Violation::new(
                    Property::FreshInstance,
                    format!(
                        "a batch of generated rows that passed on one instance failed on a newer \
                         one: {}",
                        e.detail
                    ),
                )),
            },
        )
    }
}

/// One batch of generated rows.
fn batch(info: &ModuleInfo, rows: &[&GeneratedRow]) -> Result<ConvertedBatch, Violation> {
    let rows: Vec<&[Option<Value>]> = rows.iter().map(|row| row.as_slice()).collect();
    batch_from_values(info, &rows).map_err(|e| {
        Violation::new(
            Property::NoFault,
            format!("host could not build the row: {e}"),
        )
    })
}

type TwoRuns = (Vec<RowOutcome>, Vec<RowOutcome>);

/// One call with `rows` rows; a module-level error is a fault of the batch.
fn run(
    instance: &mut TransformInstance,
    batch: &ConvertedBatch,
    as_of: NaiveDate,
    rows: usize,
) -> Result<Vec<RowOutcome>, Violation> {
    let outcomes = instance.process_borrowed(batch, as_of).map_err(fault)?;
    if outcomes.len() != rows {
        return Err(Violation::new(
            Property::NoFault,
            format!("{} outcomes for {rows} rows", outcomes.len()),
        ));
    }
    Ok(outcomes)
}

/// A row's outcome again on the same instance must be the first one.
fn same_again(first: &RowOutcome, again: &RowOutcome) -> Result<(), Violation> {
    if again == first {
        return Ok(());
    }
    Err(Violation::new(
        Property::Deterministic,
        format!(
            "the same row gave {} the first time and {} the second",
            shape(first),
            shape(again)
        ),
    ))
}

/// A row's outcome on a newer instance must be the one it had on the main instance.
fn same_elsewhere(first: &RowOutcome, other: &RowOutcome) -> Result<(), Violation> {
    if other == first {
        return Ok(());
    }
    Err(Violation::new(
        Property::FreshInstance,
        format!(
            "the row gave {} on one instance and {} on a newer one: the module keeps state \
             between rows",
            shape(first),
            shape(other)
        ),
    ))
}

fn one(mut outcomes: Vec<RowOutcome>) -> Result<RowOutcome, Violation> {
    outcomes
        .pop()
        .ok_or_else(|| Violation::new(Property::NoFault, "no outcome for the row"))
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
pub(crate) fn row_object(info: &ModuleInfo, row: &GeneratedRow) -> Map<String, Value> {
    info.input_columns
        .iter()
        .zip(row)
        .map(|(c, v)| (c.name.clone(), v.clone().unwrap_or(Value::Null)))
        .collect()
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.rotate_left(i as u32 * 16).to_le_bytes());
    }
    bytes
}

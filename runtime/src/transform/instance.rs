//! A live instance of a transform module: one per job run.
//!
//! A module that traps, overruns its deadline or its memory on some row must not take the run
//! down with it. When a batch call fails that way, the instance is replaced and the batch is
//! retried one row per call: the rows that fail again are rejected with a clear code
//! (`transform-trap`, `transform-timeout`, `transform-memory-limit`), the others go through.

use chrono::NaiveDate;

use super::TransformError;
use super::bindings::{Transform, TransformPre, WIT_PACKAGE, wit};
use super::columnar::{BatchPlan, ConvertedBatch};
use super::declared::{DeclaredFields, FieldLists, RecordFault, RecordScratch};
use super::engine::{CompiledModule, HostState, SandboxLimits, TransformEngine};
use super::info::ModuleInfo;
use super::outcome::{Finding, RowOutcome, Verdict, host_codes};
use super::record::Record;
use crate::reqcheck::{Target, targets};
use crate::source::RowBatch;
use wasmtime::Store;

/// An instantiated module with its self-description.
pub struct TransformInstance {
    store: Store<HostState>,
    bindings: Transform,
    info: ModuleInfo,
    /// `info.output_fields`, ready for checking every emitted record's keys.
    declared: DeclaredFields,
    /// The module's record type when it accepts every field the module declares: a record
    /// (whose keys are all declared, or it is refused) then keeps the type's rules as soon as
    /// its required keys are there, and is marked so for the body check (`Record::fits`).
    fits_target: Option<&'static Target>,
    /// Whether the module declares required every key the type requires: the record check
    /// has then found them all before a record is made, and nothing is left to look at.
    requires_what_target_requires: bool,
    module: CompiledModule,
    engine: TransformEngine,
    limits: SandboxLimits,
}

impl std::fmt::Debug for TransformInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformInstance")
            .field("module", &self.module)
            .field("info", &self.info.name)
            .finish()
    }
}

/// How a call into the module failed, when the failure belongs to the rows rather than to the
/// module as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowFault {
    Trap,
    Timeout,
    MemoryLimit,
}

impl RowFault {
    fn finding(self) -> Finding {
        let (code, message) = match self {
            RowFault::Trap => (host_codes::TRAP, "the transform module trapped on this row"),
            RowFault::Timeout => (
                host_codes::TIMEOUT,
                "the transform module did not finish this row within its deadline",
            ),
            RowFault::MemoryLimit => (
                host_codes::MEMORY_LIMIT,
                "the transform module exceeded its memory limit on this row",
            ),
        };
        Finding {
            field: "*".into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

enum CallError {
    Row(RowFault, TransformError),
    Module(TransformError),
}

impl TransformInstance {
    /// Instantiates `module` under the engine's default limits and asks it to describe itself.
    pub fn new(engine: &TransformEngine, module: &CompiledModule) -> Result<Self, TransformError> {
        Self::with_limits(engine, module, engine.limits().clone())
    }

    /// Instantiates `module` under a job's own limits.
    pub fn with_limits(
        engine: &TransformEngine,
        module: &CompiledModule,
        limits: SandboxLimits,
    ) -> Result<Self, TransformError> {
        let mut store = engine.new_store(&limits);
        let instantiate_error = |reason: String| TransformError::Instantiate {
            path: module.path.clone(),
            reason,
        };
        // Linking and type-checking the exports says whether the module fits the world;
        // instantiating then runs its start-up code under the sandbox limits.
        let pre = engine
            .linker()
            .instantiate_pre(&module.component)
            .and_then(TransformPre::new)
            .map_err(|e| {
                instantiate_error(format!(
                    "{e:#} (a transform must be a component of the `{WIT_PACKAGE}` world)"
                ))
            })?;
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|e| match classify(&e) {
                RowFault::MemoryLimit => instantiate_error(format!(
                    "it needs more memory at start-up than its limit of {} MiB ({}); raise \
                     `transform_memory_mb` for this job",
                    limits.memory_bytes >> 20,
                    trap_summary(&e)
                )),
                _ => call_error(module, "start", e),
            })?;
        let info: ModuleInfo = bindings
            .call_describe(&mut store)
            .map_err(|e| call_error(module, "describe", e))?
            .into();
        let fits_target = targets::by_name(&info.target).filter(|target| {
            info.output_fields
                .iter()
                .all(|field| target.fields.contains(&field.name.as_str()))
        });
        let requires_what_target_requires = fits_target.is_some_and(|target| {
            target.required.iter().all(|key| {
                info.output_fields
                    .iter()
                    .any(|field| field.required && field.name == *key)
            })
        });
        Ok(Self {
            store,
            bindings,
            declared: DeclaredFields::new(&info.output_fields),
            info,
            fits_target,
            requires_what_target_requires,
            module: module.clone(),
            engine: engine.clone(),
            limits,
        })
    }

    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    pub fn module(&self) -> &CompiledModule {
        &self.module
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Runs one batch of source rows through the module.
    pub fn process(
        &mut self,
        plan: &BatchPlan,
        rows: &RowBatch,
        as_of: NaiveDate,
    ) -> Result<Vec<RowOutcome>, TransformError> {
        let converted = plan.convert(rows);
        self.process_converted(converted, as_of)
    }

    /// Runs an already converted batch (example cases build these directly).
    pub fn process_converted(
        &mut self,
        converted: ConvertedBatch,
        as_of: NaiveDate,
    ) -> Result<Vec<RowOutcome>, TransformError> {
        let verdicts = self.verdicts(&converted.batch, as_of)?;
        let ConvertedBatch {
            keys,
            groups,
            conversion_findings,
            ..
        } = converted;
        Ok(outcomes(verdicts, keys, groups, conversion_findings))
    }

    /// Runs a converted batch the caller keeps (`reqsync transform test` runs each batch of
    /// generated rows three times): only its keys are copied.
    pub(crate) fn process_borrowed(
        &mut self,
        converted: &ConvertedBatch,
        as_of: NaiveDate,
    ) -> Result<Vec<RowOutcome>, TransformError> {
        let verdicts = self.verdicts(&converted.batch, as_of)?;
        Ok(outcomes(
            verdicts,
            converted.keys.clone(),
            converted.groups.clone(),
            converted.conversion_findings.clone(),
        ))
    }

    fn verdicts(
        &mut self,
        batch: &wit::RowBatch,
        as_of: NaiveDate,
    ) -> Result<Vec<Verdict>, TransformError> {
        let rows = batch.rows as usize;
        let context = wit::BatchContext {
            as_of_date: as_of.format("%Y-%m-%d").to_string(),
        };
        match self.call(&context, batch) {
            Ok(result) => self.interpret_all(result, rows),
            Err(CallError::Module(e)) => Err(e),
            Err(CallError::Row(fault, error)) => {
                // The error carries the trap kind and wasm backtrace, never row data.
                tracing::warn!(
                    module = %self.info.name,
                    fault = ?fault,
                    %error,
                    rows,
                    "transform failed on a batch; retrying it one row at a time"
                );
                self.replace()?;
                self.row_by_row(&context, batch)
            }
        }
    }

    fn call(
        &mut self,
        context: &wit::BatchContext,
        batch: &wit::RowBatch,
    ) -> Result<wit::BatchResult, CallError> {
        self.engine.arm_call(&mut self.store, &self.limits);
        match self
            .bindings
            .call_transform(&mut self.store, context, batch)
        {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(CallError::Module(TransformError::BatchRefused {
                module: self.info.name.clone(),
                code: e.code,
                message: e.message,
            })),
            Err(e) => {
                let fault = classify(&e);
                Err(CallError::Row(
                    fault,
                    call_error(&self.module, "transform", e),
                ))
            }
        }
    }

    /// A trapped instance is unusable (its memory may be half-updated): start a fresh one.
    fn replace(&mut self) -> Result<(), TransformError> {
        *self = TransformInstance::with_limits(&self.engine, &self.module, self.limits.clone())?;
        Ok(())
    }

    fn row_by_row(
        &mut self,
        context: &wit::BatchContext,
        batch: &wit::RowBatch,
    ) -> Result<Vec<Verdict>, TransformError> {
        let mut verdicts = Vec::with_capacity(batch.rows as usize);
        for i in 0..batch.rows as usize {
            let one = single_row(batch, i);
            match self.call(context, &one) {
                Ok(result) => verdicts.extend(self.interpret_all(result, 1)?),
                Err(CallError::Module(e)) => return Err(e),
                Err(CallError::Row(fault, _)) => {
                    verdicts.push(Verdict::Reject {
                        findings: vec![fault.finding()],
                    });
                    self.replace()?;
                }
            }
        }
        Ok(verdicts)
    }

    fn interpret_all(
        &self,
        result: wit::BatchResult,
        rows: usize,
    ) -> Result<Vec<Verdict>, TransformError> {
        if result.outcomes.len() != rows {
            return Err(TransformError::BadOutput {
                module: self.info.name.clone(),
                reason: format!("{} outcomes for {rows} rows", result.outcomes.len()),
            });
        }
        let lists = FieldLists {
            text: &result.text,
            indexes: &result.field_indexes,
            kinds: &result.kinds,
            values: &result.values,
        };
        if !lists.parallel() {
            return Err(TransformError::BadOutput {
                module: self.info.name.clone(),
                reason: format!(
                    "field lists of different lengths ({} indexes, {} kinds, {} values)",
                    lists.indexes.len(),
                    lists.kinds.len(),
                    lists.values.len()
                ),
            });
        }
        // One scratch space writes every record of the batch.
        let mut scratch = RecordScratch::default();
        Ok(result
            .outcomes
            .into_iter()
            .map(|o| self.interpret(o, &lists, &mut scratch))
            .collect())
    }

    /// Checks an emitted record against what the module declared and writes its JSON; a
    /// module that breaks its own declaration rejects the row rather than sending something
    /// unexpected.
    fn interpret(
        &self,
        outcome: wit::Outcome,
        lists: &FieldLists<'_>,
        scratch: &mut RecordScratch,
    ) -> Verdict {
        match outcome {
            wit::Outcome::Skip(s) => Verdict::Skip {
                code: s.code,
                message: s.message,
            },
            wit::Outcome::Reject(findings) => Verdict::Reject {
                findings: findings.into_iter().map(finding).collect(),
            },
            wit::Outcome::Emit(e) => {
                let first = e.first as usize;
                let entries = first..first.saturating_add(e.count as usize);
                match self.declared.write_record(
                    lists,
                    entries,
                    self.limits.max_record_bytes,
                    scratch,
                ) {
                    Ok(()) => {
                        let fits = self.fits_target.filter(|target| {
                            self.requires_what_target_requires
                                || target
                                    .required
                                    .iter()
                                    .all(|key| self.declared.wrote(scratch, key))
                        });
                        Verdict::Emit {
                            record: Record::from_host_json(scratch.json(), fits),
                            warnings: e.warnings.into_iter().map(finding).collect(),
                        }
                    }
                    Err(RecordFault::Module { code, message }) => module_fault(code, message),
                    Err(RecordFault::Findings(findings)) => Verdict::Reject { findings },
                }
            }
        }
    }
}

/// Each row's outcome: its verdict, unless the host could not convert one of its values.
fn outcomes(
    verdicts: Vec<Verdict>,
    keys: Vec<compact_str::CompactString>,
    groups: Option<Vec<compact_str::CompactString>>,
    conversion_findings: Vec<Option<Vec<Finding>>>,
) -> Vec<RowOutcome> {
    let mut groups = groups.map(Vec::into_iter);
    verdicts
        .into_iter()
        .zip(keys)
        .zip(conversion_findings)
        .map(|((verdict, key), conversion)| {
            let group = groups.as_mut().and_then(Iterator::next);
            // A value the host could not convert reached the module as NULL; whatever the
            // module made of that, the row is not what the source holds.
            let verdict = match conversion {
                Some(findings) => Verdict::Reject { findings },
                None => verdict,
            };
            RowOutcome {
                key,
                group,
                verdict,
            }
        })
        .collect()
}

/// Row `i` of a batch, as a batch of its own.
fn single_row(batch: &wit::RowBatch, i: usize) -> wit::RowBatch {
    let columns = batch
        .columns
        .iter()
        .map(|c| {
            let values = match &c.values {
                wit::ColumnValues::Text(t) => {
                    let (from, to) = (t.offsets[i] as usize, t.offsets[i + 1] as usize);
                    let data = t.data.get(from..to).unwrap_or_default().to_string();
                    wit::ColumnValues::Text(wit::TextValues {
                        offsets: vec![0, data.len() as u32],
                        data,
                    })
                }
                wit::ColumnValues::Integer(v) => wit::ColumnValues::Integer(vec![v[i]]),
                wit::ColumnValues::Float(v) => wit::ColumnValues::Float(vec![v[i]]),
            };
            wit::Column {
                name: c.name.clone(),
                values,
                present: c.present.get(i).map(|&p| vec![p]).unwrap_or_default(),
            }
        })
        .collect();
    wit::RowBatch { rows: 1, columns }
}

fn classify(e: &wasmtime::Error) -> RowFault {
    match e.downcast_ref::<wasmtime::Trap>() {
        // An epoch deadline and an empty fuel tank are the same fault: the row took too long.
        Some(wasmtime::Trap::Interrupt | wasmtime::Trap::OutOfFuel) => RowFault::Timeout,
        Some(_) => RowFault::Trap,
        // `StoreLimits` with `trap_on_grow_failure` fails the grow with an error of its own
        // rather than a `Trap`; its message is the only thing that identifies it.
        None if format!("{e:#}").contains("growing memory") => RowFault::MemoryLimit,
        None => RowFault::Trap,
    }
}

fn finding(f: wit::Finding) -> Finding {
    Finding {
        field: f.field,
        code: f.code,
        message: f.message,
    }
}

fn module_fault(code: &str, message: &str) -> Verdict {
    Verdict::Reject {
        findings: vec![Finding {
            field: "*".into(),
            code: code.into(),
            message: message.into(),
        }],
    }
}

fn call_error(module: &CompiledModule, func: &str, e: wasmtime::Error) -> TransformError {
    match classify(&e) {
        RowFault::Timeout => TransformError::Timeout {
            path: module.path.clone(),
            func: func.into(),
        },
        _ => {
            // The wasm backtrace (function names and offsets) is for the module's author, on
            // request (`-v`); the message says what happened.
            tracing::debug!(module = %module.path.display(), func, error = %format!("{e:#}"), "transform module trapped");
            TransformError::Trap {
                path: module.path.clone(),
                func: func.into(),
                reason: trap_summary(&e),
            }
        }
    }
}

/// What stopped the module, without the wasm backtrace wasmtime attaches as context.
fn trap_summary(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        // Rust's `panic!` and `unreachable!` end in this instruction.
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            format!(
                "{} (a panic in the module)",
                wasmtime::Trap::UnreachableCodeReached
            )
        }
        Some(trap) => trap.to_string(),
        None => e.root_cause().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{ColumnInfo, Value};

    #[test]
    fn an_empty_fuel_tank_is_a_timeout_like_an_epoch_deadline() {
        for trap in [wasmtime::Trap::Interrupt, wasmtime::Trap::OutOfFuel] {
            assert_eq!(classify(&wasmtime::Error::new(trap)), RowFault::Timeout);
        }
        let other = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        assert_eq!(classify(&other), RowFault::Trap);
    }

    /// An instance of the hostile test guest (`tests/guests/hostile`) under `engine`.
    fn hostile_instance(engine: &TransformEngine) -> TransformInstance {
        let module = engine
            .load(std::path::Path::new(reqsync_test_guests::HOSTILE))
            .expect("loads");
        TransformInstance::new(engine, &module).expect("instantiates")
    }

    /// Rows for the hostile test guest: `patno`, and `mode` naming how to misbehave.
    fn hostile_rows(modes: &[Option<&str>]) -> (Vec<ColumnInfo>, RowBatch) {
        let columns = ["patno", "mode"]
            .iter()
            .map(|n| ColumnInfo {
                name: (*n).into(),
                declared_type: String::new(),
            })
            .collect();
        let rows = (1..).zip(modes).map(|(patno, mode)| {
            vec![
                Value::Int(patno),
                mode.map_or(Value::Null, |m| Value::Text(m.into())),
            ]
        });
        (columns, RowBatch::from_rows(2, rows))
    }

    #[test]
    fn records_keeping_their_record_types_rules_are_marked_for_the_body_check() {
        use crate::reqcheck::targets::{PATIENT_DATA, VACCINE_DOSE_DATA};
        let engine = TransformEngine::new(SandboxLimits::default(), None).expect("engine");
        let mut instance = hostile_instance(&engine);
        let (columns, rows) = hostile_rows(&[None, None]);
        let plan =
            BatchPlan::new(instance.info(), &columns, chrono_tz::America::Chicago).expect("plan");
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let outcomes = instance.process(&plan, &rows, as_of).expect("processes");
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            let Verdict::Emit { record, .. } = outcome.verdict else {
                panic!("the hostile guest emits well-behaved rows");
            };
            assert!(record.fits(&PATIENT_DATA));
            assert!(!record.fits(&VACCINE_DOSE_DATA));
        }
    }

    /// What a module that bypasses the guest SDK could hand back: the host refuses lists that
    /// do not line up as a module fault, and a record pointing outside them on its own row.
    #[test]
    fn batch_results_whose_field_lists_do_not_line_up_are_refused() {
        let engine = TransformEngine::new(SandboxLimits::default(), None).expect("engine");
        let instance = hostile_instance(&engine);
        let emit = |first, count| {
            wit::Outcome::Emit(wit::Emitted {
                first,
                count,
                warnings: Vec::new(),
            })
        };
        // patient_number, first_name, last_name, dob, hd_mpfile_updated_at: all required.
        let text = "TestGuest2000-01-012016-09-28T12:00:00-05:00";
        let spans: [(u64, u64); 4] = [(0, 4), (4, 5), (9, 10), (19, 25)];
        let result = |indexes: Vec<u16>, outcomes| wit::BatchResult {
            text: text.into(),
            // Field 0 an integer (kind 1), the others text (kind 0).
            kinds: indexes.iter().map(|&i| u8::from(i == 0)).collect(),
            values: indexes
                .iter()
                .map(|&i| match i {
                    0 => 7,
                    i => {
                        let (start, len) = spans[usize::from(i) - 1];
                        (start << 32) | len
                    }
                })
                .collect(),
            field_indexes: indexes,
            outcomes,
        };
        let whole = || vec![0, 1, 2, 3, 4];

        let good = instance
            .interpret_all(result(whole(), vec![emit(0, 5)]), 1)
            .expect("lists line up");
        let Verdict::Emit { record, .. } = &good[0] else {
            panic!("a whole record is emitted: {good:?}");
        };
        assert_eq!(
            record.json(),
            r#"{"patient_number":7,"first_name":"Test","last_name":"Guest","dob":"2000-01-01","hd_mpfile_updated_at":"2016-09-28T12:00:00-05:00"}"#
        );

        let mut short = result(whole(), vec![emit(0, 5)]);
        short.values.pop();
        let err = instance.interpret_all(short, 1).expect_err("lists differ");
        assert!(
            err.to_string().contains("5 indexes, 5 kinds, 4 values"),
            "{err}"
        );

        let verdicts = instance
            .interpret_all(result(whole(), vec![emit(0, 5), emit(3, 5)]), 2)
            .expect("the batch goes on");
        assert!(matches!(verdicts[0], Verdict::Emit { .. }));
        let Verdict::Reject { findings } = &verdicts[1] else {
            panic!("entries past the lists are refused: {verdicts:?}");
        };
        assert_eq!(findings[0].code, host_codes::RECORD_SPAN_INVALID);
        assert_eq!(findings[0].field, "*");

        let err = instance
            .interpret_all(result(whole(), vec![emit(0, 5)]), 2)
            .expect_err("an outcome short");
        assert!(err.to_string().contains("1 outcomes for 2 rows"), "{err}");
    }

    #[test]
    fn fuel_metering_stops_a_looping_row_with_the_same_rejection_as_a_deadline() {
        // About 20 ms of spinning; the well-behaved rows need a tiny fraction of it.
        let engine =
            TransformEngine::with_fuel(SandboxLimits::default(), None, 20_000_000).expect("engine");
        let mut instance = hostile_instance(&engine);
        let (columns, rows) = hostile_rows(&[None, Some("loop"), None]);
        let plan =
            BatchPlan::new(instance.info(), &columns, chrono_tz::America::Chicago).expect("plan");
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let outcomes = instance
            .process(&plan, &rows, as_of)
            .expect("the host survives");
        let codes: Vec<&str> = outcomes
            .iter()
            .map(|o| match &o.verdict {
                Verdict::Emit { .. } => "emit",
                Verdict::Reject { findings } => &findings[0].code,
                Verdict::Skip { .. } => "skip",
            })
            .collect();
        assert_eq!(codes, ["emit", host_codes::TIMEOUT, "emit"]);
        // Each call gets a full tank: the instance goes on working after the loop.
        let (_, rows) = hostile_rows(&[None, None]);
        let outcomes = instance.process(&plan, &rows, as_of).expect("next batch");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o.verdict, Verdict::Emit { .. }))
        );
    }
}

//! A live instance of a transform module: one per job run.

use chrono::NaiveDate;

use super::TransformError;
use super::bindings::{Transform, WIT_PACKAGE, wit};
use super::columnar::{BatchPlan, ConvertedBatch};
use super::engine::{CompiledModule, HostState, TransformEngine};
use super::info::ModuleInfo;
use super::outcome::{Finding, RowOutcome, Verdict};
use crate::source::RowBatch;
use wasmtime::Store;

/// An instantiated module with its self-description.
pub struct TransformInstance {
    store: Store<HostState>,
    bindings: Transform,
    info: ModuleInfo,
    module: CompiledModule,
    deadline_ticks: u64,
}

impl std::fmt::Debug for TransformInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformInstance")
            .field("module", &self.module)
            .field("info", &self.info.name)
            .finish()
    }
}

impl TransformInstance {
    /// Instantiates `module` and asks it to describe itself.
    pub fn new(engine: &TransformEngine, module: &CompiledModule) -> Result<Self, TransformError> {
        let mut store = engine.new_store();
        let bindings = Transform::instantiate(&mut store, &module.component, engine.linker())
            .map_err(|e| TransformError::Instantiate {
                path: module.path.clone(),
                reason: format!(
                    "{e:#} (a transform must be a component of the `{WIT_PACKAGE}` world and may \
                     import only WASI interfaces)"
                ),
            })?;
        let info: ModuleInfo = bindings
            .call_describe(&mut store)
            .map_err(|e| call_error(module, "describe", e))?
            .into();
        Ok(Self {
            store,
            bindings,
            info,
            module: module.clone(),
            deadline_ticks: engine.deadline_ticks(),
        })
    }

    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    pub fn module(&self) -> &CompiledModule {
        &self.module
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
        let ConvertedBatch {
            batch,
            keys,
            groups,
            conversion_findings,
        } = converted;
        let rows = batch.rows as usize;
        let context = wit::BatchContext {
            as_of_date: as_of.format("%Y-%m-%d").to_string(),
        };
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = self
            .bindings
            .call_transform(&mut self.store, &context, &batch)
            .map_err(|e| call_error(&self.module, "transform", e))?
            .map_err(|e| TransformError::BatchRefused {
                module: self.info.name.clone(),
                code: e.code,
                message: e.message,
            })?;
        if result.outcomes.len() != rows {
            return Err(TransformError::BadOutput {
                module: self.info.name.clone(),
                reason: format!("{} outcomes for {rows} rows", result.outcomes.len()),
            });
        }
        let mut out = Vec::with_capacity(rows);
        let mut groups = groups.map(Vec::into_iter);
        for ((outcome, key), conversion) in result
            .outcomes
            .into_iter()
            .zip(keys)
            .zip(conversion_findings)
        {
            let group = groups.as_mut().and_then(Iterator::next);
            // A value the host could not convert reached the module as NULL; whatever the
            // module made of that, the row is not what the source holds.
            let verdict = match conversion {
                Some(findings) => Verdict::Reject { findings },
                None => self.interpret(outcome, &result.records),
            };
            out.push(RowOutcome {
                key,
                group,
                verdict,
            });
        }
        Ok(out)
    }

    /// Checks an emitted record against what the module declared; a module that breaks its own
    /// declaration rejects the row rather than sending something unexpected.
    fn interpret(&self, outcome: wit::Outcome, records: &str) -> Verdict {
        match outcome {
            wit::Outcome::Skip(s) => Verdict::Skip {
                code: s.code,
                message: s.message,
            },
            wit::Outcome::Reject(findings) => Verdict::Reject {
                findings: findings.into_iter().map(finding).collect(),
            },
            wit::Outcome::Emit(e) => {
                let start = e.start as usize;
                let end = start.saturating_add(e.len as usize);
                let Some(text) = records.get(start..end) else {
                    return module_fault(
                        "record-span-invalid",
                        "the emitted span is outside the records buffer",
                    );
                };
                let record = match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(serde_json::Value::Object(map)) => map,
                    Ok(_) => {
                        return module_fault(
                            "record-not-object",
                            "the emitted record is not a JSON object",
                        );
                    }
                    Err(_) => {
                        return module_fault(
                            "record-invalid-json",
                            "the emitted record is not valid JSON",
                        );
                    }
                };
                let mut findings = Vec::new();
                for key in record.keys() {
                    if !self.info.declares_field(key) {
                        findings.push(Finding {
                            field: key.clone(),
                            code: "undeclared-field".into(),
                            message: "the module emitted a field it did not declare".into(),
                        });
                    }
                }
                for f in self.info.output_fields.iter().filter(|f| f.required) {
                    if record.get(&f.name).is_none_or(serde_json::Value::is_null) {
                        findings.push(Finding {
                            field: f.name.clone(),
                            code: "required-field-missing".into(),
                            message:
                                "the module emitted a record without a field it declared required"
                                    .into(),
                        });
                    }
                }
                if findings.is_empty() {
                    Verdict::Emit {
                        record,
                        warnings: e.warnings.into_iter().map(finding).collect(),
                    }
                } else {
                    Verdict::Reject { findings }
                }
            }
        }
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
    let interrupted = matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    );
    if interrupted {
        TransformError::Timeout {
            path: module.path.clone(),
            func: func.into(),
        }
    } else {
        TransformError::Trap {
            path: module.path.clone(),
            func: func.into(),
            reason: format!("{e:#}"),
        }
    }
}

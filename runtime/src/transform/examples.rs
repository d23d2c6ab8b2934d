//! Example cases shipped beside a transform (`examples.json`): input rows and the outcome the
//! module must give. They document a module's rules and gate it before use.
//!
//! Format: `{"as_of_date": "YYYY-MM-DD", "cases": [{"name", "row": {column: value},
//! "expect": {"emit": {...}, "warnings": ["field:code"]} | {"reject": ["field:code"]} |
//! {"skip": "code"}}]}`. Row values are what the module receives: strings for text-like
//! columns (timestamps already carry their offset), integers, booleans, or null.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use super::columnar::ConvertedBatch;
use super::info::ModuleInfo;
use super::json_rows::batch_from_json;
use super::{TransformError, TransformInstance, Verdict};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleFile {
    pub as_of_date: NaiveDate,
    pub cases: Vec<ExampleCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleCase {
    pub name: String,
    pub row: serde_json::Map<String, serde_json::Value>,
    pub expect: Expectation,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Expectation {
    Emit {
        emit: serde_json::Map<String, serde_json::Value>,
        #[serde(default)]
        warnings: BTreeSet<String>,
    },
    Reject {
        reject: BTreeSet<String>,
    },
    Skip {
        skip: String,
    },
}

/// Why an example case failed. Example rows are made-up test data, so showing them is fine.
#[derive(Debug)]
pub struct CaseFailure {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    #[error("cannot read example cases {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("example case `{case}`: column `{column}` {reason}")]
    BadRow {
        case: String,
        column: String,
        reason: String,
    },
    #[error(transparent)]
    Transform(#[from] TransformError),
}

impl ExampleFile {
    pub fn load(path: &Path) -> Result<Self, ExampleError> {
        let text =
            crate::input_file::read_to_string(path, crate::input_file::EXAMPLES).map_err(|e| {
                ExampleError::Read {
                    path: path.display().to_string(),
                    reason: e.reason(),
                }
            })?;
        serde_json::from_str(&text).map_err(|e| ExampleError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Runs every case through `instance` in one batch; returns the failures (empty = pass).
    pub fn run(&self, instance: &mut TransformInstance) -> Result<Vec<CaseFailure>, ExampleError> {
        let converted = self.to_batch(instance.info())?;
        let outcomes = instance.process_converted(converted, self.as_of_date)?;
        let mut failures = Vec::new();
        for (case, outcome) in self.cases.iter().zip(outcomes) {
            if let Some(reason) = compare(&case.expect, &outcome.verdict) {
                failures.push(CaseFailure {
                    name: case.name.clone(),
                    reason,
                });
            }
        }
        Ok(failures)
    }

    fn to_batch(&self, info: &ModuleInfo) -> Result<ConvertedBatch, ExampleError> {
        let rows: Vec<_> = self.cases.iter().map(|c| &c.row).collect();
        batch_from_json(info, &rows).map_err(|e| ExampleError::BadRow {
            case: self.cases[e.row].name.clone(),
            column: e.column,
            reason: e.reason.to_owned(),
        })
    }
}

fn compare(expect: &Expectation, got: &Verdict) -> Option<String> {
    match (expect, got) {
        (
            Expectation::Emit { emit, warnings },
            Verdict::Emit {
                record,
                warnings: got_w,
            },
        ) => {
            let got_w: BTreeSet<String> = got_w.iter().map(|w| w.tag()).collect();
            if emit != record.fields() {
                Some(format!(
                    "emitted {}, expected {}",
                    serde_json::Value::Object(record.fields().clone()),
                    serde_json::Value::Object(emit.clone())
                ))
            } else if *warnings != got_w {
                Some(format!("warnings {got_w:?}, expected {warnings:?}"))
            } else {
                None
            }
        }
        (Expectation::Reject { reject }, Verdict::Reject { findings }) => {
            let got: BTreeSet<String> = findings.iter().map(|f| f.tag()).collect();
            (got != *reject).then(|| format!("rejected with {got:?}, expected {reject:?}"))
        }
        (Expectation::Skip { skip }, Verdict::Skip { code, .. }) => {
            (code != skip).then(|| format!("skipped with `{code}`, expected `{skip}`"))
        }
        (expect, got) => Some(format!(
            "got {}, expected {}",
            describe(got),
            expected_kind(expect)
        )),
    }
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Emit { record, .. } => {
            format!(
                "emit {}",
                serde_json::Value::Object(record.fields().clone())
            )
        }
        Verdict::Skip { code, .. } => format!("skip `{code}`"),
        Verdict::Reject { findings } => {
            format!(
                "reject {:?}",
                findings.iter().map(|f| f.tag()).collect::<Vec<_>>()
            )
        }
    }
}

fn expected_kind(e: &Expectation) -> &'static str {
    match e {
        Expectation::Emit { .. } => "emit",
        Expectation::Reject { .. } => "reject",
        Expectation::Skip { .. } => "skip",
    }
}

//! Runs a [`Transform`] natively, without wasm (feature `testing`).
//!
//! Rows are given as JSON objects (column name → string / integer / boolean / null) and turned
//! into the same columnar `row-batch` the host builds; the batch then goes through the very
//! function the component's `transform` export calls. Every emitted record is checked against
//! the module's contract on the way out (declared fields only, each once, required fields
//! present, no `null`, no `""`), and so are findings (declared fields, kebab-case codes,
//! non-empty messages), so a contract break fails the author's tests rather than a sync.
//!
//! The harness panics on misuse (a row value of the wrong JSON type, an undeclared column, a
//! malformed example file): those are bugs in the test, not outcomes to assert on.
//!
//! For property tests, [`strategies`] generates the values transforms meet (names, dates, phone
//! numbers, ZIP codes, blanks) and [`row`] builds a row from them:
//!
//! ```
//! use proptest::prelude::*;
//! use reqsync_guest::testing::{self, strategies};
//! # use reqsync_guest::{columns, Context, FieldSpec, ModuleInfo, Outcome, RecordWriter, Row};
//! # use reqsync_guest::Transform;
//! # columns! { pub mod input { id: Integer, required; name: Text, required; } }
//! # struct Names;
//! # const OUTPUT: &[FieldSpec] =
//! #     &[FieldSpec::required("patient_number"), FieldSpec::required("last_name")];
//! # impl Transform for Names {
//! #     fn info() -> ModuleInfo {
//! #         ModuleInfo { name: "names", version: "1.0.0", target: "patient_data",
//! #             key_column: "id", input_columns: input::SPECS, output_fields: OUTPUT }
//! #     }
//! #     fn row(row: &Row<'_>, _: &Context, out: &mut RecordWriter) -> Outcome {
//! #         let name = reqsync_guest::rules::tidy_name(row.text(input::name).unwrap_or_default());
//! #         if name.is_empty() {
//! #             return Outcome::reject_one("last_name", "blank", "the name is blank");
//! #         }
//! #         out.int("patient_number", row.int(input::id).unwrap_or_default());
//! #         out.str("last_name", &name);
//! #         Outcome::emit()
//! #     }
//! # }
//!
//! proptest! {
//!     // #[test] here in a test file; this example calls it below.
//!     fn emitted_names_are_trimmed(name in strategies::non_blank_names()) {
//!         let row = testing::row(serde_json::json!({"id": 1})).set("name", name);
//!         let outcome = testing::run_row::<Names>("2026-01-01", row);
//!         let record = outcome.record().expect("a non-blank name is sent");
//!         let sent = record["last_name"].as_str().expect("text");
//!         prop_assert_eq!(sent.trim(), sent);
//!     }
//! }
//! # emitted_names_are_trimmed();
//! ```

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::bindings::reqsync::transform::types as wit;
use crate::engine::UNDECLARED_FIELD;
use crate::types::{ColumnSpec, ColumnType, ModuleInfo};
use crate::writer::kind;
use crate::{Transform, engine};

pub mod strategies;

/// What the module decided about one row, in a form that is easy to assert on.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// The emitted record, parsed, and its warnings as sorted `field:code` strings.
    Emit {
        record: Map<String, Value>,
        warnings: Vec<String>,
    },
    Skip {
        code: String,
        message: String,
    },
    /// Sorted `field:code` strings.
    Reject(Vec<String>),
}

impl RowOutcome {
    /// The emitted record; `None` for a skip or a rejection.
    pub fn record(&self) -> Option<&Map<String, Value>> {
        match self {
            Self::Emit { record, .. } => Some(record),
            _ => None,
        }
    }

    /// The warnings of an emitted record (`field:code`, sorted); empty otherwise.
    pub fn warnings(&self) -> &[String] {
        match self {
            Self::Emit { warnings, .. } => warnings,
            _ => &[],
        }
    }

    /// The rejection findings (`field:code`, sorted); empty unless rejected.
    pub fn rejections(&self) -> &[String] {
        match self {
            Self::Reject(findings) => findings,
            _ => &[],
        }
    }

    /// The skip code; `None` unless skipped.
    pub fn skip_code(&self) -> Option<&str> {
        match self {
            Self::Skip { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A row for [`run_row`] and [`run_rows`], built from a base row and changed cell by cell. A
/// column the row has no key for is NULL.
///
/// ```
/// use reqsync_guest::testing::row;
/// use serde_json::json;
///
/// let valid = json!({"patno": 7, "lname": "Doe", "fname": "Jane", "email": "j@example.com"});
/// let r = row(valid).set("lname", " DOE ").set("patno", 8).null("email");
/// assert_eq!(r.get("lname"), Some(&json!(" DOE ")));
/// assert_eq!(serde_json::Value::from(r), json!({"patno": 8, "lname": " DOE ", "fname": "Jane"}));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestRow(Map<String, Value>);

/// Starts a [`TestRow`] from `base`, usually a valid row written with `serde_json::json!`.
///
/// # Panics
/// When `base` is not a JSON object.
pub fn row(base: Value) -> TestRow {
    match base {
        Value::Object(cells) => TestRow(cells),
        other => panic!("testing::row: the base row is not a JSON object: {other}"),
    }
}

impl TestRow {
    /// Sets a cell: a `&str`/`String` for text, date and timestamp columns, an integer, a
    /// `bool`, or an `Option` of those (`None` is NULL).
    pub fn set(mut self, column: &str, value: impl Into<Value>) -> Self {
        self.0.insert(column.to_owned(), value.into());
        self
    }

    /// Makes a cell NULL.
    pub fn null(mut self, column: &str) -> Self {
        self.0.remove(column);
        self
    }

    /// The cell's value; `None` when it is NULL.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.get(column).filter(|value| !value.is_null())
    }

    /// The text cells, as `(column, value)`: what a PHI check looks for in findings.
    pub fn texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter_map(|(column, value)| Some((column.as_str(), value.as_str()?)))
    }
}

impl From<TestRow> for Value {
    fn from(row: TestRow) -> Self {
        Value::Object(row.0)
    }
}

/// The module failed the whole batch (WIT `batch-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub code: String,
    pub message: String,
}

impl fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Builds the columnar batch the host would build for `rows`, with one column per entry of
/// `columns` (a row without a key holds NULL there).
///
/// Values: JSON strings for text, date, time and timestamp columns; integers for integer
/// columns; `true`/`false` (or 0/1) for boolean columns; numbers for float columns; `null` for
/// NULL. Like the host, a column without NULLs gets an empty `present` list.
///
/// # Panics
/// When a row is not an object, has a key that is not in `columns`, or a value of the wrong
/// JSON type.
pub fn batch_from_rows(columns: &[ColumnSpec], rows: &[Value]) -> wit::RowBatch {
    let objects: Vec<&Map<String, Value>> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Object(object) => object,
            other => panic!("row {i} is not a JSON object: {other}"),
        })
        .collect();
    for (i, object) in objects.iter().enumerate() {
        for key in object.keys() {
            if !columns.iter().any(|c| c.name == key) {
                panic!("row {i} has `{key}`, which is not an input column of the module");
            }
        }
    }
    let columns = columns
        .iter()
        .map(|spec| build_column(spec, &objects))
        .collect();
    wit::RowBatch {
        rows: u32::try_from(rows.len()).unwrap_or_else(|_| panic!("too many rows")),
        columns,
    }
}

fn build_column(spec: &ColumnSpec, rows: &[&Map<String, Value>]) -> wit::Column {
    let mut present = Vec::with_capacity(rows.len());
    let cells: Vec<Option<&Value>> = rows
        .iter()
        .map(|row| row.get(spec.name).filter(|v| !v.is_null()))
        .collect();
    for cell in &cells {
        present.push(u8::from(cell.is_some()));
    }
    let wrong = |i: usize, value: &Value| -> ! {
        panic!(
            "row {i}, column `{}` ({}): unexpected value {value}",
            spec.name,
            spec.kind.wit_name()
        )
    };
    let values = if spec.kind.is_text() {
        let mut data = String::new();
        let mut offsets = vec![0u32];
        for (i, cell) in cells.iter().enumerate() {
            match cell {
                None => {}
                Some(Value::String(text)) => data.push_str(text),
                Some(other) => wrong(i, other),
            }
            offsets.push(u32::try_from(data.len()).unwrap_or_else(|_| panic!("batch too big")));
        }
        wit::ColumnValues::Text(wit::TextValues { data, offsets })
    } else if spec.kind.is_integer() {
        let values = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| match cell {
                None => 0,
                Some(Value::Bool(b)) if spec.kind == ColumnType::Boolean => i64::from(*b),
                Some(value @ Value::Number(n)) => n.as_i64().unwrap_or_else(|| wrong(i, value)),
                Some(other) => wrong(i, other),
            })
            .collect();
        wit::ColumnValues::Integer(values)
    } else {
        let values = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| match cell {
                None => 0.0,
                Some(value @ Value::Number(n)) => n.as_f64().unwrap_or_else(|| wrong(i, value)),
                Some(other) => wrong(i, other),
            })
            .collect();
        wit::ColumnValues::Float(values)
    };
    if present.iter().all(|&p| p == 1) {
        present.clear();
    }
    wit::Column {
        name: spec.name.to_owned(),
        values,
        present,
    }
}

/// Runs `rows` through `T` as one batch, with every declared input column present.
///
/// # Panics
/// On malformed rows (see [`batch_from_rows`]) or when the module breaks its contract.
pub fn run_rows<T: Transform>(
    as_of_date: &str,
    rows: &[Value],
) -> Result<Vec<RowOutcome>, BatchFailure> {
    run_rows_omitting::<T>(as_of_date, rows, &[])
}

/// Like [`run_rows`], but the batch lacks the columns named in `omit` — how a test checks
/// the `missing-column` batch error or an optional column a deployment's query leaves out.
pub fn run_rows_omitting<T: Transform>(
    as_of_date: &str,
    rows: &[Value],
    omit: &[&str],
) -> Result<Vec<RowOutcome>, BatchFailure> {
    let info = T::info();
    let mut batch = batch_from_rows(info.input_columns, rows);
    batch.columns.retain(|c| !omit.contains(&c.name.as_str()));
    run_batch::<T>(as_of_date, &batch)
}

/// Runs one row (a `serde_json::Value` object or a [`TestRow`]); a batch error becomes a panic.
pub fn run_row<T: Transform>(as_of_date: &str, row: impl Into<Value>) -> RowOutcome {
    run_row_with_messages::<T>(as_of_date, row).0
}

/// Like [`run_row`], and also every finding and skip the module reported for the row, as the
/// host would log them: `field:code: message` for warnings and rejections, `code: message` for
/// a skip. For properties such as "no finding ever quotes a row value".
pub fn run_row_with_messages<T: Transform>(
    as_of_date: &str,
    row: impl Into<Value>,
) -> (RowOutcome, Vec<String>) {
    let info = T::info();
    let batch = batch_from_rows(info.input_columns, &[row.into()]);
    match run_batch_reported::<T>(as_of_date, &batch) {
        Ok(mut outcomes) if outcomes.len() == 1 => outcomes.remove(0),
        Ok(outcomes) => panic!("one row in, {} outcomes out", outcomes.len()),
        Err(failure) => panic!("batch failed: {failure}"),
    }
}

/// Runs an already built batch through the same code path as the component export.
pub fn run_batch<T: Transform>(
    as_of_date: &str,
    batch: &wit::RowBatch,
) -> Result<Vec<RowOutcome>, BatchFailure> {
    let outcomes = run_batch_reported::<T>(as_of_date, batch)?;
    Ok(outcomes.into_iter().map(|(outcome, _)| outcome).collect())
}

/// Runs a batch through the component's `transform` export code and returns its raw result,
/// with none of [`run_batch`]'s contract checks and no parsing of the records: the rule logic
/// alone, as the component runs it, for timing it natively (the host's transform-cost
/// benchmark). Tests want [`run_batch`].
pub fn transform_unchecked<T: Transform>(
    as_of_date: &str,
    batch: &wit::RowBatch,
) -> Result<wit::BatchResult, BatchFailure> {
    let context = wit::BatchContext {
        as_of_date: as_of_date.to_owned(),
    };
    engine::transform::<T>(&context, batch).map_err(|e| BatchFailure {
        code: e.code,
        message: e.message,
    })
}

/// [`run_batch`], with each row's findings and skip as log lines.
fn run_batch_reported<T: Transform>(
    as_of_date: &str,
    batch: &wit::RowBatch,
) -> Result<Vec<(RowOutcome, Vec<String>)>, BatchFailure> {
    let info = T::info();
    check_info(&info);
    let context = wit::BatchContext {
        as_of_date: as_of_date.to_owned(),
    };
    let result = engine::transform::<T>(&context, batch).map_err(|e| BatchFailure {
        code: e.code,
        message: e.message,
    })?;
    assert_eq!(
        result.outcomes.len(),
        batch.rows as usize,
        "one outcome per row"
    );
    let fields = Fields::check(&info, &result);
    let mut next_first = 0usize;
    let outcomes = result
        .outcomes
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, outcome)| {
            let said = said(&outcome);
            (
                check_outcome(&info, &fields, &mut next_first, i, outcome),
                said,
            )
        })
        .collect();
    assert_eq!(
        next_first,
        fields.len(),
        "the field lists have entries no emitted record covers"
    );
    Ok(outcomes)
}

/// Every finding and skip of one outcome, as log lines.
fn said(outcome: &wit::Outcome) -> Vec<String> {
    let findings = |findings: &[wit::Finding]| {
        findings
            .iter()
            .map(|f| format!("{}:{}: {}", f.field, f.code, f.message))
            .collect()
    };
    match outcome {
        wit::Outcome::Emit(emitted) => findings(&emitted.warnings),
        wit::Outcome::Reject(rejections) => findings(rejections),
        wit::Outcome::Skip(skipped) => vec![format!("{}: {}", skipped.code, skipped.message)],
    }
}

/// Checks one outcome against the module's contract and turns it into a [`RowOutcome`].
fn check_outcome(
    info: &ModuleInfo,
    fields: &Fields<'_>,
    next_first: &mut usize,
    i: usize,
    outcome: wit::Outcome,
) -> RowOutcome {
    match outcome {
        wit::Outcome::Emit(emitted) => {
            let first = emitted.first as usize;
            let end = first + emitted.count as usize;
            assert_eq!(first, *next_first, "row {i}: records are not contiguous");
            *next_first = end;
            assert!(
                end <= fields.len(),
                "row {i}: entries outside the field lists"
            );
            let record = check_record(info, i, fields.entries(first..end));
            RowOutcome::Emit {
                record,
                warnings: check_findings(info, i, &emitted.warnings, "warning"),
            }
        }
        wit::Outcome::Skip(skipped) => {
            assert!(
                is_kebab(&skipped.code),
                "row {i}: skip code `{}` is not kebab-case",
                skipped.code
            );
            assert!(
                !skipped.message.is_empty(),
                "row {i}: skip without a message"
            );
            RowOutcome::Skip {
                code: skipped.code,
                message: skipped.message,
            }
        }
        wit::Outcome::Reject(findings) => {
            assert!(!findings.is_empty(), "row {i}: rejected without a finding");
            if let Some(f) = findings.iter().find(|f| f.code == UNDECLARED_FIELD) {
                panic!(
                    "row {i}: wrote `{}`, which is not a declared output field",
                    f.field
                );
            }
            RowOutcome::Reject(check_findings(info, i, &findings, "rejection"))
        }
    }
}

/// Checks what a module says about itself: a declared key column, no name twice.
///
/// # Panics
/// On the first problem found.
pub fn check_info(info: &ModuleInfo) {
    assert!(
        info.input_columns.iter().any(|c| c.name == info.key_column),
        "key column `{}` is not a declared input column",
        info.key_column
    );
    let mut inputs = BTreeSet::new();
    for column in info.input_columns {
        assert!(
            inputs.insert(column.name),
            "input column `{}` declared twice",
            column.name
        );
    }
    let mut outputs = BTreeSet::new();
    for field in info.output_fields {
        assert!(
            outputs.insert(field.name),
            "output field `{}` declared twice",
            field.name
        );
    }
    for text in [info.name, info.version, info.target] {
        assert!(
            !text.is_empty(),
            "module name, version and target must not be empty"
        );
    }
}

/// Checks one emitted record's entries against the module's declared output fields.
fn check_record(
    info: &ModuleInfo,
    row: usize,
    entries: impl Iterator<Item = (&'static str, Value)>,
) -> Map<String, Value> {
    let mut record = Map::new();
    for (key, value) in entries {
        assert!(
            value.as_str() != Some(""),
            "row {row}: `{key}` is an empty string (leave the field out instead)"
        );
        assert!(
            record.insert(key.to_owned(), value).is_none(),
            "row {row}: `{key}` written twice"
        );
    }
    for field in info.output_fields.iter().filter(|f| f.required) {
        assert!(
            record.contains_key(field.name),
            "row {row}: required field `{}` missing from an emitted record",
            field.name
        );
    }
    record
}

/// A batch result's field lists, checked as a whole: parallel, every index declared, every
/// kind known, every text span inside the text and laid end to end.
struct Fields<'r> {
    info: &'r ModuleInfo,
    result: &'r wit::BatchResult,
}

impl<'r> Fields<'r> {
    fn check(info: &'r ModuleInfo, result: &'r wit::BatchResult) -> Self {
        let n = result.field_indexes.len();
        assert!(
            result.kinds.len() == n && result.values.len() == n,
            "the field lists differ in length"
        );
        let mut text_end = 0usize;
        for (entry, (&index, &kind)) in result.field_indexes.iter().zip(&result.kinds).enumerate() {
            assert!(
                usize::from(index) < info.output_fields.len(),
                "entry {entry}: field index {index} is not a declared output field"
            );
            if kind == kind::TEXT {
                let (start, len) = text_span(result.values[entry]);
                assert_eq!(
                    start, text_end,
                    "entry {entry}: text values are not contiguous"
                );
                text_end = start + len;
                assert!(
                    result.text.get(start..text_end).is_some(),
                    "entry {entry}: text span outside the text or inside a character"
                );
            } else {
                assert!(
                    [kind::INTEGER, kind::FLOAT, kind::BOOLEAN].contains(&kind),
                    "entry {entry}: unknown value kind {kind}"
                );
            }
        }
        assert_eq!(text_end, result.text.len(), "text no field covers");
        Self { info, result }
    }

    fn len(&self) -> usize {
        self.result.field_indexes.len()
    }

    /// Entries `range` as (field name, JSON value).
    fn entries(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        range.map(|entry| {
            let name = self.info.output_fields[usize::from(self.result.field_indexes[entry])].name;
            let raw = self.result.values[entry];
            let value = match self.result.kinds[entry] {
                kind::TEXT => {
                    let (start, len) = text_span(raw);
                    Value::from(&self.result.text[start..start + len])
                }
                kind::INTEGER => Value::from(raw as i64),
                kind::BOOLEAN => {
                    assert!(raw <= 1, "entry {entry}: boolean value {raw}");
                    Value::from(raw == 1)
                }
                _ => Value::from(
                    serde_json::Number::from_f64(f64::from_bits(raw))
                        .unwrap_or_else(|| panic!("entry {entry}: a float that is not finite")),
                ),
            };
            (name, value)
        })
    }
}

fn text_span(value: u64) -> (usize, usize) {
    ((value >> 32) as usize, (value & 0xffff_ffff) as usize)
}

fn check_findings(
    info: &ModuleInfo,
    row: usize,
    findings: &[wit::Finding],
    what: &str,
) -> Vec<String> {
    let mut out: Vec<String> = findings
        .iter()
        .map(|f| {
            assert!(
                info.output_fields.iter().any(|d| d.name == f.field),
                "row {row}: {what} on `{}`, which is not a declared output field",
                f.field
            );
            assert!(
                is_kebab(&f.code),
                "row {row}: {what} code `{}` is not kebab-case",
                f.code
            );
            assert!(
                !f.message.is_empty(),
                "row {row}: {what} `{}` has no message",
                f.code
            );
            format!("{}:{}", f.field, f.code)
        })
        .collect();
    out.sort();
    out
}

fn is_kebab(code: &str) -> bool {
    !code.is_empty()
        && !code.starts_with('-')
        && !code.ends_with('-')
        && !code.contains("--")
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A transform's example-cases file (`examples.json`).
///
/// ```json
/// {"as_of_date": "2026-01-01",
///  "cases": [
///    {"name": "…", "row": {"patno": 101, "lname": "Smith"},
///     "expect": {"emit": {"patient_number": 101, "last_name": "Smith"},
///                "warnings": ["state:invalid-state"]}},
///    {"name": "…", "row": {}, "expect": {"reject": ["last_name:blank"]}},
///    {"name": "…", "row": {}, "expect": {"skip": "patient-not-sent"}}
///  ]}
/// ```
///
/// Row values are what the module receives (strings for text/date/time/timestamp columns,
/// integers, booleans, `null`); a column absent from `row` is NULL. `emit` must equal the
/// emitted record exactly; `warnings` (default `[]`) and `reject` are sets of `field:code`;
/// `skip` is the skip code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    pub as_of_date: String,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub row: Map<String, Value>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub emit: Option<Map<String, Value>>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    #[serde(default)]
    pub reject: Option<Vec<String>>,
    #[serde(default)]
    pub skip: Option<String>,
}

impl Examples {
    /// # Panics
    /// When `json` is not a well-formed example file.
    pub fn parse(json: &str) -> Self {
        let examples: Self =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("malformed example file: {e}"));
        let mut names = BTreeSet::new();
        for case in &examples.cases {
            assert!(
                names.insert(case.name.as_str()),
                "two cases are named `{}`",
                case.name
            );
            let e = &case.expect;
            let kinds = usize::from(e.emit.is_some())
                + usize::from(e.reject.is_some())
                + usize::from(e.skip.is_some());
            assert_eq!(
                kinds, 1,
                "case `{}`: expect exactly one of emit / reject / skip",
                case.name
            );
            assert!(
                e.warnings.is_none() || e.emit.is_some(),
                "case `{}`: warnings only go with emit",
                case.name
            );
        }
        examples
    }
}

/// Runs every case of an example file through `T`, all rows as one batch (as the host would),
/// and returns the number of cases, or a report of every case that did not go as expected.
pub fn check_examples<T: Transform>(json: &str) -> Result<usize, String> {
    let examples = Examples::parse(json);
    let rows: Vec<Value> = examples
        .cases
        .iter()
        .map(|case| Value::Object(case.row.clone()))
        .collect();
    let outcomes = run_rows::<T>(&examples.as_of_date, &rows)
        .map_err(|failure| format!("the batch of all cases failed: {failure}"))?;
    let mut failures = Vec::new();
    for (case, got) in examples.cases.iter().zip(&outcomes) {
        if let Some(problem) = compare(&case.expect, got) {
            failures.push(format!("- case `{}`: {problem}", case.name));
        }
    }
    if failures.is_empty() {
        Ok(examples.cases.len())
    } else {
        Err(format!(
            "{} of {} example cases failed:\n{}",
            failures.len(),
            examples.cases.len(),
            failures.join("\n")
        ))
    }
}

/// [`check_examples`] for a `#[test]`: panics with the report.
pub fn assert_examples<T: Transform>(json: &str) {
    if let Err(report) = check_examples::<T>(json) {
        panic!("{report}");
    }
}

fn sorted(codes: &[String]) -> Vec<String> {
    let mut codes = codes.to_vec();
    codes.sort();
    codes.dedup();
    codes
}

fn compare(expect: &Expect, got: &RowOutcome) -> Option<String> {
    match (expect, got) {
        (
            Expect {
                emit: Some(record), ..
            },
            RowOutcome::Emit {
                record: got_record,
                warnings,
            },
        ) => {
            let want_warnings = sorted(expect.warnings.as_deref().unwrap_or_default());
            let mut problems = Vec::new();
            if record != got_record {
                problems.push(format!(
                    "emitted {}\n    expected {}",
                    Value::Object(got_record.clone()),
                    Value::Object(record.clone())
                ));
            }
            if &want_warnings != warnings {
                problems.push(format!("warnings {warnings:?}, expected {want_warnings:?}"));
            }
            (!problems.is_empty()).then(|| problems.join("; "))
        }
        (
            Expect {
                reject: Some(codes),
                ..
            },
            RowOutcome::Reject(got_codes),
        ) => {
            let want = sorted(codes);
            (&want != got_codes).then(|| format!("rejected {got_codes:?}, expected {want:?}"))
        }
        (
            Expect {
                skip: Some(code), ..
            },
            RowOutcome::Skip { code: got_code, .. },
        ) => (code != got_code).then(|| format!("skipped `{got_code}`, expected skip `{code}`")),
        (_, got) => Some(format!("got {got:?}, expected {}", describe_expect(expect))),
    }
}

fn describe_expect(expect: &Expect) -> String {
    if let Some(record) = &expect.emit {
        format!("emit {}", Value::Object(record.clone()))
    } else if let Some(codes) = &expect.reject {
        format!("reject {codes:?}")
    } else {
        format!("skip `{}`", expect.skip.as_deref().unwrap_or_default())
    }
}

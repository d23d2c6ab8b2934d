//! Rendering request bodies with the job's minijinja template.
//!
//! Templates receive `records` (the emitted records of one request) and `target` (the record
//! type's name). Every `{{ expression }}` is written as JSON (auto-escape mode JSON), so a
//! string value can never break the body's syntax; a whole record (`{{ record }}`) is written
//! as its JSON text, which the host wrote from the module's checked fields when the row was
//! transformed. The rendered body is parsed before it is
//! sent: it must be a JSON object whose target key holds exactly the records given, each an
//! object with only keys ReqCheck accepts and every key it requires, so a template can neither
//! send invalid JSON nor silently drop or break a record. Record text written whole is not
//! parsed a second time when its record is known to keep those rules (`skeleton.rs`).
//!
//! A template is also rendered once when it is loaded, for two sample records built from the
//! record type's schema: a template that cannot produce a valid body for them fails the run
//! before the first request of any job, instead of after earlier jobs were sent.
//!
//! Every render has a budget of work that grows with the records it is given (`budget.rs`):
//! a template that loops for ever, or does work growing faster than its records, is stopped
//! with an error naming it instead of hanging the run.
//!
//! Messages that can be stored (the run ledger, the run report) never quote what a body or a
//! record holds: a template can write row values anywhere, keys included. They give positions,
//! counts, and the names ReqCheck itself defines.

mod budget;
mod skeleton;

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use serde_json::{Map, Value};

use crate::json_shape::{BodyShape, ObjectKeys, Shape, body_shape};
use crate::reqcheck::Target;
use crate::reqcheck::record_schema::RecordSchema;
use crate::transform::{Record, RecordInner};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("template {} has a syntax error: {reason}", path.display())]
    Syntax { path: PathBuf, reason: String },
    #[error("template {} failed while rendering: {reason}", path.display())]
    Render { path: PathBuf, reason: String },
    #[error(
        "template {} was stopped: {reason}; a loop that never ends, or loops nested over the \
         records (work growing with the square of their number), do this: write each record \
         once, e.g. `{{{{ records }}}}` or a single `{{% for record in records %}}`",
        path.display()
    )]
    Budget { path: PathBuf, reason: String },
    #[error("template {} rendered invalid JSON: {reason}", path.display())]
    InvalidJson { path: PathBuf, reason: String },
    #[error("template {} rendered a body ReqCheck would refuse: {reason}", path.display())]
    Shape { path: PathBuf, reason: String },
}

/// A compiled body template for one job.
#[derive(Debug)]
pub struct BodyTemplate {
    env: Environment<'static>,
    path: PathBuf,
    target: &'static Target,
    sha256: String,
}

const NAME: &str = "body";

impl BodyTemplate {
    /// Reads and compiles the template file (read anew at every run, so edits apply to the
    /// next run without a restart).
    pub fn load(path: &Path, target: &'static Target) -> Result<Self, RenderError> {
        let source =
            crate::input_file::read_to_string(path, crate::input_file::TEMPLATE).map_err(|e| {
                RenderError::Read {
                    path: path.to_path_buf(),
                    reason: e.reason(),
                }
            })?;
        Self::from_source(path, source, target)
    }

    /// Compiles a template and renders it once for sample records (see the module docs).
    pub fn from_source(
        path: &Path,
        source: String,
        target: &'static Target,
    ) -> Result<Self, RenderError> {
        use sha2::Digest;
        let sha256 = hex::encode(sha2::Sha256::digest(source.as_bytes()));
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_formatter(write_value);
        // A misspelt variable is a bug in the template, not an empty value.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned(NAME, source)
            .map_err(|e| RenderError::Syntax {
                path: path.to_path_buf(),
                reason: describe(&e),
            })?;
        let template = Self {
            env,
            path: path.to_path_buf(),
            target,
            sha256,
        };
        template
            .render_checked(&sample_records(target), Rows::Samples)
            .map_err(RenderError::for_samples)?;
        Ok(template)
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Renders one request body for `records` and checks it.
    pub fn render(&self, records: &[Record]) -> Result<Vec<u8>, RenderError> {
        self.render_checked(records, Rows::Real)
            .map_err(|e| match e {
                RenderError::InvalidJson { path, reason } => RenderError::InvalidJson {
                    path,
                    reason: format!("{reason}; run with --dry-run to see the body it produces"),
                },
                other => other,
            })
    }

    fn render_checked(&self, records: &[Record], rows: Rows) -> Result<Vec<u8>, RenderError> {
        let body = self.render_body(records, rows)?;
        // Most of a body is record text the host wrote when the records were made: the
        // skeleton check reads the rest and can only accept; the full check decides (and
        // words the error) whenever it does not.
        if !skeleton::accepts(&body, records, self.target) {
            self.check(&body, records.len())?;
        }
        Ok(body.into_bytes())
    }

    fn render_body(&self, records: &[Record], rows: Rows) -> Result<String, RenderError> {
        // minijinja takes the budget from the environment, and it depends on the records: a
        // copy per render (the compiled template is shared, not copied; a few hundred
        // nanoseconds against the milliseconds a body of records takes).
        let fuel = budget::fuel_for(records);
        let mut env = self.env.clone();
        env.set_fuel(Some(fuel));
        let template = env.get_template(NAME).map_err(|e| RenderError::Syntax {
            path: self.path.clone(),
            reason: describe(&e),
        })?;
        let values: Vec<minijinja::Value> = records.iter().map(Record::to_template_value).collect();
        template
            .render(context! { records => values, target => self.target.name })
            .map_err(|e| self.render_error(&e, records.len(), fuel, rows))
    }

    /// A failed render, worded from what minijinja says without anything it may quote.
    fn render_error(
        &self,
        e: &minijinja::Error,
        records: usize,
        fuel: u64,
        rows: Rows,
    ) -> RenderError {
        let path = self.path.clone();
        if budget::ran_out(e) {
            return RenderError::Budget {
                path,
                reason: format!(
                    "rendering {records} record(s) used up its budget of {fuel} steps \
                     (one step is about one template instruction, or 64 bytes written)"
                ),
            };
        }
        let reason = match rows {
            // Sample values are made up: the detail helps and shows nothing of a patient.
            Rows::Samples => describe(e),
            Rows::Real => describe_without_detail(e),
        };
        RenderError::Render { path, reason }
    }

    fn check(&self, body: &str, expected: usize) -> Result<(), RenderError> {
        // serde_json's error names the line and column only, never the text around it.
        let shape =
            body_shape(body, self.target.body_key).map_err(|e| RenderError::InvalidJson {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        let refuse = |reason: String| RenderError::Shape {
            path: self.path.clone(),
            reason,
        };
        let key = self.target.body_key;
        let array = match shape {
            BodyShape::NotObject | BodyShape::Missing => {
                return Err(refuse(format!(
                    "the body must be a JSON object with the key `{key}`"
                )));
            }
            BodyShape::NotArray => {
                return Err(refuse(format!("`{key}` must be an array of records")));
            }
            BodyShape::RepeatedKey => {
                return Err(refuse(format!(
                    "the body has the key `{key}` more than once (JSON readers disagree on \
                     which one counts); write it once"
                )));
            }
            BodyShape::Records(array) => array,
        };
        if array.is_empty() {
            return Err(refuse(format!(
                "`{key}` is empty (ReqCheck answers 400 to an empty array)"
            )));
        }
        if array.len() != expected {
            return Err(refuse(format!(
                "`{key}` holds {} records but {expected} were given to the template; every record must be sent",
                array.len()
            )));
        }
        for (i, record) in array.iter().enumerate() {
            let Shape::Object(record) = record else {
                return Err(refuse(format!("`{key}` element {i} is not a JSON object")));
            };
            if let Some(reason) = record_fault(self.target, record) {
                return Err(refuse(format!("`{key}` element {i} {reason}")));
            }
        }
        Ok(())
    }
}

/// Which records a render is given: what its errors may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Made-up records, when the template is loaded.
    Samples,
    /// The rows of a run: an error's detail could quote their values.
    Real,
}

/// What is wrong with one record object of a body, if anything, as "element N …" goes on.
/// Never names a key ReqCheck does not define: a template can write keys from row data.
fn record_fault(target: &Target, record: &ObjectKeys<'_>) -> Option<String> {
    let name = target.name;
    // ReqCheck stores a record with any other key as an import error.
    let unknown = unknown_keys(target, record).len();
    if unknown > 0 {
        return Some(format!(
            "has {unknown} key(s) ReqCheck does not accept on `{name}` records (not shown: keys \
             written from row data could be patient data); the keys it accepts are {}",
            target.fields.join(", ")
        ));
    }
    let missing = missing_keys(target, record);
    if !missing.is_empty() {
        return Some(format!(
            "lacks the key(s) {missing:?}, which ReqCheck requires on `{name}` records"
        ));
    }
    let repeated = record.repeated();
    if !repeated.is_empty() {
        return Some(format!(
            "has {} (JSON readers disagree on which value counts: ReqCheck takes the last, \
             others the first); write each key once",
            repeated_keys(target, &repeated)
        ));
    }
    None
}

/// "the key `first_name` twice" for keys ReqCheck defines, a count otherwise.
fn repeated_keys(target: &Target, repeated: &[&str]) -> String {
    let known: Vec<String> = repeated
        .iter()
        .filter(|k| target.fields.contains(k))
        .map(|k| format!("`{k}`"))
        .collect();
    let unknown = repeated.len() - known.len();
    let mut parts = Vec::new();
    if !known.is_empty() {
        parts.push(format!("the key(s) {} more than once", known.join(", ")));
    }
    if unknown > 0 {
        parts.push(format!("{unknown} other key(s) more than once (not shown)"));
    }
    parts.join(" and ")
}

/// The keys of `record` that `target` does not accept, sorted, each once.
fn unknown_keys<'k>(target: &Target, record: &'k ObjectKeys<'_>) -> Vec<&'k str> {
    let mut unknown: Vec<&str> = record
        .names()
        .filter(|k| !target.fields.contains(k))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    unknown
}

/// The keys `target` requires that `record` lacks or holds as `null`.
fn missing_keys(target: &Target, record: &ObjectKeys<'_>) -> Vec<&'static str> {
    target
        .required
        .iter()
        .copied()
        .filter(|k| !record.has_non_null(k))
        .collect()
}

/// Writes the value of a `{{ expression }}`. A whole record in a JSON template is written as
/// its JSON text — written by the host from checked fields, so valid JSON — instead of
/// being converted to template values and serialised again, which took most of a sync's
/// rendering time; a list of whole records (`{{ records }}`) as a JSON array of those texts,
/// which spares the template a loop iteration per record (about 2,700 instructions each,
/// more than writing the record). Everything else goes through minijinja's JSON escaping.
/// What is written here goes through minijinja's output, which charges it to the render's
/// budget like any other output.
fn write_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if matches!(state.auto_escape(), AutoEscape::Json) {
        let written = if let Some(record) = value.downcast_object_ref::<RecordInner>() {
            Some(out.write_str(record.json()))
        } else {
            value
                .downcast_object_ref::<Vec<minijinja::Value>>()
                .and_then(|items| write_records(out, items))
        };
        if let Some(written) = written {
            return written.map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            });
        }
    }
    minijinja::escape_formatter(out, state, value)
}

/// Writes `items` as a JSON array of record texts, or nothing (`None`) unless every item is a
/// whole record.
fn write_records(
    out: &mut minijinja::Output,
    items: &[minijinja::Value],
) -> Option<std::fmt::Result> {
    let records: Vec<&RecordInner> = items
        .iter()
        .map(|item| item.downcast_object_ref::<RecordInner>())
        .collect::<Option<_>>()?;
    let written = (|| {
        out.write_str("[")?;
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                out.write_str(",")?;
            }
            out.write_str(record.json())?;
        }
        out.write_str("]")
    })();
    Some(written)
}

impl RenderError {
    /// The load-time render of the sample records failed: say so, so that nobody looks for the
    /// row that caused it.
    fn for_samples(self) -> Self {
        const NOTE: &str = "with sample records, when the template was loaded";
        match self {
            RenderError::Render { path, reason } => RenderError::Render {
                path,
                reason: format!("{reason} ({NOTE})"),
            },
            RenderError::InvalidJson { path, reason } => RenderError::InvalidJson {
                path,
                reason: format!("{reason} ({NOTE})"),
            },
            RenderError::Shape { path, reason } => RenderError::Shape {
                path,
                reason: format!("{reason} ({NOTE})"),
            },
            RenderError::Budget { path, reason } => RenderError::Budget {
                path,
                reason: format!("{reason} ({NOTE})"),
            },
            other => other,
        }
    }
}

/// Two records of `target` holding every key it accepts, each with a value of the type its
/// schema (`data/reqcheck`) gives: what a template must turn into a valid body. Two, so that a
/// template that forgets the comma between records is caught.
fn sample_records(target: &Target) -> Vec<Record> {
    let properties = RecordSchema::for_target(target.name)
        .and_then(|s| s.document.get("properties"))
        .and_then(Value::as_object);
    (1..=2)
        .map(|n| {
            target
                .fields
                .iter()
                .map(|field| {
                    let schema = properties.and_then(|p| p.get(*field));
                    (field.to_string(), sample_value(schema, n))
                })
                .collect::<Map<String, Value>>()
                .into()
        })
        .collect()
}

/// A value of the type (and format) a record schema property declares.
fn sample_value(schema: Option<&Value>, n: i64) -> Value {
    let ty = schema.and_then(|s| match s.get("type") {
        Some(Value::Array(types)) => types.iter().find_map(Value::as_str),
        Some(t) => t.as_str(),
        None => None,
    });
    let format = schema.and_then(|s| s.get("format")).and_then(Value::as_str);
    match (ty, format) {
        (Some("integer"), _) => Value::from(n),
        (Some("number"), _) => Value::from(n as f64),
        (Some("boolean"), _) => Value::from(false),
        (_, Some("date")) => Value::from("2000-01-01"),
        (_, Some("date-time")) => Value::from("2000-01-01T00:00:00-06:00"),
        _ => Value::from(format!("sample {n}")),
    }
}

/// minijinja's error with its detail: for syntax errors (the detail quotes the template's own
/// text) and the load-time render (made-up sample values). A detail can quote values the
/// template was working on ("unable to calculate …", a template name it tried to include).
fn describe(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "line {line}: {}",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string()),
    }
}

/// minijinja's error as its kind and line only (a detail can quote row values, see
/// [`describe`]): what a run's error says, since it is stored in the ledger and the report.
fn describe_without_detail(e: &minijinja::Error) -> String {
    const NOT_SHOWN: &str = "(the detail is not shown: it can quote row values; the same \
                             expression rendered the sample records when the template was loaded)";
    match e.line() {
        Some(line) => format!("line {line}: {} {NOT_SHOWN}", e.kind()),
        None => format!("{} {NOT_SHOWN}", e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reqcheck::targets::PATIENT_DATA;

    fn records() -> Vec<Record> {
        let r: Value = serde_json::json!({
            "patient_number": 7,
            "first_name": "Ann",
            "last_name": "O'Brien \"Jr\" \\ Zoë",
            "dob": "2001-02-03",
            "hd_mpfile_updated_at": "2016-09-28T12:00:00-05:00",
        });
        vec![r.as_object().unwrap().clone().into()]
    }

    fn template(src: &str) -> Result<BodyTemplate, RenderError> {
        BodyTemplate::from_source(Path::new("t.json.j2"), src.to_string(), &PATIENT_DATA)
    }

    #[test]
    fn default_style_template_renders_valid_json_with_awkward_strings() {
        let t = template(include_str!("../../../templates/patient_data.json.j2")).unwrap();
        let body = t.render(&records()).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["patient_data"][0]["last_name"], "O'Brien \"Jr\" \\ Zoë");
    }

    /// One explicit object per record, keys spelt out, the way a hand-written template maps them.
    const EXPLICIT: &str = r#"{"patient_data": [{% for r in records %}{"patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}}{% if not loop.last %},{% endif %}{% endfor %}]}"#;

    #[test]
    fn plain_expressions_are_json_escaped() {
        let t = template(EXPLICIT).unwrap();
        let v: Value = serde_json::from_slice(&t.render(&records()).unwrap()).unwrap();
        assert_eq!(v["patient_data"][0]["last_name"], "O'Brien \"Jr\" \\ Zoë");
    }

    #[test]
    fn a_whole_record_is_written_as_the_text_its_module_emitted() {
        let t = template(include_str!("../../../templates/patient_data.json.j2")).unwrap();
        let text = r#"{"patient_number":7,"first_name":"Ann","last_name":"Lee","dob":"2001-02-03","hd_mpfile_updated_at":"2016-09-28T12:00:00-05:00"}"#;
        let body = t.render(&[Record::from_host_json(text, None)]).unwrap();
        assert!(String::from_utf8(body).unwrap().contains(text));
    }

    /// The loop the default templates used before `{{ records }}`.
    const LOOP: &str = r#"{"patient_data": [{% for record in records %}{{ record }}{% if not loop.last %},{% endif %}{% endfor %}]}"#;

    fn patients(n: u32) -> Vec<Record> {
        (1..=n)
            .map(|i| {
                Record::from_host_json(
                    &format!(
                        r#"{{"patient_number":{i},"first_name":"Ann","last_name":"Lee \"Jr\"","dob":"2001-02-03","hd_mpfile_updated_at":"2016-09-28T12:00:00-05:00"}}"#
                    ),
                    Some(&PATIENT_DATA),
                )
            })
            .collect()
    }

    #[test]
    fn whole_records_as_one_array_read_the_same_as_the_loop_over_them() {
        let records = patients(3);
        let array = template(include_str!("../../../templates/patient_data.json.j2")).unwrap();
        let looped = template(LOOP).unwrap();
        let body = String::from_utf8(array.render(&records).unwrap()).unwrap();
        let expected = format!(
            r#"{{"patient_data": [{}]}}"#,
            records
                .iter()
                .map(Record::json)
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(body, expected, "each record's own text, comma-separated");
        let parsed = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).unwrap();
        assert_eq!(
            parsed(body.into_bytes()),
            parsed(looped.render(&records).unwrap())
        );
        // Accepted from its skeleton: the full check is not needed for whole records.
        let body = array.render_body(&records, Rows::Real).unwrap();
        assert!(skeleton::accepts(&body, &records, array.target));
    }

    #[test]
    fn a_list_holding_more_than_records_is_written_by_minijinja_and_checked_whole() {
        let t = template(r#"{"patient_data": {{ records + [1] }}}"#);
        // The load-time render already finds the number that is not a record.
        let e = t.unwrap_err();
        assert!(matches!(e, RenderError::Shape { .. }), "{e}");
        assert!(e.to_string().contains("holds 3 records but 2"), "{e}");
        let t = template(r#"{"patient_data": {{ records[:1] + records[1:] }}}"#).unwrap();
        let records = patients(2);
        let body = t.render(&records).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["patient_data"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_record_through_tojson_or_its_fields_reads_the_same() {
        let t = template(
            r#"{"patient_data": [{% for r in records %}{{ r | tojson }}{% if not loop.last %},{% endif %}{% endfor %}], "n": {{ records[0] | length }}, "keys": {{ records[0] | list }}}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&t.render(&records()).unwrap()).unwrap();
        assert_eq!(
            Value::Object(records()[0].fields().clone()),
            v["patient_data"][0]
        );
        assert_eq!(v["n"], 5);
        assert_eq!(v["keys"].as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = template("{\n{% for r in records %}\n").unwrap_err();
        assert!(matches!(e, RenderError::Syntax { .. }), "{e}");
    }

    #[test]
    fn invalid_json_is_refused_without_quoting_the_body() {
        // Valid for one record, invalid for two (no comma between them): the load-time render of
        // two sample records refuses it, however many records the first request would carry.
        let e = template(r#"{"patient_data": [{% for r in records %}{{ r }}{% endfor %}]}"#)
            .unwrap_err();
        assert!(matches!(e, RenderError::InvalidJson { .. }), "{e}");
        assert!(e.to_string().contains("sample records"), "{e}");
        assert!(!e.to_string().contains("sample 1"), "{e}");
    }

    #[test]
    fn a_body_broken_by_a_record_value_is_refused_without_quoting_it() {
        // Valid for the sample records, broken for a real one: the check before each request.
        let t = template(
            r#"{"patient_data": [{% for r in records %}{% if r.patient_number == 7 %}{{ r.last_name }}{% else %}{{ r }}{% endif %}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
        )
        .unwrap();
        let e = t.render(&records()).unwrap_err();
        assert!(
            e.to_string().contains("element 0 is not a JSON object"),
            "{e}"
        );
        assert!(!e.to_string().contains("Brien"), "{e}");
    }

    #[test]
    fn a_template_that_drops_records_is_refused() {
        let t = template(EXPLICIT).unwrap();
        let mut two = records();
        two.extend(records());
        assert_eq!(
            serde_json::from_slice::<Value>(&t.render(&two).unwrap()).unwrap()["patient_data"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let t = template(
            r#"{"patient_data": [{% for r in records %}{% if loop.first %}{{ r }}{% endif %}{% endfor %}]}"#,
        );
        let e = t.unwrap_err();
        assert!(e.to_string().contains("every record must be sent"), "{e}");
    }

    #[test]
    fn empty_array_is_refused_when_loaded() {
        let e = template(r#"{"patient_data": []}"#).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(e.to_string().contains("sample records"), "{e}");
    }

    #[test]
    fn a_body_under_another_key_is_refused_when_loaded() {
        let e = template(r#"{"patients": [{% for r in records %}{{ r }}{% if not loop.last %},{% endif %}{% endfor %}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("`patient_data`"), "{e}");
    }

    #[test]
    fn a_record_key_reqcheck_does_not_accept_is_refused_without_naming_it() {
        let e = template(r#"{"patient_data": [{% for r in records %}{"patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}, "middle_name": "x"}{% if not loop.last %},{% endif %}{% endfor %}]}"#)
            .unwrap_err();
        assert!(matches!(e, RenderError::Shape { .. }), "{e}");
        let message = e.to_string();
        assert!(message.contains("element 0 has 1 key(s)"), "{message}");
        assert!(message.contains("patient_number, first_name"), "{message}");
        assert!(!message.contains("middle_name"), "{message}");
    }

    #[test]
    fn keys_written_from_row_data_are_counted_never_quoted() {
        // The sample records pass; a real row's last name becomes a key.
        let t = template(
            r#"{"patient_data": [{% for r in records %}{% if "sample" in r.first_name %}{{ r }}{% else %}{ {{ r.last_name }}: 1, "patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}}{% endif %}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
        )
        .unwrap();
        let e = t.render(&records()).unwrap_err();
        let message = e.to_string();
        assert!(message.contains("element 0 has 1 key(s)"), "{message}");
        assert!(!message.contains("Brien"), "{message}");
    }

    #[test]
    fn a_key_written_twice_is_refused_naming_it_when_reqcheck_defines_it() {
        let twice = r#"{"patient_data": [{% for r in records %}{"patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}, "first_name": "Someone Else"}{% if not loop.last %},{% endif %}{% endfor %}]}"#;
        let e = template(twice).unwrap_err();
        assert!(matches!(e, RenderError::Shape { .. }), "{e}");
        let message = e.to_string();
        assert!(
            message.contains("element 0 has the key(s) `first_name` more than once"),
            "{message}"
        );
        assert!(message.contains("sample records"), "{message}");
        // Only in real rows: refused before sending as well.
        let t = template(
            r#"{"patient_data": [{% for r in records %}{% if "sample" in r.first_name %}{{ r }}{% else %}{"patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}, "dob": "1900-01-01"}{% endif %}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
        )
        .unwrap();
        let e = t.render(&records()).unwrap_err();
        assert!(e.to_string().contains("`dob` more than once"), "{e}");
        // The same key in a record written whole next to template-made records (the skeleton
        // path): refused too.
        let t = template(
            r#"{"patient_data": [{{ records[0] }}{% for r in records[1:] %}, {"patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}{% if "sample" not in r.first_name %}, "dob": "1900-01-01"{% endif %}}{% endfor %}]}"#,
        )
        .unwrap();
        let e = t.render(&patients(3)).unwrap_err();
        assert!(
            e.to_string().contains("element 1 has the key(s) `dob`"),
            "{e}"
        );
    }

    #[test]
    fn the_body_key_written_twice_is_refused() {
        let e = template(r#"{"patient_data": {{ records }}, "patient_data": {{ records }}}"#)
            .unwrap_err();
        assert!(
            e.to_string().contains("`patient_data` more than once"),
            "{e}"
        );
    }

    #[test]
    fn a_run_time_error_names_its_line_and_kind_but_never_a_value() {
        // minijinja's detail would quote the name of the template it tried to include: here a
        // patient's name, which must not reach the stored message.
        let t = template(
            "{% for r in records %}{% if \"sample\" not in r.first_name %}\n{% include r.last_name %}{% endif %}{% endfor %}{\"patient_data\": {{ records }}}",
        )
        .unwrap();
        let e = t.render(&records()).unwrap_err();
        assert!(matches!(e, RenderError::Render { .. }), "{e}");
        let message = e.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("not shown"), "{message}");
        assert!(!message.contains("Brien"), "{message}");
    }

    #[test]
    fn a_record_without_a_required_key_is_refused() {
        let e = template(r#"{"patient_data": [{% for r in records %}{"patient_number": {{ r.patient_number }}, "last_name": {{ r.last_name }}}{% if not loop.last %},{% endif %}{% endfor %}]}"#)
            .unwrap_err();
        assert!(matches!(e, RenderError::Shape { .. }), "{e}");
        assert!(e.to_string().contains("\"first_name\""), "{e}");
    }

    #[test]
    fn every_default_template_passes_the_load_time_render() {
        use crate::reqcheck::targets::VACCINE_DOSE_DATA;
        template(include_str!("../../../templates/patient_data.json.j2")).unwrap();
        BodyTemplate::from_source(
            Path::new("t.json.j2"),
            include_str!("../../../templates/vaccine_dose_data.json.j2").to_string(),
            &VACCINE_DOSE_DATA,
        )
        .unwrap();
    }

    #[test]
    fn misspelt_variable_is_an_error() {
        let e = template(r#"{"patient_data": {{ recods }}}"#).unwrap_err();
        assert!(matches!(e, RenderError::Render { .. }), "{e}");
    }
}

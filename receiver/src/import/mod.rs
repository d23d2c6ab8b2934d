//! The two import actions of ReqCheck's `ApiController`, reproduced record by record.
//!
//! Both follow the same shape: read the top-level key (missing/null → 400 with no import
//! row), write the `DataImport` row, then process each record on its own, turning any failure
//! into a `DataImportError` row and carrying on. A few inputs blow up outside that per-record
//! `rescue` in the real app; those become [`Aborted`] (a 500), leaving earlier writes in place.
//!
//! Error messages are the app's own texts. They name fields, never values; the one exception
//! is the real app's `Patient with patient_number N could not be found`.

mod dose;
mod patient;

pub(crate) use dose::import_vaccine_doses;
pub(crate) use patient::import_patients;

use super::params::{Object, Param};
use super::ruby;
use super::store::Db;

/// What the controller answered, short of a 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The top-level key was missing, `null` or an empty array: 400, and no import row.
    KeyMissing,
    /// 201: `success` when `error_ids` is empty, else `partial_failure`.
    Imported {
        data_import_id: i64,
        records: usize,
        error_ids: Vec<i64>,
    },
}

/// The request died with an exception outside the per-record `rescue` (a 500 in the real app).
/// Nothing is rolled back. `reason` is a fixed text for the log: never a value from the body.
#[derive(Debug)]
pub(crate) struct Aborted {
    pub(crate) data_import_id: Option<i64>,
    pub(crate) reason: &'static str,
    /// The SQLite error when a bookkeeping write failed (SQLite messages carry no row values).
    pub(crate) db_error: Option<rusqlite::Error>,
}

impl Aborted {
    fn new(data_import_id: Option<i64>, reason: &'static str) -> Self {
        Self {
            data_import_id,
            reason,
            db_error: None,
        }
    }

    /// The same failure, attributed to the import row written before it happened.
    fn in_import(mut self, data_import_id: i64) -> Self {
        self.data_import_id = Some(data_import_id);
        self
    }

    fn db(data_import_id: Option<i64>, reason: &'static str, e: rusqlite::Error) -> Self {
        Self {
            data_import_id,
            reason,
            db_error: Some(e),
        }
    }
}

/// The top-level array, or why there is none. `Ok(None)` is the 400.
fn top_level_array<'p>(
    params: &'p Object<'p>,
    key: &str,
) -> Result<Option<&'p [Param<'p>]>, Aborted> {
    match params.get(key) {
        None | Some(Param::Null) => Ok(None),
        Some(Param::Array(items)) => Ok(Some(items)),
        // `.map`/`.group_by` on a string, number or hash-as-pairs raises in the controller.
        Some(_) => Err(Aborted::new(None, "top-level value is not an array")),
    }
}

/// Writes one `DataImportError` and remembers its id for `error_objects_ids`.
fn record_error(
    db: &Db<'_>,
    data_import_id: i64,
    object_class_name: &str,
    message: &str,
    raw_hash: &Object,
    error_ids: &mut Vec<i64>,
) -> Result<(), Aborted> {
    let id = db
        .insert_import_error(
            data_import_id,
            object_class_name,
            message,
            &raw_hash.to_json(),
        )
        .map_err(|e| {
            Aborted::db(
                Some(data_import_id),
                "could not write a data_import_errors row",
                e,
            )
        })?;
    error_ids.push(id);
    Ok(())
}

/// `Missing arguments ["dob", "first_name"] for Patient` (Ruby's `Array#inspect` of strings).
fn missing_arguments(names: &[&str], class: &str) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("Missing arguments [{}] for {class}", list.join(", "))
}

/// `Extraneous arguments [:random_attr] for Patient` (Ruby's `Array#inspect` of symbols).
fn extraneous_arguments(keys: &[&str], class: &str) -> String {
    let list: Vec<String> = keys.iter().map(|k| ruby::symbol_inspect(k)).collect();
    format!("Extraneous arguments [{}] for {class}", list.join(", "))
}

/// The keys of `record` that are not in `allowed`, in the order they were sent.
/// (`allowed` is a `matches!` over the whitelist: a string match compiles to a switch on
/// the length, where a list would be compared key by key for every record.)
fn extraneous_keys<'r>(record: &'r Object<'_>, allowed: fn(&str) -> bool) -> Vec<&'r str> {
    record.keys().filter(|k| !allowed(k)).collect()
}

/// The columns are PostgreSQL `integer` (int4).
fn int4(value: i128) -> Option<i32> {
    i32::try_from(value).ok()
}

/// Rails 4.2 raises `RangeError` ("2147483648 is out of range for ActiveRecord::Type::Integer
/// with limit 4") when writing or querying such a value. The number itself is replaced by the
/// field name so the stored message carries no patient data.
fn out_of_range(field: &str) -> String {
    format!("{field} is out of range for ActiveRecord::Type::Integer with limit 4")
}

/// PostgreSQL's NOT NULL message as ActiveRecord re-raises it, without the `DETAIL: Failing row
/// contains (...)` line, which would copy the whole row (PHI) into the error table.
fn not_null_violation(column: &str) -> String {
    format!(
        "PG::NotNullViolation: ERROR:  null value in column \"{column}\" violates not-null constraint"
    )
}

/// Any other database failure while saving one record.
fn statement_invalid(e: &rusqlite::Error) -> String {
    format!("ActiveRecord::StatementInvalid: {e}")
}

/// Why Rails' numericality validation (`greater_than: 0`, strict) rejected a patient_number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadPatientNumber {
    NotANumber,
    NotPositive,
}

impl BadPatientNumber {
    /// The `ActiveModel::StrictValidationFailed` message.
    fn message(self) -> &'static str {
        match self {
            BadPatientNumber::NotANumber => "Patient number is not a number",
            BadPatientNumber::NotPositive => "Patient number must be greater than 0",
        }
    }
}

/// Rails validates the raw value (before its type cast): `Kernel#Float` must accept it.
fn validate_patient_number(raw: &Param) -> Result<(), BadPatientNumber> {
    let number = match raw {
        Param::Number(n) => n.as_f64(),
        Param::Str(s) => ruby::kernel_float(s),
        _ => None,
    };
    match number {
        None => Err(BadPatientNumber::NotANumber),
        Some(n) if n <= 0.0 => Err(BadPatientNumber::NotPositive),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_ruby_inspect_forms() {
        assert_eq!(
            missing_arguments(&["dob", "first_name"], "Patient"),
            r#"Missing arguments ["dob", "first_name"] for Patient"#
        );
        assert_eq!(
            extraneous_arguments(&["random_attr", "x-y"], "Patient"),
            r#"Extraneous arguments [:random_attr, :"x-y"] for Patient"#
        );
    }

    #[test]
    fn patient_number_numericality() {
        let s = |v: &str| Param::Str(v.to_owned().into());
        use BadPatientNumber::*;
        assert_eq!(validate_patient_number(&s("4")), Ok(()));
        assert_eq!(validate_patient_number(&s(" 4.5 ")), Ok(()));
        assert_eq!(validate_patient_number(&s("0")), Err(NotPositive));
        let negative = Param::Number((-3).into());
        assert_eq!(validate_patient_number(&negative), Err(NotPositive));
        assert_eq!(validate_patient_number(&s("4abc")), Err(NotANumber));
        assert_eq!(validate_patient_number(&Param::Bool(true)), Err(NotANumber));
        assert_eq!(
            NotPositive.message(),
            "Patient number must be greater than 0"
        );
    }
}

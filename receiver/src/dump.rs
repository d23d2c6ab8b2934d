//! Reading a receiver database back: the full [`Dump`] (row values, for `--json` and tests)
//! and a values-free summary for people.

use std::fmt::{self, Write as _};

use chrono::SecondsFormat;
use rusqlite::Row;
use rusqlite::types::ValueRef;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::ReceiverError;
use super::store::{Store, parse_db_time};

/// Everything a receiver database holds, in a fixed order: patients by `patient_number`;
/// doses by `patient_number`, `date_administered`, `id`; imports and errors by `id`.
///
/// Holds health data: print it only when asked for (`receiver dump --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dump {
    /// One object per patient with ReqCheck's column names; dates `YYYY-MM-DD`, timestamps
    /// RFC 3339 UTC.
    pub patients: Vec<Value>,
    /// One object per dose with ReqCheck's column names (including `patient_number`).
    pub vaccine_doses: Vec<Value>,
    pub data_imports: Vec<DataImportRow>,
    pub data_import_errors: Vec<DataImportErrorRow>,
}

/// One `data_imports` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataImportRow {
    pub id: i64,
    /// `PatientDataImport` or `VaccineDoseDataImport`.
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339 UTC: when the receiver got the request.
    pub created_at: String,
    /// The request's patient numbers after Ruby's `to_i`, as strings (0 for missing ones).
    pub updated_patient_numbers: Vec<String>,
}

/// One `data_import_errors` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataImportErrorRow {
    pub id: i64,
    pub data_import_id: Option<i64>,
    /// `Patient` or `Vaccine`.
    pub object_class_name: String,
    /// ReqCheck's message, e.g. `Extraneous arguments [:trade_name] for VaccineDose`.
    pub error_message: String,
    /// The failing record as received (doses with `patient_number` put back).
    pub raw_hash: Value,
    pub created_at: String,
}

/// Columns holding dates (`YYYY-MM-DD` as stored), timestamps and booleans, which need more
/// than a plain SQLite-to-JSON copy.
const TIMESTAMP_COLUMNS: [&str; 3] = ["created_at", "updated_at", "hd_mpfile_updated_at"];
const BOOLEAN_COLUMNS: [&str; 1] = ["history_flag"];

impl Store {
    /// Reads the whole database. Blocking.
    pub fn dump(&self) -> Result<Dump, ReceiverError> {
        self.with_db(|db| {
            let conn = db.conn();
            let patients = rows_as_objects(
                conn,
                "SELECT * FROM patients ORDER BY patient_number, id",
            )?;
            let vaccine_doses = rows_as_objects(
                conn,
                "SELECT * FROM vaccine_doses ORDER BY patient_number, date_administered, id",
            )?;

            let mut stmt = conn.prepare(
                "SELECT id, type, created_at, updated_patient_numbers FROM data_imports ORDER BY id",
            )?;
            let raw_imports = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let data_imports = raw_imports
                .into_iter()
                .map(|(id, kind, created_at, numbers)| {
                    Ok(DataImportRow {
                        id,
                        kind: kind.unwrap_or_default(),
                        created_at: rfc3339(&created_at)?,
                        updated_patient_numbers: serde_json::from_str(&numbers).map_err(|_| {
                            ReceiverError::Corrupt(format!(
                                "data_imports {id}: updated_patient_numbers is not a JSON list"
                            ))
                        })?,
                    })
                })
                .collect::<Result<Vec<_>, ReceiverError>>()?;

            let mut stmt = conn.prepare(
                "SELECT id, data_import_id, object_class_name, error_message, raw_hash, created_at
                 FROM data_import_errors ORDER BY id",
            )?;
            let raw_errors = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let data_import_errors = raw_errors
                .into_iter()
                .map(|(id, data_import_id, class, message, raw, created_at)| {
                    Ok(DataImportErrorRow {
                        id,
                        data_import_id,
                        object_class_name: class.unwrap_or_default(),
                        error_message: message.unwrap_or_default(),
                        raw_hash: serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
                        created_at: rfc3339(&created_at)?,
                    })
                })
                .collect::<Result<Vec<_>, ReceiverError>>()?;

            Ok(Dump {
                patients,
                vaccine_doses,
                data_imports,
                data_import_errors,
            })
        })
    }
}

/// Each row of `sql` as a JSON object keyed by column name.
fn rows_as_objects(conn: &rusqlite::Connection, sql: &str) -> Result<Vec<Value>, ReceiverError> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(row_as_object(row, &names)?);
    }
    Ok(out)
}

fn row_as_object(row: &Row<'_>, names: &[String]) -> Result<Value, ReceiverError> {
    let mut object = Map::new();
    for (i, name) in names.iter().enumerate() {
        let value = match row.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) if BOOLEAN_COLUMNS.contains(&name.as_str()) => Value::Bool(n != 0),
            ValueRef::Integer(n) => Value::from(n),
            ValueRef::Real(f) => Value::from(f),
            ValueRef::Text(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                if TIMESTAMP_COLUMNS.contains(&name.as_str()) {
                    Value::String(rfc3339(&text)?)
                } else {
                    Value::String(text.into_owned())
                }
            }
            ValueRef::Blob(_) => {
                return Err(ReceiverError::Corrupt(format!(
                    "column {name} holds a blob"
                )));
            }
        };
        object.insert(name.clone(), value);
    }
    Ok(Value::Object(object))
}

/// A stored UTC timestamp as RFC 3339 with `Z` (fraction only when there is one).
fn rfc3339(stored: &str) -> Result<String, ReceiverError> {
    Ok(parse_db_time(stored)?.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

impl Dump {
    /// A short description for people: counts, import ids and types, error ids. No row values
    /// and no error texts (one of ReqCheck's messages contains a patient number).
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} patients, {} vaccine doses, {} imports, {} import errors",
            self.patients.len(),
            self.vaccine_doses.len(),
            self.data_imports.len(),
            self.data_import_errors.len(),
        )?;
        for import in &self.data_imports {
            let errors: Vec<i64> = self
                .data_import_errors
                .iter()
                .filter(|e| e.data_import_id == Some(import.id))
                .map(|e| e.id)
                .collect();
            let mut line = format!(
                "import {} {} at {}: {} patient numbers, ",
                import.id,
                import.kind,
                import.created_at,
                import.updated_patient_numbers.len(),
            );
            if errors.is_empty() {
                line.push_str("no errors");
            } else {
                let ids: Vec<String> = errors.iter().map(i64::to_string).collect();
                // Writing to a String cannot fail.
                let _ = write!(line, "{} errors (ids {})", errors.len(), ids.join(", "));
            }
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

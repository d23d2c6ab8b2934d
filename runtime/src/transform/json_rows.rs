//! Rows written as JSON objects → a module's columnar input.
//!
//! Example cases, `reqsync transform try --row`, CSV files and the rows `reqsync transform test`
//! generates all arrive as JSON objects keyed by column name, holding what the module receives:
//! strings for text-like columns (timestamps already carry their offset), integers (or
//! booleans) for integer columns, numbers for float columns, or null.

use compact_str::{CompactString, ToCompactString};
use serde_json::{Map, Value};

use super::bindings::wit;
use super::columnar::ConvertedBatch;
use super::info::{ColumnKind, ModuleInfo};

/// A JSON row value that does not fit its column. Example and test rows are made-up data, but a
/// `try` row may be real: the error names the row and column, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: column `{column}` {reason}")]
pub struct JsonRowError {
    /// 0-based position of the row in the list given.
    pub row: usize,
    pub column: String,
    pub reason: &'static str,
}

/// Keys of `row` that are not input columns of the module (usually a typo: the module would
/// silently read NULL for the column meant).
pub fn undeclared_columns(info: &ModuleInfo, row: &Map<String, Value>) -> Vec<String> {
    row.keys()
        .filter(|k| !info.input_columns.iter().any(|c| &c.name == *k))
        .cloned()
        .collect()
}

/// Builds one batch from `rows`. A declared column missing from a row, or null, is NULL.
pub fn batch_from_json(
    info: &ModuleInfo,
    rows: &[&Map<String, Value>],
) -> Result<ConvertedBatch, JsonRowError> {
    build(
        info,
        rows.len(),
        |row, column| rows[row].get(&info.input_columns[column].name),
        |row| rows[row].get(&info.key_column),
    )
}

/// Builds one batch from rows holding a value (or NULL) per declared input column, in
/// declaration order: what `reqsync transform test` generates. The same batch as
/// [`batch_from_json`] makes of the rows as objects, without copying each value into one.
pub(crate) fn batch_from_values(
    info: &ModuleInfo,
    rows: &[&[Option<Value>]],
) -> Result<ConvertedBatch, JsonRowError> {
    let cell = |row: usize, column: usize| rows[row].get(column)?.as_ref();
    let key = info
        .input_columns
        .iter()
        .position(|c| c.name == info.key_column);
    build(info, rows.len(), cell, |row| cell(row, key?))
}

/// The batch of `n` rows whose value in the `column`th input column of row `row` is
/// `cell(row, column)` and whose key is `key(row)` (`None`, or JSON null, for NULL).
fn build<'a>(
    info: &ModuleInfo,
    n: usize,
    cell: impl Fn(usize, usize) -> Option<&'a Value>,
    key: impl Fn(usize) -> Option<&'a Value>,
) -> Result<ConvertedBatch, JsonRowError> {
    let mut columns = Vec::with_capacity(info.input_columns.len());
    for (c, spec) in info.input_columns.iter().enumerate() {
        let mut present = vec![1u8; n];
        let cell = |i: usize| cell(i, c).filter(|v| !v.is_null());
        let bad = |row: usize, reason: &'static str| JsonRowError {
            row,
            column: spec.name.clone(),
            reason,
        };
        let values = match spec.kind {
            ColumnKind::Integer | ColumnKind::Boolean => {
                let mut out = Vec::with_capacity(n);
                for (i, p) in present.iter_mut().enumerate() {
                    out.push(match cell(i) {
                        None => {
                            *p = 0;
                            0
                        }
                        Some(Value::Bool(b)) => i64::from(*b),
                        Some(v) => v.as_i64().ok_or_else(|| bad(i, "must be an integer"))?,
                    });
                }
                wit::ColumnValues::Integer(out)
            }
            ColumnKind::Float => {
                let mut out = Vec::with_capacity(n);
                for (i, p) in present.iter_mut().enumerate() {
                    out.push(match cell(i) {
                        None => {
                            *p = 0;
                            0.0
                        }
                        Some(v) => v.as_f64().ok_or_else(|| bad(i, "must be a number"))?,
                    });
                }
                wit::ColumnValues::Float(out)
            }
            ColumnKind::Text | ColumnKind::Date | ColumnKind::Time | ColumnKind::Timestamp => {
                let mut data = String::new();
                let mut offsets = Vec::with_capacity(n + 1);
                offsets.push(0u32);
                for (i, p) in present.iter_mut().enumerate() {
                    match cell(i) {
                        None => *p = 0,
                        Some(Value::String(s)) => data.push_str(s),
                        Some(_) => return Err(bad(i, "must be a string")),
                    }
                    let end = u32::try_from(data.len())
                        .map_err(|_| bad(i, "makes the batch's text larger than 4 GiB"))?;
                    offsets.push(end);
                }
                wit::ColumnValues::Text(wit::TextValues { data, offsets })
            }
        };
        // An all-present column travels without a presence list (the WIT's convention).
        if present.iter().all(|&p| p == 1) {
            present.clear();
        }
        columns.push(wit::Column {
            name: spec.name.clone(),
            values,
            present,
        });
    }
    let keys = (0..n)
        .map(|i| match key(i) {
            Some(Value::String(s)) => s.into(),
            Some(Value::Null) | None => CompactString::default(),
            Some(v) => v.to_compact_string(),
        })
        .collect();
    Ok(ConvertedBatch {
        batch: wit::RowBatch {
            rows: n as u32,
            columns,
        },
        keys,
        groups: None,
        conversion_findings: vec![None; n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::info::{ColumnSpec, FieldSpec};

    #[test]
    fn rows_of_values_make_the_batch_their_objects_make() {
        let column = |name: &str, kind| ColumnSpec {
            name: name.into(),
            kind,
            required: false,
            nullable: true,
            hints: Vec::new(),
        };
        let info = ModuleInfo {
            name: "t".into(),
            version: "1".into(),
            target: "patient_data".into(),
            key_column: "patno".into(),
            input_columns: vec![
                column("name", ColumnKind::Text),
                column("patno", ColumnKind::Integer),
                column("weight", ColumnKind::Float),
                column("flag", ColumnKind::Boolean),
            ],
            output_fields: vec![FieldSpec {
                name: "patient_number".into(),
                required: true,
            }],
        };
        let rows: Vec<Vec<Option<Value>>> = vec![
            vec![
                Some("José".into()),
                Some(7.into()),
                Some(1.5.into()),
                Some(true.into()),
            ],
            vec![None, None, Some(Value::Null), Some(0.into())],
            vec![Some("".into()), Some((-1).into()), None, None],
        ];
        let objects: Vec<Map<String, Value>> = rows
            .iter()
            .map(|row| {
                info.input_columns
                    .iter()
                    .zip(row)
                    .filter_map(|(c, v)| Some((c.name.clone(), v.clone()?)))
                    .collect()
            })
            .collect();
        let values: Vec<&[Option<Value>]> = rows.iter().map(Vec::as_slice).collect();
        let from_values = batch_from_values(&info, &values).expect("batch");
        let from_json = batch_from_json(&info, &objects.iter().collect::<Vec<_>>()).expect("batch");
        assert_eq!(format!("{from_values:?}"), format!("{from_json:?}"));
        assert_eq!(from_values.keys, ["7", "", "-1"]);
    }
}

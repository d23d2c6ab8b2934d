//! Turning source rows into the columnar batch the WIT world takes.
//!
//! A batch lowers into the module as one buffer per column instead of one string per cell: a
//! prototype that passed rows of strings spent most of its time lowering strings one by one.
//! Values are converted here to the type each module column declares, so every module sees
//! dates, times and timestamps in one ISO form whatever the source engine.

use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use compact_str::{CompactString, ToCompactString};

use super::TransformError;
use super::bindings::wit;
use super::info::{ColumnKind, ModuleInfo};
use super::outcome::Finding;
use crate::source::{Cell, ColumnInfo, ColumnValues, RowBatch, SourceColumn};
use reqsync_iso_text as iso_text;

/// Which query column feeds which module column; worked out once per job.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    columns: Vec<PlannedColumn>,
    key_index: usize,
    group_index: Option<usize>,
    clinic_tz: Tz,
}

#[derive(Debug, Clone)]
struct PlannedColumn {
    name: String,
    source_index: usize,
    kind: ColumnKind,
}

/// A batch ready for the module, with what the host learned while converting it.
#[derive(Debug, Clone)]
pub struct ConvertedBatch {
    pub batch: wit::RowBatch,
    /// The key column's value of each row, as text.
    pub keys: Vec<CompactString>,
    /// The group column's value of each row, as text, when the plan has a group column.
    pub groups: Option<Vec<CompactString>>,
    /// Rows whose source values could not be converted, with why; the module sees NULL there
    /// and its verdict is overridden by a reject.
    pub conversion_findings: Vec<Option<Vec<Finding>>>,
}

impl ConvertedBatch {
    /// The batch's rows as JSON objects (column name → value; a NULL is left out), in the form
    /// `json_rows::batch_from_json` and the guest SDK's `testing::batch_from_rows` read: what
    /// the module receives, row by row. The transform-cost benchmark builds its native batches
    /// from these, so the native baseline sees exactly the values the module sees.
    pub fn rows_as_json(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        use serde_json::Value as Json;
        let mut rows = vec![serde_json::Map::new(); self.batch.rows as usize];
        for column in &self.batch.columns {
            for (i, row) in rows.iter_mut().enumerate() {
                if column.present.get(i) == Some(&0) {
                    continue;
                }
                let value = match &column.values {
                    wit::ColumnValues::Text(t) => {
                        let (from, to) = (t.offsets[i] as usize, t.offsets[i + 1] as usize);
                        Json::String(t.data.get(from..to).unwrap_or_default().to_owned())
                    }
                    wit::ColumnValues::Integer(v) => Json::from(v[i]),
                    wit::ColumnValues::Float(v) => Json::from(v[i]),
                };
                row.insert(column.name.clone(), value);
            }
        }
        rows
    }
}

impl BatchPlan {
    /// Matches a query's columns to what the module reads. A required module column the query
    /// lacks is an error before any row is read; optional ones the query lacks are NULL.
    pub fn new(
        info: &ModuleInfo,
        query_columns: &[ColumnInfo],
        clinic_tz: Tz,
    ) -> Result<Self, TransformError> {
        let find = |name: &str| {
            query_columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        };
        let missing: Vec<String> = info
            .input_columns
            .iter()
            .filter(|c| c.required && find(&c.name).is_none())
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(TransformError::ColumnsMissing {
                module: info.name.clone(),
                missing,
                available: query_columns.iter().map(|c| c.name.clone()).collect(),
            });
        }
        // A binary column can feed no module column (the WIT world has no bytes): every row
        // would be rejected, so the query is refused before any row is read, as a column of
        // a type the source cannot read is.
        if let Some((column, declared)) = info.input_columns.iter().find_map(|c| {
            let q = &query_columns[find(&c.name)?];
            is_binary_type(&q.declared_type).then(|| (c, q.declared_type.clone()))
        }) {
            return Err(TransformError::BinaryColumn {
                module: info.name.clone(),
                column: column.name.clone(),
                declared,
                wanted: format!("{:?}", column.kind).to_lowercase(),
            });
        }
        let key_index = find(&info.key_column).ok_or_else(|| TransformError::ColumnsMissing {
            module: info.name.clone(),
            missing: vec![info.key_column.clone()],
            available: query_columns.iter().map(|c| c.name.clone()).collect(),
        })?;
        let columns = info
            .input_columns
            .iter()
            .filter_map(|c| {
                find(&c.name).map(|source_index| PlannedColumn {
                    name: c.name.clone(),
                    source_index,
                    kind: c.kind,
                })
            })
            .collect();
        Ok(Self {
            columns,
            key_index,
            group_index: None,
            clinic_tz,
        })
    }

    /// Also reports each row's value of `column` (a query column, e.g. `patno`), which the
    /// request batcher uses to keep a patient's rows in one request.
    pub fn with_group_column(
        mut self,
        column: &str,
        query_columns: &[ColumnInfo],
    ) -> Result<Self, TransformError> {
        let index = query_columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(column))
            .ok_or_else(|| TransformError::ColumnsMissing {
                module: "(the job's group_by_column)".into(),
                missing: vec![column.to_string()],
                available: query_columns.iter().map(|c| c.name.clone()).collect(),
            })?;
        self.group_index = Some(index);
        Ok(self)
    }

    /// Converts one batch of rows.
    pub fn convert(&self, rows: &RowBatch) -> ConvertedBatch {
        let n = rows.len();
        let mut findings: Vec<Option<Vec<Finding>>> = vec![None; n];
        let key_texts = |index: usize| {
            let column = rows.column(index);
            (0..n).map(|i| key_text(column.cell(i))).collect()
        };
        let keys = key_texts(self.key_index);
        let groups = self.group_index.map(key_texts);
        let columns = self
            .columns
            .iter()
            .map(|col| self.convert_column(col, rows.column(col.source_index), &mut findings))
            .collect();
        ConvertedBatch {
            batch: wit::RowBatch {
                rows: n as u32,
                columns,
            },
            keys,
            groups,
            conversion_findings: findings,
        }
    }

    fn convert_column(
        &self,
        col: &PlannedColumn,
        source: &SourceColumn,
        findings: &mut [Option<Vec<Finding>>],
    ) -> wit::Column {
        // A column the source read in the type the module declares is copied whole: text and
        // integers are most of a clinic query, and their buffers already have the WIT layout.
        let copied = match (col.kind, source.values()) {
            (ColumnKind::Text, ColumnValues::Text { data, offsets }) => {
                Some(wit::ColumnValues::Text(wit::TextValues {
                    data: data.clone(),
                    offsets: offsets.clone(),
                }))
            }
            (ColumnKind::Integer, ColumnValues::Int(values)) => {
                Some(wit::ColumnValues::Integer(values.clone()))
            }
            _ => None,
        };
        if let Some(values) = copied {
            return wit::Column {
                name: col.name.clone(),
                values,
                present: source.present().to_vec(),
            };
        }

        let n = source.len();
        let mut present = vec![1u8; n];
        let mut any_null = false;
        let mut fail = |i: usize, present: &mut Vec<u8>, reason: String| {
            present[i] = 0;
            findings[i].get_or_insert_with(Vec::new).push(Finding {
                field: col.name.clone(),
                code: "invalid-source-value".into(),
                message: reason,
            });
        };
        let values = match col.kind {
            ColumnKind::Integer | ColumnKind::Boolean => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let v = source.cell(i);
                    let converted = if col.kind == ColumnKind::Boolean {
                        to_bool(v)
                    } else {
                        to_int(v)
                    };
                    match converted {
                        Ok(Some(x)) => out.push(x),
                        Ok(None) => {
                            any_null = true;
                            present[i] = 0;
                            out.push(0);
                        }
                        Err(reason) => {
                            any_null = true;
                            fail(i, &mut present, reason);
                            out.push(0);
                        }
                    }
                }
                wit::ColumnValues::Integer(out)
            }
            ColumnKind::Float => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    match to_float(source.cell(i)) {
                        Ok(Some(x)) => out.push(x),
                        Ok(None) => {
                            any_null = true;
                            present[i] = 0;
                            out.push(0.0);
                        }
                        Err(reason) => {
                            any_null = true;
                            fail(i, &mut present, reason);
                            out.push(0.0);
                        }
                    }
                }
                wit::ColumnValues::Float(out)
            }
            kind => {
                let mut data = Vec::with_capacity(text_bytes(kind, source));
                let mut offsets = Vec::with_capacity(n + 1);
                offsets.push(0u32);
                for i in 0..n {
                    match self.to_text(kind, source.cell(i), &mut data) {
                        Ok(true) => {}
                        Ok(false) => {
                            any_null = true;
                            present[i] = 0;
                        }
                        Err(reason) => {
                            any_null = true;
                            fail(i, &mut present, reason);
                        }
                    }
                    offsets.push(data.len() as u32);
                }
                wit::ColumnValues::Text(wit::TextValues {
                    data: column_text(data),
                    offsets,
                })
            }
        };
        wit::Column {
            name: col.name.clone(),
            values,
            // An empty list means "no NULLs": most columns of most batches have none.
            present: if any_null { present } else { Vec::new() },
        }
    }

    /// Appends the text form of `v` for a text-like column; `Ok(false)` for NULL. Appends
    /// only whole `str`s and ASCII, so the column stays UTF-8 (see [`column_text`]).
    fn to_text(&self, kind: ColumnKind, v: Cell<'_>, out: &mut Vec<u8>) -> Result<bool, String> {
        use std::io::Write;
        if v == Cell::Null {
            return Ok(false);
        }
        match kind {
            ColumnKind::Text => match v {
                Cell::Text(s) => out.extend_from_slice(s.as_bytes()),
                Cell::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                Cell::Float(f) => {
                    let _ = write!(out, "{f}");
                }
                Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                Cell::Date(d) => iso_text::write_date(out, d),
                Cell::Time(t) => iso_text::write_time(out, t),
                Cell::Timestamp(ts) => iso_text::write_local_timestamp(out, ts),
                Cell::Bytes(_) => return Err(cannot_read(v, "text")),
                Cell::Null => unreachable!("handled above"),
            },
            ColumnKind::Date => {
                // A date already in the one form the module gets is copied as it is: writing
                // back what `read_plain_date` read gives the same ten characters.
                if let Cell::Text(s) = v
                    && iso_text::read_plain_date(s).is_some()
                {
                    out.extend_from_slice(s.as_bytes());
                    return Ok(true);
                }
                let d = match v {
                    Cell::Date(d) => d,
                    Cell::Timestamp(ts) if ts.time() == NaiveTime::MIN => ts.date(),
                    Cell::Text(s) => {
                        parse_date(s).ok_or_else(|| cannot_read(v, "date (YYYY-MM-DD)"))?
                    }
                    _ => return Err(cannot_read(v, "date")),
                };
                iso_text::write_date(out, d);
            }
            ColumnKind::Time => {
                let t = match v {
                    Cell::Time(t) => t,
                    Cell::Text(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
                        .map_err(|_| cannot_read(v, "time (HH:MM:SS)"))?,
                    _ => return Err(cannot_read(v, "time")),
                };
                iso_text::write_time(out, t);
            }
            ColumnKind::Timestamp => {
                let ts = match v {
                    Cell::Timestamp(ts) => ts,
                    Cell::Date(d) => d.and_time(NaiveTime::MIN),
                    Cell::Text(s) => parse_timestamp(s)
                        .ok_or_else(|| cannot_read(v, "timestamp (YYYY-MM-DD HH:MM:SS)"))?,
                    _ => return Err(cannot_read(v, "timestamp")),
                };
                write_localized(self.clinic_tz, ts, out);
            }
            ColumnKind::Integer | ColumnKind::Float | ColumnKind::Boolean => {
                unreachable!("numeric kinds are not text columns")
            }
        }
        Ok(true)
    }
}

/// A source timestamp in clinic local time, as ISO 8601 with the clinic's offset at that time.
/// A time that happens twice (the hour clocks fall back) is read as its first occurrence; a time
/// that never happens (the hour clocks spring forward) as if the clocks had already moved.
pub fn localize(tz: Tz, ts: NaiveDateTime) -> String {
    let mut out = Vec::new();
    write_localized(tz, ts, &mut out);
    column_text(out)
}

/// A text column's bytes as the `String` the WIT world takes. Every writer appends whole
/// `str`s or ASCII, so this never fails; validating the column once costs far less than
/// validating each date or timestamp as it is written (see `iso_text`).
fn column_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        debug_assert!(false, "a text column was not UTF-8");
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    })
}

/// [`localize`], appended to `out`: a column of timestamps is written without a `String` per
/// value (`to_rfc3339` allocated one for every row of a full sync).
fn write_localized(tz: Tz, ts: NaiveDateTime, out: &mut Vec<u8>) {
    // Nearly every time: one offset in force (or the first of two), written with `ts` as it is.
    if let LocalResult::Single(offset) | LocalResult::Ambiguous(offset, _) =
        tz.offset_from_local_datetime(&ts)
        && iso_text::write_plain_with_offset(out, ts, offset.fix().local_minus_utc())
    {
        return;
    }
    let dt = match tz.from_local_datetime(&ts) {
        LocalResult::Single(dt) => dt,
        LocalResult::Ambiguous(first, _) => first,
        LocalResult::None => match tz.from_local_datetime(&(ts + chrono::Duration::hours(1))) {
            LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt,
            LocalResult::None => tz.from_utc_datetime(&ts),
        },
    };
    iso_text::write_rfc3339(out, &dt);
}

pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Some(d) = iso_text::read_plain_date(s) {
        return Some(d);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| {
        parse_timestamp(s)
            .filter(|ts| ts.time() == NaiveTime::MIN)
            .map(|ts| ts.date())
    })
}

pub(crate) fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Some(ts) = iso_text::read_plain_timestamp(s) {
        return Some(ts);
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })
}

fn to_int(v: Cell<'_>) -> Result<Option<i64>, String> {
    match v {
        Cell::Null => Ok(None),
        Cell::Int(i) => Ok(Some(i)),
        Cell::Bool(b) => Ok(Some(i64::from(b))),
        Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        Cell::Text(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| cannot_read(v, "integer")),
        _ => Err(cannot_read(v, "integer")),
    }
}

fn to_float(v: Cell<'_>) -> Result<Option<f64>, String> {
    match v {
        Cell::Null => Ok(None),
        Cell::Float(f) => Ok(Some(f)),
        Cell::Int(i) => Ok(Some(i as f64)),
        Cell::Text(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| cannot_read(v, "number")),
        _ => Err(cannot_read(v, "number")),
    }
}

fn to_bool(v: Cell<'_>) -> Result<Option<i64>, String> {
    match v {
        Cell::Null => Ok(None),
        Cell::Bool(b) => Ok(Some(i64::from(b))),
        Cell::Int(0) => Ok(Some(0)),
        Cell::Int(1) => Ok(Some(1)),
        _ => Err(cannot_read(v, "boolean")),
    }
}

/// Declared types of binary columns, whose values are bytes (PostgreSQL's `bytea`; SQL Server
/// refuses its binary types at the source). SQLite's `BLOB` is not among them: a declared type
/// there is only an affinity, and such a column may well hold text.
fn is_binary_type(declared: &str) -> bool {
    matches!(declared, "BYTEA")
}

/// The bytes a text-like column of `source` will most likely take, so that its buffer is
/// allocated once: growing it by doubling copied each column's text about twice over.
fn text_bytes(kind: ColumnKind, source: &SourceColumn) -> usize {
    let per_value = match kind {
        ColumnKind::Date => 10,
        ColumnKind::Time => 8,
        // `YYYY-MM-DDTHH:MM:SS+HH:MM`
        ColumnKind::Timestamp => 25,
        _ => match source.values() {
            ColumnValues::Text { data, .. } => return data.len(),
            _ => 25,
        },
    };
    per_value * source.len()
}

/// Says what could not be read without quoting the value (it may be PHI).
fn cannot_read(v: Cell<'_>, as_what: &str) -> String {
    format!("a {} value cannot be read as {as_what}", v.kind())
}

fn key_text(v: Cell<'_>) -> CompactString {
    match v {
        Cell::Int(i) => i.to_compact_string(),
        Cell::Text(s) => s.into(),
        Cell::Null => "NULL".into(),
        other => compact_str::format_compact!("<{}>", other.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Value;

    #[test]
    fn clinic_timestamps_get_the_offset_in_force_at_that_time() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        let summer = parse_timestamp("2016-09-28 12:00:00").unwrap();
        assert_eq!(localize(tz, summer), "2016-09-28T12:00:00-05:00");
        let winter = parse_timestamp("2016-01-15T09:30:00.250").unwrap();
        assert_eq!(localize(tz, winter), "2016-01-15T09:30:00.250-06:00");
    }

    #[test]
    fn dst_edge_times_resolve_deterministically() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        // 2016-11-06 01:30 happens twice: the first (daylight) one is taken.
        assert_eq!(
            localize(tz, parse_timestamp("2016-11-06 01:30:00").unwrap()),
            "2016-11-06T01:30:00-05:00"
        );
        // 2016-03-13 02:30 never happens: read as 03:30 daylight time.
        assert_eq!(
            localize(tz, parse_timestamp("2016-03-13 02:30:00").unwrap()),
            "2016-03-13T03:30:00-05:00"
        );
    }

    #[test]
    fn a_bytea_column_feeding_a_module_column_is_refused_before_any_row() {
        let info = ModuleInfo {
            name: "patients".into(),
            version: "1".into(),
            target: "patient_data".into(),
            key_column: "patno".into(),
            input_columns: vec![
                super::super::ColumnSpec {
                    name: "patno".into(),
                    kind: ColumnKind::Integer,
                    required: true,
                    nullable: false,
                    hints: Vec::new(),
                },
                super::super::ColumnSpec {
                    name: "lname".into(),
                    kind: ColumnKind::Text,
                    required: true,
                    nullable: false,
                    hints: Vec::new(),
                },
            ],
            output_fields: Vec::new(),
        };
        let column = |name: &str, declared: &str| ColumnInfo {
            name: name.into(),
            declared_type: declared.into(),
        };
        let tz: Tz = "America/Chicago".parse().unwrap();
        let e = BatchPlan::new(
            &info,
            &[column("patno", "INT8"), column("lname", "BYTEA")],
            tz,
        )
        .unwrap_err();
        assert!(matches!(e, TransformError::BinaryColumn { .. }), "{e}");
        assert!(e.to_string().contains("`lname` is `BYTEA`"), "{e}");
        // A bytea column the module does not read is no concern of the module's.
        let columns = [
            column("patno", "INT8"),
            column("lname", "TEXT"),
            column("photo", "BYTEA"),
        ];
        assert!(BatchPlan::new(&info, &columns, tz).is_ok());
        // SQLite's BLOB is an affinity, not a type: such a column may hold text.
        let columns = [column("patno", "INTEGER"), column("lname", "BLOB")];
        assert!(BatchPlan::new(&info, &columns, tz).is_ok());
    }

    #[test]
    fn rows_as_json_read_back_into_the_same_batch() {
        let spec = |name: &str, kind| super::super::ColumnSpec {
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
                spec("patno", ColumnKind::Integer),
                spec("lname", ColumnKind::Text),
                spec("birth_date", ColumnKind::Date),
                spec("weight", ColumnKind::Float),
            ],
            output_fields: Vec::new(),
        };
        let columns: Vec<ColumnInfo> = ["patno", "lname", "birth_date", "weight"]
            .iter()
            .map(|n| ColumnInfo {
                name: (*n).into(),
                declared_type: String::new(),
            })
            .collect();
        let rows = RowBatch::from_rows(
            4,
            vec![
                vec![
                    Value::Int(1),
                    Value::Text("Doe".into()),
                    Value::Text("2013-11-26".into()),
                    Value::Float(3.5),
                ],
                vec![
                    Value::Int(2),
                    Value::Null,
                    Value::Text("not a date".into()),
                    Value::Null,
                ],
            ],
        );
        let tz: Tz = "America/Chicago".parse().unwrap();
        let converted = BatchPlan::new(&info, &columns, tz).unwrap().convert(&rows);
        let json = converted.rows_as_json();
        assert_eq!(
            serde_json::Value::from(json[1].clone()),
            serde_json::json!({"patno": 2}),
            "NULLs, and values the host could not convert, are left out"
        );
        let refs: Vec<_> = json.iter().collect();
        let back = super::super::json_rows::batch_from_json(&info, &refs).unwrap();
        assert_eq!(
            format!("{:?}", back.batch),
            format!("{:?}", converted.batch)
        );
    }

    #[test]
    fn localized_timestamps_are_what_to_rfc3339_writes() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        for d in ["1900-01-01", "2016-02-29", "9999-12-31", "0001-01-01"] {
            for t in [
                "00:00:00",
                "12:34:56.5",
                "23:59:59.123456",
                "01:02:03.000000001",
            ] {
                let ts = parse_timestamp(&format!("{d} {t}")).unwrap();
                let local = match tz.from_local_datetime(&ts) {
                    LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt,
                    LocalResult::None => continue,
                };
                assert_eq!(localize(tz, ts), local.to_rfc3339());
            }
        }
    }

    #[test]
    fn what_the_plain_readers_decline_is_read_by_chrono() {
        // What the fast path declines still reads as before.
        assert_eq!(
            parse_timestamp("2016-09-28 12:00:00.250").map(|ts| ts.and_utc().timestamp_millis()),
            Some(1_475_064_000_250)
        );
        assert_eq!(
            parse_date("2016-09-28 00:00:00"),
            NaiveDate::from_ymd_opt(2016, 9, 28)
        );
        assert_eq!(
            parse_date(" 2013-11-26 "),
            NaiveDate::from_ymd_opt(2013, 11, 26)
        );
    }

    proptest::proptest! {
        /// Columns the source read in the declared type are copied whole (`convert_column`'s
        /// fast path); everything else is converted value by value. Both must give the module
        /// the same batch, keys and findings.
        #[test]
        fn typed_source_columns_convert_as_their_values_one_by_one_do(
            rows in crate::source::batch::testing::rows(
                KINDS.iter().map(|(_, kind)| first_value(*kind)).collect()
            )
        ) {
            let tz: Tz = "America/Chicago".parse().unwrap();
            let info = ModuleInfo {
                name: "t".into(),
                version: "1".into(),
                target: "patient_data".into(),
                key_column: KINDS[0].0.into(),
                input_columns: KINDS
                    .iter()
                    .map(|(name, kind)| super::super::ColumnSpec {
                        name: (*name).into(),
                        kind: *kind,
                        required: false,
                        nullable: true,
                        hints: Vec::new(),
                    })
                    .collect(),
                output_fields: Vec::new(),
            };
            let columns: Vec<ColumnInfo> = KINDS
                .iter()
                .map(|(name, _)| ColumnInfo {
                    name: (*name).into(),
                    declared_type: String::new(),
                })
                .collect();
            let plan = BatchPlan::new(&info, &columns, tz)
                .unwrap()
                .with_group_column("c_text", &columns)
                .unwrap();
            let typed = plan.convert(&RowBatch::from_rows(KINDS.len(), rows.clone()));
            let one_by_one = plan.convert(&crate::source::batch::testing::mixed_from_rows(
                KINDS.len(),
                &rows,
            ));
            proptest::prop_assert_eq!(
                format!("{:?}", typed.batch),
                format!("{:?}", one_by_one.batch)
            );
            proptest::prop_assert_eq!(typed.keys, one_by_one.keys);
            proptest::prop_assert_eq!(typed.groups, one_by_one.groups);
            proptest::prop_assert_eq!(typed.conversion_findings, one_by_one.conversion_findings);
        }
    }

    /// One query column per module column kind, named after it.
    const KINDS: [(&str, ColumnKind); 7] = [
        ("c_integer", ColumnKind::Integer),
        ("c_text", ColumnKind::Text),
        ("c_float", ColumnKind::Float),
        ("c_boolean", ColumnKind::Boolean),
        ("c_date", ColumnKind::Date),
        ("c_time", ColumnKind::Time),
        ("c_timestamp", ColumnKind::Timestamp),
    ];

    /// A column's first value: mostly of the kind the module declares, sometimes anything.
    fn first_value(kind: ColumnKind) -> proptest::strategy::BoxedStrategy<Value> {
        use proptest::prelude::*;
        let matching = match kind {
            ColumnKind::Integer => any::<i64>().prop_map(Value::Int).boxed(),
            ColumnKind::Text => "[a-zA-Z' -]{0,20}"
                .prop_map(|s| Value::Text(s.into()))
                .boxed(),
            ColumnKind::Float => any::<i32>()
                .prop_map(|f| Value::Float(f64::from(f) / 8.0))
                .boxed(),
            ColumnKind::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
            ColumnKind::Date => (0i32..80_000)
                .prop_map(|d| {
                    Value::Date(NaiveDate::from_num_days_from_ce_opt(700_000 + d).unwrap())
                })
                .boxed(),
            ColumnKind::Time => (0u32..86_400)
                .prop_map(|s| {
                    Value::Time(NaiveTime::from_num_seconds_from_midnight_opt(s, 0).unwrap())
                })
                .boxed(),
            ColumnKind::Timestamp => (0i64..4_000_000_000)
                .prop_map(|s| {
                    Value::Timestamp(chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc())
                })
                .boxed(),
        };
        prop_oneof![3 => matching, 1 => crate::source::batch::testing::value()].boxed()
    }

    #[test]
    fn text_dates_copied_as_they_are_read_as_the_same_dates_written() {
        let info = ModuleInfo {
            name: "t".into(),
            version: "1".into(),
            target: "patient_data".into(),
            key_column: "d".into(),
            input_columns: vec![super::super::ColumnSpec {
                name: "d".into(),
                kind: ColumnKind::Date,
                required: true,
                nullable: true,
                hints: Vec::new(),
            }],
            output_fields: Vec::new(),
        };
        let columns = [ColumnInfo {
            name: "d".into(),
            declared_type: "DATE".into(),
        }];
        let plan = BatchPlan::new(&info, &columns, chrono_tz::UTC).unwrap();
        let first = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
        let mut dates: Vec<NaiveDate> = (0..731)
            .map(|i| first + chrono::Duration::days(i))
            .collect();
        dates.extend(
            [
                (0, 1, 1),
                (999, 12, 31),
                (1900, 2, 28),
                (2000, 2, 29),
                (9999, 12, 31),
            ]
            .map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap()),
        );
        let as_text = |rows: Vec<Vec<Value>>| {
            let converted = plan.convert(&RowBatch::from_rows(1, rows));
            assert!(converted.conversion_findings.iter().all(Option::is_none));
            format!("{:?}", converted.batch)
        };
        let typed = as_text(dates.iter().map(|d| vec![Value::Date(*d)]).collect());
        let text = as_text(
            dates
                .iter()
                .map(|d| vec![Value::Text(d.format("%Y-%m-%d").to_string().into())])
                .collect(),
        );
        assert_eq!(text, typed);
        // Text not in the plain form is read and written again, as before.
        let padded = as_text(vec![vec![Value::Text(" 2013-11-26 ".into())]]);
        let date = as_text(vec![vec![Value::Date(
            NaiveDate::from_ymd_opt(2013, 11, 26).unwrap(),
        )]]);
        assert_eq!(padded, date);
        // A plain-looking text that is no date is refused, not copied.
        let impossible = plan.convert(&RowBatch::from_rows(
            1,
            vec![vec![Value::Text("2015-02-30".into())]],
        ));
        assert!(impossible.conversion_findings[0].is_some());
    }

    #[test]
    fn conversion_failure_message_does_not_quote_the_value() {
        let msg = to_int(Cell::Text("Jane")).unwrap_err();
        assert!(!msg.contains("Jane"), "{msg}");
        assert!(msg.contains("text") && msg.contains("integer"), "{msg}");
    }
}

//! Response tokens: result sets in every column type a clinic table may hold, errors, login
//! acknowledgement. TYPE_INFO and DONE come from `tds-protocol`'s encoders; the token bodies it
//! only decodes (COLMETADATA, ROW, ERROR, LOGINACK, ENVCHANGE) are written here and checked
//! against its decoders in the unit tests below.

use bytes::{BufMut, BytesMut};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use tds_protocol::RpcTypeInfo as TypeInfo;
use tds_protocol::codec::{write_b_varchar, write_us_varchar};
use tds_protocol::token::{Done, DoneInProc, DoneProc, DoneStatus};

/// A column type as SQL Server declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Bit,
    Decimal(u8, u8),
    Numeric(u8, u8),
    Money,
    SmallMoney,
    Real,
    Float,
    Char(u16),
    VarChar(u16),
    VarCharMax,
    NChar(u16),
    NVarChar(u16),
    NVarCharMax,
    Text,
    NText,
    Date,
    Time(u8),
    DateTime,
    SmallDateTime,
    DateTime2(u8),
    DateTimeOffset(u8),
    UniqueIdentifier,
    VarBinary(u16),
    Binary(u16),
}

/// A cell of a result row. Numbers, dates and times are encoded as the column's type says.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    /// Unscaled value of a decimal/numeric/money column (12.34 in decimal(5,2) is 1234).
    Unscaled(i128),
    Float(f64),
    Text(String),
    Date(NaiveDate),
    Time(NaiveTime),
    /// Local date and time; `datetime` rounds it to 1/300 s as SQL Server does on insert.
    Timestamp(NaiveDateTime),
    /// UTC date and time and the offset in minutes.
    Offset(NaiveDateTime, i16),
    Guid(uuid::Uuid),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Col {
    pub name: String,
    pub ty: SqlType,
}

impl Col {
    pub fn new(name: &str, ty: SqlType) -> Self {
        Self {
            name: name.to_string(),
            ty,
        }
    }
}

/// One result set.
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<Col>,
    pub rows: Vec<Vec<Cell>>,
}

const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

fn decimal_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

fn time_len(scale: u8) -> u8 {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

impl SqlType {
    fn type_info(self) -> TypeInfo {
        match self {
            SqlType::TinyInt => TypeInfo::tinyint(),
            SqlType::SmallInt => TypeInfo::smallint(),
            SqlType::Int => TypeInfo::int(),
            SqlType::BigInt => TypeInfo::bigint(),
            SqlType::Bit => TypeInfo::bit(),
            SqlType::Decimal(p, s) => TypeInfo {
                type_id: 0x6A,
                max_length: Some(u16::from(decimal_len(p))),
                ..TypeInfo::decimal(p, s)
            },
            SqlType::Numeric(p, s) => TypeInfo {
                type_id: 0x6C,
                max_length: Some(u16::from(decimal_len(p))),
                ..TypeInfo::decimal(p, s)
            },
            SqlType::Money => TypeInfo::money(),
            SqlType::SmallMoney => TypeInfo::smallmoney(),
            SqlType::Real => TypeInfo::real(),
            SqlType::Float => TypeInfo::float(),
            SqlType::Char(n) => TypeInfo::char(n),
            SqlType::VarChar(n) => TypeInfo::varchar(n),
            SqlType::VarCharMax => TypeInfo::varchar_max(),
            SqlType::NChar(n) => TypeInfo::nchar(n),
            SqlType::NVarChar(n) => TypeInfo::nvarchar(n),
            SqlType::NVarCharMax => TypeInfo::nvarchar_max(),
            SqlType::Date => TypeInfo::date(),
            SqlType::Time(s) => TypeInfo::time(s),
            SqlType::DateTime => TypeInfo::datetime(),
            SqlType::SmallDateTime => TypeInfo::smalldatetime(),
            SqlType::DateTime2(s) => TypeInfo::datetime2(s),
            SqlType::DateTimeOffset(s) => TypeInfo::datetimeoffset(s),
            SqlType::UniqueIdentifier => TypeInfo::uniqueidentifier(),
            SqlType::VarBinary(n) => TypeInfo::varbinary(n),
            SqlType::Binary(n) => TypeInfo::binary(n),
            SqlType::Text | SqlType::NText => unreachable!("legacy LOB types are written by hand"),
        }
    }

    /// The name `sp_describe_undeclared_parameters` would suggest for a parameter compared
    /// with a column of this type.
    pub fn sql_name(self) -> String {
        match self {
            SqlType::DateTime => "datetime".into(),
            SqlType::SmallDateTime => "smalldatetime".into(),
            SqlType::DateTime2(s) => format!("datetime2({s})"),
            SqlType::Date => "date".into(),
            SqlType::DateTimeOffset(s) => format!("datetimeoffset({s})"),
            SqlType::Int => "int".into(),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// COLMETADATA.
pub fn col_metadata(out: &mut Vec<u8>, columns: &[Col]) {
    let mut b = BytesMut::new();
    b.put_u8(0x81);
    b.put_u16_le(columns.len() as u16);
    for c in columns {
        b.put_u32_le(0); // UserType
        b.put_u16_le(0x0001 | 0x0008); // nullable, updateable unknown
        match c.ty {
            SqlType::Text | SqlType::NText => {
                b.put_u8(if c.ty == SqlType::Text { 0x23 } else { 0x63 });
                b.put_u32_le(if c.ty == SqlType::Text {
                    0x7FFF_FFFF
                } else {
                    0x7FFF_FFFE
                });
                b.put_slice(&COLLATION);
                // TableName: one part, as the server names the base table of a LOB column.
                b.put_u8(1);
                write_us_varchar(&mut b, "clinic_table");
            }
            ty => ty.type_info().encode(&mut b),
        }
        write_b_varchar(&mut b, &c.name);
    }
    out.extend_from_slice(&b);
}

/// One ROW token. Panics on a cell that does not fit its column: the double is programmed by
/// tests, and a wrong program should fail loudly.
pub fn row(out: &mut Vec<u8>, columns: &[Col], cells: &[Cell]) {
    let mut b = BytesMut::new();
    b.put_u8(0xD1);
    for (col, cell) in columns.iter().zip(cells) {
        value(&mut b, col, cell);
    }
    out.extend_from_slice(&b);
}

fn value(b: &mut BytesMut, col: &Col, cell: &Cell) {
    use SqlType::*;
    let mismatch = || {
        panic!(
            "test double: cell {cell:?} does not fit column {}",
            col.name
        )
    };
    match (col.ty, cell) {
        (
            TinyInt | SmallInt | Int | BigInt | Bit | Decimal(..) | Numeric(..) | Money
            | SmallMoney | Real | Float | Date | Time(_) | DateTime | SmallDateTime | DateTime2(_)
            | DateTimeOffset(_) | UniqueIdentifier,
            Cell::Null,
        ) => b.put_u8(0),
        (Char(_) | VarChar(_) | NChar(_) | NVarChar(_) | VarBinary(_) | Binary(_), Cell::Null) => {
            b.put_u16_le(0xFFFF)
        }
        (VarCharMax | NVarCharMax, Cell::Null) => b.put_u64_le(u64::MAX),
        (Text | NText, Cell::Null) => b.put_u8(0),
        (TinyInt, Cell::Int(v)) => {
            b.put_u8(1);
            b.put_u8(*v as u8);
        }
        (SmallInt, Cell::Int(v)) => {
            b.put_u8(2);
            b.put_i16_le(*v as i16);
        }
        (Int, Cell::Int(v)) => {
            b.put_u8(4);
            b.put_i32_le(*v as i32);
        }
        (BigInt, Cell::Int(v)) => {
            b.put_u8(8);
            b.put_i64_le(*v);
        }
        (Bit, Cell::Bool(v)) => {
            b.put_u8(1);
            b.put_u8(u8::from(*v));
        }
        (Decimal(p, _) | Numeric(p, _), Cell::Unscaled(v)) => {
            let len = decimal_len(p);
            b.put_u8(len);
            b.put_u8(u8::from(*v >= 0));
            let bytes = v.unsigned_abs().to_le_bytes();
            b.put_slice(&bytes[..usize::from(len - 1)]);
        }
        (Money, Cell::Unscaled(v)) => {
            b.put_u8(8);
            let v = *v as i64;
            b.put_i32_le((v >> 32) as i32);
            b.put_u32_le(v as u32);
        }
        (SmallMoney, Cell::Unscaled(v)) => {
            b.put_u8(4);
            b.put_i32_le(*v as i32);
        }
        (Real, Cell::Float(v)) => {
            b.put_u8(4);
            b.put_f32_le(*v as f32);
        }
        (Float, Cell::Float(v)) => {
            b.put_u8(8);
            b.put_f64_le(*v);
        }
        (Char(_) | VarChar(_), Cell::Text(s)) => {
            let bytes = latin1(s);
            b.put_u16_le(bytes.len() as u16);
            b.put_slice(&bytes);
        }
        (NChar(_) | NVarChar(_), Cell::Text(s)) => {
            let bytes = utf16(s);
            b.put_u16_le(bytes.len() as u16);
            b.put_slice(&bytes);
        }
        (VarCharMax, Cell::Text(s)) => plp(b, &latin1(s)),
        (NVarCharMax, Cell::Text(s)) => plp(b, &utf16(s)),
        (Text | NText, Cell::Text(s)) => {
            let bytes = if col.ty == Text { latin1(s) } else { utf16(s) };
            b.put_u8(16);
            b.put_slice(&[0xAB; 16]); // text pointer
            b.put_slice(&[0; 8]); // timestamp
            b.put_u32_le(bytes.len() as u32);
            b.put_slice(&bytes);
        }
        (VarBinary(_) | Binary(_), Cell::Bytes(v)) => {
            b.put_u16_le(v.len() as u16);
            b.put_slice(v);
        }
        (Date, Cell::Date(d)) => {
            b.put_u8(3);
            put_date(b, *d);
        }
        (Time(s), Cell::Time(t)) => {
            b.put_u8(time_len(s));
            put_time(b, *t, s);
        }
        (DateTime2(s), Cell::Timestamp(t)) => {
            b.put_u8(time_len(s) + 3);
            put_time(b, t.time(), s);
            put_date(b, t.date());
        }
        (DateTimeOffset(s), Cell::Offset(utc, minutes)) => {
            b.put_u8(time_len(s) + 5);
            put_time(b, utc.time(), s);
            put_date(b, utc.date());
            b.put_i16_le(*minutes);
        }
        (DateTime, Cell::Timestamp(t)) => {
            let (days, fragments) = datetime_parts(*t);
            b.put_u8(8);
            b.put_i32_le(days);
            b.put_u32_le(fragments);
        }
        (SmallDateTime, Cell::Timestamp(t)) => {
            let days = (t.date() - NaiveDate::from_ymd_opt(1900, 1, 1).expect("date")).num_days();
            b.put_u8(4);
            b.put_u16_le(days as u16);
            b.put_u16_le((t.num_seconds_from_midnight() / 60) as u16);
        }
        (UniqueIdentifier, Cell::Guid(g)) => {
            b.put_u8(16);
            let mut bytes = *g.as_bytes();
            // SQL Server stores the first three groups little-endian.
            bytes[0..4].reverse();
            bytes[4..6].reverse();
            bytes[6..8].reverse();
            b.put_slice(&bytes);
        }
        _ => mismatch(),
    }
}

/// `datetime` as SQL Server stores a value: days since 1900 and the nearest 1/300 s.
pub fn datetime_parts(t: NaiveDateTime) -> (i32, u32) {
    let days = (t.date() - NaiveDate::from_ymd_opt(1900, 1, 1).expect("date")).num_days() as i32;
    let nanos =
        u64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + u64::from(t.nanosecond());
    let fragments = (nanos * 300 + 500_000_000) / 1_000_000_000;
    (days, fragments as u32)
}

fn put_date(b: &mut BytesMut, d: NaiveDate) {
    let days = (d - NaiveDate::from_ymd_opt(1, 1, 1).expect("date")).num_days() as u32;
    b.put_slice(&days.to_le_bytes()[..3]);
}

fn put_time(b: &mut BytesMut, t: NaiveTime, scale: u8) {
    let nanos =
        u64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + u64::from(t.nanosecond());
    let increments = nanos / 10u64.pow(9 - u32::from(scale));
    b.put_slice(&increments.to_le_bytes()[..usize::from(time_len(scale))]);
}

fn plp(b: &mut BytesMut, bytes: &[u8]) {
    b.put_u64_le(bytes.len() as u64);
    // Two chunks when there is something to split: readers must join chunks.
    let mid = bytes.len() / 2;
    for chunk in [&bytes[..mid], &bytes[mid..]] {
        if !chunk.is_empty() {
            b.put_u32_le(chunk.len() as u32);
            b.put_slice(chunk);
        }
    }
    b.put_u32_le(0);
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("the double's varchar holds Latin-1 only"))
        .collect()
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// ERROR (0xAA) or INFO (0xAB).
pub fn message(out: &mut Vec<u8>, error: bool, number: u32, class: u8, text: &str, line: u32) {
    let mut body = BytesMut::new();
    body.put_u32_le(number);
    body.put_u8(1); // state
    body.put_u8(class);
    write_us_varchar(&mut body, text);
    write_b_varchar(&mut body, "TDSDOUBLE");
    write_b_varchar(&mut body, "");
    body.put_u32_le(line);
    out.push(if error { 0xAA } else { 0xAB });
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
}

/// ENVCHANGE with B_VARCHAR values (database, language, packet size).
pub fn env_change(out: &mut Vec<u8>, kind: u8, new: &str, old: &str) {
    let mut body = BytesMut::new();
    body.put_u8(kind);
    write_b_varchar(&mut body, new);
    write_b_varchar(&mut body, old);
    out.push(0xE3);
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
}

/// ENVCHANGE of a transaction (8 begin, 9 commit, 10 rollback), whose values are B_VARBYTE:
/// the descriptor is the new value when a transaction begins and the old one when it ends.
pub fn transaction_change(out: &mut Vec<u8>, kind: u8, new: &[u8], old: &[u8]) {
    let mut body = BytesMut::new();
    body.put_u8(kind);
    body.put_u8(new.len() as u8);
    body.put_slice(new);
    body.put_u8(old.len() as u8);
    body.put_slice(old);
    out.push(0xE3);
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
}

pub const ENV_BEGIN_TRANSACTION: u8 = 8;
pub const ENV_COMMIT_TRANSACTION: u8 = 9;
pub const ENV_ROLLBACK_TRANSACTION: u8 = 10;

/// SSPI (0xED): a security token from the server during Windows authentication, here an NTLM
/// CHALLENGE. Sent alone in its response message; the client answers with an SSPI message.
pub fn sspi(out: &mut Vec<u8>, token: &[u8]) {
    out.push(0xED);
    out.extend_from_slice(&(token.len() as u16).to_le_bytes());
    out.extend_from_slice(token);
}

/// LOGINACK for TDS 7.4.
pub fn login_ack(out: &mut Vec<u8>) {
    let mut body = BytesMut::new();
    body.put_u8(1); // SQL_TSQL
    body.put_u32(0x7400_0004); // TDS 7.4, big-endian on the wire
    write_b_varchar(&mut body, "reqsync TDS test double");
    body.put_slice(&[16, 0, 0x10, 0x00]); // "16.0.4096"
    out.push(0xAD);
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
}

pub const DONE_MORE: u16 = 0x01;
pub const DONE_ERROR: u16 = 0x02;
pub const DONE_COUNT: u16 = 0x10;

pub fn done(out: &mut Vec<u8>, status: u16, rows: u64) {
    let mut b = BytesMut::new();
    Done {
        status: DoneStatus::from_bits(status),
        cur_cmd: 0xC1, // SELECT
        row_count: rows,
    }
    .encode(&mut b);
    out.extend_from_slice(&b);
}

pub fn done_in_proc(out: &mut Vec<u8>, status: u16, rows: u64) {
    let mut b = BytesMut::new();
    DoneInProc {
        status: DoneStatus::from_bits(status),
        cur_cmd: 0xC1,
        row_count: rows,
    }
    .encode(&mut b);
    out.extend_from_slice(&b);
}

pub fn done_proc(out: &mut Vec<u8>, status: u16) {
    let mut b = BytesMut::new();
    DoneProc {
        status: DoneStatus::from_bits(status),
        cur_cmd: 0xE0, // EXECUTE
        row_count: 0,
    }
    .encode(&mut b);
    out.extend_from_slice(&b);
}

/// RETURNSTATUS 0: `sp_executesql` succeeded.
pub fn return_status(out: &mut Vec<u8>, status: i32) {
    out.push(0x79);
    out.extend_from_slice(&status.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use tds_protocol::token::{ColMetaData, RawRow};

    fn cols() -> Vec<Col> {
        vec![
            Col::new("id", SqlType::Int),
            Col::new("name", SqlType::NVarChar(60)),
            Col::new("amount", SqlType::Decimal(9, 2)),
            Col::new("at", SqlType::DateTime2(7)),
        ]
    }

    #[test]
    fn transaction_changes_decode_with_an_independent_codec() {
        use tds_protocol::token::{EnvChange, EnvChangeType, EnvChangeValue};
        let descriptor = 7u64.to_le_bytes();
        for (kind, new, old, ty) in [
            (
                ENV_BEGIN_TRANSACTION,
                &descriptor[..],
                &[][..],
                EnvChangeType::BeginTransaction,
            ),
            (
                ENV_ROLLBACK_TRANSACTION,
                &[][..],
                &descriptor[..],
                EnvChangeType::RollbackTransaction,
            ),
        ] {
            let mut out = Vec::new();
            transaction_change(&mut out, kind, new, old);
            let mut buf = &out[1..];
            let change = EnvChange::decode(&mut buf).expect("envchange");
            assert_eq!(change.env_type, ty);
            assert!(buf.is_empty(), "decoded to its last byte");
            let bytes = |v: &EnvChangeValue| match v {
                EnvChangeValue::Binary(b) => b.to_vec(),
                other => panic!("{other:?}"),
            };
            assert_eq!(bytes(&change.new_value), new);
            assert_eq!(bytes(&change.old_value), old);
        }
    }

    /// Cross-checks the hand-written COLMETADATA and ROW tokens with `tds-protocol`'s decoder,
    /// an implementation written independently from tiberius.
    #[test]
    fn metadata_and_rows_decode_with_an_independent_codec() {
        let columns = cols();
        let mut out = Vec::new();
        col_metadata(&mut out, &columns);
        let mut buf = &out[1..];
        let meta = ColMetaData::decode(&mut buf).expect("colmetadata");
        assert_eq!(meta.columns.len(), 4);
        assert_eq!(meta.columns[1].name, "name");
        let mut out = Vec::new();
        row(
            &mut out,
            &columns,
            &[
                Cell::Int(7),
                Cell::Text("Zoë".into()),
                Cell::Null,
                Cell::Timestamp(
                    NaiveDate::from_ymd_opt(2016, 9, 28)
                        .unwrap()
                        .and_hms_nano_opt(12, 0, 0, 123_456_700)
                        .unwrap(),
                ),
            ],
        );
        let mut buf = &out[1..];
        RawRow::decode(&mut buf, &meta).expect("row");
        assert!(buf.is_empty(), "the row was decoded to its last byte");
    }
}

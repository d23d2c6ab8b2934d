//! PostgreSQL column types onto [`Cell`]s, decoded from the binary wire format.
//!
//! | PostgreSQL | `Cell` |
//! | --- | --- |
//! | `smallint`, `integer`, `bigint`, `oid` | `Int` |
//! | `numeric(p, 0)` | `Int` when it fits 64 bits, else `Text` |
//! | `numeric`, `numeric(p, s > 0)` | `Text` of the exact decimal (`"12.50"`, `"NaN"`) |
//! | `real`, `double precision` | `Float` |
//! | `text`, `varchar`, `char(n)` (blank-padded, as stored), `name`, `"char"`, `citext`, enums, `json`, `jsonb` | `Text` |
//! | `boolean` | `Bool` |
//! | `date` | `Date` |
//! | `time` | `Time` |
//! | `timestamp` | `Timestamp`, taken as clinic local time like every source timestamp |
//! | `timestamptz` | `Timestamp`: the instant as clinic wall-clock time (see below) |
//! | `uuid` | `Text`, lower-case hyphenated |
//! | `bytea` | `Bytes` |
//!
//! A `timestamptz` is an instant; `Cell::Timestamp` is clinic wall-clock time, so the instant is
//! converted to the clinic time zone. In the hour clocks fall back, two instants share one
//! wall-clock time and the transform host reads it as the first occurrence: a `timestamptz` in
//! the second such hour reaches the transform an hour early. Nothing else is lost.
//!
//! `numeric` is never turned into a float: `0.1` has no exact binary form, and a dosage or an
//! identifier must reach the transform digit for digit. Transforms parse the text as a number
//! where they declare a float column. Other types (`interval`, arrays, `timetz`, …) are refused
//! when the query starts, naming the column, with a cast to suggest.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use tokio_postgres::types::{FromSql, Kind, Type};

use crate::source::Cell;

/// How one result column is decoded; chosen once per query from the column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoder {
    Int2,
    Int4,
    Int8,
    Oid,
    /// `numeric` with scale 0: an integer column in disguise (common for legacy ids).
    NumericInteger,
    Numeric,
    Float4,
    Float8,
    Text,
    /// `"char"`: one byte.
    Char,
    /// `jsonb`: a version byte, then the text.
    Jsonb,
    Bool,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    Bytes,
}

impl Decoder {
    /// The decoder for a column of type `ty` (with `typmod`, PostgreSQL's type modifier: for
    /// `numeric(p, s)` it is `(p << 16 | s) + 4`, or -1 when unconstrained).
    pub(super) fn for_type(ty: &Type, typmod: i32) -> Result<Decoder, String> {
        Ok(match *ty {
            Type::INT2 => Decoder::Int2,
            Type::INT4 => Decoder::Int4,
            Type::INT8 => Decoder::Int8,
            Type::OID => Decoder::Oid,
            Type::NUMERIC if typmod >= 4 && (typmod - 4) & 0xffff == 0 => Decoder::NumericInteger,
            Type::NUMERIC => Decoder::Numeric,
            Type::FLOAT4 => Decoder::Float4,
            Type::FLOAT8 => Decoder::Float8,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
                Decoder::Text
            }
            Type::CHAR => Decoder::Char,
            Type::JSONB => Decoder::Jsonb,
            Type::BOOL => Decoder::Bool,
            Type::DATE => Decoder::Date,
            Type::TIME => Decoder::Time,
            Type::TIMESTAMP => Decoder::Timestamp,
            Type::TIMESTAMPTZ => Decoder::TimestampTz,
            Type::UUID => Decoder::Uuid,
            Type::BYTEA => Decoder::Bytes,
            // Enum labels and citext travel as plain text.
            _ if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" => Decoder::Text,
            _ => {
                return Err(format!(
                    "PostgreSQL type `{}` cannot be read; cast the column in the query (for \
                     example `column::text`)",
                    ty.name()
                ));
            }
        })
    }

    /// Decodes one non-NULL value into a [`Cell`] borrowing `raw`, or `scratch` for text the
    /// wire does not hold as such (`numeric`, `uuid`). Errors describe the problem, never the
    /// value.
    pub(super) fn decode<'a>(
        self,
        raw: &'a [u8],
        clinic_tz: Tz,
        scratch: &'a mut String,
    ) -> Result<Cell<'a>, String> {
        Ok(match self {
            Decoder::Int2 => Cell::Int(i64::from(i16::from_be_bytes(fixed(raw)?))),
            Decoder::Int4 => Cell::Int(i64::from(i32::from_be_bytes(fixed(raw)?))),
            Decoder::Int8 => Cell::Int(i64::from_be_bytes(fixed(raw)?)),
            Decoder::Oid => Cell::Int(i64::from(u32::from_be_bytes(fixed(raw)?))),
            Decoder::NumericInteger => {
                *scratch = numeric_text(raw)?;
                match scratch.parse::<i64>() {
                    Ok(i) => Cell::Int(i),
                    Err(_) => Cell::Text(scratch),
                }
            }
            Decoder::Numeric => {
                *scratch = numeric_text(raw)?;
                Cell::Text(scratch)
            }
            // Via the shortest decimal that reads back as the same f32, so `real` 0.1 arrives as
            // 0.1 and not as 0.100000001490116.
            Decoder::Float4 => {
                let f = f32::from_be_bytes(fixed(raw)?);
                Cell::Float(f.to_string().parse().unwrap_or(f64::from(f)))
            }
            Decoder::Float8 => Cell::Float(f64::from_be_bytes(fixed(raw)?)),
            Decoder::Text | Decoder::Char => Cell::Text(utf8(raw)?),
            Decoder::Jsonb => match raw.split_first() {
                Some((1, text)) => Cell::Text(utf8(text)?),
                _ => return Err("unsupported jsonb format version".into()),
            },
            Decoder::Bool => {
                Cell::Bool(bool::from_sql(&Type::BOOL, raw).map_err(|e| e.to_string())?)
            }
            Decoder::Date => Cell::Date(date(i32::from_be_bytes(fixed(raw)?))?),
            Decoder::Time => {
                let micros = i64::from_be_bytes(fixed(raw)?);
                // PostgreSQL allows 24:00:00, which no clock library does.
                if !(0..86_400_000_000).contains(&micros) {
                    return Err("a time of 24:00:00 cannot be read as a time of day".into());
                }
                let (secs, micros) = (micros / 1_000_000, micros % 1_000_000);
                Cell::Time(
                    NaiveTime::from_num_seconds_from_midnight_opt(
                        secs as u32,
                        (micros * 1_000) as u32,
                    )
                    .ok_or("the time is out of range")?,
                )
            }
            Decoder::Timestamp => Cell::Timestamp(timestamp(i64::from_be_bytes(fixed(raw)?))?),
            Decoder::TimestampTz => {
                let utc = timestamp(i64::from_be_bytes(fixed(raw)?))?;
                Cell::Timestamp(utc_to_clinic(utc, clinic_tz))
            }
            Decoder::Uuid => {
                let uuid = uuid::Uuid::from_slice(raw)
                    .map_err(|_| "a uuid must be 16 bytes".to_string())?;
                scratch.clear();
                scratch.push_str(
                    uuid.hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer()),
                );
                Cell::Text(scratch)
            }
            Decoder::Bytes => Cell::Bytes(raw),
        })
    }
}

/// PostgreSQL counts dates and timestamps from 2000-01-01.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap_or_default()
        .and_time(NaiveTime::MIN)
}

fn date(days: i32) -> Result<NaiveDate, String> {
    if days == i32::MAX || days == i32::MIN {
        return Err("an infinite date cannot be read as a date".into());
    }
    epoch()
        .date()
        .checked_add_signed(TimeDelta::days(i64::from(days)))
        .ok_or_else(|| "the date is outside the supported range".into())
}

fn timestamp(micros: i64) -> Result<NaiveDateTime, String> {
    if micros == i64::MAX || micros == i64::MIN {
        return Err("an infinite timestamp cannot be read as a timestamp".into());
    }
    epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or_else(|| "the timestamp is outside the supported range".into())
}

/// An instant (UTC) as the clinic's wall-clock time.
pub(super) fn utc_to_clinic(utc: NaiveDateTime, clinic_tz: Tz) -> NaiveDateTime {
    DateTime::<Utc>::from_naive_utc_and_offset(utc, Utc)
        .with_timezone(&clinic_tz)
        .naive_local()
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, the server sent {}", raw.len()))
}

fn utf8(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw)
        // The position of the bad byte is safe to show; the text is not.
        .map_err(|e| format!("text is not valid UTF-8 (byte {})", e.valid_up_to()))
}

/// The exact decimal text of a binary `numeric`, as PostgreSQL itself prints it: all `dscale`
/// fraction digits, `NaN`, `Infinity`, `-Infinity`.
///
/// Wire format: `ndigits`, `weight`, `sign`, `dscale` (each 16 bits), then `ndigits` base-10000
/// digits; digit `k` is worth 10000^(`weight` - k).
pub(super) fn numeric_text(raw: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<i16, String> {
        raw.get(2 * i..2 * i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_string())
    };
    let ndigits = usize::try_from(word(0)?).map_err(|_| "corrupt numeric")?;
    let weight = i64::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = usize::from(word(3)? as u16);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err("corrupt numeric sign".into()),
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|k| word(4 + k))
        .collect::<Result<_, _>>()?;
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return Err("corrupt numeric digit".into());
    }
    let group = |k: i64| -> i16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                out.push_str(&group(k).to_string());
            } else {
                out.push_str(&format!("{:04}", group(k)));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut k = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", group(k)));
            k += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Value;

    /// `decoder`'s value for `raw`, owned.
    fn decode(decoder: Decoder, raw: &[u8], tz: Tz) -> Result<Value, String> {
        decoder
            .decode(raw, tz, &mut String::new())
            .map(Cell::to_value)
    }

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale as i16] {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numeric_text_is_exact() {
        // 12.50
        assert_eq!(
            numeric_text(&numeric(2, 0, 0, 2, &[12, 5000])).unwrap(),
            "12.50"
        );
        // -0.000123 = 0001|2300 after the point: digits [1, 2300] at weight -1
        assert_eq!(
            numeric_text(&numeric(2, -1, 0x4000, 6, &[1, 2300])).unwrap(),
            "-0.000123"
        );
        // 100000000 = [1, 0, 0] weight 2, stored trimmed as [1] weight 2
        assert_eq!(
            numeric_text(&numeric(1, 2, 0, 0, &[1])).unwrap(),
            "100000000"
        );
        assert_eq!(numeric_text(&numeric(0, 0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric_text(&numeric(0, 0, 0, 3, &[])).unwrap(), "0.000");
        assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert_eq!(
            numeric_text(&numeric(0, 0, 0xF000, 0, &[])).unwrap(),
            "-Infinity"
        );
        assert!(numeric_text(&[0, 1]).is_err(), "truncated");
    }

    #[test]
    fn numeric_with_scale_zero_is_an_integer_column() {
        let typmod = (12 << 16) + 4; // numeric(12, 0)
        assert_eq!(
            Decoder::for_type(&Type::NUMERIC, typmod),
            Ok(Decoder::NumericInteger)
        );
        let typmod = ((12 << 16) | 2) + 4;
        assert_eq!(
            Decoder::for_type(&Type::NUMERIC, typmod),
            Ok(Decoder::Numeric)
        );
        assert_eq!(Decoder::for_type(&Type::NUMERIC, -1), Ok(Decoder::Numeric));
        let tz = chrono_tz::UTC;
        // 92233720368547758 fits 64 bits; 10^20 does not and stays exact as text.
        let fits = numeric(5, 4, 0, 0, &[9, 2233, 7203, 6854, 7758]);
        assert_eq!(
            decode(Decoder::NumericInteger, &fits, tz).unwrap(),
            Value::Int(92_233_720_368_547_758)
        );
        let huge = numeric(1, 5, 0, 0, &[1]);
        assert_eq!(
            decode(Decoder::NumericInteger, &huge, tz).unwrap(),
            Value::Text("100000000000000000000".into())
        );
    }

    #[test]
    fn unsupported_types_name_a_cast() {
        let msg = Decoder::for_type(&Type::INTERVAL, -1).unwrap_err();
        assert!(msg.contains("interval") && msg.contains("::text"), "{msg}");
    }

    #[test]
    fn infinities_and_24_00_are_errors_without_values() {
        let tz = chrono_tz::UTC;
        let e = decode(Decoder::Date, &i32::MAX.to_be_bytes(), tz).unwrap_err();
        assert!(e.contains("infinite"), "{e}");
        let e = decode(Decoder::Timestamp, &i64::MIN.to_be_bytes(), tz).unwrap_err();
        assert!(e.contains("infinite"), "{e}");
        let e = decode(Decoder::Time, &86_400_000_000i64.to_be_bytes(), tz).unwrap_err();
        assert!(e.contains("24:00:00"), "{e}");
    }

    #[test]
    fn timestamptz_becomes_clinic_wall_clock_time() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        let wall_clock = |utc: &str| {
            let utc = NaiveDateTime::parse_from_str(utc, "%Y-%m-%d %H:%M:%S").unwrap();
            let micros = (utc - epoch()).num_microseconds().unwrap();
            match decode(Decoder::TimestampTz, &micros.to_be_bytes(), tz).unwrap() {
                Value::Timestamp(t) => t.to_string(),
                other => panic!("{other:?}"),
            }
        };
        // Noon in Kansas City (CDT, -05:00); 09:30 in winter (CST, -06:00).
        assert_eq!(wall_clock("2016-09-28 17:00:00"), "2016-09-28 12:00:00");
        assert_eq!(wall_clock("2016-01-15 15:30:00"), "2016-01-15 09:30:00");
        // Both 01:30s of the night clocks fall back show 01:30 (documented above).
        assert_eq!(wall_clock("2016-11-06 06:30:00"), "2016-11-06 01:30:00");
        assert_eq!(wall_clock("2016-11-06 07:30:00"), "2016-11-06 01:30:00");
    }
}

//! SQL Server values as source [`Value`]s.
//!
//! Exactness decides the mapping: integers stay integers, `decimal`/`numeric` with a scale and
//! `money` become their exact decimal text (a float would turn 0.1 into 0.1000000000000000055…),
//! `datetime2` keeps its 100 ns ticks, `datetime`'s 1/300 s ticks become nanoseconds
//! rounded down (so a value read back and used as a window start selects that same row again),
//! `datetimeoffset` instants are shown in clinic local time
//! (every source timestamp reaches transforms as clinic local time).

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use tiberius::{ColumnData, ColumnType};

use crate::source::Value;

/// The declared type shown in [`crate::source::ColumnInfo`]. TDS metadata as tiberius exposes
/// it does not distinguish `datetime` from `smalldatetime` or `money` from `smallmoney`; the
/// values do, and are mapped exactly either way.
pub fn declared_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Null => "NULL",
        ColumnType::Bit | ColumnType::Bitn => "BIT",
        ColumnType::Int1 => "TINYINT",
        ColumnType::Int2 => "SMALLINT",
        ColumnType::Int4 | ColumnType::Intn => "INT",
        ColumnType::Int8 => "BIGINT",
        ColumnType::Datetime4 => "SMALLDATETIME",
        ColumnType::Datetime | ColumnType::Datetimen => "DATETIME",
        ColumnType::Float4 => "REAL",
        ColumnType::Float8 | ColumnType::Floatn => "FLOAT",
        ColumnType::Money => "MONEY",
        ColumnType::Money4 => "SMALLMONEY",
        ColumnType::Guid => "UNIQUEIDENTIFIER",
        ColumnType::Decimaln => "DECIMAL",
        ColumnType::Numericn => "NUMERIC",
        ColumnType::Daten => "DATE",
        ColumnType::Timen => "TIME",
        ColumnType::Datetime2 => "DATETIME2",
        ColumnType::DatetimeOffsetn => "DATETIMEOFFSET",
        ColumnType::BigVarBin => "VARBINARY",
        ColumnType::BigBinary => "BINARY",
        ColumnType::Image => "IMAGE",
        ColumnType::BigVarChar => "VARCHAR",
        ColumnType::BigChar => "CHAR",
        ColumnType::NVarchar => "NVARCHAR",
        ColumnType::NChar => "NCHAR",
        ColumnType::Text => "TEXT",
        ColumnType::NText => "NTEXT",
        ColumnType::Xml => "XML",
        ColumnType::Udt => "UDT",
        ColumnType::SSVariant => "SQL_VARIANT",
    }
}

/// Binary column types. Transforms have no bytes column type, so a query returning one is
/// refused before any row is read, naming the column (see `docs/CONFIG.md`).
pub(crate) fn is_binary(ty: ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::BigVarBin | ColumnType::BigBinary | ColumnType::Image | ColumnType::Udt
    )
}

/// Converts one cell of a column of type `ty`. The error says what kind of value could not be
/// converted, never the value.
pub(crate) fn to_value(
    ty: ColumnType,
    data: &ColumnData<'static>,
    clinic_tz: Tz,
) -> Result<Value, String> {
    Ok(match data {
        ColumnData::F64(Some(x)) if matches!(ty, ColumnType::Money | ColumnType::Money4) => {
            Value::Text(money_text(*x).into())
        }
        ColumnData::U8(v) => v.map_or(Value::Null, |x| Value::Int(i64::from(x))),
        ColumnData::I16(v) => v.map_or(Value::Null, |x| Value::Int(i64::from(x))),
        ColumnData::I32(v) => v.map_or(Value::Null, |x| Value::Int(i64::from(x))),
        ColumnData::I64(v) => v.map_or(Value::Null, Value::Int),
        // `real` holds a float32: widen through its shortest decimal form so 0.1 stays 0.1
        // instead of becoming 0.10000000149011612.
        ColumnData::F32(v) => v.map_or(Value::Null, |x| {
            Value::Float(x.to_string().parse().unwrap_or(f64::from(x)))
        }),
        ColumnData::F64(v) => v.map_or(Value::Null, Value::Float),
        ColumnData::Bit(v) => v.map_or(Value::Null, Value::Bool),
        ColumnData::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::Text(s.as_ref().into())),
        // Upper case, as SQL Server itself prints a uniqueidentifier.
        ColumnData::Guid(v) => v.map_or(Value::Null, |g| {
            Value::Text(g.hyphenated().to_string().to_uppercase().into())
        }),
        ColumnData::Numeric(v) => match v {
            None => Value::Null,
            Some(n) if n.scale() == 0 => match i64::try_from(n.value()) {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Text(n.value().to_string().into()),
            },
            Some(n) => Value::Text(decimal_text(n.value(), n.scale()).into()),
        },
        ColumnData::Xml(v) => v
            .as_ref()
            .map_or(Value::Null, |x| Value::Text(x.to_string().into())),
        ColumnData::Binary(v) => match v {
            None => Value::Null,
            Some(_) => return Err("binary values are not supported".into()),
        },
        ColumnData::DateTime(v) => match v {
            None => Value::Null,
            Some(dt) => Value::Timestamp(datetime(dt.days(), dt.seconds_fragments())?),
        },
        ColumnData::SmallDateTime(v) => match v {
            None => Value::Null,
            Some(dt) => Value::Timestamp(
                days_since(1900, i64::from(dt.days()))?
                    .and_time(NaiveTime::MIN)
                    .checked_add_signed(Duration::minutes(i64::from(dt.seconds_fragments())))
                    .ok_or("smalldatetime out of range")?,
            ),
        },
        ColumnData::Date(v) => match v {
            None => Value::Null,
            Some(d) => Value::Date(days_since(1, i64::from(d.days()))?),
        },
        ColumnData::Time(v) => match v {
            None => Value::Null,
            Some(t) => Value::Time(time_of_day(t.increments(), t.scale())?),
        },
        ColumnData::DateTime2(v) => match v {
            None => Value::Null,
            Some(dt) => Value::Timestamp(datetime2(dt)?),
        },
        ColumnData::DateTimeOffset(v) => match v {
            None => Value::Null,
            Some(dto) => {
                // On the wire the date and time are UTC (the offset only says where they were
                // written): the instant, in clinic time.
                let utc = datetime2(&dto.datetime2())?;
                Value::Timestamp(clinic_tz.from_utc_datetime(&utc).naive_local())
            }
        },
    })
}

/// `money` arrives from tiberius as a float of its 1/10000 units; those units are exact below
/// 2^53, i.e. for any amount under about 900 billion.
pub(crate) fn money_text(v: f64) -> String {
    decimal_text((v * 10_000.0).round() as i128, 4)
}

/// An unscaled integer and a scale as decimal text: (1234, 2) is `12.34`, (-5, 3) is `-0.005`.
pub(crate) fn decimal_text(unscaled: i128, scale: u8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn days_since(year: i32, days: i64) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|base| base.checked_add_signed(Duration::days(days)))
        .ok_or_else(|| "date out of range".to_string())
}

fn time_of_day(increments: u64, scale: u8) -> Result<NaiveTime, String> {
    if scale > 7 {
        return Err(format!("time scale {scale} is not a SQL Server scale"));
    }
    let nanos = u128::from(increments) * 10u128.pow(9 - u32::from(scale));
    let secs = u32::try_from(nanos / 1_000_000_000).map_err(|_| "time out of range")?;
    let frac = (nanos % 1_000_000_000) as u32;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, frac)
        .ok_or_else(|| "time out of range".to_string())
}

fn datetime2(dt: &tiberius::time::DateTime2) -> Result<NaiveDateTime, String> {
    Ok(days_since(1, i64::from(dt.date().days()))?
        .and_time(time_of_day(dt.time().increments(), dt.time().scale())?))
}

/// `datetime` counts 1/300 s, which no decimal fraction holds exactly. Rounding down keeps a
/// read value at or before its tick, so binding it back (rounded up to the next tick, see
/// `window`) selects the same row: tick 2 reads as .006666666, not as the .007 SQL Server
/// prints, which would bind to tick 3 and miss it.
fn datetime(days: i32, fragments: u32) -> Result<NaiveDateTime, String> {
    let nanos = u64::from(fragments) * 1_000_000_000 / 300;
    Ok(days_since(1900, i64::from(days))?
        .and_time(NaiveTime::MIN)
        .checked_add_signed(Duration::nanoseconds(nanos as i64))
        .ok_or("datetime out of range")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};

    #[test]
    fn decimals_keep_their_scale_exactly() {
        assert_eq!(decimal_text(1234, 2), "12.34");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(50, 2), "0.50");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(money_text(12.3456), "12.3456");
        assert_eq!(money_text(-0.0001), "-0.0001");
    }

    #[test]
    fn datetime_ticks_read_rounded_down_to_the_nanosecond() {
        // 2016-09-28 is 42639 days after 1900-01-01; 2 fragments is .00666… s.
        let v = to_value(
            ColumnType::Null,
            &ColumnData::DateTime(Some(DateTime::new(42639, 2))),
            chrono_tz::UTC,
        )
        .unwrap();
        let want = NaiveDate::from_ymd_opt(2016, 9, 28)
            .unwrap()
            .and_hms_nano_opt(0, 0, 0, 6_666_666)
            .unwrap();
        assert_eq!(v, Value::Timestamp(want));
        let v = to_value(
            ColumnType::Null,
            &ColumnData::SmallDateTime(Some(SmallDateTime::new(42639, 61))),
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(
            v,
            Value::Timestamp(want.date().and_hms_opt(1, 1, 0).unwrap())
        );
    }

    #[test]
    fn datetime2_keeps_100ns_ticks_and_offsets_become_clinic_time() {
        let date = Date::new(736234); // 2016-09-28
        let dt2 = DateTime2::new(date, Time::new(432_001_234_567, 7));
        let v = to_value(
            ColumnType::Null,
            &ColumnData::DateTime2(Some(dt2)),
            chrono_tz::UTC,
        )
        .unwrap();
        let want = NaiveDate::from_ymd_opt(2016, 9, 28)
            .unwrap()
            .and_hms_nano_opt(12, 0, 0, 123_456_700)
            .unwrap();
        assert_eq!(v, Value::Timestamp(want));
        let v = to_value(
            ColumnType::Null,
            &ColumnData::DateTimeOffset(Some(DateTimeOffset::new(dt2, -300))),
            chrono_tz::America::Chicago,
        )
        .unwrap();
        // The wire holds 12:00 UTC; Chicago is at -05:00 then.
        assert_eq!(v, Value::Timestamp(want - Duration::hours(5)));
    }

    #[test]
    fn nulls_of_every_type_are_null() {
        for data in [
            ColumnData::U8(None),
            ColumnData::I64(None),
            ColumnData::F32(None),
            ColumnData::Bit(None),
            ColumnData::String(None),
            ColumnData::Guid(None),
            ColumnData::Numeric(None),
            ColumnData::Binary(None),
            ColumnData::DateTime(None),
            ColumnData::Date(None),
            ColumnData::DateTime2(None),
            ColumnData::DateTimeOffset(None),
        ] {
            assert_eq!(
                to_value(ColumnType::Null, &data, chrono_tz::UTC).unwrap(),
                Value::Null
            );
        }
    }

    #[test]
    fn real_values_widen_through_their_shortest_form() {
        assert_eq!(
            to_value(
                ColumnType::Null,
                &ColumnData::F32(Some(0.1)),
                chrono_tz::UTC
            )
            .unwrap(),
            Value::Float(0.1)
        );
    }
}

//! Binding the window start as the type of the column it is compared with.
//!
//! `updated_at >= @P1` must select exactly the rows at or after the window start, at any
//! precision. Two traps: a `datetime2` parameter against a `datetime` column is compared after
//! converting the column, and how SQL Server converts depends on the database's compatibility
//! level (exact from 130 on, rounded before); a `datetime` parameter against a `datetime2`
//! column rounds the *parameter* to 1/300 s, which can move it past a row (lost) or before one
//! (sent twice). So the parameter gets the column's own type, asked from the server with
//! `sp_describe_undeclared_parameters`, and its value is the window start rounded **up** to that
//! type's resolution: for values on the column's grid, `v >= ceil(start)` holds exactly when
//! `v >= start` does, so the comparison is exact whatever the compatibility level.

use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use tiberius::ColumnData;
use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};

/// The SQL type the window start is bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowType {
    /// `datetime`: 1/300 s, 1753-01-01 to 9999-12-31.
    DateTime,
    /// `smalldatetime`: minutes, 1900-01-01 to 2079-06-06.
    SmallDateTime,
    /// `datetime2(scale)`: 10^-scale s.
    DateTime2(u8),
    /// `date`: days.
    Date,
    /// `datetimeoffset(scale)`: an instant; the clinic-local start is converted with the clinic
    /// time zone (a time repeated when clocks fall back is its first occurrence, a skipped one
    /// is read as if the clocks had already moved, as the transform host reads timestamps).
    DateTimeOffset(u8),
}

/// What the server's suggestion means for binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Suggestion {
    Use(WindowType),
    /// A type the window start is not compared as (text, a number…): bound as `datetime2(7)`,
    /// which SQL Server converts the column to, with a warning naming the type.
    Unusual(String),
}

impl WindowType {
    /// The default when the server cannot say: the most precise local type.
    pub(crate) const FALLBACK: WindowType = WindowType::DateTime2(7);

    /// Reads `suggested_system_type_name` of `sp_describe_undeclared_parameters`, e.g.
    /// `datetime`, `datetime2(3)`, `date`.
    pub(crate) fn from_suggestion(name: &str) -> Suggestion {
        let lower = name.trim().to_ascii_lowercase();
        let (base, arg) = match lower.split_once('(') {
            Some((b, a)) => (b.trim(), a.trim_end_matches(')').trim().parse::<u8>().ok()),
            None => (lower.as_str(), None),
        };
        match base {
            "datetime" => Suggestion::Use(WindowType::DateTime),
            "smalldatetime" => Suggestion::Use(WindowType::SmallDateTime),
            "datetime2" => Suggestion::Use(WindowType::DateTime2(arg.unwrap_or(7).min(7))),
            "date" => Suggestion::Use(WindowType::Date),
            "datetimeoffset" => {
                Suggestion::Use(WindowType::DateTimeOffset(arg.unwrap_or(7).min(7)))
            }
            _ => Suggestion::Unusual(lower),
        }
    }

    /// The window start (clinic local time) rounded up to this type's resolution and range, as
    /// a parameter.
    pub fn bind(self, start: NaiveDateTime, clinic_tz: Tz) -> Result<ColumnData<'static>, String> {
        match self {
            WindowType::DateTimeOffset(scale) => {
                let instant = match clinic_tz.from_local_datetime(&start) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
                    LocalResult::None => {
                        match clinic_tz.from_local_datetime(&(start + chrono::Duration::hours(1))) {
                            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
                            LocalResult::None => clinic_tz.from_utc_datetime(&start),
                        }
                    }
                };
                let offset_minutes = instant.offset().fix().local_minus_utc() / 60;
                // Offsets are whole minutes, so rounding up in UTC lands on the same grid.
                let (date, increments) =
                    ceil_units(instant.naive_utc(), 10u64.pow(u32::from(scale)))?;
                Ok(ColumnData::DateTimeOffset(Some(DateTimeOffset::new(
                    DateTime2::new(date_value(date)?, Time::new(increments, scale)),
                    i16::try_from(offset_minutes).map_err(|_| "offset out of range")?,
                ))))
            }
            WindowType::DateTime => {
                let min = ymd(1753, 1, 1);
                let start = start.max(min.and_time(NaiveTime::MIN));
                let (date, fragments) = ceil_units(start, 300)?;
                let days = (date - ymd(1900, 1, 1)).num_days();
                Ok(ColumnData::DateTime(Some(DateTime::new(
                    i32::try_from(days).map_err(|_| "out of the range of datetime")?,
                    u32::try_from(fragments).map_err(|_| "out of the range of datetime")?,
                ))))
            }
            WindowType::SmallDateTime => {
                let start = start.max(ymd(1900, 1, 1).and_time(NaiveTime::MIN));
                // One unit per minute: 1/60 of a unit per second.
                let (date, minutes) = ceil_minutes(start)?;
                let days = (date - ymd(1900, 1, 1)).num_days();
                Ok(ColumnData::SmallDateTime(Some(SmallDateTime::new(
                    u16::try_from(days).map_err(|_| "out of the range of smalldatetime")?,
                    u16::try_from(minutes).map_err(|_| "out of the range of smalldatetime")?,
                ))))
            }
            WindowType::DateTime2(scale) => {
                let (date, increments) = ceil_units(start, 10u64.pow(u32::from(scale)))?;
                Ok(ColumnData::DateTime2(Some(DateTime2::new(
                    date_value(date)?,
                    Time::new(increments, scale),
                ))))
            }
            WindowType::Date => {
                let date = if start.time() == NaiveTime::MIN {
                    start.date()
                } else {
                    start.date().succ_opt().ok_or("out of the range of date")?
                };
                Ok(ColumnData::Date(Some(date_value(date)?)))
            }
        }
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn date_value(date: NaiveDate) -> Result<Date, String> {
    let days = (date - ymd(1, 1, 1)).num_days();
    u32::try_from(days)
        .map(Date::new)
        .map_err(|_| "out of the range of date".to_string())
}

/// The date and the number of `per_second` units since its midnight of the smallest grid point
/// at or after `t`; a time past the last unit of a day carries into the next day.
fn ceil_units(t: NaiveDateTime, per_second: u64) -> Result<(NaiveDate, u64), String> {
    let nanos = u128::from(t.num_seconds_from_midnight()) * 1_000_000_000
        + u128::from(t.nanosecond().min(999_999_999));
    let per_second = u128::from(per_second);
    let units = (nanos * per_second).div_ceil(1_000_000_000);
    let per_day = 86_400 * per_second;
    if units >= per_day {
        let next = t.date().succ_opt().ok_or("out of range")?;
        Ok((next, (units - per_day) as u64))
    } else {
        Ok((t.date(), units as u64))
    }
}

fn ceil_minutes(t: NaiveDateTime) -> Result<(NaiveDate, u32), String> {
    let exact = t.second() == 0 && t.nanosecond() == 0;
    let minutes = t.num_seconds_from_midnight() / 60 + u32::from(!exact);
    if minutes >= 1440 {
        let next = t.date().succ_opt().ok_or("out of range")?;
        Ok((next, minutes - 1440))
    } else {
        Ok((t.date(), minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> Tz {
        chrono_tz::America::Chicago
    }

    fn t(h: u32, m: u32, s: u32, nanos: u32) -> NaiveDateTime {
        ymd(2016, 9, 28).and_hms_nano_opt(h, m, s, nanos).unwrap()
    }

    #[test]
    fn suggestions_are_read() {
        assert_eq!(
            WindowType::from_suggestion("datetime"),
            Suggestion::Use(WindowType::DateTime)
        );
        assert_eq!(
            WindowType::from_suggestion("datetime2(3)"),
            Suggestion::Use(WindowType::DateTime2(3))
        );
        assert_eq!(
            WindowType::from_suggestion("DATETIME2"),
            Suggestion::Use(WindowType::DateTime2(7))
        );
        assert_eq!(
            WindowType::from_suggestion("datetimeoffset(7)"),
            Suggestion::Use(WindowType::DateTimeOffset(7))
        );
        assert_eq!(
            WindowType::from_suggestion("nvarchar(4000)"),
            Suggestion::Unusual("nvarchar(4000)".into())
        );
    }

    #[test]
    fn datetime_rounds_up_to_the_next_three_hundredth() {
        let days = (ymd(2016, 9, 28) - ymd(1900, 1, 1)).num_days() as i32;
        let noon = 12 * 3600 * 300;
        // .001 s lies between ticks 0 and 1: rounding to nearest would pick tick 0 and select a
        // row at .000 that is before the window; rounding up picks tick 1.
        for (nanos, tick) in [
            (0, 0),
            (1_000_000, 1),
            (3_333_333, 1),
            (3_333_334, 2),
            (3_000_000, 1),
        ] {
            let got = WindowType::DateTime.bind(t(12, 0, 0, nanos), tz()).unwrap();
            assert_eq!(
                got,
                ColumnData::DateTime(Some(DateTime::new(days, noon + tick))),
                "{nanos} ns"
            );
        }
        // Tick 2 as the source reads it (rounded down to the nanosecond) binds to tick 2.
        let got = WindowType::DateTime
            .bind(t(12, 0, 0, 6_666_666), tz())
            .unwrap();
        assert_eq!(
            got,
            ColumnData::DateTime(Some(DateTime::new(days, noon + 2)))
        );
    }

    #[test]
    fn datetime2_keeps_100ns_and_rounds_finer_values_up() {
        let got = WindowType::DateTime2(7)
            .bind(t(12, 0, 0, 123_456_700), tz())
            .unwrap();
        let ColumnData::DateTime2(Some(dt)) = got else {
            panic!("datetime2")
        };
        assert_eq!(dt.time().increments(), 432_001_234_567);
        let got = WindowType::DateTime2(7)
            .bind(t(12, 0, 0, 123_456_701), tz())
            .unwrap();
        let ColumnData::DateTime2(Some(dt)) = got else {
            panic!("datetime2")
        };
        assert_eq!(dt.time().increments(), 432_001_234_568);
    }

    #[test]
    fn rounding_up_at_the_end_of_a_day_carries_into_the_next() {
        let got = WindowType::DateTime2(0)
            .bind(t(23, 59, 59, 500_000_000), tz())
            .unwrap();
        let ColumnData::DateTime2(Some(dt)) = got else {
            panic!("datetime2")
        };
        assert_eq!(
            dt.date().days(),
            date_value(ymd(2016, 9, 29)).unwrap().days()
        );
        assert_eq!(dt.time().increments(), 0);
        let got = WindowType::Date.bind(t(0, 0, 0, 1), tz()).unwrap();
        assert_eq!(
            got,
            ColumnData::Date(Some(date_value(ymd(2016, 9, 29)).unwrap()))
        );
        let got = WindowType::SmallDateTime
            .bind(t(23, 59, 1, 0), tz())
            .unwrap();
        let days = (ymd(2016, 9, 29) - ymd(1900, 1, 1)).num_days() as u16;
        assert_eq!(
            got,
            ColumnData::SmallDateTime(Some(SmallDateTime::new(days, 0)))
        );
    }

    #[test]
    fn datetimeoffset_binds_the_clinic_instant_with_its_offset() {
        // 12:00 in Chicago on 2016-09-28 is 17:00 UTC, offset -05:00.
        let got = WindowType::DateTimeOffset(7)
            .bind(t(12, 0, 0, 0), tz())
            .unwrap();
        let ColumnData::DateTimeOffset(Some(dto)) = got else {
            panic!("datetimeoffset")
        };
        assert_eq!(dto.offset(), -300);
        assert_eq!(dto.datetime2().time().increments(), 17 * 3600 * 10_000_000);
    }

    #[test]
    fn the_beginning_of_time_clamps_to_the_type_range() {
        let start = ymd(1000, 1, 1).and_time(NaiveTime::MIN);
        let got = WindowType::DateTime.bind(start, tz()).unwrap();
        let days = (ymd(1753, 1, 1) - ymd(1900, 1, 1)).num_days() as i32;
        assert_eq!(got, ColumnData::DateTime(Some(DateTime::new(days, 0))));
    }
}

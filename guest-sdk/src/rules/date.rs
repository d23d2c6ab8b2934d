//! ISO 8601 calendar dates and timestamps, strictly.
//!
//! Strict on purpose: ReqCheck reads `MM-DD-YYYY` as day-month and `MM/DD/YY` as year 00YY
//! without complaint, so anything that is not exactly `YYYY-MM-DD` must be caught here.

use std::fmt;

/// A proleptic Gregorian calendar date between 0001-01-01 and 9999-12-31.
///
/// Orders chronologically, so "not after the as-of date" is `date <= ctx.as_of_date()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    // Field order matters: the derived `Ord` compares year, then month, then day.
    year: u16,
    month: u8,
    day: u8,
}

pub const fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Days in `month` (1–12) of `year`; 0 for a month outside 1–12.
pub const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// The date, when it exists on the calendar.
    pub const fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        if year >= 1 && year <= 9999 && day >= 1 && day <= days_in_month(year, month) {
            Some(Self { year, month, day })
        } else {
            None
        }
    }

    /// Parses exactly `YYYY-MM-DD` (ten characters, no surrounding space) naming a real
    /// calendar date: `2024-02-29` is accepted, `2023-02-29` and `2024-2-9` are not.
    pub fn parse(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let year = digits(bytes, 0, 4)?;
        let month = digits(bytes, 5, 2)?;
        let day = digits(bytes, 8, 2)?;
        Self::new(year as u16, month as u8, day as u8)
    }

    pub const fn year(self) -> u16 {
        self.year
    }

    pub const fn month(self) -> u8 {
        self.month
    }

    pub const fn day(self) -> u8 {
        self.day
    }

    /// The next calendar day (`None` after 9999-12-31).
    pub const fn succ(self) -> Option<Self> {
        if self.day < days_in_month(self.year, self.month) {
            Some(Self {
                day: self.day + 1,
                ..self
            })
        } else if self.month < 12 {
            Some(Self {
                month: self.month + 1,
                day: 1,
                ..self
            })
        } else if self.year < 9999 {
            Some(Self {
                year: self.year + 1,
                month: 1,
                day: 1,
            })
        } else {
            None
        }
    }

    /// Appends `YYYY-MM-DD`.
    pub fn push_iso(self, out: &mut String) {
        out.reserve(10);
        push_padded(out, u32::from(self.year), 4);
        out.push('-');
        push_padded(out, u32::from(self.month), 2);
        out.push('-');
        push_padded(out, u32::from(self.day), 2);
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(10);
        self.push_iso(&mut out);
        f.write_str(&out)
    }
}

/// `len` ASCII digits at `bytes[at..]` as a number.
fn digits(bytes: &[u8], at: usize, len: usize) -> Option<u32> {
    let mut value = 0u32;
    for &b in bytes.get(at..at + len)? {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    Some(value)
}

fn push_padded(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + ((value / divisor) % 10) as u8));
        divisor /= 10;
    }
}

/// A local date-time with its UTC offset, as the host delivers `timestamp` columns:
/// `YYYY-MM-DDTHH:MM:SS[.fraction]±HH:MM` (or `Z` for UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    /// East of UTC, in minutes (Kansas City in winter: -300).
    offset_minutes: i16,
}

impl Timestamp {
    /// Parses the shape above strictly: `T` separator, two-digit fields, 1–9 fraction digits,
    /// an explicit offset (a timestamp without one is ambiguous twice a year).
    pub fn parse(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        if bytes.len() < 20 || bytes[10] != b'T' || bytes[13] != b':' || bytes[16] != b':' {
            return None;
        }
        let date = Date::parse(value.get(..10)?)?;
        let hour = digits(bytes, 11, 2)?;
        let minute = digits(bytes, 14, 2)?;
        let second = digits(bytes, 17, 2)?;
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut rest = &bytes[19..];
        if let Some((b'.', fraction)) = rest.split_first() {
            let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if !(1..=9).contains(&count) {
                return None;
            }
            rest = &fraction[count..];
        }
        let offset_minutes = match rest {
            [b'Z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let hours = digits(rest, 1, 2)?;
                let minutes = digits(rest, 4, 2)?;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let total = (hours * 60 + minutes) as i16;
                if *sign == b'-' { -total } else { total }
            }
            _ => return None,
        };
        Some(Self {
            date,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            offset_minutes,
        })
    }

    pub const fn date(self) -> Date {
        self.date
    }

    pub const fn hour(self) -> u8 {
        self.hour
    }

    pub const fn minute(self) -> u8 {
        self.minute
    }

    pub const fn second(self) -> u8 {
        self.second
    }

    pub const fn offset_minutes(self) -> i16 {
        self.offset_minutes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_real_calendar_dates_only() {
        assert_eq!(Date::parse("2024-02-29"), Date::new(2024, 2, 29));
        assert_eq!(Date::parse("2000-02-29"), Date::new(2000, 2, 29));
        assert_eq!(Date::parse("1900-02-29"), None);
        assert_eq!(Date::parse("2023-02-29"), None);
        assert_eq!(Date::parse("2023-04-31"), None);
        assert_eq!(Date::parse("2023-13-01"), None);
        assert_eq!(Date::parse("2023-00-10"), None);
        assert_eq!(Date::parse("0000-01-01"), None);
        assert_eq!(Date::parse("2023-1-01"), None);
        assert_eq!(Date::parse(" 2023-01-01"), None);
        assert_eq!(Date::parse("01-02-2023"), None);
        assert_eq!(Date::parse("2023/01/02"), None);
        assert_eq!(Date::parse("２０２３-01-02"), None);
        assert_eq!(Date::parse("2023-01-02T00:00:00"), None);
    }

    #[test]
    fn orders_chronologically() {
        let as_of = Date::parse("2026-01-01").expect("valid");
        assert!(Date::parse("2025-12-31").expect("valid") < as_of);
        assert!(Date::parse("2026-01-02").expect("valid") > as_of);
        assert_eq!(as_of.succ(), Date::new(2026, 1, 2));
        assert_eq!(
            Date::new(2024, 2, 28).and_then(Date::succ),
            Date::new(2024, 2, 29)
        );
        assert_eq!(
            Date::new(2025, 12, 31).and_then(Date::succ),
            Date::new(2026, 1, 1)
        );
        assert_eq!(Date::new(9999, 12, 31).and_then(Date::succ), None);
    }

    #[test]
    fn formats_with_padding() {
        assert_eq!(
            Date::new(7, 3, 9).map(|d| d.to_string()).as_deref(),
            Some("0007-03-09")
        );
    }

    #[test]
    fn parses_timestamps_with_offsets() {
        let ts = Timestamp::parse("2016-09-28T12:00:00-05:00").expect("valid");
        assert_eq!(ts.date(), Date::new(2016, 9, 28).expect("valid"));
        assert_eq!((ts.hour(), ts.minute(), ts.second()), (12, 0, 0));
        assert_eq!(ts.offset_minutes(), -300);
        assert_eq!(
            Timestamp::parse("2016-09-28T12:00:00.123456+05:30").map(Timestamp::offset_minutes),
            Some(330)
        );
        assert!(Timestamp::parse("2016-09-28T12:00:00Z").is_some());
        for bad in [
            "2016-09-28T12:00:00",
            "2016-09-28 12:00:00-05:00",
            "2016-09-28T24:00:00-05:00",
            "2016-09-28T12:60:00-05:00",
            "2016-09-28T12:00:00.-05:00",
            "2016-09-28T12:00:00.1234567890-05:00",
            "2016-09-28T12:00:00-0500",
            "2016-02-30T12:00:00-05:00",
            "2016-09-28T12:00:00-05:00 ",
            "",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn valid_dates_round_trip(year in 1u16..=9999, month in 1u8..=12, day in 1u8..=31) {
            if let Some(date) = Date::new(year, month, day) {
                prop_assert_eq!(Date::parse(&date.to_string()), Some(date));
            } else {
                prop_assert!(day > days_in_month(year, month));
            }
        }

        #[test]
        fn parse_never_panics(value in any::<String>()) {
            let _ = Date::parse(&value);
            let _ = Timestamp::parse(&value);
        }

        #[test]
        fn succ_is_the_next_date(year in 1u16..9999, month in 1u8..=12, day in 1u8..=31) {
            if let Some(date) = Date::new(year, month, day) {
                let next = date.succ().expect("before 9999-12-31");
                prop_assert!(next > date);
            }
        }
    }
}

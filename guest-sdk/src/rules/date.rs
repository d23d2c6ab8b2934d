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

    /// The earliest date there is, 0001-01-01.
    pub const MIN: Self = Self::ymd(1, 1, 1);

    /// The latest date there is, 9999-12-31.
    pub const MAX: Self = Self::ymd(9999, 12, 31);

    /// The date, for constants: like [`Date::new`], but a date that does not exist is a bug in
    /// the module, not a value from a row, so it panics (at compile time in a `const`).
    ///
    /// ```
    /// use reqsync_guest::Date;
    ///
    /// /// ReqCheck's own "unknown" birth date; anything earlier is a typo.
    /// const EARLIEST_BIRTH_DATE: Date = Date::ymd(1900, 1, 1);
    /// assert_eq!(EARLIEST_BIRTH_DATE.to_string(), "1900-01-01");
    /// ```
    ///
    /// # Panics
    /// When the date is not on the calendar (`Date::ymd(2023, 2, 29)`).
    pub const fn ymd(year: u16, month: u8, day: u8) -> Self {
        match Self::new(year, month, day) {
            Some(date) => date,
            None => panic!("Date::ymd: not a calendar date"),
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

    /// Strictly later than `other`: `dob.is_after(ctx.as_of_date())` is a birth date in the
    /// future (the as-of date itself is not after itself). The same as `self > other`, usable in
    /// `const` code.
    ///
    /// ```
    /// use reqsync_guest::Date;
    ///
    /// let as_of = Date::ymd(2026, 1, 1);
    /// assert!(Date::ymd(2026, 1, 2).is_after(as_of));
    /// assert!(!as_of.is_after(as_of));
    /// ```
    pub const fn is_after(self, other: Self) -> bool {
        self.key() > other.key()
    }

    /// Strictly earlier than `other`: `dob.is_before(Date::ymd(1900, 1, 1))` is the "born before
    /// 1900" rule. The same as `self < other`, usable in `const` code.
    ///
    /// ```
    /// use reqsync_guest::Date;
    ///
    /// assert!(Date::ymd(1899, 12, 31).is_before(Date::ymd(1900, 1, 1)));
    /// assert!(!Date::ymd(1900, 1, 1).is_before(Date::ymd(1900, 1, 1)));
    /// ```
    pub const fn is_before(self, other: Self) -> bool {
        self.key() < other.key()
    }

    /// Age in whole years on date `on` for someone born on `self`, or `None` when `on` is
    /// before the birth date.
    ///
    /// A year is complete on the birthday itself. Someone born on 29 February completes a year
    /// on 1 March in common years (not on 28 February), the convention of the CDC's CDSi
    /// logic specification for dates that do not exist.
    ///
    /// ```
    /// use reqsync_guest::Date;
    ///
    /// let born = Date::ymd(2013, 11, 26);
    /// assert_eq!(born.age_on(Date::ymd(2026, 11, 25)), Some(12));
    /// assert_eq!(born.age_on(Date::ymd(2026, 11, 26)), Some(13));
    /// assert_eq!(born.age_on(Date::ymd(2013, 11, 25)), None);
    ///
    /// let leap = Date::ymd(2024, 2, 29);
    /// assert_eq!(leap.age_on(Date::ymd(2025, 2, 28)), Some(0));
    /// assert_eq!(leap.age_on(Date::ymd(2025, 3, 1)), Some(1));
    /// ```
    pub const fn age_on(self, on: Self) -> Option<u16> {
        if on.is_before(self) {
            return None;
        }
        let years = on.year - self.year;
        let before_birthday =
            on.month < self.month || (on.month == self.month && on.day < self.day);
        Some(if before_birthday { years - 1 } else { years })
    }

    /// Days from `earlier` to `self`: positive when `earlier` is before `self`, 0 on the same
    /// day, negative when it is after.
    ///
    /// ```
    /// use reqsync_guest::Date;
    ///
    /// let as_of = Date::ymd(2026, 1, 1);
    /// assert_eq!(as_of.days_since(Date::ymd(2025, 12, 31)), 1);
    /// assert_eq!(as_of.days_since(Date::ymd(2025, 1, 1)), 365);
    /// assert_eq!(Date::ymd(2024, 3, 1).days_since(Date::ymd(2024, 2, 28)), 2);
    /// assert_eq!(Date::ymd(2025, 12, 31).days_since(as_of), -1);
    /// ```
    pub const fn days_since(self, earlier: Self) -> i32 {
        self.day_number() - earlier.day_number()
    }

    /// The date `days` days later (earlier when negative), or `None` outside 0001-01-01 …
    /// 9999-12-31.
    ///
    /// ```
    /// use reqsync_guest::Date;
    ///
    /// let as_of = Date::ymd(2026, 1, 1);
    /// assert_eq!(as_of.add_days(-1), Some(Date::ymd(2025, 12, 31)));
    /// assert_eq!(Date::ymd(2024, 2, 28).add_days(1), Some(Date::ymd(2024, 2, 29)));
    /// assert_eq!(Date::MAX.add_days(1), None);
    /// ```
    pub const fn add_days(self, days: i32) -> Option<Self> {
        let target = self.day_number() as i64 + days as i64;
        if target < Self::MIN.day_number() as i64 || target > Self::MAX.day_number() as i64 {
            return None;
        }
        Some(Self::from_day_number(target as i32))
    }

    /// Orders like the derived `Ord`, in `const` code.
    const fn key(self) -> u32 {
        (self.year as u32) << 9 | (self.month as u32) << 5 | self.day as u32
    }

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`, for years ≥ 1).
    const fn day_number(self) -> i32 {
        let (month, day) = (self.month as i32, self.day as i32);
        // Years start in March, so the leap day is the last day of a year.
        let year = self.year as i32 - if month <= 2 { 1 } else { 0 };
        let era = year / 400;
        let year_of_era = year - era * 400;
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The inverse of [`Date::day_number`], for day numbers of 0001-01-01 … 9999-12-31.
    const fn from_day_number(number: i32) -> Self {
        let shifted = number + 719_468; // days since 0000-03-01: never negative here
        let era = shifted / 146_097;
        let day_of_era = shifted - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let march_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * march_month + 2) / 5 + 1;
        let month = if march_month < 10 {
            march_month + 3
        } else {
            march_month - 9
        };
        let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
        Self {
            year: year as u16,
            month: month as u8,
            day: day as u8,
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
    fn counts_days_across_calendar_edges() {
        assert_eq!(Date::ymd(1970, 1, 1).day_number(), 0);
        assert_eq!(Date::ymd(2000, 3, 1).days_since(Date::ymd(2000, 2, 28)), 2);
        assert_eq!(Date::ymd(1900, 3, 1).days_since(Date::ymd(1900, 2, 28)), 1);
        assert_eq!(Date::MAX.days_since(Date::MIN), 3_652_058);
        assert_eq!(Date::MIN.add_days(-1), None);
        assert_eq!(Date::MIN.add_days(3_652_058), Some(Date::MAX));
        assert_eq!(Date::MIN.add_days(i32::MAX), None);
        assert_eq!(Date::MAX.add_days(i32::MIN), None);
        assert_eq!(Date::ymd(1, 1, 1).age_on(Date::MAX), Some(9998));
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
        fn day_numbers_round_trip_and_count_days(
            year in 1u16..=9999, month in 1u8..=12, day in 1u8..=31,
        ) {
            if let Some(date) = Date::new(year, month, day) {
                prop_assert_eq!(Date::from_day_number(date.day_number()), date);
                prop_assert_eq!(date.add_days(0), Some(date));
                prop_assert_eq!(date.add_days(1), date.succ());
                if let Some(next) = date.succ() {
                    prop_assert_eq!(next.days_since(date), 1);
                    prop_assert_eq!(next.add_days(-1), Some(date));
                }
            }
        }

        #[test]
        fn comparisons_agree_with_ord(
            a in (1u16..=9999, 1u8..=12, 1u8..=28), b in (1u16..=9999, 1u8..=12, 1u8..=28),
        ) {
            let (a, b) = (Date::ymd(a.0, a.1, a.2), Date::ymd(b.0, b.1, b.2));
            prop_assert_eq!(a.is_after(b), a > b);
            prop_assert_eq!(a.is_before(b), a < b);
            prop_assert_eq!(a.days_since(b).signum(), a.cmp(&b) as i32);
            prop_assert_eq!(b.add_days(a.days_since(b)), Some(a));
        }

        #[test]
        fn age_grows_by_one_on_each_birthday(
            born in (1u16..=9000, 1u8..=12, 1u8..=31), years in 0u16..120,
        ) {
            let Some(born) = Date::new(born.0, born.1, born.2) else { return Ok(()) };
            // The birthday `years` later, or 1 March for a 29 February birth in a common year.
            let birthday = Date::new(born.year() + years, born.month(), born.day())
                .unwrap_or(Date::ymd(born.year() + years, 3, 1));
            prop_assert_eq!(born.age_on(birthday), Some(years));
            let eve = birthday.add_days(-1).expect("after 0001-01-01");
            prop_assert_eq!(born.age_on(eve), years.checked_sub(1));
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

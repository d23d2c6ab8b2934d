//! Rails 4.2 attribute type casts, applied when a JSON value is assigned to a column.
//!
//! These decide what gets stored, so they are where an extractor's formatting mistakes turn
//! into silently wrong data in the real app (`MM-DD-YYYY` read day-first, `MM/DD/YY` read as
//! year 00YY) or into a failed record (an unparseable date becomes NULL). The date reader
//! covers the numeric forms Ruby's `Date._parse` accepts after the `american_date` gem's
//! rewrite; month names and other free-text forms are not read (they come out NULL here).

use std::borrow::Cow;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::America::Chicago;

use super::params::Param;
use super::ruby;
use reqsync_iso_text::{ascii_digits, read_plain_date};

/// `ActiveRecord::Type::Integer`: `true`/`false` → 1/0, blank strings → NULL, other strings
/// and numbers → `to_i`, arrays and hashes → NULL (`to_i rescue nil`). The int4 range check
/// happens later, when the row is written.
pub(crate) fn integer(value: &Param) -> Option<i128> {
    match value {
        Param::Null | Param::Array(_) | Param::Object(_) => None,
        Param::Bool(b) => Some(i128::from(*b)),
        Param::Str(s) if ruby::is_blank(s) => None,
        Param::Str(s) => Some(ruby::str_to_i(s)),
        Param::Number(n) => Some(ruby::number_to_i(n)),
    }
}

/// `ActiveRecord::Type::String`: `true`/`false` → "t"/"f", numbers as Ruby prints them.
/// A string is borrowed from the params, not copied.
pub(crate) fn string<'p>(value: &'p Param<'_>) -> Option<Cow<'p, str>> {
    match value {
        Param::Null => None,
        Param::Bool(true) => Some(Cow::Borrowed("t")),
        Param::Bool(false) => Some(Cow::Borrowed("f")),
        Param::Str(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(ruby::to_s(other))),
    }
}

/// `ActiveRecord::Type::Boolean` (4.2): `""` → NULL; `true, 1, "1", "t", "T", "true", "TRUE",
/// "on", "ON"` → true; anything else → false (Rails only logs a deprecation warning).
pub(crate) fn boolean(value: &Param) -> Option<bool> {
    match value {
        Param::Null => None,
        Param::Str(s) if s.is_empty() => None,
        Param::Bool(b) => Some(*b),
        Param::Number(n) => Some(n.as_i64() == Some(1)),
        Param::Str(s) => Some(matches!(
            s.as_ref(),
            "1" | "t" | "T" | "true" | "TRUE" | "on" | "ON"
        )),
        Param::Array(_) | Param::Object(_) => Some(false),
    }
}

/// `ActiveRecord::Type::Date`: exact `YYYY-MM-DD`, else `Date._parse(s, false)` (year 0 and
/// impossible dates → NULL). Non-strings are stored as NULL here (Rails would pass them on to
/// PostgreSQL and fail differently).
pub(crate) fn date(value: &Param) -> Option<NaiveDate> {
    match value {
        Param::Str(s) if !s.is_empty() => {
            iso_date(s).or_else(|| parse_parts(s).and_then(|p| p.date))
        }
        _ => None,
    }
}

/// A valid date written exactly `YYYY-MM-DD`: Rails' own first test, and what extractors
/// send. It skips the general reader ([`parse_parts`] copies the text twice and scans it for
/// times and American dates: 5 % of an import). Anything else, invalid dates of this form
/// included, is `None` and goes the general way, so the result never differs from it.
fn iso_date(s: &str) -> Option<NaiveDate> {
    // Year 0000 is left to the general reader, which reads it its own way (the agreement
    // test below holds the two readers together).
    read_plain_date(s).filter(|date| date.year() != 0)
}

/// `YYYY-MM-DDTHH:MM:SS±HH:MM`, all fields valid: the instant it names. The form reqsync's
/// templates write timestamps in; like [`iso_date`], anything else is `None` and goes through
/// [`parse_parts`].
fn iso_datetime_with_offset(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 25 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[22] != b':' {
        return None;
    }
    let sign = match b[19] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let date = iso_date(&s[..10])?;
    let time = NaiveTime::from_hms_opt(
        ascii_digits(&b[11..13])?,
        ascii_digits(&b[14..16])?,
        ascii_digits(&b[17..19])?,
    )?;
    let (offset_hours, offset_minutes) = (ascii_digits(&b[20..22])?, ascii_digits(&b[23..25])?);
    if offset_hours > 23 || offset_minutes > 59 {
        return None;
    }
    let offset = sign * i64::from(offset_hours * 3600 + offset_minutes * 60);
    Some(Utc.from_utc_datetime(&(date.and_time(time) - Duration::seconds(offset))))
}

/// A `datetime` column assigned a string under `config.time_zone = 'Central Time (US &
/// Canada)'`: `Time.zone.parse`, so an explicit offset wins and anything without one is US
/// Central wall-clock time; a bare date is midnight Central. Unparseable → NULL (the
/// controller's "present" check has already passed by then).
pub(crate) fn central_datetime(value: &Param) -> Option<DateTime<Utc>> {
    let Param::Str(s) = value else {
        return None;
    };
    iso_datetime_with_offset(s).or_else(|| parsed_datetime(s))
}

/// `Time.zone.parse` through the general reader.
fn parsed_datetime(s: &str) -> Option<DateTime<Utc>> {
    let parts = parse_parts(s)?;
    let date = parts.date?;
    let (time, offset) = match parts.time {
        // Ruby's `Time.new` raises on an impossible time; Rails turns that into NULL.
        Some(TimeMatch { time: None, .. }) => return None,
        Some(TimeMatch {
            time: Some(time),
            offset_seconds,
            ..
        }) => (time, offset_seconds),
        None => (NaiveTime::MIN, None),
    };
    let local = date.and_time(time);
    match offset {
        Some(offset) => Some(Utc.from_utc_datetime(&(local - Duration::seconds(offset)))),
        None => central_to_utc(local),
    }
}

/// Central wall-clock time to UTC. In the autumn overlap TZInfo (and so Rails) picks the
/// daylight-time reading; a spring-forward gap time is read an hour later.
fn central_to_utc(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match Chicago.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earliest, _) => Some(earliest.with_timezone(&Utc)),
        LocalResult::None => Chicago
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// What `Date._parse` found in a string.
#[derive(Debug, Default, PartialEq)]
struct Parts {
    date: Option<NaiveDate>,
    time: Option<TimeMatch>,
}

#[derive(Debug, PartialEq)]
struct TimeMatch {
    start: usize,
    end: usize,
    /// None when the digits are there but the time is impossible.
    time: Option<NaiveTime>,
    offset_seconds: Option<i64>,
}

fn parse_parts(input: &str) -> Option<Parts> {
    let rewritten = american_to_iso(input);
    let mut text = rewritten.as_str().to_owned();
    let mut parts = Parts::default();
    if let Some(found) = find_time(&text) {
        // Ruby blanks out the matched time before looking for the date.
        text.replace_range(found.start..found.end, " ");
        parts.time = Some(found);
    }
    parts.date = find_date(&text);
    if parts.date.is_none() && parts.time.is_none() {
        return None;
    }
    Some(parts)
}

/// The `american_date` gem: the first `M/D/YYYY` or `M/D/YY` (not inside a longer digit run)
/// is rewritten to `YYYY-M-D` / `YY-M-D` before Ruby parses it. The two-digit year is then read
/// literally (year 16, not 2016), exactly the trap the docs warn about.
fn american_to_iso(s: &str) -> String {
    let b = s.as_bytes();
    let digits_from = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let m = digits_from(i);
        let after_m = i + m;
        if (1..=2).contains(&m) && b.get(after_m) == Some(&b'/') {
            let d_start = after_m + 1;
            let d = digits_from(d_start);
            let after_d = d_start + d;
            if (1..=2).contains(&d) && b.get(after_d) == Some(&b'/') {
                let y_start = after_d + 1;
                let y = digits_from(y_start);
                if y == 4 || y == 2 {
                    let end = y_start + y;
                    return format!(
                        "{}{}-{}-{}{}",
                        &s[..i],
                        &s[y_start..end],
                        &s[i..after_m],
                        &s[d_start..after_d],
                        &s[end..]
                    );
                }
            }
        }
        i += m.max(1);
    }
    s.to_owned()
}

/// The first `H:MM[:SS[.frac]] [am|pm] [zone]` in the string: (start, end, time, offset). The
/// time is None when it was found but is impossible (`25:00`), which makes a datetime NULL.
fn find_time(s: &str) -> Option<TimeMatch> {
    let b = s.as_bytes();
    let digits_from = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let number = |from: usize, len: usize| s[from..from + len].parse::<u32>().ok();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let h = digits_from(i);
        if b.get(i + h) != Some(&b':') || !b.get(i + h + 1).is_some_and(u8::is_ascii_digit) {
            i += h;
            continue;
        }
        let start = i;
        let mut hour = number(i, h);
        let mut pos = i + h + 1;
        let m = digits_from(pos);
        let minute = number(pos, m);
        pos += m;
        let mut second = Some(0);
        let mut micros = 0;
        if b.get(pos) == Some(&b':') && b.get(pos + 1).is_some_and(u8::is_ascii_digit) {
            let sl = digits_from(pos + 1);
            second = number(pos + 1, sl);
            pos += 1 + sl;
            if matches!(b.get(pos), Some(b'.' | b',')) {
                let fl = digits_from(pos + 1);
                let frac = &s[pos + 1..pos + 1 + fl.min(6)];
                micros = format!("{frac:0<6}").parse::<u32>().unwrap_or(0);
                pos += 1 + fl;
            }
        }
        let rest = &s[pos..];
        let trimmed = rest.trim_start();
        let lower = trimmed.to_ascii_lowercase();
        // `am`/`pm` only as a whole word (Ruby's `m\b`), so "10:00 amended" has none.
        if let Some(meridian) = ["a.m.", "p.m.", "am", "pm"].iter().find(|m| {
            lower.starts_with(**m)
                && !lower[m.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric())
        }) {
            let pm = meridian.starts_with('p');
            hour = hour
                .filter(|h| (1..=12).contains(h))
                .map(|h| h % 12 + if pm { 12 } else { 0 });
            pos += rest.len() - trimmed.len() + meridian.len();
        }
        let (offset, zone_len) = find_zone(&s[pos..]);
        let end = pos + zone_len;
        let time = match (hour, minute, second) {
            (Some(h), Some(m), Some(sec)) => NaiveTime::from_hms_micro_opt(h, m, sec, micros),
            _ => None,
        };
        return Some(TimeMatch {
            start,
            end,
            time,
            offset_seconds: offset,
        });
    }
    None
}

/// A zone right after a time: `Z`, `UTC`/`GMT`, `±HH[:MM]`/`±HHMM`, or a US abbreviation.
/// Returns (offset seconds, bytes consumed).
fn find_zone(rest: &str) -> (Option<i64>, usize) {
    let trimmed = rest.trim_start();
    let skipped = rest.len() - trimmed.len();
    let b = trimmed.as_bytes();
    if let Some(&sign @ (b'+' | b'-')) = b.first() {
        let digits: Vec<usize> = b[1..]
            .iter()
            .enumerate()
            .take_while(|(_, c)| c.is_ascii_digit() || **c == b':')
            .map(|(i, _)| i + 1)
            .collect();
        let raw: String = digits.iter().map(|&i| char::from(b[i])).collect();
        let (hours, minutes) = match raw.split_once(':') {
            Some((h, m)) => (h.parse::<i64>().ok(), m.parse::<i64>().ok()),
            None if raw.len() <= 2 => (raw.parse::<i64>().ok(), Some(0)),
            None if raw.len() == 4 => (raw[..2].parse().ok(), raw[2..].parse().ok()),
            None => (None, None),
        };
        if let (Some(h), Some(m)) = (hours, minutes) {
            let seconds = h * 3600 + m * 60;
            let signed = if sign == b'-' { -seconds } else { seconds };
            return (Some(signed), skipped + 1 + raw.len());
        }
        return (None, 0);
    }
    let word: String = trimmed
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    let offset_hours = match word.to_ascii_uppercase().as_str() {
        "Z" | "UTC" | "GMT" | "UT" => Some(0),
        "EDT" => Some(-4),
        "EST" | "CDT" => Some(-5),
        "CST" | "MDT" => Some(-6),
        "MST" | "PDT" => Some(-7),
        "PST" => Some(-8),
        _ => None,
    };
    match offset_hours {
        Some(h) => (Some(h * 3600), skipped + word.len()),
        None => (None, 0),
    }
}

/// The first `A-B-C`, `A/B/C` or `A.B.C` digit triple, else a leading `YYYYMMDD`, read the way
/// Ruby's `s3e` does: a third group longer than two digits is the year (so `03-08-2014` is
/// 3 August), otherwise the first group is. Year 0 or an impossible date gives None.
fn find_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let digits_from = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let a = digits_from(i);
        let sep = b.get(i + a).copied();
        if let Some(sep @ (b'-' | b'/' | b'.')) = sep {
            let second_start = i + a + 1;
            let m = digits_from(second_start);
            let third_sep = second_start + m;
            if m > 0 && b.get(third_sep) == Some(&sep) {
                let third_start = third_sep + 1;
                let c = digits_from(third_start);
                if c > 0 {
                    let first = &s[i..i + a];
                    let second = &s[second_start..third_sep];
                    let third = &s[third_start..third_start + c];
                    let (year, month, day) = if c > 2 {
                        (third, second, first)
                    } else {
                        (first, second, third)
                    };
                    return new_date(year, month, day);
                }
            }
        }
        if a == 8 && i == s.len() - s.trim_start().len() {
            return new_date(&s[i..i + 4], &s[i + 4..i + 6], &s[i + 6..i + 8]);
        }
        i += a;
    }
    None
}

fn new_date(year: &str, month: &str, day: &str) -> Option<NaiveDate> {
    let year = year.parse::<i32>().ok().filter(|y| *y != 0)?;
    NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast paths agree with the general reader on every string they take, and take
    /// the valid ones: exhaustive over the edges of each field.
    #[test]
    fn iso_fast_paths_agree_with_the_general_reader() {
        let mut taken = 0;
        for year in ["0000", "0001", "1900", "2016", "2024", "9999"] {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year}-{month:02}-{day:02}");
                    let general = parse_parts(&text).and_then(|p| p.date);
                    if let Some(fast) = iso_date(&text) {
                        taken += 1;
                        assert_eq!(Some(fast), general, "{text}");
                    } else {
                        assert_eq!(general, None, "{text} is valid but skipped the fast path");
                    }
                }
            }
        }
        // Every valid date: 365 days in 0001, 1900 and 9999, 366 in 2016 and 2024.
        assert_eq!(taken, 3 * 365 + 2 * 366);
        let mut taken = 0;
        for date in [
            "2016-02-29",
            "2024-03-10",
            "2024-11-03",
            "2023-02-29",
            "0000-01-01",
        ] {
            for (h, m, sec) in [
                (0, 0, 0),
                (1, 59, 59),
                (2, 30, 0),
                (23, 59, 59),
                (24, 0, 0),
                (12, 60, 0),
                (12, 0, 60),
            ] {
                for offset in [
                    "-06:00", "-05:00", "+00:00", "+05:30", "-12:45", "+23:59", "+24:00", "-05:60",
                ] {
                    let text = format!("{date}T{h:02}:{m:02}:{sec:02}{offset}");
                    let general = parsed_datetime(&text);
                    if let Some(fast) = iso_datetime_with_offset(&text) {
                        taken += 1;
                        assert_eq!(Some(fast), general, "{text}");
                    }
                }
            }
        }
        // Three valid dates, four valid times, six valid offsets.
        assert_eq!(taken, 3 * 4 * 6);
        assert_eq!(iso_date("2016-1-05"), None);
        assert_eq!(iso_date("2016-01-05 "), None);
        assert_eq!(iso_datetime_with_offset("2016-01-05 10:00:00-06:00"), None);
        assert_eq!(iso_datetime_with_offset("2016-01-05T10:00:00Z"), None);
    }

    fn s(v: &str) -> Param<'static> {
        Param::Str(v.to_owned().into())
    }

    fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn dates_in_the_documented_good_formats() {
        assert_eq!(date(&s("2013-11-26")), ymd(2013, 11, 26));
        assert_eq!(date(&s("2013/11/26")), ymd(2013, 11, 26));
        assert_eq!(date(&s("11/26/2013")), ymd(2013, 11, 26));
        assert_eq!(date(&s("1/1/1900")), ymd(1900, 1, 1));
        assert_eq!(date(&s("2013-11-26T10:00:00-05:00")), ymd(2013, 11, 26));
        assert_eq!(date(&s("20131126")), ymd(2013, 11, 26));
    }

    #[test]
    fn dates_in_the_documented_silently_wrong_formats() {
        // MM/DD/YY: year 00YY, not 20YY.
        assert_eq!(date(&s("03/08/14")), ymd(14, 3, 8));
        // MM-DD-YYYY: read day-month.
        assert_eq!(date(&s("03-08-2014")), ymd(2014, 8, 3));
        assert_eq!(date(&s("12-25-2014")), None);
    }

    #[test]
    fn unparseable_or_non_string_dates_are_null() {
        assert_eq!(date(&s("not a date")), None);
        assert_eq!(date(&s("")), None);
        assert_eq!(date(&s("0000-01-01")), None);
        assert_eq!(date(&s("2014-02-30")), None);
        assert_eq!(date(&Param::Number(20140101.into())), None);
    }

    #[test]
    fn datetime_with_offset_keeps_the_instant() {
        let t = central_datetime(&s("2016-10-24T10:00:00-05:00")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-10-24T15:00:00+00:00"));
        let t = central_datetime(&s("2016-10-24T15:00:00.250Z")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-10-24T15:00:00.250+00:00"));
        let t = central_datetime(&s("10/24/2016 10:00:00 -0400")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-10-24T14:00:00+00:00"));
    }

    #[test]
    fn datetime_without_offset_is_central_time() {
        // CDT (UTC-5) in October, CST (UTC-6) in January.
        let t = central_datetime(&s("10/24/2016 10:00:00")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-10-24T15:00:00+00:00"));
        let t = central_datetime(&s("2016-01-05 10:00")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-01-05T16:00:00+00:00"));
        let t = central_datetime(&s("10/24/2016")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-10-24T05:00:00+00:00"));
        let t = central_datetime(&s("01/05/2016 10:00 PM")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-01-06T04:00:00+00:00"));
        let t = central_datetime(&s("01/05/2016 10:00 amended")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2016-01-05T16:00:00+00:00"));
    }

    #[test]
    fn unparseable_datetime_is_null() {
        assert_eq!(central_datetime(&s("yesterday")), None);
        assert_eq!(central_datetime(&s("2016-10-24 25:00")), None);
        assert_eq!(central_datetime(&Param::Number(1.into())), None);
    }

    #[test]
    fn integer_cast_follows_rails() {
        assert_eq!(integer(&s("10")), Some(10));
        assert_eq!(integer(&s("abc")), Some(0));
        assert_eq!(integer(&s("  ")), None);
        assert_eq!(integer(&Param::Bool(true)), Some(1));
        assert_eq!(integer(&Param::Null), None);
    }

    #[test]
    fn boolean_cast_follows_rails_4_2() {
        assert_eq!(boolean(&Param::Bool(true)), Some(true));
        assert_eq!(boolean(&s("t")), Some(true));
        assert_eq!(boolean(&s("Y")), Some(false));
        assert_eq!(boolean(&s("")), None);
        assert_eq!(boolean(&Param::Null), None);
        assert_eq!(boolean(&Param::Number(1.into())), Some(true));
    }

    #[test]
    fn string_cast_follows_rails_4_2() {
        assert_eq!(string(&Param::Bool(true)).as_deref(), Some("t"));
        assert_eq!(string(&Param::Number(432.into())).as_deref(), Some("432"));
        assert_eq!(string(&Param::Null), None);
    }
}

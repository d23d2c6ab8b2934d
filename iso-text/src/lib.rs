//! ISO 8601 text of dates, times and timestamps, read and written directly for the forms a
//! clinic database nearly always holds, with chrono as the fallback for everything else.
//!
//! Every date and timestamp of a full sync passes through here on its way into a module's
//! batch (two to three per dose row), and the development receiver reads ISO dates with the
//! same reader. chrono's `parse_from_str` and `format` interpret their
//! format strings again for every value, and its `Display` writes through `core::fmt` one
//! character at a time: in a full sync that was about 60 % of the columnar conversion's
//! instructions (callgrind, docs/PERFORMANCE.md, "where reqsync's time goes"). The direct
//! paths take only values whose every part is in the ordinary range (years 0–9999, no leap
//! second, an offset of whole minutes); anything else goes to chrono, so
//! the text is always exactly what chrono would write or read (tests sweep the edges).

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike};

/// Exactly `YYYY-MM-DD`, a valid date; `None` for anything else, which is left to chrono.
pub fn read_plain_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(ascii_digits(&b[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, ascii_digits(&b[5..7])?, ascii_digits(&b[8..])?)
}

/// Exactly `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (no fraction), a valid date and
/// time; `None` for anything else, which is left to chrono.
pub fn read_plain_timestamp(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, sec) = (
        ascii_digits(&b[11..13])?,
        ascii_digits(&b[14..16])?,
        ascii_digits(&b[17..])?,
    );
    Some(read_plain_date(&s[..10])?.and_time(NaiveTime::from_hms_opt(h, m, sec)?))
}

/// The value of a run of ASCII digits (at most four here); `None` if any byte is not a digit.
pub fn ascii_digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

// The writers append to a byte buffer that the caller validates as UTF-8 once, when it is
// whole: the text here is ASCII, and `str::from_utf8` on each 10 to 25-byte value cost about
// 100 instructions of the 230 a date took (a scratch benchmark of 200,000 dates under
// callgrind: 233 → 139 instructions a date).

/// Appends `d` as chrono's `Display` writes it: `YYYY-MM-DD` (`%Y-%m-%d`).
pub fn write_date(out: &mut Vec<u8>, d: NaiveDate) {
    write_plain_or(out, |text| text.date(d), |out| write!(out, "{d}"));
}

/// Appends `t` as chrono's `Display` writes it: `HH:MM:SS` and, when there is one, the
/// fraction in 3, 6 or 9 digits (`%H:%M:%S%.f`).
pub fn write_time(out: &mut Vec<u8>, t: NaiveTime) {
    write_plain_or(out, |text| text.time(t), |out| write!(out, "{t}"));
}

/// Appends `ts` as `%Y-%m-%dT%H:%M:%S%.f`: a local timestamp without an offset.
pub fn write_local_timestamp(out: &mut Vec<u8>, ts: NaiveDateTime) {
    write_plain_or(
        out,
        |text| text.date(ts.date()) && text.push(b'T') && text.time(ts.time()),
        |out| ts.format("%Y-%m-%dT%H:%M:%S%.f").write_to(out),
    );
}

/// Appends `dt` as RFC 3339 with its offset, exactly as `DateTime::to_rfc3339` writes it
/// (`%Y-%m-%dT%H:%M:%S%.f%:z`).
pub fn write_rfc3339<Tz: TimeZone>(out: &mut Vec<u8>, dt: &DateTime<Tz>)
where
    Tz::Offset: std::fmt::Display,
{
    // Offsets with seconds (local mean time before standard zones) are rounded by chrono.
    const RFC3339: [chrono::format::Item<'static>; 1] =
        [chrono::format::Item::Fixed(chrono::format::Fixed::RFC3339)];
    let (local, offset) = (dt.naive_local(), dt.offset().fix().local_minus_utc());
    if !write_plain_with_offset(out, local, offset) {
        write_chrono(out, |out| {
            dt.format_with_items(RFC3339.iter()).write_to(out)
        });
    }
}

/// Appends wall-clock time `local` with an offset of `offset` seconds east of UTC as
/// [`write_rfc3339`] writes it, when that is its plain form (a year 0–9999, no leap second, an
/// offset of whole minutes); `false`, having appended nothing, for anything else. Takes the
/// parts rather than a `DateTime`: a clinic timestamp's zone gives its offset directly, and
/// building the `DateTime` only to read its local time back cost a tenth of writing it.
pub fn write_plain_with_offset(out: &mut Vec<u8>, local: NaiveDateTime, offset: i32) -> bool {
    let mut text = Text::new();
    let plain = text.date(local.date())
        && text.push(b'T')
        && text.time(local.time())
        && text.offset(offset);
    if plain {
        out.extend_from_slice(text.as_bytes());
    }
    plain
}

/// Appends what `plain` writes into a [`Text`]; when it declines the value, `chrono` writes
/// the whole value instead.
fn write_plain_or(
    out: &mut Vec<u8>,
    plain: impl FnOnce(&mut Text) -> bool,
    chrono: impl FnOnce(&mut String) -> std::fmt::Result,
) {
    let mut text = Text::new();
    if plain(&mut text) {
        out.extend_from_slice(text.as_bytes());
    } else {
        write_chrono(out, chrono);
    }
}

/// Appends what chrono writes (writing into a `String` cannot fail).
fn write_chrono(out: &mut Vec<u8>, chrono: impl FnOnce(&mut String) -> std::fmt::Result) {
    let mut text = String::new();
    let _ = chrono(&mut text);
    out.extend_from_slice(text.as_bytes());
}

/// The longest text written here: `YYYY-MM-DDTHH:MM:SS.fffffffff+HH:MM`.
const MAX_LEN: usize = 35;

/// A stack buffer of ASCII text. Each writer answers `false` for a value outside its plain
/// form, and the caller then lets chrono write the whole value.
struct Text {
    bytes: [u8; MAX_LEN],
    len: usize,
}

impl Text {
    fn new() -> Self {
        Self {
            bytes: [0; MAX_LEN],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) -> bool {
        let Some(slot) = self.bytes.get_mut(self.len) else {
            return false;
        };
        *slot = byte;
        self.len += 1;
        true
    }

    /// `value` in exactly `width` digits; `false` when it has more.
    fn digits(&mut self, mut value: u32, width: usize) -> bool {
        let end = self.len + width;
        let Some(slots) = self.bytes.get_mut(self.len..end) else {
            return false;
        };
        for slot in slots.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len = end;
        value == 0
    }

    /// `YYYY-MM-DD`; chrono signs years outside 0–9999, so those are left to it.
    fn date(&mut self, d: NaiveDate) -> bool {
        let Ok(year @ 0..=9999) = u32::try_from(d.year()) else {
            return false;
        };
        self.digits(year, 4)
            && self.push(b'-')
            && self.digits(d.month(), 2)
            && self.push(b'-')
            && self.digits(d.day(), 2)
    }

    /// `HH:MM:SS[.fff|.ffffff|.fffffffff]`; a leap second is left to chrono.
    fn time(&mut self, t: NaiveTime) -> bool {
        let nano = t.nanosecond();
        if nano >= 1_000_000_000 {
            return false;
        }
        self.digits(t.hour(), 2)
            && self.push(b':')
            && self.digits(t.minute(), 2)
            && self.push(b':')
            && self.digits(t.second(), 2)
            && match nano {
                0 => true,
                n if n % 1_000_000 == 0 => self.push(b'.') && self.digits(n / 1_000_000, 3),
                n if n % 1_000 == 0 => self.push(b'.') && self.digits(n / 1_000, 6),
                n => self.push(b'.') && self.digits(n, 9),
            }
    }

    /// `+HH:MM` / `-HH:MM`; an offset with seconds is left to chrono (which rounds it).
    fn offset(&mut self, seconds: i32) -> bool {
        if seconds % 60 != 0 {
            return false;
        }
        let minutes = seconds.unsigned_abs() / 60;
        self.push(if seconds < 0 { b'-' } else { b'+' })
            && self.digits(minutes / 60, 2)
            && self.push(b':')
            && self.digits(minutes % 60, 2)
    }

    /// What was written: ASCII digits and punctuation only.
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, FixedOffset};

    /// Every day of a common and a leap year, and the edges of the four-digit range and beyond.
    fn dates() -> Vec<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(2015, 1, 1).expect("date");
        let mut out: Vec<_> = (0..365 + 366).map(|i| first + Duration::days(i)).collect();
        for (y, m, d) in [
            (-10_000, 6, 15),
            (-1, 12, 31),
            (0, 1, 1),
            (1, 1, 1),
            (999, 12, 31),
            (1000, 1, 1),
            (1899, 12, 31),
            (1900, 1, 1),
            (9999, 12, 31),
            (10_000, 1, 1),
        ] {
            out.push(NaiveDate::from_ymd_opt(y, m, d).expect("date"));
        }
        out
    }

    /// Each fraction form (none, 3, 6, 9 digits) at the edges of the clock, and leap seconds.
    fn times() -> Vec<NaiveTime> {
        let mut out = Vec::new();
        for (h, m, s) in [(0, 0, 0), (0, 0, 1), (9, 5, 7), (12, 34, 56), (23, 59, 59)] {
            for nano in [
                0,
                1,
                999,
                1_000,
                999_000,
                1_000_000,
                5_000_000,
                500_000_000,
                123_456_000,
                123_456_789,
                999_999_999,
            ] {
                out.push(NaiveTime::from_hms_nano_opt(h, m, s, nano).expect("time"));
            }
        }
        // chrono keeps a leap second as nanoseconds past 10^9 on second 59.
        for nano in [1_000_000_000, 1_500_000_000, 1_999_999_999] {
            out.push(NaiveTime::from_hms_nano_opt(23, 59, 59, nano).expect("leap second"));
        }
        out
    }

    /// Appends through `write` after some text, as the columnar conversion does.
    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = b"before|".to_vec();
        write(&mut out);
        String::from_utf8(out).expect("the writers append UTF-8")
    }

    #[test]
    fn dates_times_and_local_timestamps_are_written_as_chrono_writes_them() {
        let (dates, times) = (dates(), times());
        for &d in &dates {
            assert_eq!(written(|o| write_date(o, d)), format!("before|{d}"));
        }
        for &t in &times {
            assert_eq!(written(|o| write_time(o, t)), format!("before|{t}"));
        }
        for &d in &dates {
            for &t in &times {
                let ts = d.and_time(t);
                assert_eq!(
                    written(|o| write_local_timestamp(o, ts)),
                    format!("before|{}", ts.format("%Y-%m-%dT%H:%M:%S%.f")),
                );
            }
        }
    }

    #[test]
    fn offset_timestamps_are_written_as_to_rfc3339_writes_them() {
        let dates: Vec<_> = dates().into_iter().step_by(17).collect();
        let times = times();
        // Whole hours both ways, half and three-quarter hours, the widest offsets chrono
        // allows, and offsets with seconds (local mean time), which chrono rounds.
        let offsets = [
            0,
            3_600,
            -3_600,
            5 * 3_600 + 30 * 60,
            -(9 * 3_600 + 30 * 60),
            12 * 3_600 + 45 * 60,
            86_340,
            -86_340,
            -(5 * 3_600 + 50 * 60 + 36),
            29,
            -31,
            86_399,
        ];
        for seconds in offsets {
            let offset = FixedOffset::east_opt(seconds).expect("offset");
            for &d in &dates {
                for &t in &times {
                    let Some(dt) = offset.from_local_datetime(&d.and_time(t)).single() else {
                        continue;
                    };
                    assert_eq!(
                        written(|o| write_rfc3339(o, &dt)),
                        format!("before|{}", dt.to_rfc3339()),
                        "offset {seconds}"
                    );
                }
            }
        }
        // A time zone's own offsets, local mean time included.
        let chicago: chrono_tz::Tz = "America/Chicago".parse().expect("zone");
        for text in [
            "1850-06-01 12:00:00",
            "2016-09-28 12:00:00",
            "2016-01-15 09:30:00",
        ] {
            let ts = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("ts");
            let dt = chicago
                .from_local_datetime(&ts)
                .single()
                .expect("one instant");
            assert_eq!(
                written(|o| write_rfc3339(o, &dt)),
                format!("before|{}", dt.to_rfc3339())
            );
        }
    }

    #[test]
    fn plain_dates_and_timestamps_read_as_chrono_reads_them() {
        for text in ["2013-11-26", "0000-01-01", "9999-12-31", "2016-02-29"] {
            assert_eq!(
                read_plain_date(text),
                NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
                "{text}"
            );
        }
        for text in [
            "2016-09-28 12:00:05",
            "2016-09-28T23:59:59",
            "2016-01-01 00:00:00",
        ] {
            assert_eq!(
                read_plain_timestamp(text),
                NaiveDateTime::parse_from_str(&text.replace('T', " "), "%Y-%m-%d %H:%M:%S").ok(),
                "{text}"
            );
        }
        for text in [
            "2013-02-30",
            "2013-2-3",
            "11/26/2013",
            "+2013-11-26",
            "2013-11-2x",
        ] {
            assert_eq!(read_plain_date(text), None, "{text}");
        }
        for text in [
            "2016-09-28 12:00:00.5",
            "2016-09-28 24:00:00",
            "2016-09-28 23:59:60",
        ] {
            assert_eq!(read_plain_timestamp(text), None, "{text}");
        }
    }
}

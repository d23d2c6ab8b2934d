//! When a job fires: cron expressions evaluated in the clinic's time zone. Pure functions of a
//! given instant, so the rules are tested with fixed times and the service loop only sleeps.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A job's `schedule`: a 5-field cron expression (`minute hour day-of-month month day-of-week`)
/// or a 6-field one with a leading seconds field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "not a cron expression ({reason}); write 5 fields `minute hour day-of-month month \
     day-of-week` (e.g. \"0 2 * * *\" for 02:00 daily) or 6 with leading seconds"
)]
pub struct ScheduleError {
    reason: String,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        // Seconds optional: 5 fields is what every cron user writes, 6 gives tests (and the
        // impatient) second resolution. Years are refused: a 7th field is far more likely a
        // mistake than a wish to sync in 2031 only.
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(&text).map_err(|e| ScheduleError {
            reason: e.to_string(),
        })?;
        let schedule = Schedule { text, cron };
        // An expression that never matches (e.g. 30 February) would make the daemon sleep
        // forever: refuse it when the config is loaded instead.
        if schedule
            .next_after(DateTime::<Utc>::UNIX_EPOCH, chrono_tz::UTC)
            .is_none()
        {
            return Err(ScheduleError {
                reason: "it never matches a date".into(),
            });
        }
        Ok(schedule)
    }

    /// The expression as written (whitespace normalised).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `after`, with the fields read as wall-clock time in
    /// `tz`. A time skipped when clocks spring forward fires at the first valid moment after the
    /// gap; a time repeated when they fall back fires once (croner's handling of DST).
    pub(crate) fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid time")
    }

    const CHICAGO: Tz = chrono_tz::America::Chicago;

    #[test]
    fn five_fields_are_minutes_in_the_clinic_time_zone() {
        let s = Schedule::parse("0 2 * * *").expect("parses");
        // 2024-07-01 12:00 UTC is 07:00 CDT (UTC-5); 02:00 CDT next day is 07:00 UTC.
        assert_eq!(
            s.next_after(utc(2024, 7, 1, 12, 0, 0), CHICAGO),
            Some(utc(2024, 7, 2, 7, 0, 0))
        );
        // In winter (CST, UTC-6) the same wall-clock time is 08:00 UTC.
        assert_eq!(
            s.next_after(utc(2024, 1, 10, 12, 0, 0), CHICAGO),
            Some(utc(2024, 1, 11, 8, 0, 0))
        );
    }

    #[test]
    fn next_is_strictly_after_even_on_a_fire_time() {
        let s = Schedule::parse("*/15 * * * *").expect("parses");
        let t = utc(2024, 7, 1, 12, 15, 0);
        assert_eq!(s.next_after(t, CHICAGO), Some(utc(2024, 7, 1, 12, 30, 0)));
        let just_after = t + chrono::Duration::milliseconds(1);
        assert_eq!(
            s.next_after(just_after, CHICAGO),
            Some(utc(2024, 7, 1, 12, 30, 0))
        );
    }

    #[test]
    fn six_fields_have_leading_seconds() {
        let s = Schedule::parse("*/10 * * * * *").expect("parses");
        assert_eq!(
            s.next_after(utc(2024, 7, 1, 12, 0, 3), CHICAGO),
            Some(utc(2024, 7, 1, 12, 0, 10))
        );
        let s = Schedule::parse("30 0 3 * * MON").expect("parses");
        // 2024-07-01 is a Monday; 03:00:30 CDT is 08:00:30 UTC.
        assert_eq!(
            s.next_after(utc(2024, 7, 1, 0, 0, 0), CHICAGO),
            Some(utc(2024, 7, 1, 8, 0, 30))
        );
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_once_after_the_gap() {
        // 2024-03-10: Chicago jumps from 02:00 CST to 03:00 CDT; 02:30 does not exist.
        let s = Schedule::parse("30 2 * * *").expect("parses");
        let next = s
            .next_after(utc(2024, 3, 10, 6, 0, 0), CHICAGO)
            .expect("fires");
        // It fires that day (not skipped to the 11th), at the first moment after the gap.
        assert_eq!(
            next.with_timezone(&CHICAGO).date_naive().to_string(),
            "2024-03-10"
        );
        assert!(next <= utc(2024, 3, 10, 8, 30, 0), "{next}");
    }

    #[test]
    fn nicknames_are_five_field_shorthands() {
        let s = Schedule::parse("@daily").expect("parses");
        // Midnight in Chicago (CDT) is 05:00 UTC.
        assert_eq!(
            s.next_after(utc(2024, 7, 1, 12, 0, 0), CHICAGO),
            Some(utc(2024, 7, 2, 5, 0, 0))
        );
    }

    #[test]
    fn whitespace_is_normalised_and_kept_for_display() {
        let s = Schedule::parse("  0  2 * *   * ").expect("parses");
        assert_eq!(s.as_str(), "0 2 * * *");
        assert_eq!(s.to_string(), "0 2 * * *");
    }

    #[test]
    fn bad_expressions_are_refused_with_the_expected_form() {
        for bad in [
            "",
            "every day",
            "61 * * * *",
            "* * * *",
            "0 0 0 1 1 * 2030",
            "0 0 30 2 *",
        ] {
            let e = Schedule::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("5 fields"), "{bad}: {e}");
        }
    }
}

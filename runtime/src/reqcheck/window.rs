//! The extraction window: which source rows a run reads.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

/// The start used for a full extract: before any clinic record, and inside the range of every
/// engine's date types (SQL Server's `smalldatetime` starts at 1900-01-01).
pub fn full_extract_start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1900, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MIN)
}

/// Why the window starts where it does (for the run report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowBasis {
    /// ReqCheck's last import receipt minus the look-back.
    Heartbeat,
    /// ReqCheck has no import yet; the configured initial start.
    InitialStart,
    /// Everything: `--full`, or no import yet and no initial start configured.
    Full,
    /// The start of the last run that completed the job, minus the look-back: a little
    /// earlier than the heartbeat, which that run's own imports set (the steady state).
    LastCompleteRun,
    /// Earlier than the heartbeat because ReqCheck received imports after the last complete
    /// run finished (a run sent some requests and then failed or was killed), or no run has
    /// completed yet: the run ledger's resume point.
    Ledger,
}

/// Where the window starts, in the clinic's local time (source timestamps carry no offset).
///
/// The heartbeat is the time ReqCheck *received* the last import, not a source timestamp, and
/// rows committed late in the source can carry an `updated_at` before it: the look-back
/// re-reads that stretch. Re-sending is harmless (patients upsert, dose requests replace).
pub fn window_start(
    heartbeat: Option<DateTime<FixedOffset>>,
    look_back: chrono::Duration,
    initial_start: Option<NaiveDateTime>,
    full: bool,
    clinic_tz: Tz,
) -> (NaiveDateTime, WindowBasis) {
    if full {
        return (full_extract_start(), WindowBasis::Full);
    }
    match (heartbeat, initial_start) {
        (Some(at), _) => {
            let local = (at - look_back).with_timezone(&clinic_tz).naive_local();
            (local.max(full_extract_start()), WindowBasis::Heartbeat)
        }
        (None, Some(start)) => (start, WindowBasis::InitialStart),
        (None, None) => (full_extract_start(), WindowBasis::Full),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> Tz {
        "America/Chicago".parse().unwrap()
    }

    #[test]
    fn heartbeat_minus_look_back_in_clinic_local_time() {
        let hb = DateTime::parse_from_rfc3339("2016-10-24T14:05:12.345-05:00").unwrap();
        let (start, basis) = window_start(Some(hb), chrono::Duration::days(1), None, false, tz());
        assert_eq!(start.to_string(), "2016-10-23 14:05:12.345");
        assert_eq!(basis, WindowBasis::Heartbeat);
    }

    #[test]
    fn heartbeat_in_another_offset_is_converted_to_clinic_time() {
        // ReqCheck renders Central time, but an instant is an instant: a UTC rendering must
        // land on the same local clinic time.
        let hb = DateTime::parse_from_rfc3339("2016-10-24T19:05:12Z").unwrap();
        let (start, _) = window_start(Some(hb), chrono::Duration::zero(), None, false, tz());
        assert_eq!(start.to_string(), "2016-10-24 14:05:12");
    }

    #[test]
    fn no_heartbeat_uses_initial_start_or_everything() {
        let init = NaiveDate::from_ymd_opt(2016, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert_eq!(
            window_start(None, chrono::Duration::days(1), Some(init), false, tz()),
            (init, WindowBasis::InitialStart)
        );
        assert_eq!(
            window_start(None, chrono::Duration::days(1), None, false, tz()).1,
            WindowBasis::Full
        );
    }

    #[test]
    fn full_ignores_the_heartbeat() {
        let hb = DateTime::parse_from_rfc3339("2016-10-24T14:05:12-05:00").unwrap();
        let (start, basis) = window_start(Some(hb), chrono::Duration::days(1), None, true, tz());
        assert_eq!((start, basis), (full_extract_start(), WindowBasis::Full));
    }
}

//! The extraction window: which source rows a run reads.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

/// How far ReqCheck's clock may run ahead of this machine's before its heartbeat is refused:
/// servers kept by NTP agree within seconds, and five minutes is Kerberos's long-standing
/// default tolerance for the same question.
pub(crate) const HEARTBEAT_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// ReqCheck says it received an import after this run started. A window from that would start
/// in the future, select nothing, and (once the run counted as complete) make every later run
/// skip what was never sent: so the run stops before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "ReqCheck's heartbeat says its last import arrived at {heartbeat}, later than this run \
     started ({run_started}, allowing {} minutes of clock difference). A window from it would \
     skip every row changed since. Nothing was sent and the run does not count as complete. \
     Check ReqCheck's clock and time zone (and this machine's); once its heartbeat is sane the \
     next run sends everything it would have skipped",
    HEARTBEAT_CLOCK_SKEW.num_minutes()
)]
pub struct HeartbeatAhead {
    pub heartbeat: String,
    pub run_started: String,
}

/// Refuses a heartbeat later than `run_started` plus [`HEARTBEAT_CLOCK_SKEW`]. An old one is
/// harmless (it only widens the window) and passes.
pub(crate) fn check_heartbeat(
    heartbeat: Option<DateTime<FixedOffset>>,
    run_started: DateTime<Utc>,
) -> Result<(), HeartbeatAhead> {
    match heartbeat {
        Some(at) if at.to_utc() > run_started + HEARTBEAT_CLOCK_SKEW => Err(HeartbeatAhead {
            heartbeat: at.to_rfc3339(),
            run_started: run_started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }),
        _ => Ok(()),
    }
}

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

impl WindowBasis {
    /// The basis as the run report's JSON names it, for log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowBasis::Heartbeat => "heartbeat",
            WindowBasis::InitialStart => "initial-start",
            WindowBasis::Full => "full",
            WindowBasis::LastCompleteRun => "last-complete-run",
            WindowBasis::Ledger => "ledger",
        }
    }
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

    #[test]
    fn a_basis_is_logged_as_the_report_names_it() {
        for basis in [
            WindowBasis::Heartbeat,
            WindowBasis::InitialStart,
            WindowBasis::Full,
            WindowBasis::LastCompleteRun,
            WindowBasis::Ledger,
        ] {
            assert_eq!(
                serde_json::to_value(basis).expect("json"),
                serde_json::json!(basis.as_str())
            );
        }
    }

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
    fn a_heartbeat_ahead_of_the_run_is_refused_within_the_clock_allowance() {
        let started = DateTime::parse_from_rfc3339("2026-12-07T08:00:00Z")
            .unwrap()
            .to_utc();
        let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap());
        assert!(check_heartbeat(at("9999-12-31T23:59:59Z"), started).is_err());
        assert!(check_heartbeat(at("2026-12-07T02:06:00-06:00"), started).is_err());
        // Within the allowance, in another offset: the same instant counts.
        assert!(check_heartbeat(at("2026-12-07T02:04:59-06:00"), started).is_ok());
        assert!(check_heartbeat(None, started).is_ok());
        assert!(check_heartbeat(at("0001-01-01T00:00:00Z"), started).is_ok());
    }

    #[test]
    fn very_old_heartbeats_only_widen_the_window() {
        for old in ["0000-01-01T00:00:00Z", "1899-12-31T23:59:59-05:00"] {
            let hb = DateTime::parse_from_rfc3339(old).unwrap();
            let (start, basis) =
                window_start(Some(hb), chrono::Duration::days(1), None, false, tz());
            assert_eq!(
                (start, basis),
                (full_extract_start(), WindowBasis::Heartbeat)
            );
        }
    }

    #[test]
    fn full_ignores_the_heartbeat() {
        let hb = DateTime::parse_from_rfc3339("2016-10-24T14:05:12-05:00").unwrap();
        let (start, basis) = window_start(Some(hb), chrono::Duration::days(1), None, true, tz());
        assert_eq!((start, basis), (full_extract_start(), WindowBasis::Full));
    }
}

//! `POST /heartbeat`: when ReqCheck last received data.

use chrono::{DateTime, Utc};
use chrono_tz::America::Chicago;
use serde::Serialize;

use super::error::ReceiverError;
use super::store::{Db, ImportKind, parse_db_time};

/// The heartbeat body. Both fields are null before the first import of either kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Heartbeat {
    /// Rails' JSON time form: milliseconds and the Central offset,
    /// e.g. `2016-10-24T14:05:12.345-05:00`.
    pub(crate) last_update_date: Option<String>,
    /// The same instant in whole epoch seconds.
    pub(crate) last_update_date_timestamp: Option<i64>,
}

/// `[PatientDataImport.last, VaccineDoseDataImport.last].compact.min_by(&:created_at)`: the
/// receipt time of the older of the two newest imports, failed ones included.
pub(crate) fn heartbeat(db: &Db<'_>) -> Result<Heartbeat, ReceiverError> {
    let mut newest = Vec::with_capacity(2);
    for kind in [ImportKind::Patient, ImportKind::VaccineDose] {
        if let Some(stored) = db.newest_import_created_at(kind)? {
            newest.push(parse_db_time(&stored)?);
        }
    }
    Ok(match newest.into_iter().min() {
        Some(at) => Heartbeat {
            last_update_date: Some(rails_json_time(at)),
            last_update_date_timestamp: Some(at.timestamp()),
        },
        None => Heartbeat {
            last_update_date: None,
            last_update_date_timestamp: None,
        },
    })
}

/// `ActiveSupport::TimeWithZone#as_json` with `time_precision = 3` in `Time.zone` Central:
/// `xmlschema(3)`, which truncates (not rounds) to milliseconds.
fn rails_json_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Chicago)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rails_json_time_uses_central_offset_and_truncates_to_millis() {
        let summer = Utc
            .with_ymd_and_hms(2016, 10, 24, 19, 5, 12)
            .single()
            .expect("time")
            + chrono::Duration::microseconds(345_999);
        assert_eq!(rails_json_time(summer), "2016-10-24T14:05:12.345-05:00");
        let winter = Utc
            .with_ymd_and_hms(2016, 1, 5, 16, 0, 0)
            .single()
            .expect("time");
        assert_eq!(rails_json_time(winter), "2016-01-05T10:00:00.000-06:00");
    }
}

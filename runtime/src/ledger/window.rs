//! Where a job's next window starts, given what the ledger knows.
//!
//! ReqCheck's heartbeat is the time it last *received* an import. A run that sends three
//! requests and fails on the fourth still moves it, so a next run starting from the heartbeat
//! would skip the rows the failed run never sent. The ledger's rule: start no later than the
//! start of the last run of the job that completed fully, minus the look-back — every row
//! changed before that run began was sent by it or by runs before it. With no complete run on
//! record but unfinished ones (a first full sync killed halfway), start where the earliest of
//! them started. Re-sending is safe (patients upsert, a dose request replaces the patient's
//! doses); skipping is not.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use chrono_tz::Tz;
use rusqlite::OptionalExtension;

use super::runs::{parse_local, parse_stamp};
use super::{Ledger, LedgerError};
use crate::reqcheck::window::{WindowBasis, full_extract_start};

/// What the ledger knows about a job's earlier `sync` / `full` runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobHistory {
    /// When the last run that completed the job fully started.
    pub last_complete_start: Option<DateTime<Utc>>,
    /// When that run finished the job: a heartbeat later than this means ReqCheck received
    /// something since, from a run that did not complete.
    pub last_complete_finish: Option<DateTime<Utc>>,
    /// With no complete run on record: the earliest window start of the job's unfinished runs.
    pub earliest_unfinished_window: Option<NaiveDateTime>,
}

impl JobHistory {
    /// The latest start that cannot skip a row, in clinic local time; `None` without history.
    pub(crate) fn resume_start(
        &self,
        look_back: chrono::Duration,
        clinic_tz: Tz,
    ) -> Option<NaiveDateTime> {
        match (self.last_complete_start, self.earliest_unfinished_window) {
            (Some(started), _) => Some(
                (started - look_back)
                    .with_timezone(&clinic_tz)
                    .naive_local()
                    .max(full_extract_start()),
            ),
            (None, unfinished) => unfinished,
        }
    }
}

/// The job's window: the heartbeat's, moved earlier when the ledger knows an earlier safe start.
/// Only a heartbeat window moves: `--full` reads everything anyway, and without a heartbeat
/// ReqCheck holds nothing, so the run starts from the configured beginning.
///
/// After a run that completed, its start is a little earlier than the heartbeat (ReqCheck
/// received the imports while it ran), so the next window starts there: that is the steady
/// state ([`WindowBasis::LastCompleteRun`]). [`WindowBasis::Ledger`] is the trap being avoided:
/// ReqCheck received something after the last complete run finished (a run that then failed),
/// or no run has completed yet.
pub(crate) fn job_window(
    heartbeat_window: (NaiveDateTime, WindowBasis),
    heartbeat: Option<DateTime<FixedOffset>>,
    history: &JobHistory,
    look_back: chrono::Duration,
    clinic_tz: Tz,
) -> (NaiveDateTime, WindowBasis) {
    let (start, basis) = heartbeat_window;
    if basis != WindowBasis::Heartbeat {
        return (start, basis);
    }
    match history.resume_start(look_back, clinic_tz) {
        Some(resume) if resume < start => {
            let steady = match (heartbeat, history.last_complete_finish) {
                (Some(received), Some(finished)) => received.with_timezone(&Utc) <= finished,
                _ => false,
            };
            let basis = if steady {
                WindowBasis::LastCompleteRun
            } else {
                WindowBasis::Ledger
            };
            (resume, basis)
        }
        _ => (start, basis),
    }
}

impl Ledger {
    /// The job's history of `sync` and `full` runs (replays and dry runs do not count: they
    /// read a selection, or send nothing).
    pub fn job_history(&self, job: &str) -> Result<JobHistory, LedgerError> {
        self.with(|c| {
            let complete: Option<(String, Option<String>)> = c
                .query_row(
                    "SELECT r.started_at, j.finished_at FROM job_runs j JOIN runs r ON r.id = j.run_id
                     WHERE j.job = ?1 AND j.status = 'complete' AND r.kind IN ('sync', 'full')
                     ORDER BY j.run_id DESC LIMIT 1",
                    [job],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((started, finished)) = complete {
                return Ok(JobHistory {
                    last_complete_start: parse_stamp(&started),
                    last_complete_finish: finished.as_deref().and_then(parse_stamp),
                    earliest_unfinished_window: None,
                });
            }
            let earliest: Option<String> = c.query_row(
                "SELECT MIN(j.window_start) FROM job_runs j JOIN runs r ON r.id = j.run_id
                 WHERE j.job = ?1 AND j.status != 'complete' AND r.kind IN ('sync', 'full')",
                [job],
                |r| r.get(0),
            )?;
            Ok(JobHistory {
                last_complete_start: None,
                last_complete_finish: None,
                earliest_unfinished_window: earliest.as_deref().and_then(parse_local),
            })
        })
    }
}

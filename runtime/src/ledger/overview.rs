//! Read-only summaries of the ledger for the people watching the sync: each job's last run and
//! last complete run, the open quarantine by finding code, and per-run totals over a period
//! (`reqsync status`, the daemon's status page).
//!
//! Only `sync` and `full` runs count as a job's runs here: they are the scheduled work whose
//! failure someone has to act on. Replays (a chosen few keys) and dry runs (nothing sent) are
//! in `reqsync history`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use serde::Serialize;

use super::runs::{RunKind, RunStatus, parse_stamp, stamp};
use super::{Ledger, LedgerError, RunId};

/// One job's part of one run, with the run's error class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRunSummary {
    pub run_id: RunId,
    pub kind: RunKind,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub read: i64,
    pub sent: i64,
    pub acknowledged: i64,
    /// Rows the transform rejected (quarantined), not ReqCheck's record errors.
    pub rejected: i64,
    pub module_sha256: String,
    /// The run's failure class (`delivery`, `source`, …) when it failed.
    pub error_class: Option<String>,
}

/// What the ledger says about one job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobOverview {
    pub job: String,
    /// The newest `sync` or `full` run of the job, whatever its outcome (`running` while one
    /// goes on, or when a run died and no later run has marked it `interrupted` yet). A run
    /// that ended before any job began counts for every job, with zero counts and no module.
    pub last_run: Option<JobRunSummary>,
    /// The newest run that completed the job.
    pub last_complete: Option<JobRunSummary>,
    /// Quarantined rows of the job not yet passed or replayed.
    pub open_quarantine: i64,
}

/// One run's totals over all its jobs, for a chart over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunTotals {
    pub run_id: RunId,
    pub kind: RunKind,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub sent: i64,
    pub rejected: i64,
}

/// Open quarantine entries of a job carrying one finding code (an entry with two codes counts
/// under both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineCount {
    pub job: String,
    pub code: String,
    pub entries: i64,
}

const JOB_RUN_COLUMNS: &str = "j.run_id, r.kind, j.status, r.started_at, j.finished_at, j.read,
    j.sent, j.acknowledged, j.rejected, j.module_sha256, r.error_class";

fn job_run_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRunSummary> {
    let started: String = r.get(3)?;
    let finished: Option<String> = r.get(4)?;
    Ok(JobRunSummary {
        run_id: r.get(0)?,
        kind: RunKind::parse(&r.get::<_, String>(1)?),
        status: RunStatus::parse(&r.get::<_, String>(2)?),
        // The ledger writes these itself; an unreadable one is shown as the epoch rather
        // than failing the whole overview.
        started_at: parse_stamp(&started).unwrap_or_default(),
        finished_at: finished.as_deref().and_then(parse_stamp),
        read: r.get(5)?,
        sent: r.get(6)?,
        acknowledged: r.get(7)?,
        rejected: r.get(8)?,
        module_sha256: r.get(9)?,
        error_class: r.get(10)?,
    })
}

impl Ledger {
    /// The job's last run, last complete run and open quarantine.
    pub(crate) fn job_overview(&self, job: &str) -> Result<JobOverview, LedgerError> {
        self.with(|c| {
            let newest = |extra: &str| {
                c.query_row(
                    &format!(
                        "SELECT {JOB_RUN_COLUMNS} FROM job_runs j JOIN runs r ON r.id = j.run_id
                         WHERE j.job = ?1 AND r.kind IN ('sync', 'full') {extra}
                         ORDER BY j.run_id DESC LIMIT 1"
                    ),
                    [job],
                    job_run_summary,
                )
                .optional()
            };
            let last_job_run = newest("")?;
            // A run that ended before any of its jobs began (ReqCheck or the source
            // unreachable, a bad module) has no job rows; it was every job's last attempt.
            let last_jobless_run = c
                .query_row(
                    "SELECT r.id, r.kind, r.status, r.started_at, r.finished_at, 0, 0, 0, 0, '',
                            r.error_class
                     FROM runs r
                     WHERE r.kind IN ('sync', 'full')
                       AND NOT EXISTS (SELECT 1 FROM job_runs j WHERE j.run_id = r.id)
                     ORDER BY r.id DESC LIMIT 1",
                    [],
                    job_run_summary,
                )
                .optional()?;
            let last_run = match (last_job_run, last_jobless_run) {
                (Some(job), Some(run)) if run.run_id > job.run_id => Some(run),
                (job, run) => job.or(run),
            };
            let last_complete = newest("AND j.status = 'complete'")?;
            let open_quarantine = c.query_row(
                "SELECT COUNT(*) FROM quarantine WHERE job = ?1 AND resolved_at IS NULL",
                [job],
                |r| r.get(0),
            )?;
            Ok(JobOverview {
                job: job.to_string(),
                last_run,
                last_complete,
                open_quarantine,
            })
        })
    }

    /// Rows the job's last complete read of the same breadth read — everything (`full`) or a
    /// window — by a sync or a dry run: what the progress line expects this time.
    pub(crate) fn last_complete_read(
        &self,
        job: &str,
        full: bool,
    ) -> Result<Option<u64>, LedgerError> {
        self.with(|c| {
            c.query_row(
                "SELECT j.read FROM job_runs j JOIN runs r ON r.id = j.run_id
                 WHERE j.job = ?1 AND j.status = 'complete'
                   AND r.kind IN ('sync', 'full', 'dry-run') AND (j.window_basis = 'full') = ?2
                 ORDER BY j.run_id DESC LIMIT 1",
                rusqlite::params![job, full],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|read| read.map(|n| n.max(0) as u64))
        })
    }

    /// Each `sync` and `full` run started at or after `since`, oldest first, with the sums of
    /// its jobs' sent and rejected rows.
    pub(crate) fn run_totals_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RunTotals>, LedgerError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT r.id, r.kind, r.status, r.started_at,
                        COALESCE(SUM(j.sent), 0), COALESCE(SUM(j.rejected), 0)
                 FROM runs r LEFT JOIN job_runs j ON j.run_id = r.id
                 WHERE r.kind IN ('sync', 'full') AND r.started_at >= ?1
                 GROUP BY r.id ORDER BY r.id",
            )?;
            stmt.query_map([stamp(since)], |r| {
                let started: String = r.get(3)?;
                Ok(RunTotals {
                    run_id: r.get(0)?,
                    kind: RunKind::parse(&r.get::<_, String>(1)?),
                    status: RunStatus::parse(&r.get::<_, String>(2)?),
                    started_at: parse_stamp(&started).unwrap_or_default(),
                    sent: r.get(4)?,
                    rejected: r.get(5)?,
                })
            })?
            .collect()
        })
    }

    /// Open quarantine entries by job and finding code, most entries first.
    pub(crate) fn open_quarantine_by_code(&self) -> Result<Vec<QuarantineCount>, LedgerError> {
        let findings: Vec<(String, String)> = self.with(|c| {
            let mut stmt =
                c.prepare("SELECT job, findings FROM quarantine WHERE resolved_at IS NULL")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })?;
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (job, findings) in findings {
            // `field:code` tags; an entry counts once per code however many fields carry it.
            let tags: Vec<String> = serde_json::from_str(&findings).unwrap_or_default();
            let mut codes: Vec<&str> = tags
                .iter()
                .map(|t| t.split_once(':').map_or(t.as_str(), |(_, code)| code))
                .collect();
            codes.sort_unstable();
            codes.dedup();
            for code in codes {
                *counts.entry((job.clone(), code.to_string())).or_default() += 1;
            }
        }
        let mut counts: Vec<QuarantineCount> = counts
            .into_iter()
            .map(|((job, code), entries)| QuarantineCount { job, code, entries })
            .collect();
        counts.sort_by(|a, b| b.entries.cmp(&a.entries).then_with(|| a.job.cmp(&b.job)));
        Ok(counts)
    }
}

//! Recording runs, job runs and requests as they happen, and reading them back.
//!
//! Every step is written when it happens, not at the end: a run killed with `kill -9` leaves a
//! ledger that says how far it got (a request `sending` with no answer, a job still `running`).

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Ledger, LedgerError, RunId};

/// Why a run was started; only `sync` and `full` runs read a whole window, so only they move
/// the ledger's resume point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    Sync,
    Full,
    /// `reqsync quarantine replay`: selected keys only.
    Replay,
    /// Nothing sent.
    DryRun,
}

/// How a run or one of its jobs ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Going now, or — when no run holds the run lock — killed before it could say otherwise.
    Running,
    /// Every request accepted without record errors (or with them, under
    /// `on_partial_failure = "accept"`).
    Complete,
    /// Every request accepted, some with record errors (`201 partial_failure`).
    Partial,
    Failed,
    /// Stopped on request (the service shutting down) at a request boundary.
    Abandoned,
    /// Found `running` by a later run: the process died without finishing.
    Interrupted,
}

pub type JobStatus = RunStatus;

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Sync => "sync",
            RunKind::Full => "full",
            RunKind::Replay => "replay",
            RunKind::DryRun => "dry-run",
        }
    }
    pub(super) fn parse(s: &str) -> Self {
        match s {
            "full" => RunKind::Full,
            "replay" => RunKind::Replay,
            "dry-run" => RunKind::DryRun,
            _ => RunKind::Sync,
        }
    }
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Abandoned => "abandoned",
            RunStatus::Interrupted => "interrupted",
        }
    }
    pub(super) fn parse(s: &str) -> Self {
        match s {
            "complete" => RunStatus::Complete,
            "partial" => RunStatus::Partial,
            "failed" => RunStatus::Failed,
            "abandoned" => RunStatus::Abandoned,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Running,
        }
    }
}

impl RunStatus {
    /// Every request got through (with or without record errors).
    pub fn delivered(self) -> bool {
        matches!(self, RunStatus::Complete | RunStatus::Partial)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A timestamp as the ledger stores it: UTC, RFC 3339 with milliseconds (sorts as text).
pub fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A window start as the ledger stores it (clinic local time).
pub(crate) fn local_stamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

pub(super) fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

pub(super) fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// One run, as `reqsync history` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub kind: RunKind,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub host: String,
    pub pid: i64,
    pub heartbeat: Option<String>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub report_file: Option<String>,
    pub jobs: Vec<JobRunRecord>,
}

/// One job of a run.
#[derive(Debug, Clone, Serialize)]
pub struct JobRunRecord {
    pub job: String,
    pub status: RunStatus,
    pub window_start: String,
    pub window_basis: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub read: i64,
    pub emitted: i64,
    pub skipped: i64,
    pub rejected: i64,
    pub sent: i64,
    pub acknowledged: i64,
    pub module_sha256: String,
    pub query_sha256: String,
    pub template_sha256: String,
    pub requests: Vec<RequestRecord>,
}

impl JobRunRecord {
    /// The window start as a run's summary prints it (`2026-12-07 01:53:00`, clinic time,
    /// fractions of a second only when there are some); the stored text if it does not parse.
    pub fn window_start_text(&self) -> String {
        parse_local(&self.window_start)
            .map_or_else(|| self.window_start.clone(), |start| start.to_string())
    }
}

/// One request of a job and ReqCheck's answer.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub seq: i64,
    pub endpoint: String,
    pub records: i64,
    pub bytes: i64,
    pub body_sha256: String,
    /// `sending` (no answer recorded: failed, or the process died mid-request), `success`,
    /// `partial_failure` or `failed`.
    pub status: String,
    pub data_import_id: Option<i64>,
    pub error_ids: Vec<i64>,
    pub sent_at: String,
    pub answered_at: Option<String>,
}

/// What a job starts with.
#[derive(Debug, Clone)]
pub struct JobStart<'a> {
    pub job: &'a str,
    pub window_start: NaiveDateTime,
    pub window_basis: &'a str,
    pub module_sha256: &'a str,
    pub query_sha256: &'a str,
    pub template_sha256: &'a str,
}

/// A job's counts when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobTotals {
    pub read: u64,
    pub emitted: u64,
    pub skipped: u64,
    pub rejected: u64,
    pub sent: u64,
    pub acknowledged: u64,
}

/// ReqCheck's answer to one request, as the ledger keeps it.
#[derive(Debug, Clone)]
pub enum Answer<'a> {
    Accepted {
        partial_failure: bool,
        data_import_id: i64,
        error_ids: &'a [i64],
    },
    Failed,
}

impl Ledger {
    /// Starts a run. The caller holds the project's [`super::RunLock`], so any run still
    /// marked `running` died without finishing: it is marked `interrupted`.
    pub fn begin_run(
        &self,
        kind: RunKind,
        started_at: DateTime<Utc>,
    ) -> Result<RunId, LedgerError> {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE job_runs SET status = 'interrupted' WHERE status = 'running'",
                [],
            )?;
            tx.execute(
                "UPDATE runs SET status = 'interrupted' WHERE status = 'running'",
                [],
            )?;
            tx.execute(
                "INSERT INTO runs (kind, status, started_at, host, pid) VALUES (?1, 'running', ?2, ?3, ?4)",
                params![kind.as_str(), stamp(started_at), host, std::process::id()],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(id)
        })
    }

    pub(crate) fn set_heartbeat(
        &self,
        run: RunId,
        heartbeat: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET heartbeat = ?2 WHERE id = ?1",
                params![run, heartbeat],
            )
            .map(drop)
        })
    }

    pub fn begin_job(&self, run: RunId, start: &JobStart<'_>) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO job_runs (run_id, job, status, window_start, window_basis, started_at,
                     module_sha256, query_sha256, template_sha256)
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run,
                    start.job,
                    local_stamp(start.window_start),
                    start.window_basis,
                    stamp(Utc::now()),
                    start.module_sha256,
                    start.query_sha256,
                    start.template_sha256
                ],
            )
            .map(drop)
        })
    }

    /// Written before the request leaves: if the process dies mid-request, the ledger shows a
    /// request `sending` that was never answered.
    #[allow(clippy::too_many_arguments)]
    pub fn request_sending(
        &self,
        run: RunId,
        job: &str,
        seq: usize,
        endpoint: &str,
        records: usize,
        bytes: usize,
        body_sha256: &str,
    ) -> Result<(), LedgerError> {
        // Cached: this and `request_answered` run once per request, and parsing them anew
        // each time was a third of their cost.
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO requests (run_id, job, seq, endpoint, records, bytes, body_sha256, status, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'sending', ?8)",
            )?
            .execute(params![
                    run,
                    job,
                    seq as i64,
                    endpoint,
                    records as i64,
                    bytes as i64,
                    body_sha256,
                    stamp(Utc::now())
                ],
            )
            .map(drop)
        })
    }

    pub(crate) fn request_answered(
        &self,
        run: RunId,
        job: &str,
        seq: usize,
        answer: &Answer<'_>,
    ) -> Result<(), LedgerError> {
        let (status, import_id, error_ids) = match answer {
            Answer::Accepted {
                partial_failure,
                data_import_id,
                error_ids,
            } => (
                if *partial_failure {
                    "partial_failure"
                } else {
                    "success"
                },
                Some(*data_import_id),
                Some(serde_json::to_string(error_ids).unwrap_or_else(|_| "[]".into())),
            ),
            Answer::Failed => ("failed", None, None),
        };
        self.with(|c| {
            c.prepare_cached(
                "UPDATE requests SET status = ?4, data_import_id = ?5, error_ids = ?6, answered_at = ?7
                 WHERE run_id = ?1 AND job = ?2 AND seq = ?3",
            )?
            .execute(params![
                    run,
                    job,
                    seq as i64,
                    status,
                    import_id,
                    error_ids,
                    stamp(Utc::now())
                ],
            )
            .map(drop)
        })
    }

    pub(crate) fn finish_job(
        &self,
        run: RunId,
        job: &str,
        status: JobStatus,
        totals: &JobTotals,
    ) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE job_runs SET status = ?3, finished_at = ?4, read = ?5, emitted = ?6,
                     skipped = ?7, rejected = ?8, sent = ?9, acknowledged = ?10
                 WHERE run_id = ?1 AND job = ?2",
                params![
                    run,
                    job,
                    status.as_str(),
                    stamp(Utc::now()),
                    totals.read as i64,
                    totals.emitted as i64,
                    totals.skipped as i64,
                    totals.rejected as i64,
                    totals.sent as i64,
                    totals.acknowledged as i64
                ],
            )
            .map(drop)
        })
    }

    /// Closes the run; its jobs that never got to run (a job before them failed) take the
    /// run's status, so they count as unfinished.
    pub(crate) fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        error: Option<(&str, &str)>,
        report_file: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE job_runs SET status = ?2, finished_at = ?3 WHERE run_id = ?1 AND status = 'running'",
                params![run, status.as_str(), stamp(Utc::now())],
            )?;
            c.execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, error_class = ?4, error = ?5, report_file = ?6
                 WHERE id = ?1",
                params![
                    run,
                    status.as_str(),
                    stamp(Utc::now()),
                    error.map(|e| e.0),
                    error.map(|e| e.1),
                    report_file
                ],
            )
            .map(drop)
        })
    }

    /// The newest runs first, with their jobs (and, with `requests`, each job's requests).
    pub fn recent_runs(&self, limit: usize, requests: bool) -> Result<Vec<RunRecord>, LedgerError> {
        let ids: Vec<RunId> = self.with(|c| {
            let mut stmt = c.prepare("SELECT id FROM runs ORDER BY id DESC LIMIT ?1")?;
            stmt.query_map([limit as i64], |r| r.get(0))?.collect()
        })?;
        ids.into_iter().map(|id| self.run(id, requests)).collect()
    }

    /// One run with its jobs and (with `requests`) their requests.
    pub fn run(&self, id: RunId, requests: bool) -> Result<RunRecord, LedgerError> {
        let found = self.with(|c| read_run(c, id, requests))?;
        found.ok_or_else(|| LedgerError::NoSuchRun {
            path: self.path.clone(),
            id,
        })
    }
}

/// One run with its jobs and (with `requests`) their requests, read through `c` (a connection
/// or a transaction on it).
pub(super) fn read_run(
    c: &rusqlite::Connection,
    id: RunId,
    requests: bool,
) -> rusqlite::Result<Option<RunRecord>> {
    let run = c
        .query_row(
            "SELECT id, kind, status, started_at, finished_at, host, pid, heartbeat,
                        error_class, error, report_file FROM runs WHERE id = ?1",
            [id],
            |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    kind: RunKind::parse(&r.get::<_, String>(1)?),
                    status: RunStatus::parse(&r.get::<_, String>(2)?),
                    started_at: r.get(3)?,
                    finished_at: r.get(4)?,
                    host: r.get(5)?,
                    pid: r.get(6)?,
                    heartbeat: r.get(7)?,
                    error_class: r.get(8)?,
                    error: r.get(9)?,
                    report_file: r.get(10)?,
                    jobs: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut run) = run else {
        return Ok(None);
    };
    let mut stmt = c.prepare(
        "SELECT job, status, window_start, window_basis, started_at, finished_at, read,
                    emitted, skipped, rejected, sent, acknowledged, module_sha256,
                    query_sha256, template_sha256
             FROM job_runs WHERE run_id = ?1 ORDER BY started_at",
    )?;
    run.jobs = stmt
        .query_map([id], |r| {
            Ok(JobRunRecord {
                job: r.get(0)?,
                status: RunStatus::parse(&r.get::<_, String>(1)?),
                window_start: r.get(2)?,
                window_basis: r.get(3)?,
                started_at: r.get(4)?,
                finished_at: r.get(5)?,
                read: r.get(6)?,
                emitted: r.get(7)?,
                skipped: r.get(8)?,
                rejected: r.get(9)?,
                sent: r.get(10)?,
                acknowledged: r.get(11)?,
                module_sha256: r.get(12)?,
                query_sha256: r.get(13)?,
                template_sha256: r.get(14)?,
                requests: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    if requests {
        let mut stmt = c.prepare(
            "SELECT seq, endpoint, records, bytes, body_sha256, status, data_import_id,
                        error_ids, sent_at, answered_at
                 FROM requests WHERE run_id = ?1 AND job = ?2 ORDER BY seq",
        )?;
        for job in &mut run.jobs {
            job.requests = stmt
                .query_map(params![id, job.job], |r| {
                    let error_ids: Option<String> = r.get(7)?;
                    Ok(RequestRecord {
                        seq: r.get(0)?,
                        endpoint: r.get(1)?,
                        records: r.get(2)?,
                        bytes: r.get(3)?,
                        body_sha256: r.get(4)?,
                        status: r.get(5)?,
                        data_import_id: r.get(6)?,
                        error_ids: error_ids
                            .and_then(|s| serde_json::from_str(&s).ok())
                            .unwrap_or_default(),
                        sent_at: r.get(8)?,
                        answered_at: r.get(9)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
        }
    }
    Ok(Some(run))
}

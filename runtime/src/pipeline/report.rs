//! What a run did, for the summary, the logs, the run ledger and the machine-readable report
//! every run writes (`<state_dir>/runs/run-<id>.json`). Keys, counts and hashes only: no row
//! values.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use super::batcher::{RejectedRows, RowCounts};
use crate::ledger::{RunId, RunKind, RunStatus};
use crate::reqcheck::window::WindowBasis;
use crate::reqcheck::{ImportResponse, ImportStatus};

/// One request of a job.
#[derive(Debug, Clone, Serialize)]
pub struct RequestReport {
    /// The request's place in its job, from 1, as in the ledger: with several requests in
    /// flight, one that failed leaves a gap before those answered after it.
    pub seq: usize,
    pub records: usize,
    pub bytes: usize,
    /// SHA-256 of the body sent: what the audit trail and the ledger name it by.
    pub body_sha256: String,
    /// ReqCheck's answer; `None` in a dry run.
    pub response: Option<ImportResponse>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModuleReport {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// Not `Clone`: its rejected rows may be in a temporary file only this report reads.
#[derive(Debug, Serialize)]
pub struct JobReport {
    pub job: String,
    pub endpoint: String,
    pub status: RunStatus,
    /// Where this job's window started (clinic local time) and why.
    pub window_start: NaiveDateTime,
    pub window_basis: WindowBasis,
    /// The module the job started with.
    pub module: ModuleReport,
    /// SHA-256 of every module version that processed rows, in order: more than one when the
    /// module was hot-swapped during the run.
    pub module_versions: Vec<String>,
    pub query_sha256: String,
    pub template_sha256: String,
    pub counts: RowCounts,
    /// Rejected rows by key, with their finding codes.
    pub rejected_rows: RejectedRows,
    pub requests: Vec<RequestReport>,
    pub seconds: f64,
    /// Quarantined rows of earlier runs that passed in this one.
    pub resolved_quarantine: usize,
}

impl JobReport {
    pub(crate) fn records_sent(&self) -> usize {
        self.requests.iter().map(|r| r.records).sum()
    }

    /// Records ReqCheck stored without a record error (a partial failure's errors subtracted).
    pub fn records_acknowledged(&self) -> usize {
        self.requests
            .iter()
            .filter_map(|r| {
                r.response
                    .as_ref()
                    .map(|resp| r.records.saturating_sub(resp.error_ids.len()))
            })
            .sum()
    }

    pub fn partial_failures(&self) -> impl Iterator<Item = &ImportResponse> {
        self.requests
            .iter()
            .filter_map(|r| r.response.as_ref())
            .filter(|r| r.status == ImportStatus::PartialFailure || !r.error_ids.is_empty())
    }
}

/// The error a run ended with: its class (the exit code's) and message (keys and codes only).
#[derive(Debug, Clone, Serialize)]
pub struct ReportedError {
    pub class: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The run's id in the ledger (`reqsync history`).
    pub run_id: RunId,
    pub kind: RunKind,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub seconds: f64,
    /// ReqCheck's last import as its heartbeat answered (`None`: not asked, or no import yet).
    pub heartbeat: Option<String>,
    /// The window from the heartbeat (or `--full`, or the initial start) before the ledger moved
    /// any job's start earlier; each job's own start is in `jobs`. `None` if the run failed
    /// before it was known.
    pub window_start: Option<NaiveDateTime>,
    pub window_basis: Option<WindowBasis>,
    pub as_of: Option<NaiveDate>,
    pub dry_run: bool,
    pub jobs: Vec<JobReport>,
    pub error: Option<ReportedError>,
}

impl RunReport {
    /// Import ids and record error ids of every `partial_failure` answer.
    pub fn partial_failures(&self) -> impl Iterator<Item = (&str, &ImportResponse)> {
        self.jobs
            .iter()
            .flat_map(|j| j.partial_failures().map(move |p| (j.job.as_str(), p)))
    }
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (Some(start), Some(basis), Some(as_of)) =
            (self.window_start, self.window_basis, self.as_of)
        {
            writeln!(
                f,
                "run {} ({}): window start {start} (clinic time; {}), as-of date {as_of}",
                self.run_id,
                self.kind.as_str(),
                basis_text(basis)
            )?;
        }
        for j in &self.jobs {
            if Some(j.window_start) != self.window_start {
                writeln!(
                    f,
                    "{:<14} window start {} ({})",
                    j.job,
                    j.window_start,
                    basis_text(j.window_basis)
                )?;
            }
            let c = &j.counts;
            let skipped: u64 = c.skipped.values().sum();
            writeln!(
                f,
                "{:<14} read {:>7}  emitted {:>7}  skipped {:>6}  rejected {:>6}  sent {:>7} in {} request(s){}  [{} {} {}]",
                j.job,
                c.read,
                c.emitted,
                skipped,
                c.rejected,
                j.records_sent(),
                j.requests.len(),
                if self.dry_run { " (dry run)" } else { "" },
                j.module.name,
                j.module.version,
                &j.module.sha256[..12.min(j.module.sha256.len())],
            )?;
            for (code, n) in &c.skipped {
                writeln!(f, "    skipped  {code}: {n}")?;
            }
            for (tag, n) in &c.rejected_findings {
                writeln!(f, "    rejected {tag}: {n}")?;
            }
            for (tag, n) in &c.warnings {
                writeln!(f, "    warning  {tag}: {n}")?;
            }
            const SHOWN: usize = 20;
            // The first chunk holds far more than SHOWN rows; a chunk that cannot be read back
            // ends the list early, and the line below still gives the count.
            let mut shown = 0;
            for chunk in j.rejected_rows.chunks().map_while(Result::ok) {
                for r in chunk.iter().take(SHOWN - shown) {
                    writeln!(f, "    rejected row {}: {}", r.key, r.findings.join(", "))?;
                    shown += 1;
                }
                if shown == SHOWN {
                    break;
                }
            }
            if j.rejected_rows.len() > shown {
                writeln!(
                    f,
                    "    … and {} more rejected rows",
                    j.rejected_rows.len() - shown
                )?;
            }
            if j.resolved_quarantine > 0 {
                writeln!(
                    f,
                    "    {} quarantined row(s) of earlier runs passed and left the quarantine",
                    j.resolved_quarantine
                )?;
            }
            for p in j.partial_failures() {
                writeln!(
                    f,
                    "    ReqCheck import {} stored {} record error(s): ids {:?} (reasons in ReqCheck's admin UI)",
                    p.data_import_id,
                    p.error_ids.len(),
                    p.error_ids
                )?;
            }
        }
        writeln!(
            f,
            "run {} {} in {:.1} s",
            self.run_id, self.status, self.seconds
        )?;
        Ok(())
    }
}

fn basis_text(basis: WindowBasis) -> &'static str {
    match basis {
        WindowBasis::Heartbeat => "ReqCheck's last import minus the look-back",
        WindowBasis::InitialStart => "configured initial start",
        WindowBasis::Full => "full extract",
        WindowBasis::LastCompleteRun => "the last complete run's start minus the look-back",
        WindowBasis::Ledger => {
            "resumed from the run ledger: ReqCheck received imports after the last complete \
             run, from a run that did not finish"
        }
    }
}

//! What a run did, for the summary, the logs and (later) the run ledger. Keys, counts and hashes
//! only: no row values.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;

use super::batcher::{RejectedRow, RowCounts};
use crate::reqcheck::ImportResponse;
use crate::reqcheck::window::WindowBasis;

/// One request of a job.
#[derive(Debug, Clone, Serialize)]
pub struct RequestReport {
    pub records: usize,
    pub bytes: usize,
    /// ReqCheck's answer; `None` in a dry run.
    pub response: Option<ImportResponse>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModuleReport {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: String,
    pub endpoint: String,
    /// The module the job started with.
    pub module: ModuleReport,
    /// SHA-256 of every module version that processed rows, in order: more than one when the
    /// module was hot-swapped during the run.
    pub module_versions: Vec<String>,
    pub query_sha256: String,
    pub template_sha256: String,
    pub counts: RowCounts,
    /// Rejected rows by key, with their finding codes.
    pub rejected_rows: Vec<RejectedRow>,
    pub requests: Vec<RequestReport>,
    pub seconds: f64,
}

impl JobReport {
    pub fn records_sent(&self) -> usize {
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
            .filter(|r| !r.error_ids.is_empty())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub window_start: NaiveDateTime,
    pub window_basis: WindowBasis,
    pub as_of: NaiveDate,
    pub dry_run: bool,
    pub jobs: Vec<JobReport>,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let basis = match self.window_basis {
            WindowBasis::Heartbeat => "ReqCheck's last import minus the look-back",
            WindowBasis::InitialStart => "configured initial start",
            WindowBasis::Full => "full extract",
        };
        writeln!(
            f,
            "window start {} (clinic time; {basis}), as-of date {}",
            self.window_start, self.as_of
        )?;
        for j in &self.jobs {
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
            for r in j.rejected_rows.iter().take(SHOWN) {
                writeln!(f, "    rejected row {}: {}", r.key, r.findings.join(", "))?;
            }
            if j.rejected_rows.len() > SHOWN {
                writeln!(
                    f,
                    "    … and {} more rejected rows",
                    j.rejected_rows.len() - SHOWN
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
        Ok(())
    }
}

//! A run's bookkeeping, in one place: the run lock, the ledger (runs, job windows, requests,
//! quarantine), the audit trail's events and the machine-readable report file.
//!
//! Audit events go through `tracing` with target `reqsync::audit` (the audit layer chains them
//! into the audit file); like everything else here they carry keys, counts and hashes only.

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, Utc};

use super::RunError;
use super::report::{JobReport, RunReport};
use crate::config::Config;
use crate::ledger::{
    Answer, JobHistory, JobStart, JobTotals, Ledger, Rejection, RunId, RunKind, RunLock,
};
use crate::redact::RedactedUrl;
use crate::reqcheck::{ClientError, ImportResponse, ImportStatus};

/// The audit trail's `tracing` target.
pub const AUDIT: &str = "reqsync::audit";

#[derive(Debug)]
pub(super) struct Recorder {
    ledger: Ledger,
    run: RunId,
    kind: RunKind,
    state_dir: PathBuf,
    /// Redacted ([`RedactedUrl`]), as the audit events write it.
    reqcheck_url: String,
    // Held until the run is recorded as finished.
    _lock: RunLock,
}

impl Recorder {
    pub fn begin(
        config: &Config,
        kind: RunKind,
        started_at: DateTime<Utc>,
        jobs: &[String],
    ) -> Result<Self, RunError> {
        let lock = RunLock::acquire(&config.state_dir)?;
        let ledger = Ledger::open(&config.state_dir)?;
        let run = ledger.begin_run(kind, started_at)?;
        tracing::info!(
            target: AUDIT,
            event = "run_started",
            run_id = run,
            kind = kind.as_str(),
            jobs = %jobs.join(","),
            config = %config.path.display(),
            // Both checked where they were configured; redacted anyway, since the trail is
            // kept for years and a source URL is only parsed later.
            source = %RedactedUrl::new(&config.source_url),
            reqcheck = %RedactedUrl::new(&config.reqcheck.url),
            ledger = %ledger.path().display(),
        );
        Ok(Self {
            ledger,
            run,
            kind,
            state_dir: config.state_dir.clone(),
            reqcheck_url: RedactedUrl::new(&config.reqcheck.url).to_string(),
            _lock: lock,
        })
    }

    pub fn run_id(&self) -> RunId {
        self.run
    }

    fn sends(&self) -> bool {
        self.kind != RunKind::DryRun
    }

    pub fn heartbeat(
        &self,
        at: Option<&DateTime<FixedOffset>>,
    ) -> Result<Option<String>, RunError> {
        let text = at.map(|d| d.to_rfc3339());
        self.ledger.set_heartbeat(self.run, text.as_deref())?;
        Ok(text)
    }

    pub fn job_history(&self, job: &str) -> Result<JobHistory, RunError> {
        Ok(self.ledger.job_history(job)?)
    }

    /// Rows the job's last complete read of the same breadth read (everything, or a window),
    /// for the progress line's expected total; `None` when unknown, for a replay (it reads
    /// everything to keep a few), or when the ledger cannot say.
    pub fn expected_rows(&self, job: &str, full: bool) -> Option<u64> {
        if self.kind == RunKind::Replay {
            return None;
        }
        self.ledger.last_complete_read(job, full).ok().flatten()
    }

    pub fn job_started(&self, report: &JobReport) -> Result<(), RunError> {
        let basis = serde_json::to_value(report.window_basis)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.ledger.begin_job(
            self.run,
            &JobStart {
                job: &report.job,
                window_start: report.window_start,
                window_basis: &basis,
                module_sha256: &report.module.sha256,
                query_sha256: &report.query_sha256,
                template_sha256: &report.template_sha256,
            },
        )?;
        Ok(())
    }

    /// Keys of the job's open quarantine entries.
    pub fn open_quarantine(&self, job: &str) -> Result<HashSet<String>, RunError> {
        Ok(self.ledger.open_quarantine_keys(job)?)
    }

    /// Patients (rows of ungrouped jobs) in the quarantine, whatever their job.
    pub fn quarantined_patients(&self) -> Result<HashSet<String>, RunError> {
        Ok(self.ledger.open_ungrouped_quarantine_keys()?)
    }

    /// Before a request leaves (`seq` is 1-based).
    pub fn sending(
        &self,
        job: &str,
        seq: usize,
        endpoint: &str,
        records: usize,
        bytes: usize,
        body_sha256: &str,
    ) -> Result<(), RunError> {
        if self.sends() {
            self.ledger.request_sending(
                self.run,
                job,
                seq,
                endpoint,
                records,
                bytes,
                body_sha256,
            )?;
            // On disk before the request leaves: a trail that cannot be written (a full disk)
            // stops the run here rather than leave an import at ReqCheck it never recorded.
            crate::audit::require(|| {
                tracing::info!(
                    target: AUDIT,
                    event = "request_sending",
                    run_id = self.run,
                    job,
                    seq,
                    url = %self.reqcheck_url,
                    endpoint,
                    records,
                    bytes,
                    body_sha256,
                );
            })?;
        }
        Ok(())
    }

    /// After ReqCheck answered (or the request failed for good).
    #[allow(clippy::too_many_arguments)]
    pub fn answered(
        &self,
        job: &str,
        seq: usize,
        endpoint: &str,
        records: usize,
        bytes: usize,
        body_sha256: &str,
        result: Result<&ImportResponse, &ClientError>,
    ) -> Result<(), RunError> {
        if !self.sends() {
            return Ok(());
        }
        let answer = match result {
            Ok(r) => Answer::Accepted {
                partial_failure: r.status == ImportStatus::PartialFailure,
                data_import_id: r.data_import_id,
                error_ids: &r.error_ids,
            },
            Err(_) => Answer::Failed,
        };
        self.ledger.request_answered(self.run, job, seq, &answer)?;
        match result {
            Ok(r) => tracing::info!(
                target: AUDIT,
                event = "request_sent",
                run_id = self.run,
                job,
                seq,
                url = %self.reqcheck_url,
                endpoint,
                records,
                bytes,
                body_sha256,
                status = match r.status {
                    ImportStatus::Success => "success",
                    ImportStatus::PartialFailure => "partial_failure",
                },
                data_import_id = r.data_import_id,
                record_errors = r.error_ids.len(),
            ),
            Err(e) => tracing::info!(
                target: AUDIT,
                event = "request_failed",
                run_id = self.run,
                job,
                seq,
                url = %self.reqcheck_url,
                endpoint,
                records,
                bytes,
                body_sha256,
                error = %e,
            ),
        }
        Ok(())
    }

    /// Records the job's outcome, quarantines its rejected rows and resolves the entries whose
    /// rows passed. Returns how many entries were resolved.
    pub fn job_finished(
        &self,
        report: &JobReport,
        passed: &HashSet<String>,
    ) -> Result<usize, RunError> {
        let c = &report.counts;
        let totals = JobTotals {
            read: c.read,
            emitted: c.emitted,
            skipped: c.skipped.values().sum(),
            rejected: c.rejected,
            sent: report.records_sent() as u64,
            acknowledged: report.records_acknowledged() as u64,
        };
        self.ledger
            .finish_job(self.run, &report.job, report.status, &totals)?;
        let mut resolved = 0;
        if self.sends() {
            let now = Utc::now();
            // A transaction per chunk of rows (a few thousand; most runs have one): the run is
            // not finished in the ledger until `finish`, so a run stopped between two chunks is
            // re-run over the same window and quarantines every row again.
            for chunk in report.rejected_rows.chunks() {
                let chunk = chunk.map_err(|error| RunError::RejectedRows {
                    job: report.job.clone(),
                    error,
                })?;
                let rows = chunk.iter().map(|r| Rejection {
                    key: r.key,
                    group: r.group,
                    findings: r.findings.iter().collect(),
                });
                self.ledger.quarantine_rows(
                    self.run,
                    &report.job,
                    &report.module.sha256,
                    rows,
                    now,
                )?;
            }
            // A row that passed was sent only if the job got all its requests through; until
            // then its entry stays open (the next run's window re-reads it anyway).
            if report.status.delivered() {
                resolved = self
                    .ledger
                    .resolve_quarantined(self.run, &report.job, passed, now)?;
            }
        }
        tracing::info!(
            target: AUDIT,
            event = "job_finished",
            run_id = self.run,
            job = %report.job,
            status = report.status.as_str(),
            window_start = %report.window_start,
            read = totals.read,
            emitted = totals.emitted,
            skipped = totals.skipped,
            rejected = totals.rejected,
            sent = totals.sent,
            acknowledged = totals.acknowledged,
            requests = report.requests.len(),
            quarantine_resolved = resolved,
            module_sha256 = %report.module.sha256,
            query_sha256 = %report.query_sha256,
            template_sha256 = %report.template_sha256,
        );
        Ok(resolved)
    }

    /// Writes the report file and closes the run in the ledger. Errors here are logged, not
    /// returned: the run's own outcome (sent or not) must reach the caller.
    pub fn finish(&self, report: &RunReport) -> Option<PathBuf> {
        let file = match self.write_report(report) {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::error!(run_id = self.run, error = %e, "cannot write the run report");
                None
            }
        };
        let error = report
            .error
            .as_ref()
            .map(|e| (e.class.as_str(), e.message.as_str()));
        let file_text = file.as_ref().map(|p| p.display().to_string());
        if let Err(e) = self
            .ledger
            .finish_run(self.run, report.status, error, file_text.as_deref())
        {
            tracing::error!(run_id = self.run, error = %e, "cannot record the run's end in the ledger; the next run treats it as interrupted and re-sends its window");
        }
        tracing::info!(
            target: AUDIT,
            event = "run_finished",
            run_id = self.run,
            status = report.status.as_str(),
            seconds = report.seconds,
            jobs = report.jobs.len(),
            sent = report.jobs.iter().map(|j| j.records_sent()).sum::<usize>(),
            error_class = report.error.as_ref().map(|e| e.class.as_str()).unwrap_or(""),
            report_file = file_text.as_deref().unwrap_or(""),
        );
        file
    }

    fn write_report(&self, report: &RunReport) -> std::io::Result<PathBuf> {
        // Absolute: the ledger and the audit trail name the file for readers anywhere.
        let dir = std::path::absolute(self.state_dir.join("runs"))?;
        reqsync_private_fs::create_dir_all(&dir)?;
        let path = dir.join(format!("run-{:06}.json", self.run));
        // Created, never overwritten: a report names one run for good, and an existing file
        // here means the ledger and the reports disagree (which the error makes visible).
        // Streamed rather than built in memory first: the report lists every rejected row,
        // megabytes at a million rows.
        reqsync_private_fs::write_new(&path, |out| {
            serde_json::to_writer_pretty(out, report).map_err(std::io::Error::other)
        })
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(path)
    }
}

//! A run's bookkeeping, in one place: the run lock, the ledger (runs, job windows, requests,
//! quarantine), the audit trail's events ([`crate::audit::events`]) and the machine-readable
//! report file. Like everything else here they carry keys, counts and hashes only.

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, Utc};

use super::RunError;
use super::report::{JobReport, RunReport};
use crate::audit::{
    JobFinished, RequestFailed, RequestFields, RequestSending, RequestSent, RunFinished, RunStarted,
};
use crate::config::Config;
use crate::ledger::{
    Answer, JobHistory, JobStart, JobTotals, Ledger, Rejection, RunId, RunKind, RunLock,
};
use crate::redact::RedactedUrl;
use crate::reqcheck::{ClientError, ImportResponse, ImportStatus};

#[derive(Debug)]
pub(super) struct Recorder {
    ledger: Ledger,
    run: RunId,
    kind: RunKind,
    state_dir: PathBuf,
    /// As configured; the audit events redact it ([`RedactedUrl`]).
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
        RunStarted {
            run_id: run,
            kind,
            jobs,
            config: &config.path,
            source: RedactedUrl::new(&config.source_url),
            reqcheck: RedactedUrl::new(&config.reqcheck.url),
            ledger: ledger.path(),
        }
        .emit();
        Ok(Self {
            ledger,
            run,
            kind,
            state_dir: config.state_dir.clone(),
            reqcheck_url: config.reqcheck.url.clone(),
            _lock: lock,
        })
    }

    pub fn run_id(&self) -> RunId {
        self.run
    }

    /// ReqCheck's address as the audit trail writes it.
    pub fn reqcheck_url(&self) -> RedactedUrl<'_> {
        RedactedUrl::new(&self.reqcheck_url)
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
    pub(crate) fn expected_rows(&self, job: &str, full: bool) -> Option<u64> {
        if self.kind == RunKind::Replay {
            return None;
        }
        self.ledger.last_complete_read(job, full).ok().flatten()
    }

    pub(crate) fn job_started(&self, report: &JobReport) -> Result<(), RunError> {
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
    pub(crate) fn quarantined_patients(&self) -> Result<HashSet<String>, RunError> {
        Ok(self.ledger.open_ungrouped_quarantine_keys()?)
    }

    /// Before a request leaves.
    pub fn sending(&self, request: &RequestFields<'_>) -> Result<(), RunError> {
        if self.sends() {
            self.ledger.request_sending(
                self.run,
                request.job,
                request.seq,
                request.endpoint,
                request.records,
                request.bytes,
                request.body_sha256,
            )?;
            // On disk before the request leaves: a trail that cannot be written (a full disk)
            // stops the run here rather than leave an import at ReqCheck it never recorded.
            crate::audit::require(|| RequestSending { request: *request }.emit())?;
        }
        Ok(())
    }

    /// After ReqCheck answered (or the request failed for good).
    pub fn answered(
        &self,
        request: &RequestFields<'_>,
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
        self.ledger
            .request_answered(self.run, request.job, request.seq, &answer)?;
        let request = *request;
        match result {
            Ok(r) => RequestSent {
                request,
                status: r.status,
                data_import_id: r.data_import_id,
                record_errors: r.error_ids.len(),
            }
            .emit(),
            Err(error) => RequestFailed { request, error }.emit(),
        }
        Ok(())
    }

    /// Records the job's outcome, quarantines its rejected rows and resolves the entries whose
    /// rows passed. Returns how many entries were resolved.
    pub(crate) fn job_finished(
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
        JobFinished {
            run_id: self.run,
            job: &report.job,
            status: report.status,
            window_start: report.window_start,
            read: totals.read,
            emitted: totals.emitted,
            skipped: totals.skipped,
            rejected: totals.rejected,
            sent: totals.sent,
            acknowledged: totals.acknowledged,
            requests: report.requests.len(),
            quarantine_resolved: resolved,
            module_sha256: &report.module.sha256,
            query_sha256: &report.query_sha256,
            template_sha256: &report.template_sha256,
        }
        .emit();
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
        RunFinished {
            run_id: self.run,
            status: report.status,
            seconds: report.seconds,
            jobs: report.jobs.len(),
            sent: report.jobs.iter().map(|j| j.records_sent()).sum(),
            error_class: report.error.as_ref().map(|e| e.class.as_str()),
            report_file: file_text.as_deref(),
        }
        .emit();
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

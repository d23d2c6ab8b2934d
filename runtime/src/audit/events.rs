//! Every event the audit trail can hold, one struct each: the trail's table of contents.
//!
//! - [`RunStarted`] (`run_started`): a run (or dry run) began and holds the run lock.
//! - [`RequestSending`] (`request_sending`): a request is about to leave; the run stops if this
//!   cannot be written ([`super::require`]).
//! - [`RequestSent`] (`request_sent`): ReqCheck accepted a request.
//! - [`RequestFailed`] (`request_failed`): a request failed for good, after its retries.
//! - [`JobFinished`] (`job_finished`): a job ended; its counts and the hashes of what it ran.
//! - [`RunFinished`] (`run_finished`): a run ended.
//! - [`ModuleSwap`] (`module_swap`): the service saw a changed transform module and swapped it
//!   in, or refused it (a warning).
//!
//! All are INFO but a refused swap, a WARN.
//!
//! An event's fields are typed and named for what they hold: keys, counts, codes, hashes, file
//! names, redacted addresses. No event has a field for a row value, so one can only reach the
//! trail by a change here, in plain sight. `emit` issues the one `tracing` event the
//! [layer](super::layer) turns into a line; the field names are the line's keys, which
//! `docs/AUDIT.md` lists for operators (a unit test keeps the two in step).

use std::path::Path;

use chrono::NaiveDateTime;

use super::TARGET;
use crate::ledger::{JobStatus, RunId, RunKind, RunStatus};
use crate::redact::RedactedUrl;
use crate::reqcheck::{ClientError, ImportStatus};

/// A run began: what it runs, against what, and where it keeps its ledger.
#[derive(Debug, Clone, Copy)]
pub struct RunStarted<'a> {
    pub run_id: RunId,
    pub kind: RunKind,
    /// Written comma-separated.
    pub jobs: &'a [String],
    /// The config file.
    pub config: &'a Path,
    /// `[source] url`, redacted: the trail is kept for years, and a source URL is only parsed
    /// (and a password in it refused) later in the run.
    pub source: RedactedUrl<'a>,
    pub reqcheck: RedactedUrl<'a>,
    /// The ledger file.
    pub ledger: &'a Path,
}

impl RunStarted<'_> {
    pub fn emit(&self) {
        tracing::info!(
            target: TARGET,
            event = "run_started",
            run_id = self.run_id,
            kind = self.kind.as_str(),
            jobs = %self.jobs.join(","),
            config = %self.config.display(),
            source = %self.source,
            reqcheck = %self.reqcheck,
            ledger = %self.ledger.display(),
        );
    }
}

/// Which request, where to, and what it carried: the fields all three request events start
/// with, so that the entries of one request can be matched with each other and with the ledger.
#[derive(Debug, Clone, Copy)]
pub struct RequestFields<'a> {
    pub run_id: RunId,
    pub job: &'a str,
    /// The request's place in its job, from 1, as in the ledger. Written as `field_seq`: the
    /// writer's own `seq` numbers the lines ([`super::RESERVED`]).
    pub seq: usize,
    /// ReqCheck's address.
    pub url: RedactedUrl<'a>,
    pub endpoint: &'a str,
    pub records: usize,
    pub bytes: usize,
    pub body_sha256: &'a str,
}

/// One `tracing::info!` with the request fields, then `$extra` (more `name = value` fields).
macro_rules! request_event {
    ($name:literal, $request:expr $(, $($extra:tt)+)?) => {{
        let r: &RequestFields<'_> = $request;
        tracing::info!(
            target: TARGET,
            event = $name,
            run_id = r.run_id,
            job = r.job,
            seq = r.seq,
            url = %r.url,
            endpoint = r.endpoint,
            records = r.records,
            bytes = r.bytes,
            body_sha256 = r.body_sha256,
            $($($extra)+)?
        )
    }};
}

/// A request is about to leave. Emit it through [`super::require`]: ReqCheck must never hold
/// an import the trail does not know was sent.
#[derive(Debug, Clone, Copy)]
pub struct RequestSending<'a> {
    pub request: RequestFields<'a>,
}

impl RequestSending<'_> {
    pub fn emit(&self) {
        request_event!("request_sending", &self.request);
    }
}

/// ReqCheck accepted a request (`201`), perhaps with record errors.
#[derive(Debug, Clone, Copy)]
pub struct RequestSent<'a> {
    pub request: RequestFields<'a>,
    pub status: ImportStatus,
    pub data_import_id: i64,
    /// How many records ReqCheck could not store (`error_ids`).
    pub record_errors: usize,
}

impl RequestSent<'_> {
    pub fn emit(&self) {
        let status = match self.status {
            ImportStatus::Success => "success",
            ImportStatus::PartialFailure => "partial_failure",
        };
        request_event!(
            "request_sent",
            &self.request,
            status,
            data_import_id = self.data_import_id,
            record_errors = self.record_errors,
        );
    }
}

/// A request failed for good: no answer, a refusal, or its retries used up. The error's message
/// names the endpoint and status (with ReqCheck's short status text) or why there was no
/// answer, never the request's body.
#[derive(Debug, Clone, Copy)]
pub struct RequestFailed<'a> {
    pub request: RequestFields<'a>,
    pub error: &'a ClientError,
}

impl RequestFailed<'_> {
    pub fn emit(&self) {
        request_event!("request_failed", &self.request, error = %self.error);
    }
}

/// A job ended: its row counts, how its requests went, and the hashes of the module, query and
/// template it started with.
#[derive(Debug, Clone, Copy)]
pub struct JobFinished<'a> {
    pub run_id: RunId,
    pub job: &'a str,
    pub status: JobStatus,
    /// Where the job's window started, clinic local time.
    pub window_start: NaiveDateTime,
    pub read: u64,
    pub emitted: u64,
    pub skipped: u64,
    pub rejected: u64,
    /// Records in the requests ReqCheck accepted, and of those the ones it stored.
    pub sent: u64,
    pub acknowledged: u64,
    pub requests: usize,
    /// Quarantine entries of earlier runs whose rows passed and were sent in this one.
    pub quarantine_resolved: usize,
    pub module_sha256: &'a str,
    pub query_sha256: &'a str,
    pub template_sha256: &'a str,
}

impl JobFinished<'_> {
    pub fn emit(&self) {
        tracing::info!(
            target: TARGET,
            event = "job_finished",
            run_id = self.run_id,
            job = %self.job,
            status = self.status.as_str(),
            window_start = %self.window_start,
            read = self.read,
            emitted = self.emitted,
            skipped = self.skipped,
            rejected = self.rejected,
            sent = self.sent,
            acknowledged = self.acknowledged,
            requests = &self.requests,
            quarantine_resolved = self.quarantine_resolved,
            module_sha256 = %self.module_sha256,
            query_sha256 = %self.query_sha256,
            template_sha256 = %self.template_sha256,
        );
    }
}

/// A run ended.
#[derive(Debug, Clone, Copy)]
pub struct RunFinished<'a> {
    pub run_id: RunId,
    pub status: RunStatus,
    pub seconds: f64,
    pub jobs: usize,
    /// Records sent, over all jobs.
    pub sent: usize,
    /// The failure class of the run's error (the exit code's: `config`, `source`, …); written
    /// empty when it did not fail.
    pub error_class: Option<&'a str>,
    /// The run report's file; written empty when it could not be written.
    pub report_file: Option<&'a str>,
}

impl RunFinished<'_> {
    pub fn emit(&self) {
        tracing::info!(
            target: TARGET,
            event = "run_finished",
            run_id = self.run_id,
            status = self.status.as_str(),
            seconds = self.seconds,
            jobs = self.jobs,
            sent = self.sent,
            error_class = self.error_class.unwrap_or(""),
            report_file = self.report_file.unwrap_or(""),
        );
    }
}

/// The service saw a changed transform module file and swapped it in, or refused it and kept
/// the active version.
#[derive(Debug, Clone, Copy)]
pub struct ModuleSwap<'a> {
    pub path: &'a Path,
    pub old_sha256: &'a str,
    /// Empty when the candidate file could not be read.
    pub new_sha256: &'a str,
    pub result: SwapResult<'a>,
}

/// How a swap attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum SwapResult<'a> {
    /// The new version is active, `millis` after the change was noticed.
    Activated { millis: u64 },
    /// The active version keeps running. The reason names files, codes and example case
    /// names, never row data.
    Refused { reason: &'a str },
}

impl ModuleSwap<'_> {
    pub fn emit(&self) {
        match self.result {
            SwapResult::Activated { millis } => tracing::info!(
                target: TARGET,
                event = "module_swap",
                path = %self.path.display(),
                old_sha256 = %self.old_sha256,
                new_sha256 = %self.new_sha256,
                result = "activated",
                millis,
                "transform module swapped"
            ),
            // A warning: an analyst's deploy did not take effect.
            SwapResult::Refused { reason } => tracing::warn!(
                target: TARGET,
                event = "module_swap",
                path = %self.path.display(),
                old_sha256 = %self.old_sha256,
                new_sha256 = %self.new_sha256,
                result = "refused",
                %reason,
                "new transform module refused; the active version keeps running"
            ),
        }
    }
}

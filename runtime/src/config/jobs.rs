//! `[[jobs]]`: what each job reads, how it transforms and renders rows, where it sends them,
//! and when the daemon runs it.

use std::path::PathBuf;

use serde::Deserialize;

use crate::daemon::Schedule;
use crate::reqcheck::targets::{self, Target};
use crate::transform::SandboxLimits;

use super::sync::SandboxKeys;
use super::{Context, Invalid};

/// Records per request. Each request has a fixed cost on both sides (the ledger, the audit
/// trail, a ReqCheck transaction); docs/CONFIG.md says when raising it pays.
pub const DEFAULT_BATCH_SIZE: usize = 500;
/// The query column a dose job groups its rows by (a dose's patient) unless `group_by_column`
/// names another: the clinic schema's patient number.
pub const DEFAULT_GROUP_BY_COLUMN: &str = "patno";

/// `[[jobs]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJob {
    name: String,
    query: PathBuf,
    transform: PathBuf,
    template: PathBuf,
    /// Defaults to the endpoint of the record type the module emits.
    endpoint: Option<String>,
    /// Records per request (default [`DEFAULT_BATCH_SIZE`]). A patient's doses are never
    /// split, so a request can exceed this to hold one patient's whole history.
    batch_size: Option<usize>,
    /// For dose jobs: the query column identifying the patient (default
    /// [`DEFAULT_GROUP_BY_COLUMN`]). The query must return each patient's rows together
    /// (ORDER BY it).
    group_by_column: Option<String>,
    /// When `reqsync daemon` runs the job: a cron expression, 5 fields (minutes) or 6 (leading
    /// seconds), in the clinic's time zone. Without it the daemon does not run the job.
    schedule: Option<String>,
    /// Sandbox limits for this job's module, overriding the `[sync]` ones.
    transform_deadline_ms: Option<u64>,
    transform_memory_mb: Option<u64>,
    transform_max_record_kb: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct JobConfig {
    pub name: String,
    pub query: PathBuf,
    pub transform: PathBuf,
    pub template: PathBuf,
    pub endpoint: Option<String>,
    pub batch_size: usize,
    /// As configured; [`JobConfig::group_column`] gives the column a dose job groups by.
    pub group_by_column: Option<String>,
    /// `reqsync daemon`'s schedule for the job; `None`: the daemon does not run it.
    pub schedule: Option<Schedule>,
    /// The sandbox limits of this job's module.
    pub sandbox: SandboxLimits,
}

impl JobConfig {
    /// The endpoint this job posts to: configured, or the one of the module's record type.
    pub(crate) fn endpoint_for(&self, target: &Target) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| target.endpoint.to_string())
    }

    /// The query column that identifies a dose's patient, for a job whose records are grouped.
    pub fn group_column(&self) -> &str {
        self.group_by_column
            .as_deref()
            .unwrap_or(DEFAULT_GROUP_BY_COLUMN)
    }

    /// Every `[[jobs]]` section, checked: at least one, names usable in file names and unique,
    /// known endpoints, schedules that parse, and each module's sandbox limits (`sandbox`, the
    /// `[sync]` ones, with the job's own overrides).
    pub(super) fn from_raw(
        raw: Vec<RawJob>,
        sandbox: &SandboxLimits,
        cx: &Context,
    ) -> Result<Vec<Self>, Invalid> {
        if raw.is_empty() {
            return Err(Invalid::new("jobs", "no [[jobs]] configured"));
        }
        let mut jobs = Vec::new();
        for (i, j) in raw.into_iter().enumerate() {
            let key = |k: &str| format!("jobs[{i}].{k}");
            if j.name.trim().is_empty() {
                return Err(Invalid::new(key("name"), "must not be empty"));
            }
            // A job's name becomes part of file names (dry-run bodies), metric labels and log
            // fields: no separators, no dot files, nothing that needs quoting.
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if !j.name.chars().all(plain) || j.name.starts_with('.') {
                return Err(Invalid::new(
                    key("name"),
                    "use letters, digits, `-`, `_` and `.` only (and no leading `.`), e.g. \
                     \"patients\"",
                ));
            }
            if jobs.iter().any(|other: &JobConfig| other.name == j.name) {
                return Err(Invalid::new(
                    key("name"),
                    format!("job name `{}` is used twice", j.name),
                ));
            }
            let batch_size = j.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
            if batch_size == 0 {
                return Err(Invalid::new(key("batch_size"), "must be at least 1"));
            }
            if let Some(ep) = &j.endpoint
                && !targets::ALL.iter().any(|t| t.endpoint == ep)
            {
                return Err(Invalid::new(
                    key("endpoint"),
                    format!(
                        "`{ep}` is not a ReqCheck import endpoint (/patient_data or /vaccine_dose_data)"
                    ),
                ));
            }
            let schedule = j
                .schedule
                .as_deref()
                .map(Schedule::parse)
                .transpose()
                .map_err(|e| Invalid::new(key("schedule"), e))?;
            let sandbox = SandboxKeys {
                deadline_ms: j.transform_deadline_ms,
                memory_mb: j.transform_memory_mb,
                max_record_kb: j.transform_max_record_kb,
            }
            .apply(sandbox, &key(""))?;
            jobs.push(JobConfig {
                name: j.name,
                query: cx.rel(&j.query),
                transform: cx.rel(&j.transform),
                template: cx.rel(&j.template),
                endpoint: j.endpoint,
                batch_size,
                group_by_column: j.group_by_column,
                schedule,
                sandbox,
            });
        }
        Ok(jobs)
    }
}

//! Is the sync healthy? Each job's state from the run ledger and the config, and the verdict
//! a monitoring script acts on: the last run failed, or no run has completed the job recently
//! enough. `reqsync status` prints it; the daemon's status page shows it.
//!
//! Keys, counts, times, run ids, hashes and error classes only: nothing here can hold a row
//! value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::ledger::{JobOverview, Ledger, LedgerError, RunLock, RunStatus};

/// How old the last complete run of a job may be before `reqsync status` says so, when the
/// config does not say (`[status] max_age`): a nightly sync plus two hours of slack.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(26 * 3600);

/// Something about a job someone has to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// The job's last run did not complete: failed, partial (ReqCheck stored records with
    /// errors), abandoned on shutdown, or interrupted (the process died).
    LastRunFailed {
        run_id: i64,
        status: RunStatus,
        error_class: Option<String>,
    },
    /// No run has ever completed the job.
    NeverCompleted,
    /// The last complete run is older than the allowed age.
    Stale {
        age_seconds: u64,
        max_age_seconds: u64,
    },
}

impl Problem {
    /// A line for a person.
    pub fn describe(&self) -> String {
        match self {
            Problem::LastRunFailed {
                run_id,
                status,
                error_class,
            } => format!(
                "the last run (run {run_id}) ended {status}{}; `reqsync history --run {run_id}` \
                 shows it",
                error_class
                    .as_deref()
                    .map(|c| format!(" ({c} error)"))
                    .unwrap_or_default()
            ),
            Problem::NeverCompleted => "no run has completed this job yet".into(),
            Problem::Stale {
                age_seconds,
                max_age_seconds,
            } => format!(
                "the last complete run was {} ago, more than the allowed {}",
                age_text(Duration::from_secs(*age_seconds)),
                age_text(Duration::from_secs(*max_age_seconds))
            ),
        }
    }
}

/// The module file a job's next run would load, and whether its last run used the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleFile {
    pub path: PathBuf,
    /// `None` when the file cannot be read as a module could be (missing, not a regular file,
    /// too large).
    pub sha256: Option<String>,
    /// The last run that loaded the job's module loaded this file's content.
    pub used_by_last_run: bool,
}

/// One job's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    #[serde(flatten)]
    pub overview: JobOverview,
    /// A run of the project holds the run lock now (its jobs may not have started yet).
    pub running_now: bool,
    pub last_complete_age_seconds: Option<u64>,
    /// From the job's `schedule`, in UTC; `None` without one (a run from Task Scheduler or cron
    /// is scheduled outside the config).
    pub next_run: Option<DateTime<Utc>>,
    pub schedule: Option<String>,
    pub module: ModuleFile,
    pub problems: Vec<Problem>,
}

/// Every job of a config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectStatus {
    pub checked_at: DateTime<Utc>,
    pub max_age_seconds: u64,
    pub jobs: Vec<JobStatus>,
}

impl ProjectStatus {
    pub fn healthy(&self) -> bool {
        self.jobs.iter().all(|j| j.problems.is_empty())
    }
}

/// Reads the project's state. `ledger` is `None` when no run has been recorded yet (every job
/// then has the problem "never completed").
pub fn project_status(
    config: &Config,
    ledger: Option<&Ledger>,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Result<ProjectStatus, LedgerError> {
    let mut overviews = Vec::with_capacity(config.jobs.len());
    for job in &config.jobs {
        overviews.push(match ledger {
            Some(ledger) => ledger.job_overview(&job.name)?,
            None => JobOverview {
                job: job.name.clone(),
                ..JobOverview::default()
            },
        });
    }
    // Probed only when the ledger shows a run that may still be going (see RunLock::is_held).
    let running_now = overviews.iter().any(|o| {
        o.last_run
            .as_ref()
            .is_some_and(|r| r.status == RunStatus::Running)
    }) && run_in_progress(&config.state_dir);
    let mut jobs = Vec::with_capacity(config.jobs.len());
    for (job, overview) in config.jobs.iter().zip(overviews) {
        let module_sha = crate::transform::registry::module_file_sha256(&job.transform);
        // A run that ended before the job began loaded no module: compare with the last
        // run that did.
        let last_loaded = overview
            .last_run
            .as_ref()
            .filter(|r| !r.module_sha256.is_empty())
            .or(overview.last_complete.as_ref());
        let used_by_last_run = match (&module_sha, last_loaded) {
            (Some(sha), Some(last)) => *sha == last.module_sha256,
            _ => false,
        };
        let module = ModuleFile {
            path: job.transform.clone(),
            sha256: module_sha,
            used_by_last_run,
        };
        let next_run = job
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(now, config.clinic_tz));
        jobs.push(assess(
            overview,
            running_now,
            max_age,
            now,
            next_run,
            job.schedule.as_ref().map(|s| s.as_str().to_string()),
            module,
        ));
    }
    Ok(ProjectStatus {
        checked_at: now,
        max_age_seconds: max_age.as_secs(),
        jobs,
    })
}

/// The verdict on one job: pure, so every rule is tested with fixed times.
fn assess(
    overview: JobOverview,
    running_now: bool,
    max_age: Duration,
    now: DateTime<Utc>,
    next_run: Option<DateTime<Utc>>,
    schedule: Option<String>,
    module: ModuleFile,
) -> JobStatus {
    let mut problems = Vec::new();
    if let Some(last) = &overview.last_run {
        // A job still `running` while no run holds the lock died without finishing; the next
        // run will mark it `interrupted`, and so does this report.
        let status = match last.status {
            RunStatus::Running if !running_now => Some(RunStatus::Interrupted),
            RunStatus::Running | RunStatus::Complete => None,
            other => Some(other),
        };
        if let Some(status) = status {
            problems.push(Problem::LastRunFailed {
                run_id: last.run_id,
                status,
                error_class: last.error_class.clone(),
            });
        }
    }
    let age = overview.last_complete.as_ref().map(|c| {
        let at = c.finished_at.unwrap_or(c.started_at);
        (now - at).to_std().unwrap_or_default()
    });
    match age {
        None => problems.push(Problem::NeverCompleted),
        Some(age) if age > max_age => problems.push(Problem::Stale {
            age_seconds: age.as_secs(),
            max_age_seconds: max_age.as_secs(),
        }),
        Some(_) => {}
    }
    JobStatus {
        overview,
        running_now,
        last_complete_age_seconds: age.map(|a| a.as_secs()),
        next_run,
        schedule,
        module,
        problems,
    }
}

/// Whether a run of the project holds its run lock, asked without taking it.
fn run_in_progress(state_dir: &Path) -> bool {
    RunLock::is_held(state_dir).unwrap_or(false)
}

/// The first 12 hex digits of a SHA-256, as reports and pages show a module's or a file's hash.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// A duration as people say it: `45 s`, `12 min`, `3 h 12 min`, `2 d 4 h`.
pub fn age_text(age: Duration) -> String {
    let s = age.as_secs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{JobRunSummary, RunKind};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn job_run(id: i64, status: RunStatus, finished: &str) -> JobRunSummary {
        JobRunSummary {
            run_id: id,
            kind: RunKind::Sync,
            status,
            started_at: at(finished) - chrono::Duration::minutes(5),
            finished_at: Some(at(finished)),
            read: 10,
            sent: 10,
            acknowledged: 10,
            rejected: 0,
            module_sha256: "m".into(),
            error_class: (status == RunStatus::Failed).then(|| "delivery".into()),
        }
    }

    fn module() -> ModuleFile {
        ModuleFile {
            path: "m.wasm".into(),
            sha256: Some("m".into()),
            used_by_last_run: true,
        }
    }

    fn verdict(
        last: Option<JobRunSummary>,
        complete: Option<JobRunSummary>,
        running_now: bool,
    ) -> Vec<Problem> {
        let overview = JobOverview {
            job: "patients".into(),
            last_run: last,
            last_complete: complete,
            open_quarantine: 0,
        };
        assess(
            overview,
            running_now,
            DEFAULT_MAX_AGE,
            at("2026-12-07T12:00:00Z"),
            None,
            None,
            module(),
        )
        .problems
    }

    #[test]
    fn a_recent_complete_run_is_healthy() {
        let done = job_run(4, RunStatus::Complete, "2026-12-07T02:05:00Z");
        assert_eq!(verdict(Some(done.clone()), Some(done), false), vec![]);
    }

    #[test]
    fn a_failed_last_run_is_a_problem_even_after_a_recent_complete_one() {
        let done = job_run(4, RunStatus::Complete, "2026-12-06T14:05:00Z");
        let failed = job_run(5, RunStatus::Failed, "2026-12-07T02:05:00Z");
        assert_eq!(
            verdict(Some(failed), Some(done), false),
            vec![Problem::LastRunFailed {
                run_id: 5,
                status: RunStatus::Failed,
                error_class: Some("delivery".into())
            }]
        );
    }

    #[test]
    fn a_partial_last_run_is_a_problem() {
        let done = job_run(4, RunStatus::Complete, "2026-12-07T01:05:00Z");
        let partial = job_run(5, RunStatus::Partial, "2026-12-07T02:05:00Z");
        let problems = verdict(Some(partial), Some(done), false);
        assert!(
            matches!(
                problems[..],
                [Problem::LastRunFailed {
                    status: RunStatus::Partial,
                    ..
                }]
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn a_running_job_is_fine_while_a_run_holds_the_lock_and_interrupted_when_none_does() {
        let done = job_run(4, RunStatus::Complete, "2026-12-07T02:05:00Z");
        let running = job_run(5, RunStatus::Running, "2026-12-07T11:59:00Z");
        assert_eq!(
            verdict(Some(running.clone()), Some(done.clone()), true),
            vec![]
        );
        assert_eq!(
            verdict(Some(running), Some(done), false),
            vec![Problem::LastRunFailed {
                run_id: 5,
                status: RunStatus::Interrupted,
                error_class: None
            }]
        );
    }

    #[test]
    fn a_complete_run_older_than_the_allowed_age_is_stale() {
        let old = job_run(4, RunStatus::Complete, "2026-12-06T09:00:00Z");
        assert_eq!(
            verdict(Some(old.clone()), Some(old), false),
            vec![Problem::Stale {
                age_seconds: 27 * 3600,
                max_age_seconds: 26 * 3600
            }]
        );
    }

    #[test]
    fn a_job_without_runs_has_never_completed() {
        assert_eq!(verdict(None, None, false), vec![Problem::NeverCompleted]);
    }

    #[test]
    fn ages_read_as_people_say_them() {
        let t = |s| age_text(Duration::from_secs(s));
        assert_eq!(t(45), "45 s");
        assert_eq!(t(12 * 60), "12 min");
        assert_eq!(t(3 * 3600), "3 h");
        assert_eq!(t(3 * 3600 + 12 * 60 + 5), "3 h 12 min");
        assert_eq!(t(2 * 86_400 + 4 * 3600 + 60), "2 d 4 h");
        assert_eq!(t(86_400 + 59), "1 d");
    }
}

//! The scheduling loop: sleeps until the next fire time, starts runs, and keeps the state that
//! `/healthz` and `/metrics` show.
//!
//! Rules, and why:
//! - **One run at a time.** Jobs whose ticks fall on the same instant run as *one* run, which the
//!   pipeline orders patients before doses. Two concurrent runs could send a patient's doses
//!   before the patient, and ReqCheck answers that with a "Not Found" placeholder patient.
//! - **A tick of a job that is running (or already waiting) is skipped**, counted and logged,
//!   never queued: a sync that takes longer than its interval must not pile up a backlog.
//! - **A tick of another job waits** for the running run to end, then starts at once.
//! - **Shutdown** cancels the run's token: the pipeline finishes the requests in flight and stops
//!   at the next batch boundary. What was sent stays sent (ReqCheck imports per request).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::schedule::Schedule;
use crate::config::{Config, JobConfig};
use crate::ledger::RunStatus;
use crate::notify::Notifier;
use crate::pipeline::{FailureClass, Pipeline, Progress, RunError, RunOptions};
use crate::transform::ModuleRegistry;
use crate::transform::registry::ModuleStatus;

/// The loop re-reads the wall clock at least this often, so a clock that jumps (NTP, a resumed
/// virtual machine) delays a fire time by at most this much.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Every request accepted, some with record errors (`partial_failure`), under
    /// `on_partial_failure = "fail"`.
    Partial,
    /// Stopped at a batch boundary on shutdown.
    Abandoned,
    Failed(FailureClass),
}

impl Outcome {
    /// The metric label and `/healthz` value: a fixed word, never an error message.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial_failure",
            Outcome::Abandoned => "abandoned",
            Outcome::Failed(FailureClass::Config) => "config",
            Outcome::Failed(FailureClass::Source) => "source",
            Outcome::Failed(FailureClass::Transform) => "transform",
            Outcome::Failed(FailureClass::Delivery) => "delivery",
            Outcome::Failed(FailureClass::Abandoned) => "abandoned",
            Outcome::Failed(FailureClass::Busy) => "busy",
            Outcome::Failed(FailureClass::Resource) => "resource",
        }
    }

    pub fn of(error: &RunError) -> Self {
        match error.class() {
            FailureClass::Abandoned => Outcome::Abandoned,
            class => Outcome::Failed(class),
        }
    }
}

/// Counts of one job in a successful run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCounts {
    pub job: String,
    pub read: u64,
    pub emitted: u64,
    pub rejected: u64,
    pub sent: u64,
}

/// What a [`Runner`] reports back: counts and a class, nothing from the rows.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcome: Outcome,
    pub counts: Vec<JobCounts>,
}

/// A finished run, as metrics and `/healthz` record it.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub jobs: Vec<String>,
    pub outcome: Outcome,
    pub counts: Vec<JobCounts>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub seconds: f64,
}

/// Runs a set of jobs as one sync. The seam between the loop and the pipeline, so the loop's
/// rules are tested with a runner that only records what it was asked.
pub trait Runner: Send + Sync {
    /// `cancel` is cancelled on shutdown: stop at the next batch boundary.
    fn run(
        self: Arc<Self>,
        jobs: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, RunResult>;
}

/// The real runner: the pipeline, restricted to the jobs that fired.
#[derive(Debug)]
pub struct PipelineRunner {
    // Runs never overlap (the loop guarantees it); the mutex lets a run narrow the job list.
    pipeline: tokio::sync::Mutex<Pipeline>,
    all_jobs: Vec<JobConfig>,
    /// `[notify]`: a round of detection and delivery after each run.
    notifier: Option<Arc<Notifier>>,
}

impl PipelineRunner {
    pub fn new(pipeline: Pipeline) -> Self {
        let all_jobs = pipeline.config.jobs.clone();
        Self {
            pipeline: tokio::sync::Mutex::new(pipeline),
            all_jobs,
            notifier: None,
        }
    }

    pub fn with_notifier(mut self, notifier: Option<Arc<Notifier>>) -> Self {
        self.notifier = notifier;
        self
    }
}

impl Runner for PipelineRunner {
    fn run(
        self: Arc<Self>,
        jobs: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, RunResult> {
        async move {
            let mut pipeline = self.pipeline.lock().await;
            // Running the fired subset as the pipeline's whole job list keeps the pipeline's
            // own ordering (patients before doses) and its fail-closed preparation of every job.
            pipeline.config.jobs = self
                .all_jobs
                .iter()
                .filter(|j| jobs.contains(&j.name))
                .cloned()
                .collect();
            let options = RunOptions {
                cancel: Some(cancel),
                ..RunOptions::default()
            };
            let result = pipeline.run(&options, &Progress::hidden()).await;
            if let Some(notifier) = self.notifier.clone() {
                // On its own task: delivering (and retrying) must not hold up the schedule.
                // What a shutdown cuts short is still in the ledger for the next round.
                tokio::spawn(async move { notifier.check().await });
            }
            match result {
                Ok(report) => RunResult {
                    outcome: if report.status == RunStatus::Partial {
                        Outcome::Partial
                    } else {
                        Outcome::Ok
                    },
                    counts: report
                        .jobs
                        .iter()
                        .map(|j| JobCounts {
                            job: j.job.clone(),
                            read: j.counts.read,
                            emitted: j.counts.emitted,
                            rejected: j.counts.rejected,
                            sent: j.records_sent() as u64,
                        })
                        .collect(),
                },
                Err(e) => {
                    // RunError messages name jobs, files, keys and codes, never row values.
                    let outcome = Outcome::of(&e);
                    if outcome == Outcome::Abandoned {
                        tracing::warn!(error = %e, "run abandoned at a batch boundary");
                    } else {
                        tracing::error!(error = %e, class = outcome.label(), "scheduled run failed");
                    }
                    RunResult {
                        outcome,
                        counts: Vec::new(),
                    }
                }
            }
        }
        .boxed()
    }
}

/// Where "now" comes from: the system clock, or tokio's (pausable) clock in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall-clock time that advances with tokio's clock from a fixed start: under
/// `tokio::time::pause` a test moves both at once and fire times are exact.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    #[cfg(test)]
    pub(crate) fn starting_at(base: DateTime<Utc>) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.start;
        self.base + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }
}

/// A job the daemon runs, and when.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub name: String,
    pub schedule: Schedule,
}

/// Job names as one log field: `patients,vaccine-doses`, not a debug-printed list.
fn job_list<'a>(jobs: impl IntoIterator<Item = &'a String>) -> String {
    jobs.into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// The jobs of a config that have a `schedule`, and the names of those that have none (which
/// the daemon does not run).
pub fn scheduled_jobs(config: &Config) -> (Vec<ScheduledJob>, Vec<String>) {
    let mut scheduled = Vec::new();
    let mut unscheduled = Vec::new();
    for job in &config.jobs {
        match &job.schedule {
            Some(schedule) => scheduled.push(ScheduledJob {
                name: job.name.clone(),
                schedule: schedule.clone(),
            }),
            None => unscheduled.push(job.name.clone()),
        }
    }
    (scheduled, unscheduled)
}

/// State shared with the HTTP endpoints.
#[derive(Debug)]
pub struct DaemonState {
    pub metrics: Metrics,
    health: Mutex<Health>,
    /// The hot-swap registry and each job's module file, once the daemon has loaded them.
    modules: std::sync::OnceLock<(Arc<ModuleRegistry>, BTreeMap<String, std::path::PathBuf>)>,
    /// `/status`, once the daemon has set it up (absent: the page is off).
    status_page: std::sync::OnceLock<super::status_page::StatusPage>,
}

/// `/healthz`'s body. Job names, times and outcome words only.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// `ok`, or `failing` when some job's last run did not succeed. The answer is 200 either
    /// way: the process is alive and scheduling; the metrics say more.
    pub status: &'static str,
    pub started_at: DateTime<Utc>,
    /// Jobs of the run in progress (empty when idle).
    pub running: Vec<String>,
    pub jobs: BTreeMap<String, JobHealth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobHealth {
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<LastRun>,
    pub last_success: Option<DateTime<Utc>>,
    /// Runs of the job since the daemon started, whatever their outcome.
    pub runs: u64,
    pub skipped_ticks: u64,
    /// The module the job runs (name, version, SHA-256), and a refused version still on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub outcome: &'static str,
}

impl DaemonState {
    fn new(jobs: &[ScheduledJob], now: DateTime<Utc>) -> Self {
        Self {
            metrics: Metrics::new(jobs.iter().map(|j| j.name.as_str())),
            health: Mutex::new(Health {
                status: "ok",
                started_at: now,
                running: Vec::new(),
                jobs: jobs
                    .iter()
                    .map(|j| {
                        (
                            j.name.clone(),
                            JobHealth {
                                schedule: j.schedule.to_string(),
                                next_run: None,
                                last_run: None,
                                last_success: None,
                                runs: 0,
                                skipped_ticks: 0,
                                module: None,
                            },
                        )
                    })
                    .collect(),
            }),
            modules: std::sync::OnceLock::new(),
            status_page: std::sync::OnceLock::new(),
        }
    }

    /// Lets `/healthz` show what each job's module file runs: `jobs` maps a job to its file.
    pub fn attach_modules(
        &self,
        registry: Arc<ModuleRegistry>,
        jobs: BTreeMap<String, std::path::PathBuf>,
    ) {
        let _ = self.modules.set((registry, jobs));
    }

    /// Serves `/status` from `page` (the project's config and who may see it).
    pub fn attach_status_page(&self, page: super::status_page::StatusPage) {
        let _ = self.status_page.set(page);
    }

    pub fn status_page(&self) -> Option<&super::status_page::StatusPage> {
        self.status_page.get()
    }

    fn lock(&self) -> MutexGuard<'_, Health> {
        // A panic while holding the lock leaves plain data behind; showing it beats failing.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn health(&self) -> Health {
        let mut health = self.lock().clone();
        if let Some((registry, files)) = self.modules.get() {
            for (job, h) in &mut health.jobs {
                h.module = files.get(job).and_then(|path| registry.status_of(path));
            }
        }
        health
    }

    fn set_next(&self, job: &str, next: Option<DateTime<Utc>>) {
        if let Some(j) = self.lock().jobs.get_mut(job) {
            j.next_run = next;
        }
    }

    fn skipped(&self, job: &str) {
        self.metrics.skipped_tick(job);
        if let Some(j) = self.lock().jobs.get_mut(job) {
            j.skipped_ticks += 1;
        }
    }

    fn started(&self, jobs: &BTreeSet<String>) {
        self.metrics.run_started();
        self.lock().running = jobs.iter().cloned().collect();
    }

    fn finished(&self, summary: &RunSummary) {
        self.metrics.run_finished(summary);
        let mut health = self.lock();
        health.running.clear();
        for name in &summary.jobs {
            if let Some(j) = health.jobs.get_mut(name) {
                j.runs += 1;
                j.last_run = Some(LastRun {
                    started: summary.started,
                    finished: summary.finished,
                    outcome: summary.outcome.label(),
                });
                if summary.outcome == Outcome::Ok {
                    j.last_success = Some(summary.finished);
                }
            }
        }
        let failing = health
            .jobs
            .values()
            .any(|j| j.last_run.as_ref().is_some_and(|r| r.outcome != "ok"));
        health.status = if failing { "failing" } else { "ok" };
    }
}

/// What the loop did, for the shutdown log line and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSummary {
    pub runs: u64,
    pub skipped_ticks: u64,
}

/// The scheduler. Build it, hand [`Service::state`] to the HTTP server, then [`Service::run`].
pub struct Service {
    jobs: Vec<ScheduledJob>,
    tz: Tz,
    runner: Arc<dyn Runner>,
    clock: Arc<dyn Clock>,
    state: Arc<DaemonState>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("jobs", &self.jobs)
            .field("tz", &self.tz)
            .finish_non_exhaustive()
    }
}

/// The run in progress.
struct Current {
    jobs: BTreeSet<String>,
    started: DateTime<Utc>,
    future: BoxFuture<'static, RunResult>,
}

impl Service {
    pub fn new(
        jobs: Vec<ScheduledJob>,
        tz: Tz,
        runner: Arc<dyn Runner>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let state = Arc::new(DaemonState::new(&jobs, clock.now()));
        Self {
            jobs,
            tz,
            runner,
            clock,
            state,
        }
    }

    pub fn state(&self) -> Arc<DaemonState> {
        self.state.clone()
    }

    /// Schedules until `shutdown` is cancelled, then lets the current run stop at a batch
    /// boundary and returns.
    pub async fn run(self, shutdown: CancellationToken) -> ServiceSummary {
        let mut summary = ServiceSummary::default();
        let now = self.clock.now();
        let mut next: Vec<Option<DateTime<Utc>>> = self
            .jobs
            .iter()
            .map(|j| j.schedule.next_after(now, self.tz))
            .collect();
        for (job, at) in self.jobs.iter().zip(&next) {
            self.state.set_next(&job.name, *at);
            let next_run = at.map_or_else(|| "never".to_owned(), |at| at.to_rfc3339());
            tracing::info!(job = %job.name, schedule = %job.schedule, %next_run, "job scheduled");
        }
        let mut current: Option<Current> = None;
        let mut pending: BTreeSet<String> = BTreeSet::new();
        loop {
            if current.is_none() && !pending.is_empty() {
                let jobs = std::mem::take(&mut pending);
                tracing::info!(jobs = %job_list(&jobs), "scheduled run starting");
                self.state.started(&jobs);
                let future = self
                    .runner
                    .clone()
                    .run(jobs.iter().cloned().collect(), shutdown.child_token());
                current = Some(Current {
                    jobs,
                    started: self.clock.now(),
                    future,
                });
            }
            let now = self.clock.now();
            let wait = next
                .iter()
                .flatten()
                .min()
                .map(|at| (*at - now).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT);
            tokio::select! {
                // Shutdown first, then a finished run before a tick of the same instant: a
                // run that ends exactly when its job fires again is not an overlap.
                biased;
                () = shutdown.cancelled() => break,
                result = async {
                    match current.as_mut() {
                        Some(c) => c.future.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(c) = current.take() {
                        self.finish(c, result);
                        summary.runs += 1;
                    }
                }
                () = tokio::time::sleep(wait) => {
                    let now = self.clock.now();
                    for (job, at) in self.jobs.iter().zip(next.iter_mut()) {
                        if at.is_none_or(|t| t > now) {
                            continue;
                        }
                        *at = job.schedule.next_after(now, self.tz);
                        self.state.set_next(&job.name, *at);
                        let running = current.as_ref().is_some_and(|c| c.jobs.contains(&job.name));
                        if running || pending.contains(&job.name) {
                            tracing::warn!(
                                job = %job.name,
                                next_run = ?at,
                                "tick skipped: the job's previous run is still going"
                            );
                            self.state.skipped(&job.name);
                            summary.skipped_ticks += 1;
                        } else {
                            pending.insert(job.name.clone());
                        }
                    }
                }
            }
        }
        if let Some(mut c) = current.take() {
            tracing::info!(jobs = %job_list(&c.jobs), "shutting down: the current run stops at the next batch boundary");
            let result = c.future.as_mut().await;
            self.finish(c, result);
            summary.runs += 1;
        }
        if !pending.is_empty() {
            tracing::info!(jobs = %job_list(&pending), "shutting down: waiting jobs not started");
        }
        summary
    }

    fn finish(&self, c: Current, result: RunResult) {
        let finished = self.clock.now();
        let summary = RunSummary {
            jobs: c.jobs.into_iter().collect(),
            outcome: result.outcome,
            counts: result.counts,
            started: c.started,
            finished,
            seconds: (finished - c.started)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .as_secs_f64(),
        };
        tracing::info!(
            jobs = %job_list(&summary.jobs),
            outcome = summary.outcome.label(),
            seconds = summary.seconds,
            "scheduled run finished"
        );
        self.state.finished(&summary);
    }
}

#[cfg(test)]
mod tests;

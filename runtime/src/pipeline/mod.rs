//! One sync run: prepare every job (fail closed before anything is sent), ask ReqCheck where the
//! window starts, then run the jobs in ReqCheck's order (patients before doses).
//!
//! Within a job the stages overlap: the source reads on its own thread, the transform runs on
//! another, and the async side renders and sends; bounded channels between them keep memory
//! flat and let the two cores work at once.

pub mod batcher;
mod check;
mod delivery;
mod dry_run_dir;
mod error;
mod prepare;
pub mod progress;
mod recorder;
pub mod rejected;
pub mod report;
mod requests;

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use futures::future::MaybeDone;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use check::JobCheck;
pub use delivery::{Delivery, DryRunOutput};
pub use dry_run_dir::{DryRunDir, DryRunDirError};
pub use error::{FailureClass, RunError};
pub use prepare::PreparedJob;
pub use progress::Progress;
pub use report::{JobReport, ModuleReport, ReportedError, RequestReport, RunReport};

use crate::config::{Config, JobConfig, PartialFailurePolicy};
use crate::ledger::window::job_window;
use crate::ledger::{RunKind, RunStatus};
use crate::render::BodyTemplate;
use crate::reqcheck::window::{WindowBasis, check_heartbeat, window_start};
use crate::source::{AnySource, Query, RowStream, SourceError};
use crate::transform::{LiveTransform, ModuleRegistry, RowOutcome, TransformEngine, Verdict};
use batcher::RequestBatcher;
use recorder::Recorder;

/// Per-run choices.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ignore ReqCheck's last import and read everything.
    pub full: bool,
    /// Run only this job.
    pub job: Option<String>,
    /// The date age rules compare against (default: today in the clinic's time zone).
    pub as_of: Option<NaiveDate>,
    /// Checked between requests (the daemon cancels it on shutdown): a cancelled run finishes
    /// the requests in flight and stops with [`RunError::Abandoned`]. A request is ReqCheck's
    /// unit of import, and a patient's doses never span two, so nothing is left half-sent.
    pub cancel: Option<CancellationToken>,
    /// `reqsync quarantine replay`: per job, the keys to send (the group keys for a grouped
    /// job: a patient's doses travel together). The whole source is read and every other row
    /// is passed over; a job not listed is not run.
    pub replay: Option<HashMap<String, HashSet<String>>>,
}

/// [`RunError::Abandoned`] once `cancel` is cancelled.
fn check_cancel(cancel: Option<&CancellationToken>, job: &str) -> Result<(), RunError> {
    match cancel {
        Some(token) if token.is_cancelled() => Err(RunError::Abandoned {
            job: job.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Everything a run needs.
#[derive(Debug)]
pub struct Pipeline {
    pub config: Config,
    pub source: AnySource,
    pub engine: TransformEngine,
    pub delivery: Delivery,
    /// Hot-swappable modules (the service); `None` loads each module once per run.
    pub modules: Option<Arc<ModuleRegistry>>,
}

impl Pipeline {
    /// One run: records it in the run ledger and writes its report file whether it succeeds
    /// or not (a failed run's report says how far it got).
    pub async fn run(
        &self,
        options: &RunOptions,
        progress: &Progress,
    ) -> Result<RunReport, RunError> {
        let cfg = &self.config;
        if let Some(name) = &options.job
            && !cfg.jobs.iter().any(|j| &j.name == name)
        {
            return Err(RunError::Config {
                job: name.clone(),
                reason: format!(
                    "no such job in {} (jobs: {})",
                    cfg.path.display(),
                    cfg.jobs
                        .iter()
                        .map(|j| j.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let selected: Vec<&JobConfig> = cfg
            .jobs
            .iter()
            .filter(|j| options.job.as_ref().is_none_or(|n| n == &j.name))
            .filter(|j| {
                options
                    .replay
                    .as_ref()
                    .is_none_or(|keys| keys.contains_key(&j.name))
            })
            .collect();
        let kind = if matches!(self.delivery, Delivery::DryRun { .. }) {
            RunKind::DryRun
        } else if options.replay.is_some() {
            RunKind::Replay
        } else if options.full {
            RunKind::Full
        } else {
            RunKind::Sync
        };
        let started_at = chrono::Utc::now();
        let began = Instant::now();
        let names: Vec<String> = selected.iter().map(|j| j.name.clone()).collect();
        let recorder = Recorder::begin(cfg, kind, started_at, &names)?;
        let mut report = RunReport {
            run_id: recorder.run_id(),
            kind,
            status: RunStatus::Running,
            started_at,
            finished_at: None,
            seconds: 0.0,
            heartbeat: None,
            window_start: None,
            window_basis: None,
            as_of: None,
            dry_run: kind == RunKind::DryRun,
            jobs: Vec::new(),
            error: None,
        };
        let result = self
            .run_jobs(&selected, &recorder, options, progress, &mut report)
            .await;
        report.finished_at = Some(chrono::Utc::now());
        report.seconds = began.elapsed().as_secs_f64();
        report.status = match &result {
            Ok(()) if report.jobs.iter().any(|j| j.status == RunStatus::Partial) => {
                RunStatus::Partial
            }
            Ok(()) => RunStatus::Complete,
            Err(RunError::Abandoned { .. }) => RunStatus::Abandoned,
            Err(_) => RunStatus::Failed,
        };
        if let Err(e) = &result {
            report.error = Some(ReportedError {
                class: e.class().as_str().to_string(),
                message: e.to_string(),
            });
        }
        if let Some(file) = recorder.finish(&report) {
            tracing::info!(run_id = report.run_id, report = %file.display(), status = %report.status, "run recorded");
        }
        result.map(|()| report)
    }

    /// The run after its ledger entry: every job prepared and checked, the window fixed, then
    /// the jobs driven in ReqCheck's order.
    async fn run_jobs(
        &self,
        selected: &[&JobConfig],
        recorder: &Recorder,
        options: &RunOptions,
        progress: &Progress,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let jobs = self.prepare_jobs(selected).await?;
        let window = self
            .fix_window(recorder, options, report, jobs.len())
            .await?;
        let planned = plan_jobs(&self.config, recorder, jobs, &window, options)?;
        self.drive_jobs(planned, recorder, options, progress, window.as_of, report)
            .await
    }

    /// Loads and checks everything before the first request: a broken module, query file or
    /// template stops the run with nothing sent. Returns the jobs in ReqCheck's order.
    async fn prepare_jobs(&self, selected: &[&JobConfig]) -> Result<Vec<PreparedJob>, RunError> {
        let mut jobs = Vec::new();
        for job in selected {
            jobs.push(prepare::prepare(job, &self.engine, self.modules.as_deref()).await?);
        }
        jobs.sort_by_key(|j| j.target.order);
        // The first job's query is checked when it starts, before its first request; the
        // later ones are checked now, so that a dose query that does not fit its module stops
        // the run before the patients are sent, not after.
        // (What the checks need is copied out first: a prepared job holds its module instance,
        // which is not `Sync`, so a borrow of one must not be held across an await.)
        let probes: Vec<(JobConfig, String, crate::transform::ModuleInfo, bool)> = jobs
            .iter()
            .skip(1)
            .map(|j| {
                (
                    j.config.clone(),
                    j.query_sql.clone(),
                    j.instance.info().clone(),
                    j.target.group_field.is_some(),
                )
            })
            .collect();
        for (config, sql, info, grouped) in &probes {
            self.check_query_columns(config, sql, info, *grouped)
                .await?;
        }
        Ok(jobs)
    }

    /// Asks ReqCheck where the window starts (unless the run reads everything), refuses a
    /// heartbeat ahead of the run, and records the window in the ledger and the report.
    async fn fix_window(
        &self,
        recorder: &Recorder,
        options: &RunOptions,
        report: &mut RunReport,
        job_count: usize,
    ) -> Result<RunWindow, RunError> {
        let cfg = &self.config;
        // A replay reads everything and keeps only the listed keys.
        let full = options.full || options.replay.is_some();
        let heartbeat = match (&self.delivery, full) {
            (_, true) => None,
            (Delivery::ReqCheck(client), false)
            | (
                Delivery::DryRun {
                    client: Some(client),
                    ..
                },
                false,
            ) => client.heartbeat().await?.last_update_date,
            (Delivery::DryRun { client: None, .. }, false) => None,
        };
        report.heartbeat = recorder.heartbeat(heartbeat.as_ref())?;
        check_heartbeat(heartbeat, report.started_at)?;
        let (start, basis) = window_start(
            heartbeat,
            cfg.look_back,
            cfg.initial_start,
            full,
            cfg.clinic_tz,
        );
        let as_of = options.as_of.unwrap_or_else(|| {
            chrono::Utc::now()
                .with_timezone(&cfg.clinic_tz)
                .date_naive()
        });
        report.window_start = Some(start);
        report.window_basis = Some(basis);
        report.as_of = Some(as_of);
        tracing::info!(run_id = report.run_id, window_start = %start, basis = %basis.as_str(), %as_of, jobs = job_count, "sync starting");
        Ok(RunWindow {
            heartbeat,
            start,
            basis,
            as_of,
        })
    }

    /// Runs the planned jobs one after the other, each job's query started while the previous
    /// one sends; stops at the first job that fails, after recording it.
    async fn drive_jobs(
        &self,
        planned: Vec<(PreparedJob, JobState)>,
        recorder: &Recorder,
        options: &RunOptions,
        progress: &Progress,
        as_of: NaiveDate,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let cancel = options.cancel.as_ref();
        // Patients that passed in this replay: their doses are replayed with them.
        let mut replayed_patients: HashSet<String> = HashSet::new();
        let mut planned = planned.into_iter().peekable();
        let start_query = |job: &PreparedJob, state: &JobState| {
            Box::pin(futures::future::maybe_done(
                self.open_stream(job, state.report.window_start),
            ))
        };
        let mut started = planned.peek().map(|(job, state)| start_query(job, state));
        while let Some((job, mut state)) = planned.next() {
            check_cancel(cancel, &state.report.job)?;
            let began = Instant::now();
            let grouped = job.target.group_field.is_some();
            if grouped {
                // Read after the patient jobs ran: a patient ReqCheck does not have must not get
                // doses, or ReqCheck invents a "Not Found" placeholder patient for them.
                state.selection.held_patients = recorder.quarantined_patients()?;
                if let Some(selection) = &mut state.selection.replay {
                    selection.extend(replayed_patients.iter().cloned());
                }
            }
            // This job's query, started while the previous job ran (or now, for the first).
            let mut query = started.take().unwrap_or_else(|| start_query(&job, &state));
            query.as_mut().await;
            let stream = query.as_mut().take_output().unwrap_or_else(|| {
                Err(SourceError::Reader(
                    "the query's rows were taken twice".into(),
                ))
            });
            // The next job's query starts now, while this job sends: the database sorts it (a
            // dose query's ORDER BY patno over a million rows took 0.7 s, during which the
            // pipeline and ReqCheck had nothing to do) and its first batches wait in the
            // reader's bounded queue. Only reading starts early: its rows are transformed,
            // held back and sent in that job's turn, after this one is finished and recorded.
            let mut next = planned.peek().map(|(job, state)| start_query(job, state));
            let run = self.run_job(job, stream, as_of, progress, cancel, recorder, &mut state);
            let result = while_driving(run, next.as_mut()).await;
            started = next;
            let JobState {
                report: mut job_report,
                selection: RowSelection { passed, .. },
            } = state;
            if !grouped && options.replay.is_some() {
                replayed_patients.extend(passed.iter().cloned());
            }
            job_report.seconds = began.elapsed().as_secs_f64();
            self.finish_job(&mut job_report, &result, &passed, recorder)?;
            report.jobs.push(job_report);
            result?;
        }
        Ok(())
    }

    /// A job's final status from how it ended, recorded in the ledger (which resolves the
    /// quarantine entries its rows passed) and the log.
    fn finish_job(
        &self,
        job_report: &mut JobReport,
        result: &Result<(), RunError>,
        passed: &HashSet<String>,
        recorder: &Recorder,
    ) -> Result<(), RunError> {
        job_report.status = match result {
            Ok(())
                if job_report.partial_failures().next().is_some()
                    && self.config.on_partial_failure == PartialFailurePolicy::Fail =>
            {
                RunStatus::Partial
            }
            Ok(()) => RunStatus::Complete,
            Err(RunError::Abandoned { .. }) => RunStatus::Abandoned,
            Err(_) => RunStatus::Failed,
        };
        job_report.resolved_quarantine = recorder.job_finished(job_report, passed)?;
        tracing::info!(
            job = %job_report.job,
            status = %job_report.status,
            read = job_report.counts.read,
            emitted = job_report.counts.emitted,
            rejected = job_report.counts.rejected,
            sent = job_report.records_sent(),
            requests = job_report.requests.len(),
            module_sha256 = %job_report.module.sha256,
            module_versions = job_report.module_versions.len(),
            query_sha256 = %job_report.query_sha256,
            template_sha256 = %job_report.template_sha256,
            "job finished"
        );
        Ok(())
    }

    /// Starts `job`'s query over its window (see [`crate::source::Source::stream`]).
    fn open_stream<'a>(
        &'a self,
        job: &PreparedJob,
        window_start: NaiveDateTime,
    ) -> impl Future<Output = Result<RowStream, SourceError>> + Send + use<'a> {
        let query = Query {
            name: job.config.query.display().to_string(),
            sql: job.query_sql.clone(),
        };
        async move {
            tracing::debug!(query = %query.name, "query started");
            self.source
                .stream(&query, window_start, self.config.transform_batch_rows)
                .await
        }
    }

    /// Reads (`stream`, the job's query as [`Self::open_stream`] started it), transforms and
    /// sends one job; fills `state` as it goes, so a failure still leaves an account of what
    /// was sent.
    #[allow(clippy::too_many_arguments)]
    async fn run_job(
        &self,
        job: PreparedJob,
        stream: Result<RowStream, SourceError>,
        as_of: NaiveDate,
        progress: &Progress,
        cancel: Option<&CancellationToken>,
        recorder: &Recorder,
        state: &mut JobState,
    ) -> Result<(), RunError> {
        let PreparedJob {
            config,
            instance,
            slot,
            target,
            template,
            endpoint,
            ..
        } = job;
        let name = config.name.clone();
        let stream = stream?;
        let transform_err = |error| RunError::Transform {
            job: name.clone(),
            error,
        };
        let group_column = target
            .group_field
            .map(|_| config.group_column().to_string());
        let mut live = LiveTransform::new(
            instance,
            slot,
            &stream.columns,
            group_column.clone(),
            self.config.clinic_tz,
        )
        .map_err(transform_err)?;

        // Transform stage on its own thread: wasm calls are CPU-bound and synchronous.
        let (tx, rx) = mpsc::channel::<Result<Vec<RowOutcome>, RunError>>(2);
        let thread_job = name.clone();
        let engine = self.engine.clone();
        let worker = std::thread::Builder::new()
            .name(format!("transform-{name}"))
            .spawn(move || {
                let mut stream = stream;
                while let Some(batch) = stream.blocking_next_batch() {
                    let result = batch.map_err(RunError::from).and_then(|rows| {
                        tracing::debug!(job = %thread_job, rows = rows.len(), "batch read");
                        let outcomes = live.process(&engine, &rows, as_of).map_err(|error| {
                            RunError::Transform {
                                job: thread_job.clone(),
                                error,
                            }
                        })?;
                        tracing::debug!(job = %thread_job, rows = outcomes.len(), "batch transformed");
                        Ok(outcomes)
                    });
                    let failed = result.is_err();
                    if tx.blocking_send(result).is_err() || failed {
                        break;
                    }
                }
                live.versions_used().to_vec()
            })
            .map_err(|e| RunError::Config {
                job: name.clone(),
                reason: format!("cannot start the transform thread: {e}"),
            })?;

        let batcher = RequestBatcher::new(config.batch_size, group_column);
        let expected_rows = if progress.visible() {
            let full = state.report.window_basis == WindowBasis::Full;
            recorder.expected_rows(&name, full)
        } else {
            None
        };
        let bar = progress.job(&name, expected_rows);
        let records_sent = AtomicUsize::new(0);
        let (queue, rendered) = requests::queue();
        let sender = requests::Sender {
            delivery: &self.delivery,
            recorder,
            job: &name,
            endpoint: &endpoint,
            cancel,
            records_sent: &records_sent,
            in_flight: match &self.delivery {
                Delivery::ReqCheck(_) => self.config.reqcheck.requests_in_flight,
                Delivery::DryRun { .. } => 1,
            },
        };
        let JobState { report, selection } = state;
        // Both sides run in this task: the rendering side yields after queueing a request, so
        // the sending side starts it; the HTTP connection's own task, on a runtime worker
        // thread, then carries it while the next one renders here.
        let (rendering, sending) = tokio::join!(
            render_requests(RenderSide {
                job: &name,
                template: &template,
                outcomes: rx,
                batcher,
                selection,
                queue,
                bar: &bar,
                records_sent: &records_sent,
            }),
            sender.send_all(rendered, &mut report.requests),
        );
        // The transform thread has ended (the rendering side dropped its channel, which stops
        // it on a failure); its answer is the list of module versions that processed rows.
        report.module_versions = worker.join().unwrap_or_default();
        let RenderedRows {
            counts,
            rejected_rows,
            result,
        } = rendering;
        report.counts = counts;
        report.rejected_rows = rejected_rows;
        // A failed request came before whatever the rendering side ran into after it.
        sending.and(result)?;
        bar.finish(report.counts.read, report.records_sent());
        Ok(())
    }
}

/// Where a run's window starts, as fixed before its first job.
#[derive(Debug, Clone, Copy)]
struct RunWindow {
    heartbeat: Option<DateTime<FixedOffset>>,
    start: NaiveDateTime,
    basis: WindowBasis,
    as_of: NaiveDate,
}

/// Every job's window fixed and recorded before the first one runs: a run that dies in its
/// first job must leave the later jobs' windows in the ledger too, or the next run would start
/// those jobs from the heartbeat the first job's requests moved.
fn plan_jobs(
    cfg: &Config,
    recorder: &Recorder,
    jobs: Vec<PreparedJob>,
    window: &RunWindow,
    options: &RunOptions,
) -> Result<Vec<(PreparedJob, JobState)>, RunError> {
    let mut planned = Vec::new();
    for job in jobs {
        let name = job.config.name.clone();
        let history = recorder.job_history(&name)?;
        let (job_start, job_basis) = job_window(
            (window.start, window.basis),
            window.heartbeat,
            &history,
            cfg.look_back,
            cfg.clinic_tz,
        );
        if job_basis == WindowBasis::Ledger {
            tracing::warn!(
                job = %name,
                window_start = %job_start,
                heartbeat_window_start = %window.start,
                "ReqCheck's last import is later than what the run ledger knows was fully \
                 sent: starting earlier, so rows an unfinished run never sent are sent now"
            );
        }
        let state = JobState {
            report: JobReport {
                job: name.clone(),
                endpoint: job.endpoint.clone(),
                status: RunStatus::Running,
                window_start: job_start,
                window_basis: job_basis,
                module: ModuleReport {
                    name: job.instance.info().name.clone(),
                    version: job.instance.info().version.clone(),
                    sha256: job.instance.module().sha256.clone(),
                },
                module_versions: Vec::new(),
                query_sha256: job.query_sha256.clone(),
                template_sha256: job.template.sha256().to_string(),
                counts: Default::default(),
                rejected_rows: batcher::RejectedRows::default(),
                requests: Vec::new(),
                seconds: 0.0,
                resolved_quarantine: 0,
            },
            selection: RowSelection {
                quarantined: recorder.open_quarantine(&name)?,
                passed: HashSet::new(),
                held_patients: HashSet::new(),
                replay: options
                    .replay
                    .as_ref()
                    .and_then(|keys| keys.get(&name).cloned()),
            },
        };
        recorder.job_started(&state.report)?;
        planned.push((job, state));
    }
    Ok(planned)
}

/// Runs `main` to its end, driving `beside` (the next job's query starting) meanwhile; what
/// `beside` has not done by then waits for its own turn.
async fn while_driving<T, F: Future>(
    main: impl Future<Output = T>,
    beside: Option<&mut Pin<Box<MaybeDone<F>>>>,
) -> T {
    let Some(beside) = beside else {
        return main.await;
    };
    tokio::pin!(main);
    loop {
        tokio::select! {
            biased;
            result = &mut main => return result,
            () = beside.as_mut(), if matches!(beside.as_ref().get_ref(), MaybeDone::Future(_)) => {}
        }
    }
}

/// What the rendering side of a job works with.
struct RenderSide<'a> {
    job: &'a str,
    template: &'a BodyTemplate,
    outcomes: mpsc::Receiver<Result<Vec<RowOutcome>, RunError>>,
    batcher: RequestBatcher,
    selection: &'a mut RowSelection,
    queue: mpsc::Sender<requests::RenderedRequest>,
    bar: &'a progress::JobProgress,
    records_sent: &'a AtomicUsize,
}

/// The rendering side's account: the batcher's counts whatever happened, and how it ended.
struct RenderedRows {
    counts: batcher::RowCounts,
    rejected_rows: batcher::RejectedRows,
    result: Result<(), RunError>,
}

/// Turns the transform's outcomes into rendered requests, in order, until the outcomes end, a
/// failure, or the sending side stops taking requests (it failed or the run was cancelled; it
/// reports why).
async fn render_requests(mut side: RenderSide<'_>) -> RenderedRows {
    let result = match side.render_all().await {
        Ok(()) | Err(Stop::SenderGone) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
    };
    RenderedRows {
        counts: side.batcher.counts,
        rejected_rows: side.batcher.rejected_rows,
        result,
    }
}

/// Why the rendering side stopped early.
enum Stop {
    Failed(RunError),
    /// The sending side closed the queue; its own result says why.
    SenderGone,
}

impl From<RunError> for Stop {
    fn from(e: RunError) -> Self {
        Stop::Failed(e)
    }
}

impl RenderSide<'_> {
    async fn render_all(&mut self) -> Result<(), Stop> {
        while let Some(result) = self.outcomes.recv().await {
            for mut outcome in result? {
                if !self.selection.selects(&outcome) {
                    continue;
                }
                self.selection.hold_if_patient_quarantined(&mut outcome);
                self.selection.note_pass(&outcome);
                let ready = self
                    .batcher
                    .push(outcome)
                    .map_err(|error| RunError::Batch {
                        job: self.job.to_string(),
                        error,
                    })?;
                for request in ready {
                    self.queue_request(request).await?;
                }
            }
            self.bar.set(
                self.batcher.counts.read,
                self.records_sent.load(Ordering::Relaxed),
            );
        }
        for request in self.batcher.flush() {
            self.queue_request(request).await?;
        }
        Ok(())
    }

    async fn queue_request(&mut self, request: batcher::Request) -> Result<(), Stop> {
        let request = requests::render(self.job, self.template, &request)?;
        self.queue
            .send(request)
            .await
            .map_err(|_| Stop::SenderGone)?;
        // Let the sending side start this request before rendering the next one.
        tokio::task::yield_now().await;
        Ok(())
    }
}

/// Skip code for doses held back because their patient is in the quarantine.
pub(crate) const PATIENT_QUARANTINED: &str = "patient-quarantined";

/// A job's report while it runs, and what it learns about the quarantine.
struct JobState {
    report: JobReport,
    selection: RowSelection,
}

/// Which rows of a job go out: a replay's selection, and what the quarantine holds back.
struct RowSelection {
    /// Keys of the job's open quarantine entries.
    quarantined: HashSet<String>,
    /// Of those, the rows that passed the transform in this run.
    passed: HashSet<String>,
    /// Replay: the only keys (or groups) to send.
    replay: Option<HashSet<String>>,
    /// Dose jobs: patients in the quarantine, whose doses are held back.
    held_patients: HashSet<String>,
}

impl RowSelection {
    /// Whether a replay selects the row (every row when this is not a replay).
    fn selects(&self, outcome: &RowOutcome) -> bool {
        self.replay.as_ref().is_none_or(|keys| {
            keys.contains(outcome.group.as_ref().unwrap_or(&outcome.key).as_str())
        })
    }

    /// A row of a quarantined patient's group is held back (a row rejected in itself stays
    /// rejected, so it is quarantined too).
    fn hold_if_patient_quarantined(&self, outcome: &mut RowOutcome) {
        let held = outcome
            .group
            .as_ref()
            .is_some_and(|g| self.held_patients.contains(g.as_str()));
        if held && matches!(outcome.verdict, Verdict::Emit { .. }) {
            outcome.verdict = Verdict::Skip {
                code: PATIENT_QUARANTINED.into(),
                message: "the row's patient is in the quarantine; ReqCheck would invent a \
                          placeholder patient for its doses"
                    .into(),
            };
        }
    }

    fn note_pass(&mut self, outcome: &RowOutcome) {
        if matches!(outcome.verdict, Verdict::Emit { .. })
            && self.quarantined.contains(outcome.key.as_str())
        {
            self.passed.insert(outcome.key.to_string());
        }
    }
}

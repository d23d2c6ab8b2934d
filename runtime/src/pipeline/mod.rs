//! One sync run: prepare every job (fail closed before anything is sent), ask ReqCheck where the
//! window starts, then run the jobs in ReqCheck's order (patients before doses).
//!
//! Within a job the stages overlap: the source reads on its own thread, the transform runs on
//! another, and the async side renders and sends; bounded channels between them keep memory
//! flat and let the two cores work at once.

pub mod batcher;
mod check;
mod delivery;
mod prepare;
pub mod progress;
pub mod report;

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use check::JobCheck;
pub use delivery::{Delivery, DryRunOutput};
pub use prepare::PreparedJob;
pub use progress::Progress;
pub use report::{JobReport, ModuleReport, RequestReport, RunReport};

use crate::config::Config;
use crate::render::RenderError;
use crate::reqcheck::ClientError;
use crate::reqcheck::window::window_start;
use crate::source::{AnySource, Query, SourceError};
use crate::transform::{
    LiveTransform, ModuleRegistry, RowOutcome, TransformEngine, TransformError,
};
use batcher::{BatchError, RequestBatcher};

/// What failed, sorted by who has to act: the classes map to the documented exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("job `{job}`: {reason}")]
    Config { job: String, reason: String },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("job `{job}`: {source}")]
    Transform { job: String, source: TransformError },
    #[error("job `{job}`: {source}")]
    Template { job: String, source: RenderError },
    #[error(transparent)]
    Delivery(#[from] ClientError),
    #[error("job `{job}`: {source}")]
    Batch { job: String, source: BatchError },
    #[error("dry-run output: {0}")]
    DryRunOutput(String),
    #[error(
        "job `{job}`: stopped at a batch boundary on request; the requests already sent stay sent"
    )]
    Abandoned { job: String },
}

/// Exit-code classes (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Config,
    Source,
    Transform,
    Delivery,
    /// Stopped on request ([`RunOptions::cancel`]): nobody has to act.
    Abandoned,
}

impl RunError {
    pub fn class(&self) -> FailureClass {
        match self {
            RunError::Config { .. } | RunError::Template { .. } | RunError::DryRunOutput(_) => {
                FailureClass::Config
            }
            RunError::Source(_) | RunError::Batch { .. } => FailureClass::Source,
            RunError::Transform { .. } => FailureClass::Transform,
            RunError::Delivery(_) => FailureClass::Delivery,
            RunError::Abandoned { .. } => FailureClass::Abandoned,
        }
    }
}

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
    /// the request in flight and stops with [`RunError::Abandoned`]. A request is ReqCheck's
    /// unit of import, and a patient's doses never span two, so nothing is left half-sent.
    pub cancel: Option<CancellationToken>,
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
        // Everything is loaded and checked before the first request: a broken module, query
        // file or template stops the run with nothing sent.
        let mut jobs = Vec::new();
        for job in cfg
            .jobs
            .iter()
            .filter(|j| options.job.as_ref().is_none_or(|n| n == &j.name))
        {
            jobs.push(prepare::prepare(job, &self.engine, self.modules.as_deref()).await?);
        }
        jobs.sort_by_key(|j| j.target.order);

        let heartbeat = match (&self.delivery, options.full) {
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
        let (start, basis) = window_start(
            heartbeat,
            cfg.look_back,
            cfg.initial_start,
            options.full,
            cfg.clinic_tz,
        );
        let as_of = options.as_of.unwrap_or_else(|| {
            chrono::Utc::now()
                .with_timezone(&cfg.clinic_tz)
                .date_naive()
        });
        tracing::info!(window_start = %start, basis = ?basis, %as_of, jobs = jobs.len(), "sync starting");

        let mut reports = Vec::new();
        let cancel = options.cancel.as_ref();
        for job in jobs {
            check_cancel(cancel, &job.config.name)?;
            let report = self.run_job(job, start, as_of, progress, cancel).await?;
            tracing::info!(
                job = %report.job,
                read = report.counts.read,
                emitted = report.counts.emitted,
                rejected = report.counts.rejected,
                sent = report.records_sent(),
                requests = report.requests.len(),
                module_sha256 = %report.module.sha256,
                module_versions = report.module_versions.len(),
                query_sha256 = %report.query_sha256,
                template_sha256 = %report.template_sha256,
                "job finished"
            );
            reports.push(report);
        }
        Ok(RunReport {
            window_start: start,
            window_basis: basis,
            as_of,
            dry_run: matches!(self.delivery, Delivery::DryRun { .. }),
            jobs: reports,
        })
    }

    async fn run_job(
        &self,
        job: PreparedJob,
        start: chrono::NaiveDateTime,
        as_of: NaiveDate,
        progress: &Progress,
        cancel: Option<&CancellationToken>,
    ) -> Result<JobReport, RunError> {
        let began = Instant::now();
        let PreparedJob {
            config,
            instance,
            slot,
            target,
            template,
            query_sql,
            query_sha256,
            endpoint,
        } = job;
        let name = config.name.clone();
        let query = Query {
            name: config.query.display().to_string(),
            sql: query_sql,
        };
        let stream = self
            .source
            .stream(&query, start, self.config.transform_batch_rows)
            .await?;
        let transform_err = |source| RunError::Transform {
            job: name.clone(),
            source,
        };
        let group_column = target.group_field.map(|_| {
            config
                .group_by_column
                .clone()
                .unwrap_or_else(|| "patno".to_string())
        });
        let module = ModuleReport {
            name: instance.info().name.clone(),
            version: instance.info().version.clone(),
            sha256: instance.module().sha256.clone(),
        };
        let mut live = LiveTransform::new(
            instance,
            slot,
            &stream.columns,
            group_column.clone(),
            self.config.clinic_tz,
        )
        .map_err(transform_err)?;

        // Transform stage on its own thread: wasm calls are CPU-bound and synchronous.
        let (tx, mut rx) = mpsc::channel::<Result<Vec<RowOutcome>, RunError>>(2);
        let thread_job = name.clone();
        let engine = self.engine.clone();
        let worker = std::thread::Builder::new()
            .name(format!("transform-{name}"))
            .spawn(move || {
                let mut stream = stream;
                while let Some(batch) = stream.blocking_next_batch() {
                    let result = batch.map_err(RunError::from).and_then(|rows| {
                        live.process(&engine, &rows, as_of)
                            .map_err(|source| RunError::Transform {
                                job: thread_job.clone(),
                                source,
                            })
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

        let mut batcher = RequestBatcher::new(config.batch_size, group_column);
        let mut requests = Vec::new();
        let bar = progress.job(&name);
        while let Some(result) = rx.recv().await {
            for outcome in result? {
                let ready = batcher.push(outcome).map_err(|source| RunError::Batch {
                    job: name.clone(),
                    source,
                })?;
                for records in ready {
                    check_cancel(cancel, &name)?;
                    requests.push(
                        self.send(&name, &endpoint, &template, &records, requests.len())
                            .await?,
                    );
                }
            }
            bar.set(
                batcher.counts.read,
                requests.iter().map(|r: &RequestReport| r.records).sum(),
            );
        }
        // The transform thread has ended (its channel closed); its answer is the list of module
        // versions that processed rows.
        let module_versions = worker.join().unwrap_or_default();
        let (ready, counts, rejected_rows) = batcher.finish();
        for records in ready {
            check_cancel(cancel, &name)?;
            requests.push(
                self.send(&name, &endpoint, &template, &records, requests.len())
                    .await?,
            );
        }
        bar.finish(counts.read, requests.iter().map(|r| r.records).sum());
        Ok(JobReport {
            job: name,
            endpoint,
            module,
            module_versions,
            query_sha256,
            template_sha256: template.sha256().to_string(),
            counts,
            rejected_rows,
            requests,
            seconds: began.elapsed().as_secs_f64(),
        })
    }

    async fn send(
        &self,
        job: &str,
        endpoint: &str,
        template: &crate::render::BodyTemplate,
        records: &[batcher::Record],
        index: usize,
    ) -> Result<RequestReport, RunError> {
        let body = template
            .render(records)
            .map_err(|source| RunError::Template {
                job: job.to_string(),
                source,
            })?;
        let bytes = body.len();
        let response = self.delivery.deliver(job, endpoint, body, index).await?;
        if let Some(r) = &response {
            tracing::info!(
                job,
                endpoint,
                records = records.len(),
                data_import_id = r.data_import_id,
                record_errors = r.error_ids.len(),
                "request accepted"
            );
        }
        Ok(RequestReport {
            records: records.len(),
            bytes,
            response,
        })
    }
}

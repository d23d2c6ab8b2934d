//! Prometheus metrics of the daemon. Every metric is declared here with its fixed name; the only
//! label values are job names (from the config) and outcome classes (a fixed set), so no row
//! value can reach a scrape.

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::service::{Outcome, RunSummary};

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    job: String,
    outcome: String,
}

/// The metric families. Cheap to share: every metric is an `Arc` inside.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    last_success: Family<JobLabel, Gauge>,
    rows_read: Family<JobLabel, Counter>,
    rows_emitted: Family<JobLabel, Counter>,
    rows_rejected: Family<JobLabel, Counter>,
    records_sent: Family<JobLabel, Counter>,
    skipped_ticks: Family<JobLabel, Counter>,
    run_duration: Histogram,
    running: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every family and creates the series of each job at zero, so a dashboard sees
    /// every job from the first scrape (an absent series reads as "no data", not "no runs").
    pub fn new<'a>(jobs: impl IntoIterator<Item = &'a str>) -> Self {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "reqsync_runs",
            "Runs per job and outcome (ok, abandoned, or the failure class: config, source, transform, delivery)",
            runs.clone(),
        );
        let last_success = Family::<JobLabel, Gauge>::default();
        registry.register(
            "reqsync_last_success_timestamp_seconds",
            "Unix time at which the job's last successful run finished (0: none yet)",
            last_success.clone(),
        );
        let rows_read = Family::<JobLabel, Counter>::default();
        registry.register(
            "reqsync_rows_read",
            "Source rows read by successful runs",
            rows_read.clone(),
        );
        let rows_emitted = Family::<JobLabel, Counter>::default();
        registry.register(
            "reqsync_rows_emitted",
            "Records emitted by the transform module in successful runs",
            rows_emitted.clone(),
        );
        let rows_rejected = Family::<JobLabel, Counter>::default();
        registry.register(
            "reqsync_rows_rejected",
            "Rows rejected by the transform module (held back) in successful runs",
            rows_rejected.clone(),
        );
        let records_sent = Family::<JobLabel, Counter>::default();
        registry.register(
            "reqsync_records_sent",
            "Records sent to ReqCheck by successful runs",
            records_sent.clone(),
        );
        let skipped_ticks = Family::<JobLabel, Counter>::default();
        registry.register(
            "reqsync_skipped_ticks",
            "Scheduled ticks skipped because the job's previous run was still going",
            skipped_ticks.clone(),
        );
        // 1 s … ~4.5 h: a quiet incremental run takes seconds, a full CDSi-sized one minutes.
        let run_duration = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        registry.register(
            "reqsync_run_duration_seconds",
            "Wall-clock duration of daemon runs, whatever their outcome",
            run_duration.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "reqsync_run_in_progress",
            "1 while a run is going",
            running.clone(),
        );
        let metrics = Metrics {
            registry,
            runs,
            last_success,
            rows_read,
            rows_emitted,
            rows_rejected,
            records_sent,
            skipped_ticks,
            run_duration,
            running,
        };
        for job in jobs {
            let label = JobLabel { job: job.into() };
            for family in [
                &metrics.rows_read,
                &metrics.rows_emitted,
                &metrics.rows_rejected,
                &metrics.records_sent,
                &metrics.skipped_ticks,
            ] {
                let _ = family.get_or_create(&label);
            }
            let _ = metrics.last_success.get_or_create(&label);
            let _ = metrics.runs.get_or_create(&RunLabels {
                job: job.into(),
                outcome: Outcome::Ok.label().into(),
            });
        }
        metrics
    }

    pub fn run_started(&self) {
        self.running.set(1);
    }

    pub(crate) fn skipped_tick(&self, job: &str) {
        self.skipped_ticks
            .get_or_create(&JobLabel { job: job.into() })
            .inc();
    }

    pub fn run_finished(&self, summary: &RunSummary) {
        self.running.set(0);
        self.run_duration.observe(summary.seconds);
        for job in &summary.jobs {
            self.runs
                .get_or_create(&RunLabels {
                    job: job.clone(),
                    outcome: summary.outcome.label().into(),
                })
                .inc();
        }
        // A partial failure sent its records too: count them.
        if matches!(summary.outcome, Outcome::Ok | Outcome::Partial) {
            for counts in &summary.counts {
                let label = JobLabel {
                    job: counts.job.clone(),
                };
                self.rows_read.get_or_create(&label).inc_by(counts.read);
                self.rows_emitted
                    .get_or_create(&label)
                    .inc_by(counts.emitted);
                self.rows_rejected
                    .get_or_create(&label)
                    .inc_by(counts.rejected);
                self.records_sent.get_or_create(&label).inc_by(counts.sent);
            }
            for job in &summary.jobs {
                self.last_success
                    .get_or_create(&JobLabel { job: job.clone() })
                    .set(summary.finished.timestamp());
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a metric name.
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

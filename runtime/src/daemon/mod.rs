//! `reqsync daemon`: runs the jobs on their cron schedules, one run at a time, and serves
//! `/healthz` and `/metrics`.
//!
//! [`schedule`] says when a job fires (pure, tested with fixed times); [`service`] is the loop
//! that starts runs through a [`Runner`] (the pipeline, or a recorder in tests); [`http`] and
//! [`metrics`] expose what the loop records. Queries, templates and modules are read anew by
//! every run, as for `reqsync run`.

pub mod http;
pub mod metrics;
pub mod schedule;
pub mod service;
pub mod status_page;

pub use schedule::{Schedule, ScheduleError};
pub use service::{
    Clock, DaemonState, Health, Outcome, PipelineRunner, Runner, ScheduledJob, Service,
    ServiceSummary, SystemClock, TokioClock, scheduled_jobs,
};

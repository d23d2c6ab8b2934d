//! The loop's rules under tokio's paused clock: fire times are exact and nothing waits for real.
//! Assertions are on which runs started when, never on how long anything took.

use std::sync::Mutex;

use chrono::TimeZone;

use super::*;

/// 2024-07-01 12:00:30 UTC: half a minute before the first per-minute tick.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 7, 1, 12, 0, 30)
        .single()
        .expect("valid time")
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 7, 1, h, m, s)
        .single()
        .expect("valid time")
}

/// Records each run's start time and jobs; a run takes `takes` unless cancelled first.
struct FakeRunner {
    clock: TokioClock,
    takes: Duration,
    outcome: Outcome,
    calls: Mutex<Vec<(DateTime<Utc>, Vec<String>)>>,
}

impl FakeRunner {
    fn new(clock: TokioClock, takes: Duration) -> Arc<Self> {
        Arc::new(Self {
            clock,
            takes,
            outcome: Outcome::Ok,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<(DateTime<Utc>, Vec<String>)> {
        self.calls.lock().expect("calls").clone()
    }
}

impl Runner for FakeRunner {
    fn run(
        self: Arc<Self>,
        jobs: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, RunResult> {
        async move {
            self.calls
                .lock()
                .expect("calls")
                .push((self.clock.now(), jobs.clone()));
            tokio::select! {
                () = tokio::time::sleep(self.takes) => RunResult {
                    outcome: self.outcome,
                    counts: jobs
                        .iter()
                        .map(|job| JobCounts { job: job.clone(), read: 3, emitted: 2, rejected: 1, sent: 2 })
                        .collect(),
                },
                () = cancel.cancelled() => RunResult { outcome: Outcome::Abandoned, counts: Vec::new() },
            }
        }
        .boxed()
    }
}

fn job(name: &str, schedule: &str) -> ScheduledJob {
    ScheduledJob {
        name: name.into(),
        schedule: Schedule::parse(schedule).expect("schedule"),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Runs the service for `span` of (paused) time from [`base`], then shuts it down.
async fn drive(
    jobs: Vec<ScheduledJob>,
    runner: Arc<FakeRunner>,
    clock: TokioClock,
    span: Duration,
) -> (ServiceSummary, Arc<DaemonState>) {
    let service = Service::new(jobs, chrono_tz::UTC, runner, Arc::new(clock));
    let state = service.state();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(service.run(shutdown.clone()));
    tokio::time::sleep(span).await;
    shutdown.cancel();
    (handle.await.expect("service task"), state)
}

#[tokio::test(start_paused = true)]
async fn a_per_minute_job_fires_on_each_minute() {
    let clock = TokioClock::starting_at(base());
    let runner = FakeRunner::new(clock, Duration::from_secs(5));
    let (summary, state) = drive(
        vec![job("patients", "* * * * *")],
        runner.clone(),
        clock,
        Duration::from_secs(195), // until 12:03:45
    )
    .await;
    assert_eq!(
        runner.calls(),
        vec![
            (at(12, 1, 0), names(&["patients"])),
            (at(12, 2, 0), names(&["patients"])),
            (at(12, 3, 0), names(&["patients"])),
        ]
    );
    assert_eq!(
        summary,
        ServiceSummary {
            runs: 3,
            skipped_ticks: 0
        }
    );
    let health = state.health();
    assert_eq!(health.status, "ok");
    let patients = &health.jobs["patients"];
    assert_eq!(patients.next_run, Some(at(12, 4, 0)));
    assert_eq!(patients.last_success, Some(at(12, 3, 5)));
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(r#"reqsync_runs_total{job="patients",outcome="ok"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reqsync_rows_read_total{job="patients"} 9"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reqsync_last_success_timestamp_seconds{job="patients"} 1719835385"#),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn jobs_due_at_the_same_instant_run_as_one_run() {
    let clock = TokioClock::starting_at(base());
    let runner = FakeRunner::new(clock, Duration::from_secs(5));
    drive(
        vec![
            job("vaccine-doses", "* * * * *"),
            job("patients", "*/2 * * * *"),
        ],
        runner.clone(),
        clock,
        Duration::from_secs(255), // until 12:04:45
    )
    .await;
    assert_eq!(
        runner.calls(),
        vec![
            (at(12, 1, 0), names(&["vaccine-doses"])),
            (at(12, 2, 0), names(&["patients", "vaccine-doses"])),
            (at(12, 3, 0), names(&["vaccine-doses"])),
            (at(12, 4, 0), names(&["patients", "vaccine-doses"])),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_tick_while_the_job_still_runs_is_skipped_and_counted() {
    let clock = TokioClock::starting_at(base());
    // Each run takes 90 s: the tick a minute later finds it still going.
    let runner = FakeRunner::new(clock, Duration::from_secs(90));
    let (summary, state) = drive(
        vec![job("patients", "* * * * *")],
        runner.clone(),
        clock,
        Duration::from_secs(255), // until 12:04:45
    )
    .await;
    // 12:01 runs until 12:02:30 (12:02 skipped), 12:03 until 12:04:30 (12:04 skipped).
    assert_eq!(
        runner.calls(),
        vec![
            (at(12, 1, 0), names(&["patients"])),
            (at(12, 3, 0), names(&["patients"])),
        ]
    );
    assert_eq!(summary.skipped_ticks, 2);
    assert_eq!(state.health().jobs["patients"].skipped_ticks, 2);
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(r#"reqsync_skipped_ticks_total{job="patients"} 2"#),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn another_jobs_tick_waits_for_the_running_run_then_starts() {
    let clock = TokioClock::starting_at(base());
    let runner = FakeRunner::new(clock, Duration::from_secs(90));
    let (summary, _) = drive(
        vec![
            job("patients", "0 1 12 * * *"),
            job("vaccine-doses", "30 1 12 * * *"),
        ],
        runner.clone(),
        clock,
        Duration::from_secs(300),
    )
    .await;
    // Never two runs at once: the dose run starts when the patient run ends (12:02:30).
    assert_eq!(
        runner.calls(),
        vec![
            (at(12, 1, 0), names(&["patients"])),
            (at(12, 2, 30), names(&["vaccine-doses"])),
        ]
    );
    assert_eq!(summary.skipped_ticks, 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_the_run_and_waits_for_it() {
    let clock = TokioClock::starting_at(base());
    let runner = FakeRunner::new(clock, Duration::from_secs(3600));
    let (summary, state) = drive(
        vec![job("patients", "* * * * *")],
        runner.clone(),
        clock,
        Duration::from_secs(40), // 12:01:10: ten seconds into the first run
    )
    .await;
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(summary.runs, 1);
    let health = state.health();
    let last = health.jobs["patients"].last_run.clone().expect("last run");
    assert_eq!(last.outcome, "abandoned");
    assert_eq!(last.finished, at(12, 1, 10));
    assert_eq!(health.status, "failing");
    assert!(health.running.is_empty());
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(r#"reqsync_runs_total{job="patients",outcome="abandoned"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_shows_its_class_and_no_success() {
    let clock = TokioClock::starting_at(base());
    let runner = Arc::new(FakeRunner {
        clock,
        takes: Duration::from_secs(5),
        outcome: Outcome::Failed(FailureClass::Delivery),
        calls: Mutex::new(Vec::new()),
    });
    let (_, state) = drive(
        vec![job("patients", "* * * * *")],
        runner,
        clock,
        Duration::from_secs(60),
    )
    .await;
    let health = state.health();
    assert_eq!(health.status, "failing");
    assert_eq!(health.jobs["patients"].last_success, None);
    let metrics = state.metrics.render();
    assert!(
        metrics.contains(r#"reqsync_runs_total{job="patients",outcome="delivery"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reqsync_rows_read_total{job="patients"} 0"#),
        "{metrics}"
    );
}

#[test]
fn every_job_appears_in_the_metrics_before_any_run() {
    let metrics = Metrics::new(["patients", "vaccine-doses"]);
    let text = metrics.render();
    for name in [
        "reqsync_runs_total",
        "reqsync_last_success_timestamp_seconds",
        "reqsync_rows_read_total",
        "reqsync_rows_emitted_total",
        "reqsync_rows_rejected_total",
        "reqsync_records_sent_total",
        "reqsync_skipped_ticks_total",
        "reqsync_run_duration_seconds_bucket",
        "reqsync_run_in_progress",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(text.contains(r#"reqsync_records_sent_total{job="vaccine-doses"} 0"#));
}

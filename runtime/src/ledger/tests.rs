use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::runs::{JobStart, JobTotals};
use super::window::{JobHistory, job_window};
use super::*;
use crate::reqcheck::window::WindowBasis;

fn tz() -> Tz {
    chrono_tz::America::Chicago
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn job<'a>(name: &'a str, window: NaiveDateTime) -> JobStart<'a> {
    JobStart {
        job: name,
        window_start: window,
        window_basis: "heartbeat",
        module_sha256: "m",
        query_sha256: "q",
        template_sha256: "t",
    }
}

/// A run of one job that ends with `status`.
fn record_run(
    ledger: &Ledger,
    kind: RunKind,
    started: &str,
    window: &str,
    status: RunStatus,
) -> RunId {
    let run = ledger.begin_run(kind, utc(started)).unwrap();
    ledger
        .begin_job(run, &job("patients", local(window)))
        .unwrap();
    ledger
        .finish_job(run, "patients", status, &JobTotals::default())
        .unwrap();
    ledger.finish_run(run, status, None, None).unwrap();
    run
}

#[test]
fn a_failed_run_after_a_complete_one_does_not_move_the_resume_point() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    record_run(
        &ledger,
        RunKind::Full,
        "2026-11-01T12:00:00Z",
        "1900-01-01 00:00:00",
        RunStatus::Complete,
    );
    // The next run sent some requests (moving ReqCheck's heartbeat) and failed.
    record_run(
        &ledger,
        RunKind::Sync,
        "2026-11-02T12:00:00Z",
        "2026-10-31 06:00:00",
        RunStatus::Failed,
    );
    let history = ledger.job_history("patients").unwrap();
    assert_eq!(
        history.last_complete_start,
        Some(utc("2026-11-01T12:00:00Z"))
    );
    assert!(history.last_complete_finish.is_some());
    // The heartbeat says 2026-11-02 12:05Z: the window starts at the complete run's start
    // minus the look-back instead, in clinic time (CDT, UTC-5, on 31 October).
    let heartbeat = (local("2026-11-01 06:05:00"), WindowBasis::Heartbeat);
    // ReqCheck received the failed run's requests after the complete run had finished.
    let received = (Utc::now() + Duration::hours(1)).fixed_offset();
    let (start, basis) = job_window(heartbeat, Some(received), &history, Duration::days(1), tz());
    assert_eq!(basis, WindowBasis::Ledger);
    assert_eq!(start, local("2026-10-31 07:00:00"));
}

#[test]
fn after_a_complete_run_the_next_window_starts_at_its_start_without_alarm() {
    let history = JobHistory {
        last_complete_start: Some(utc("2026-11-10T12:00:00Z")),
        last_complete_finish: Some(utc("2026-11-10T12:03:00Z")),
        earliest_unfinished_window: None,
    };
    // The heartbeat is that run's own last import (CST, UTC-6).
    let received = DateTime::parse_from_rfc3339("2026-11-10T12:02:59Z").unwrap();
    let heartbeat = (local("2026-11-09 06:02:59"), WindowBasis::Heartbeat);
    let (start, basis) = job_window(heartbeat, Some(received), &history, Duration::days(1), tz());
    assert_eq!(basis, WindowBasis::LastCompleteRun);
    assert_eq!(start, local("2026-11-09 06:00:00"));
}

#[test]
fn a_heartbeat_earlier_than_the_ledger_wins() {
    let history = JobHistory {
        last_complete_start: Some(utc("2026-11-05T12:00:00Z")),
        last_complete_finish: Some(utc("2026-11-05T12:01:00Z")),
        earliest_unfinished_window: None,
    };
    let heartbeat = (local("2026-11-01 00:00:00"), WindowBasis::Heartbeat);
    assert_eq!(
        job_window(heartbeat, None, &history, Duration::days(1), tz()),
        heartbeat
    );
}

#[test]
fn an_abandoned_first_sync_is_resumed_from_its_own_window_start() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let run = ledger
        .begin_run(RunKind::Sync, utc("2026-11-01T12:00:00Z"))
        .unwrap();
    ledger
        .begin_job(run, &job("patients", local("1900-01-01 00:00:00")))
        .unwrap();
    // Killed: nothing more is written. The next run finds it `running` and marks it.
    let next = ledger
        .begin_run(RunKind::Sync, utc("2026-11-01T13:00:00Z"))
        .unwrap();
    assert_eq!(
        ledger.run(run, false).unwrap().status,
        RunStatus::Interrupted
    );
    assert_eq!(ledger.run(next, false).unwrap().status, RunStatus::Running);
    let history = ledger.job_history("patients").unwrap();
    assert_eq!(
        history.earliest_unfinished_window,
        Some(local("1900-01-01 00:00:00"))
    );
    let (start, basis) = job_window(
        (local("2026-10-31 06:00:00"), WindowBasis::Heartbeat),
        Some(utc("2026-11-01T12:30:00Z").fixed_offset()),
        &history,
        Duration::days(1),
        tz(),
    );
    assert_eq!(
        (start, basis),
        (local("1900-01-01 00:00:00"), WindowBasis::Ledger)
    );
}

#[test]
fn replays_and_dry_runs_never_count_as_complete_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    record_run(
        &ledger,
        RunKind::Sync,
        "2026-11-01T12:00:00Z",
        "2026-10-30 00:00:00",
        RunStatus::Complete,
    );
    record_run(
        &ledger,
        RunKind::Replay,
        "2026-11-03T12:00:00Z",
        "1900-01-01 00:00:00",
        RunStatus::Complete,
    );
    record_run(
        &ledger,
        RunKind::DryRun,
        "2026-11-04T12:00:00Z",
        "2026-10-30 00:00:00",
        RunStatus::Complete,
    );
    assert_eq!(
        ledger.job_history("patients").unwrap().last_complete_start,
        Some(utc("2026-11-01T12:00:00Z"))
    );
    assert_eq!(ledger.job_history("doses").unwrap(), JobHistory::default());
}

#[test]
fn full_and_initial_start_windows_are_never_moved() {
    let history = JobHistory {
        last_complete_start: None,
        last_complete_finish: None,
        earliest_unfinished_window: Some(local("2000-01-01 00:00:00")),
    };
    for basis in [WindowBasis::Full, WindowBasis::InitialStart] {
        let w = (local("2016-01-01 00:00:00"), basis);
        assert_eq!(job_window(w, None, &history, Duration::days(1), tz()), w);
    }
}

#[test]
fn requests_are_recorded_before_they_leave_and_answered_after() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let run = ledger.begin_run(RunKind::Sync, Utc::now()).unwrap();
    ledger
        .begin_job(run, &job("patients", local("2026-01-01 00:00:00")))
        .unwrap();
    ledger
        .request_sending(run, "patients", 1, "/patient_data", 500, 1234, "abc")
        .unwrap();
    ledger
        .request_sending(run, "patients", 2, "/patient_data", 10, 99, "def")
        .unwrap();
    ledger
        .request_answered(
            run,
            "patients",
            1,
            &Answer::Accepted {
                partial_failure: true,
                data_import_id: 7,
                error_ids: &[11, 12],
            },
        )
        .unwrap();
    let record = ledger.run(run, true).unwrap();
    let requests = &record.jobs[0].requests;
    assert_eq!(requests[0].status, "partial_failure");
    assert_eq!(requests[0].data_import_id, Some(7));
    assert_eq!(requests[0].error_ids, vec![11, 12]);
    // The second never got an answer (the process died mid-request).
    assert_eq!(requests[1].status, "sending");
    assert!(requests[1].answered_at.is_none());
}

#[test]
fn quarantine_keeps_first_sighting_counts_repeats_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let rows = [Rejection {
        key: "1001",
        group: Some("17"),
        findings: vec!["dob:date-in-future", "dob:required"],
    }];
    let t1 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let t2 = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
    ledger
        .quarantine_rows(1, "doses", "sha-a", rows.clone(), t1)
        .unwrap();
    ledger
        .quarantine_rows(2, "doses", "sha-b", rows.clone(), t2)
        .unwrap();
    let e = &ledger.quarantine(&QuarantineFilter::default()).unwrap()[0];
    assert_eq!((e.first_run, e.last_run, e.times_seen), (1, 2, 2));
    assert_eq!(e.module_sha256, "sha-b");
    assert_eq!(e.group.as_deref(), Some("17"));
    assert_eq!(e.fields(), vec!["dob"]);
    assert_eq!(e.codes(), vec!["date-in-future", "required"]);

    let passed: HashSet<String> = ["1001".to_string()].into();
    assert_eq!(
        ledger.resolve_quarantined(3, "doses", &passed, t2).unwrap(),
        1
    );
    assert!(ledger.open_quarantine_keys("doses").unwrap().is_empty());
    assert!(
        ledger
            .quarantine(&QuarantineFilter::default())
            .unwrap()
            .is_empty()
    );
    let all = QuarantineFilter {
        include_resolved: true,
        ..QuarantineFilter::default()
    };
    assert_eq!(ledger.quarantine(&all).unwrap()[0].resolved_run, Some(3));

    // Rejected again: open again, first sighting kept.
    ledger
        .quarantine_rows(4, "doses", "sha-b", rows.clone(), t2)
        .unwrap();
    let e = &ledger.quarantine(&QuarantineFilter::default()).unwrap()[0];
    assert_eq!(
        (e.first_run, e.times_seen, e.resolved_at.clone()),
        (1, 3, None)
    );
}

#[test]
fn a_second_run_of_the_same_project_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = RunLock::acquire(dir.path()).unwrap();
    let e = RunLock::acquire(dir.path()).unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, RunLockError::Busy { .. }), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    RunLock::acquire(dir.path()).expect("free again once released");
}

#[test]
fn a_ledger_from_a_newer_reqsync_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Ledger::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(ledger_path(dir.path())).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = Ledger::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("newer reqsync"), "{e}");
}

#[test]
fn resume_start_never_precedes_the_full_extract_start() {
    let history = JobHistory {
        last_complete_start: Some(utc("1900-01-01T00:00:00Z")),
        last_complete_finish: None,
        earliest_unfinished_window: None,
    };
    let start = history.resume_start(Duration::days(30), tz()).unwrap();
    assert_eq!(
        start,
        NaiveDate::from_ymd_opt(1900, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
    );
}

/// `reqsync history` and a run's summary print a window start the same way (the ledger keeps it
/// as `2026-11-02T01:53:00.000`, the summary prints `2026-11-02 01:53:00`).
#[test]
fn history_prints_a_window_start_as_the_run_summary_does() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    for window in [
        local("2026-11-02 01:53:00"),
        local("2026-11-02 01:53:00") + Duration::milliseconds(250),
    ] {
        let run = ledger
            .begin_run(RunKind::Sync, utc("2026-11-02T08:00:00Z"))
            .unwrap();
        ledger.begin_job(run, &job("patients", window)).unwrap();
        let stored = ledger.recent_runs(1, false).unwrap().remove(0);
        assert_eq!(stored.jobs[0].window_start_text(), window.to_string());
    }
    assert_eq!(
        local("2026-11-02 01:53:00").to_string(),
        "2026-11-02 01:53:00"
    );
}

#[test]
fn a_run_that_ended_before_any_job_began_is_every_jobs_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let done = record_run(
        &ledger,
        RunKind::Sync,
        "2026-11-01T02:00:00Z",
        "2026-10-31 02:00:00",
        RunStatus::Complete,
    );
    // ReqCheck unreachable: the run fails before its first job.
    let failed = ledger
        .begin_run(RunKind::Sync, utc("2026-11-02T02:00:00Z"))
        .unwrap();
    ledger
        .finish_run(failed, RunStatus::Failed, Some(("delivery", "x")), None)
        .unwrap();
    // A replay and a dry run are not the scheduled work the overview is about.
    record_run(
        &ledger,
        RunKind::Replay,
        "2026-11-02T03:00:00Z",
        "2026-10-31 02:00:00",
        RunStatus::Complete,
    );
    let overview = ledger.job_overview("patients").unwrap();
    let last = overview.last_run.unwrap();
    assert_eq!((last.run_id, last.status), (failed, RunStatus::Failed));
    assert_eq!(last.error_class.as_deref(), Some("delivery"));
    assert_eq!(overview.last_complete.unwrap().run_id, done);

    // The next run reaches the job: its row is the last run again.
    let next = record_run(
        &ledger,
        RunKind::Sync,
        "2026-11-03T02:00:00Z",
        "2026-11-01 02:00:00",
        RunStatus::Complete,
    );
    assert_eq!(
        ledger
            .job_overview("patients")
            .unwrap()
            .last_run
            .unwrap()
            .run_id,
        next
    );
    let totals = ledger
        .run_totals_since(utc("2026-11-02T00:00:00Z"))
        .unwrap();
    let ids: Vec<RunId> = totals.iter().map(|t| t.run_id).collect();
    assert_eq!(
        ids,
        [failed, next],
        "sync and full runs since then, oldest first"
    );
}

#[test]
fn open_quarantine_counts_each_entry_once_per_finding_code() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let run = ledger.begin_run(RunKind::Sync, Utc::now()).unwrap();
    let rows = [
        Rejection {
            key: "1",
            group: None,
            findings: vec!["dob:required", "first_name:required"],
        },
        Rejection {
            key: "2",
            group: None,
            findings: vec!["dob:not-a-date"],
        },
        Rejection {
            key: "3",
            group: None,
            findings: vec!["dob:required"],
        },
    ];
    ledger
        .quarantine_rows(run, "patients", "m", rows, Utc::now())
        .unwrap();
    ledger
        .resolve_quarantined(
            run,
            "patients",
            &HashSet::from(["3".to_string()]),
            Utc::now(),
        )
        .unwrap();
    let counts: Vec<(String, i64)> = ledger
        .open_quarantine_by_code()
        .unwrap()
        .into_iter()
        .map(|c| (c.code, c.entries))
        .collect();
    assert_eq!(
        counts,
        [("not-a-date".to_string(), 1), ("required".to_string(), 1)]
    );
    assert_eq!(ledger.job_overview("patients").unwrap().open_quarantine, 2);
}

#[test]
fn a_version_1_ledger_gains_the_notification_tables_and_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_path(dir.path());
    {
        // A ledger as reqsync wrote it before notifications: version 1, one run.
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .begin_run(RunKind::Sync, utc("2026-12-01T02:00:00Z"))
            .unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE notifications; DROP TABLE notify_state; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.recent_runs(10, false).unwrap().len(), 1);
    assert!(ledger.notify_state().unwrap().is_none());
    // Notifications start after the runs already there.
    ledger.notify_init(utc("2026-12-02T00:00:00Z")).unwrap();
    assert_eq!(ledger.notify_state().unwrap().unwrap().last_run, 1);
    assert!(ledger.notifications(10).unwrap().is_empty());
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

#[test]
fn an_outbox_row_is_delivered_by_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let now = utc("2026-12-07T02:00:00Z");
    ledger
        .notification_add(
            now,
            &["email".to_string(), "webhook-1".to_string()],
            &crate::ledger::NewNotification {
                event: "test".into(),
                run_id: None,
                notice: "{}".into(),
            },
        )
        .unwrap();
    let pending = ledger.notifications_pending().unwrap();
    assert_eq!(pending.len(), 2);
    let id = pending[0].id;
    let until = now + Duration::minutes(10);
    assert!(ledger.notification_claim(id, now, until).unwrap());
    // Another process, meanwhile: the row is taken.
    assert!(!ledger.notification_claim(id, now, until).unwrap());
    // A failed attempt releases it for the next round; a delivered row is never taken again.
    ledger
        .notification_attempted(id, now, Some("refused"))
        .unwrap();
    assert!(ledger.notification_claim(id, now, until).unwrap());
    ledger.notification_attempted(id, now, None).unwrap();
    assert!(!ledger.notification_claim(id, now, until).unwrap());
    // A claim that outlived its process expires.
    let other = pending[1].id;
    assert!(ledger.notification_claim(other, now, until).unwrap());
    let later = until + Duration::seconds(1);
    assert!(ledger.notification_claim(other, later, later).unwrap());
    let rows = ledger.notifications(10).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.id == id && r.delivered && r.attempts == 2)
    );
}

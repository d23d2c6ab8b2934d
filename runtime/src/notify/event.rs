//! Notices, and how a round of detection turns the ledger's runs into them.
//!
//! A notice holds counts, run ids, error classes and job names only: never a row value, a
//! patient number or an error message (messages name keys; the class says enough to act on,
//! and `reqsync history --run ID` shows the rest on the machine that ran it).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::settings::{EventKind, NotifyConfig};
use crate::ledger::{NotifySnapshot, NotifyState, RunId, RunKind, RunRecord, RunStatus};

/// One notice, as the outbox stores it and every channel renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub event: EventKind,
    pub title: String,
    pub at: DateTime<Utc>,
    /// The machine that ran reqsync, and its config file: which installation is talking.
    pub host: String,
    pub config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `config`, `source`, `transform`, `delivery`, `resource`, `interrupted`,
    /// `partial_failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<StaleFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<RecoveredFacts>,
}

/// One job of the run a notice is about: its status and counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLine {
    pub job: String,
    pub status: String,
    pub read: i64,
    pub emitted: i64,
    pub rejected: i64,
    pub sent: i64,
    pub acknowledged: i64,
    /// Requests ReqCheck answered `partial_failure`, and the record errors it reported.
    pub partial_failures: i64,
    pub record_errors: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineFacts {
    pub open: i64,
    pub threshold: u64,
    pub by_job: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleFacts {
    /// `stale_after`, as configured (`26h`).
    pub stale_after: String,
    /// Whole hours since the last complete run (or since notifications were set up).
    pub hours: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_complete_run: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_complete_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredFacts {
    /// Failed or partial runs since the episode began (0 after a stale notice only).
    pub failed_runs: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_class: Option<String>,
    pub after_stale: bool,
}

/// Who is talking: the host and config file every notice names.
#[derive(Debug, Clone)]
pub struct Origin {
    pub host: String,
    pub config: String,
}

impl Origin {
    pub fn notice(&self, event: EventKind, title: String, at: DateTime<Utc>) -> Notice {
        Notice {
            event,
            title,
            at,
            host: self.host.clone(),
            config: self.config.clone(),
            run_id: None,
            run_kind: None,
            status: None,
            error_class: None,
            jobs: Vec::new(),
            quarantine: None,
            stale: None,
            recovered: None,
        }
    }

    fn run_notice(
        &self,
        event: EventKind,
        title: String,
        at: DateTime<Utc>,
        run: &RunRecord,
    ) -> Notice {
        let mut notice = self.notice(event, title, at);
        notice.run_id = Some(run.id);
        notice.run_kind = Some(run.kind.as_str().to_string());
        notice.status = Some(run.status.as_str().to_string());
        notice.error_class = run.error_class.clone();
        notice.jobs = run
            .jobs
            .iter()
            .map(|j| JobLine {
                job: j.job.clone(),
                status: j.status.as_str().to_string(),
                read: j.read,
                emitted: j.emitted,
                rejected: j.rejected,
                sent: j.sent,
                acknowledged: j.acknowledged,
                partial_failures: j
                    .requests
                    .iter()
                    .filter(|r| r.status == "partial_failure")
                    .count() as i64,
                record_errors: j.requests.iter().map(|r| r.error_ids.len() as i64).sum(),
            })
            .collect();
        notice
    }
}

/// A failure that happened before the run was recorded in the ledger (the ReqCheck
/// credentials missing, the source URL invalid): its class only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnrecordedFailure {
    pub class: &'static str,
}

/// Turns what the ledger holds into the new notification state and the notices to send.
///
/// - every finished `sync`/`full` run after the last one looked at: a failure (or a partial
///   failure) is notified when it starts an episode or its class differs from the one last
///   notified, so a job failing every 15 minutes overnight sends one notice, not forty; a
///   complete run ends the episode, with a "recovered" notice if a failure or stale notice
///   was sent (dry runs, replays and runs stopped on shutdown are not looked at);
/// - no complete run for `stale_after`: once per episode;
/// - open quarantine entries past the threshold: once each time it is crossed.
pub(crate) fn decide(
    config: &NotifyConfig,
    origin: &Origin,
    snapshot: NotifySnapshot,
    unrecorded: Option<UnrecordedFailure>,
    now: DateTime<Utc>,
) -> (NotifyState, Vec<Notice>) {
    let mut state = snapshot.state;
    let mut notices = Vec::new();
    for run in &snapshot.runs {
        state.last_run = state.last_run.max(run.id);
        if !matches!(run.kind, RunKind::Sync | RunKind::Full) {
            continue;
        }
        let at = run
            .finished_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.with_timezone(&Utc));
        match run.status {
            RunStatus::Complete => {
                let notified = state.failing_class.is_some() || state.stale_notified_at.is_some();
                if notified && config.enabled(EventKind::Recovered) {
                    let mut notice = origin.run_notice(
                        EventKind::Recovered,
                        recovered_title(run.id, state.failed_runs),
                        now,
                        run,
                    );
                    notice.recovered = Some(RecoveredFacts {
                        failed_runs: state.failed_runs,
                        failing_since: state.failing_since,
                        previous_class: state.failing_class.clone(),
                        after_stale: state.stale_notified_at.is_some(),
                    });
                    notices.push(notice);
                }
                state.failing_class = None;
                state.failing_since = None;
                state.failed_runs = 0;
                state.stale_notified_at = None;
            }
            RunStatus::Failed | RunStatus::Interrupted | RunStatus::Partial => {
                let (kind, class) = match run.status {
                    RunStatus::Partial => {
                        (EventKind::PartialFailure, "partial_failure".to_string())
                    }
                    RunStatus::Interrupted => (EventKind::RunFailed, "interrupted".to_string()),
                    _ => (
                        EventKind::RunFailed,
                        run.error_class.clone().unwrap_or_else(|| "unknown".into()),
                    ),
                };
                let title = match kind {
                    EventKind::PartialFailure => format!(
                        "reqsync: run {} partly failed: ReqCheck stored imports with record errors",
                        run.id
                    ),
                    _ => format!("reqsync: run {} failed ({class})", run.id),
                };
                let mut notice = origin.run_notice(kind, title, now, run);
                if run.status != RunStatus::Failed {
                    notice.error_class = Some(class.clone());
                }
                open_episode(config, &mut state, &mut notices, kind, class, at, notice);
            }
            _ => {}
        }
    }
    if let Some(failure) = unrecorded
        && config.enabled(EventKind::RunFailed)
    {
        let mut notice = origin.notice(
            EventKind::RunFailed,
            format!(
                "reqsync: a run failed before it started ({})",
                failure.class
            ),
            now,
        );
        notice.error_class = Some(failure.class.to_string());
        open_episode(
            config,
            &mut state,
            &mut notices,
            EventKind::RunFailed,
            failure.class.to_string(),
            now,
            notice,
        );
    }
    if config.enabled(EventKind::Stale) && state.stale_notified_at.is_none() {
        let reference = snapshot
            .last_complete
            .map_or(state.created_at, |(_, at)| at);
        let since = (now - reference).to_std().unwrap_or(Duration::ZERO);
        if since > config.stale_after {
            let hours = (since.as_secs() / 3600) as i64;
            let mut notice = origin.notice(
                EventKind::Stale,
                match snapshot.last_complete {
                    Some(_) => format!("reqsync: no complete run for {hours} h"),
                    None => format!(
                        "reqsync: no complete run yet, {hours} h after notifications were set up"
                    ),
                },
                now,
            );
            notice.stale = Some(StaleFacts {
                stale_after: humantime::format_duration(config.stale_after).to_string(),
                hours,
                last_complete_run: snapshot.last_complete.map(|(id, _)| id),
                last_complete_at: snapshot.last_complete.map(|(_, at)| at),
            });
            notices.push(notice);
            state.stale_notified_at = Some(now);
        }
    }
    let open: i64 = snapshot.quarantine.iter().map(|(_, n)| n).sum();
    if open > i64::try_from(config.quarantine_threshold).unwrap_or(i64::MAX) {
        if !state.quarantine_notified && config.enabled(EventKind::Quarantine) {
            let mut notice = origin.notice(
                EventKind::Quarantine,
                format!(
                    "reqsync: {open} rows in quarantine (threshold {})",
                    config.quarantine_threshold
                ),
                now,
            );
            notice.quarantine = Some(QuarantineFacts {
                open,
                threshold: config.quarantine_threshold,
                by_job: snapshot.quarantine.iter().cloned().collect(),
            });
            notices.push(notice);
            state.quarantine_notified = true;
        }
    } else {
        // Back under: the next crossing is news again.
        state.quarantine_notified = false;
    }
    (state, notices)
}

/// Counts a failed run into the episode; notifies it when it opens the episode or changes its
/// class (and the event is enabled: a failure nobody was told about is not "recovered" from).
fn open_episode(
    config: &NotifyConfig,
    state: &mut NotifyState,
    notices: &mut Vec<Notice>,
    kind: EventKind,
    class: String,
    at: DateTime<Utc>,
    notice: Notice,
) {
    if state.failing_class.as_deref() != Some(class.as_str()) && config.enabled(kind) {
        if state.failing_class.is_none() {
            state.failing_since = Some(at);
            state.failed_runs = 0;
        }
        state.failing_class = Some(class);
        notices.push(notice);
    }
    if state.failing_class.is_some() {
        state.failed_runs += 1;
    }
}

fn recovered_title(run: RunId, failed_runs: i64) -> String {
    match failed_runs {
        0 => format!("reqsync: recovered: run {run} complete"),
        1 => format!("reqsync: recovered: run {run} complete after 1 failed run"),
        n => format!("reqsync: recovered: run {run} complete after {n} failed runs"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;

    use super::*;
    use crate::ledger::JobRunRecord;

    fn config(on: &[EventKind]) -> NotifyConfig {
        NotifyConfig {
            on: on.iter().copied().collect::<BTreeSet<_>>(),
            quarantine_threshold: 10,
            stale_after: Duration::from_secs(26 * 3600),
            email: None,
            webhooks: Vec::new(),
        }
    }

    fn all() -> NotifyConfig {
        config(&EventKind::CONFIGURABLE)
    }

    fn origin() -> Origin {
        Origin {
            host: "clinic-host".into(),
            config: "/srv/reqsync/reqsync.toml".into(),
        }
    }

    fn t(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, hour, 0, 0).unwrap()
    }

    fn state() -> NotifyState {
        NotifyState {
            created_at: t(0),
            last_run: 0,
            failing_class: None,
            failing_since: None,
            failed_runs: 0,
            stale_notified_at: None,
            quarantine_notified: false,
        }
    }

    fn run(id: RunId, status: RunStatus, class: Option<&str>) -> RunRecord {
        RunRecord {
            id,
            kind: RunKind::Sync,
            status,
            started_at: t(1).to_rfc3339(),
            finished_at: Some(t(1).to_rfc3339()),
            host: "clinic-host".into(),
            pid: 1,
            heartbeat: None,
            error_class: class.map(str::to_string),
            error: Some("job `patients`: row patno=12345 …".into()),
            report_file: None,
            jobs: vec![JobRunRecord {
                job: "patients".into(),
                status,
                window_start: "2026-12-06T00:00:00.000".into(),
                window_basis: "heartbeat".into(),
                started_at: t(1).to_rfc3339(),
                finished_at: None,
                read: 21,
                emitted: 20,
                skipped: 0,
                rejected: 1,
                sent: 20,
                acknowledged: 20,
                module_sha256: String::new(),
                query_sha256: String::new(),
                template_sha256: String::new(),
                requests: Vec::new(),
            }],
        }
    }

    /// Runs `decide` over `runs` at `now` from `state`.
    fn round(
        config: &NotifyConfig,
        state: NotifyState,
        runs: Vec<RunRecord>,
        now: DateTime<Utc>,
    ) -> (NotifyState, Vec<Notice>) {
        let last_complete = runs
            .iter()
            .rev()
            .find(|r| r.status == RunStatus::Complete)
            .map(|r| (r.id, now));
        decide(
            config,
            &origin(),
            NotifySnapshot {
                state,
                runs,
                last_complete,
                quarantine: Vec::new(),
            },
            None,
            now,
        )
    }

    fn events(notices: &[Notice]) -> Vec<EventKind> {
        notices.iter().map(|n| n.event).collect()
    }

    #[test]
    fn a_failure_episode_sends_one_notice_per_class_then_recovered() {
        let c = all();
        let (s, n) = round(
            &c,
            state(),
            vec![
                run(1, RunStatus::Failed, Some("source")),
                run(2, RunStatus::Failed, Some("source")),
                run(3, RunStatus::Failed, Some("delivery")),
            ],
            t(2),
        );
        assert_eq!(events(&n), [EventKind::RunFailed, EventKind::RunFailed]);
        assert_eq!(n[0].run_id, Some(1));
        assert_eq!(n[0].error_class.as_deref(), Some("source"));
        assert_eq!(n[1].error_class.as_deref(), Some("delivery"));
        assert_eq!(n[0].jobs[0].job, "patients");
        assert_eq!((s.last_run, s.failed_runs), (3, 3));
        assert_eq!(s.failing_class.as_deref(), Some("delivery"));
        // The error text (which names keys) is never part of a notice.
        let json = serde_json::to_string(&n).unwrap();
        assert!(!json.contains("12345"), "{json}");

        let (s, n) = round(&c, s, vec![run(4, RunStatus::Complete, None)], t(3));
        assert_eq!(events(&n), [EventKind::Recovered]);
        let r = n[0].recovered.as_ref().unwrap();
        assert_eq!(r.failed_runs, 3);
        assert_eq!(r.previous_class.as_deref(), Some("delivery"));
        assert_eq!(
            n[0].title,
            "reqsync: recovered: run 4 complete after 3 failed runs"
        );
        assert_eq!(s.failing_class, None);
        // A complete run after a complete run is not news.
        let (_, n) = round(&c, s, vec![run(5, RunStatus::Complete, None)], t(4));
        assert!(n.is_empty());
    }

    #[test]
    fn partial_failures_interruptions_and_other_kinds() {
        let c = all();
        let mut dry = run(2, RunStatus::Failed, Some("config"));
        dry.kind = RunKind::DryRun;
        let (s, n) = round(
            &c,
            state(),
            vec![
                run(1, RunStatus::Partial, None),
                dry,
                run(3, RunStatus::Interrupted, None),
                run(4, RunStatus::Abandoned, None),
            ],
            t(2),
        );
        assert_eq!(
            events(&n),
            [EventKind::PartialFailure, EventKind::RunFailed]
        );
        assert_eq!(n[0].error_class.as_deref(), Some("partial_failure"));
        assert_eq!(n[1].error_class.as_deref(), Some("interrupted"));
        assert_eq!(s.last_run, 4);
    }

    #[test]
    fn a_disabled_failure_event_opens_no_episode_and_so_no_recovery() {
        let c = config(&[EventKind::Recovered]);
        let (s, n) = round(
            &c,
            state(),
            vec![
                run(1, RunStatus::Failed, Some("source")),
                run(2, RunStatus::Complete, None),
            ],
            t(2),
        );
        assert!(n.is_empty(), "{n:?}");
        assert_eq!(s.failing_class, None);
    }

    #[test]
    fn stale_is_sent_once_per_episode_and_a_complete_run_ends_it() {
        let c = all();
        // No run at all: measured from when notifications were set up.
        let (s, n) = round(&c, state(), Vec::new(), t(0) + chrono::Duration::hours(27));
        assert_eq!(events(&n), [EventKind::Stale]);
        assert_eq!(n[0].stale.as_ref().unwrap().hours, 27);
        let (s, n) = round(&c, s, Vec::new(), t(0) + chrono::Duration::hours(30));
        assert!(n.is_empty());
        let (s, n) = round(
            &c,
            s,
            vec![run(1, RunStatus::Complete, None)],
            t(0) + chrono::Duration::hours(31),
        );
        assert_eq!(events(&n), [EventKind::Recovered]);
        assert!(n[0].recovered.as_ref().unwrap().after_stale);
        assert_eq!(s.stale_notified_at, None);
        // Not stale yet: within 26 h of the last complete run.
        let (_, n) = round(&c, s, Vec::new(), t(1) + chrono::Duration::hours(25));
        assert!(n.is_empty());
    }

    #[test]
    fn the_quarantine_threshold_is_notified_each_time_it_is_crossed() {
        let c = all();
        let snapshot = |state, open: i64| NotifySnapshot {
            state,
            runs: Vec::new(),
            last_complete: Some((1, t(1))),
            quarantine: vec![("patients".into(), open), ("vaccine-doses".into(), 1)],
        };
        let (s, n) = decide(&c, &origin(), snapshot(state(), 9), None, t(2));
        assert!(n.is_empty(), "10 is not past 10");
        let (s, n) = decide(&c, &origin(), snapshot(s, 10), None, t(2));
        assert_eq!(events(&n), [EventKind::Quarantine]);
        let q = n[0].quarantine.as_ref().unwrap();
        assert_eq!((q.open, q.threshold, q.by_job["patients"]), (11, 10, 10));
        let (s, n) = decide(&c, &origin(), snapshot(s, 50), None, t(2));
        assert!(n.is_empty());
        let (s, _) = decide(&c, &origin(), snapshot(s, 2), None, t(2));
        let (_, n) = decide(&c, &origin(), snapshot(s, 12), None, t(2));
        assert_eq!(events(&n), [EventKind::Quarantine]);
    }

    #[test]
    fn a_failure_before_the_ledger_is_notified_by_class() {
        let (s, n) = decide(
            &all(),
            &origin(),
            NotifySnapshot {
                state: state(),
                runs: Vec::new(),
                last_complete: Some((1, t(1))),
                quarantine: Vec::new(),
            },
            Some(UnrecordedFailure { class: "config" }),
            t(2),
        );
        assert_eq!(events(&n), [EventKind::RunFailed]);
        assert_eq!(n[0].run_id, None);
        assert_eq!(
            n[0].title,
            "reqsync: a run failed before it started (config)"
        );
        assert_eq!(s.failing_class.as_deref(), Some("config"));
    }
}

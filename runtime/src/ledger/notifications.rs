//! What `[notify]` keeps in the ledger: which runs it has looked at, which notices are open
//! (so that each is sent once), and the outbox of notices not yet delivered.
//!
//! Detection and recording happen in one `BEGIN IMMEDIATE` transaction ([`Ledger::notify_round`]),
//! so a daemon tick and a `reqsync run` finishing at the same moment cannot both send the same
//! notice. Counts, run ids, classes and job names only.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::runs::{parse_stamp, stamp};
use super::{Ledger, LedgerError, RunId, RunRecord};

/// The one row of `notify_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyState {
    /// When notifications were first set up: the reference for "no complete run for N hours"
    /// while no run has completed yet.
    pub created_at: DateTime<Utc>,
    /// Runs up to this id have been looked at (a run still going stops the scan).
    pub last_run: RunId,
    /// An open failure episode: the class of the failure last notified (`partial_failure` for
    /// a partial failure). Cleared by a complete run.
    pub failing_class: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed or partial runs since the episode began (the "recovered" notice says how many).
    pub failed_runs: i64,
    /// When "no complete run" was notified; cleared by a complete run.
    pub stale_notified_at: Option<DateTime<Utc>>,
    /// The quarantine was over its threshold when last looked at, and that was notified.
    pub quarantine_notified: bool,
}

/// What a round of detection sees, read inside its transaction.
#[derive(Debug, Clone)]
pub struct NotifySnapshot {
    pub state: NotifyState,
    /// Finished runs after `state.last_run`, oldest first, with their jobs and requests; the
    /// scan stops before the first run still going.
    pub runs: Vec<RunRecord>,
    /// The newest complete `sync` or `full` run: its id and when it finished.
    pub last_complete: Option<(RunId, DateTime<Utc>)>,
    /// Open quarantine entries per job.
    pub quarantine: Vec<(String, i64)>,
}

/// A notice to put in the outbox, once per channel.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub event: String,
    pub run_id: Option<RunId>,
    /// The notice as JSON (counts, run ids, classes, job names).
    pub notice: String,
}

/// An outbox row not yet delivered.
#[derive(Debug, Clone)]
pub struct PendingNotification {
    pub id: i64,
    pub event: String,
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub notice: String,
    pub attempts: i64,
}

/// One outbox row, as `reqsync notify` commands and tests read it.
#[derive(Debug, Clone)]
pub struct NotificationRecord {
    pub id: i64,
    pub event: String,
    pub channel: String,
    pub run_id: Option<RunId>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub delivered: bool,
    pub gave_up: bool,
}

impl Ledger {
    /// Creates the notification state if it does not exist yet, starting after the newest run
    /// in the ledger: turning notifications on does not send notices about old runs.
    pub(crate) fn notify_init(&self, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO notify_state (id, created_at, last_run)
                 VALUES (1, ?1, (SELECT COALESCE(MAX(id), 0) FROM runs))",
                [stamp(now)],
            )
            .map(drop)
        })
    }

    /// One round of detection: reads a [`NotifySnapshot`], lets `decide` turn it into the new
    /// state and the notices to send, and writes both, all in one write transaction. `channels`
    /// are the configured channels; each notice gets an outbox row per channel.
    pub(crate) fn notify_round(
        &self,
        now: DateTime<Utc>,
        channels: &[String],
        decide: impl FnOnce(NotifySnapshot) -> (NotifyState, Vec<NewNotification>),
    ) -> Result<usize, LedgerError> {
        self.notify_init(now)?;
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let state = read_state(&tx)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            let ids: Vec<RunId> = {
                let mut stmt =
                    tx.prepare("SELECT id, status FROM runs WHERE id > ?1 ORDER BY id")?;
                let rows = stmt.query_map([state.last_run], |r| {
                    Ok((r.get::<_, RunId>(0)?, r.get::<_, String>(1)?))
                })?;
                let mut ids = Vec::new();
                for row in rows {
                    let (id, status) = row?;
                    if status == "running" {
                        break;
                    }
                    ids.push(id);
                }
                ids
            };
            let last_complete = tx
                .query_row(
                    "SELECT id, finished_at FROM runs
                     WHERE status = 'complete' AND kind IN ('sync', 'full')
                     ORDER BY id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get::<_, RunId>(0)?, r.get::<_, Option<String>>(1)?)),
                )
                .optional()?
                .and_then(|(id, at)| at.as_deref().and_then(parse_stamp).map(|at| (id, at)));
            let quarantine = {
                let mut stmt = tx.prepare(
                    "SELECT job, COUNT(*) FROM quarantine WHERE resolved_at IS NULL
                     GROUP BY job ORDER BY job",
                )?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            // The runs are read through the same connection, inside the transaction.
            let mut runs = Vec::with_capacity(ids.len());
            for id in ids {
                runs.push(
                    super::runs::read_run(&tx, id, true)?
                        .ok_or(rusqlite::Error::QueryReturnedNoRows)?,
                );
            }
            let (new, notices) = decide(NotifySnapshot {
                state,
                runs,
                last_complete,
                quarantine,
            });
            write_state(&tx, &new)?;
            let mut added = 0;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO notifications (event, channel, run_id, created_at, notice)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for n in &notices {
                    for channel in channels {
                        stmt.execute(params![n.event, channel, n.run_id, stamp(now), n.notice])?;
                        added += 1;
                    }
                }
            }
            tx.commit()?;
            Ok(added)
        })
    }

    /// Puts one notice in the outbox for each channel (the ledger's tests; runs fill the
    /// outbox through [`Ledger::notify_round`]).
    #[cfg(test)]
    pub(crate) fn notification_add(
        &self,
        now: DateTime<Utc>,
        channels: &[String],
        notice: &NewNotification,
    ) -> Result<(), LedgerError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for channel in channels {
                tx.execute(
                    "INSERT INTO notifications (event, channel, run_id, created_at, notice)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        notice.event,
                        channel,
                        notice.run_id,
                        stamp(now),
                        notice.notice
                    ],
                )?;
            }
            tx.commit()
        })
    }

    /// The outbox rows neither delivered nor given up, oldest first.
    pub(crate) fn notifications_pending(&self) -> Result<Vec<PendingNotification>, LedgerError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, event, channel, created_at, notice, attempts FROM notifications
                 WHERE delivered_at IS NULL AND gave_up_at IS NULL ORDER BY id",
            )?;
            stmt.query_map([], |r| {
                let created: String = r.get(3)?;
                Ok(PendingNotification {
                    id: r.get(0)?,
                    event: r.get(1)?,
                    channel: r.get(2)?,
                    created_at: parse_stamp(&created).unwrap_or_else(Utc::now),
                    notice: r.get(4)?,
                    attempts: r.get(5)?,
                })
            })?
            .collect()
        })
    }

    /// Takes an outbox row for delivery until `until`: `false` when another process (a
    /// `reqsync run` while the daemon checks) has it, so the notice is not sent twice.
    pub(crate) fn notification_claim(
        &self,
        id: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE notifications SET claimed_until = ?3
                 WHERE id = ?1 AND delivered_at IS NULL AND gave_up_at IS NULL
                   AND (claimed_until IS NULL OR claimed_until < ?2)",
                params![id, stamp(now), stamp(until)],
            )
            .map(|changed| changed == 1)
        })
    }

    /// Records an attempt to deliver an outbox row: delivered, or failed with `error` (a
    /// message without secrets or row values).
    pub(crate) fn notification_attempted(
        &self,
        id: i64,
        now: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_attempt_at = ?2,
                     last_error = ?3, claimed_until = NULL,
                     delivered_at = CASE WHEN ?3 IS NULL THEN ?2 ELSE NULL END
                 WHERE id = ?1",
                params![id, stamp(now), error],
            )
            .map(drop)
        })
    }

    /// Stops retrying an outbox row (too old, or its channel is no longer configured).
    pub(crate) fn notification_given_up(
        &self,
        id: i64,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "UPDATE notifications SET gave_up_at = ?2,
                     last_error = COALESCE(last_error || '; ', '') || ?3
                 WHERE id = ?1",
                params![id, stamp(now), reason],
            )
            .map(drop)
        })
    }

    /// The newest outbox rows first.
    pub fn notifications(&self, limit: usize) -> Result<Vec<NotificationRecord>, LedgerError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, event, channel, run_id, attempts, last_error,
                        delivered_at IS NOT NULL, gave_up_at IS NOT NULL
                 FROM notifications ORDER BY id DESC LIMIT ?1",
            )?;
            stmt.query_map([limit as i64], |r| {
                Ok(NotificationRecord {
                    id: r.get(0)?,
                    event: r.get(1)?,
                    channel: r.get(2)?,
                    run_id: r.get(3)?,
                    attempts: r.get(4)?,
                    last_error: r.get(5)?,
                    delivered: r.get(6)?,
                    gave_up: r.get(7)?,
                })
            })?
            .collect()
        })
    }

    /// The notification state, if notifications were ever set up.
    #[cfg(test)]
    pub(crate) fn notify_state(&self) -> Result<Option<NotifyState>, LedgerError> {
        self.with(|c| read_state(c))
    }
}

fn read_state(c: &rusqlite::Connection) -> rusqlite::Result<Option<NotifyState>> {
    c.query_row(
        "SELECT created_at, last_run, failing_class, failing_since, failed_runs,
                stale_notified_at, quarantine_notified
         FROM notify_state WHERE id = 1",
        [],
        |r| {
            let created: String = r.get(0)?;
            let since: Option<String> = r.get(3)?;
            let stale: Option<String> = r.get(5)?;
            Ok(NotifyState {
                created_at: parse_stamp(&created).unwrap_or_else(Utc::now),
                last_run: r.get(1)?,
                failing_class: r.get(2)?,
                failing_since: since.as_deref().and_then(parse_stamp),
                failed_runs: r.get(4)?,
                stale_notified_at: stale.as_deref().and_then(parse_stamp),
                quarantine_notified: r.get(6)?,
            })
        },
    )
    .optional()
}

fn write_state(c: &rusqlite::Connection, s: &NotifyState) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE notify_state SET last_run = ?1, failing_class = ?2, failing_since = ?3,
             failed_runs = ?4, stale_notified_at = ?5, quarantine_notified = ?6
         WHERE id = 1",
        params![
            s.last_run,
            s.failing_class,
            s.failing_since.map(stamp),
            s.failed_runs,
            s.stale_notified_at.map(stamp),
            s.quarantine_notified
        ],
    )
    .map(drop)
}

//! The ledger's tables, versioned with SQLite's `user_version`.

use std::path::Path;

use rusqlite::Connection;

use super::{LedgerError, sqlite};

/// Version 1: runs, job runs, requests, quarantine.
const V1: &str = "
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,            -- sync | full | replay | dry-run
    status        TEXT NOT NULL,            -- running | complete | partial | failed | abandoned
    started_at    TEXT NOT NULL,            -- UTC, RFC 3339
    finished_at   TEXT,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    heartbeat     TEXT,                     -- ReqCheck's last import, as it answered
    error_class   TEXT,
    error         TEXT,                     -- the run's error message (keys and codes only)
    report_file   TEXT
);
CREATE TABLE job_runs (
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    job             TEXT NOT NULL,
    status          TEXT NOT NULL,          -- running | complete | partial | failed | abandoned
    window_start    TEXT NOT NULL,          -- clinic local time, YYYY-MM-DDTHH:MM:SS[.fff]
    window_basis    TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    read            INTEGER NOT NULL DEFAULT 0,
    emitted         INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    sent            INTEGER NOT NULL DEFAULT 0,
    acknowledged    INTEGER NOT NULL DEFAULT 0,
    module_sha256   TEXT NOT NULL,
    query_sha256    TEXT NOT NULL,
    template_sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, job)
);
CREATE INDEX job_runs_by_job ON job_runs(job, run_id);
CREATE TABLE requests (
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    job             TEXT NOT NULL,
    seq             INTEGER NOT NULL,       -- 1-based, per job
    endpoint        TEXT NOT NULL,
    records         INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    body_sha256     TEXT NOT NULL,
    status          TEXT NOT NULL,          -- sending | success | partial_failure | failed
    data_import_id  INTEGER,
    error_ids       TEXT,                   -- JSON array of ReqCheck's DataImportError ids
    sent_at         TEXT NOT NULL,
    answered_at     TEXT,
    PRIMARY KEY (run_id, job, seq)
);
CREATE TABLE quarantine (
    job             TEXT NOT NULL,
    row_key         TEXT NOT NULL,          -- the module's key column (patno, im_id)
    group_key       TEXT,                   -- dose jobs: the patient (group column)
    findings        TEXT NOT NULL,          -- JSON array of field:code
    module_sha256   TEXT NOT NULL,
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    first_run       INTEGER NOT NULL,
    last_run        INTEGER NOT NULL,
    times_seen      INTEGER NOT NULL,
    resolved_at     TEXT,                   -- the row passed in a later run
    resolved_run    INTEGER,
    PRIMARY KEY (job, row_key)
);
";

/// Version 2: notifications (`[notify]`). `notify_state` is one row: how far the runs have been
/// looked at, and which notices are "open" (a failure episode, a stale notice, a quarantine
/// over its threshold), so that each is sent once and "recovered" only follows one of them.
/// `notifications` is the outbox: one row per notice and channel, kept until delivered (or
/// given up), so a notice that could not be sent is retried by the next run or daemon tick.
/// Both hold counts, run ids, classes and job names only, like the rest of the ledger.
const V2: &str = "
CREATE TABLE notify_state (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    created_at          TEXT NOT NULL,      -- when notifications were first set up
    last_run            INTEGER NOT NULL,   -- runs up to this id have been looked at
    failing_class       TEXT,               -- an open failure episode: the class last notified
    failing_since       TEXT,
    failed_runs         INTEGER NOT NULL DEFAULT 0,
    stale_notified_at   TEXT,
    quarantine_notified INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    event           TEXT NOT NULL,          -- run-failed | partial-failure | quarantine | stale | recovered | test
    channel         TEXT NOT NULL,          -- email | webhook-N
    run_id          INTEGER,
    created_at      TEXT NOT NULL,
    notice          TEXT NOT NULL,          -- JSON: counts, run ids, classes, job names
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    last_error      TEXT,                   -- why the last attempt failed (no secrets)
    claimed_until   TEXT,                   -- a process is delivering it until then
    delivered_at    TEXT,
    gave_up_at      TEXT
);
CREATE INDEX notifications_pending ON notifications(delivered_at, gave_up_at, id);
";

const VERSION: i64 = 2;

pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<(), LedgerError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| sqlite(path, e))?;
    if found > VERSION {
        return Err(LedgerError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: VERSION,
        });
    }
    // Each step in one transaction with its version, so a ledger is never half-migrated.
    if found < 1 {
        conn.execute_batch(&format!(
            "BEGIN; {V1} {V2} PRAGMA user_version = {VERSION}; COMMIT;"
        ))
        .map_err(|e| sqlite(path, e))?;
    } else if found < 2 {
        conn.execute_batch(&format!("BEGIN; {V2} PRAGMA user_version = 2; COMMIT;"))
            .map_err(|e| sqlite(path, e))?;
    }
    Ok(())
}

//! The run ledger: a local SQLite file (`<state_dir>/ledger.db`) recording every run, each job's
//! window and outcome, every request and ReqCheck's answer, and the quarantine of rejected rows.
//!
//! It exists because ReqCheck's heartbeat cannot be trusted as a watermark: the heartbeat moves
//! when ReqCheck *receives* an import, even if a later request of the same run then fails. The
//! ledger knows which runs completed, so the next run can start early enough ([`window`]).
//!
//! Keys, codes, counts, hashes and import ids only: no row values.

mod lock;
mod quarantine;
mod runs;
mod schema;
pub mod window;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

pub use lock::{RunLock, RunLockError};
pub use quarantine::{QuarantineEntry, QuarantineFilter, Rejection};
pub use runs::{
    Answer, JobRunRecord, JobStart, JobStatus, JobTotals, RequestRecord, RunKind, RunRecord,
    RunStatus,
};
pub use window::JobHistory;

/// The row id of a run in the ledger.
pub type RunId = i64;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot create the state folder {}: {reason}", path.display())]
    StateDir { path: PathBuf, reason: String },
    #[error("run ledger {}: {reason}", path.display())]
    Sqlite { path: PathBuf, reason: String },
    #[error(
        "run ledger {} was written by a newer reqsync (schema {found}, this build knows {known}); \
         upgrade reqsync or point `[sync] state_dir` elsewhere",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("run ledger {}: no run {id}", path.display())]
    NoSuchRun { path: PathBuf, id: RunId },
}

/// An open ledger. One connection behind a mutex: every statement is a small indexed write or
/// read, and runs of one project are serialised by [`RunLock`] anyway.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// The ledger's file inside a state folder.
pub fn ledger_path(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger.db")
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(state_dir).map_err(|e| LedgerError::StateDir {
            path: state_dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let path = ledger_path(state_dir);
        let conn = Connection::open(&path).map_err(|e| sqlite(&path, e))?;
        // WAL: readers (`reqsync history`) never block the run writing; NORMAL sync is durable
        // across a killed process (only a power loss can lose the last transaction).
        conn.busy_timeout(Duration::from_secs(30))
            .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
            // 256 KiB instead of SQLite's 2 MiB: a sync writes its requests and quarantined
            // rows once and reads few of them back, so a page evicted is at most a read from
            // the operating system's file cache; SQLite's full default cache was the largest
            // part of a million-dose sync's growth in memory (docs/PERFORMANCE.md, "Session 7").
            .and_then(|_| conn.pragma_update(None, "cache_size", -256))
            .map_err(|e| sqlite(&path, e))?;
        schema::migrate(&conn, &path)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// Opens an existing ledger for reading (`reqsync history`, `quarantine list`): a missing
    /// file is `Ok(None)`, not a new empty ledger.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Self>, LedgerError> {
        if !ledger_path(state_dir).exists() {
            return Ok(None);
        }
        Self::open(state_dir).map(Some)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        // A poisoned mutex means a panic mid-statement on another thread; SQLite's own
        // transaction rollback keeps the file consistent, so carrying on is safe.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| sqlite(&self.path, e))
    }
}

fn sqlite(path: &Path, e: rusqlite::Error) -> LedgerError {
    LedgerError::Sqlite {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;

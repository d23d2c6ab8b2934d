//! The run ledger: a local SQLite file (`<state_dir>/ledger.db`) recording every run, each job's
//! window and outcome, every request and ReqCheck's answer, and the quarantine of rejected rows.
//!
//! It exists because ReqCheck's heartbeat cannot be trusted as a watermark: the heartbeat moves
//! when ReqCheck *receives* an import, even if a later request of the same run then fails. The
//! ledger knows which runs completed, so the next run can start early enough ([`window`]).
//!
//! Keys, codes, counts, hashes and import ids only: no row values.

mod lock;
mod notifications;
mod overview;
mod quarantine;
mod runs;
mod schema;
pub mod window;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

pub use lock::{RunLock, RunLockError};
pub use notifications::{
    NewNotification, NotificationRecord, NotifySnapshot, NotifyState, PendingNotification,
};
pub use overview::{JobOverview, JobRunSummary, QuarantineCount, RunTotals};
pub use quarantine::{QuarantineEntry, QuarantineFilter, Rejection};
pub use runs::{
    Answer, JobRunRecord, JobStart, JobStatus, JobTotals, RequestRecord, RunKind, RunRecord,
    RunStatus,
};
pub use window::JobHistory;

/// The row id of a run in the ledger.
pub(crate) type RunId = i64;

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
    #[error(
        "run ledger {} is damaged: {reason}. Nothing was done. Keep it for inspection and move \
         it aside (e.g. rename it to ledger.db.damaged); the next run starts a new ledger. A new \
         ledger does not know which earlier runs completed, so run `reqsync run --full` once \
         (re-sending is safe: patients are upserted, a patient's doses replaced)",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
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
pub(crate) fn ledger_path(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger.db")
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, LedgerError> {
        reqsync_private_fs::create_dir_all(state_dir).map_err(|e| LedgerError::StateDir {
            path: state_dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let path = ledger_path(state_dir);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => check_existing(&path, &meta)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path)?,
            Err(e) => {
                return Err(LedgerError::StateDir {
                    path: path.clone(),
                    reason: e.to_string(),
                });
            }
        }
        // NOFOLLOW: a link planted in place of the ledger is refused, not written through.
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| sqlite(&path, e))?;
        // WAL: readers (`reqsync history`) never block the run writing; NORMAL sync is durable
        // across a killed process (only a power loss can lose the last transaction).
        conn.busy_timeout(Duration::from_secs(30))
            .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
            // 256 KiB instead of SQLite's 2 MiB: a sync writes its requests and quarantined
            // rows once and reads few of them back, so a page evicted is at most a read from
            // the operating system's file cache; SQLite's full default cache was the largest
            // part of a million-dose sync's growth in memory (docs/PERFORMANCE.md, "memory flat").
            .and_then(|_| conn.pragma_update(None, "cache_size", -256))
            .map_err(|e| opening(&path, e))?;
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

/// A new ledger is built beside its final name and linked into place only once its schema is
/// written, so an empty `ledger.db` is never one reqsync left: a crash mid-creation leaves a
/// stray temporary file, not a ledger that looks new.
fn create(path: &Path) -> Result<(), LedgerError> {
    let tmp = path.with_file_name(format!(".ledger.db.{}.new", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let built = reqsync_private_fs::create_new(&tmp)
        .map_err(|e| LedgerError::StateDir {
            path: tmp.clone(),
            reason: e.to_string(),
        })
        .and_then(|_| {
            let conn = Connection::open(&tmp).map_err(|e| sqlite(path, e))?;
            schema::migrate(&conn, path)
        });
    let linked = built.and_then(|()| match reqsync_private_fs::link_into_place(&tmp, path) {
        // Another process created it meanwhile: theirs is as good.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(LedgerError::StateDir {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        _ => Ok(()),
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Refuses a ledger that cannot be one (empty, not a file), and says once when others can read
/// it (patient numbers are identifiers).
fn check_existing(path: &Path, meta: &std::fs::Metadata) -> Result<(), LedgerError> {
    let damaged = |reason: &str| LedgerError::Damaged {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if !meta.is_file() {
        return Err(damaged("it is not a regular file (a link or a folder)"));
    }
    if meta.len() == 0 {
        return Err(damaged("the file is empty"));
    }
    if reqsync_private_fs::readable_by_others(meta) {
        tracing::warn!(
            path = %path.display(),
            mode = %reqsync_private_fs::mode_text(meta),
            "the run ledger is readable by other users; it holds patient numbers (chmod 600 it)"
        );
    }
    Ok(())
}

/// An error opening the ledger: a file that is not SQLite, or a corrupt one, is a damaged
/// ledger with the way out; anything else as it is.
fn opening(path: &Path, e: rusqlite::Error) -> LedgerError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match e.sqlite_error_code() {
        Some(NotADatabase | DatabaseCorrupt) => LedgerError::Damaged {
            path: path.to_path_buf(),
            reason: "SQLite cannot read it".into(),
        },
        _ => sqlite(path, e),
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

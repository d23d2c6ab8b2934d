//! The audit trail: an append-only, hash-chained JSON-lines file of what reqsync did.
//!
//! Every event the trail can hold is a struct in [`events`] (re-exported here), whose `emit`
//! issues a tracing event with target [`TARGET`]:
//!
//! ```
//! # let capture = reqsync_runtime::audit::AuditCapture::new().unwrap();
//! # tracing::dispatcher::with_default(&capture.dispatch(), || {
//! use reqsync_runtime::audit::{ModuleSwap, SwapResult};
//! ModuleSwap {
//!     path: "transforms/patients.wasm".as_ref(),
//!     old_sha256: "9f2c…",
//!     new_sha256: "41ab…",
//!     result: SwapResult::Activated { millis: 38 },
//! }
//! .emit();
//! # });
//! # assert_eq!(capture.entries().unwrap()[0]["result"], "activated");
//! ```
//!
//! Every such event (INFO or above, whatever the log verbosity) becomes one line with all its
//! fields, its `message` if any, and `seq`, `ts`, `level`, `user`, `host`, `pid`, `prev` and
//! `hash` added by the [writer](AuditWriter); see [`chain`] for the line format and `docs/AUDIT.md`
//! for operators. Entries hold only what events carry — keys, counts, codes, hashes — so no row
//! value reaches the trail unless an event names one.
//!
//! The subscriber is installed before any config is read ([`layer`]); a command that has loaded
//! its config calls [`open`] to point the trail at `[audit] file`. Until then (and in commands
//! without a config) audit events are dropped.

pub mod chain;
pub mod events;
mod layer;
mod syncer;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

pub use chain::{GENESIS, Link};
pub use events::{
    JobFinished, ModuleSwap, RequestFailed, RequestFields, RequestSending, RequestSent,
    RunFinished, RunStarted, SwapResult,
};
pub use layer::{AuditFilter, AuditLayer, Unrecorded, layer, require, subscriber};
pub use verify::{
    Broken, EntryInfo, Problem, Summary, Verdict, read_entries, verify_bytes, verify_file,
};
pub use writer::{AuditWriter, RESERVED};

/// The target that makes a tracing event an audit event; the structs in [`events`] emit with it.
pub const TARGET: &str = "reqsync::audit";

/// One entry as read back: a flat JSON object.
pub(crate) type Entry = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "cannot open the audit trail {}: {source}; make sure its folder exists or can be \
         created and that this user may write there, or point `[audit] file` in the config at \
         such a place",
        path.display()
    )]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot {action} the audit trail {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(
        "the audit trail {} ends in a line that is not an intact entry: {reason}; nothing is \
         appended to a broken chain. Run `reqsync audit verify {}` to see where it breaks, keep \
         the file as evidence and move it aside (a new file starts a new chain)",
        path.display(),
        path.display()
    )]
    BrokenTail { path: PathBuf, reason: String },
    #[error("the audit trail {} is broken at {at}", path.display())]
    Broken { path: PathBuf, at: Broken },
}

impl AuditError {
    fn open(path: &Path, source: std::io::Error) -> Self {
        AuditError::Open {
            path: path.to_path_buf(),
            source,
        }
    }

    fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// The file the installed layer ([`layer`]) writes to.
///
/// A process-wide sink, because the two ends meet nowhere else: the tracing subscriber is
/// installed once, first thing in `main` and before any config is read (and a global subscriber
/// cannot be replaced), while the file is only known once a command has loaded its config. A
/// reload handle would have to travel from `main` through dispatch into every command; this
/// sink is set in one place ([`open`]) and read in one place (the layer). Tests do not use it:
/// they give a layer its own writer ([`AuditLayer::to`], [`AuditCapture`]).
static SINK: RwLock<Option<Arc<AuditWriter>>> = RwLock::new(None);

/// Points the process's audit trail at `path`: creates it (mode 0600 on unix) and its folders
/// if needed, and checks that its last line is an intact entry. Call it right after loading
/// the config, before anything is sent. Opening again switches to the new file.
pub fn open(path: &Path) -> Result<(), AuditError> {
    let writer = AuditWriter::open(path)?;
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(writer));
    Ok(())
}

/// Waits until every entry appended to the current file so far is on disk. Entries are
/// written at once and flushed (`fdatasync`) right after on a thread of their own; a command
/// calls this before it exits, since the process ending does not wait for that thread.
pub fn flush() {
    if let Some(writer) = current() {
        writer.flush();
    }
}

/// Stops recording: later audit events are dropped.
pub fn close() {
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = None;
}

/// The file audit events currently go to, if any.
#[cfg(test)]
pub(crate) fn current_path() -> Option<PathBuf> {
    current().map(|w| w.path().to_path_buf())
}

fn current() -> Option<Arc<AuditWriter>> {
    SINK.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Captures the audit entries of code run under it, in a file of its own (removed on drop).
///
/// ```
/// let capture = reqsync_runtime::audit::AuditCapture::new().unwrap();
/// tracing::dispatcher::with_default(&capture.dispatch(), || {
///     tracing::info!(target: reqsync_runtime::audit::TARGET, event = "run_started", records = 12);
/// });
/// assert_eq!(capture.entries().unwrap()[0]["records"], 12);
/// ```
///
/// The dispatch is set per thread: for async code, run it on a current-thread runtime inside
/// `with_default`, or run the binary and read its `[audit] file` with [`read_entries`].
#[derive(Debug)]
pub struct AuditCapture {
    dir: PathBuf,
    writer: Arc<AuditWriter>,
}

impl AuditCapture {
    pub fn new() -> Result<Self, AuditError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "reqsync-audit-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let writer = Arc::new(AuditWriter::open(&dir.join("audit.jsonl"))?);
        Ok(AuditCapture { dir, writer })
    }

    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// A subscriber recording audit events into this capture's file and nothing else.
    pub fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(subscriber(self.writer.clone()))
    }

    /// The entries so far; an error if the chain is broken.
    pub fn entries(&self) -> Result<Vec<Entry>, AuditError> {
        read_entries(self.path())
    }
}

impl Drop for AuditCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests;

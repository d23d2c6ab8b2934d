//! Exit codes: one per failure class, so a scheduler can tell who has to act.

use reqsync_runtime::pipeline::{FailureClass, RunError};

pub const OK: u8 = 0;
pub const INTERNAL: u8 = 1;
/// A command-line usage error: clap's own code, also used for rows typed on the command line
/// that do not fit the module (`transform try|diff`).
pub const USAGE: u8 = 2;
pub const CONFIG: u8 = 3;
pub const SOURCE: u8 = 4;
pub const TRANSFORM: u8 = 5;
pub const DELIVERY: u8 = 6;
/// Every request was accepted, but ReqCheck stored some records with errors
/// (`201 partial_failure`) and `[sync] on_partial_failure` is `"fail"`.
pub const PARTIAL_FAILURE: u8 = 7;
/// `reqsync audit verify`: the audit log's hash chain is broken.
pub const AUDIT_BROKEN: u8 = 8;
/// Another run of the same project (same state folder) is in progress; nothing was done.
pub const BUSY: u8 = 9;
/// The process ran out of file descriptors (its open-file limit, or the system's); nothing
/// was done.
pub const RESOURCE: u8 = 10;
/// `reqsync status`: some job's last run failed (or ended partial, abandoned, interrupted).
pub const STATUS_FAILED: u8 = 11;
/// `reqsync status`: some job has no complete run within `[status] max_age` (or none at all).
pub const STATUS_STALE: u8 = 12;

pub const HELP: &str = "\
Exit codes:
  0  every request was accepted (rows a transform rejects are reported and held back)
  1  internal error
  2  command-line usage error
  3  configuration: config file, credentials, query/template/module file, template output
  4  source database: connection, query, data that cannot be read
  5  transform module: not a valid component, trap, deadline, broken contract
  6  delivery: ReqCheck unreachable, TLS, credentials refused, request rejected,
     a redirect (never followed), an answer over 1 MiB
  7  ReqCheck stored an import with record errors (partial_failure)
  8  audit verify: the audit log has been altered
  9  another run of this project is in progress (runs never overlap); nothing was done
 10  the process ran out of open files (raise the limit or look for a leak); nothing was done
 11  status: a job's last run failed (or ended partial, abandoned or interrupted)
 12  status: a job has no complete run within `[status] max_age` (26 h by default)";

/// The failure class a notification names for a run that ended with exit code `code`; `None`
/// for success, a partial failure (the ledger has that run) and a busy project (nothing was
/// done, another run is going).
pub fn class_of(code: u8) -> Option<&'static str> {
    match code {
        CONFIG => Some("config"),
        SOURCE => Some("source"),
        TRANSFORM => Some("transform"),
        DELIVERY => Some("delivery"),
        RESOURCE => Some("resource"),
        INTERNAL => Some("internal"),
        _ => None,
    }
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        let code = match e.class() {
            FailureClass::Config => CONFIG,
            FailureClass::Source => SOURCE,
            FailureClass::Transform => TRANSFORM,
            FailureClass::Delivery => DELIVERY,
            FailureClass::Busy => BUSY,
            FailureClass::Resource => RESOURCE,
            // Only a run given a cancellation token (the daemon's) can be abandoned, and the
            // daemon does not exit with a run's code: reaching this is a bug.
            FailureClass::Abandoned => INTERNAL,
        };
        Self::new(code, e)
    }
}

/// Adds context to a fallible step and assigns its exit code.
pub trait OrExit<T> {
    fn or_exit(self, code: u8, context: &str) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for Result<T, E> {
    fn or_exit(self, code: u8, context: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(code, e.into().context(context.to_string())))
    }
}

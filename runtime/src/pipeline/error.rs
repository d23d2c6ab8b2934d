//! How a run fails: [`RunError`], and the [`FailureClass`] each error maps to, which says who
//! has to act and becomes the documented exit code.

use crate::input_file::InputFileError;
use crate::ledger::{LedgerError, RunLockError};
use crate::render::RenderError;
use crate::reqcheck::ClientError;
use crate::reqcheck::window::HeartbeatAhead;
use crate::source::SourceError;
use crate::transform::TransformError;

use super::batcher::BatchError;

/// What failed, sorted by who has to act: the classes map to the documented exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("job `{job}`: {reason}")]
    Config { job: String, reason: String },
    #[error(transparent)]
    Source(#[from] SourceError),
    // The fields are not called `source`: thiserror would make them the error's cause too,
    // and a report printing the chain would say everything twice.
    #[error("job `{job}`: {error}")]
    Transform { job: String, error: TransformError },
    #[error("job `{job}`: {error}")]
    Template { job: String, error: RenderError },
    #[error(transparent)]
    Delivery(#[from] ClientError),
    #[error(transparent)]
    HeartbeatAhead(#[from] HeartbeatAhead),
    #[error("job `{job}`: {error}")]
    Batch { job: String, error: BatchError },
    #[error("dry-run output: {0}")]
    DryRunOutput(String),
    #[error(
        "job `{job}`: stopped at a batch boundary on request; the requests already sent stay sent"
    )]
    Abandoned { job: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "job `{job}`: cannot read back the rejected rows kept in a temporary file: {error} \
         (check the temporary directory, TMPDIR)"
    )]
    RejectedRows { job: String, error: std::io::Error },
    /// A file the job needs could not be opened for want of a file descriptor: the process's
    /// or the machine's limit, not the file or the config.
    #[error("job `{job}`: {error}")]
    OutOfFiles { job: String, error: InputFileError },
    #[error(transparent)]
    Lock(#[from] RunLockError),
    #[error(transparent)]
    Unaudited(#[from] crate::audit::Unrecorded),
}

/// Exit-code classes (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Config,
    Source,
    Transform,
    Delivery,
    /// Stopped on request ([`super::RunOptions::cancel`]): nobody has to act.
    Abandoned,
    /// Another run of the project holds the run lock; nothing was done.
    Busy,
    /// The process ran out of an operating-system resource (file descriptors): the limit is
    /// too low or something leaks. Not a busy project, not bad configuration.
    Resource,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Config => "config",
            FailureClass::Source => "source",
            FailureClass::Transform => "transform",
            FailureClass::Delivery => "delivery",
            FailureClass::Abandoned => "abandoned",
            FailureClass::Busy => "busy",
            FailureClass::Resource => "resource",
        }
    }
}

impl RunError {
    pub fn class(&self) -> FailureClass {
        match self {
            // A module file that cannot be read is a path to fix in the config, not a module
            // to fix.
            RunError::Transform {
                error: TransformError::Read { .. },
                ..
            } => FailureClass::Config,
            RunError::Config { .. }
            | RunError::Template { .. }
            | RunError::DryRunOutput(_)
            | RunError::Ledger(_)
            | RunError::RejectedRows { .. }
            | RunError::Unaudited(_) => FailureClass::Config,
            RunError::Source(_) | RunError::Batch { .. } => FailureClass::Source,
            RunError::Transform { .. } => FailureClass::Transform,
            RunError::Delivery(_) | RunError::HeartbeatAhead(_) => FailureClass::Delivery,
            RunError::Abandoned { .. } => FailureClass::Abandoned,
            RunError::Lock(RunLockError::Busy { .. }) => FailureClass::Busy,
            RunError::Lock(RunLockError::OutOfFiles { .. }) | RunError::OutOfFiles { .. } => {
                FailureClass::Resource
            }
            // The state folder cannot be written (permissions, a file in its place).
            RunError::Lock(RunLockError::Io { .. }) => FailureClass::Config,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_run_lock_that_cannot_be_opened_is_not_a_busy_project() {
        let path = PathBuf::from("state/run.lock");
        let class = |e: RunLockError| RunError::Lock(e).class();
        assert_eq!(
            class(RunLockError::Busy {
                path: path.clone(),
                holder: "pid 1".into()
            }),
            FailureClass::Busy
        );
        let out_of_files = RunLockError::OutOfFiles {
            path: path.clone(),
            reason: "Too many open files (os error 24)".into(),
        };
        assert!(
            out_of_files
                .to_string()
                .contains("raise the open-file limit")
        );
        assert_eq!(class(out_of_files), FailureClass::Resource);
        assert_eq!(
            class(RunLockError::Io {
                path,
                reason: "Permission denied (os error 13)".into()
            }),
            FailureClass::Config
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_query_file_unreadable_for_want_of_descriptors_is_a_resource_problem_not_config() {
        use crate::input_file::{QUERY, io_error};
        let path = PathBuf::from("queries/patients.sql");
        let read = |errno: rustix::io::Errno| io_error(&path, QUERY, std::io::Error::from(errno));
        let out_of_files = read(rustix::io::Errno::MFILE);
        assert!(
            out_of_files.reason().contains("raise the open-file limit"),
            "{out_of_files}"
        );
        let run_error = RunError::OutOfFiles {
            job: "patients".into(),
            error: out_of_files,
        };
        assert_eq!(run_error.class(), FailureClass::Resource);
        assert!(
            run_error.to_string().contains("raise the open-file limit"),
            "{run_error}"
        );
        // Any other failure to read it is the file's or the config's.
        let denied = read(rustix::io::Errno::ACCESS);
        assert!(matches!(denied, InputFileError::Io { .. }), "{denied:?}");
        assert!(!denied.reason().contains("open-file limit"), "{denied}");
    }
}

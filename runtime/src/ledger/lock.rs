//! One run at a time per project: an exclusive lock on `<state_dir>/run.lock`.
//!
//! Two overlapping runs of the same project (the service and a manual `reqsync run`) would both
//! be "the last run" to the ledger and could interleave dose requests for one patient. The lock
//! is an OS file lock, so a process killed with `kill -9` releases it with its file handles.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error(
        "another reqsync run of this project is in progress ({holder}; lock file {}); runs never overlap, so nothing was done",
        path.display()
    )]
    Busy { path: PathBuf, holder: String },
    /// The process (or the machine) has no file descriptor left to open the lock with: a
    /// resource problem, not another run.
    #[error(
        "cannot open the run lock {}: {reason}; the process has too many files and sockets \
         open, so nothing was done: {}",
        path.display(),
        crate::resource::FILE_LIMIT_ADVICE
    )]
    OutOfFiles { path: PathBuf, reason: String },
    #[error("cannot take the run lock {}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
}

/// Held for the length of a run; released on drop (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock without waiting.
    pub fn acquire(state_dir: &Path) -> Result<Self, RunLockError> {
        let path = state_dir.join("run.lock");
        let io = |e: std::io::Error| {
            let (path, reason) = (path.clone(), e.to_string());
            if crate::resource::out_of_file_descriptors(&e) {
                RunLockError::OutOfFiles { path, reason }
            } else {
                RunLockError::Io { path, reason }
            }
        };
        reqsync_private_fs::create_dir_all(state_dir).map_err(io)?;
        let mut file = reqsync_private_fs::open_read_write(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(RunLockError::Busy {
                    path,
                    holder: if holder.is_empty() {
                        "holder unknown".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message another process prints.
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "pid {} on {host}", std::process::id()))
            .map_err(io)?;
        Ok(Self { _file: file })
    }

    /// Whether some process holds the lock now, asked with a shared lock that is let go at
    /// once: a run starting in that instant finds the lock taken and says "busy", so this is
    /// asked only when the ledger shows a run that may still be going.
    pub(crate) fn is_held(state_dir: &Path) -> std::io::Result<bool> {
        let path = state_dir.join("run.lock");
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

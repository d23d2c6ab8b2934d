//! Flushing appended entries to disk (`fdatasync`) on a thread of its own.
//!
//! An append writes its line under the file lock and returns; the flush that makes the line
//! survive a power loss follows here, right after, off the appending thread. Waiting for it
//! inline cost a sync about 0.3 ms per request on the thread that also renders and sends (a
//! million-dose sync writes some 2,400 entries; with every `fsync` a no-op the sync was 7 %
//! faster, `docs/PERFORMANCE.md`, "what each request costs"). A process that is killed loses
//! nothing by this: the line was written before `append` returned and the OS keeps it. Only a
//! power loss or an OS crash in the moment between a write and its flush could, and
//! [`Syncer::flush`] lets a command wait for every flush before it exits.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The flushing thread's side of one audit file. Dropping it flushes what is pending and
/// stops the thread.
#[derive(Debug)]
pub(super) struct Syncer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled when there is work (or the syncer closes), and when a flush completes.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Handles to flush. Usually one: handles to the same file replace each other, since one
    /// `fdatasync` covers every write made before it through any handle. A second appears
    /// only when the file was replaced (moved aside) between two appends.
    pending: Vec<Pending>,
    /// Appends handed over so far, and how many of those are known to be on disk.
    requested: u64,
    flushed: u64,
    closed: bool,
    /// No thread could be started: flush inline instead.
    inline: bool,
}

#[derive(Debug)]
struct Pending {
    file: File,
    identity: FileIdentity,
}

/// Which file a handle refers to, whatever its path is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    pub(super) fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileIdentity {
                device: meta.dev(),
                inode: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            // No inode to tell files apart: every handle is treated as the same file, which
            // only costs a flush of a file that was moved aside between two appends.
            let _ = meta;
            FileIdentity {
                device: 0,
                inode: 0,
            }
        }
    }
}

impl Syncer {
    pub(super) fn start(path: &Path) -> Self {
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let worker = shared.clone();
        let started = std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || worker.run());
        if started.is_err() {
            shared.lock().inline = true;
        }
        Syncer { shared }
    }

    /// Queues a flush of everything written through `file` so far.
    pub(super) fn request(&self, file: File, identity: FileIdentity) {
        let mut state = self.shared.lock();
        state.requested += 1;
        if state.inline {
            let upto = state.requested;
            drop(state);
            self.shared.flush_one(&file);
            self.shared.lock().flushed = upto;
            return;
        }
        match state.pending.iter_mut().find(|p| p.identity == identity) {
            Some(p) => p.file = file,
            None => state.pending.push(Pending { file, identity }),
        }
        self.shared.changed.notify_all();
    }

    /// Waits until every entry appended before this call has been flushed (or its flush has
    /// failed and been reported).
    pub(super) fn flush(&self) {
        let mut state = self.shared.lock();
        let target = state.requested;
        while state.flushed < target && !state.inline {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.flush();
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters that are still meaningful.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            if state.pending.is_empty() {
                if state.closed {
                    return;
                }
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Everything requested so far was written through one of these handles.
            let batch = std::mem::take(&mut state.pending);
            let upto = state.requested;
            drop(state);
            for pending in &batch {
                self.flush_one(&pending.file);
            }
            drop(batch);
            state = self.lock();
            state.flushed = state.flushed.max(upto);
            self.changed.notify_all();
        }
    }

    fn flush_one(&self, file: &File) {
        if let Err(e) = file.sync_data() {
            // The line is written (other readers see it); only its durability is in doubt.
            // Logged from this thread, never from inside the audit layer's event handler.
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                "cannot flush the audit trail to disk; its latest entries are written but may \
                 not survive a power loss"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(file: &File) -> FileIdentity {
        FileIdentity::of(&file.metadata().unwrap())
    }

    #[test]
    fn flush_waits_for_every_requested_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trail");
        let file = File::create(&path).unwrap();
        let syncer = Syncer::start(&path);
        for _ in 0..50 {
            syncer.request(file.try_clone().unwrap(), identity(&file));
        }
        syncer.flush();
        let state = syncer.shared.lock();
        assert_eq!(state.requested, 50);
        assert_eq!(
            state.flushed, 50,
            "flush returned before the syncs it waited for"
        );
        assert!(state.pending.is_empty());
    }

    #[test]
    fn handles_to_the_same_file_are_flushed_once_and_a_replaced_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let a = File::create(dir.path().join("a")).unwrap();
        let b = File::create(dir.path().join("b")).unwrap();
        let shared = Shared {
            path: dir.path().join("a"),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        };
        // No thread: look at what is queued.
        let syncer = Syncer {
            shared: Arc::new(shared),
        };
        syncer.request(a.try_clone().unwrap(), identity(&a));
        syncer.request(a.try_clone().unwrap(), identity(&a));
        syncer.request(b.try_clone().unwrap(), identity(&b));
        let pending: Vec<FileIdentity> = syncer
            .shared
            .lock()
            .pending
            .iter()
            .map(|p| p.identity)
            .collect();
        assert_eq!(pending, [identity(&a), identity(&b)]);
        // Without its thread, dropping would wait forever: mark the work done first.
        let mut state = syncer.shared.lock();
        state.flushed = state.requested;
        state.pending.clear();
    }

    #[test]
    fn without_a_thread_requests_flush_inline() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("t")).unwrap();
        let syncer = Syncer {
            shared: Arc::new(Shared {
                path: dir.path().join("t"),
                state: Mutex::new(State {
                    inline: true,
                    ..State::default()
                }),
                changed: Condvar::new(),
            }),
        };
        syncer.request(file.try_clone().unwrap(), identity(&file));
        syncer.flush();
        let state = syncer.shared.lock();
        assert_eq!((state.requested, state.flushed), (1, 1));
        assert!(state.pending.is_empty());
    }
}

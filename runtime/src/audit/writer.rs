//! Appending entries: one line each, under an exclusive lock on the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::AuditError;
use super::chain::{self, Link};
use super::syncer::{FileIdentity, Syncer};

/// The fields the writer adds to every entry; an event field of the same name is recorded as
/// `field_<name>` so it cannot forge them.
pub const RESERVED: [&str; 8] = ["seq", "ts", "level", "user", "host", "pid", "prev", "hash"];

/// The longest last line the writer reads back. Entries are a few hundred bytes; a longer last
/// line is not one the writer wrote.
const MAX_LINE: u64 = 1 << 20;

/// Appends entries to one audit file.
///
/// Every append opens the file anew, takes an exclusive lock, reads the last entry's `seq` and
/// `hash` and appends the next one. Holding no handle between entries means two processes (a
/// daemon and a manual `reqsync run`), two threads, or a file moved aside by an operator all
/// keep one valid chain: the tail is always read under the lock that covers the append.
#[derive(Debug)]
pub struct AuditWriter {
    path: PathBuf,
    /// Flushes appended lines to disk off the appending thread.
    syncer: Syncer,
}

impl AuditWriter {
    /// Creates the file (and its folders) if needed and checks that its last line is an intact
    /// entry, so a run learns about an unusable trail before it sends anything.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            reqsync_private_fs::create_dir_all(dir).map_err(|e| AuditError::open(path, e))?;
        }
        let existed = path.exists();
        let writer = AuditWriter {
            path: path.to_path_buf(),
            syncer: Syncer::start(path),
        };
        let file = writer.open_file()?;
        let _lock = Locked::new(&file, path)?;
        tail(&file, path)?;
        if !existed {
            sync_parent(path);
        }
        warn_if_readable_by_others(&file, path);
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry: `fields` (an event's) plus `seq`, `ts`, `level`, `user`, `host`,
    /// `pid`, `prev` and `hash`. Returns the new entry's place in the chain.
    pub fn append(&self, level: &str, fields: Map<String, Value>) -> Result<Link, AuditError> {
        let mut entry: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in fields {
            if RESERVED.contains(&k.as_str()) {
                entry.insert(format!("field_{k}"), v);
            } else {
                entry.insert(k, v);
            }
        }
        let id = identity();
        entry.insert("level".into(), Value::from(level));
        entry.insert("user".into(), Value::from(id.user.as_str()));
        entry.insert("host".into(), Value::from(id.host.as_str()));
        entry.insert("pid".into(), Value::from(std::process::id()));

        let file = self.open_file()?;
        let lock = Locked::new(&file, &self.path)?;
        let last = tail(&file, &self.path)?;
        let seq = last.seq + 1;
        entry.insert("seq".into(), Value::from(seq));
        entry.insert("prev".into(), Value::from(last.hash.as_str()));
        // Taken under the lock, so `ts` never goes backwards along the chain (clock steps aside).
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        entry.insert("ts".into(), Value::from(ts));
        let (mut line, hash) = chain::seal(&entry, &last.hash);
        line.push('\n');
        let meta = file
            .metadata()
            .map_err(|e| AuditError::io(&self.path, "read the size of", e))?;
        let len = meta.len();
        if let Err(e) = (&file).write_all(line.as_bytes()) {
            // A partly written line would make every later append refuse the file: cut it off
            // while the lock still guarantees that nobody appended after it.
            let _ = file.set_len(len).and_then(|()| file.sync_data());
            return Err(AuditError::io(&self.path, "append to", e));
        }
        drop(lock);
        // Written: every reader, and the next append, sees the line now. The flush to disk
        // follows on the syncer's thread; `flush` waits for it.
        self.syncer.request(file, FileIdentity::of(&meta));
        Ok(Link { seq, hash })
    }

    /// Waits until every entry appended so far is flushed to disk (`fdatasync`).
    pub fn flush(&self) {
        self.syncer.flush();
    }

    fn open_file(&self) -> Result<File, AuditError> {
        // The trail names users and hosts: readable by its owner only.
        reqsync_private_fs::open_append(&self.path).map_err(|e| AuditError::open(&self.path, e))
    }
}

/// An exclusive lock on the file, released when dropped (and by the OS if the process dies).
struct Locked<'a>(&'a File);

impl<'a> Locked<'a> {
    fn new(file: &'a File, path: &Path) -> Result<Self, AuditError> {
        file.lock().map_err(|e| AuditError::io(path, "lock", e))?;
        Ok(Locked(file))
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The last entry's place in the chain, or [`Link::genesis`] for an empty file. Refuses a file
/// whose last line is not an intact entry: extending a broken chain would bury the break.
fn tail(mut file: &File, path: &Path) -> Result<Link, AuditError> {
    let broken = |reason: String| AuditError::BrokenTail {
        path: path.to_path_buf(),
        reason,
    };
    let io = |e| AuditError::io(path, "read", e);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len == 0 {
        return Ok(Link::genesis());
    }
    // Read backwards in blocks until the newline before the last line (or the file start).
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    let line_start = loop {
        let block = start.min(4096);
        start -= block;
        let mut chunk = vec![0u8; block as usize];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(&mut chunk).map_err(io)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        if start + block == len && buf.last() != Some(&b'\n') {
            return Err(broken(
                "the last line has no newline at its end (the file was truncated, or a write \
                 was interrupted)"
                    .into(),
            ));
        }
        // Skip the final newline itself when looking for the one before the last line.
        if let Some(i) = buf[..buf.len() - 1].iter().rposition(|&b| b == b'\n') {
            break i + 1;
        }
        if start == 0 {
            break 0;
        }
        if len - start > MAX_LINE {
            return Err(broken("the last line is longer than any entry".into()));
        }
    };
    let line = std::str::from_utf8(&buf[line_start..buf.len() - 1])
        .map_err(|_| broken("the last line is not UTF-8".into()))?;
    let entry = chain::unseal(line).map_err(|m| broken(super::verify::describe_malformed(&m)))?;
    if !entry.hash_matches {
        return Err(broken(
            "the last entry's hash does not match its content (it was edited)".into(),
        ));
    }
    Ok(Link {
        seq: entry.seq,
        hash: entry.hash,
    })
}

/// Makes a newly created file's directory entry durable too: `sync_data` on the file alone
/// does not, on every file system, survive a power loss right after creation.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A trail created by hand or copied may be readable by others; it is not rewritten (that is
/// the operator's call), but said once at open.
fn warn_if_readable_by_others(file: &File, path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = file.metadata()
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{:o}", m.permissions().mode() & 0o777),
                "the audit trail is readable by other users; it names users and hosts \
                 (chmod 600 it)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
}

/// Who is writing: looked up once per process.
#[derive(Debug)]
struct Identity {
    user: String,
    host: String,
}

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| Identity {
        user: user(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
    })
}

/// The login name from the environment (what `sudo -u`, cron and systemd set), else the
/// numeric uid: a service account without a passwd entry (containers) still has one.
fn user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| {
            #[cfg(unix)]
            {
                format!("uid:{}", rustix::process::getuid().as_raw())
            }
            #[cfg(not(unix))]
            {
                "unknown".to_string()
            }
        })
}

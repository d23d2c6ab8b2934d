//! Checking a trail: every line an intact entry, numbered 1, 2, 3 … and chained to the one
//! before it.
//!
//! What this proves is internal consistency: no line was edited, deleted, inserted or moved —
//! unless whoever did it also rewrote every entry after it. Lines cut off the **end** of the
//! file leave a shorter chain that is just as consistent; only a copy of the last hash kept
//! elsewhere (which `reqsync audit verify` prints) shows that.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::chain::{self, GENESIS, Malformed};
use super::{AuditError, Entry};

/// The first thing wrong with a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    EmptyLine,
    /// The file does not end with a newline: the last line was cut off or never finished.
    Incomplete,
    NotUtf8,
    Malformed(Malformed),
    /// `seq` is not the line number.
    Seq {
        expected: u64,
        found: u64,
    },
    /// `prev` is not the hash of the line before (or, on line 1, not 64 zeros).
    Prev,
    /// The line's content does not hash to its `hash`.
    Hash,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::EmptyLine => write!(f, "the line is empty (a line was cut or edited)"),
            Problem::Incomplete => write!(
                f,
                "the last line has no newline at its end: the file was truncated mid-line, or a \
                 write was interrupted"
            ),
            Problem::NotUtf8 => write!(f, "the line is not UTF-8 text (it was edited)"),
            Problem::Malformed(m) => f.write_str(&describe_malformed(m)),
            Problem::Seq { expected, found } => write!(
                f,
                "`seq` is {found} on line {expected}: a line was deleted, inserted or moved \
                 before it"
            ),
            Problem::Prev => write!(
                f,
                "`prev` does not match the hash of the entry before it: this line was inserted \
                 or moved, or the one before it replaced"
            ),
            Problem::Hash => write!(
                f,
                "the hash does not match the line's content: it was edited"
            ),
        }
    }
}

pub(crate) fn describe_malformed(m: &Malformed) -> String {
    match m {
        Malformed::NotJson(e) => {
            format!("the line is not JSON ({e}): it was cut short or edited")
        }
        Malformed::NotEntry(why) => format!("the line is not an audit entry: {why}"),
    }
}

/// Where a trail breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// 1-based line number of the first bad line.
    pub line: u64,
    pub problem: Problem,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// One end of an intact trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryInfo {
    pub seq: u64,
    pub ts: Option<String>,
    pub event: Option<String>,
    pub hash: String,
}

impl fmt::Display for EntryInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.seq)?;
        if let Some(ts) = &self.ts {
            write!(f, " at {ts}")?;
        }
        if let Some(event) = &self.event {
            write!(f, " ({event})")?;
        }
        Ok(())
    }
}

/// An intact trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub entries: u64,
    pub first: Option<EntryInfo>,
    pub last: Option<EntryInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact(Summary),
    /// The first bad line, and how many entries before it are intact.
    Broken {
        at: Broken,
        intact: u64,
    },
}

/// Checks a trail's bytes.
pub fn verify_bytes(bytes: &[u8]) -> Verdict {
    walk(bytes, |_| ())
}

/// Checks a trail file. Only a file that cannot be read is an error; a broken chain is a
/// [`Verdict`].
pub fn verify_file(path: &Path) -> Result<Verdict, AuditError> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::io(path, "read", e))?;
    Ok(verify_bytes(&bytes))
}

/// Every entry of an intact trail, oldest first (for tests and tools; entries carry no row
/// values). A broken trail is an error naming the first bad line.
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, AuditError> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::io(path, "read", e))?;
    let mut entries = Vec::new();
    match walk(&bytes, |e| entries.push(e)) {
        Verdict::Intact(_) => Ok(entries),
        Verdict::Broken { at, .. } => Err(AuditError::Broken {
            path: path.to_path_buf(),
            at,
        }),
    }
}

fn walk(bytes: &[u8], mut each: impl FnMut(Entry)) -> Verdict {
    let mut prev = GENESIS.to_string();
    let mut first = None;
    let mut last = None;
    let mut n = 0u64;
    let mut rest = bytes;
    while !rest.is_empty() {
        let line_no = n + 1;
        let broken = |problem| Verdict::Broken {
            at: Broken {
                line: line_no,
                problem,
            },
            intact: n,
        };
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return broken(Problem::Incomplete);
        };
        let raw = &rest[..end];
        rest = &rest[end + 1..];
        if raw.is_empty() {
            return broken(Problem::EmptyLine);
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            return broken(Problem::NotUtf8);
        };
        let entry = match chain::unseal(line) {
            Ok(e) => e,
            Err(m) => return broken(Problem::Malformed(m)),
        };
        // Order matters for the message: a deleted or moved line shows first as a `seq` that
        // is not the line number; a forged line numbered to fit shows as a wrong `prev`.
        if entry.seq != line_no {
            return broken(Problem::Seq {
                expected: line_no,
                found: entry.seq,
            });
        }
        if entry.prev != prev {
            return broken(Problem::Prev);
        }
        if !entry.hash_matches {
            return broken(Problem::Hash);
        }
        let info = EntryInfo {
            seq: entry.seq,
            ts: entry
                .fields
                .get("ts")
                .and_then(|v| v.as_str())
                .map(String::from),
            event: entry
                .fields
                .get("event")
                .and_then(|v| v.as_str())
                .map(String::from),
            hash: entry.hash.clone(),
        };
        if first.is_none() {
            first = Some(info.clone());
        }
        last = Some(info);
        prev = entry.hash;
        each(entry.fields);
        n = line_no;
    }
    Verdict::Intact(Summary {
        entries: n,
        first,
        last,
    })
}

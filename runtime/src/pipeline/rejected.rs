//! The rejected rows of a job, kept for the run report and the quarantine (keys and finding
//! tags, no values).
//!
//! A job keeps every rejected row until its report is written, so this list would be the one
//! part of a run's memory that grows with the source: about 20,000 rows at a million doses, and
//! every row of the source when a broken module or template rejects them all. Rows are packed
//! into [`Chunk`]s (one text buffer and an offset per piece: a row costs its text plus about 30
//! bytes, where a `String` per key, group and finding cost about 250), and each chunk that
//! reaches [`SPILL_AT`] bytes is appended to an unnamed temporary file, so the memory held is
//! one chunk whatever the number of rows (docs/PERFORMANCE.md, "memory flat"). Reading them back
//! goes chunk by chunk, in the order the rows were rejected.
//!
//! The file holds what the report file holds (keys and finding tags) and has no name: the
//! operating system removes it when the run ends, however it ends. If it cannot be created or
//! written (a full or read-only temporary directory), the rows stay in memory: a report never
//! loses a row to a spill.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};

/// Bytes of packed rows (text and offsets) kept in memory before they go to the temporary
/// file: about 1,800 rejected rows of the default modules.
pub(crate) const SPILL_AT: usize = 128 << 10;

/// Rejected rows, in the order they were rejected.
pub struct RejectedRows {
    /// The rows not written out yet.
    tail: Chunk,
    /// The chunks written out, once one was.
    spill: Option<SpillFile>,
    /// Creating or writing the file failed once: every row since stays in memory (the chunks
    /// written before stay where they are).
    spill_failed: bool,
    len: usize,
    spill_at: usize,
    /// Where the temporary file goes; `None`: the system's temporary directory.
    spill_dir: Option<PathBuf>,
    /// Tests: writes after this many chunks fail, as on a full disk.
    #[cfg(test)]
    fail_after_chunks: Option<usize>,
}

/// The temporary file and each chunk's byte range in it, in order. A mutex because reading
/// seeks: two readers of one list must not move each other's position.
struct SpillFile {
    file: Mutex<File>,
    chunks: Vec<Range<u64>>,
}

impl Default for RejectedRows {
    fn default() -> Self {
        Self {
            tail: Chunk::default(),
            spill: None,
            spill_failed: false,
            len: 0,
            spill_at: SPILL_AT,
            spill_dir: None,
            #[cfg(test)]
            fail_after_chunks: None,
        }
    }
}

impl RejectedRows {
    /// A list that writes its chunks out at `spill_at` bytes into `dir` (tests: small chunks,
    /// and a directory that does not exist for the failure path).
    #[cfg(test)]
    fn spilling(spill_at: usize, dir: Option<PathBuf>) -> Self {
        Self {
            spill_at,
            spill_dir: dir,
            ..Self::default()
        }
    }

    pub fn push<S: AsRef<str>>(
        &mut self,
        key: &str,
        group: Option<&str>,
        findings: impl IntoIterator<Item = S>,
    ) {
        self.tail.push(key, group, findings);
        self.len += 1;
        if self.tail.bytes() >= self.spill_at && !self.spill_failed {
            self.spill_tail();
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many chunks of rows went to the temporary file.
    pub fn spilled_chunks(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.chunks.len())
    }

    /// Bytes of rows held in memory.
    #[cfg(test)]
    pub(crate) fn bytes_in_memory(&self) -> usize {
        self.tail.bytes()
    }

    /// The rows chunk by chunk, in order: the ones written out are read back one chunk at a
    /// time, the last is borrowed. An error means the temporary file could not be read back.
    pub fn chunks(&self) -> impl Iterator<Item = std::io::Result<Cow<'_, Chunk>>> + '_ {
        let spilled = self.spill.as_ref().map(|s| (s, s.chunks.as_slice()));
        spilled
            .into_iter()
            .flat_map(|(file, ranges)| ranges.iter().map(move |r| file.read_back(r)))
            .map(|chunk| chunk.map(Cow::Owned))
            .chain(std::iter::once(Ok(Cow::Borrowed(&self.tail))))
    }

    /// Calls `f` with every row, in order.
    pub fn try_for_each<E: From<std::io::Error>>(
        &self,
        mut f: impl FnMut(RejectedRow<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        for chunk in self.chunks() {
            for row in chunk?.iter() {
                f(row)?;
            }
        }
        Ok(())
    }

    /// Appends the tail to the temporary file and empties it; on failure the rows stay where
    /// they are, the chunks written before stay readable, and no further spill is tried.
    fn spill_tail(&mut self) {
        match self.write_tail() {
            Ok(()) => self.tail.clear(),
            Err(e) => {
                // Counts and the error only: the error names the temporary directory at most.
                tracing::warn!(
                    rows = self.len,
                    error = %e,
                    "cannot write rejected rows to a temporary file; keeping them in memory \
                     (check TMPDIR)"
                );
                self.spill_failed = true;
            }
        }
    }

    fn write_tail(&mut self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.tail)?;
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => {
                let file = match &self.spill_dir {
                    Some(dir) => tempfile::tempfile_in(dir)?,
                    None => tempfile::tempfile()?,
                };
                self.spill.insert(SpillFile {
                    file: Mutex::new(file),
                    chunks: Vec::new(),
                })
            }
        };
        #[cfg(test)]
        if self.fail_after_chunks == Some(spill.chunks.len()) {
            return Err(std::io::Error::other("test: the disk is full"));
        }
        let SpillFile { file, chunks } = spill;
        let file = file.get_mut().unwrap_or_else(|p| p.into_inner());
        let start = chunks.last().map_or(0, |r| r.end);
        file.seek(SeekFrom::Start(start))?;
        file.write_all(&bytes)?;
        // Only a chunk written whole is recorded: after a failed write, the rows are still
        // in the tail and the half-written bytes are never read.
        chunks.push(start..start + bytes.len() as u64);
        Ok(())
    }
}

impl SpillFile {
    fn read_back(&self, range: &Range<u64>) -> std::io::Result<Chunk> {
        let mut bytes = vec![0; (range.end - range.start) as usize];
        {
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            file.seek(SeekFrom::Start(range.start))?;
            file.read_exact(&mut bytes)?;
        }
        let rows: Vec<SpilledRow<'_>> = serde_json::from_slice(&bytes)?;
        let mut chunk = Chunk::default();
        for row in &rows {
            chunk.push(&row.key, row.group.as_deref(), &row.findings);
        }
        Ok(chunk)
    }
}

/// A row as a chunk is written out: the report's own format.
#[derive(Deserialize)]
struct SpilledRow<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    group: Option<Cow<'a, str>>,
    #[serde(borrow)]
    findings: Vec<Cow<'a, str>>,
}

/// Rejected rows packed: each row's pieces back to back in one text buffer.
#[derive(Default, Clone)]
pub struct Chunk {
    /// Each row's pieces back to back: its key, its group if it has one, its finding tags.
    text: String,
    /// Where each piece ends in `text`.
    ends: Vec<usize>,
    rows: Vec<PackedRow>,
}

#[derive(Clone, Copy)]
struct PackedRow {
    /// Index in `ends` of the row's first piece (its key).
    first: usize,
    findings: usize,
    has_group: bool,
}

/// One rejected row, borrowed from its chunk.
#[derive(Debug, Clone, Copy)]
pub struct RejectedRow<'a> {
    pub key: &'a str,
    /// The row's group (dose jobs: the patient), whose other rows are held back with it.
    pub group: Option<&'a str>,
    pub findings: Findings<'a>,
}

/// A rejected row's finding tags (`field:code`).
#[derive(Clone, Copy)]
pub struct Findings<'a> {
    chunk: &'a Chunk,
    /// Range of pieces in `chunk.ends`.
    first: usize,
    end: usize,
}

impl Chunk {
    fn push<S: AsRef<str>>(
        &mut self,
        key: &str,
        group: Option<&str>,
        findings: impl IntoIterator<Item = S>,
    ) {
        let first = self.ends.len();
        self.piece(key);
        if let Some(g) = group {
            self.piece(g);
        }
        let before = self.ends.len();
        for f in findings {
            self.piece(f.as_ref());
        }
        self.rows.push(PackedRow {
            first,
            findings: self.ends.len() - before,
            has_group: group.is_some(),
        });
    }

    fn piece(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.rows.clear();
    }

    /// What the rows take in memory (the buffers' lengths, not their capacity).
    fn bytes(&self) -> usize {
        self.text.len()
            + self.ends.len() * size_of::<usize>()
            + self.rows.len() * size_of::<PackedRow>()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<RejectedRow<'_>> {
        let row = *self.rows.get(i)?;
        let mut at = row.first;
        let key = self.piece_at(at);
        at += 1;
        let group = row.has_group.then(|| {
            at += 1;
            self.piece_at(at - 1)
        });
        Some(RejectedRow {
            key,
            group,
            findings: Findings {
                chunk: self,
                first: at,
                end: at + row.findings,
            },
        })
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = RejectedRow<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("index below len"))
    }

    fn piece_at(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

impl<'a> Findings<'a> {
    pub fn len(&self) -> usize {
        self.end - self.first
    }

    pub fn is_empty(&self) -> bool {
        self.first == self.end
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        let chunk = self.chunk;
        (self.first..self.end).map(move |i| chunk.piece_at(i))
    }

    /// The tags separated by `sep`, for messages.
    pub fn join(&self, sep: &str) -> String {
        self.iter().collect::<Vec<_>>().join(sep)
    }
}

impl std::fmt::Debug for Findings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Keys and finding codes only, like the report they go into.
impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The count, how many chunks are in the temporary file, and the rows still in memory.
impl std::fmt::Debug for RejectedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectedRows")
            .field("rows", &self.len)
            .field("chunks_in_file", &self.spilled_chunks())
            .field("in_memory", &self.tail)
            .finish()
    }
}

impl Serialize for Findings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for tag in self.iter() {
            seq.serialize_element(tag)?;
        }
        seq.end()
    }
}

/// `{"key": …, "group": …, "findings": […]}`, `group` left out when the row has none: the
/// report's format from before the rows were packed.
impl Serialize for RejectedRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2 + usize::from(self.group.is_some())))?;
        map.serialize_entry("key", self.key)?;
        if let Some(g) = self.group {
            map.serialize_entry("group", g)?;
        }
        map.serialize_entry("findings", &self.findings)?;
        map.end()
    }
}

impl Serialize for Chunk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// All rows as one list, the written-out chunks read back one at a time.
impl Serialize for RejectedRows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len))?;
        for chunk in self.chunks() {
            let chunk = chunk.map_err(|e| {
                serde::ser::Error::custom(format!(
                    "cannot read back the rejected rows kept in a temporary file: {e}"
                ))
            })?;
            for row in chunk.iter() {
                seq.serialize_element(&row)?;
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_sample(rows: &mut RejectedRows) {
        rows.push("1001", None, ["last_name:blank"]);
        rows.push(
            "2002",
            Some("17"),
            ["cvx_code:unknown-code", "dob:required"],
        );
        rows.push("", None, Vec::<String>::new());
        rows.push("3003", Some(""), ["x:y"]);
    }

    fn sample() -> RejectedRows {
        let mut rows = RejectedRows::default();
        push_sample(&mut rows);
        rows
    }

    type Owned = (String, Option<String>, Vec<String>);

    fn read_all(rows: &RejectedRows) -> Vec<Owned> {
        let mut all = Vec::new();
        rows.try_for_each(|r| {
            all.push((
                r.key.to_string(),
                r.group.map(str::to_string),
                r.findings.iter().map(str::to_string).collect(),
            ));
            Ok::<_, std::io::Error>(())
        })
        .expect("read back");
        all
    }

    /// Rows whose pieces need JSON escapes on the way to the file and back.
    fn many(rows: &mut RejectedRows, n: usize) -> Vec<Owned> {
        (0..n)
            .map(|i| {
                let key = format!("{i}\"\\\n\u{e9}");
                let group = (i % 3 != 0).then(|| format!("g{}", i / 4));
                let findings: Vec<String> = (0..i % 3).map(|f| format!("f{f}:code")).collect();
                rows.push(&key, group.as_deref(), &findings);
                (key, group, findings)
            })
            .collect()
    }

    #[test]
    fn packed_rows_read_back_as_pushed() {
        let rows = sample();
        assert_eq!(rows.len(), 4);
        let chunk = rows.chunks().next().unwrap().unwrap();
        let got: Vec<(&str, Option<&str>, Vec<&str>)> = chunk
            .iter()
            .map(|r| (r.key, r.group, r.findings.iter().collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("1001", None, vec!["last_name:blank"]),
                (
                    "2002",
                    Some("17"),
                    vec!["cvx_code:unknown-code", "dob:required"]
                ),
                ("", None, vec![]),
                ("3003", Some(""), vec!["x:y"]),
            ]
        );
        assert!(chunk.get(4).is_none());
        assert_eq!(
            chunk.get(1).unwrap().findings.join(", "),
            "cvx_code:unknown-code, dob:required"
        );
    }

    #[test]
    fn packed_rows_serialize_in_the_report_format_of_unpacked_rows() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"key": "1001", "findings": ["last_name:blank"]},
                {"key": "2002", "group": "17", "findings": ["cvx_code:unknown-code", "dob:required"]},
                {"key": "", "findings": []},
                {"key": "3003", "group": "", "findings": ["x:y"]},
            ])
        );
    }

    #[test]
    fn rows_written_to_the_temporary_file_read_back_in_order() {
        let mut rows = RejectedRows::spilling(256, None);
        let pushed = many(&mut rows, 500);
        assert!(
            rows.chunks().count() > 10,
            "the test must cross many chunks: {rows:?}"
        );
        assert_eq!(rows.len(), 500);
        assert_eq!(read_all(&rows), pushed);
        // Twice: reading back must not disturb the file.
        assert_eq!(read_all(&rows), pushed);
    }

    #[test]
    fn rows_in_the_temporary_file_serialize_like_rows_in_memory() {
        let mut spilled = RejectedRows::spilling(64, None);
        let mut in_memory = RejectedRows::default();
        many(&mut spilled, 200);
        many(&mut in_memory, 200);
        push_sample(&mut spilled);
        push_sample(&mut in_memory);
        assert!(spilled.chunks().count() > 1);
        assert_eq!(in_memory.chunks().count(), 1);
        assert_eq!(
            serde_json::to_string(&spilled).unwrap(),
            serde_json::to_string(&in_memory).unwrap()
        );
    }

    #[test]
    fn rejected_rows_in_memory_stay_bounded_however_many_rows_are_rejected() {
        let mut rows = RejectedRows::default();
        let mut most = 0;
        for i in 0..200_000 {
            rows.push(
                &format!("{i:09}"),
                Some("123456"),
                ["cvx_code:unknown-code"],
            );
            most = most.max(rows.bytes_in_memory());
        }
        assert!(most < SPILL_AT + 1024, "{most} bytes held");
        assert_eq!(rows.len(), 200_000);
        let mut n = 0;
        rows.try_for_each(|r| {
            assert_eq!(r.key, format!("{n:09}"));
            n += 1;
            Ok::<_, std::io::Error>(())
        })
        .unwrap();
        assert_eq!(n, 200_000);
    }

    #[test]
    fn a_write_failing_after_some_chunks_keeps_those_chunks_and_every_later_row() {
        let mut rows = RejectedRows::spilling(64, None);
        rows.fail_after_chunks = Some(3);
        let pushed = many(&mut rows, 300);
        assert_eq!(rows.spilled_chunks(), 3, "{rows:?}");
        assert_eq!(read_all(&rows), pushed);
    }

    #[test]
    fn a_temporary_file_that_cannot_be_created_keeps_every_row_in_memory() {
        let missing = tempfile::tempdir().unwrap().path().join("gone");
        let mut rows = RejectedRows::spilling(64, Some(missing));
        let pushed = many(&mut rows, 300);
        assert_eq!(rows.chunks().count(), 1);
        assert_eq!(read_all(&rows), pushed);
    }
}

//! The rejected rows of a job, kept for the run report (keys and finding tags, no values).
//!
//! A job keeps every rejected row until the report is written, so this list is the one part
//! of a run's live memory that grows with the source. A `Vec` of rows with a `String` per key,
//! group and finding cost about 250 bytes a row (allocator overhead included): 1.77 MB of a
//! million-dose dry run's 9.65 MB peak heap, with about 20,000 rejected rows (heaptrack;
//! docs/PERFORMANCE.md, "Session 6"). Packed into one text buffer and an offset per piece, a
//! row costs its text plus about 30 bytes.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Rejected rows, in the order they were rejected.
#[derive(Default, Clone)]
pub struct RejectedRows {
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

/// One rejected row, borrowed from the list.
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
    list: &'a RejectedRows,
    /// Range of pieces in `list.ends`.
    first: usize,
    end: usize,
}

impl RejectedRows {
    pub fn push<S: AsRef<str>>(
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
                list: self,
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
        let list = self.list;
        (self.first..self.end).map(move |i| list.piece_at(i))
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
impl std::fmt::Debug for RejectedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
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

impl Serialize for RejectedRows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RejectedRows {
        let mut rows = RejectedRows::default();
        rows.push("1001", None, ["last_name:blank"]);
        rows.push(
            "2002",
            Some("17"),
            ["cvx_code:unknown-code", "dob:required"],
        );
        rows.push("", None, Vec::<String>::new());
        rows.push("3003", Some(""), ["x:y"]);
        rows
    }

    #[test]
    fn packed_rows_read_back_as_pushed() {
        let rows = sample();
        assert_eq!(rows.len(), 4);
        let got: Vec<(&str, Option<&str>, Vec<&str>)> = rows
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
        assert!(rows.get(4).is_none());
        assert_eq!(
            rows.get(1).unwrap().findings.join(", "),
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
}

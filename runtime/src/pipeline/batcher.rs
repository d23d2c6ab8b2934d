//! Cutting a job's emitted records into requests.
//!
//! Records go out `batch_size` at a time, with one exception that ReqCheck forces: a dose
//! request replaces the whole dose history of every patient it mentions, so the rows of one
//! patient (one *group*) always travel together, even when that makes a request larger than
//! `batch_size`. If any row of a group is rejected, the whole group is held back: sending the
//! rest would delete the rejected dose from ReqCheck's copy of the patient's history, while
//! holding back keeps ReqCheck's last complete history until the row is fixed at the source.
//!
//! Requests may be stored by ReqCheck in either order when several are in flight, which is
//! safe only for requests that share no patient. A grouped job's requests never do (a group is
//! closed for good once its rows are behind); in an ungrouped job a row key may come again
//! (a query returning one patient twice), so the batcher marks a request holding a key that an
//! earlier request held ([`Request::repeats_a_key`]), and the sender waits for every earlier
//! answer before sending it.

use std::collections::{BTreeMap, HashSet};

use compact_str::CompactString;

pub use super::rejected::RejectedRows;
pub use crate::transform::Record;
use crate::transform::{RowOutcome, Verdict};

/// Skip code for rows held back because another row of their group was rejected.
pub(crate) const GROUP_HELD_BACK: &str = "group-has-rejected-row";

/// Counts of what happened to a job's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub read: u64,
    pub emitted: u64,
    /// Skip code → rows.
    pub skipped: BTreeMap<String, u64>,
    /// `field:code` → rows carrying that finding.
    pub rejected_findings: BTreeMap<String, u64>,
    pub rejected: u64,
    /// `field:code` → emitted rows carrying that warning.
    pub warnings: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(
        "the query returned the rows of group `{group}` (column `{column}`) in more than one run; \
         ReqCheck replaces a patient's doses per request, so the query must ORDER BY `{column}`"
    )]
    GroupNotContiguous { group: String, column: String },
}

/// The groups whose rows are behind us, to catch a query that is not ordered by its group
/// column. A full sync has one group per patient, so this is the one thing the batcher keeps
/// for every row it saw. Patient numbers are integers and go into a compressed bitmap: a few
/// bytes per patient at worst, kilobytes for a run of consecutive numbers, where a set of
/// strings took about 60 bytes per patient and made a million-dose sync's memory grow.
#[derive(Default)]
struct ClosedGroups {
    numbers: roaring::RoaringTreemap,
    others: HashSet<String>,
}

impl ClosedGroups {
    /// Whether `group` was not there yet.
    fn insert(&mut self, group: CompactString) -> bool {
        match canonical_integer(&group) {
            // Reinterpreting the bits maps every i64 to its own u64.
            Some(n) => self.numbers.insert(n as u64),
            None => self.others.insert(group.into_string()),
        }
    }

    fn contains(&self, group: &str) -> bool {
        match canonical_integer(group) {
            Some(n) => self.numbers.contains(n as u64),
            None => self.others.contains(group),
        }
    }
}

/// The integer a group key spells, when it is the one way to spell it (`"7"`, not `"07"` or
/// `"+7"`), so that two different keys never share a number.
fn canonical_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0";
    canonical.then(|| s.parse().ok()).flatten()
}

/// One request's records, in order.
#[derive(Debug)]
pub struct Request {
    pub records: Vec<Record>,
    /// Holds the key of a row that an earlier request of the job held (ungrouped jobs only):
    /// it must not overtake any earlier request.
    pub repeats_a_key: bool,
}

struct OpenGroup {
    key: CompactString,
    records: Vec<Record>,
    rejected: bool,
}

/// Turns row outcomes into request-sized lists of records.
pub(crate) struct RequestBatcher {
    batch_size: usize,
    group_column: Option<String>,
    pending: Vec<Record>,
    /// Whether `pending` holds a key seen before (see [`Request::repeats_a_key`]).
    pending_repeats: bool,
    open: Option<OpenGroup>,
    closed: ClosedGroups,
    /// Ungrouped jobs: the keys of the records handed out or pending (a bitmap for integer
    /// keys, as for `closed`).
    emitted_keys: ClosedGroups,
    pub counts: RowCounts,
    pub rejected_rows: RejectedRows,
}

/// Records hold PHI: Debug shows sizes and counts only.
impl std::fmt::Debug for RequestBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBatcher")
            .field("batch_size", &self.batch_size)
            .field("pending", &self.pending.len())
            .field("counts", &self.counts)
            .finish()
    }
}

impl RequestBatcher {
    /// `group_column` names the query column whose rows must stay together (None: no groups).
    pub fn new(batch_size: usize, group_column: Option<String>) -> Self {
        Self {
            batch_size: batch_size.max(1),
            group_column,
            pending: Vec::new(),
            pending_repeats: false,
            open: None,
            closed: ClosedGroups::default(),
            emitted_keys: ClosedGroups::default(),
            counts: RowCounts::default(),
            rejected_rows: RejectedRows::default(),
        }
    }

    /// Takes one row's outcome; returns the requests that became complete.
    pub fn push(&mut self, outcome: RowOutcome) -> Result<Vec<Request>, BatchError> {
        self.counts.read += 1;
        let mut ready = Vec::new();
        if let (Some(column), Some(group)) = (&self.group_column, &outcome.group) {
            let same = self.open.as_ref().is_some_and(|g| g.key == *group);
            if !same {
                if self.closed.contains(group) {
                    return Err(BatchError::GroupNotContiguous {
                        group: group.to_string(),
                        column: column.clone(),
                    });
                }
                self.close_group(&mut ready);
                self.open = Some(OpenGroup {
                    key: group.clone(),
                    records: Vec::new(),
                    rejected: false,
                });
            }
        }
        match outcome.verdict {
            Verdict::Emit { record, warnings } => {
                self.counts.emitted += 1;
                for w in &warnings {
                    *self.counts.warnings.entry(w.tag()).or_default() += 1;
                }
                match &mut self.open {
                    Some(g) => g.records.push(record),
                    None => {
                        if self.group_column.is_none()
                            && !self.emitted_keys.insert(outcome.key.clone())
                        {
                            self.pending_repeats = true;
                        }
                        self.pending.push(record);
                        if self.pending.len() >= self.batch_size {
                            ready.push(self.take_pending());
                        }
                    }
                }
            }
            Verdict::Skip { code, .. } => {
                *self.counts.skipped.entry(code).or_default() += 1;
            }
            Verdict::Reject { findings } => {
                self.counts.rejected += 1;
                let tags: Vec<String> = findings.iter().map(|f| f.tag()).collect();
                self.rejected_rows
                    .push(&outcome.key, outcome.group.as_deref(), &tags);
                for t in tags {
                    *self.counts.rejected_findings.entry(t).or_default() += 1;
                }
                if let Some(g) = &mut self.open {
                    g.rejected = true;
                }
            }
        }
        Ok(ready)
    }

    /// Ends the input; returns the last requests (the counts stay for the report).
    pub fn flush(&mut self) -> Vec<Request> {
        let mut ready = Vec::new();
        self.close_group(&mut ready);
        if !self.pending.is_empty() {
            ready.push(self.take_pending());
        }
        ready
    }

    fn take_pending(&mut self) -> Request {
        Request {
            records: std::mem::take(&mut self.pending),
            repeats_a_key: std::mem::take(&mut self.pending_repeats),
        }
    }

    fn close_group(&mut self, ready: &mut Vec<Request>) {
        let Some(group) = self.open.take() else {
            return;
        };
        self.closed.insert(group.key);
        if group.records.is_empty() {
            return;
        }
        if group.rejected {
            let n = group.records.len() as u64;
            self.counts.emitted -= n;
            *self
                .counts
                .skipped
                .entry(GROUP_HELD_BACK.into())
                .or_default() += n;
            return;
        }
        if !self.pending.is_empty() && self.pending.len() + group.records.len() > self.batch_size {
            ready.push(self.take_pending());
        }
        self.pending.extend(group.records);
        if self.pending.len() >= self.batch_size {
            ready.push(self.take_pending());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Finding;
    use serde_json::{Map, Value};

    fn emit(key: u32, group: Option<&str>) -> RowOutcome {
        let mut record = Map::new();
        record.insert("k".into(), Value::from(key));
        RowOutcome {
            key: key.to_string().into(),
            group: group.map(Into::into),
            verdict: Verdict::Emit {
                record: record.into(),
                warnings: vec![],
            },
        }
    }

    fn reject(key: u32, group: Option<&str>) -> RowOutcome {
        RowOutcome {
            key: key.to_string().into(),
            group: group.map(Into::into),
            verdict: Verdict::Reject {
                findings: vec![Finding {
                    field: "cvx_code".into(),
                    code: "unknown-code".into(),
                    message: String::new(),
                }],
            },
        }
    }

    fn keys(requests: &[Request]) -> Vec<Vec<u64>> {
        requests
            .iter()
            .map(|r| {
                r.records
                    .iter()
                    .map(|rec| rec["k"].as_u64().unwrap())
                    .collect()
            })
            .collect()
    }

    fn run(
        batch: usize,
        grouped: bool,
        outcomes: Vec<RowOutcome>,
    ) -> Result<(Vec<Request>, RowCounts), BatchError> {
        let mut b = RequestBatcher::new(batch, grouped.then(|| "patno".to_string()));
        let mut all = vec![];
        for o in outcomes {
            all.extend(b.push(o)?);
        }
        let rest = b.flush();
        let counts = b.counts;
        all.extend(rest);
        Ok((all, counts))
    }

    #[test]
    fn ungrouped_records_go_batch_size_at_a_time() {
        let (reqs, counts) = run(2, false, (1..=5).map(|k| emit(k, None)).collect()).unwrap();
        assert_eq!(keys(&reqs), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(counts.emitted, 5);
    }

    #[test]
    fn a_patient_whose_doses_outnumber_the_batch_size_goes_in_one_request() {
        let mut rows: Vec<_> = (1..=2).map(|k| emit(k, Some("A"))).collect();
        rows.extend((3..=7).map(|k| emit(k, Some("B"))));
        rows.push(emit(8, Some("C")));
        let (reqs, _) = run(3, true, rows).unwrap();
        assert_eq!(keys(&reqs), vec![vec![1, 2], vec![3, 4, 5, 6, 7], vec![8]]);
    }

    #[test]
    fn groups_are_never_split_across_requests() {
        let rows = vec![
            emit(1, Some("A")),
            emit(2, Some("A")),
            emit(3, Some("B")),
            emit(4, Some("B")),
            emit(5, Some("C")),
        ];
        let (reqs, _) = run(3, true, rows).unwrap();
        assert_eq!(keys(&reqs), vec![vec![1, 2], vec![3, 4, 5]]);
    }

    #[test]
    fn a_rejected_dose_holds_back_its_patients_other_doses() {
        let rows = vec![
            emit(1, Some("A")),
            reject(2, Some("A")),
            emit(3, Some("A")),
            emit(4, Some("B")),
        ];
        let (reqs, counts) = run(10, true, rows).unwrap();
        assert_eq!(keys(&reqs), vec![vec![4]]);
        assert_eq!(counts.rejected, 1);
        assert_eq!(counts.emitted, 1);
        assert_eq!(counts.skipped[GROUP_HELD_BACK], 2);
    }

    #[test]
    fn rows_of_a_group_out_of_order_are_an_error() {
        let rows = vec![emit(1, Some("A")), emit(2, Some("B")), emit(3, Some("A"))];
        assert!(matches!(
            run(10, true, rows),
            Err(BatchError::GroupNotContiguous { .. })
        ));
    }

    #[test]
    fn integer_and_text_group_keys_are_told_apart_exactly() {
        assert_eq!(canonical_integer("42"), Some(42));
        assert_eq!(canonical_integer("-7"), Some(-7));
        assert_eq!(canonical_integer("0"), Some(0));
        for s in [
            "07",
            "+7",
            "-0",
            "",
            "-",
            "4 2",
            "x",
            "99999999999999999999",
        ] {
            assert_eq!(canonical_integer(s), None, "{s}");
        }
        // Keys are compared as text, as they always were: "7" and "07" are two groups.
        let rows = vec![emit(1, Some("7")), emit(2, Some("07")), emit(3, Some("7"))];
        assert!(matches!(
            run(10, true, rows),
            Err(BatchError::GroupNotContiguous { .. })
        ));
        let rows = vec![emit(1, Some("7")), emit(2, Some("07")), emit(3, Some("8"))];
        assert!(run(10, true, rows).is_ok());
        let rows = vec![emit(1, Some("-1")), emit(2, Some("1")), emit(3, Some("-1"))];
        assert!(matches!(
            run(10, true, rows),
            Err(BatchError::GroupNotContiguous { .. })
        ));
    }

    #[test]
    fn an_ungrouped_request_repeating_an_earlier_key_is_marked() {
        // Keys 1 2 | 3 1 | 4 5 | 2: the second and fourth requests repeat a key.
        let rows = [1, 2, 3, 1, 4, 5, 2].map(|k| emit(k, None)).to_vec();
        let (reqs, _) = run(2, false, rows).unwrap();
        let marks: Vec<bool> = reqs.iter().map(|r| r.repeats_a_key).collect();
        assert_eq!(marks, [false, true, false, true]);
        // Grouped requests never share a group, and are never marked.
        let rows = vec![emit(1, Some("A")), emit(1, Some("B")), emit(1, Some("C"))];
        let (reqs, _) = run(1, true, rows).unwrap();
        assert!(reqs.iter().all(|r| !r.repeats_a_key));
    }

    #[test]
    fn no_request_is_empty() {
        let (reqs, _) = run(2, true, vec![reject(1, Some("A"))]).unwrap();
        assert!(reqs.is_empty());
        let (reqs, _) = run(2, false, vec![]).unwrap();
        assert!(reqs.is_empty());
    }
}

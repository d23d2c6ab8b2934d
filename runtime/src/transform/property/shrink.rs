//! A failing row shrunk to a minimal one, in two steps.
//!
//! First the generator's own shrinking (proptest's value tree: each column's value simplified
//! within the strategy that made it, tied key columns together), for at most
//! [`GENERATOR_CHECKS`] checks: on a wide row with long texts it can wander for thousands of
//! checks and still leave unrelated columns odd. Then a pass of our own, column by column until
//! a whole round changes nothing: each column is tried at NULL (where nullable), then at its
//! plainest valid value (`generate::plainest_values`), and a value that must stay is made
//! smaller (the shortest prefix and suffix of a text, the integer closest to the plainest one,
//! plain letters for a text). A change is kept only when the row still breaks the same property
//! the same way. Every accepted change makes the row strictly plainer, so the pass ends; the
//! check cap and the time limit are only a guard, and the report says when either stopped it.

use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;
use serde::Serialize;
use serde_json::Value;

use super::checks::Violation;
use super::generate::GeneratedRow;

/// Checks the generator's shrinking may spend before the column pass takes over. Enough for what
/// only it does well (columns generated as one value, shrunk together); measured on a
/// 13-column row failing on one column, it took 250–500 checks where the column pass alone
/// reached the same row in about 30.
pub(crate) const GENERATOR_CHECKS: u64 = 100;

/// Checks a whole shrink may spend: far above what the column pass needs (a few per column and
/// round, a few dozen for a long text), so reaching it means something unforeseen.
pub(crate) const MAX_CHECKS: u64 = 20_000;

/// How shrinking went, reported with the failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShrinkSummary {
    /// Rows checked while shrinking, both steps.
    pub checks: u64,
    /// Of which the generator's own shrinking.
    pub generator_checks: u64,
    /// Whether the generator's shrinking stopped at its cap of [`GENERATOR_CHECKS`] (the column
    /// pass then went on from where it stopped).
    pub generator_capped: bool,
    /// Whether the column pass reached its end: no column can be made plainer while the row
    /// still fails. When false, `stopped` says why and the row may not be minimal.
    pub complete: bool,
    pub stopped: Option<String>,
}

/// What shrinking may take each column to.
#[derive(Debug, Clone)]
pub struct Plainest {
    pub nullable: bool,
    pub value: Value,
    /// Columns the generator often gives this column's value (`generate::tie_groups`): while
    /// they hold the same value, they are also tried moving together, since a failure may need
    /// them equal (a dose's `patno` and its patient's).
    pub tied: Vec<usize>,
}

/// Shrinks `tree`'s row, which failed with `failure`; `test` checks one row alone.
pub fn shrink(
    tree: &mut dyn ValueTree<Value = GeneratedRow>,
    failure: Violation,
    plainest: &[Plainest],
    max_time: Duration,
    test: impl FnMut(&GeneratedRow) -> Result<(), Violation>,
) -> (GeneratedRow, Violation, ShrinkSummary) {
    let mut search = Search {
        test,
        failure,
        started: Instant::now(),
        max_time,
        checks: 0,
        stopped: None,
    };
    let original = tree.current();
    // Found in a batch of generated rows: shrinking checks rows alone, so the row must fail
    // alone first (a module keeping state between rows may not).
    if !search.fails(&original) {
        let summary = ShrinkSummary {
            checks: search.checks,
            generator_checks: 0,
            generator_capped: false,
            complete: false,
            stopped: Some(search.stopped.take().unwrap_or_else(|| {
                "the row passes when checked alone: the failure needs the rows generated \
                 before it"
                    .into()
            })),
        };
        return (original, search.failure, summary);
    }
    let (row, generator_checks, generator_capped) = search.generator(tree, original);
    let row = search.columns(row, plainest);
    let summary = ShrinkSummary {
        checks: search.checks,
        generator_checks,
        generator_capped,
        complete: search.stopped.is_none(),
        stopped: search.stopped,
    };
    (row, search.failure, summary)
}

struct Search<F> {
    test: F,
    /// The failure of the last row found failing: what a smaller row must reproduce.
    failure: Violation,
    started: Instant,
    max_time: Duration,
    checks: u64,
    stopped: Option<String>,
}

impl<F: FnMut(&GeneratedRow) -> Result<(), Violation>> Search<F> {
    /// Whether `row` fails as the last failing row did. False, and `stopped` set, once the
    /// check cap or the time limit is reached.
    fn fails(&mut self, row: &GeneratedRow) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        if self.checks >= MAX_CHECKS {
            self.stopped = Some(format!("the cap of {MAX_CHECKS} checks was reached"));
            return false;
        }
        if self.started.elapsed() > self.max_time {
            self.stopped = Some(format!(
                "the time limit of {} s was reached",
                self.max_time.as_secs_f64()
            ));
            return false;
        }
        self.checks += 1;
        match (self.test)(row) {
            Err(v) if v.same_failure(&self.failure) => {
                self.failure = v;
                true
            }
            _ => false,
        }
    }

    /// proptest's shrinking loop over the value tree, capped; returns the last failing row.
    fn generator(
        &mut self,
        tree: &mut dyn ValueTree<Value = GeneratedRow>,
        mut best: GeneratedRow,
    ) -> (GeneratedRow, u64, bool) {
        let mut checks = 0;
        let mut more = tree.simplify();
        while more {
            if checks >= GENERATOR_CHECKS {
                return (best, checks, true);
            }
            checks += 1;
            let row = tree.current();
            if self.fails(&row) {
                best = row;
                more = tree.simplify();
            } else if self.stopped.is_some() {
                break;
            } else {
                more = tree.complicate();
            }
        }
        (best, checks, false)
    }

    /// The column pass, round after round until nothing changes.
    fn columns(&mut self, mut row: GeneratedRow, plainest: &[Plainest]) -> GeneratedRow {
        loop {
            let before = row.clone();
            for (c, plain) in plainest.iter().enumerate().take(row.len()) {
                let mut together = vec![c];
                together.extend(plain.tied.iter().filter(|&&t| row.get(t) == row.get(c)));
                self.plainer(&mut row, &together, plain);
                if row[c].as_ref().is_none_or(|v| *v == plain.value) {
                    continue;
                }
                match (row[c].clone(), plain.value.as_i64()) {
                    (Some(Value::String(text)), _) => self.shorter_text(&mut row, c, &text),
                    (Some(Value::Number(n)), Some(p)) => {
                        // Alone first; tied columns together if that got nowhere.
                        if let Some(v) = n.as_i64()
                            && !self.closer_integer(&mut row, &together[..1], v, p)
                            && together.len() > 1
                        {
                            self.closer_integer(&mut row, &together, v, p);
                        }
                    }
                    _ => {}
                }
            }
            if row == before || self.stopped.is_some() {
                return row;
            }
        }
    }

    /// NULL (if the column may hold it), else the plainest value, if the row still fails: for
    /// the column alone, then with the columns tied to it (`together[1..]`).
    fn plainer(&mut self, row: &mut GeneratedRow, together: &[usize], plain: &Plainest) {
        let c = together[0];
        let candidates = [
            plain.nullable.then_some(None),
            Some(Some(plain.value.clone())),
        ];
        for candidate in candidates.into_iter().flatten() {
            if row[c] == candidate {
                return; // nothing plainer to try
            }
            let mut options = vec![&together[..1]];
            if together.len() > 1 {
                options.push(together);
            }
            for cols in options {
                let trial = with(row, cols, &candidate);
                if self.fails(&trial) {
                    *row = trial;
                    return;
                }
            }
        }
    }

    /// The shortest prefix, then the shortest suffix of that, that still fails (by bisection:
    /// a failure that needs the text long enough is monotone in its length); then the same
    /// length in plain letters.
    fn shorter_text(&mut self, row: &mut GeneratedRow, c: usize, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let text_row = |row: &GeneratedRow, chars: &[char]| {
            let mut trial = row.clone();
            trial[c] = Some(Value::String(chars.iter().collect()));
            trial
        };
        let keep = self.shortest(chars.len(), |s, n| s.fails(&text_row(row, &chars[..n])));
        let chars = &chars[..keep];
        let keep = self.shortest(chars.len(), |s, n| {
            s.fails(&text_row(row, &chars[chars.len() - n..]))
        });
        let mut chars = chars[chars.len() - keep..].to_vec();
        if chars.iter().any(|&ch| ch != 'a') {
            let plain = vec!['a'; chars.len()];
            if self.fails(&text_row(row, &plain)) {
                chars = plain;
            }
        }
        row[c] = Some(Value::String(chars.into_iter().collect()));
    }

    /// The smallest `n` in `0..=len` for which `fails(n)` holds, given that it holds for `len`.
    fn shortest(&mut self, len: usize, mut fails: impl FnMut(&mut Self, usize) -> bool) -> usize {
        let (mut lo, mut hi) = (0, len);
        while lo < hi && self.stopped.is_none() {
            let mid = lo + (hi - lo) / 2;
            if fails(self, mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        hi
    }

    /// The integer closest to the plainest value `p` that still fails, for the columns `cols`
    /// (holding `v`), by bisection between `p` (which did not fail) and `v` (which does).
    /// Whether it got closer.
    fn closer_integer(&mut self, row: &mut GeneratedRow, cols: &[usize], v: i64, p: i64) -> bool {
        let (mut good, mut bad) = (i128::from(p), i128::from(v));
        while (bad - good).abs() > 1 && self.stopped.is_none() {
            let mid = good + (bad - good) / 2;
            // `mid` lies between two i64 values.
            let trial = with(row, cols, &Some(Value::from(mid as i64)));
            if self.fails(&trial) {
                bad = mid;
                *row = trial;
            } else {
                good = mid;
            }
        }
        bad != i128::from(v)
    }
}

/// `row` with each of `cols` set to `value`.
fn with(row: &GeneratedRow, cols: &[usize], value: &Option<Value>) -> GeneratedRow {
    let mut trial = row.clone();
    for &c in cols {
        trial[c] = value.clone();
    }
    trial
}

#[cfg(test)]
mod tests {
    use proptest::strategy::{Just, Strategy};
    use proptest::test_runner::TestRunner;
    use serde_json::json;

    use super::*;
    use crate::transform::property::checks::Property;

    fn columns() -> Vec<Plainest> {
        let column = |nullable, value: Value| Plainest {
            nullable,
            value,
            tied: Vec::new(),
        };
        vec![
            column(false, json!(1)),
            column(false, json!("A")),
            column(true, json!("F")),
            column(true, json!(1)),
            column(false, json!("1900-01-01")),
        ]
    }

    fn junk() -> GeneratedRow {
        vec![
            Some(json!(48_213)),
            Some(json!("Zqtoeygwkvszisyqejur Qx-9 'abc")),
            Some(json!("M")),
            Some(json!(238_432_614)),
            Some(json!("1960-02-16")),
        ]
    }

    fn trap() -> Violation {
        Violation::new(Property::NoFault, "transform-trap: trapped (field `*`)")
    }

    /// Fails (traps) when column 1 holds more than 20 characters, whatever the rest.
    fn long_name(row: &GeneratedRow) -> Result<(), Violation> {
        match &row[1] {
            Some(Value::String(s)) if s.chars().count() > 20 => Err(trap()),
            _ => Ok(()),
        }
    }

    fn shrunk(
        test: impl FnMut(&GeneratedRow) -> Result<(), Violation>,
        max_time: Duration,
    ) -> (GeneratedRow, ShrinkSummary) {
        let mut tree = Just(junk())
            .new_tree(&mut TestRunner::deterministic())
            .expect("tree");
        let (row, _, summary) = shrink(&mut tree, trap(), &columns(), max_time, test);
        (row, summary)
    }

    #[test]
    fn every_column_a_failure_does_not_need_ends_null_or_plainest() {
        let (row, summary) = shrunk(long_name, Duration::from_secs(60));
        assert_eq!(
            row,
            [
                Some(json!(1)),
                Some(json!("a".repeat(21))),
                None,
                None,
                Some(json!("1900-01-01")),
            ]
        );
        assert!(summary.complete, "{summary:?}");
        assert_eq!(summary.stopped, None);
    }

    #[test]
    fn a_row_failing_another_way_is_not_taken_as_smaller() {
        // Shorter names time out instead of trapping: shrinking must keep a trapping name.
        let (row, _) = shrunk(
            |row| match &row[1] {
                Some(Value::String(s)) if s.chars().count() > 20 => Err(trap()),
                _ => Err(Violation::new(
                    Property::NoFault,
                    "transform-timeout: too slow (field `*`)",
                )),
            },
            Duration::from_secs(60),
        );
        assert_eq!(row[1], Some(json!("a".repeat(21))));
    }

    #[test]
    fn shrinking_cut_short_says_so() {
        let (row, summary) = shrunk(long_name, Duration::ZERO);
        assert!(!summary.complete);
        assert!(
            summary
                .stopped
                .as_deref()
                .is_some_and(|s| s.contains("time limit")),
            "{summary:?}"
        );
        // What it reports still fails.
        assert!(long_name(&row).is_err());
    }
}

//! Rows generated from what a module declares about its input columns.
//!
//! Each column gets values of its declared kind: mostly *plausible* ones built from its value
//! hints (so rows reach the module's emit paths), plus the edge cases real clinic data holds —
//! NULL where the column is nullable, empty and whitespace-only text, very long and non-ASCII
//! text, boundary dates and integers, malformed dates. Half the rows are "clean" (every column
//! plausible), half "wild" (any mix). Integer columns that share the same hints (a dose's
//! `patno` and its joined `patient_patno`) often take one value, or a module that compares them
//! would almost never see them equal.
//!
//! Strategy order matters for shrinking: proptest shrinks toward earlier alternatives, so the
//! plausible values come first and a failure shrinks to a row that is ordinary except where it
//! has to be odd.

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;

use crate::transform::info::{ColumnKind, ColumnSpec, ModuleInfo, ValueHint};

/// One generated row: a value (or NULL) per declared input column, in declaration order.
pub(crate) type GeneratedRow = Vec<Option<Value>>;

/// A declaration the generator cannot work from (the module's own bug, reported before any row
/// is generated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input column `{column}`: {reason}")]
pub struct HintError {
    pub column: String,
    pub reason: String,
}

/// Fixed edge values: boundaries tried for every column of a kind. Also the values a finding
/// message may legitimately name (e.g. "before 1900-01-01"), see `checks`.
pub(crate) const EDGE_DATES: &[&str] = &[
    "1900-01-01",
    "1899-12-31",
    "0001-01-01",
    "9999-12-31",
    "2000-02-29",
];
pub(crate) const EDGE_INTEGERS: &[i64] = &[
    0,
    -1,
    1,
    i32::MAX as i64,
    i32::MAX as i64 + 1,
    i32::MIN as i64,
    i64::MIN,
    i64::MAX,
];
const MALFORMED_DATES: &[&str] = &[
    "",
    "2023-02-29",
    "2021-13-01",
    "2021-00-10",
    "20210101",
    "01/02/2021",
    "2021-1-2",
    "abcd-ef-gh",
    " 2021-01-02 ",
];
const WHITESPACE: &[&str] = &[" ", "   ", "\t", "\n", " \u{a0} ", "\u{2003}"];
/// Names as clinics hold them: accents, other scripts, apostrophes, combining marks, emoji.
const NON_ASCII: &[&str] = &[
    "José",
    "Nguyễn Thị Minh",
    "李小龙",
    "Zoë O'Brien-Çelik",
    "Ægir",
    "ʻOlelo",
    "Müller",
    "عبد الله",
    "e\u{301}lodie",
    "😀",
];
const OFFSETS: &[&str] = &["-06:00", "-05:00", "+00:00", "+14:00", "-12:00"];

/// Everything the generator needs to know about one column, resolved once.
struct ColumnPlan {
    kind: ColumnKind,
    nullable: bool,
    ranges: Vec<(i64, i64)>,
    date_ranges: Vec<(NaiveDate, NaiveDate)>,
    max_length: Option<u32>,
    codes: Vec<String>,
    patterns: Vec<String>,
}

impl ColumnPlan {
    fn new(spec: &ColumnSpec) -> Result<Self, HintError> {
        let err = |reason: String| HintError {
            column: spec.name.clone(),
            reason,
        };
        let mut plan = ColumnPlan {
            kind: spec.kind,
            nullable: spec.nullable,
            ranges: Vec::new(),
            date_ranges: Vec::new(),
            max_length: None,
            codes: Vec::new(),
            patterns: Vec::new(),
        };
        let textual = matches!(
            spec.kind,
            ColumnKind::Text | ColumnKind::Date | ColumnKind::Time | ColumnKind::Timestamp
        );
        for hint in &spec.hints {
            match hint {
                ValueHint::Range { min, max } => {
                    if min > max {
                        return Err(err(format!("range hint has min {min} > max {max}")));
                    }
                    if !matches!(
                        spec.kind,
                        ColumnKind::Integer | ColumnKind::Float | ColumnKind::Boolean
                    ) {
                        return Err(err("a range hint on a non-numeric column".into()));
                    }
                    plan.ranges.push((*min, *max));
                }
                ValueHint::Dates { min, max } => {
                    let parse = |s: &str| {
                        NaiveDate::parse_from_str(s, "%Y-%m-%d")
                            .map_err(|_| err("dates hint bound is not YYYY-MM-DD".into()))
                    };
                    let (lo, hi) = (parse(min)?, parse(max)?);
                    if lo > hi {
                        return Err(err("dates hint has min after max".into()));
                    }
                    if !matches!(spec.kind, ColumnKind::Date | ColumnKind::Timestamp) {
                        return Err(err("a dates hint on a column that is not a date".into()));
                    }
                    plan.date_ranges.push((lo, hi));
                }
                ValueHint::MaxLength(n) => {
                    if !textual {
                        return Err(err("a max-length hint on a non-text column".into()));
                    }
                    plan.max_length = Some(*n);
                }
                ValueHint::OneOf(codes) => {
                    if codes.is_empty() {
                        return Err(err("a one-of hint with no codes".into()));
                    }
                    if spec.kind == ColumnKind::Integer
                        && let Some(bad) = codes.iter().position(|c| c.parse::<i64>().is_err())
                    {
                        return Err(err(format!(
                            "one-of code #{} of an integer column is not an integer",
                            bad + 1
                        )));
                    }
                    plan.codes.extend(codes.iter().cloned());
                }
                ValueHint::Pattern(p) => {
                    if !textual {
                        return Err(err("a pattern hint on a non-text column".into()));
                    }
                    // Only validated here; `plausible_text` builds the strategy.
                    let _ = proptest::string::string_regex(p)
                        .map_err(|e| err(format!("pattern hint is not a usable regex: {e}")))?;
                    plan.patterns.push(p.clone());
                }
            }
        }
        Ok(plan)
    }

    /// Values a careful clinic would store.
    fn plausible(&self, as_of: NaiveDate) -> BoxedStrategy<Value> {
        match self.kind {
            ColumnKind::Integer => self.plausible_integer(),
            ColumnKind::Boolean => (0i64..=1).prop_map(Value::from).boxed(),
            ColumnKind::Float => {
                let (lo, hi) = self
                    .ranges
                    .first()
                    .copied()
                    .unwrap_or((-1_000_000, 1_000_000));
                (lo as f64..=hi as f64).prop_map(Value::from).boxed()
            }
            ColumnKind::Date => self.plausible_date(as_of).prop_map(date_value).boxed(),
            ColumnKind::Timestamp => (self.plausible_date(as_of), time_of_day(), select(OFFSETS))
                .prop_map(|(d, t, o)| Value::String(format!("{}T{t}{o}", d.format("%Y-%m-%d"))))
                .boxed(),
            ColumnKind::Time => time_of_day().prop_map(Value::String).boxed(),
            ColumnKind::Text => self.plausible_text(),
        }
    }

    fn plausible_integer(&self) -> BoxedStrategy<Value> {
        let mut options: Vec<BoxedStrategy<i64>> = Vec::new();
        if !self.codes.is_empty() {
            let codes: Vec<i64> = self.codes.iter().filter_map(|c| c.parse().ok()).collect();
            options.push(select(codes).boxed());
        }
        for &(lo, hi) in &self.ranges {
            options.push((lo..=hi).boxed());
        }
        if options.is_empty() {
            options.push((1i64..100_000).boxed());
        }
        one_of(options).prop_map(Value::from).boxed()
    }

    fn plausible_date(&self, as_of: NaiveDate) -> BoxedStrategy<NaiveDate> {
        let ranges = if self.date_ranges.is_empty() {
            vec![(ymd(1950, 1, 1), as_of)]
        } else {
            self.date_ranges.clone()
        };
        one_of(
            ranges
                .into_iter()
                .map(|(lo, hi)| date_between(lo, hi))
                .collect(),
        )
    }

    fn plausible_text(&self) -> BoxedStrategy<Value> {
        let mut options: Vec<BoxedStrategy<String>> = Vec::new();
        if !self.codes.is_empty() {
            options.push(select(self.codes.clone()).boxed());
        }
        for p in &self.patterns {
            if let Ok(s) = proptest::string::string_regex(p) {
                options.push(s.boxed());
            }
        }
        if options.is_empty() {
            let max = self.max_length.unwrap_or(30).clamp(1, 60);
            // Words as people type them: letters, spaces, apostrophes, hyphens, a few digits.
            let regex = format!(
                "[A-Z][a-z]{{0,{}}}( [A-Za-z0-9'.-]{{1,12}}){{0,2}}",
                max - 1
            );
            options.push(
                proptest::string::string_regex(&regex)
                    .map(Strategy::boxed)
                    .unwrap_or_else(|_| Just("Text".to_owned()).boxed()),
            );
        }
        let max_length = self.max_length;
        one_of(options)
            // Plausible text respects the declared maximum (a regex or code may not).
            .prop_map(move |s| match max_length {
                Some(n) => s.chars().take(n as usize).collect(),
                None => s,
            })
            .prop_map(Value::String)
            .boxed()
    }

    /// The odd values real data holds; each alternative is a separate weight so none dominates.
    fn edges(&self, as_of: NaiveDate) -> BoxedStrategy<Value> {
        match self.kind {
            ColumnKind::Integer => {
                let mut bounds: Vec<i64> = EDGE_INTEGERS.to_vec();
                for &(lo, hi) in &self.ranges {
                    bounds.extend([lo, hi, lo.saturating_sub(1), hi.saturating_add(1)]);
                }
                prop_oneof![
                    3 => select(bounds).prop_map(Value::from),
                    1 => any::<i64>().prop_map(Value::from),
                ]
                .boxed()
            }
            ColumnKind::Boolean => select(vec![0i64, 1]).prop_map(Value::from).boxed(),
            ColumnKind::Float => prop_oneof![
                select(vec![0.0, -0.0, 1e308, -1e308, f64::MIN_POSITIVE, 0.1]),
                prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
            ]
            .prop_map(Value::from)
            .boxed(),
            ColumnKind::Date => self.edge_date(as_of).boxed(),
            ColumnKind::Timestamp => prop_oneof![
                (self.edge_date(as_of), time_of_day(), select(OFFSETS)).prop_map(|(d, t, o)| {
                    match d {
                        Value::String(d) if d.len() == 10 => Value::String(format!("{d}T{t}{o}")),
                        other => other,
                    }
                }),
                // No offset, a `Z`, a space for the `T`, a date alone: what other tools write.
                (self.plausible_date(as_of), time_of_day())
                    .prop_flat_map(|(d, t)| {
                        let d = d.format("%Y-%m-%d").to_string();
                        select(vec![
                            format!("{d}T{t}"),
                            format!("{d}T{t}Z"),
                            format!("{d} {t}-06:00"),
                            d,
                        ])
                    })
                    .prop_map(Value::String),
            ]
            .boxed(),
            ColumnKind::Time => select(vec![
                "00:00:00",
                "23:59:59",
                "23:59:59.999999",
                "24:00:00",
                "7:5",
                "",
            ])
            .prop_map(|s| Value::String(s.to_owned()))
            .boxed(),
            ColumnKind::Text => self.edge_text(as_of),
        }
    }

    fn edge_date(&self, as_of: NaiveDate) -> impl Strategy<Value = Value> + use<> {
        let mut bounds: Vec<NaiveDate> = EDGE_DATES
            .iter()
            .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .collect();
        bounds.push(as_of);
        bounds.extend(as_of.checked_add_days(Days::new(1)));
        bounds.extend(as_of.checked_sub_days(Days::new(1)));
        for &(lo, hi) in &self.date_ranges {
            bounds.extend([lo, hi]);
            bounds.extend(lo.checked_sub_days(Days::new(1)));
            bounds.extend(hi.checked_add_days(Days::new(1)));
        }
        prop_oneof![
            3 => select(bounds).prop_map(date_value),
            1 => date_between(ymd(1, 1, 1), ymd(9999, 12, 31)).prop_map(date_value),
            2 => select(MALFORMED_DATES).prop_map(|s| Value::String(s.to_owned())),
        ]
    }

    fn edge_text(&self, as_of: NaiveDate) -> BoxedStrategy<Value> {
        let max = self.max_length.map(|n| n as usize);
        let plausible = self.plausible_text();
        let mut options: Vec<(u32, BoxedStrategy<String>)> = vec![
            (2, Just(String::new()).boxed()),
            (2, select(WHITESPACE).prop_map(str::to_owned).boxed()),
            (3, select(NON_ASCII).prop_map(str::to_owned).boxed()),
            (
                2,
                plausible
                    .prop_flat_map(|v| {
                        let s = v.as_str().unwrap_or_default().to_owned();
                        select(vec![
                            format!(" {s} "),
                            s.to_lowercase(),
                            s.to_uppercase(),
                            format!("{s}\n"),
                        ])
                    })
                    .boxed(),
            ),
            (
                1,
                (1_000usize..=100_000, select(vec!['a', 'é', '李', ' ']))
                    .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect())
                    .boxed(),
            ),
            (2, any::<String>().boxed()),
            // Text in a date's shape, for modules that parse dates out of text columns.
            (
                1,
                self.edge_date(as_of)
                    .prop_map(|v| v.as_str().unwrap_or_default().to_owned())
                    .boxed(),
            ),
        ];
        if let Some(n) = max {
            // Exactly at, and one past, the declared maximum.
            options.push((
                2,
                select(vec![n, n + 1])
                    .prop_map(|len| "x".repeat(len))
                    .boxed(),
            ));
        }
        proptest::strategy::Union::new_weighted(options)
            .prop_map(Value::String)
            .boxed()
    }
}

/// The strategy for whole rows of `info`'s input columns at `as_of`.
pub fn rows(info: &ModuleInfo, as_of: NaiveDate) -> Result<BoxedStrategy<GeneratedRow>, HintError> {
    let plans = info
        .input_columns
        .iter()
        .map(ColumnPlan::new)
        .collect::<Result<Vec<_>, _>>()?;
    let clean: Vec<BoxedStrategy<Option<Value>>> = plans
        .iter()
        .map(|p| with_null(p, p.plausible(as_of), 1))
        .collect();
    let wild: Vec<BoxedStrategy<Option<Value>>> = plans
        .iter()
        .map(|p| {
            let value = prop_oneof![2 => p.plausible(as_of), 1 => p.edges(as_of)].boxed();
            with_null(p, value, 3)
        })
        .collect();
    let groups = tie_groups(info);
    let ties = proptest::collection::vec(any::<bool>(), groups.len());
    Ok((prop_oneof![clean, wild], ties)
        .prop_map(move |(mut row, ties)| {
            for (group, tie) in groups.iter().zip(ties) {
                if tie && let Some(value) = row[group[0]].clone() {
                    for &i in &group[1..] {
                        row[i] = Some(value.clone());
                    }
                }
            }
            row
        })
        .boxed())
}

/// The plainest valid value of each of `info`'s input columns, in declaration order: where
/// shrinking takes a column a failure does not depend on (after NULL, for a nullable column).
/// It is the column's first plausible alternative simplified as far as it goes: a range's
/// minimum, the first code, a dates hint's first day (at midnight, at the first offset, for a
/// timestamp), the shortest text a pattern allows, `A` for name-like text.
pub(crate) fn plainest_values(
    info: &ModuleInfo,
    as_of: NaiveDate,
) -> Result<Vec<Value>, HintError> {
    info.input_columns
        .iter()
        .map(|spec| Ok(simplest(&ColumnPlan::new(spec)?.plausible(as_of))))
        .collect()
}

/// Where `strategy`'s shrinking ends when every simplification is accepted.
fn simplest(strategy: &BoxedStrategy<Value>) -> Value {
    // A guard only: each step shrinks a finite search space (a binary search, an index,
    // a collection's length), so the loop ends long before.
    const MAX_STEPS: u32 = 100_000;
    let mut runner = TestRunner::deterministic();
    match strategy.new_tree(&mut runner) {
        Ok(mut tree) => {
            let mut steps = 0;
            while steps < MAX_STEPS && tree.simplify() {
                steps += 1;
            }
            tree.current()
        }
        // Plausible strategies reject nothing.
        Err(_) => Value::Null,
    }
}

/// NULL as one alternative (first, so shrinking prefers it) for nullable columns.
fn with_null(
    plan: &ColumnPlan,
    value: BoxedStrategy<Value>,
    null_weight: u32,
) -> BoxedStrategy<Option<Value>> {
    if plan.nullable {
        prop_oneof![null_weight => Just(None), 12 => value.prop_map(Some)].boxed()
    } else {
        value.prop_map(Some).boxed()
    }
}

/// Groups (of 2 or more) of integer columns declaring identical hints: likely the same key seen
/// twice, e.g. through a join.
pub(crate) fn tie_groups(info: &ModuleInfo) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, c) in info.input_columns.iter().enumerate() {
        if c.kind != ColumnKind::Integer || c.hints.is_empty() {
            continue;
        }
        match groups
            .iter_mut()
            .find(|g| info.input_columns[g[0]].hints == c.hints)
        {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups.retain(|g| g.len() > 1);
    groups
}

fn one_of<T: std::fmt::Debug + 'static>(options: Vec<BoxedStrategy<T>>) -> BoxedStrategy<T> {
    proptest::strategy::Union::new(options).boxed()
}

fn date_between(lo: NaiveDate, hi: NaiveDate) -> BoxedStrategy<NaiveDate> {
    let span = (hi - lo).num_days().max(0) as u64;
    (0..=span)
        .prop_map(move |d| lo.checked_add_days(Days::new(d)).unwrap_or(hi))
        .boxed()
}

fn time_of_day() -> impl Strategy<Value = String> {
    (
        0u32..24,
        0u32..60,
        0u32..60,
        prop::option::weighted(0.2, 0u32..1_000_000),
    )
        .prop_map(|(h, m, s, frac)| match frac {
            Some(f) => format!("{h:02}:{m:02}:{s:02}.{f:06}"),
            None => format!("{h:02}:{m:02}:{s:02}"),
        })
}

fn date_value(d: NaiveDate) -> Value {
    Value::String(d.format("%Y-%m-%d").to_string())
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use proptest::test_runner::TestRng;

    use super::*;
    use crate::transform::info::FieldSpec;

    fn column(name: &str, kind: ColumnKind, nullable: bool, hints: Vec<ValueHint>) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            kind,
            required: true,
            nullable,
            hints,
        }
    }

    fn info(columns: Vec<ColumnSpec>) -> ModuleInfo {
        ModuleInfo {
            name: "t".into(),
            version: "1".into(),
            target: "patient_data".into(),
            key_column: columns[0].name.clone(),
            input_columns: columns,
            output_fields: vec![FieldSpec {
                name: "patient_number".into(),
                required: true,
            }],
        }
    }

    fn sample(info: &ModuleInfo, n: usize) -> Vec<GeneratedRow> {
        let as_of = ymd(2024, 6, 1);
        let strategy = rows(info, as_of).expect("plan");
        let mut runner = TestRunner::new_with_rng(
            Default::default(),
            TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &[7; 32]),
        );
        (0..n)
            .map(|_| strategy.new_tree(&mut runner).expect("tree").current())
            .collect()
    }

    #[test]
    fn nulls_appear_only_in_nullable_columns() {
        let i = info(vec![
            column("a", ColumnKind::Integer, false, vec![]),
            column("b", ColumnKind::Text, true, vec![]),
        ]);
        let rows = sample(&i, 2_000);
        assert!(rows.iter().all(|r| r[0].is_some()));
        assert!(rows.iter().any(|r| r[1].is_none()));
    }

    #[test]
    fn hints_steer_most_values_into_the_declared_shape() {
        let i = info(vec![
            column(
                "n",
                ColumnKind::Integer,
                false,
                vec![ValueHint::Range { min: 10, max: 20 }],
            ),
            column(
                "sex",
                ColumnKind::Text,
                false,
                vec![ValueHint::OneOf(vec!["F".into(), "M".into()])],
            ),
            column(
                "zip",
                ColumnKind::Text,
                false,
                vec![ValueHint::Pattern("[0-9]{5}".into())],
            ),
            column(
                "dob",
                ColumnKind::Date,
                false,
                vec![ValueHint::Dates {
                    min: "2000-01-01".into(),
                    max: "2000-12-31".into(),
                }],
            ),
        ]);
        let rows = sample(&i, 2_000);
        let share = |f: &dyn Fn(&Value) -> bool, col: usize| {
            rows.iter()
                .filter(|r| r[col].as_ref().is_some_and(f))
                .count() as f64
                / rows.len() as f64
        };
        let in_range = share(&|v| v.as_i64().is_some_and(|n| (10..=20).contains(&n)), 0);
        let coded = share(&|v| matches!(v.as_str(), Some("F" | "M")), 1);
        let zip = share(
            &|v| {
                v.as_str()
                    .is_some_and(|s| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()))
            },
            2,
        );
        let dob = share(&|v| v.as_str().is_some_and(|s| s.starts_with("2000-")), 3);
        for (what, s) in [
            ("range", in_range),
            ("one-of", coded),
            ("pattern", zip),
            ("dates", dob),
        ] {
            assert!(s > 0.6, "{what}: only {s:.2} of values follow the hint");
            assert!(s < 0.99, "{what}: no edge cases generated ({s:.2})");
        }
    }

    #[test]
    fn edge_cases_include_blank_long_and_non_ascii_text_and_boundary_integers() {
        let i = info(vec![
            column(
                "n",
                ColumnKind::Integer,
                false,
                vec![ValueHint::Range { min: 1, max: 99 }],
            ),
            column(
                "name",
                ColumnKind::Text,
                false,
                vec![ValueHint::MaxLength(35)],
            ),
        ]);
        let rows = sample(&i, 4_000);
        let texts: Vec<&str> = rows
            .iter()
            .filter_map(|r| r[1].as_ref()?.as_str())
            .collect();
        assert!(texts.contains(&""));
        assert!(texts.iter().any(|t| !t.is_empty() && t.trim().is_empty()));
        assert!(texts.iter().any(|t| t.chars().count() > 1_000));
        assert!(texts.iter().any(|t| !t.is_ascii()));
        assert!(texts.iter().any(|t| t.chars().count() == 36));
        let ints: Vec<i64> = rows
            .iter()
            .filter_map(|r| r[0].as_ref()?.as_i64())
            .collect();
        for edge in [0, 100, i64::MAX, i32::MAX as i64 + 1] {
            assert!(ints.contains(&edge), "{edge} never generated");
        }
    }

    #[test]
    fn integer_columns_with_the_same_hints_are_often_equal() {
        let hint = vec![ValueHint::Range {
            min: 1,
            max: i32::MAX as i64,
        }];
        let i = info(vec![
            column("patno", ColumnKind::Integer, false, hint.clone()),
            column("patient_patno", ColumnKind::Integer, true, hint),
        ]);
        let rows = sample(&i, 1_000);
        let equal = rows
            .iter()
            .filter(|r| r[1].is_some() && r[0] == r[1])
            .count();
        assert!(equal > 200, "only {equal} of 1000 rows tie the two columns");
    }

    #[test]
    fn the_plainest_value_of_a_column_is_the_simplest_its_hints_allow() {
        let i = info(vec![
            column(
                "n",
                ColumnKind::Integer,
                false,
                vec![ValueHint::Range { min: 7, max: 99 }],
            ),
            column("plain", ColumnKind::Integer, true, vec![]),
            column(
                "sex",
                ColumnKind::Text,
                true,
                vec![ValueHint::OneOf(vec!["F".into(), "M".into()])],
            ),
            column(
                "zip",
                ColumnKind::Text,
                true,
                vec![ValueHint::Pattern("[0-9]{5}(-[0-9]{4})?".into())],
            ),
            column(
                "name",
                ColumnKind::Text,
                false,
                vec![ValueHint::MaxLength(35)],
            ),
            column(
                "dob",
                ColumnKind::Date,
                false,
                vec![ValueHint::Dates {
                    min: "1900-01-01".into(),
                    max: "2020-12-31".into(),
                }],
            ),
            column(
                "updated",
                ColumnKind::Timestamp,
                false,
                vec![ValueHint::Dates {
                    min: "2000-01-01".into(),
                    max: "2025-12-31".into(),
                }],
            ),
            column("at", ColumnKind::Time, true, vec![]),
            column("flag", ColumnKind::Boolean, true, vec![]),
        ]);
        let plainest = plainest_values(&i, ymd(2024, 6, 1)).expect("plan");
        assert_eq!(
            plainest,
            [
                Value::from(7),
                Value::from(1),
                Value::from("F"),
                Value::from("00000"),
                Value::from("A"),
                Value::from("1900-01-01"),
                Value::from("2000-01-01T00:00:00-06:00"),
                Value::from("00:00:00"),
                Value::from(0),
            ]
        );
    }

    #[test]
    fn a_hint_that_does_not_fit_its_column_is_refused_before_generating() {
        let bad = [
            column(
                "n",
                ColumnKind::Integer,
                false,
                vec![ValueHint::Pattern("[0-9]+".into())],
            ),
            column(
                "t",
                ColumnKind::Text,
                false,
                vec![ValueHint::Pattern("([a-z".into())],
            ),
            column(
                "d",
                ColumnKind::Date,
                false,
                vec![ValueHint::Dates {
                    min: "2020-13-01".into(),
                    max: "2021-01-01".into(),
                }],
            ),
            column(
                "r",
                ColumnKind::Integer,
                false,
                vec![ValueHint::Range { min: 5, max: 1 }],
            ),
            column(
                "c",
                ColumnKind::Integer,
                false,
                vec![ValueHint::OneOf(vec!["x".into()])],
            ),
        ];
        for c in bad {
            let name = c.name.clone();
            let err = rows(&info(vec![c]), ymd(2024, 1, 1)).expect_err("refused");
            assert_eq!(err.column, name);
        }
    }
}

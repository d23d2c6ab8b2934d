//! [`proptest`](mod@proptest) strategies for the values transforms meet: names, dates, phone
//! numbers, ZIP codes, blanks.
//!
//! A toolbox to compose in `proptest!` blocks, for rule functions and for whole transforms run
//! through [`run_row`](super::run_row):
//!
//! ```
//! use proptest::prelude::*;
//! use reqsync_guest::rules::{normalize_phone, tidy_name};
//! use reqsync_guest::testing::strategies;
//!
//! proptest! {
//!     // #[test] here in a test file; this example calls it below.
//!     fn tidy_names_have_no_edge_whitespace(name in strategies::names()) {
//!         let tidy = tidy_name(&name);
//!         prop_assert_eq!(tidy.trim(), &*tidy);
//!     }
//!
//!     fn phones_normalise_as_expected(phone in strategies::us_phones()) {
//!         let got = normalize_phone(&phone.input).map(|p| p.as_str().to_owned());
//!         prop_assert_eq!(got, phone.expected);
//!     }
//! }
//! # tidy_names_have_no_edge_whitespace();
//! # phones_normalise_as_expected();
//! ```
//!
//! Strategies that generate both acceptable and unacceptable values return a [`Sample`]: the
//! input and what the SDK's rule makes of it, so a property can say what a module must send
//! without re-implementing the rule. Every promise made here (a blank is blank, a messy date
//! never parses, a sample's `expected` is what the rule returns) is itself property-tested in
//! this module.

use proptest::prelude::*;
use proptest::sample::select;

use crate::rules::{Date, is_leap_year};

/// A generated input and what the SDK's rule for it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The value as it arrives in a row.
    pub input: String,
    /// The normalised value the rule returns, or `None` when the rule refuses the input.
    pub expected: Option<String>,
}

impl Sample {
    fn valid(input: String, expected: String) -> Self {
        Self {
            input,
            expected: Some(expected),
        }
    }

    fn invalid(input: String) -> Self {
        Self {
            input,
            expected: None,
        }
    }
}

/// Names whose letters no regular expression above produces (Vietnamese, Polish, Croatian, …).
const SAMPLE_NAMES: [&str; 8] = [
    "Nguyễn", "Trần", "Phạm", "Đặng", "Łukasz", "Šimić", "Øyvind", "Ñúñez",
];

/// What a date column holds when nobody knew the date.
const PLACEHOLDER_DATES: [&str; 7] = [
    "",
    "unknown",
    "N/A",
    "0000-00-00",
    "２０１３-１１-２６",
    "2013-11-26Z",
    "--",
];

/// Any name a clinic system might hold: what [`non_blank_names`] generates, and now and then a
/// blank from [`blanks`].
pub fn names() -> BoxedStrategy<String> {
    prop_oneof![9 => non_blank_names(), 1 => blanks()].boxed()
}

/// Names with at least one character that is not whitespace: one to three words of ASCII,
/// accented Latin, Vietnamese, Greek, Cyrillic or CJK letters, some with an `O'`/`D'` prefix or
/// hyphenated, typed as they come, ALL UPPER or all lower, with stray whitespace (spaces, tabs,
/// no-break spaces) around and between the words; and very long ones (100–300 characters).
pub fn non_blank_names() -> BoxedStrategy<String> {
    let word = || {
        prop_oneof![
            4 => "[A-Z][a-z]{1,10}",
            2 => "[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]{1,10}",
            1 => select(&SAMPLE_NAMES[..]).prop_map(str::to_owned),
            1 => "[Α-Ω][α-ω]{1,8}",
            1 => "[А-Я][а-я]{1,10}",
            1 => "[\u{4e00}-\u{9fff}]{1,3}",
        ]
    };
    let part = move || {
        prop_oneof![
            6 => word(),
            1 => ("[ODL]", word()).prop_map(|(prefix, w)| format!("{prefix}'{w}")),
            1 => (word(), word()).prop_map(|(a, b)| format!("{a}-{b}")),
        ]
    };
    let gap = prop_oneof![12 => Just(" "), 1 => Just("  "), 1 => Just("\t"), 1 => Just(" \u{a0}")];
    let edge =
        || prop_oneof![5 => Just(""), 1 => Just(" "), 1 => Just("\t "), 1 => Just("\u{a0}\n")];
    let typed = (
        prop::collection::vec((part(), gap), 1..=3),
        edge(),
        edge(),
        0..4u8,
    )
        .prop_map(|(parts, before, after, case)| {
            let mut name = before.to_owned();
            for (i, (part, gap)) in parts.iter().enumerate() {
                if i > 0 {
                    name.push_str(gap);
                }
                name.push_str(part);
            }
            name.push_str(after);
            match case {
                0 => name.to_uppercase(),
                1 => name.to_lowercase(),
                _ => name,
            }
        });
    prop_oneof![
        9 => typed,
        1 => "[A-Za-zé][A-Za-zé' -]{99,299}",
    ]
    .boxed()
}

/// Empty or whitespace-only text: what an "omit when blank" rule must leave out. Includes
/// tabs, line breaks and non-ASCII whitespace (no-break, em and ideographic spaces), all of which
/// `str::trim` removes.
pub fn blanks() -> BoxedStrategy<String> {
    prop_oneof![
        1 => Just(String::new()),
        4 => "[ \t\n\r\u{a0}\u{2003}\u{3000}]{1,6}",
    ]
    .boxed()
}

/// Calendar dates from `min` to `max`, inclusive. `min` and `max` themselves come up often (a
/// rule's boundaries are where its bugs are), the rest uniformly; shrinks toward `min`.
///
/// # Panics
/// When `max` is before `min`.
pub fn dates(min: Date, max: Date) -> BoxedStrategy<Date> {
    assert!(!max.is_before(min), "strategies::dates: max is before min");
    let span = max.days_since(min);
    prop_oneof![
        1 => Just(min),
        1 => Just(max),
        8 => (0..=span).prop_map(move |offset| min.add_days(offset).unwrap_or(max)),
    ]
    .boxed()
}

/// [`dates`] written `YYYY-MM-DD`, as the host delivers date columns.
pub fn iso_dates(min: Date, max: Date) -> BoxedStrategy<String> {
    dates(min, max).prop_map(|date| date.to_string()).boxed()
}

/// Text that looks like a date but is not a `YYYY-MM-DD` calendar date, so [`Date::parse`]
/// refuses every one: US and European spellings (`11/26/2013`, `11-26-2013`, `26.11.2013`,
/// `11/26/13`), compact or slashed ISO (`20131126`, `2013/11/26`), unpadded fields
/// (`2013-1-26`), a time or whitespace attached, days that are not on the calendar
/// (`2023-02-29`, `2023-04-31`, month 13, day 00, year 0000), full-width digits and
/// placeholders (`unknown`, `N/A`, `0000-00-00`, blank).
pub fn messy_dates() -> BoxedStrategy<String> {
    let date = || dates(Date::ymd(1900, 1, 1), Date::ymd(2099, 12, 31));
    let spelled = (date(), 0..11u8).prop_map(|(date, style)| {
        let (y, m, d) = (date.year(), date.month(), date.day());
        match style {
            0 => format!("{m:02}/{d:02}/{y}"),
            1 => format!("{m}/{d}/{y}"),
            2 => format!("{m:02}-{d:02}-{y}"),
            3 => format!("{d:02}.{m:02}.{y}"),
            4 => format!("{m:02}/{d:02}/{:02}", y % 100),
            5 => format!("{y}{m:02}{d:02}"),
            6 => format!("{y}/{m:02}/{d:02}"),
            7 => format!("{y}-{}-{d:02}", m % 9 + 1),
            8 => format!("{date}T00:00:00"),
            9 => format!("{date} 00:00"),
            _ => format!(" {date}\t"),
        }
    });
    let impossible =
        (1900u16..2100, 1u8..=12, 1u8..=28, 0..6u8).prop_map(|(y, m, d, kind)| match kind {
            0 => {
                let common = if is_leap_year(y) { y + 1 } else { y };
                format!("{common}-02-29")
            }
            1 => format!("{y}-{:02}-31", [4, 6, 9, 11][usize::from(m % 4)]),
            2 => format!("{y}-13-{d:02}"),
            3 => format!("{y}-00-{d:02}"),
            4 => format!("{y}-{m:02}-00"),
            _ => format!("0000-{m:02}-{d:02}"),
        });
    prop_oneof![
        6 => spelled,
        3 => impossible,
        1 => select(&PLACEHOLDER_DATES[..]).prop_map(str::to_owned),
    ]
    .boxed()
}

/// Valid North American numbers in the form [`normalize_phone`](crate::rules::normalize_phone)
/// produces, `NPA-NXX-XXXX` (area code and exchange starting with 2–9).
pub fn us_phone_numbers() -> BoxedStrategy<String> {
    (200u16..=999, 200u16..=999, 0u16..=9999)
        .prop_map(|(area, exchange, line)| format!("{area}-{exchange}-{line:04}"))
        .boxed()
}

/// Spellings of the number `canonical` (`816-555-0100`) that
/// [`normalize_phone`](crate::rules::normalize_phone) accepts: digits only, hyphens, dots,
/// spaces, `(816) 555-0100`, a leading `1` or `+1`, surrounding whitespace.
///
/// # Panics
/// When `canonical` is not `NNN-NNN-NNNN`.
pub fn phone_spellings(canonical: &str) -> BoxedStrategy<String> {
    let parts: Vec<&str> = canonical.split('-').collect();
    let [area, exchange, line] = parts[..] else {
        panic!("strategies::phone_spellings: `{canonical}` is not NNN-NNN-NNNN");
    };
    assert!(
        [area.len(), exchange.len(), line.len()] == [3, 3, 4]
            && canonical.bytes().all(|b| b.is_ascii_digit() || b == b'-'),
        "strategies::phone_spellings: `{canonical}` is not NNN-NNN-NNNN"
    );
    select(vec![
        format!("{area}{exchange}{line}"),
        format!("{area}-{exchange}-{line}"),
        format!("({area}) {exchange}-{line}"),
        format!("({area}){exchange}-{line}"),
        format!("{area}.{exchange}.{line}"),
        format!("{area} {exchange} {line}"),
        format!("+1 {area} {exchange} {line}"),
        format!("+1 ({area}) {exchange}-{line}"),
        format!("1-{area}-{exchange}-{line}"),
        format!("1{area}{exchange}{line}"),
        format!(" {area}-{exchange}-{line}\t"),
    ])
    .boxed()
}

/// Phone numbers as clinics hold them, never blank: three in four are [`phone_spellings`] of a
/// [`us_phone_numbers`] number (`expected` is the number), the rest are refused (`expected` is
/// `None`): seven digits, an extension, an area code or exchange starting with 0 or 1, a
/// country code other than 1, a digit too many or too few, letters, a non-US number.
pub fn us_phones() -> BoxedStrategy<Sample> {
    let valid = us_phone_numbers().prop_flat_map(|number| {
        phone_spellings(&number).prop_map(move |spelling| Sample::valid(spelling, number.clone()))
    });
    let invalid = (200u16..=999, 200u16..=999, 0u16..=9999, 0..9u8).prop_map(
        |(area, exchange, line, kind)| {
            let text = match kind {
                0 => format!("{exchange}-{line:04}"),
                1 => format!("{area}-{exchange}-{line:04} x{}", line % 100),
                2 => format!("{}{:02}-{exchange}-{line:04}", area % 2, area % 100),
                3 => format!("{area}-{}{:02}-{line:04}", exchange % 2, exchange % 100),
                4 => format!("{}-{area}-{exchange}-{line:04}", area % 8 + 2),
                5 => format!("{area}-{exchange}-{line:04}{}", line % 10),
                6 => format!("{area}-{exchange}-{:03}", line % 1000),
                7 => format!("{area}-{exchange}-CALL"),
                _ => format!("+44 20 {exchange}{} {line:04}", line % 10),
            };
            Sample::invalid(text)
        },
    );
    prop_oneof![3 => valid, 1 => invalid].boxed()
}

/// ZIP codes as clinics hold them, never blank: five digits or ZIP+4, sometimes with whitespace
/// around (`expected` is the trimmed code), and refused ones (`expected` is `None`): four or six
/// digits, nine digits without the hyphen, ZIP+4 with a space or a short extension, a letter,
/// a Canadian postal code.
pub fn zips() -> BoxedStrategy<Sample> {
    let edge = || prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\t ")];
    let valid = ("[0-9]{5}(-[0-9]{4})?", edge(), edge())
        .prop_map(|(zip, before, after)| Sample::valid(format!("{before}{zip}{after}"), zip));
    let invalid = prop_oneof![
        "[0-9]{4}",
        "[0-9]{6}",
        "[0-9]{9}",
        "[0-9]{5} [0-9]{4}",
        "[0-9]{5}-[0-9]{3}",
        "[0-9]{4}[A-Z]",
        "[A-Z][0-9][A-Z] [0-9][A-Z][0-9]",
    ]
    .prop_map(Sample::invalid);
    prop_oneof![3 => valid, 1 => invalid].boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{normalize_phone, normalize_zip};

    proptest! {
        #[test]
        fn non_blank_names_are_not_blank(name in non_blank_names()) {
            prop_assert!(!name.trim().is_empty());
        }

        #[test]
        fn blanks_are_blank(blank in blanks()) {
            prop_assert!(blank.trim().is_empty());
        }

        #[test]
        fn dates_stay_within_bounds(
            (min, max, date) in (dates(Date::MIN, Date::MAX), 0..5000i32)
                .prop_flat_map(|(min, span)| {
                    let max = min.add_days(span).unwrap_or(Date::MAX);
                    (Just(min), Just(max), dates(min, max))
                }),
        ) {
            prop_assert!(min <= date && date <= max);
        }

        #[test]
        fn iso_dates_parse_back(text in iso_dates(Date::MIN, Date::MAX)) {
            prop_assert!(Date::parse(&text).is_some(), "{}", text);
        }

        #[test]
        fn messy_dates_never_parse(text in messy_dates()) {
            prop_assert_eq!(Date::parse(&text), None, "{}", text);
        }

        #[test]
        fn phone_samples_expect_what_normalize_phone_returns(phone in us_phones()) {
            let got = normalize_phone(&phone.input).map(|p| p.as_str().to_owned());
            prop_assert_eq!(got, phone.expected, "{}", phone.input);
        }

        #[test]
        fn every_spelling_normalises_to_its_number(
            (number, spelling) in us_phone_numbers()
                .prop_flat_map(|n| (Just(n.clone()), phone_spellings(&n))),
        ) {
            let got = normalize_phone(&spelling).map(|p| p.as_str().to_owned());
            prop_assert_eq!(got, Some(number));
        }

        #[test]
        fn zip_samples_expect_what_normalize_zip_returns(zip in zips()) {
            prop_assert_eq!(normalize_zip(&zip.input), zip.expected.as_deref(), "{}", zip.input);
        }
    }

    #[test]
    fn dates_between_one_day_is_that_day() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let day = Date::ymd(2026, 1, 1);
        let mut runner = TestRunner::deterministic();
        for _ in 0..20 {
            let tree = dates(day, day).new_tree(&mut runner).expect("strategy");
            assert_eq!(tree.current(), day);
        }
    }

    #[test]
    #[should_panic(expected = "not NNN-NNN-NNNN")]
    fn phone_spellings_want_a_canonical_number() {
        let _ = phone_spellings("8165550100");
    }
}

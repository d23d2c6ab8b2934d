//! The default modules written in JavaScript (`transforms/patients-js`,
//! `transforms/vaccine-doses-js`, built into components by `scripts/build-guest-javascript`) run
//! in the same sandbox as the Rust modules and behave exactly like them: same self-description,
//! same example cases, and the same verdict on every row, real, synthetic and deliberately odd.
//!
//! The components are built outside cargo (Node.js and componentize-js), so these tests fail,
//! never skip, when one is missing or older than its sources. The checks themselves are shared
//! with `guest_python.rs` (`support::guests`).

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqsync_seeder::{SourceTable, SyntheticOptions};
use serde_json::{Map, Value, json};

use crate::support::guests::{self, Guest, Language, Module};

const PATIENTS: Guest = Guest::new(Language::JavaScript, Module::Patients);
const DOSES: Guest = Guest::new(Language::JavaScript, Module::VaccineDoses);

// ---- patients --------------------------------------------------------------------------------

#[test]
fn javascript_patients_loads_in_the_sandbox_and_describes_itself_like_the_rust_module() {
    // Loading checks the imports (only the sandbox's; componentize-js's WASI features are all
    // disabled) and the WIT version.
    guests::assert_describes_itself_like_the_rust_module(PATIENTS);
}

#[test]
fn javascript_patients_passes_the_rust_modules_example_cases() {
    guests::assert_passes_the_rust_modules_example_cases(PATIENTS, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_and_rust_patients_agree_on_every_kcmo_and_synthetic_row() {
    let (tally, seeded) =
        guests::compare_on_seeded_clinic(PATIENTS, SyntheticOptions::new(3000, 7)).await;
    let invalid: BTreeSet<String> = seeded
        .synthetic
        .as_ref()
        .expect("synthetic report")
        .invalid
        .iter()
        .filter(|r| r.table == SourceTable::Mpfile)
        .map(|r| r.key.to_string())
        .collect();
    assert!(
        !invalid.is_empty(),
        "the synthetic set has invalid patients"
    );
    assert_eq!(
        tally.rows as u64, seeded.patients,
        "every seeded patient was compared"
    );
    assert_eq!(
        tally.rejected_keys, invalid,
        "the deliberately invalid patients"
    );
    assert!(tally.emitted > 2500, "{tally:?}");
}

#[test]
fn javascript_and_rust_patients_agree_on_generated_edge_case_rows() {
    // Values chosen where JavaScript and Rust differ by default: Unicode whitespace (JS `trim`
    // strips U+FEFF but not U+0085), UTF-8 byte offsets vs UTF-16 indices, surrogate pairs,
    // 64-bit integers, case mapping outside ASCII, byte limits of e-mail addresses. Batches also
    // arrive in another column order or without some optional columns.
    let mut rng = StdRng::seed_from_u64(20_260_101);
    let batches: Vec<Vec<Map<String, Value>>> = (0..12)
        .map(|_| (0..250).map(|_| odd_row(&mut rng)).collect())
        .collect();
    let tally = guests::compare_json_rows(PATIENTS, &batches);
    // The generator reaches every kind of verdict, or the comparison proves little.
    assert!(tally.emitted > 100 && tally.rejected > 100, "{tally:?}");
    assert!(tally.warned > 100, "{tally:?}");
}

/// componentize-js drops a byte order mark that opens a string it receives, so the glue puts it
/// back before cutting a column's text into cells. When the rest of the column is ASCII, the
/// cells are cut by string index: the mark must be back before that choice, or every offset of
/// the column is 3 bytes off and the batch is refused as malformed.
#[test]
fn a_byte_order_mark_opening_an_otherwise_ascii_column_reaches_the_javascript_module() {
    let rows: Vec<Map<String, Value>> = ["\u{feff}Smith", "Jones", "Lee"]
        .iter()
        .enumerate()
        .map(|(i, last)| {
            let row = json!({
                "patno": i + 1,
                "lname": last,
                "fname": "Ann",
                "birth_date": "2015-01-01",
                "updated_at": "2016-09-28T12:00:00-05:00",
            });
            row.as_object().expect("object").clone()
        })
        .collect();
    // The first batch goes with its columns as given; the tally asserts agreement.
    let tally = guests::compare_json_rows(PATIENTS, &[rows]);
    assert_eq!(tally.rows, 3);
}

#[test]
fn javascript_and_rust_patients_treat_batches_of_the_required_columns_alone_alike() {
    guests::assert_required_columns_alone_agree(PATIENTS, &guests::two_patients(), 1);
}

#[test]
fn javascript_and_rust_patients_refuse_malformed_batches_alike() {
    guests::assert_refuses_malformed_batches_alike(
        PATIENTS,
        &guests::two_patients(),
        "birth_date",
        "fname",
        "patno",
    );
}

// ---- vaccine-doses ---------------------------------------------------------------------------

#[test]
fn javascript_vaccine_doses_loads_in_the_sandbox_and_describes_itself_like_the_rust_module() {
    // The description includes the `cvx` column's hint, every CVX code of the list: equal here
    // means the generated cvx-codes.js holds the same codes as the CSV the Rust module embeds.
    guests::assert_describes_itself_like_the_rust_module(DOSES);
}

#[test]
fn javascript_vaccine_doses_passes_the_rust_modules_example_cases() {
    guests::assert_passes_the_rust_modules_example_cases(DOSES, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_and_rust_vaccine_doses_agree_on_every_kcmo_and_synthetic_row() {
    let (tally, seeded) =
        guests::compare_on_seeded_clinic(DOSES, SyntheticOptions::new(1000, 7)).await;
    assert_eq!(
        tally.rows as u64, seeded.doses,
        "every seeded dose was compared"
    );
    guests::assert_every_dose_verdict_occurred(&tally, &seeded);
}

#[test]
fn javascript_and_rust_vaccine_doses_agree_on_generated_edge_case_rows() {
    // Besides whitespace and UTF-8: upper-casing of `mvx` (no Unicode property tables in the
    // component's engine), BigInt CVX codes beyond 16 bits, dates compared as text.
    let tally = guests::compare_json_rows(DOSES, &guests::dose_batches(0x6a73_646f_7365, 8, 250));
    guests::assert_generated_doses_reach_every_verdict(&tally);
}

#[test]
fn javascript_and_rust_vaccine_doses_treat_batches_of_the_required_columns_alone_alike() {
    guests::assert_required_columns_alone_agree(DOSES, &guests::two_doses(), 1);
}

#[test]
fn javascript_and_rust_vaccine_doses_refuse_malformed_batches_alike() {
    // `patient_lname` is nullable, not optional: a query without the join fails whole.
    guests::assert_refuses_malformed_batches_alike(
        DOSES,
        &guests::two_doses(),
        "patient_lname",
        "history",
        "cvx",
    );
}

// ---- Generated rows ------------------------------------------------------------------------

/// Text fragments where the two languages' defaults disagree, or where the rules have edges.
const FRAGMENTS: &[&str] = &[
    "Smith",
    "Ann",
    "José",
    "Nguyễn",
    "O'Brien-Smith",
    "😀",
    "d\u{301}",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\u{85}",
    "\u{a0}",
    "\u{feff}",
    "\u{200b}",
    "\u{2003}",
    "\u{2028}",
    "\u{3000}",
    "\u{1c}",
    "\u{0}",
    "\u{7f}",
    "\"",
    "\\",
    "ﬂ",
    "ß",
    "İ",
    "ǅ",
    "Ⅻ",
    "１",
    "-",
    ".",
    "@",
    "(",
];

fn fragments(rng: &mut StdRng, max: usize) -> String {
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| *FRAGMENTS.choose(rng).expect("fragments"))
        .collect()
}

/// A value from `pool`, fragments, or NULL.
fn pick(rng: &mut StdRng, pool: &[&str]) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 | 2 => Value::String(fragments(rng, 4)),
        3 => {
            let base = *pool.choose(rng).expect("pool");
            let edge = fragments(rng, 2);
            Value::String(if rng.random_bool(0.5) {
                format!("{edge}{base}")
            } else {
                format!("{base}{edge}")
            })
        }
        _ => Value::String((*pool.choose(rng).expect("pool")).to_owned()),
    }
}

fn pick_int(rng: &mut StdRng, pool: &[i64]) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 => json!(rng.random::<i64>()),
        2 => json!(rng.random_range(-5..3_000_000_000i64)),
        _ => json!(*pool.choose(rng).expect("pool")),
    }
}

fn digits_and_punctuation(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..16);
    (0..n)
        .map(|_| {
            *[
                "0", "1", "2", "5", "8", "9", " ", "-", "(", ")", ".", "+", "x", "\u{a0}",
            ]
            .choose(rng)
            .expect("characters")
        })
        .collect()
}

fn odd_row(rng: &mut StdRng) -> Map<String, Value> {
    const NUMBERS: &[i64] = &[
        1,
        7,
        77,
        101,
        0,
        -1,
        -14,
        2_147_483_647,
        2_147_483_648,
        -2_147_483_648,
        -2_147_483_649,
        i64::MAX,
        i64::MIN,
        9_007_199_254_740_993, // 2^53 + 1: not a double
    ];
    const DATES: &[&str] = &[
        "2013-11-26",
        "2024-02-29",
        "2023-02-29",
        "1900-02-29",
        "2000-02-29",
        "1900-01-01",
        "1899-12-31",
        "2026-01-01",
        "2026-01-02",
        "0000-01-01",
        "0001-01-01",
        "9999-12-31",
        "2013-04-31",
        "2013-13-01",
        "2013-00-10",
        "2013-1-26",
        "11/26/2013",
        "26-11-2013",
        "２０２３-01-02",
        "2013-11-26T00:00:00",
        "2013/11/26",
        "",
    ];
    const TIMESTAMPS: &[&str] = &[
        "2016-09-28T12:00:00-05:00",
        "2016-09-28T12:00:00Z",
        "2016-09-28T12:00:00.250-05:00",
        "2016-09-28T12:00:00.123456789+05:30",
        "2016-09-28T12:00:00.1234567890+05:30",
        "2016-09-28T12:00:00.-05:00",
        "2016-09-28T12:00:00+14:00",
        "2016-09-28T12:00:00+23:59",
        "2016-09-28T12:00:00-24:00",
        "2016-09-28T12:00:00+05:60",
        "2016-09-28T24:00:00-05:00",
        "2016-09-28T23:59:59-05:00",
        "2016-09-28T12:60:00-05:00",
        "2016-09-28T12:00:60-05:00",
        "2016-09-28 12:00:00-05:00",
        "2016-09-28T12:00:00",
        "2016-09-28T12:00:00-0500",
        "2016-02-30T12:00:00-05:00",
        "2016-09-28t12:00:00-05:00",
        "2016-09-28T12:00:00z",
        "yesterday",
    ];
    const SEXES: &[&str] = &["M", "m", "F", "f", "U", "u", "X", "Male", "ｍ"];
    const STATES: &[&str] = &[
        "MO", "mo", "Ks", "pr", "AP", "UM", "XX", "Missouri", "M", "ﬂ", "ＭＯ", "é", "M1",
    ];
    const ZIPS: &[&str] = &[
        "64106",
        "03406",
        "64106-1234",
        "641061234",
        "6410",
        "641061",
        "64106-123",
        "64106 1234",
        "6410a",
        "ABCDE",
        "６４１０６",
        "64106–1234",
    ];
    const PHONES: &[&str] = &[
        "8165550100",
        "(816) 555-0100",
        "816.555.0100",
        "+1 816 555 0100",
        "1-816-555-0100",
        "+44 20 7946 0958",
        "816-555-0100 x12",
        "123-456-7890",
        "816-155-0100",
        "++18165550100",
        "18165550100",
        "28165550100",
        "816555010000",
        "816-555-O100",
        "８１６５５５０１００",
        "555-0100",
    ];
    let long_local = "a".repeat(64);
    let long_label = "b".repeat(63);
    let long_address = format!(
        "{long_local}@{long_label}.{long_label}.{long_label}.{}",
        "c".repeat(58)
    );
    let emails: Vec<String> = vec![
        "newemail@example.com".into(),
        "j.doe+shots@mail.example.org".into(),
        "o'brien@example.com".into(),
        "josé@bücher.de".into(),
        "jo\u{a0}hn@example.com".into(),
        "john@exam\u{2003}ple.com".into(),
        "john@example.é".into(),
        "john@example.éé".into(),
        "a\u{80}b@example.com".into(),
        "a\u{9f}b@example.com".into(),
        "a\u{a1}b@example.com".into(),
        "jo\u{7f}hn@example.com".into(),
        "john@10.0.0.1".into(),
        "john@example.c".into(),
        "john@example.c1".into(),
        "john..doe@example.com".into(),
        ".john@example.com".into(),
        "john.@example.com".into(),
        "john@-example.com".into(),
        "john@example-.com".into(),
        "john@@example.com".into(),
        "john@example..com".into(),
        "john@example.com.".into(),
        "(john)@example.com".into(),
        "john@exa_mple.com".into(),
        "john@😀.com".into(),
        "none".into(),
        "n/a".into(),
        format!("{long_local}@example.com"),
        format!("{long_local}a@example.com"),
        format!("x@{long_label}.com"),
        format!("x@{long_label}b.com"),
        long_address.clone(),
        format!("{long_address}c"),
        format!("x@{}.com", "é".repeat(31)),
        format!("x@{}.com", "é".repeat(32)),
    ];
    let email_refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let text = &[
        "12 Main St",
        "Kansas City",
        "White",
        "Apt 4",
        "Calle Luna 5",
        "Saint-Joseph",
    ];

    let mut row = Map::new();
    row.insert("patno".into(), pick_int(rng, NUMBERS));
    row.insert(
        "lname".into(),
        pick(rng, &["Smith", "De La Cruz", "Nguyễn"]),
    );
    row.insert("fname".into(), pick(rng, &["John", "Mary  Ann", "José"]));
    row.insert("birth_date".into(), pick(rng, DATES));
    row.insert("sex".into(), pick(rng, SEXES));
    for column in ["addr1", "addr2", "city", "race", "ethnicity"] {
        row.insert(column.into(), pick(rng, text));
    }
    row.insert("state".into(), pick(rng, STATES));
    row.insert("zip".into(), pick(rng, ZIPS));
    for column in ["home_phone", "cell_phone"] {
        let value = if rng.random_bool(0.3) {
            Value::String(digits_and_punctuation(rng))
        } else {
            pick(rng, PHONES)
        };
        row.insert(column.into(), value);
    }
    row.insert("email".into(), pick(rng, &email_refs));
    row.insert("family_no".into(), pick_int(rng, NUMBERS));
    row.insert(
        "notes".into(),
        pick(rng, &["Line one\n  She said \"no\"\\ok  ", "  keep  "]),
    );
    row.insert("updated_at".into(), pick(rng, TIMESTAMPS));
    // Now and then a row that passes every rule, so emits are common enough to compare.
    if rng.random_bool(0.4) {
        row.insert("patno".into(), json!(rng.random_range(1..1_000_000)));
        row.insert("lname".into(), json!("Smith"));
        row.insert("fname".into(), json!("José"));
        row.insert("birth_date".into(), json!("2013-11-26"));
        row.insert("updated_at".into(), json!("2016-09-28T12:00:00-05:00"));
    }
    row
}

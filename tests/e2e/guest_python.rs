//! The default modules written in Python (`transforms/patients-py`, `transforms/vaccine-doses-py`,
//! componentize-py components built by `scripts/build-guest-python`) are drop-ins for the Rust
//! ones: they load in the same sandbox, describe themselves the same way, pass the Rust modules'
//! example cases and give the same verdict on every row: the KCMO data, a synthetic clinic with
//! its deliberately invalid rows, and generated rows full of the values rules trip over.
//!
//! The components are built outside cargo (they need Python and componentize-py); these tests
//! fail, never skip, when one is missing or older than its sources. The checks themselves are
//! shared with `guest_javascript.rs` (`support::guests`).

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqsync_seeder::{InvalidKind, SourceTable, SyntheticOptions};
use serde_json::{Map, Value, json};

use crate::support::guests::{self, Guest, Language, Module};

const PATIENTS: Guest = Guest::new(Language::Python, Module::Patients);
const DOSES: Guest = Guest::new(Language::Python, Module::VaccineDoses);

// ---- patients --------------------------------------------------------------------------------

#[test]
fn python_patients_loads_in_the_sandbox_and_describes_itself_as_the_rust_module_does() {
    guests::assert_describes_itself_like_the_rust_module(PATIENTS);
}

#[test]
fn python_patients_passes_the_rust_modules_example_cases() {
    guests::assert_passes_the_rust_modules_example_cases(PATIENTS, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_rust_patients_agree_on_every_kcmo_and_synthetic_row() {
    let (tally, seeded) =
        guests::compare_on_seeded_clinic(PATIENTS, SyntheticOptions::new(3000, 11)).await;
    let synthetic = seeded.synthetic.as_ref().expect("synthetic report");
    let invalid = synthetic.invalid_in(SourceTable::Mpfile);
    assert!(invalid > 0, "the synthetic set has invalid patients");
    assert_eq!(
        tally.rows, seeded.patients as usize,
        "every seeded patient was read"
    );
    // Not a vacuous comparison: each kind of verdict occurred, invalid patients included.
    assert_eq!(tally.rejected, invalid as usize);
    assert!(
        synthetic
            .invalid
            .iter()
            .any(|r| r.kind == InvalidKind::PatientNumberOutOfRange)
    );
    assert!(tally.emitted > 2500 && tally.warned > 0, "{tally:?}");
}

#[test]
fn python_and_rust_patients_agree_on_generated_edge_case_rows() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x7079_7468_6f6e);
    let batches: Vec<Vec<Map<String, Value>>> = (0..8)
        .map(|_| (0..250).map(|_| edge_case_row(&mut rng)).collect())
        .collect();
    let tally = guests::compare_json_rows(PATIENTS, &batches);
    assert!(
        tally.emitted > 200 && tally.rejected > 200 && tally.warned > 200,
        "the generator must reach every kind of verdict: {tally:?}"
    );
}

#[test]
fn python_and_rust_patients_treat_batches_with_fewer_or_reordered_columns_alike() {
    guests::assert_required_columns_alone_agree(PATIENTS, &guests::two_patients(), 1);
}

#[test]
fn python_and_rust_patients_refuse_malformed_batches_alike() {
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
fn python_vaccine_doses_loads_in_the_sandbox_and_describes_itself_as_the_rust_module_does() {
    // The description includes the `cvx` column's hint, every CVX code of the list: equal here
    // means the Python module read the same codes from the same CSV.
    guests::assert_describes_itself_like_the_rust_module(DOSES);
}

#[test]
fn python_vaccine_doses_passes_the_rust_modules_example_cases() {
    guests::assert_passes_the_rust_modules_example_cases(DOSES, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_rust_vaccine_doses_agree_on_every_kcmo_and_synthetic_row() {
    let (tally, seeded) =
        guests::compare_on_seeded_clinic(DOSES, SyntheticOptions::new(1000, 11)).await;
    assert_eq!(
        tally.rows, seeded.doses as usize,
        "every seeded dose was read"
    );
    guests::assert_every_dose_verdict_occurred(&tally, &seeded);
}

#[test]
fn python_and_rust_vaccine_doses_agree_on_generated_edge_case_rows() {
    let tally = guests::compare_json_rows(DOSES, &guests::dose_batches(0x7079_646f_7365, 8, 250));
    guests::assert_generated_doses_reach_every_verdict(&tally);
}

#[test]
fn python_and_rust_vaccine_doses_treat_batches_of_the_required_columns_alone_alike() {
    guests::assert_required_columns_alone_agree(DOSES, &guests::two_doses(), 1);
}

#[test]
fn python_and_rust_vaccine_doses_refuse_malformed_batches_alike() {
    // `patient_lname` is nullable, not optional: a query without the join fails whole.
    guests::assert_refuses_malformed_batches_alike(
        DOSES,
        &guests::two_doses(),
        "patient_lname",
        "history",
        "cvx",
    );
}

// ---- generated rows --------------------------------------------------------------------------

/// Characters the rules treat specially, so that a mismatch in trimming, whitespace, digits,
/// JSON escaping or UTF-8 handling between the two languages shows up: Unicode whitespace
/// (and the ASCII separators U+001C..U+001F, which Python's `str.strip` removes and Rust's
/// `trim` keeps), characters that look like whitespace but are not (U+200B, U+180E, a
/// byte-order mark, which a UTF-8 decoder may drop), controls, quotes, non-ASCII letters, a
/// full-width digit, an emoji.
const TRICKY: &[&str] = &[
    " ", "  ", "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{1c}", "\u{1f}", "\u{85}", "\u{a0}",
    "\u{2003}", "\u{2028}", "\u{3000}", "\u{200b}", "\u{180e}", "\u{feff}", "\u{0}", "\u{7f}",
    "\u{9f}", "\"", "\\", "'", "-", ".", "@", "(", ")", "+", "/", "é", "ễ", "２", "😀", "Z", "T",
    ":",
];

fn pick<'a>(rng: &mut ChaCha8Rng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or_default()
}

/// A value built from `base`: as is (mostly), wrapped in or spliced with tricky characters.
fn mangle(rng: &mut ChaCha8Rng, base: &str) -> String {
    match rng.random_range(0..10u32) {
        0..=4 => base.to_owned(),
        5 => format!("{}{base}{}", pick(rng, TRICKY), pick(rng, TRICKY)),
        6 => {
            let at = rng.random_range(0..=base.chars().count());
            let mut chars: Vec<char> = base.chars().collect();
            chars.splice(at..at, pick(rng, TRICKY).chars());
            chars.into_iter().collect()
        }
        7 => base.to_uppercase(),
        8 => (0..rng.random_range(0..6u32))
            .map(|_| pick(rng, TRICKY))
            .collect(),
        _ => base
            .chars()
            .take(rng.random_range(0..=base.chars().count()))
            .collect(),
    }
}

/// A text cell: NULL sometimes, else a plausible value for the column, mangled.
fn text(rng: &mut ChaCha8Rng, null_percent: u32, plausible: &[&str]) -> Value {
    if rng.random_range(0..100) < null_percent {
        return Value::Null;
    }
    let base = pick(rng, plausible);
    Value::String(mangle(rng, base))
}

/// A required column: mostly its first, valid, value, so that enough rows get past the patient
/// rules to exercise the optional ones.
fn required_text(rng: &mut ChaCha8Rng, plausible: &[&str]) -> Value {
    if rng.random_range(0..4) > 0 {
        return Value::String(plausible[0].to_owned());
    }
    text(rng, 10, plausible)
}

fn integer(rng: &mut ChaCha8Rng, edges: &[i64]) -> Value {
    match rng.random_range(0..10u32) {
        0 => Value::Null,
        1..=2 => json!(edges.choose(rng).copied().unwrap_or_default()),
        _ => json!(rng.random_range(1..100_000i64)),
    }
}

fn edge_case_row(rng: &mut ChaCha8Rng) -> Map<String, Value> {
    let int32_edges = [
        i64::MIN,
        -(1 << 31) - 1,
        -(1 << 31),
        -1,
        0,
        1,
        (1 << 31) - 1,
        1 << 31,
        i64::MAX,
    ];
    let names = [
        "Smith",
        "Mary  Ann",
        " De La Cruz",
        "O'Brien-Nguyễn",
        "José",
        "Zoë\tÅberg",
        "",
    ];
    let dates = [
        "2013-11-26",
        "1900-01-01",
        "1899-12-31",
        "2026-01-01",
        "2026-01-02",
        "2024-02-29",
        "2023-02-29",
        "2000-02-29",
        "1900-02-29",
        "0000-01-01",
        "2013-13-01",
        "2013-1-26",
        "11/26/2013",
        "２０１３-11-26",
        "2013-11-26T00:00:00",
    ];
    let timestamps = [
        "2016-09-28T12:00:00-05:00",
        "2016-09-28T12:00:00.250-05:00",
        "2016-09-28T12:00:00Z",
        "2016-09-28T12:00:00.123456789+05:30",
        "2016-09-28T12:00:00.1234567890-05:00",
        "2016-09-28T12:00:00.-05:00",
        "2016-09-28 12:00:00",
        "2016-09-28T24:00:00-05:00",
        "2016-09-28T23:59:60-05:00",
        "2016-09-28T12:00:00-24:00",
        "2016-09-28T12:00:00-0500",
        "2016-02-30T12:00:00-05:00",
        "2016-09-28T12:00:00+23:59",
    ];
    let states = [
        "MO", "mo", " ks ", "Pr", "ap", "UM", "XX", "Missouri", "M", "é", "ÉÉ",
    ];
    let zips = [
        "64106",
        "64106-1234",
        "641061234",
        "6410",
        "64106-123",
        "6410a",
        "64106 1234",
    ];
    let phones = [
        "8165550100",
        "(816) 555-0100",
        "816.555.0100",
        "+1 816 555 0100",
        "1-816-555-0100",
        "555-0100",
        "816-555-01000",
        "2-816-555-0100",
        "816-555-0100 x12",
        "816-555-O100",
        "123-456-7890",
        "816-155-0100",
        "+44 20 7946 0958",
        "++1 816 555 0100",
        "１816-555-0100",
    ];
    let emails = [
        "john.smith@example.com",
        " j.doe+shots@mail.example.org ",
        "o'brien@example.com",
        "josé@bücher.de",
        "none",
        "n/a",
        "john@",
        "@example.com",
        "john@gmail",
        "john@@example.com",
        "john@example..com",
        "john@-example.com",
        "john doe@example.com",
        ".john@example.com",
        "john..doe@example.com",
        "john@example.c",
        "john@10.0.0.1",
        "john@exa_mple.com",
        "jo\u{a0}hn@example.com",
        "john@example.é",
        "a@b.éé",
        "jo\u{7f}hn@example.com",
        "jo\u{1c}hn@example.com",
        "x@y.z9",
    ];
    let sexes = ["M", "f", " u ", "X", "Male", "m\u{1c}", ""];
    let free_text = [
        "12 Main St",
        "Apt 4",
        "Kansas City",
        "White",
        "Not Hispanic or Latino",
        "Line one\n  She said \"no more\"\\ok  ",
        "Calle Luna 5",
        "",
        "   ",
    ];
    let mut row = Map::new();
    let mut put = |column: &str, value: Value| {
        row.insert(column.to_owned(), value);
    };
    put("patno", integer(rng, &int32_edges));
    put("lname", required_text(rng, &names));
    put("fname", required_text(rng, &names));
    put("birth_date", required_text(rng, &dates));
    put("sex", text(rng, 20, &sexes));
    put("addr1", text(rng, 30, &free_text));
    put("addr2", text(rng, 50, &free_text));
    put("city", text(rng, 30, &free_text));
    put("state", text(rng, 20, &states));
    put("zip", text(rng, 20, &zips));
    put("home_phone", text(rng, 20, &phones));
    put("cell_phone", text(rng, 20, &phones));
    put("email", text(rng, 20, &emails));
    put("race", text(rng, 40, &free_text));
    put("ethnicity", text(rng, 40, &free_text));
    put("family_no", integer(rng, &int32_edges));
    put("notes", text(rng, 40, &free_text));
    put("updated_at", required_text(rng, &timestamps));
    row
}

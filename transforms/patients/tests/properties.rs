//! Properties of the `patients` module, run natively through the same code path as the
//! component (`reqsync_guest::testing`): `cargo test -p transform-patients`.
//!
//! Each property is named after the rule it guards; `examples.json` pins single cases, these
//! check the rule over generated rows (as-of dates, names, dates, phones, ZIP codes, blanks).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;
use reqsync_guest::Date;
use reqsync_guest::rules::collapse_whitespace;
use reqsync_guest::testing::strategies::{
    Sample, blanks, dates, iso_dates, messy_dates, names, non_blank_names, phone_spellings,
    us_phone_numbers, us_phones, zips,
};
use reqsync_guest::testing::{self, RowOutcome, TestRow};
use serde_json::{Value, json};
use transform_patients::Patients;

const UPDATED_AT: &str = "2016-09-28T12:00:00-05:00";
const EARLIEST_BIRTH_DATE: Date = Date::ymd(1900, 1, 1);
/// The five fields every emitted record carries.
const REQUIRED: [&str; 5] = [
    "patient_number",
    "first_name",
    "last_name",
    "dob",
    "hd_mpfile_updated_at",
];

/// As-of dates of this century.
fn as_of_dates() -> impl Strategy<Value = Date> {
    dates(Date::ymd(2000, 1, 1), Date::ymd(2099, 12, 31))
}

/// An as-of date and a birth date the rules accept (1900-01-01 … the as-of date).
fn as_of_and_valid_dob() -> impl Strategy<Value = (Date, Date)> {
    as_of_dates().prop_flat_map(|as_of| (Just(as_of), dates(EARLIEST_BIRTH_DATE, as_of)))
}

fn patient_numbers() -> impl Strategy<Value = i64> {
    1..=i64::from(i32::MAX)
}

/// A row every rule accepts, with only the required columns.
fn valid_row() -> TestRow {
    testing::row(json!({
        "patno": 101, "lname": "Smith", "fname": "John", "birth_date": "2013-11-26",
        "updated_at": UPDATED_AT,
    }))
}

const AS_OF: &str = "2026-01-01";

fn text<'a>(record: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a str> {
    record.get(field).and_then(Value::as_str)
}

proptest! {
    #[test]
    fn a_patient_with_valid_required_values_always_emits_with_tidied_names(
        (as_of, dob) in as_of_and_valid_dob(),
        patno in patient_numbers(),
        lname in non_blank_names(),
        fname in non_blank_names(),
    ) {
        let row = valid_row()
            .set("patno", patno)
            .set("lname", lname.as_str())
            .set("fname", fname.as_str())
            .set("birth_date", dob.to_string());
        let outcome = testing::run_row::<Patients>(&as_of.to_string(), row);
        let Some(record) = outcome.record() else {
            return Err(TestCaseError::fail(format!("not emitted: {outcome:?}")));
        };
        prop_assert!(outcome.warnings().is_empty());
        prop_assert_eq!(&record["patient_number"], &json!(patno));
        let dob = dob.to_string();
        prop_assert_eq!(text(record, "dob"), Some(dob.as_str()));
        for (field, typed) in [("last_name", &lname), ("first_name", &fname)] {
            let sent = text(record, field).unwrap_or_default();
            // Trimmed, inner whitespace collapsed, letters as typed.
            prop_assert_eq!(sent, collapse_whitespace(typed));
            prop_assert!(!sent.contains("  ") && sent.trim() == sent, "{:?}", sent);
        }
    }

    #[test]
    fn a_birth_date_after_the_as_of_date_always_rejects_in_future(
        (as_of, dob) in as_of_dates().prop_flat_map(|as_of| {
            let tomorrow = as_of.succ().unwrap_or(Date::MAX);
            (Just(as_of), dates(tomorrow, Date::MAX))
        }),
        patno in any::<i64>(),
        lname in names(),
        fname in names(),
    ) {
        let row = valid_row()
            .set("patno", patno)
            .set("lname", lname)
            .set("fname", fname)
            .set("birth_date", dob.to_string());
        let outcome = testing::run_row::<Patients>(&as_of.to_string(), row);
        prop_assert!(
            outcome.rejections().contains(&"dob:in-future".to_owned()),
            "{:?}", outcome
        );
    }

    #[test]
    fn a_birth_date_before_1900_always_rejects_before_1900(
        dob in dates(Date::MIN, Date::ymd(1899, 12, 31)),
        as_of in as_of_dates(),
    ) {
        let row = valid_row().set("birth_date", dob.to_string());
        let outcome = testing::run_row::<Patients>(&as_of.to_string(), row);
        prop_assert_eq!(outcome.rejections(), ["dob:before-1900".to_owned()]);
    }

    #[test]
    fn a_birth_date_that_is_not_an_iso_calendar_date_always_rejects_invalid_date(
        dob in messy_dates(),
        as_of in as_of_dates(),
    ) {
        let row = valid_row().set("birth_date", dob);
        let outcome = testing::run_row::<Patients>(&as_of.to_string(), row);
        prop_assert_eq!(outcome.rejections(), ["dob:invalid-date".to_owned()]);
    }

    #[test]
    fn a_patient_number_outside_int4_always_rejects_out_of_range(
        patno in prop_oneof![
            select(vec![i64::MIN, -1, 0, i64::from(i32::MAX) + 1, i64::MAX]),
            i64::MIN..=0,
            i64::from(i32::MAX) + 1..=i64::MAX,
        ],
    ) {
        let outcome = testing::run_row::<Patients>(AS_OF, valid_row().set("patno", patno));
        prop_assert_eq!(outcome.rejections(), ["patient_number:out-of-range".to_owned()]);
    }

    #[test]
    fn every_accepted_spelling_of_a_phone_number_is_sent_as_the_same_number(
        (number, home, cell) in us_phone_numbers()
            .prop_flat_map(|n| (Just(n.clone()), phone_spellings(&n), phone_spellings(&n))),
    ) {
        let row = valid_row().set("home_phone", home).set("cell_phone", cell);
        let outcome = testing::run_row::<Patients>(AS_OF, row);
        let record = outcome.record().cloned().unwrap_or_default();
        prop_assert_eq!(text(&record, "home_phone"), Some(number.as_str()));
        prop_assert_eq!(text(&record, "cell_phone"), Some(number.as_str()));
        prop_assert!(outcome.warnings().is_empty());
    }

    #[test]
    fn a_phone_number_is_sent_normalised_or_left_out_with_a_warning(
        phone in us_phones(),
    ) {
        let row = valid_row().set("home_phone", phone.input.as_str());
        let outcome = testing::run_row::<Patients>(AS_OF, row);
        check_normalised_or_warned(&outcome, "home_phone", "invalid-phone", &phone)?;
    }

    #[test]
    fn a_zip_code_is_sent_trimmed_or_left_out_with_a_warning(zip in zips()) {
        let row = valid_row().set("zip", zip.input.as_str());
        let outcome = testing::run_row::<Patients>(AS_OF, row);
        check_normalised_or_warned(&outcome, "zip_code", "invalid-zip", &zip)?;
    }

    #[test]
    fn whitespace_only_optional_fields_are_left_out_without_warnings(
        values in prop::collection::vec(blanks(), 12),
    ) {
        let columns = [
            "sex", "addr1", "addr2", "city", "state", "zip", "home_phone", "cell_phone", "email",
            "race", "ethnicity", "notes",
        ];
        let mut row = valid_row();
        for (column, value) in columns.into_iter().zip(values) {
            row = row.set(column, value);
        }
        let outcome = testing::run_row::<Patients>(AS_OF, row);
        let record = outcome.record().cloned().unwrap_or_default();
        let fields: Vec<&str> = record.keys().map(String::as_str).collect();
        let mut required = REQUIRED.to_vec();
        required.sort_unstable();
        prop_assert_eq!(fields, required);
        prop_assert!(outcome.warnings().is_empty(), "{:?}", outcome);
    }

}

proptest! {
    // Each case runs several rows: 64 cases are some 500 rows, plenty for a message that varies
    // with the row to show, and keep these two properties as fast as the others.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn findings_never_quote_a_row_value(rows in prop::collection::vec(messy_rows(), 1..8)) {
        for row in rows {
            let (_, said) = testing::run_row_with_messages::<Patients>(AS_OF, row.clone());
            for (column, value) in row.texts() {
                let value = value.trim();
                // Dates are left to the property below: the birth-date rule's message names its
                // 1900-01-01 limit, which a date column may hold too. Texts shorter than eight
                // characters could occur in a message by chance.
                if ["birth_date", "updated_at"].contains(&column) || value.chars().count() < 8 {
                    continue;
                }
                for line in &said {
                    prop_assert!(!line.contains(value), "`{}` quoted in {:?}", column, line);
                }
            }
        }
    }

    #[test]
    fn finding_messages_depend_only_on_field_and_code(
        rows in prop::collection::vec(messy_rows(), 4..12),
    ) {
        // A message that varies from row to row carries something of the row into the logs.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for row in rows {
            let (_, said) = testing::run_row_with_messages::<Patients>(AS_OF, row);
            for line in said {
                let Some((code, message)) = line.split_once(": ") else {
                    return Err(TestCaseError::fail(format!("not `field:code: message`: {line}")));
                };
                let first = seen.entry(code.to_owned()).or_insert_with(|| message.to_owned());
                prop_assert_eq!(&*first, message, "{}", code);
            }
        }
    }
}

/// `field` holds `sample.expected`, or is absent with warning `field:code` when the rule
/// refuses the input.
fn check_normalised_or_warned(
    outcome: &RowOutcome,
    field: &str,
    code: &str,
    sample: &Sample,
) -> Result<(), TestCaseError> {
    let record = outcome
        .record()
        .ok_or_else(|| TestCaseError::fail(format!("not emitted: {outcome:?}")))?;
    match &sample.expected {
        Some(expected) => {
            prop_assert_eq!(text(record, field), Some(expected.as_str()));
            prop_assert!(outcome.warnings().is_empty(), "{:?}", outcome);
        }
        None => {
            prop_assert_eq!(text(record, field), None);
            prop_assert_eq!(outcome.warnings(), [format!("{field}:{code}")]);
        }
    }
    Ok(())
}

/// Rows with every column filled, each column valid three times in four and anything the
/// strategies make otherwise: rows that emit with warnings as often as rows that reject, which
/// a findings check must survive.
fn messy_rows() -> impl Strategy<Value = TestRow> {
    fn mostly<T: std::fmt::Debug + 'static>(
        valid: impl Strategy<Value = T> + 'static,
        messy: impl Strategy<Value = T> + 'static,
    ) -> BoxedStrategy<T> {
        prop_oneof![3 => valid, 1 => messy].boxed()
    }
    let as_of = Date::parse(AS_OF).unwrap_or(Date::MAX);
    let any_date = || prop_oneof![iso_dates(Date::MIN, Date::MAX), messy_dates()];
    let texts = (
        names(),
        names(),
        mostly(iso_dates(EARLIEST_BIRTH_DATE, as_of), any_date()),
        us_phones(),
        us_phones(),
        zips(),
        mostly("[a-z]{1,10}@[a-z]{2,8}\\.(com|org|net)", "[a-z.@ ]{1,12}"),
        mostly(
            select(&["MO", "KS", " ks "][..]).prop_map(str::to_owned),
            "[A-Za-z ]{1,4}",
        ),
        names(),
        names(),
        mostly(Just(UPDATED_AT.to_owned()), any_date()),
    );
    let numbers = (
        mostly(patient_numbers(), any::<i64>()),
        mostly(1..=i64::from(i32::MAX), any::<i64>()),
    );
    (numbers, texts).prop_map(|((patno, family_no), texts)| {
        let (lname, fname, dob, home, cell, zip, email, state, city, notes, updated_at) = texts;
        testing::row(json!({
            "patno": patno, "lname": lname, "fname": fname, "birth_date": dob,
            "home_phone": home.input, "cell_phone": cell.input, "zip": zip.input,
            "email": email, "state": state, "city": city, "addr1": notes.clone(),
            "notes": notes, "updated_at": updated_at, "family_no": family_no,
        }))
    })
}

//! Properties of the `vaccine-doses` module, run natively through the same code path as the
//! component (`reqsync_guest::testing`): `cargo test -p transform-vaccine-doses`.
//!
//! Each property is named after the rule it guards; `examples.json` pins single cases, these
//! check the rule over generated rows. The one ReqCheck trap the module exists for — a dose of a
//! patient ReqCheck does not have creates a "Not Found" placeholder patient — is checked against
//! the `patients` module itself: doses are held back exactly when it rejects their patient.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;
use reqsync_guest::Date;
use reqsync_guest::testing::strategies::{blanks, dates, iso_dates, messy_dates, names};
use reqsync_guest::testing::{self, RowOutcome, TestRow};
use serde_json::{Value, json};
use transform_patients::Patients;
use transform_vaccine_doses::{CVX_CODES, VaccineDoses};

const UPDATED_AT: &str = "2016-10-24T10:00:00-05:00";
const EARLIEST_BIRTH_DATE: Date = Date::ymd(1900, 1, 1);
const AS_OF: &str = "2026-01-01";
/// The five fields every emitted record carries, sorted.
const REQUIRED: [&str; 5] = [
    "cvx_code",
    "date_administered",
    "hd_imfile_updated_at",
    "history_flag",
    "patient_number",
];

/// As-of dates of this century.
fn as_of_dates() -> impl Strategy<Value = Date> {
    dates(Date::ymd(2000, 1, 1), Date::ymd(2099, 12, 31))
}

fn patient_numbers() -> impl Strategy<Value = i64> {
    1..=i64::from(i32::MAX)
}

fn cvx_codes() -> impl Strategy<Value = i64> {
    select(CVX_CODES.codes()).prop_map(i64::from)
}

/// A dose every rule accepts, of a patient every rule accepts, with only the required columns.
fn valid_dose() -> TestRow {
    testing::row(json!({
        "im_id": 9001, "patno": 4, "cvx": 10, "admin_date": "2014-03-08", "history": "N",
        "updated_at": UPDATED_AT, "patient_patno": 4, "patient_lname": "Tester",
        "patient_fname": "Test", "patient_birth_date": "2013-11-26",
    }))
}

/// The dose's patient number, on the dose and on the joined patient.
fn for_patient(row: TestRow, patno: i64) -> TestRow {
    row.set("patno", patno).set("patient_patno", patno)
}

proptest! {
    #[test]
    fn a_valid_dose_of_a_valid_patient_always_emits(
        (as_of, born, given) in as_of_dates()
            .prop_flat_map(|as_of| (Just(as_of), dates(EARLIEST_BIRTH_DATE, as_of)))
            .prop_flat_map(|(as_of, born)| (Just(as_of), Just(born), dates(born, as_of))),
        patno in patient_numbers(),
        cvx in cvx_codes(),
        (history, flag) in select(vec![("Y", true), ("N", false), (" Y ", true), ("N\t", false)]),
    ) {
        let row = for_patient(valid_dose(), patno)
            .set("cvx", cvx)
            .set("history", history)
            .set("patient_birth_date", born.to_string())
            .set("admin_date", given.to_string());
        let outcome = testing::run_row::<VaccineDoses>(&as_of.to_string(), row);
        let Some(record) = outcome.record() else {
            return Err(TestCaseError::fail(format!("not emitted: {outcome:?}")));
        };
        prop_assert!(outcome.warnings().is_empty());
        prop_assert_eq!(&record["patient_number"], &json!(patno));
        prop_assert_eq!(&record["cvx_code"], &json!(cvx));
        prop_assert_eq!(&record["date_administered"], &json!(given.to_string()));
        prop_assert_eq!(&record["history_flag"], &json!(flag));
    }

    #[test]
    fn a_dose_whose_joined_patient_number_differs_from_its_own_never_emits(
        patno in any::<i64>(),
        joined in any::<i64>(),
    ) {
        prop_assume!(patno != joined);
        let row = valid_dose().set("patno", patno).set("patient_patno", joined);
        let outcome = testing::run_row::<VaccineDoses>(AS_OF, row);
        prop_assert_eq!(outcome.rejections(), ["patient_number:patient-mismatch".to_owned()]);
    }

    #[test]
    fn a_dose_without_a_joined_patient_is_held_back_as_patient_not_found(
        patno in any::<i64>(),
        admin_date in prop_oneof![iso_dates(Date::MIN, Date::MAX), messy_dates()],
        cvx in any::<i64>(),
    ) {
        let row = valid_dose()
            .set("patno", patno)
            .set("admin_date", admin_date)
            .set("cvx", cvx)
            .null("patient_patno")
            .null("patient_lname")
            .null("patient_fname")
            .null("patient_birth_date");
        let outcome = testing::run_row::<VaccineDoses>(AS_OF, row);
        prop_assert_eq!(outcome.skip_code(), Some("patient-not-found"));
    }

    #[test]
    fn doses_are_held_back_exactly_when_the_patients_module_rejects_their_patient(
        (as_of, born) in as_of_dates().prop_flat_map(|as_of| {
            let near = |date: Date| {
                let (before, after) = (date.add_days(-2), date.add_days(2));
                iso_dates(before.unwrap_or(date), after.unwrap_or(date))
            };
            // Near the two limits of the birth-date rule, anywhere, or not a date.
            let born = prop_oneof![
                2 => near(as_of),
                1 => near(EARLIEST_BIRTH_DATE),
                2 => iso_dates(Date::ymd(1890, 1, 1), Date::ymd(2100, 12, 31)),
                1 => messy_dates(),
            ];
            (Just(as_of), born)
        }),
        patno in prop_oneof![3 => patient_numbers(), 1 => any::<i64>()],
        lname in names(),
        fname in names(),
    ) {
        let patient = testing::row(json!({
            "patno": patno, "lname": lname, "fname": fname, "birth_date": born,
            "updated_at": UPDATED_AT,
        }));
        // Given on the as-of date: never after it, never before a birth date the rules accept.
        let dose = for_patient(valid_dose(), patno)
            .set("patient_lname", lname)
            .set("patient_fname", fname)
            .set("patient_birth_date", born)
            .set("admin_date", as_of.to_string());
        let as_of = as_of.to_string();
        let patient = testing::run_row::<Patients>(&as_of, patient);
        let dose = testing::run_row::<VaccineDoses>(&as_of, dose);
        match patient {
            RowOutcome::Emit { .. } => prop_assert!(dose.record().is_some(), "{:?}", dose),
            _ => prop_assert_eq!(dose.skip_code(), Some("patient-not-sent")),
        }
    }

    #[test]
    fn a_dose_given_after_the_as_of_date_always_rejects_in_future(
        (as_of, given) in as_of_dates().prop_flat_map(|as_of| {
            (Just(as_of), dates(as_of.succ().unwrap_or(Date::MAX), Date::MAX))
        }),
        cvx in any::<i64>(),
    ) {
        let row = valid_dose()
            .set("patient_birth_date", "1990-05-05") // before any as-of date generated here
            .set("admin_date", given.to_string())
            .set("cvx", cvx);
        let outcome = testing::run_row::<VaccineDoses>(&as_of.to_string(), row);
        prop_assert!(
            outcome.rejections().contains(&"date_administered:in-future".to_owned()),
            "{:?}", outcome
        );
    }

    #[test]
    fn a_dose_given_before_the_patient_was_born_always_rejects_before_birth(
        (born, given) in dates(Date::ymd(1900, 1, 2), Date::parse(AS_OF).unwrap_or(Date::MAX))
            .prop_flat_map(|born| {
                (Just(born), dates(Date::MIN, born.add_days(-1).unwrap_or(Date::MIN)))
            }),
    ) {
        let row = valid_dose()
            .set("patient_birth_date", born.to_string())
            .set("admin_date", given.to_string());
        let outcome = testing::run_row::<VaccineDoses>(AS_OF, row);
        prop_assert_eq!(outcome.rejections(), ["date_administered:before-birth".to_owned()]);
    }

    #[test]
    fn a_cvx_code_outside_the_cdc_list_always_rejects_unknown_code(
        cvx in prop_oneof![
            any::<i64>(),
            -1..=1000i64,
            // Codes of the list plus 2^16: a narrowing cast would turn them into known codes.
            cvx_codes().prop_map(|code| code + 65_536),
        ],
    ) {
        prop_assume!(!u16::try_from(cvx).is_ok_and(|code| CVX_CODES.contains(&code)));
        let outcome = testing::run_row::<VaccineDoses>(AS_OF, valid_dose().set("cvx", cvx));
        prop_assert_eq!(outcome.rejections(), ["cvx_code:unknown-code".to_owned()]);
    }

    #[test]
    fn whitespace_only_optional_fields_are_left_out_without_warnings(
        values in prop::collection::vec(blanks(), 12),
    ) {
        // `exp_date` is a date column: the host delivers a date or NULL, never a blank.
        let columns = [
            "vac_code", "vac_desc", "mvx", "lot_no", "provider", "dosage", "site", "given_by",
            "vfc_code", "vfc_desc", "encounter_id", "comments",
        ];
        let mut row = valid_dose();
        for (column, value) in columns.into_iter().zip(values) {
            row = row.set(column, value);
        }
        let outcome = testing::run_row::<VaccineDoses>(AS_OF, row);
        let record = outcome.record().cloned().unwrap_or_default();
        let fields: Vec<&str> = record.keys().map(String::as_str).collect();
        prop_assert_eq!(fields, REQUIRED);
        prop_assert!(outcome.warnings().is_empty(), "{:?}", outcome);
    }

    #[test]
    fn manufacturer_codes_are_sent_trimmed_and_upper_case(mvx in "[ \t]?[A-Za-z]{2,4}[ \t]?") {
        let row = valid_dose().set("mvx", mvx.as_str());
        let outcome = testing::run_row::<VaccineDoses>(AS_OF, row);
        let record = outcome.record().cloned().unwrap_or_default();
        let expected = mvx.trim().to_uppercase();
        prop_assert_eq!(record.get("mvx_code").and_then(Value::as_str), Some(expected.as_str()));
    }

}

proptest! {
    // Each case runs several rows: 64 cases are some 500 rows, plenty for a message that varies
    // with the row to show, and keep these two properties as fast as the others.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn finding_messages_depend_only_on_field_and_code(
        rows in prop::collection::vec(messy_doses(), 4..12),
    ) {
        // A message that varies from row to row carries something of the row into the logs.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for row in rows {
            let (_, said) = testing::run_row_with_messages::<VaccineDoses>(AS_OF, row);
            for line in said {
                let Some((code, message)) = line.split_once(": ") else {
                    return Err(TestCaseError::fail(format!("not `code: message`: {line}")));
                };
                let first = seen.entry(code.to_owned()).or_insert_with(|| message.to_owned());
                prop_assert_eq!(&*first, message, "{}", code);
            }
        }
    }
}

/// Dose rows with the decisive columns valid three times in four and anything otherwise: rows
/// that emit, warn, reject and skip.
fn messy_doses() -> impl Strategy<Value = TestRow> {
    fn mostly<T: std::fmt::Debug + 'static>(
        valid: impl Strategy<Value = T> + 'static,
        messy: impl Strategy<Value = T> + 'static,
    ) -> BoxedStrategy<T> {
        prop_oneof![3 => valid, 1 => messy].boxed()
    }
    let as_of = Date::parse(AS_OF).unwrap_or(Date::MAX);
    let any_date = || prop_oneof![iso_dates(Date::MIN, Date::MAX), messy_dates()];
    (
        mostly(Just(true), Just(false)),
        mostly(patient_numbers(), any::<i64>()),
        mostly(Just(None), any::<i64>().prop_map(Some)),
        (names(), names()),
        mostly(iso_dates(EARLIEST_BIRTH_DATE, as_of), any_date()),
        mostly(cvx_codes(), any::<i64>()),
        mostly(iso_dates(EARLIEST_BIRTH_DATE, as_of), any_date()),
        mostly(iso_dates(as_of, Date::ymd(2030, 12, 31)), any_date()),
        mostly(
            select(&["Y", "N", " Y "][..]),
            select(&["y", "n", "1", "", "Yes"][..]),
        ),
        mostly(Just(UPDATED_AT.to_owned()), any_date()),
    )
        .prop_map(
            |(joined, patno, other, (lname, fname), born, cvx, given, expires, history, stamp)| {
                // The joined patient: this one, none, or (rarely) another number.
                let patient_patno = match (joined, other) {
                    (false, _) => Value::Null,
                    (true, Some(other)) => json!(other),
                    (true, None) => json!(patno),
                };
                testing::row(json!({
                    "im_id": 1, "patno": patno, "patient_patno": patient_patno,
                    "patient_lname": lname, "patient_fname": fname, "patient_birth_date": born,
                    "cvx": cvx, "admin_date": given, "exp_date": expires, "history": history,
                    "updated_at": stamp,
                }))
            },
        )
}

//! The default `patients` transform: `mpfile` rows → ReqCheck `patient_data` records, following
//! the `mpfile` rules of reqsync's `docs/default-mapping.md` (codes: `transforms/README.md`).
//!
//! Build the component: `reqsync transform build` in a module folder made by `reqsync transform
//! new`, or `cargo build -p transform-patients --target wasm32-wasip2 --release` in the reqsync
//! repository.

use clinic_rules as clinic;
use reqsync_guest::{
    Context, FieldSpec, Finding, ModuleInfo, Outcome, RecordWriter, Row, Transform, ValueHint,
    columns,
};

/// US phone numbers as clinics type them: `8165551234`, `816-555-1234`, `(816) 555-1234`.
const PHONE_PATTERN: &str = r"\(?[0-9]{3}\)? ?-?[0-9]{3}-?[0-9]{4}";

columns! {
    /// The `mpfile` columns this module reads (`mname` is not: ReqCheck has no column for it).
    pub mod input {
        patno: Integer, required => [ValueHint::Range { min: 1, max: i32::MAX as i64 }];
        lname: Text, required => [ValueHint::MaxLength(35)];
        fname: Text, required => [ValueHint::MaxLength(35)];
        birth_date: Date, required => [ValueHint::Dates { min: "1900-01-01", max: "2025-12-31" }];
        sex: Text => [ValueHint::OneOf(&["F", "M", "U", "f", "m", "u"])];
        addr1: Text => [ValueHint::MaxLength(60)];
        addr2: Text => [ValueHint::MaxLength(60)];
        city: Text => [ValueHint::MaxLength(40)];
        state: Text => [ValueHint::Pattern("[A-Z]{2}")];
        zip: Text => [ValueHint::Pattern("[0-9]{5}(-[0-9]{4})?")];
        home_phone: Text => [ValueHint::Pattern(PHONE_PATTERN)];
        cell_phone: Text => [ValueHint::Pattern(PHONE_PATTERN)];
        email: Text => [ValueHint::Pattern("[a-z]{1,12}@[a-z]{1,12}\\.(org|com|net)")];
        race: Text => [ValueHint::MaxLength(60)];
        ethnicity: Text => [ValueHint::MaxLength(60)];
        family_no: Integer => [ValueHint::Range { min: 1, max: i32::MAX as i64 }];
        notes: Text => [ValueHint::MaxLength(200)];
        updated_at: Timestamp, required => [ValueHint::Dates { min: "2000-01-01", max: "2025-12-31" }];
    }
}

/// The `patient_data` fields this module emits: all on ReqCheck's whitelist
/// (reqcheck-api.md §1.2), which rejects a record carrying any other key.
pub const OUTPUT_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("patient_number"),
    FieldSpec::required("first_name"),
    FieldSpec::required("last_name"),
    FieldSpec::required("dob"),
    FieldSpec::optional("gender"),
    FieldSpec::optional("address"),
    FieldSpec::optional("address2"),
    FieldSpec::optional("city"),
    FieldSpec::optional("state"),
    FieldSpec::optional("zip_code"),
    FieldSpec::optional("home_phone"),
    FieldSpec::optional("cell_phone"),
    FieldSpec::optional("email"),
    FieldSpec::optional("race"),
    FieldSpec::optional("ethnicity"),
    FieldSpec::optional("family_number"),
    FieldSpec::optional("notes"),
    FieldSpec::required("hd_mpfile_updated_at"),
];

/// The module.
#[derive(Debug)]
pub struct Patients;

impl Transform for Patients {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "patients",
            version: "1.0.0",
            target: "patient_data",
            key_column: "patno",
            input_columns: input::SPECS,
            output_fields: OUTPUT_FIELDS,
        }
    }

    fn row(row: &Row<'_>, ctx: &Context, out: &mut RecordWriter) -> Outcome {
        let patient = clinic::validate_patient(
            clinic::PatientInput {
                patno: row.int(input::patno),
                last_name: row.text(input::lname),
                first_name: row.text(input::fname),
                birth_date: row.text(input::birth_date),
            },
            ctx.as_of_date(),
        );
        let updated_at = clinic::source_timestamp(row.text(input::updated_at));
        let (patient, updated_at) = match (patient, updated_at) {
            (Ok(patient), Ok(updated_at)) => (patient, updated_at),
            (patient, updated_at) => {
                let mut rejections = patient.err().unwrap_or_default();
                rejections.extend(updated_at.err().map(|p| p.at("hd_mpfile_updated_at")));
                return Outcome::Reject(rejections);
            }
        };

        out.int("patient_number", patient.patient_number);
        out.str("first_name", &patient.first_name);
        out.str("last_name", &patient.last_name);
        out.date("dob", patient.dob);
        out.opt_str("gender", clinic::gender(row.text(input::sex)));
        out.opt_str("address", clinic::optional_text(row.text(input::addr1)));
        out.opt_str("address2", clinic::optional_text(row.text(input::addr2)));
        out.opt_str("city", clinic::optional_text(row.text(input::city)));

        // Bad optional values are left out with a warning: the patient still goes to ReqCheck
        // (it is needed for the doses), and the warning tells the clinic what to fix.
        let mut warnings: Vec<Finding> = Vec::new();
        let mut warn =
            |field: &'static str, problem: clinic::Problem| warnings.push(problem.at(field));
        match clinic::state(row.text(input::state)) {
            Ok(state) => out.opt_str("state", state),
            Err(problem) => warn("state", problem),
        }
        match clinic::zip(row.text(input::zip)) {
            Ok(zip) => out.opt_str("zip_code", zip),
            Err(problem) => warn("zip_code", problem),
        }
        for (column, field) in [
            (input::home_phone, "home_phone"),
            (input::cell_phone, "cell_phone"),
        ] {
            match clinic::phone(row.text(column)) {
                Ok(phone) => out.opt_str(field, phone.as_ref().map(|p| p.as_str())),
                Err(problem) => warn(field, problem),
            }
        }
        match clinic::email(row.text(input::email)) {
            Ok(email) => out.opt_str("email", email),
            Err(problem) => warn("email", problem),
        }
        out.opt_str("race", clinic::optional_text(row.text(input::race)));
        out.opt_str(
            "ethnicity",
            clinic::optional_text(row.text(input::ethnicity)),
        );
        match clinic::family_number(row.int(input::family_no)) {
            Ok(Some(number)) => out.int("family_number", number),
            Ok(None) => {}
            Err(problem) => warn("family_number", problem),
        }
        out.opt_str("notes", clinic::pass_through(row.text(input::notes)));
        out.str("hd_mpfile_updated_at", updated_at);

        Outcome::Emit { warnings }
    }
}

reqsync_guest::export_transform!(Patients);

#[cfg(test)]
mod tests {
    use super::*;
    use reqsync_guest::testing::{self, RowOutcome};
    use serde_json::json;

    #[test]
    fn example_cases() {
        testing::assert_examples::<Patients>(include_str!("../examples.json"));
    }

    #[test]
    fn describes_itself() {
        let info = Patients::info();
        assert_eq!(
            (info.name, info.target, info.key_column),
            ("patients", "patient_data", "patno")
        );
        // Any version: bumping it is part of every rule change. It must be one, though.
        let numbers: Vec<&str> = info
            .version
            .split(['+', '-'])
            .next()
            .unwrap_or("")
            .split('.')
            .collect();
        assert!(
            numbers.len() == 3 && numbers.iter().all(|n| n.parse::<u32>().is_ok()),
            "`{}` is not MAJOR.MINOR.PATCH",
            info.version
        );
        let required: Vec<_> = info
            .output_fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name)
            .collect();
        assert_eq!(
            required,
            [
                "patient_number",
                "first_name",
                "last_name",
                "dob",
                "hd_mpfile_updated_at"
            ]
        );
        assert!(!info.input_columns.iter().any(|c| c.name == "mname"));
    }

    #[test]
    fn a_batch_without_a_required_column_fails_whole() {
        let failure = testing::run_rows_omitting::<Patients>(
            "2026-01-01",
            &[json!({"patno": 1})],
            &["birth_date"],
        )
        .expect_err("birth_date is required");
        assert_eq!(failure.code, "missing-column");
        assert!(failure.message.contains("birth_date"));
    }

    #[test]
    fn a_query_without_optional_columns_still_maps() {
        let row = json!({"patno": 7, "lname": "Doe", "fname": "Jane", "birth_date": "2010-05-06",
                         "updated_at": "2016-09-28T12:00:00-05:00"});
        let optional: Vec<&str> = input::SPECS
            .iter()
            .filter(|c| !c.must_be_in_batch())
            .map(|c| c.name)
            .collect();
        let outcomes =
            testing::run_rows_omitting::<Patients>("2026-01-01", &[row], &optional).expect("runs");
        assert!(
            matches!(&outcomes[0], RowOutcome::Emit { record, warnings } if record.len() == 5 && warnings.is_empty())
        );
    }

    #[test]
    fn rejected_rows_leave_nothing_in_the_record_buffer() {
        let good = json!({"patno": 1, "lname": "A", "fname": "B", "birth_date": "2000-01-01",
                          "updated_at": "2016-09-28T12:00:00-05:00", "notes": "n"});
        let bad = json!({"patno": 2, "lname": " ", "fname": "B", "birth_date": "2000-01-01",
                         "updated_at": "2016-09-28T12:00:00-05:00", "notes": "secret"});
        // The harness checks that the emitted spans tile the buffer exactly.
        let outcomes =
            testing::run_rows::<Patients>("2026-01-01", &[good.clone(), bad, good]).expect("runs");
        assert!(matches!(outcomes[1], RowOutcome::Reject(_)));
    }
}

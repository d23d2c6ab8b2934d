//! Test module with one deliberate defect, the case of a user's report: it panics on first names
//! longer than 20 characters. It reads many columns of every kind, nullable and not, none of
//! which the defect depends on, so `reqsync transform test` must shrink each of them to its
//! plainest value (tests/e2e/transform_test.rs).

use reqsync_guest::{
    Context, FieldSpec, ModuleInfo, Outcome, RecordWriter, Row, Transform, ValueHint, columns,
};

columns! {
    pub mod input {
        patno: Integer, required => [ValueHint::Range { min: 1, max: 99_999 }];
        lname: Text, required => [ValueHint::MaxLength(35)];
        fname: Text, required => [ValueHint::MaxLength(35)];
        birth_date: Date, required => [ValueHint::Dates { min: "1900-01-01", max: "2020-12-31" }];
        sex: Text => [ValueHint::OneOf(&["F", "M", "U"])];
        addr1: Text => [ValueHint::MaxLength(60)];
        city: Text => [ValueHint::MaxLength(40)];
        state: Text => [ValueHint::Pattern("[A-Z]{2}")];
        zip: Text => [ValueHint::Pattern("[0-9]{5}(-[0-9]{4})?")];
        family_no: Integer => [ValueHint::Range { min: 1, max: 2_147_483_647 }];
        active: Boolean;
        notes: Text => [ValueHint::MaxLength(200)];
        updated_at: Timestamp, required => [ValueHint::Dates { min: "2000-01-01", max: "2025-12-31" }];
    }
}

const OUTPUT: &[FieldSpec] = &[
    FieldSpec::required("patient_number"),
    FieldSpec::required("first_name"),
    FieldSpec::required("last_name"),
    FieldSpec::required("dob"),
    FieldSpec::required("hd_mpfile_updated_at"),
];

/// The defect: a fixed-size buffer for the first name, as a hasty port of an old script had.
const FIRST_NAME_BUFFER: usize = 20;

#[derive(Debug)]
pub struct FlawedLongName;

impl Transform for FlawedLongName {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "flawed-long-name",
            version: "0.0.1",
            target: "patient_data",
            key_column: "patno",
            input_columns: input::SPECS,
            output_fields: OUTPUT,
        }
    }

    fn row(row: &Row<'_>, _ctx: &Context, out: &mut RecordWriter) -> Outcome {
        let (Some(patno), Some(last), Some(first), Some(dob)) = (
            row.int(input::patno)
                .filter(|n| (1..=i64::from(i32::MAX)).contains(n)),
            row.text(input::lname)
                .map(str::trim)
                .filter(|s| !s.is_empty()),
            row.text(input::fname)
                .map(str::trim)
                .filter(|s| !s.is_empty()),
            row.text(input::birth_date)
                .and_then(reqsync_guest::Date::parse),
        ) else {
            return Outcome::reject_one(
                "patient_number",
                "invalid",
                "a required value is unusable",
            );
        };
        let mut buffer = ['\0'; FIRST_NAME_BUFFER];
        for (i, c) in first.chars().enumerate() {
            buffer[i] = c; // panics past the 20th character
        }
        out.int("patient_number", patno);
        out.str("first_name", first);
        out.str("last_name", last);
        let mut iso = String::new();
        dob.push_iso(&mut iso);
        out.str("dob", &iso);
        out.str("hd_mpfile_updated_at", "2016-09-28T12:00:00-05:00");
        Outcome::emit()
    }
}

reqsync_guest::export_transform!(FlawedLongName);

// Shared body of the `flawed-*` test modules (each crate sets `FLAW` and includes this file): a
// small patients transform with one deliberate defect each, for the tests of
// `reqsync transform test` (tests/e2e/transform_test.rs) — each must be caught by its property.

use std::sync::atomic::{AtomicU64, Ordering};

use reqsync_guest::{
    Context, FieldSpec, ModuleInfo, Outcome, RecordWriter, Row, Transform, ValueHint, columns,
};

#[allow(dead_code)] // each crate uses one variant
enum Flaw {
    /// Writes `dob` as MM/DD/YYYY for people born before 1950 (record-schema).
    UsDateBefore1950,
    /// Rejects every seventh row it sees, whatever the row (deterministic / fresh-instance).
    CountsRows,
    /// Puts the last name into a reject message when it holds a digit (no-values-in-messages).
    QuotesValue,
    /// Slices the first name's first three bytes, which panics on short or non-ASCII names
    /// (no-fault).
    SlicesBytes,
    /// Declares `trade_name`, which ReqCheck's whitelist does not have (declaration).
    UndeclarableField,
}

columns! {
    pub mod input {
        patno: Integer, required => [ValueHint::Range { min: 1, max: 99_999 }];
        lname: Text, required => [ValueHint::MaxLength(20)];
        fname: Text, required => [ValueHint::MaxLength(20)];
        birth_date: Date, required => [ValueHint::Dates { min: "1900-01-01", max: "2020-12-31" }];
    }
}

const OUTPUT: &[FieldSpec] = &[
    FieldSpec::required("patient_number"),
    FieldSpec::required("first_name"),
    FieldSpec::required("last_name"),
    FieldSpec::required("dob"),
    FieldSpec::required("hd_mpfile_updated_at"),
];

const OUTPUT_WITH_TRADE_NAME: &[FieldSpec] = &[
    FieldSpec::required("patient_number"),
    FieldSpec::required("first_name"),
    FieldSpec::required("last_name"),
    FieldSpec::required("dob"),
    FieldSpec::required("hd_mpfile_updated_at"),
    FieldSpec::optional("trade_name"),
];

static ROWS_SEEN: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub struct Flawed;

impl Transform for Flawed {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "flawed",
            version: "0.0.1",
            target: "patient_data",
            key_column: "patno",
            input_columns: input::SPECS,
            output_fields: match FLAW {
                Flaw::UndeclarableField => OUTPUT_WITH_TRADE_NAME,
                _ => OUTPUT,
            },
        }
    }

    fn row(row: &Row<'_>, _ctx: &Context, out: &mut RecordWriter) -> Outcome {
        let seen = ROWS_SEEN.fetch_add(1, Ordering::Relaxed);
        if matches!(FLAW, Flaw::CountsRows) && seen % 7 == 6 {
            return Outcome::reject_one("patient_number", "unlucky", "every seventh row");
        }
        let (Some(patno), Some(last), Some(first), Some(dob)) = (
            row.int(input::patno).filter(|n| (1..=i64::from(i32::MAX)).contains(n)),
            row.text(input::lname).map(str::trim).filter(|s| !s.is_empty()),
            row.text(input::fname).map(str::trim).filter(|s| !s.is_empty()),
            row.text(input::birth_date).and_then(reqsync_guest::Date::parse),
        ) else {
            return Outcome::reject_one("patient_number", "invalid", "a required value is unusable");
        };
        if matches!(FLAW, Flaw::QuotesValue) && last.bytes().any(|b| b.is_ascii_digit()) {
            let message: &'static str =
                Box::leak(format!("last name {last} holds a digit").into_boxed_str());
            return Outcome::reject_one("last_name", "digit", message);
        }
        let first = if matches!(FLAW, Flaw::SlicesBytes) {
            &row.text(input::fname).unwrap_or_default()[..3]
        } else {
            first
        };
        out.int("patient_number", patno);
        out.str("first_name", first);
        out.str("last_name", last);
        let mut iso = String::new();
        dob.push_iso(&mut iso);
        if matches!(FLAW, Flaw::UsDateBefore1950) && iso.as_str() < "1950" {
            let us = format!("{}/{}/{}", &iso[5..7], &iso[8..10], &iso[..4]);
            out.str("dob", &us);
        } else {
            out.str("dob", &iso);
        }
        out.str("hd_mpfile_updated_at", "2016-09-28T12:00:00-05:00");
        Outcome::emit()
    }
}

reqsync_guest::export_transform!(Flawed);

// Shared body of the `swap-v1` / `swap-v2` test modules (each crate sets `VERSION` and
// includes this file): a patients transform that writes its version into `first_name`, so a test
// can tell which version processed each row.

use reqsync_guest::{
    Context, FieldSpec, ModuleInfo, Outcome, RecordWriter, Row, Transform, columns,
};

columns! {
    pub mod input {
        patno: Integer, required;
    }
}

const OUTPUT: &[FieldSpec] = &[
    FieldSpec::required("patient_number"),
    FieldSpec::required("first_name"),
    FieldSpec::required("last_name"),
    FieldSpec::required("dob"),
    FieldSpec::required("hd_mpfile_updated_at"),
];

#[derive(Debug)]
pub struct Versioned;

impl Transform for Versioned {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "swap",
            version: VERSION,
            target: "patient_data",
            key_column: "patno",
            input_columns: input::SPECS,
            output_fields: OUTPUT,
        }
    }

    fn row(row: &Row<'_>, _ctx: &Context, out: &mut RecordWriter) -> Outcome {
        let Some(patno) = row.int(input::patno) else {
            return Outcome::reject_one("patient_number", "missing", "patient number is NULL");
        };
        out.int("patient_number", patno);
        out.str("first_name", VERSION);
        out.str("last_name", "Swap");
        out.str("dob", "2000-01-01");
        out.str("hd_mpfile_updated_at", "2016-09-28T12:00:00-05:00");
        Outcome::emit()
    }
}

reqsync_guest::export_transform!(Versioned);

//! A transform that tries to read a file: it imports `wasi:filesystem`, which transforms never
//! get, so the host must refuse it at load.

use reqsync_guest::{
    Context, FieldSpec, ModuleInfo, Outcome, RecordWriter, Row, Transform, columns,
};

columns! {
    pub mod input {
        patno: Integer, required;
    }
}

const OUTPUT: &[FieldSpec] = &[FieldSpec::required("patient_number")];

#[derive(Debug)]
pub struct Snoop;

impl Transform for Snoop {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "capability",
            version: "0.0.1",
            target: "patient_data",
            key_column: "patno",
            input_columns: input::SPECS,
            output_fields: OUTPUT,
        }
    }

    fn row(row: &Row<'_>, _ctx: &Context, out: &mut RecordWriter) -> Outcome {
        let secret = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        out.int(
            "patient_number",
            row.int(input::patno).unwrap_or(0) + secret.len() as i64,
        );
        Outcome::emit()
    }
}

reqsync_guest::export_transform!(Snoop);

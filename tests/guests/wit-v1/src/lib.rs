//! A patients transform built against `reqsync:transform@1.0.0`, the WIT package before 2.0.0
//! added value hints to `column-spec` (`wit/transform.wit` is that version, verbatim from git
//! commit dfc0fed). It is a well-formed module of the old world: the host must refuse it at load
//! with "rebuild it with the guest SDK of this release", never run it.

#![allow(unsafe_code)] // the generated ABI glue

wit_bindgen::generate!({
    world: "transform",
    path: "wit",
});

use reqsync::transform::types::{ColumnSpec, ColumnType, FieldSpec, Outcome, Skipped};

struct OldWorld;

impl Guest for OldWorld {
    fn describe() -> ModuleInfo {
        let field = |name: &str| FieldSpec {
            name: name.into(),
            required: true,
        };
        ModuleInfo {
            name: "wit-v1".into(),
            version: "1.0.0".into(),
            target: "patient_data".into(),
            key_column: "patno".into(),
            input_columns: vec![ColumnSpec {
                name: "patno".into(),
                kind: ColumnType::Integer,
                required: true,
                nullable: false,
            }],
            output_fields: vec![
                field("patient_number"),
                field("first_name"),
                field("last_name"),
                field("dob"),
                field("hd_mpfile_updated_at"),
            ],
        }
    }

    fn transform(_context: BatchContext, batch: RowBatch) -> Result<BatchResult, BatchError> {
        let skip = || {
            Outcome::Skip(Skipped {
                code: "old-world".into(),
                message: "this module only exists to be refused".into(),
            })
        };
        Ok(BatchResult {
            records: String::new(),
            outcomes: (0..batch.rows).map(|_| skip()).collect(),
        })
    }
}

export!(OldWorld);

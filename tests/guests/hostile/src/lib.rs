//! A transform that misbehaves on demand, to prove the sandbox contains it.

use reqsync_guest::{
    Context, FieldSpec, ModuleInfo, Outcome, RecordWriter, Row, Transform, columns,
};

columns! {
    pub mod input {
        patno: Integer, required;
        mode: Text;
    }
}

const OUTPUT: &[FieldSpec] = &[
    FieldSpec::required("patient_number"),
    FieldSpec::required("first_name"),
    FieldSpec::required("last_name"),
    FieldSpec::required("dob"),
    FieldSpec::required("hd_mpfile_updated_at"),
    FieldSpec::optional("notes"),
];

#[derive(Debug)]
pub struct Hostile;

impl Transform for Hostile {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "hostile",
            version: "0.0.1",
            target: "patient_data",
            key_column: "patno",
            input_columns: input::SPECS,
            output_fields: OUTPUT,
        }
    }

    fn row(row: &Row<'_>, _ctx: &Context, out: &mut RecordWriter) -> Outcome {
        match row.text(input::mode) {
            Some("loop") => loop {
                std::hint::spin_loop();
            },
            Some("alloc") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
                }
            }
            Some("panic") => panic!("deliberate panic"),
            Some("huge") => out.str("notes", &"x".repeat(2 << 20)),
            // Breaks its own declaration: a name it never declared (the SDK rejects the row),
            // and a declared field twice (the host's record check rejects it).
            Some("undeclared") => out.str("nickname", "x"),
            Some("twice") => out.str("first_name", "Twice"),
            _ => {}
        }
        out.int("patient_number", row.int(input::patno).unwrap_or(1));
        out.str("first_name", "Test");
        out.str("last_name", "Guest");
        out.str("dob", "2000-01-01");
        out.str("hd_mpfile_updated_at", "2016-09-28T12:00:00-05:00");
        Outcome::emit()
    }
}

reqsync_guest::export_transform!(Hostile);

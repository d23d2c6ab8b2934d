//! The SDK end to end on a toy transform: row view, writer, outcomes, batch errors and the
//! example-case runner, all through the same code path the component export uses.

use reqsync_guest::testing::{self, RowOutcome};
use reqsync_guest::{
    Cell, Context, FieldSpec, Finding, ModuleInfo, Outcome, RecordWriter, Row, Transform, columns,
};
use serde_json::json;

columns! {
    /// The toy's input.
    pub mod input {
        id: Integer, required;
        name: Text, required;
        score: Float;
        active: Boolean;
        seen_on: Date;
        nickname: Text;
    }
}

struct Toy;

const OUTPUT: &[FieldSpec] = &[
    FieldSpec::required("patient_number"),
    FieldSpec::optional("first_name"),
    FieldSpec::optional("notes"),
    FieldSpec::optional("family_number"),
];

impl Transform for Toy {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "toy",
            version: "0.0.1",
            target: "patient_data",
            key_column: "id",
            input_columns: input::SPECS,
            output_fields: OUTPUT,
        }
    }

    fn row(row: &Row<'_>, ctx: &Context, out: &mut RecordWriter) -> Outcome {
        let Some(id) = row.int(input::id) else {
            return Outcome::reject_one("patient_number", "missing", "id is NULL");
        };
        // Written before the checks below on purpose: a rejected row must leave no trace.
        out.int("patient_number", id);
        if id == 0 {
            return Outcome::skip("zero-id", "id zero rows are held back");
        }
        if let Some(name) = row.text(input::name) {
            out.str("first_name", name);
        }
        let mut warnings = Vec::new();
        match row.cell("nickname") {
            Cell::Missing => out.str("notes", "no nickname column"),
            Cell::Null => out.str("notes", "nickname is NULL"),
            Cell::Text(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        if row.bool(input::active) == Some(true) {
            out.int("family_number", 1);
        }
        if row.float(input::score).is_some_and(|s| s < 0.0) {
            warnings.push(Finding::new(
                "first_name",
                "negative-score",
                "score below zero",
            ));
        }
        let seen_on = row
            .text(input::seen_on)
            .and_then(reqsync_guest::Date::parse);
        if seen_on.is_some_and(|d| d > ctx.as_of_date()) {
            return Outcome::reject_one("notes", "in-future", "seen after the as-of date");
        }
        Outcome::Emit { warnings }
    }
}

reqsync_guest::export_transform!(Toy);

#[test]
fn maps_rows_and_discards_what_rejected_rows_wrote() {
    let outcomes = testing::run_rows::<Toy>(
        "2026-01-01",
        &[
            json!({"id": 1, "name": "O\"Brien\\ \t José", "nickname": "Jo", "active": true}),
            json!({"id": 2, "name": "Later", "seen_on": "2026-01-02"}),
            json!({"id": 0, "name": "Zero"}),
            json!({"id": 3, "name": "Ann", "score": -1.5}),
            json!({"name": "No id"}),
            // ReqCheck's PostgreSQL cannot store NUL: the SDK rejects the row.
            json!({"id": 4, "name": "Nul\u{0}"}),
        ],
    )
    .expect("batch runs");
    assert_eq!(
        outcomes,
        vec![
            RowOutcome::Emit {
                record: json!({"patient_number": 1, "first_name": "O\"Brien\\ \t José", "family_number": 1})
                    .as_object()
                    .cloned()
                    .expect("object"),
                warnings: vec![],
            },
            RowOutcome::Reject(vec!["notes:in-future".to_owned()]),
            RowOutcome::Skip {
                code: "zero-id".to_owned(),
                message: "id zero rows are held back".to_owned()
            },
            RowOutcome::Emit {
                record: json!({"patient_number": 3, "first_name": "Ann", "notes": "nickname is NULL"})
                    .as_object()
                    .cloned()
                    .expect("object"),
                warnings: vec!["first_name:negative-score".to_owned()],
            },
            RowOutcome::Reject(vec!["patient_number:missing".to_owned()]),
            RowOutcome::Reject(vec!["first_name:control-character".to_owned()]),
        ]
    );
}

#[test]
fn tells_a_missing_optional_column_from_null() {
    let outcomes = testing::run_rows_omitting::<Toy>(
        "2026-01-01",
        &[json!({"id": 5, "name": "A"})],
        &["nickname"],
    )
    .expect("optional column may be absent");
    let RowOutcome::Emit { record, .. } = &outcomes[0] else {
        panic!("expected emit, got {outcomes:?}");
    };
    assert_eq!(record["notes"], "no nickname column");
}

#[test]
fn a_missing_required_column_fails_the_batch_without_values() {
    let failure = testing::run_rows_omitting::<Toy>(
        "2026-01-01",
        &[json!({"id": 5, "name": "Secret Name"})],
        &["name"],
    )
    .expect_err("required column missing");
    assert_eq!(failure.code, "missing-column");
    assert!(failure.message.contains("`name`"));
    assert!(!failure.message.contains("Secret"));
}

#[test]
fn rejects_a_batch_whose_column_has_the_wrong_kind() {
    let mut batch = testing::batch_from_rows(input::SPECS, &[json!({"id": 1, "name": "A"})]);
    let name = batch
        .columns
        .iter()
        .position(|c| c.name == "name")
        .expect("name column");
    let id_values = batch.columns[0].values.clone();
    batch.columns[name].values = id_values;
    let failure = testing::run_batch::<Toy>("2026-01-01", &batch).expect_err("wrong kind");
    assert_eq!(failure.code, "wrong-column-type");
}

#[test]
fn rejects_malformed_offsets_and_null_maps() {
    use reqsync_guest::bindings::reqsync::transform::types::ColumnValues;
    let rows = [
        json!({"id": 1, "name": "Zoë"}),
        json!({"id": 2, "name": "B"}),
    ];

    let mut batch = testing::batch_from_rows(input::SPECS, &rows);
    let name = batch
        .columns
        .iter()
        .position(|c| c.name == "name")
        .expect("name column");
    if let ColumnValues::Text(text) = &mut batch.columns[name].values {
        text.offsets[1] = 3; // inside the two-byte ë
    }
    let failure = testing::run_batch::<Toy>("2026-01-01", &batch).expect_err("split char");
    assert_eq!(failure.code, "malformed-batch");

    let mut batch = testing::batch_from_rows(input::SPECS, &rows);
    batch.columns[0].present = vec![1];
    let failure = testing::run_batch::<Toy>("2026-01-01", &batch).expect_err("short null map");
    assert_eq!(failure.code, "malformed-batch");
}

#[test]
fn rejects_an_invalid_as_of_date() {
    let failure = testing::run_rows::<Toy>("2026-02-30", &[json!({"id": 1, "name": "A"})])
        .expect_err("bad as-of");
    assert_eq!(failure.code, "invalid-context");
}

#[test]
fn an_empty_batch_is_fine() {
    assert_eq!(testing::run_rows::<Toy>("2026-01-01", &[]), Ok(vec![]));
}

#[test]
fn describe_mirrors_the_module_info() {
    let info = reqsync_guest::__private::describe::<Toy>();
    assert_eq!(info.name, "toy");
    assert_eq!(info.input_columns.len(), 6);
    assert_eq!(info.input_columns[3].name, "active");
    assert!(info.input_columns[0].required);
    assert!(!info.input_columns[2].required);
    assert_eq!(info.output_fields[0].name, "patient_number");
}

#[test]
fn reports_findings_and_skips_as_the_host_logs_them() {
    let (outcome, said) = testing::run_row_with_messages::<Toy>(
        "2026-01-01",
        testing::row(json!({"id": 3, "name": "Ann"})).set("score", -1.5),
    );
    assert_eq!(outcome.warnings(), ["first_name:negative-score"]);
    assert!(outcome.record().is_some() && outcome.rejections().is_empty());
    assert_eq!(said, ["first_name:negative-score: score below zero"]);

    let (outcome, said) =
        testing::run_row_with_messages::<Toy>("2026-01-01", json!({"id": 0, "name": "Zero"}));
    assert_eq!(outcome.skip_code(), Some("zero-id"));
    assert_eq!(said, ["zero-id: id zero rows are held back"]);

    let (outcome, said) = testing::run_row_with_messages::<Toy>(
        "2026-01-01",
        testing::row(json!({"id": 2, "name": "Later"})).set("seen_on", Some("2026-01-02")),
    );
    assert_eq!(outcome.rejections(), ["notes:in-future"]);
    assert_eq!(outcome.record(), None);
    assert_eq!(said, ["notes:in-future: seen after the as-of date"]);
}

#[test]
fn a_test_row_sets_and_nulls_cells() {
    let row = testing::row(json!({"id": 1, "name": "A", "nickname": "N"}))
        .set("name", "B")
        .set("active", true)
        .set("seen_on", None::<&str>)
        .null("nickname");
    assert_eq!(row.get("name"), Some(&json!("B")));
    assert_eq!(row.get("seen_on"), None);
    assert_eq!(row.get("nickname"), None);
    assert_eq!(row.texts().collect::<Vec<_>>(), [("name", "B")]);
    let RowOutcome::Emit { record, .. } = testing::run_row::<Toy>("2026-01-01", row) else {
        panic!("expected emit");
    };
    assert_eq!(
        serde_json::Value::Object(record),
        json!({"patient_number": 1, "first_name": "B", "notes": "nickname is NULL", "family_number": 1})
    );
}

#[test]
#[should_panic(expected = "not a JSON object")]
fn a_test_row_needs_an_object() {
    let _ = testing::row(json!([1, 2]));
}

const EXAMPLES: &str = r#"{"as_of_date": "2026-01-01", "cases": [
  {"name": "emits", "row": {"id": 7, "name": "Ann", "nickname": "A"},
   "expect": {"emit": {"patient_number": 7, "first_name": "Ann"}}},
  {"name": "warns", "row": {"id": 8, "name": "Bo", "nickname": "B", "score": -2},
   "expect": {"emit": {"patient_number": 8, "first_name": "Bo"}, "warnings": ["first_name:negative-score"]}},
  {"name": "rejects", "row": {"name": "Cy"}, "expect": {"reject": ["patient_number:missing"]}},
  {"name": "skips", "row": {"id": 0, "name": "Di"}, "expect": {"skip": "zero-id"}}
]}"#;

#[test]
fn runs_an_example_file() {
    assert_eq!(testing::check_examples::<Toy>(EXAMPLES), Ok(4));
}

#[test]
fn reports_every_failing_example() {
    let wrong = EXAMPLES
        .replace(r#""first_name": "Ann""#, r#""first_name": "Anne""#)
        .replace(
            r#"{"skip": "zero-id"}"#,
            r#"{"reject": ["patient_number:missing"]}"#,
        );
    let report = testing::check_examples::<Toy>(&wrong).expect_err("two cases fail");
    assert!(
        report.starts_with("2 of 4 example cases failed"),
        "{report}"
    );
    assert!(report.contains("case `emits`"), "{report}");
    assert!(report.contains("case `skips`"), "{report}");
}

#[test]
#[should_panic(expected = "not an input column")]
fn an_unknown_column_in_a_row_is_a_test_bug() {
    let _ = testing::run_rows::<Toy>("2026-01-01", &[json!({"id": 1, "name": "A", "nmae": "x"})]);
}

#[test]
#[should_panic(expected = "unexpected value")]
fn a_value_of_the_wrong_json_type_is_a_test_bug() {
    let _ = testing::run_rows::<Toy>("2026-01-01", &[json!({"id": "1", "name": "A"})]);
}

#[test]
#[should_panic(expected = "expect exactly one of")]
fn an_example_with_two_expectations_is_malformed() {
    let _ = testing::check_examples::<Toy>(
        r#"{"as_of_date": "2026-01-01", "cases": [
            {"name": "x", "row": {}, "expect": {"skip": "a", "reject": []}}]}"#,
    );
}

struct Undeclared;

impl Transform for Undeclared {
    fn info() -> ModuleInfo {
        ModuleInfo {
            output_fields: &[FieldSpec {
                name: "patient_number",
                required: true,
            }],
            ..Toy::info()
        }
    }

    fn row(_row: &Row<'_>, _ctx: &Context, out: &mut RecordWriter) -> Outcome {
        out.int("patient_number", 1);
        out.str("first_name", "");
        Outcome::emit()
    }
}

#[test]
#[should_panic(expected = "not a declared output field")]
fn the_harness_catches_undeclared_output_fields() {
    let _ = testing::run_row::<Undeclared>("2026-01-01", json!({"id": 1, "name": "A"}));
}

struct Twice;

impl Transform for Twice {
    fn info() -> ModuleInfo {
        Toy::info()
    }

    fn row(_row: &Row<'_>, _ctx: &Context, out: &mut RecordWriter) -> Outcome {
        out.int("patient_number", 1);
        out.int("patient_number", 2);
        Outcome::emit()
    }
}

#[test]
#[should_panic(expected = "written twice")]
fn the_harness_catches_duplicate_keys() {
    let _ = testing::run_row::<Twice>("2026-01-01", json!({"id": 1, "name": "A"}));
}

//! `reqsync transform inspect | try | diff`: the real binary on the real default modules (and the
//! swap test guests for a pair of versions that differ).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqsync_seeder::SeedOptions;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::World;
use crate::support::{module_cache_dir, xdg_state_home};

const PATIENTS: &str = reqsync_test_guests::PATIENTS;
const DOSES: &str = reqsync_test_guests::VACCINE_DOSES;
const SWAP_V1: &str = reqsync_test_guests::SWAP_V1;
const SWAP_V2: &str = reqsync_test_guests::SWAP_V2;

const AS_OF: &str = "2026-01-01";

/// `reqsync transform ARGS… --cache-dir <shared>` in `dir`.
fn transform(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .arg("transform")
        .args(args)
        .arg("--cache-dir")
        .arg(module_cache_dir())
        .env("XDG_STATE_HOME", xdg_state_home())
        .current_dir(dir)
        .env_remove("REQSYNC_LOG")
        .output()
        .expect("run reqsync")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command succeeded and returns its stdout.
fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    stdout(o)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A full patient row (non-ASCII names, an invalid state that becomes a warning).
const JOSE: &str = r#"{"patno": 101, "lname": "Nguyễn", "fname": "José", "birth_date": "2013-11-26", "sex": "f", "state": "Missouri", "updated_at": "2016-09-28T12:00:00-05:00"}"#;
/// NULL first name and a birth date after the as-of date.
const BAD: &str = r#"{"patno": 102, "lname": "Smith", "fname": null, "birth_date": "2030-01-01", "updated_at": "2016-09-28T12:00:00-05:00"}"#;

// ---- inspect ----------------------------------------------------------------------------------

#[test]
fn inspect_describes_the_module_with_its_hash_and_size() {
    let dir = tmp();
    let out = ok(&transform(dir.path(), &["inspect", PATIENTS]));
    let bytes = std::fs::read(PATIENTS).expect("module");
    let sha = hex::encode(Sha256::digest(&bytes));
    assert!(out.starts_with("patients 1.0.0\n"), "{out}");
    for expected in [
        format!("sha256       {sha}"),
        format!("({} bytes)", bytes.len()),
        "WIT world    reqsync:transform@3.0.0".to_string(),
        "record type  patient_data (POST /patient_data)".to_string(),
        "key column   patno".to_string(),
        "input columns (18):".to_string(),
        "output fields (18):".to_string(),
    ] {
        assert!(out.contains(&expected), "missing `{expected}` in\n{out}");
    }
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("birth_date"),
        "birth_date date required dates 1900-01-01..=2025-12-31"
    );
    assert_eq!(
        line("sex"),
        "sex text optional, nullable one of F, M, U, f, m, u"
    );
    assert_eq!(line("dob"), "dob required");
    assert_eq!(line("gender"), "gender optional");
}

#[test]
fn inspect_json_lists_every_declared_column_and_field() {
    let dir = tmp();
    let out = ok(&transform(dir.path(), &["inspect", "--json", DOSES]));
    let v: Value = serde_json::from_str(&out).expect("JSON");
    let bytes = std::fs::read(DOSES).expect("module");
    assert_eq!(v["name"], "vaccine-doses");
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["wit_package"], "reqsync:transform@3.0.0");
    assert_eq!(v["target"], "vaccine_dose_data");
    assert_eq!(v["key_column"], "im_id");
    assert_eq!(v["sha256"], hex::encode(Sha256::digest(&bytes)));
    assert_eq!(v["size_bytes"], bytes.len() as u64);
    let columns = v["input_columns"].as_array().expect("columns");
    assert_eq!(columns.len(), 23);
    let column = |name: &str| {
        columns
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    assert_eq!(column("admin_date")["kind"], "date");
    assert_eq!(column("admin_date")["required"], true);
    // Required (the query must return it) and nullable (NULL when the patient is missing).
    assert_eq!(column("patient_patno")["required"], true);
    assert_eq!(column("patient_patno")["nullable"], true);
    assert_eq!(
        column("history")["hints"],
        serde_json::json!([{"one_of": ["Y", "N"]}])
    );
    // The text output cuts the CVX list; the JSON has all of it.
    let cvx = column("cvx")["hints"][0]["one_of"]
        .as_array()
        .expect("cvx codes")
        .len();
    assert!(cvx > 100, "{cvx} CVX codes");
    let fields = v["output_fields"].as_array().expect("fields");
    assert!(
        fields.contains(&serde_json::json!({"name": "cvx_code", "required": true})),
        "{fields:?}"
    );
    assert!(
        fields.contains(&serde_json::json!({"name": "lot_number", "required": false})),
        "{fields:?}"
    );
}

#[test]
fn inspect_of_a_file_that_is_not_a_component_exits_5() {
    let dir = tmp();
    std::fs::write(dir.path().join("x.wasm"), b"not wasm").expect("write");
    let out = transform(dir.path(), &["inspect", "x.wasm"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("x.wasm"), "{}", stderr(&out));
}

// ---- try --------------------------------------------------------------------------------------

#[test]
fn try_rows_print_the_record_warnings_and_findings() {
    let dir = tmp();
    let out = ok(&transform(
        dir.path(),
        &[
            "try", PATIENTS, "--as-of", AS_OF, "--row", JOSE, "--row", BAD,
        ],
    ));
    assert!(
        out.starts_with("patients 1.0.0 (sha256 "),
        "header missing:\n{out}"
    );
    assert!(out.contains("as of 2026-01-01, 2 rows"), "{out}");
    assert!(out.contains("row 1  patno 101: emit\n"), "{out}");
    assert!(out.contains(r#"    "first_name": "José","#), "{out}");
    assert!(out.contains(r#"    "last_name": "Nguyễn","#), "{out}");
    assert!(out.contains(r#"    "gender": "F","#), "{out}");
    assert!(
        out.contains("  warning state: invalid-state — "),
        "the dropped state is a warning:\n{out}"
    );
    assert!(out.contains("row 2  patno 102: reject\n"), "{out}");
    assert!(out.contains("  first_name: missing — "), "{out}");
    assert!(out.contains("  dob: in-future — "), "{out}");
    assert!(out.contains("2 rows: 1 emit, 0 skip, 1 reject"), "{out}");
}

#[test]
fn try_json_prints_one_object_per_row() {
    let dir = tmp();
    let out = ok(&transform(
        dir.path(),
        &[
            "try", PATIENTS, "--as-of", AS_OF, "--json", "--row", JOSE, "--row", BAD,
        ],
    ));
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["index"], 1);
    assert_eq!(rows[0]["key"], "101");
    assert_eq!(rows[0]["outcome"], "emit");
    assert_eq!(
        rows[0]["record"],
        serde_json::json!({
            "patient_number": 101, "first_name": "José", "last_name": "Nguyễn",
            "dob": "2013-11-26", "gender": "F",
            "hd_mpfile_updated_at": "2016-09-28T12:00:00-05:00"
        })
    );
    assert_eq!(rows[0]["warnings"][0]["field"], "state");
    assert_eq!(rows[0]["warnings"][0]["code"], "invalid-state");
    assert_eq!(rows[1]["outcome"], "reject");
    assert_eq!(rows[1]["record"], Value::Null);
    let codes: Vec<String> = rows[1]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["field"].as_str().unwrap_or(""),
                f["code"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(codes, ["first_name:missing", "dob:in-future"]);
}

#[test]
fn try_reads_json_lines_and_json_array_files_alike() {
    let dir = tmp();
    std::fs::write(dir.path().join("rows.jsonl"), format!("{JOSE}\n\n{BAD}\n")).expect("jsonl");
    std::fs::write(dir.path().join("rows.json"), format!("[{JOSE},\n {BAD}]")).expect("json");
    let lines = ok(&transform(
        dir.path(),
        &[
            "try",
            PATIENTS,
            "--as-of",
            AS_OF,
            "--json",
            "--rows",
            "rows.jsonl",
        ],
    ));
    let array = ok(&transform(
        dir.path(),
        &[
            "try",
            PATIENTS,
            "--as-of",
            AS_OF,
            "--json",
            "--rows",
            "rows.json",
        ],
    ));
    assert_eq!(lines, array);
    let rows = json_lines(&lines);
    assert_eq!(
        rows.iter()
            .map(|r| r["outcome"].clone())
            .collect::<Vec<_>>(),
        ["emit", "reject"]
    );
    assert_eq!(rows[0]["record"]["first_name"], "José");
}

#[test]
fn try_csv_reads_cells_as_the_declared_kinds_with_empty_cells_as_null() {
    let dir = tmp();
    // A UTF-8 BOM as spreadsheet programs write it; `family_no` is an integer column; an empty
    // cell is NULL (a missing last name rejects, a missing family number is left out).
    std::fs::write(
        dir.path().join("rows.csv"),
        "\u{feff}patno,lname,fname,birth_date,updated_at,family_no\n\
         101,Nguyễn,José,2013-11-26,2016-09-28T12:00:00-05:00,77\n\
         102,,Ann,2013-11-26,2016-09-28T12:00:00-05:00,\n",
    )
    .expect("csv");
    let out = ok(&transform(
        dir.path(),
        &[
            "try", PATIENTS, "--as-of", AS_OF, "--json", "--csv", "rows.csv",
        ],
    ));
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["outcome"], "emit", "{out}");
    assert_eq!(rows[0]["record"]["first_name"], "José");
    assert_eq!(rows[0]["record"]["last_name"], "Nguyễn");
    assert_eq!(rows[0]["record"]["family_number"], 77);
    assert_eq!(rows[1]["key"], "102");
    assert_eq!(rows[1]["outcome"], "reject");
    assert_eq!(rows[1]["findings"][0]["field"], "last_name");
    assert_eq!(rows[1]["findings"][0]["code"], "missing");
}

#[test]
fn try_csv_cell_that_does_not_parse_names_row_and_column_but_not_the_value() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("rows.csv"),
        "patno,lname,family_no\n101,Doe,7\n102,Roe,seven-ish\n",
    )
    .expect("csv");
    let out = transform(dir.path(), &["try", PATIENTS, "--csv", "rows.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("row 2 (line 3): column `family_no` is not an integer"),
        "{err}"
    );
    assert!(!err.contains("seven-ish"), "the value leaked: {err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn try_with_an_unknown_column_exits_2_listing_every_unknown_key() {
    let dir = tmp();
    let out = transform(
        dir.path(),
        &[
            "try",
            PATIENTS,
            "--row",
            r#"{"patno": 1, "lnmae": "Doe"}"#,
            "--row",
            r#"{"patno": 2, "birthdate": "2013-11-26", "lnmae": "Roe"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("`lnmae` (row 1)"), "{err}");
    assert!(err.contains("`birthdate` (row 2)"), "{err}");
    assert!(err.contains("module `patients` does not read"), "{err}");
    assert!(
        !err.contains("Doe") && !err.contains("Roe"),
        "values leaked: {err}"
    );
    // Nothing ran.
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn try_with_a_value_of_the_wrong_type_exits_2_without_quoting_it() {
    let dir = tmp();
    let out = transform(
        dir.path(),
        &[
            "try",
            PATIENTS,
            "--row",
            JOSE,
            "--row",
            r#"{"patno": "Jane Doe"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("row 2: column `patno` must be an integer"),
        "{err}"
    );
    assert!(!err.contains("Jane"), "the value leaked: {err}");

    let out = transform(dir.path(), &["try", PATIENTS, "--row", r#""Jane Doe""#]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expected a JSON object keyed by column name, got a string"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("Jane"),
        "the value leaked: {}",
        stderr(&out)
    );
}

#[test]
fn try_takes_rows_from_exactly_one_place() {
    let dir = tmp();
    let none = transform(dir.path(), &["try", PATIENTS]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    let two = transform(
        dir.path(),
        &["try", PATIENTS, "--row", "{}", "--csv", "rows.csv"],
    );
    assert_eq!(two.status.code(), Some(2), "{}", stderr(&two));
    assert!(
        stderr(&two).contains("cannot be used with"),
        "{}",
        stderr(&two)
    );
    let from_source_alone = transform(dir.path(), &["try", PATIENTS, "--from-source"]);
    assert_eq!(
        from_source_alone.status.code(),
        Some(2),
        "{}",
        stderr(&from_source_alone)
    );
}

// ---- try --from-source ------------------------------------------------------------------------

/// The KCMO test patients in SQLite, with patient 102's birth date moved past the as-of date
/// (so the patients module rejects it) and the project's module cache shared with the suite.
async fn kcmo() -> World {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.edit_config(
        "look_back = \"1d\"",
        &format!(
            "look_back = \"1d\"\ncache_dir = \"{}\"",
            module_cache_dir().display()
        ),
    );
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET birth_date = '2030-01-01' WHERE patno = 102",
            [],
        )
        .expect("update");
    world
}

fn in_world(world: &World, args: &[&str]) -> Output {
    transform(world.dir.path(), args)
}

#[tokio::test(flavor = "multi_thread")]
async fn try_from_source_runs_the_jobs_query_and_shows_each_row() {
    let world = kcmo().await;
    let out = ok(&in_world(
        &world,
        &[
            "try",
            "transforms/patients.wasm",
            "--from-source",
            "--config",
            "reqsync.toml",
            "--job",
            "patients",
            "--limit",
            "3",
            "--as-of",
            AS_OF,
        ],
    ));
    assert!(out.contains("as of 2026-01-01, 3 rows"), "{out}");
    assert!(out.contains("row 1  patno 101: emit"), "{out}");
    assert!(out.contains(r#"    "last_name": "Patient","#), "{out}");
    assert!(out.contains(r#"    "dob": "2015-10-15","#), "{out}");
    assert!(out.contains("row 2  patno 102: reject"), "{out}");
    assert!(out.contains("  dob: in-future — "), "{out}");
    assert!(out.contains("row 3  patno 103: emit"), "{out}");
    assert!(!out.contains("patno 104"), "--limit 3 read more:\n{out}");
    assert!(out.contains("3 rows: 2 emit, 0 skip, 1 reject"), "{out}");

    // The window start is bound to the query's `?`: nothing changed after 2030.
    let later = ok(&in_world(
        &world,
        &[
            "try",
            "transforms/patients.wasm",
            "--from-source",
            "--config",
            "reqsync.toml",
            "--job",
            "patients",
            "--since",
            "2030-01-01",
            "--json",
        ],
    ));
    assert_eq!(later, "", "rows after --since 2030-01-01: {later}");
}

#[tokio::test(flavor = "multi_thread")]
async fn try_from_source_emits_exactly_the_records_a_sync_sends() {
    let world = kcmo().await;
    let out = ok(&in_world(
        &world,
        &[
            "try",
            "transforms/vaccine-doses.wasm",
            "--from-source",
            "--config",
            "reqsync.toml",
            "--job",
            "vaccine-doses",
            "--as-of",
            AS_OF,
            "--json",
        ],
    ));
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 177, "every dose row");
    // Dose rows carry their patient (the job's group column), as in a sync.
    assert_eq!(rows[0]["group"], "101");
    let tried: Vec<Value> = rows
        .iter()
        .filter(|r| r["outcome"] == "emit")
        .map(|r| r["record"].clone())
        .collect();

    let run = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args([
            "run",
            "--dry-run",
            "--full",
            "--job",
            "vaccine-doses",
            "--as-of",
            AS_OF,
            "--out",
            "bodies",
        ])
        .current_dir(world.dir.path())
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let mut files: Vec<PathBuf> = std::fs::read_dir(world.path("bodies"))
        .expect("bodies")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let sent: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            let body: Value =
                serde_json::from_slice(&std::fs::read(f).expect("body")).expect("JSON body");
            body["vaccine_dose_data"]
                .as_array()
                .expect("records")
                .clone()
        })
        .collect();
    assert!(!sent.is_empty());
    assert_eq!(tried, sent);
}

// ---- diff -------------------------------------------------------------------------------------

/// Rows on which `patients` and `swap v1` disagree: v1 emits every row with a patient number.
fn diff_rows() -> Vec<&'static str> {
    vec!["--row", JOSE, "--row", BAD]
}

fn diff(dir: &Path, old: &str, new: &str, extra: &[&str]) -> Output {
    let mut args = vec!["diff", old, new, "--as-of", AS_OF];
    args.extend_from_slice(extra);
    transform(dir, &args)
}

#[test]
fn diff_shows_changed_outcomes_and_changed_field_names_without_values() {
    let dir = tmp();
    let out = ok(&diff(dir.path(), PATIENTS, SWAP_V1, &diff_rows()));
    assert!(out.contains("old  patients 1.0.0  sha256 "), "{out}");
    assert!(out.contains("new  swap v1  sha256 "), "{out}");
    assert!(out.contains("as of 2026-01-01, 2 rows"), "{out}");
    // Counts per outcome, old then new.
    assert!(out.contains("  old       1     0       1\n"), "{out}");
    assert!(out.contains("  new       2     0       0\n"), "{out}");
    assert!(out.contains("2 rows changed:"), "{out}");
    assert!(
        out.contains("row 1  patno 101: emit (state:invalid-state) → emit\n"),
        "{out}"
    );
    assert!(out.contains("  removed: gender\n"), "{out}");
    assert!(
        out.contains("  changed: dob, first_name, last_name\n"),
        "{out}"
    );
    assert!(
        out.contains("row 2  patno 102: reject (first_name:missing, dob:in-future) → emit\n"),
        "{out}"
    );
    // What hot-swap validation compares.
    assert!(
        out.contains("warning: the modules' declarations differ:"),
        "{out}"
    );
    assert!(
        out.contains("  input column `lname` (text, required) removed"),
        "{out}"
    );
    assert!(
        out.contains("  output field `gender` (optional) removed"),
        "{out}"
    );
    // Values are PHI: none without --values.
    for value in ["José", "Nguyễn", "Smith", "2013-11-26", "\"v1\""] {
        assert!(
            !out.contains(value),
            "`{value}` printed without --values:\n{out}"
        );
    }
}

#[test]
fn diff_values_prints_old_and_new_values_of_changed_fields() {
    let dir = tmp();
    let mut args = diff_rows();
    args.push("--values");
    let out = ok(&diff(dir.path(), PATIENTS, SWAP_V1, &args));
    assert!(out.contains(r#"    first_name: "José" → "v1""#), "{out}");
    assert!(out.contains(r#"    last_name: "Nguyễn" → "Swap""#), "{out}");
    assert!(
        out.contains(r#"    dob: "2013-11-26" → "2000-01-01""#),
        "{out}"
    );
    assert!(out.contains(r#"    gender: "F" → (absent)"#), "{out}");
}

#[test]
fn diff_json_reports_counts_changes_and_declaration_changes() {
    let dir = tmp();
    let mut args = diff_rows();
    args.push("--json");
    let out = ok(&diff(dir.path(), PATIENTS, SWAP_V1, &args));
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["rows"], 2);
    assert_eq!(
        v["counts"],
        serde_json::json!({"old": {"emit": 1, "skip": 0, "reject": 1},
                           "new": {"emit": 2, "skip": 0, "reject": 0}})
    );
    assert_eq!(v["changed_rows"], 2);
    let first = &v["changes"][0];
    assert_eq!(first["key"], "101");
    assert_eq!(
        first["fields"],
        serde_json::json!({"added": [], "removed": ["gender"],
                           "changed": ["dob", "first_name", "last_name"]})
    );
    assert!(
        first.get("values").is_none(),
        "values without --values: {first}"
    );
    let second = &v["changes"][1];
    assert_eq!(second["old"]["outcome"], "reject");
    assert_eq!(
        second["old"]["codes"],
        serde_json::json!(["first_name:missing", "dob:in-future"])
    );
    assert_eq!(second["new"]["outcome"], "emit");
    assert_eq!(second["fields"], Value::Null);
    let declared = v["declaration_changes"].as_array().expect("declarations");
    assert!(
        declared.iter().any(|d| d["what"] == "input_column"
            && d["detail"] == "input column `fname` (text, required) removed"),
        "{declared:?}"
    );
    assert!(
        declared.iter().all(|d| d["hot_swap_refuses"] == false),
        "same record type and key: {declared:?}"
    );
    assert_eq!(v["rendered"], Value::Null, "no --config, nothing rendered");
}

#[test]
fn diff_fail_on_change_exits_1_only_when_an_outcome_changed() {
    let dir = tmp();
    let mut args = diff_rows();
    let without = diff(dir.path(), PATIENTS, SWAP_V1, &args);
    assert_eq!(without.status.code(), Some(0), "{}", stderr(&without));
    args.push("--fail-on-change");
    let changed = diff(dir.path(), PATIENTS, SWAP_V1, &args);
    assert_eq!(changed.status.code(), Some(1), "{}", stderr(&changed));
    assert!(stdout(&changed).contains("2 rows changed:"));
    let same = diff(dir.path(), PATIENTS, PATIENTS, &args);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
}

#[test]
fn diff_of_a_module_against_itself_reports_no_change() {
    let dir = tmp();
    let mut args = diff_rows();
    let out = ok(&diff(dir.path(), PATIENTS, PATIENTS, &args));
    assert!(out.contains("no row changed"), "{out}");
    assert!(!out.contains("warning:"), "{out}");
    assert!(out.contains("  old       1     0       1\n"), "{out}");
    assert!(out.contains("  new       1     0       1\n"), "{out}");
    args.push("--json");
    let v: Value =
        serde_json::from_str(&ok(&diff(dir.path(), PATIENTS, PATIENTS, &args))).expect("JSON");
    assert_eq!(v["changed_rows"], 0);
    assert_eq!(v["changes"], serde_json::json!([]));
    assert_eq!(v["declaration_changes"], serde_json::json!([]));
}

#[test]
fn diff_of_modules_with_another_record_type_warns_that_hot_swap_would_refuse() {
    let dir = tmp();
    let out = ok(&diff(
        dir.path(),
        PATIENTS,
        DOSES,
        &["--row", r#"{"patno": 101, "im_id": 5}"#],
    ));
    assert!(
        out.contains(
            "warning: the modules' declarations differ (hot swap would refuse this replacement):"
        ),
        "{out}"
    );
    assert!(
        out.contains("  record type `patient_data` → `vaccine_dose_data`"),
        "{out}"
    );
    assert!(out.contains("  key column `patno` → `im_id`"), "{out}");
    assert!(
        out.contains("row 1  patno 101 (new key 5): reject ("),
        "{out}"
    );
}

#[test]
fn diff_with_a_column_neither_module_reads_exits_2() {
    let dir = tmp();
    let out = diff(
        dir.path(),
        PATIENTS,
        SWAP_V1,
        &["--row", r#"{"patno": 1, "lnmae": "Doe"}"#],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("`lnmae` (row 1)"), "{}", stderr(&out));
    assert!(stderr(&out).contains("either module"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_from_source_renders_both_sides_through_the_jobs_template() {
    let world = kcmo().await;
    let args = [
        "--from-source",
        "--config",
        "reqsync.toml",
        "--job",
        "patients",
        "--sample",
        "4",
    ];
    let out = ok(&in_world(
        &world,
        &[&["diff", SWAP_V1, SWAP_V2, "--as-of", AS_OF][..], &args[..]].concat(),
    ));
    assert!(out.contains("as of 2026-01-01, 4 rows"), "{out}");
    assert!(out.contains("4 rows changed:"), "{out}");
    assert!(
        out.contains("row 4  patno 104: emit → emit\n  changed: first_name\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "rendered with job `patients` (templates/patient_data.json.j2): 4 → 4 records, the payload differs"
        ),
        "{out}"
    );
    assert!(
        out.contains("  row 1  patno 101: rendered record differs in first_name\n"),
        "{out}"
    );
    assert!(!out.contains("\"v1\""), "values without --values:\n{out}");

    let values = ok(&in_world(
        &world,
        &[
            &["diff", SWAP_V1, SWAP_V2, "--as-of", AS_OF, "--values"][..],
            &args[..],
        ]
        .concat(),
    ));
    assert!(
        values.contains("    -  \"first_name\": \"v1\",\n"),
        "{values}"
    );
    assert!(
        values.contains("    +  \"first_name\": \"v2\",\n"),
        "{values}"
    );

    // The default module against itself, on the whole query with the default sample.
    let same = ok(&in_world(
        &world,
        &[
            "diff",
            "transforms/patients.wasm",
            "transforms/patients.wasm",
            "--from-source",
            "--config",
            "reqsync.toml",
            "--job",
            "patients",
            "--as-of",
            AS_OF,
            "--json",
            "--fail-on-change",
        ],
    ));
    let v: Value = serde_json::from_str(&same).expect("JSON");
    assert_eq!(v["rows"], 21);
    assert_eq!(v["changed_rows"], 0);
    assert_eq!(
        v["counts"]["old"],
        serde_json::json!({"emit": 20, "skip": 0, "reject": 1})
    );
    assert_eq!(v["rendered"]["payload_differs"], false);
    assert_eq!(v["rendered"]["old_records"], 20);
}

#[test]
fn try_never_writes_row_values_to_the_log() {
    let dir = tmp();
    let out = transform(
        dir.path(),
        &["-vv", "try", PATIENTS, "--row", JOSE, "--row", BAD],
    );
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    // The analyst sees the values on stdout …
    assert!(stdout(&out).contains("Nguyễn"));
    // … and the log (stderr, which may be collected) never holds them.
    for value in [
        "Nguyễn",
        "José",
        "Missouri",
        "Smith",
        "2013-11-26",
        "2030-01-01",
    ] {
        assert!(!log.contains(value), "`{value}` in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn try_with_a_job_the_config_lacks_exits_3_listing_the_jobs() {
    let world = kcmo().await;
    let out = in_world(
        &world,
        &[
            "try",
            "transforms/patients.wasm",
            "--from-source",
            "--config",
            "reqsync.toml",
            "--job",
            "patient",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no job `patient` in reqsync.toml (jobs: patients, vaccine-doses)"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_config_a_transform_command_compiles_into_the_projects_own_module_cache() {
    // A world of its own cache (not the suite's shared one): the project's `.reqsync/cache`.
    let world = World::new(SeedOptions::default()).await;
    let cache = world.path(".reqsync/cache");
    let entries = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries(&cache), 0);
    let config = world.path("reqsync.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["transform", "inspect", PATIENTS, "--config"])
        .arg(&config)
        .env("XDG_STATE_HOME", xdg_state_home())
        .env("XDG_CACHE_HOME", world.path("user-cache"))
        .current_dir(world.dir.path())
        .output()
        .expect("run reqsync");
    ok(&out);
    assert_eq!(entries(&cache), 1, "compiled into the project's cache");
    assert_eq!(
        entries(&world.path("user-cache/reqsync/modules")),
        0,
        "not into the user's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_config_a_transform_command_applies_the_projects_sandbox_limits() {
    let world = kcmo().await;
    // No module starts within 1 MiB: the project's `[sync]` limit, not the default, applies.
    world.edit_config(
        "look_back = \"1d\"",
        "look_back = \"1d\"\ntransform_memory_mb = 1",
    );
    let config = world.path("reqsync.toml");
    let config = config.to_str().expect("UTF-8 path");
    let out = in_world(&world, &["inspect", PATIENTS, "--config", config]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("transform_memory_mb"),
        "{}",
        stderr(&out)
    );
    // Without --config the same module starts under the default limits.
    ok(&in_world(&world, &["inspect", PATIENTS]));
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_list_starts_each_module_under_its_jobs_limits_as_a_run_does() {
    let world = kcmo().await;
    // The patients job's own limit (its `batch_size` line comes first); `reqsync run` refuses
    // to start its module, so `list` must not call it usable.
    world.edit_config(
        "batch_size = 500",
        "batch_size = 500\ntransform_memory_mb = 1",
    );
    let out = crate::support::reqsync(&world, &["transform", "list", "--json"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed[0]["job"], "patients");
    assert!(listed[0]["on_disk"].is_null(), "{listed}");
    let error = listed[0]["error"].as_str().expect("an error");
    assert!(error.contains("transform_memory_mb"), "{error}");
    assert_eq!(listed[1]["on_disk"]["module"], "vaccine-doses", "{listed}");
}

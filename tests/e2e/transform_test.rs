//! `reqsync transform test`: the default modules pass; a module with a defect is caught by the
//! property that guards against it, with a minimal row and a seed that reproduces the run.

use crate::support::{module_cache_dir, xdg_state_home};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A folder holding the default modules and their example cases, as `reqsync init` lays them out.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    reqsync_project::write_project(dir.path(), "sqlite://x.db", "http://127.0.0.1:1", false)
        .expect("project");
    dir
}

fn transform_test(module: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["transform", "test"])
        .arg(module)
        .arg("--cache-dir")
        .arg(module_cache_dir())
        .env("XDG_STATE_HOME", xdg_state_home())
        .args(extra)
        .output()
        .expect("reqsync runs")
}

fn json_report(module: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = transform_test(module, &args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn flawed(which: &str) -> PathBuf {
    PathBuf::from(match which {
        "date" => reqsync_test_guests::FLAWED_DATE,
        "state" => reqsync_test_guests::FLAWED_STATE,
        "quote" => reqsync_test_guests::FLAWED_QUOTE,
        "panic" => reqsync_test_guests::FLAWED_PANIC,
        "field" => reqsync_test_guests::FLAWED_FIELD,
        "long-name" => reqsync_test_guests::FLAWED_LONG_NAME,
        other => panic!("no flawed module {other}"),
    })
}

/// Runs a flawed module; returns its failure (property, minimal row).
fn caught(which: &str) -> (String, Value) {
    let (code, report) = json_report(
        &flawed(which),
        &["--no-examples", "--seed", "11", "--cases", "400"],
    );
    assert_eq!(code, Some(5), "a failing module exits 5: {report:#}");
    assert_eq!(report["passed"], false);
    let failure = &report["failure"];
    (
        failure["property"].as_str().expect("property").to_owned(),
        failure["row"].clone(),
    )
}

#[test]
fn the_default_patients_module_passes_its_examples_and_generated_rows() {
    let dir = project();
    let (code, report) = json_report(
        &dir.path().join("transforms/patients.wasm"),
        &["--seed", "5", "--cases", "300"],
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["passed"], true);
    assert!(report["examples"]["cases"].as_u64().expect("cases") >= 10);
    assert_eq!(report["examples"]["failures"], serde_json::json!([]));
    assert_eq!(report["cases_run"], 300);
    // The hints reach both sides of the rules: some rows emit, some are rejected.
    assert!(
        report["outcomes"]["emit"].as_u64().expect("emit") > 30,
        "{report:#}"
    );
    assert!(
        report["outcomes"]["reject"].as_u64().expect("reject") > 30,
        "{report:#}"
    );
}

#[test]
fn the_default_vaccine_doses_module_passes_and_generated_rows_reach_its_emit_path() {
    let dir = project();
    let (code, report) = json_report(
        &dir.path().join("transforms/vaccine-doses.wasm"),
        &["--seed", "5", "--cases", "300"],
    );
    assert_eq!(code, Some(0), "{report:#}");
    // A dose emits only when its joined patient number equals its own and both the patient and
    // the dose are valid: the generator's tied key columns make that happen.
    assert!(
        report["outcomes"]["emit"].as_u64().expect("emit") > 10,
        "{report:#}"
    );
    assert!(
        report["outcomes"]["skip"].as_u64().expect("skip") > 10,
        "{report:#}"
    );
}

#[test]
fn a_us_format_date_is_caught_by_the_record_schema_with_a_pre_1950_birth_date() {
    let (property, row) = caught("date");
    assert_eq!(property, "record-schema");
    let dob = row["birth_date"].as_str().expect("birth date");
    assert!(
        dob < "1950",
        "minimal row should be born before 1950: {row}"
    );
}

#[test]
fn state_kept_between_rows_is_caught_as_nondeterminism() {
    let (property, _) = caught("state");
    assert!(
        property == "deterministic" || property == "fresh-instance",
        "{property}"
    );
}

#[test]
fn a_row_value_quoted_in_a_message_is_caught() {
    let (property, row) = caught("quote");
    assert_eq!(property, "no-values-in-messages");
    let last = row["lname"].as_str().expect("last name");
    assert!(last.bytes().any(|b| b.is_ascii_digit()), "{row}");
}

#[test]
fn a_trap_is_caught_and_shrunk_to_a_minimal_row() {
    let (property, row) = caught("panic");
    assert_eq!(property, "no-fault");
    // The module slices the first name's first three bytes: the minimal failing name is
    // shorter than that, or not ASCII.
    let first = row["fname"].as_str().expect("first name");
    assert!(first.len() < 3 || !first.is_ascii(), "{row}");
    // Everything else shrank to the plainest value.
    assert_eq!(row["patno"], 1, "{row}");
}

/// The user's report: a module panicking on first names longer than 20 characters was caught on
/// every seed, but on one seed shrinking stopped at proptest's iteration cap (four times
/// `--cases`, reached without a word) with unrelated columns still holding generated junk; at
/// `--cases 100` this module showed it on three seeds of these eight. Whatever the seed and the
/// case count, the minimal row must now be the same: every column the failure does not depend
/// on at its plainest value (NULL where the column is nullable, else the simplest value its
/// hints allow), the first name the shortest that still fails.
#[test]
fn a_failure_on_one_column_shrinks_every_other_column_to_its_plainest_value_on_every_seed() {
    let expected = serde_json::json!({
        "patno": 1,
        "lname": "A",
        "fname": "a".repeat(21),
        "birth_date": "1900-01-01",
        "sex": null,
        "addr1": null,
        "city": null,
        "state": null,
        "zip": null,
        "family_no": null,
        "active": null,
        "notes": null,
        "updated_at": "2000-01-01T00:00:00-06:00",
    });
    for seed in 1..=8 {
        let seed = seed.to_string();
        let (code, report) = json_report(
            &flawed("long-name"),
            &["--no-examples", "--seed", &seed, "--cases", "100"],
        );
        assert_eq!(code, Some(5), "seed {seed}: {report:#}");
        let failure = &report["failure"];
        assert_eq!(failure["property"], "no-fault", "seed {seed}: {report:#}");
        assert_eq!(failure["row"], expected, "seed {seed}: {report:#}");
        // Shrinking ran to its end rather than stopping at a cap.
        assert_eq!(
            failure["shrink"]["complete"], true,
            "seed {seed}: {report:#}"
        );
    }
}

/// A failing batch is retried row by row on a fresh instance, and the host logs a warning
/// each time: right in a sync's log, hundreds of lines of noise before a test's verdict. The
/// test prints its report alone unless asked for the log.
#[test]
fn a_failing_modules_test_prints_no_log_lines_unless_verbose() {
    let args = ["--no-examples", "--seed", "4", "--cases", "300"];
    let quiet = transform_test(&flawed("long-name"), &args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&quiet.stdout),
        String::from_utf8_lossy(&quiet.stderr),
    );
    assert_eq!(quiet.status.code(), Some(5), "{stdout}{stderr}");
    assert!(stdout.contains("FAIL       no-fault"), "{stdout}");
    assert!(
        !stdout.contains("WARN") && !stderr.contains("WARN"),
        "{stdout}{stderr}"
    );
    assert_eq!(stderr, "", "nothing but the report");

    let mut verbose_args = vec!["--verbose"];
    verbose_args.extend_from_slice(&args);
    let verbose = transform_test(&flawed("long-name"), &verbose_args);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert_eq!(verbose.status.code(), Some(5), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("retrying it one row at a time")),
        "{stderr}"
    );
    // The same report either way (but for its timings).
    let report = |out: &Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("speed"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(report(&verbose), report(&quiet));
}

#[test]
fn a_field_outside_reqchecks_whitelist_fails_the_declaration_before_any_row() {
    let (property, row) = caught("field");
    assert_eq!(property, "declaration");
    assert_eq!(row, Value::Null);
}

#[test]
fn the_same_seed_reproduces_the_same_failure() {
    let args = ["--no-examples", "--seed", "23", "--cases", "300"];
    let (_, a) = json_report(&flawed("quote"), &args);
    let (_, b) = json_report(&flawed("quote"), &args);
    assert_eq!(a["failure"], b["failure"]);
    assert_eq!(a["cases_run"], b["cases_run"]);
}

#[test]
fn human_output_prints_the_minimal_row_and_how_to_reproduce_it() {
    let out = transform_test(
        &flawed("date"),
        &["--no-examples", "--seed", "3", "--cases", "200"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("FAIL       record-schema"), "{text}");
    assert!(text.contains("minimal row"), "{text}");
    assert!(text.contains("--seed 3 --cases 200"), "{text}");
    assert!(text.contains("reqsync transform try"), "{text}");
}

#[test]
fn a_module_without_example_cases_is_refused_unless_told_to_skip_them() {
    let dir = tempfile::tempdir().expect("dir");
    let module = dir.path().join("patients.wasm");
    std::fs::copy(reqsync_test_guests::PATIENTS, &module).expect("copy");
    let out = transform_test(&module, &["--cases", "10"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("patients.examples.json") && err.contains("--no-examples"),
        "{err}"
    );
    let out = transform_test(&module, &["--cases", "10", "--no-examples", "--seed", "1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A Python or JavaScript twin of a default module, as its build script leaves it.
fn interpreter_module(file: &str, script: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/guests")
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/{script}` before these tests",
        path.display()
    );
    path
}

fn passes_like_the_rust_patients_module(module: &Path) {
    let (code, report) = json_report(module, &["--seed", "5", "--cases", "150"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(report["examples"]["cases"].as_u64().expect("cases") >= 10);
    assert!(
        report["outcomes"]["emit"].as_u64().expect("emit") > 20,
        "{report:#}"
    );
    assert!(
        report["outcomes"]["reject"].as_u64().expect("reject") > 20,
        "{report:#}"
    );
}

#[test]
fn the_python_patients_module_passes_the_same_properties() {
    passes_like_the_rust_patients_module(&interpreter_module(
        "patients-py.wasm",
        "build-guest-python",
    ));
}

#[test]
fn the_javascript_patients_module_passes_the_same_properties() {
    passes_like_the_rust_patients_module(&interpreter_module(
        "patients-js.wasm",
        "build-guest-javascript",
    ));
}

/// What the default vaccine-doses test above asks of the Rust module, in fewer cases.
fn passes_like_the_rust_doses_module(module: &Path) {
    let (code, report) = json_report(module, &["--seed", "5", "--cases", "150"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(report["examples"]["cases"].as_u64().expect("cases") >= 30);
    for outcome in ["emit", "skip"] {
        assert!(
            report["outcomes"][outcome].as_u64().expect(outcome) > 5,
            "{report:#}"
        );
    }
}

#[test]
fn the_python_vaccine_doses_module_passes_the_same_properties() {
    passes_like_the_rust_doses_module(&interpreter_module(
        "vaccine-doses-py.wasm",
        "build-guest-python vaccine-doses",
    ));
}

#[test]
fn the_javascript_vaccine_doses_module_passes_the_same_properties() {
    passes_like_the_rust_doses_module(&interpreter_module(
        "vaccine-doses-js.wasm",
        "build-guest-javascript vaccine-doses",
    ));
}

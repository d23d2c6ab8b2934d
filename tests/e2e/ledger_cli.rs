//! The run ledger from the command line: `partial_failure` exit codes and the held window, the
//! quarantine (`list`, `show`, `replay`) with the doses of a quarantined patient, `history`, and
//! the run lock.

use std::process::Output;

use reqsync_runtime::ledger::{Ledger, RunKind, RunLock, RunStatus};
use reqsync_runtime::reqcheck::window::WindowBasis;
use reqsync_seeder::SeedOptions;
use serde_json::Value;

use crate::support::{World, doses, patients, reqsync};

async fn kcmo() -> World {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.share_module_cache();
    world.edit_config("[reqcheck]", "[reqcheck]\nretry_attempts = 1");
    world
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ledger(world: &World) -> Ledger {
    Ledger::open(&world.path(".reqsync/state")).expect("ledger")
}

/// A template bug that garbles one patient's date of birth: valid JSON with ReqCheck's keys,
/// which ReqCheck stores with a record error (`201 partial_failure`).
pub(crate) const GARBLING_TEMPLATE: &str = r#"{"patient_data": [
{%- for record in records %}
  {%- if record.patient_number == 101 %}
  {"patient_number": 101, "first_name": {{ record.first_name }}, "last_name": {{ record.last_name }}, "dob": "unknown", "hd_mpfile_updated_at": {{ record.hd_mpfile_updated_at }}}
  {%- else %}
  {{ record }}
  {%- endif %}{% if not loop.last %},{% endif %}
{%- endfor %}
]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn partial_failure_exits_7_records_the_error_ids_and_holds_the_window() {
    let world = kcmo().await;
    std::fs::write(
        world.path("templates/patient_data.json.j2"),
        GARBLING_TEMPLATE,
    )
    .expect("template");
    let out = reqsync(&world, &["run", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("partial_failure"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["status"], "partial");
    let response = &report["jobs"][0]["requests"][0]["response"];
    assert_eq!(response["status"], "partial_failure");
    assert_eq!(response["error_ids"].as_array().map(Vec::len), Some(1));

    let runs = ledger(&world).recent_runs(1, true).expect("runs");
    assert_eq!(runs[0].status, RunStatus::Partial);
    let request = &runs[0].jobs[0].requests[0];
    assert_eq!(request.status, "partial_failure");
    assert_eq!(request.error_ids.len(), 1);
    assert!(request.data_import_id.is_some());
    assert!(
        std::fs::read_to_string(runs[0].report_file.as_deref().expect("report file"))
            .expect("report")
            .contains("partial_failure")
    );

    // The run did not count as complete: the next one starts where it started, and sends the
    // (fixed) patient again although ReqCheck's heartbeat is later than its row.
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../templates/patient_data.json.j2"
        ),
        world.path("templates/patient_data.json.j2"),
    )
    .expect("restore template");
    let out = reqsync(&world, &["run", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["jobs"][0]["window_basis"], "ledger");
    assert_eq!(report["jobs"][0]["counts"]["read"], 21);
    assert!(
        patients(&world.dump())[&101]["dob"].is_string(),
        "ReqCheck holds the patient now"
    );

    // That run completed: the next one is the steady state, starting at its start minus the
    // look-back (a little before the heartbeat its own imports set), without alarm.
    let out = reqsync(&world, &["run", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["jobs"][0]["window_basis"], "last-complete-run");
    assert_eq!(report["jobs"][1]["window_basis"], "last-complete-run");
}

#[tokio::test(flavor = "multi_thread")]
async fn accepting_partial_failures_exits_0_and_lets_the_window_move_on() {
    let world = kcmo().await;
    std::fs::write(
        world.path("templates/patient_data.json.j2"),
        GARBLING_TEMPLATE,
    )
    .expect("template");
    world.edit_config(
        "look_back = \"1d\"",
        "look_back = \"1d\"\non_partial_failure = \"accept\"",
    );
    let out = reqsync(&world, &["run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("record error"), "{stdout}");
    let runs = ledger(&world).recent_runs(1, true).expect("runs");
    assert_eq!(runs[0].status, RunStatus::Complete);
    assert_eq!(runs[0].jobs[0].requests[0].error_ids.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_replay_sends_a_row_fixed_where_the_window_no_longer_reaches_with_its_doses() {
    let world = kcmo().await;
    let clinic = world.clinic();
    let dob: String = clinic
        .query_row("SELECT birth_date FROM mpfile WHERE patno = 101", [], |r| {
            r.get(0)
        })
        .expect("dob");
    // A typo that the patients module rejects; `updated_at` stays as it was.
    clinic
        .execute(
            "UPDATE mpfile SET birth_date = '2999-01-01' WHERE patno = 101",
            [],
        )
        .expect("break the row");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let dump = world.dump();
    assert!(!patients(&dump).contains_key(&101));
    assert!(
        !doses(&dump).contains_key(&101),
        "no doses for a patient ReqCheck does not have"
    );

    let out = reqsync(&world, &["quarantine", "list", "--json"]);
    let entries: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    let entries = entries.as_array().expect("array");
    let patient_entry = entries
        .iter()
        .find(|e| e["job"] == "patients")
        .expect("the patient is quarantined");
    assert_eq!(patient_entry["key"], "101");
    assert_eq!(patient_entry["times_seen"], 1);
    assert!(
        patient_entry["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.starts_with("dob:"))),
        "{patient_entry}"
    );
    let out = reqsync(&world, &["quarantine", "show", "101", "--job", "patients"]);
    let (shown, _) = text(&out);
    assert!(shown.contains("dob:"), "{shown}");
    assert!(!shown.contains("2999"), "values never shown: {shown}");

    // Fixed at the source without touching `updated_at`: the next run's window (the heartbeat
    // minus a day; the KCMO rows date from 2016) does not reach the row.
    clinic
        .execute(
            "UPDATE mpfile SET birth_date = ?1 WHERE patno = 101",
            [&dob],
        )
        .expect("fix the row");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(!patients(&world.dump()).contains_key(&101));

    let out = reqsync(&world, &["quarantine", "replay"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 passed and were sent"), "{stderr}");
    let dump = world.dump();
    assert!(patients(&dump).contains_key(&101));
    let expected_doses = crate::support::corpus_csv("kcmo/imfile.csv")
        .iter()
        .filter(|d| d["patno"] == "101")
        .count();
    assert_eq!(
        doses(&dump).get(&101).map(Vec::len),
        Some(expected_doses),
        "the replayed patient's doses went with it"
    );
    let out = reqsync(&world, &["quarantine", "list", "--json"]);
    let open: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    assert!(
        open.as_array()
            .expect("array")
            .iter()
            .all(|e| e["key"] != "101"),
        "{open}"
    );

    // The replay is a run of its own in the history, and did not move any job's window.
    let runs = ledger(&world).recent_runs(10, false).expect("runs");
    assert_eq!(runs[0].kind, RunKind::Replay);
    assert_eq!(runs[0].status, RunStatus::Complete);
    let out = reqsync(&world, &["history"]);
    let (history, _) = text(&out);
    assert!(history.contains("replay"), "{history}");
    assert_eq!(history.matches("\nrun ").count() + 1, 3, "{history}");
    let history = ledger(&world).job_history("patients").expect("history");
    let last_sync = runs.iter().find(|r| r.kind == RunKind::Sync).expect("sync");
    assert_eq!(
        history
            .last_complete_start
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        Some(last_sync.started_at.clone())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_while_another_holds_the_run_lock_exits_9_and_sends_nothing() {
    let world = kcmo().await;
    let lock = RunLock::acquire(&world.path(".reqsync/state")).expect("lock");
    let out = reqsync(&world, &["run"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("in progress"), "{stderr}");
    assert!(world.dump().data_imports.is_empty());
    drop(lock);
    let out = reqsync(&world, &["run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["window_basis"], serde_json::json!(WindowBasis::Full));
}

#[tokio::test(flavor = "multi_thread")]
async fn doses_of_a_quarantined_patient_are_held_back_whatever_the_dose_module_says() {
    let world = kcmo().await;
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    // Patient 101 is then rejected (by a stricter patients module, say) while the dose
    // module's own patient check still passes it.
    ledger(&world)
        .quarantine_rows(
            1,
            "patients",
            "an-earlier-module",
            [reqsync_runtime::ledger::Rejection {
                key: "101",
                group: None,
                findings: vec!["address:invalid"],
            }],
            chrono::Utc::now(),
        )
        .expect("quarantine");
    let out = reqsync(
        &world,
        &["run", "--job", "vaccine-doses", "--full", "--json"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    let held = report["jobs"][0]["counts"]["skipped"]["patient-quarantined"]
        .as_u64()
        .expect("held back");
    let expected = crate::support::corpus_csv("kcmo/imfile.csv")
        .iter()
        .filter(|d| d["patno"] == "101")
        .count() as u64;
    assert_eq!(held, expected);
    assert_eq!(
        report["jobs"][0]["counts"]["emitted"].as_u64(),
        Some(177 - expected)
    );
}

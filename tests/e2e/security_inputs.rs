//! Inputs reqsync must not trust: paths in the config that name something other than a query,
//! template or module (a device, a secret, a huge file), secrets others can read, ReqCheck's
//! heartbeat, and text values ReqCheck cannot store; and the audit trail failing mid-run.
//! Each test reproduces one attack or accident against the real binary or pipeline.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use reqsync_runtime::pipeline::{FailureClass, RunError, RunOptions};
use reqsync_seeder::SeedOptions;

use crate::support::{World, last_run, reqsync};
use crate::sync::assert_receiver_equals_corpus;

fn kcmo() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    }
}

async fn world() -> World {
    let world = World::new(kcmo()).await;
    world.share_module_cache();
    world
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything a run left for later readers: the ledger, the run reports, the audit trail.
fn stored_text(world: &World) -> String {
    let mut text = String::new();
    let state = world.path(".reqsync");
    for entry in walk(&state) {
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(&entry).expect("state file"),
        ));
    }
    text
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        if entry.file_type().expect("type").is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_or_a_huge_file_named_as_query_template_or_module_is_refused_unread() {
    let world = world().await;
    std::fs::write(world.path("huge.sql"), "-- x\n".repeat(300_000)).expect("huge query");
    for (from, to, expected) in [
        ("queries/patients.sql", "/dev/zero", "not a regular file"),
        ("queries/patients.sql", "huge.sql", "larger than 1 MiB"),
        (
            "templates/patient_data.json.j2",
            "/dev/zero",
            "not a regular file",
        ),
        (
            "transforms/patients.wasm",
            "/dev/zero",
            "not a regular file",
        ),
    ] {
        world.edit_config(&format!("\"{from}\""), &format!("\"{to}\""));
        let out = reqsync(&world, &["check"]);
        assert_ne!(out.status.code(), Some(0), "{to}");
        assert!(stderr(&out).contains(expected), "{to}: {}", stderr(&out));
        world.edit_config(&format!("\"{to}\""), &format!("\"{from}\""));
    }
    assert!(world.dump().data_imports.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_file_named_as_a_query_is_refused_without_quoting_it() {
    let world = world().await;
    let secret = world.path("reqcheck-password");
    reqsync_private_fs::write_atomically(&secret, b"hunter2 correct horse\n").expect("secret");
    world.edit_config(
        "# password_env = \"REQCHECK_PASSWORD\"",
        "password_file = \"reqcheck-password\"",
    );
    world.edit_config("\"queries/patients.sql\"", "\"reqcheck-password\"");
    for args in [&["check"][..], &["run", "-vv"][..]] {
        let out = reqsync(&world, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
        assert!(all.contains("jobs.patients.query"), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
    }
    assert!(!stored_text(&world).contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_file_that_is_not_sql_is_never_quoted_in_stored_errors() {
    let world = world().await;
    // A patient list exported by mistake where the query should be.
    std::fs::write(world.path("export.csv"), "Zebulon,Quixote,1980-01-01\n").expect("export");
    world.edit_config("\"queries/patients.sql\"", "\"export.csv\"");
    let out = reqsync(&world, &["run", "-vv"]);
    assert_ne!(out.status.code(), Some(0));
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(
        all.contains("syntax error") && all.contains("line 1"),
        "{all}"
    );
    for word in ["Zebulon", "Quixote"] {
        assert!(!all.contains(word), "{word} in the output: {all}");
        assert!(!stored_text(&world).contains(word), "{word} stored");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_file_other_users_can_read_is_refused_with_the_fix() {
    let world = world().await;
    let secret = world.path("reqcheck-password");
    std::fs::write(&secret, format!("{}\n", crate::support::PASSWORD)).expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    world.edit_config(
        "# password_env = \"REQCHECK_PASSWORD\"",
        "password_file = \"reqcheck-password\"",
    );
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    assert!(world.dump().data_imports.is_empty());

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Stamps both kinds of import in the receiver's database as received at `at` (its stored
/// UTC form), as a ReqCheck with a wrong clock or time zone would report them.
fn receiver_imports_at(world: &World, at: &str) {
    let db = rusqlite::Connection::open(world.path("receiver.db")).expect("receiver db");
    db.execute("DELETE FROM data_imports", []).expect("clear");
    for kind in ["PatientDataImport", "VaccineDoseDataImport"] {
        db.execute(
            "INSERT INTO data_imports (type, created_at, updated_at) VALUES (?1, ?2, ?2)",
            [kind, at],
        )
        .expect("import row");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_in_the_future_fails_closed_and_loses_nothing() {
    let world = world().await;
    receiver_imports_at(&world, "9999-12-31 00:00:00.000000");
    let err = world
        .run(RunOptions::default())
        .await
        .expect_err("a heartbeat ahead of the run must stop it");
    assert!(matches!(err, RunError::HeartbeatAhead(_)), "{err}");
    assert_eq!(err.class(), FailureClass::Delivery);
    assert!(err.to_string().contains("clock"), "{err}");
    assert!(world.dump().patients.is_empty(), "nothing sent");
    assert_eq!(last_run(&world).status.as_str(), "failed");

    // Once ReqCheck's clock is fixed, the next run sends everything: the failed run moved no
    // window.
    let db = rusqlite::Connection::open(world.path("receiver.db")).expect("receiver db");
    db.execute("DELETE FROM data_imports", []).expect("clear");
    let report = world.run(RunOptions::default()).await.expect("sane run");
    assert_eq!(report.status.as_str(), "complete");
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_very_old_heartbeat_only_widens_the_window() {
    let world = world().await;
    receiver_imports_at(&world, "1850-01-01 00:00:00.000000");
    let report = world.run(RunOptions::default()).await.expect("run");
    assert_eq!(report.status.as_str(), "complete");
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_text_value_rejects_the_row_instead_of_reaching_reqcheck() {
    let world = world().await;
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET notes = 'call ' || char(0) || ' first' WHERE patno = \
             (SELECT MIN(patno) FROM mpfile WHERE birth_date >= '2000-01-01')",
            [],
        )
        .expect("plant a NUL");
    let patno: i64 = world
        .clinic()
        .query_row(
            "SELECT patno FROM mpfile WHERE instr(notes, char(0)) > 0",
            [],
            |r| r.get(0),
        )
        .expect("the planted row");
    let report = world.run(RunOptions::default()).await.expect("run");
    let patients = report
        .jobs
        .iter()
        .find(|j| j.job == "patients")
        .expect("patients job");
    let rejected = crate::support::rejected(patients);
    assert!(
        rejected.iter().any(|(key, codes)| key == &patno.to_string()
            && codes.iter().any(|c| c == "notes:control-character")),
        "{rejected:?}"
    );
    assert!(
        !world
            .dump()
            .patients
            .iter()
            .any(|p| p["patient_number"].as_i64() == Some(patno)),
        "the patient with a NUL never reaches ReqCheck"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_trail_that_cannot_be_written_stops_requests_before_they_leave() {
    let world = world().await;
    // A trail every write to fails with "no space left on device", as on a full disk.
    let config = world.path("reqsync.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[audit]\nfile = \"/dev/full\"\n");
    std::fs::write(&config, text).expect("config");

    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("every request must be audited"),
        "{}",
        stderr(&out)
    );
    assert!(
        world.dump().data_imports.is_empty(),
        "nothing reached ReqCheck"
    );
}

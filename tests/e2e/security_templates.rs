//! Hostile or careless body templates, through the `reqsync` binary: a template that never
//! ends is stopped naming its file, a key written from row data never reaches a stored
//! message, and a key written twice is refused before anything is sent.
//!
//! Each case would pass the load-time render of the sample records where that is the point
//! (the template misbehaves on real rows only), and each sweeps what a run leaves behind for
//! the clinic's PHI: stdout and stderr at `-vv`, the run ledger, the run report and the audit
//! trail.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqsync_seeder::SeedOptions;

use crate::phi::Phi;
use crate::support::{PASSWORD, USER, World};

/// Longer than a `check` or a failing `run` takes once modules are compiled (seconds), far
/// shorter than a template looping over `range(100000)` twice (hours).
const PATIENCE: Duration = Duration::from_secs(120);

const PATIENTS_TEMPLATE: &str = "templates/patient_data.json.j2";

/// Loops ten billion times whatever it is given.
const FOR_EVER: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";

/// The required patient keys, each from the record: what a hand-written template spells out.
const REQUIRED: &str = r#""patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}"#;

async fn world() -> World {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.share_module_cache();
    world.edit_config("[reqcheck]", "[reqcheck]\nretry_attempts = 1");
    world
}

/// A patients template that writes each record whole for the sample records (load time) and
/// `real` for the rows of a run.
fn on_real_rows_only(real: &str) -> String {
    format!(
        r#"{{"patient_data": [{{% for r in records %}}{{% if "sample" in r.first_name %}}{{{{ r }}}}{{% else %}}{real}{{% endif %}}{{% if not loop.last %}},{{% endif %}}{{% endfor %}}]}}"#
    )
}

fn write_template(world: &World, text: &str) {
    std::fs::write(world.path(PATIENTS_TEMPLATE), text).expect("write template");
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `reqsync -vv ARGS…` in the world's folder, killed (and the test failed) if it is still
/// going after [`PATIENCE`]. Output goes to files, so a process that never ends cannot block
/// on a full pipe.
fn reqsync(world: &World, args: &[&str]) -> Finished {
    let out_path = world.path("out.txt");
    let err_path = world.path("err.txt");
    let file = |p: &Path| std::fs::File::create(p).expect("output file");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .arg("-vv")
        .args(args)
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env_remove("REQSYNC_LOG")
        .stdin(Stdio::null())
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .spawn()
        .expect("start reqsync");
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`reqsync {}` was still going after {PATIENCE:?}: {}",
                args.join(" "),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Finished {
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        took: started.elapsed(),
    }
}

/// Every text value of every table of an SQLite file, one per line.
fn sqlite_text(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    let mut text = String::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("rows");
        while let Some(row) = rows.next().expect("row") {
            for i in 0..columns {
                if let rusqlite::types::ValueRef::Text(t) = row.get_ref(i).expect("value") {
                    text.push_str(&String::from_utf8_lossy(t));
                    text.push('\n');
                }
            }
        }
    }
    text
}

/// Sweeps both streams, the run ledger, every run report and the audit trail for PHI.
fn assert_no_phi_anywhere(world: &World, finished: &Finished) {
    let phi = Phi::of(world);
    phi.assert_absent("stdout", &finished.stdout);
    phi.assert_absent("stderr", &finished.stderr);
    let state = world.path(".reqsync/state");
    phi.assert_absent("the run ledger", &sqlite_text(&state.join("ledger.db")));
    let reports: Vec<_> = std::fs::read_dir(state.join("runs"))
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    assert!(!reports.is_empty(), "the run wrote a report");
    for report in reports {
        let text = std::fs::read_to_string(&report).expect("report");
        phi.assert_absent(&report.display().to_string(), &text);
    }
    let audit = std::fs::read_to_string(world.path(".reqsync/audit.jsonl")).unwrap_or_default();
    phi.assert_absent("the audit trail", &audit);
}

fn assert_nothing_sent(world: &World) {
    let dump = world.dump();
    assert!(
        dump.data_imports.is_empty() && dump.patients.is_empty(),
        "the receiver holds imports: {:?}",
        dump.data_imports
    );
}

fn assert_fails_naming(finished: &Finished, code: i32, parts: &[&str]) {
    assert_eq!(finished.code, Some(code), "{}", finished.stderr);
    for part in parts {
        assert!(
            finished.stderr.contains(part),
            "stderr does not say {part:?}:\n{}",
            finished.stderr
        );
    }
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_that_loops_for_ever_is_stopped_with_an_error_naming_it() {
    let world = world().await;
    write_template(
        &world,
        &format!(r#"{FOR_EVER}{{"patient_data": {{{{ records }}}}}}"#),
    );
    let checked = reqsync(&world, &["check", "--config", "reqsync.toml"]);
    assert_fails_naming(
        &checked,
        3,
        &[PATIENTS_TEMPLATE, "was stopped", "sample records"],
    );
    let ran = reqsync(&world, &["run", "--config", "reqsync.toml"]);
    assert_fails_naming(&ran, 3, &[PATIENTS_TEMPLATE, "was stopped"]);
    println!(
        "stopped in {:?} (check) and {:?} (run)",
        checked.took, ran.took
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_that_loops_only_on_a_large_body_is_stopped_at_run_time_with_nothing_sent() {
    let world = world().await;
    // Two sample records at load time; the 21 KCMO patients in the run's one request.
    write_template(
        &world,
        &format!(
            r#"{{% if records | length > 2 %}}{FOR_EVER}{{% endif %}}{{"patient_data": {{{{ records }}}}}}"#
        ),
    );
    let checked = reqsync(&world, &["check", "--config", "reqsync.toml"]);
    assert_eq!(checked.code, Some(0), "{}", checked.stderr);
    let ran = reqsync(&world, &["run", "--config", "reqsync.toml"]);
    assert_fails_naming(&ran, 3, &[PATIENTS_TEMPLATE, "was stopped", "21 record(s)"]);
    assert!(!ran.stderr.contains("sample records"), "{}", ran.stderr);
    assert_nothing_sent(&world);
    let run = crate::support::last_run(&world);
    assert_eq!(
        run.status,
        reqsync_runtime::ledger::RunStatus::Failed,
        "{run:?}"
    );
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("was stopped")),
        "{run:?}"
    );
    assert_no_phi_anywhere(&world, &ran);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_written_from_row_data_never_reach_the_output_the_ledger_or_the_run_report() {
    let world = world().await;
    // Each patient's last name as a key: ReqCheck accepts no such key, and the message saying
    // so is stored in the ledger and the run report.
    write_template(
        &world,
        &on_real_rows_only(&format!("{{ {{{{ r.last_name }}}}: 1, {REQUIRED} }}")),
    );
    let ran = reqsync(&world, &["run", "--config", "reqsync.toml"]);
    assert_fails_naming(
        &ran,
        3,
        &[
            PATIENTS_TEMPLATE,
            "element 0 has 1 key(s) ReqCheck does not accept",
            "not shown",
        ],
    );
    assert_nothing_sent(&world);
    assert_no_phi_anywhere(&world, &ran);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_with_a_key_written_twice_is_refused_before_it_is_sent() {
    let world = world().await;
    // In every record, the sample ones too: `reqsync check` refuses it.
    write_template(
        &world,
        &format!(
            r#"{{"patient_data": [{{% for r in records %}}{{ {REQUIRED}, "first_name": "Someone Else" }}{{% if not loop.last %}},{{% endif %}}{{% endfor %}}]}}"#
        ),
    );
    let checked = reqsync(&world, &["check", "--config", "reqsync.toml"]);
    assert_fails_naming(
        &checked,
        3,
        &[
            PATIENTS_TEMPLATE,
            "`first_name` more than once",
            "sample records",
        ],
    );
    // In the rows of a run only: refused before the request is sent.
    write_template(
        &world,
        &on_real_rows_only(&format!(r#"{{ {REQUIRED}, "dob": "1900-01-01" }}"#)),
    );
    let ran = reqsync(&world, &["run", "--config", "reqsync.toml"]);
    assert_fails_naming(
        &ran,
        3,
        &[
            PATIENTS_TEMPLATE,
            "element 0 has the key(s) `dob` more than once",
        ],
    );
    assert_nothing_sent(&world);
    assert_no_phi_anywhere(&world, &ran);
}

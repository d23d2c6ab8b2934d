//! The `reqsync` binary: exit codes per failure class, and nothing sent when a run fails closed.

use std::process::{Command, Output};

use crate::support::{USER, World, reqsync};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn nothing_received(world: &World) -> bool {
    world.dump().data_imports.is_empty()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_succeeds_with_exit_code_zero_and_prints_a_summary() {
    let world = World::kcmo().await;
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("patients") && stdout.contains("vaccine-doses"),
        "{stdout}"
    );
    assert_eq!(world.dump().vaccine_doses.len(), 177);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_config_file_exits_with_the_configuration_code() {
    let world = World::kcmo().await;
    let out = reqsync(&world, &["run", "--config", "nope.toml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope.toml"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_config_key_exits_3_naming_the_key() {
    let world = World::kcmo().await;
    world.edit_config("[sync]", "[sync]\nlookback = \"2d\"");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("lookback"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn template_rendering_invalid_json_exits_3_and_sends_nothing() {
    let world = World::kcmo().await;
    std::fs::write(
        world.path("templates/vaccine_dose_data.json.j2"),
        "{\"vaccine_dose_data\": [{% for r in records %}{{ r }}{% endfor %}]}",
    )
    .expect("template");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid JSON"), "{}", stderr(&out));
    // The patients job ran first and was accepted; the broken dose body was never sent.
    assert!(world.dump().vaccine_doses.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn template_syntax_error_exits_3_before_anything_is_sent() {
    let world = World::kcmo().await;
    std::fs::write(
        world.path("templates/vaccine_dose_data.json.j2"),
        "{% for r in records %}",
    )
    .expect("template");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(nothing_received(&world));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_a_component_exits_5_before_anything_is_sent() {
    let world = World::kcmo().await;
    std::fs::write(world.path("transforms/vaccine-doses.wasm"), b"not wasm").expect("module");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("vaccine-doses.wasm"),
        "{}",
        stderr(&out)
    );
    assert!(nothing_received(&world));
}

#[tokio::test(flavor = "multi_thread")]
async fn query_error_exits_4_naming_the_query_file() {
    let world = World::kcmo().await;
    std::fs::write(
        world.path("queries/patients.sql"),
        "SELECT patno FROM no_such_table WHERE updated_at >= ?",
    )
    .expect("query");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("patients.sql"), "{}", stderr(&out));
    assert!(nothing_received(&world));
}

#[tokio::test(flavor = "multi_thread")]
async fn query_missing_a_column_the_module_needs_exits_5() {
    let world = World::kcmo().await;
    std::fs::write(
        world.path("queries/patients.sql"),
        "SELECT patno, lname FROM mpfile WHERE updated_at >= ?",
    )
    .expect("query");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("birth_date"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_exit_6_as_a_credentials_problem() {
    let world = World::kcmo().await;
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .arg("run")
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", "wrong")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr(&out).contains("credentials"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("wrong"),
        "the password must not be printed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_receiver_exits_6() {
    let world = World::kcmo().await;
    // Retrying is tested in delivery_faults; here only the final verdict matters.
    world.edit_config("# timeout = \"2m\"", "retry_attempts = 1");
    let out = reqsync(&world, &["run", "--reqcheck-url", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach ReqCheck"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_exit_3_naming_the_variable() {
    let world = World::kcmo().await;
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .arg("run")
        .current_dir(world.dir.path())
        .env_remove("REQCHECK_USERNAME")
        .env_remove("REQCHECK_PASSWORD")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("REQCHECK_USERNAME"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_writes_the_exact_bodies_and_sends_nothing() {
    let world = World::kcmo().await;
    let out = reqsync(&world, &["run", "--dry-run", "--full", "--out", "bodies"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(nothing_received(&world));
    let mut files: Vec<_> = std::fs::read_dir(world.path("bodies"))
        .expect("bodies")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[1]).expect("body")).expect("json");
    assert_eq!(
        body["vaccine_dose_data"].as_array().expect("array").len(),
        177
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_and_init_make_a_project_that_runs() {
    let world = World::kcmo().await;
    let out = reqsync(
        &world,
        &[
            "seed",
            "--db",
            "sqlite://other.db",
            "--kcmo",
            "--synthetic",
            "50",
            "--seed",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = reqsync(
        &world,
        &[
            "init",
            "fresh",
            "--reqcheck-url",
            &world.receiver.base_url(),
            "--source",
            "sqlite://../other.db",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(world.path("fresh/transforms/patients.wasm").is_file());
    let again = reqsync(&world, &["init", "fresh"]);
    assert_eq!(again.status.code(), Some(3), "init must not overwrite");
    let out = reqsync(&world, &["run", "--config", "fresh/reqsync.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A new project's daemon has nothing to run until the jobs get a schedule: it refuses, and
/// says where the lines to uncomment are.
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_on_a_new_project_points_at_the_commented_schedule_lines() {
    let world = World::kcmo().await;
    let url = world.receiver.base_url();
    let out = reqsync(&world, &["init", "fresh", "--reqcheck-url", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = reqsync(&world, &["daemon", "--config", "fresh/reqsync.toml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("has a `schedule`") && err.contains("commented out in each job"),
        "{err}"
    );
    let config = std::fs::read_to_string(world.path("fresh/reqsync.toml")).expect("config");
    assert_eq!(config.matches("# schedule = \"0 2 * * *\"").count(), 2);
}

/// At the default level a run's log had one or more lines per request (a 20,000-patient run
/// printed about 410 around its summary). Per-request lines are debug now and audit events stay
/// in the trail, so the log does not grow with the requests; `-q` keeps warnings only; the run's
/// summary prints either way.
#[tokio::test(flavor = "multi_thread")]
async fn a_runs_default_log_has_no_line_per_request_and_quiet_keeps_warnings_only() {
    let world = World::new(reqsync_seeder::SeedOptions {
        kcmo: true,
        synthetic: Some(reqsync_seeder::SyntheticOptions::new(300, 5)),
        ..reqsync_seeder::SeedOptions::default()
    })
    .await;
    world.edit_config("batch_size = 500", "batch_size = 10");
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sent = world.dump().data_imports.len();
    assert!(sent > 20, "only {sent} requests: the check proves little");
    let log = stderr(&out);
    for per_request in [
        "request accepted",
        "request_sent",
        "request_sending",
        reqsync_runtime::audit::TARGET,
    ] {
        assert!(!log.contains(per_request), "{per_request}:\n{log}");
    }
    assert!(
        log.lines().count() < 20,
        "{} lines:\n{log}",
        log.lines().count()
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).is_empty(),
        "the summary"
    );

    let out = reqsync(&world, &["--quiet", "run", "--full"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(!log.contains(" INFO "), "{log}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).is_empty(),
        "the summary"
    );
    let out = reqsync(&world, &["-q", "-v", "run"]);
    assert_eq!(out.status.code(), Some(2), "-q and -v conflict");
}

/// A new user's first sync from the README: `reqsync receiver` says where it listens and how to
/// point a project at it, `init` writes such a project (`--dev` for the receiver's default
/// address) and says how to seed and run it, and that run works.
#[test]
fn the_receiver_and_init_dev_tell_a_new_user_how_to_reach_a_first_sync() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("dir");
    let bin = env!("CARGO_BIN_EXE_reqsync");
    let cmd = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .current_dir(dir.path())
            .env_remove("REQSYNC_LOG")
            .env_remove("RECEIVER_PASSWORD")
            .env_remove("RECEIVER_USERNAME")
            .output()
            .expect("run reqsync")
    };
    let out = cmd(&["init", "dev", "--dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("`reqsync receiver`"), "{said}");
    assert!(
        said.contains("reqsync seed --db sqlite://dev/clinic.db --kcmo"),
        "{said}"
    );
    let config = std::fs::read_to_string(dir.path().join("dev/reqsync.toml")).expect("config");
    assert!(
        config.contains("url = \"http://127.0.0.1:3000\""),
        "{config}"
    );
    let out = cmd(&[
        "init",
        "other",
        "--dev",
        "--reqcheck-url",
        "https://x.example",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--dev and --reqcheck-url conflict"
    );

    // A receiver on a free port says where it is and what a run there needs.
    let mut receiver = Command::new(bin)
        .args(["receiver", "--listen", "127.0.0.1:0", "--db", "received.db"])
        .current_dir(dir.path())
        .env_remove("RECEIVER_PASSWORD")
        .env_remove("RECEIVER_USERNAME")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the receiver");
    let mut lines = BufReader::new(receiver.stderr.take().expect("stderr")).lines();
    let mut heard = String::new();
    let url = loop {
        let line = lines
            .next()
            .expect("the receiver said where it listens")
            .expect("line");
        heard.push_str(&line);
        heard.push('\n');
        if let Some(rest) = line.strip_prefix("receiver listening on ") {
            break rest.split(' ').next().expect("url").to_owned();
        }
    };
    let hint = lines.next().expect("the hint").expect("line");
    assert!(
        hint.contains(&format!("--reqcheck-url {url}"))
            && hint.contains("REQCHECK_USERNAME=test REQCHECK_PASSWORD=test"),
        "{heard}{hint}"
    );
    // Done as it says: a project for that address, seeded as init says, run with that login.
    let out = cmd(&["init", "clinic", "--reqcheck-url", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = cmd(&["seed", "--db", "sqlite://clinic/clinic.db", "--kcmo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = Command::new(bin)
        .args(["run", "--config", "clinic/reqsync.toml"])
        .current_dir(dir.path())
        .env("REQCHECK_USERNAME", "test")
        .env("REQCHECK_PASSWORD", "test")
        .output()
        .expect("run");
    let _ = receiver.kill();
    let _ = receiver.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_passes_on_the_default_project_without_contacting_reqcheck() {
    let world = World::kcmo().await;
    let out = reqsync(&world, &["check", "--reqcheck-url-is-not-needed"]);
    assert_eq!(out.status.code(), Some(2), "unknown flags are usage errors");
    let out = reqsync(&world, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("patients: ok") && stdout.contains("vaccine-doses: ok"),
        "{stdout}"
    );
    assert!(nothing_received(&world));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_column_the_module_needs_before_any_run() {
    let world = World::kcmo().await;
    std::fs::write(
        world.path("queries/vaccine_doses.sql"),
        "SELECT im_id, patno, cvx, admin_date, history, updated_at FROM imfile WHERE updated_at >= ? ORDER BY patno",
    )
    .expect("query");
    let out = reqsync(&world, &["check"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("patients: ok"), "{stdout}");
    assert!(stdout.contains("patient_patno"), "{stdout}");
    assert!(nothing_received(&world));
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_list_shows_each_jobs_module_version_and_hash() {
    let world = World::kcmo().await;
    let out = reqsync(&world, &["transform", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let sha = |file: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(world.path(file)).expect("module"),
        ))
    };
    assert_eq!(listed[0]["job"], "patients");
    assert_eq!(listed[0]["on_disk"]["module"], "patients");
    assert_eq!(
        listed[0]["on_disk"]["sha256"],
        sha("transforms/patients.wasm").as_str()
    );
    assert_eq!(listed[1]["on_disk"]["module"], "vaccine-doses");
    assert_eq!(listed[1]["on_disk"]["version"], "1.0.0");
    assert_eq!(
        listed[1]["on_disk"]["sha256"],
        sha("transforms/vaccine-doses.wasm").as_str()
    );
    // No service runs this project: nothing to say about a running version.
    assert!(listed[0]["running"].is_null(), "{listed}");
}

/// `reqsync demo`, the README's first command, end to end: both syncs, the receiver's summary,
/// and an audit trail of both runs whose chain is intact.
#[test]
fn the_demo_syncs_twice_and_leaves_an_intact_audit_trail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["demo", "--synthetic", "20", "--dir"])
        .arg(&demo)
        .env_remove("REQSYNC_LOG")
        .output()
        .expect("run reqsync demo");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("run 2 complete"), "{stdout}");
    assert!(stdout.contains("chain intact"), "{stdout}");
    let entries = reqsync_runtime::audit::read_entries(&demo.join(".reqsync/audit.jsonl"))
        .expect("an intact audit trail");
    let finished = entries
        .iter()
        .filter(|e| e["event"] == "run_finished")
        .count();
    assert_eq!(finished, 2, "{entries:?}");
}

//! `reqsync status`: what it says and which exit code it gives before any run, after a
//! complete one, a failed one, a recovery, an old one and a run that died — the answers a
//! monitoring script or a Task Scheduler condition acts on.

use std::process::Output;

use reqsync_runtime::ledger::{JobStart, Ledger, QuarantineFilter, RunKind, RunLock};
use serde_json::Value;

use crate::support::{World, reqsync};

const STATUS_FAILED: i32 = 11;
const STATUS_STALE: i32 = 12;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_json(world: &World, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(extra);
    let out = reqsync(world, &args);
    let (stdout, stderr) = text(&out);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{stdout}\n{stderr}"));
    (out.status.code(), json)
}

fn problems(json: &Value, job: usize) -> Vec<String> {
    json["status"]["jobs"][job]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["problem"].as_str().expect("problem").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_follows_the_runs_and_its_exit_code_says_who_must_act() {
    let world = World::kcmo().await;
    world.edit_config("[reqcheck]", "[reqcheck]\nretry_attempts = 1");

    // Nothing ran yet: every job has never completed.
    let out = reqsync(&world, &["status"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(STATUS_STALE), "{stdout}{stderr}");
    assert!(stdout.contains("no runs recorded yet"), "{stdout}");
    assert!(stdout.contains("last complete  never"), "{stdout}");
    assert!(stdout.contains("2 of 2 job(s) need attention"), "{stdout}");

    // A complete run: healthy, with its counts and the quarantine the ledger holds.
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let (code, json) = status_json(&world, &[]);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["healthy"], true);
    let ledger = Ledger::open_existing(&world.path(".reqsync/state"))
        .expect("ledger")
        .expect("a ledger after a run");
    let last = ledger.recent_runs(1, false).expect("runs").remove(0);
    for (i, job) in last.jobs.iter().enumerate() {
        let shown = &json["status"]["jobs"][i];
        assert_eq!(shown["job"], job.job.as_str());
        assert_eq!(shown["last_run"]["run_id"], last.id);
        assert_eq!(shown["last_run"]["status"], "complete");
        assert_eq!(shown["last_run"]["sent"], job.sent);
        assert_eq!(shown["last_run"]["rejected"], job.rejected);
        assert_eq!(shown["last_complete"]["run_id"], last.id);
        assert_eq!(shown["module"]["used_by_last_run"], true);
        let open = ledger
            .quarantine(&QuarantineFilter {
                job: Some(job.job.clone()),
                ..QuarantineFilter::default()
            })
            .expect("quarantine")
            .len();
        assert_eq!(shown["open_quarantine"], open);
    }
    let out = reqsync(&world, &["status"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("all 2 job(s) ok"), "{stdout}");
    assert!(stdout.contains("not scheduled in the config"), "{stdout}");

    // Older than the allowed age: stale, and the flag overrides the config.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (code, json) = status_json(&world, &["--max-age", "1s"]);
    assert_eq!(code, Some(STATUS_STALE), "{json:#}");
    assert_eq!(problems(&json, 0), ["stale"]);
    world.edit_config("[source]", "[status]\nmax_age = \"1s\"\n\n[source]");
    let (code, _) = status_json(&world, &[]);
    assert_eq!(code, Some(STATUS_STALE));
    let (code, _) = status_json(&world, &["--max-age", "1h"]);
    assert_eq!(code, Some(0));
    world.edit_config("max_age = \"1s\"", "max_age = \"26h\"");

    // A run that cannot reach ReqCheck: the last run failed, with its class and run id.
    let out = reqsync(&world, &["run", "--reqcheck-url", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out).1);
    let out = reqsync(&world, &["status"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(STATUS_FAILED), "{stdout}");
    let failed_run = last.id + 1;
    assert!(
        stdout.contains(&format!(
            "the last run (run {failed_run}) ended failed (delivery error)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("last complete "), "{stdout}");

    // The next run completes: healthy again.
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let (code, json) = status_json(&world, &[]);
    assert_eq!(code, Some(0), "{json:#}");

    // A job the ledger shows `running`: fine while a run holds the lock, interrupted once no
    // process does (the process died).
    let run = ledger
        .begin_run(RunKind::Sync, chrono::Utc::now())
        .expect("begin run");
    ledger
        .begin_job(
            run,
            &JobStart {
                job: "patients",
                window_start: chrono::Utc::now().naive_utc(),
                window_basis: "heartbeat",
                module_sha256: "m",
                query_sha256: "q",
                template_sha256: "t",
            },
        )
        .expect("begin job");
    let lock = RunLock::acquire(&world.path(".reqsync/state")).expect("lock");
    let (code, json) = status_json(&world, &[]);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["status"]["jobs"][0]["running_now"], true);
    drop(lock);
    let (code, json) = status_json(&world, &[]);
    assert_eq!(code, Some(STATUS_FAILED), "{json:#}");
    assert_eq!(
        json["status"]["jobs"][0]["problems"][0]["status"],
        "interrupted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_refuses_a_bad_max_age_naming_the_key() {
    let world = World::kcmo().await;
    world.edit_config("[source]", "[status]\nmax_age = \"soon\"\n\n[source]");
    let out = reqsync(&world, &["status"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("status.max_age"), "{stderr}");
}

//! What a run does at the same time. The dose query starts while the patients are sent. With
//! `[reqcheck] requests_in_flight`, requests overlap, except a patient request that repeats a
//! patient of an earlier one, and a failure among requests in flight leaves every answer
//! recorded and nothing lost: read from the run ledger, which stamps each request as it leaves
//! and as its answer arrives. The receiver holds requests for a while (`delay`) so that what
//! may overlap certainly does.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use reqsync_runtime::config::Config;
use reqsync_runtime::ledger::RequestRecord;
use reqsync_runtime::pipeline::{FailureClass, RunOptions};
use reqsync_seeder::SeedOptions;

use crate::support::{PASSWORD, USER, World, client_for, last_run, requests, run_through};
use crate::sync::assert_receiver_equals_corpus;

fn kcmo() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    }
}

/// Small batches, so that the 21 KCMO patients and their 177 doses make many requests.
fn config(world: &World, in_flight: usize) -> Config {
    let mut config = world.config();
    for job in &mut config.jobs {
        job.batch_size = 10;
    }
    config.reqcheck.requests_in_flight = in_flight;
    config.reqcheck.retry.max_attempts = 1;
    config
}

async fn run(world: &World, in_flight: usize) -> Result<(), reqsync_runtime::pipeline::RunError> {
    let config = config(world, in_flight);
    let client = client_for(&config, PASSWORD).expect("client");
    run_through(config, client, RunOptions::default())
        .await
        .map(drop)
}

/// The last run in the ledger, with its requests.
/// Whether request `b` left before request `a`'s answer arrived.
fn overlaps(a: &RequestRecord, b: &RequestRecord) -> bool {
    let answered = a.answered_at.as_deref().expect("answered");
    b.sent_at.as_str() < answered
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_overlap_two_at_a_time() {
    let world = World::with_faults(kcmo(), &["*:1..=delay=150ms"]).await;
    run(&world, 2).await.expect("the run succeeds");
    assert_receiver_equals_corpus(&world.dump(), "kcmo");

    let ledger_run = last_run(&world);
    for job in ["patients", "vaccine-doses"] {
        let sent = requests(&ledger_run, job);
        assert!(sent.len() >= 3, "{job}: {sent:?}");
        let overlapping = sent.windows(2).filter(|p| overlaps(&p[0], &p[1])).count();
        assert!(overlapping > 0, "no {job} requests overlapped: {sent:?}");
        // Never a third: request n + 2 waits for request n's answer.
        for triple in sent.windows(3) {
            assert!(
                !overlaps(&triple[0], &triple[2]),
                "three in flight: {triple:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_request_repeating_an_earlier_patient_waits_for_every_earlier_answer() {
    let world = World::with_faults(kcmo(), &["patient_data:1..=delay=150ms"]).await;
    // Every patient twice: rows 1-21, then 1-21 again. In requests of 10, the third request
    // and every later one hold a patient an earlier request held: ReqCheck must get them in
    // the source's order, so none may overtake an earlier request.
    let query = world.path("queries/patients.sql");
    let sql = std::fs::read_to_string(&query).expect("query");
    std::fs::write(
        &query,
        format!("SELECT * FROM (\n{sql}\n) UNION ALL SELECT * FROM (\n{sql}\n)\n"),
    )
    .expect("write query");
    run(&world, 2).await.expect("the run succeeds");
    assert_receiver_equals_corpus(&world.dump(), "kcmo");

    let ledger_run = last_run(&world);
    let sent = requests(&ledger_run, "patients");
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert!(
        overlaps(&sent[0], &sent[1]),
        "the first two share no patient: {sent:?}"
    );
    for (i, later) in sent.iter().enumerate().skip(2) {
        for earlier in &sent[..i] {
            assert!(
                !overlaps(earlier, later),
                "request {} overtook {}: {sent:?}",
                later.seq,
                earlier.seq
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_in_flight_sends_doses_one_at_a_time() {
    let world = World::with_faults(kcmo(), &["vaccine_dose_data:1..=delay=50ms"]).await;
    run(&world, 1).await.expect("the run succeeds");
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
    let ledger_run = last_run(&world);
    for pair in requests(&ledger_run, "vaccine-doses").windows(2) {
        assert!(!overlaps(&pair[0], &pair[1]), "doses overlap: {pair:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dose_request_failing_beside_another_in_flight_leaves_no_answer_unrecorded() {
    // Dose requests 1 and 2 leave together. The first to arrive is answered after 300 ms; the
    // second, and a third if one leaves, are held past the client's 600 ms timeout. Whichever
    // arrives first, a request fails while another is in flight or answered behind it: that
    // other one's answer must reach the ledger and the report before the job stops.
    let world = World::with_faults(
        kcmo(),
        &[
            "vaccine_dose_data:1=delay=300ms",
            "vaccine_dose_data:2=delay=5s",
            "vaccine_dose_data:3=delay=5s",
        ],
    )
    .await;
    let mut config = config(&world, 2);
    config.reqcheck.timeout = Duration::from_millis(600);
    let client = client_for(&config, PASSWORD).expect("client");
    let error = run_through(config.clone(), client, RunOptions::default())
        .await
        .expect_err("the run fails");
    assert_eq!(error.class(), FailureClass::Delivery, "{error}");

    let ledger_run = last_run(&world);
    let doses = requests(&ledger_run, "vaccine-doses");
    assert!(doses.iter().any(|r| r.status == "failed"), "{doses:?}");
    assert!(
        doses
            .iter()
            .all(|r| r.status != "sending" && r.answered_at.is_some()),
        "a request was left in doubt: {doses:?}"
    );
    assert!(
        doses.len() <= 3,
        "requests left after the failure: {doses:?}"
    );
    assert_eq!(
        world.receiver.requests().vaccine_dose_data as usize,
        doses.len()
    );
    // The run's report lists every answered request, in order.
    let report_file = ledger_run.report_file.as_deref().expect("a report file");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(report_file).expect("report")).expect("json");
    let reported: Vec<i64> = report["jobs"][1]["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| r["seq"].as_i64().expect("seq"))
        .collect();
    let succeeded: Vec<i64> = doses
        .iter()
        .filter(|r| r.status == "success")
        .map(|r| r.seq)
        .collect();
    assert_eq!(reported, succeeded);

    // The dose job's window was held, so the next run sends what the failed one did not (its
    // first request may be the 3rd to arrive, held 5 s: the timeout is back to normal).
    let config = self::config(&world, 2);
    let client = client_for(&config, PASSWORD).expect("client");
    run_through(config, client, RunOptions::default())
        .await
        .expect("the second run succeeds");
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_waits_for_the_requests_in_flight_and_sends_no_more() {
    let world = World::with_faults(kcmo(), &["vaccine_dose_data:1..=delay=200ms"]).await;
    let config = config(&world, 2);
    let client = client_for(&config, PASSWORD).expect("client");
    let cancel = CancellationToken::new();
    let options = RunOptions {
        cancel: Some(cancel.clone()),
        ..RunOptions::default()
    };
    let run = tokio::spawn(run_through(config, client, options));
    // Cancel once ReqCheck holds two dose requests.
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.receiver.requests().vaccine_dose_data < 2 {
        assert!(Instant::now() < deadline, "the dose requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    let error = run.await.expect("run task").expect_err("abandoned");
    assert_eq!(error.class(), FailureClass::Abandoned, "{error}");

    let ledger_run = last_run(&world);
    let doses = requests(&ledger_run, "vaccine-doses");
    let statuses: Vec<&str> = doses.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["success", "success"], "{doses:?}");
    assert_eq!(world.receiver.requests().vaccine_dose_data, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dose_query_starts_before_the_patients_job_finishes() {
    let world = World::with_faults(kcmo(), &["patient_data:1..=delay=200ms"]).await;
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env("REQSYNC_LOG", "warn,reqsync=debug")
        .args(["--log-json", "run", "--config", "reqsync.toml"])
        .output()
        .expect("run reqsync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let position = |what: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .position(what)
            .unwrap_or_else(|| panic!("missing event in {stderr}"))
    };
    let field = |e: &Value, name: &str| e["fields"][name].as_str().unwrap_or_default().to_string();
    let dose_query = position(&|e| {
        field(e, "message") == "query started" && field(e, "query").ends_with("vaccine_doses.sql")
    });
    let patients_query = position(&|e| {
        field(e, "message") == "query started" && field(e, "query").ends_with("patients.sql")
    });
    let patients_done =
        position(&|e| field(e, "message") == "job finished" && field(e, "job") == "patients");
    assert!(
        patients_query < dose_query && dose_query < patients_done,
        "patients query {patients_query}, dose query {dose_query}, patients done {patients_done}"
    );
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

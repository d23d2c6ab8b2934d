//! Delivery when ReqCheck misbehaves: the client's retries against the receiver's fault plan
//! (`reqsync receiver --fault`), over real sockets. The retry waits are shrunk to milliseconds
//! through the policy; `Retry-After` waits are real seconds.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqsync_receiver::RequestCounts;
use reqsync_runtime::config::Config;
use reqsync_runtime::pipeline::{FailureClass, RunError, RunOptions, RunReport};
use reqsync_runtime::reqcheck::client::ClientOptions;
use reqsync_runtime::reqcheck::{ClientError, Credentials, ReqCheckClient, RetryPolicy, Secret};
use reqsync_seeder::SeedOptions;
use tokio_util::sync::CancellationToken;

use crate::support::{
    PASSWORD, USER, World, client_for, last_run, requests as ledger_requests, run_through,
};
use crate::sync::assert_receiver_equals_corpus;

fn kcmo() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    }
}

/// Backoff in milliseconds, so that tests retrying a few times stay fast.
pub fn fast(mut retry: RetryPolicy) -> RetryPolicy {
    retry.initial_delay = Duration::from_millis(20);
    retry.max_delay = Duration::from_millis(100);
    retry
}

/// The world's config with the fast backoff (and whatever the config file says otherwise).
pub fn config(world: &World) -> Config {
    let mut config = world.config();
    config.reqcheck.retry = fast(config.reqcheck.retry);
    config
}

pub fn client(config: &Config, password: &str) -> ReqCheckClient {
    client_for(config, password)
        .expect("client")
        .with_jitter_seed(7)
}

async fn run(world: &World) -> Result<RunReport, RunError> {
    let config = config(world);
    let client = client(&config, PASSWORD);
    run_through(config, client, RunOptions::default()).await
}

/// Requests the run made to `endpoint` (each answered with success in the end).
fn requests(report: &RunReport, endpoint: &str) -> u32 {
    report
        .jobs
        .iter()
        .filter(|j| j.endpoint.trim_start_matches('/') == endpoint)
        .map(|j| j.requests.len() as u32)
        .sum()
}

pub fn delivery_error(result: Result<RunReport, RunError>) -> ClientError {
    match result {
        Err(RunError::Delivery(e)) => e,
        Err(other) => panic!("expected a delivery error, got {other}"),
        Ok(_) => panic!("expected the run to fail"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_503s_are_retried_and_the_receiver_ends_up_holding_everything() {
    let world = World::with_faults(kcmo(), &["patient_data:1=503", "patient_data:2=503"]).await;
    let report = run(&world).await.expect("the run succeeds after two 503s");
    let dump = world.dump();
    assert_receiver_equals_corpus(&dump, "kcmo");
    let patient_requests = requests(&report, "patient_data");
    assert!(patient_requests >= 1);
    let seen = world.receiver.requests();
    assert_eq!(seen.patient_data, patient_requests + 2, "{seen:?}");
    assert_eq!(
        seen.vaccine_dose_data,
        requests(&report, "vaccine_dose_data")
    );
    // A 503 stores nothing: one import per successful request.
    assert_eq!(
        dump.data_imports.len() as u32,
        patient_requests + seen.vaccine_dose_data
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_in_seconds_is_honoured() {
    let world = World::with_faults(kcmo(), &["heartbeat:1=429+retry-after=1"]).await;
    let client = client(&config(&world), PASSWORD);
    let started = Instant::now();
    client
        .heartbeat()
        .await
        .expect("the second heartbeat answers");
    let waited = started.elapsed();
    // The fast backoff alone would have retried within 20 ms.
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(world.receiver.requests().heartbeat, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_as_an_http_date_is_honoured() {
    // An HTTP-date has whole seconds: "2 s from now" is between 1 and 2 s away.
    let world = World::with_faults(kcmo(), &["heartbeat:1=503+retry-after-date=2"]).await;
    let client = client(&config(&world), PASSWORD);
    let started = Instant::now();
    client
        .heartbeat()
        .await
        .expect("the second heartbeat answers");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert_eq!(world.receiver.requests().heartbeat, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_past_retry_max_time_gives_up_at_once() {
    let world = World::with_faults(kcmo(), &["heartbeat:1..=503+retry-after=3600"]).await;
    let client = client(&config(&world), PASSWORD);
    let started = Instant::now();
    let error = client.heartbeat().await.expect_err("must give up");
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = error.to_string();
    assert!(
        message.starts_with("gave up after 1 attempt in ") && message.contains("retry_max_time"),
        "{message}"
    );
    assert_eq!(world.receiver.requests().heartbeat, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_400_is_not_retried() {
    let world = World::with_faults(kcmo(), &["patient_data:1=400"]).await;
    let error = delivery_error(run(&world).await);
    assert!(
        matches!(error, ClientError::Rejected { status: 400, .. }),
        "{error}"
    );
    assert_eq!(world.receiver.requests().patient_data, 1);
    assert!(world.dump().data_imports.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_one_attempt_reported_as_a_credentials_problem() {
    let world = World::new(kcmo()).await;
    let config = config(&world);
    let client = client(&config, "wrong-password");
    let error = delivery_error(run_through(config, client, RunOptions::default()).await);
    assert!(matches!(error, ClientError::Unauthorized { .. }), "{error}");
    assert!(error.to_string().contains("REQCHECK_PASSWORD"), "{error}");
    assert!(!error.to_string().contains("wrong-password"));
    assert_eq!(
        world.receiver.requests(),
        RequestCounts {
            unauthorized: 1,
            ..RequestCounts::default()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_without_an_answer_is_retried() {
    let world = World::with_faults(
        kcmo(),
        &[
            "heartbeat:1=reset",
            "patient_data:1=reset",
            "vaccine_dose_data:1=reset",
        ],
    )
    .await;
    let report = run(&world)
        .await
        .expect("the run succeeds after the resets");
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
    let seen = world.receiver.requests();
    assert_eq!(seen.heartbeat, 2);
    assert_eq!(seen.patient_data, requests(&report, "patient_data") + 1);
    assert_eq!(
        seen.vaccine_dose_data,
        requests(&report, "vaccine_dose_data") + 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_stored_before_a_500_is_safely_sent_again() {
    let world = World::with_faults(
        kcmo(),
        &[
            "patient_data:1=store-then-500",
            "vaccine_dose_data:1=store-then-500",
        ],
    )
    .await;
    let report = run(&world).await.expect("the run succeeds after the 500s");
    let dump = world.dump();
    // Each failed request was stored and then stored again: patients upsert, and a dose
    // request replaces the patient's history, so the receiver holds the source exactly once.
    assert_receiver_equals_corpus(&dump, "kcmo");
    let sent = requests(&report, "patient_data") + requests(&report, "vaccine_dose_data");
    assert_eq!(dump.data_imports.len() as u32, sent + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_request_is_retried() {
    let world = World::with_faults(kcmo(), &["heartbeat:1=delay=3s"]).await;
    let config = config(&world);
    let credentials = Credentials {
        username: USER.into(),
        password: Secret::new(PASSWORD),
        origin: None,
    };
    let options = ClientOptions {
        timeout: Duration::from_millis(500),
        retry: config.reqcheck.retry.clone(),
        ..ClientOptions::default()
    };
    let client = ReqCheckClient::new(&config.reqcheck.url, credentials, &options).expect("client");
    let started = Instant::now();
    client
        .heartbeat()
        .await
        .expect("the second heartbeat answers");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no waiting out the delay"
    );
    assert_eq!(world.receiver.requests().heartbeat, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_not_retried() {
    let world = World::with_tls(kcmo()).await;
    // No CA configured: the receiver's test certificate is unknown, and waiting cannot fix it.
    let error = client(&config(&world), PASSWORD)
        .heartbeat()
        .await
        .expect_err("the certificate is refused");
    assert!(matches!(error, ClientError::Tls { .. }), "{error}");
    assert!(error.to_string().contains("certificate"), "{error}");
    assert!(error.to_string().contains("ca_file"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_503_gives_up_after_retry_attempts_with_the_count_and_cause() {
    let world = World::with_faults(kcmo(), &["patient_data:1..=503"]).await;
    world.edit_config("[reqcheck]\n", "[reqcheck]\nretry_attempts = 3\n");
    assert_eq!(config(&world).reqcheck.retry.max_attempts, 3);
    let error = delivery_error(run(&world).await);
    let message = error.to_string();
    assert!(
        message.starts_with("gave up after 3 attempts in ")
            && message.contains("ReqCheck failed on /patient_data with a server error (503)"),
        "{message}"
    );
    assert!(
        matches!(
            error,
            ClientError::GaveUp {
                attempts: 3,
                next_wait: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(matches!(
        error.last_cause(),
        ClientError::Server { status: 503, .. }
    ));
    assert_eq!(world.receiver.requests().patient_data, 3);
    assert!(world.dump().data_imports.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_host_other_than_loopback_needs_the_opt_in() {
    let credentials = || Credentials {
        username: USER.into(),
        password: Secret::new(PASSWORD),
        origin: None,
    };
    // Nothing is sent: the client refuses (or accepts) the URL when it is built.
    let refused = ReqCheckClient::new("http://192.0.2.1", credentials(), &ClientOptions::default())
        .expect_err("plain http to a remote host");
    assert!(
        matches!(refused, ClientError::InsecureHttp { .. }),
        "{refused}"
    );
    let message = refused.to_string();
    assert!(
        message.contains("https://") && message.contains("allow_insecure_http = true"),
        "{message}"
    );
    for url in [
        "http://reqcheck.example.org",
        "http://127.0.0.1.example.org",
        "http://[2001:db8::1]:3000",
    ] {
        assert!(
            ReqCheckClient::new(url, credentials(), &ClientOptions::default()).is_err(),
            "{url}"
        );
    }
    let allowed = ClientOptions {
        allow_insecure_http: true,
        ..ClientOptions::default()
    };
    ReqCheckClient::new("http://192.0.2.1", credentials(), &allowed).expect("opted in");
    for url in [
        "http://localhost:3000",
        "http://LOCALHOST",
        "http://127.0.0.1:3000",
        "http://127.1.2.3",
        "http://[::1]:3000",
        "https://192.0.2.1",
    ] {
        ReqCheckClient::new(url, credentials(), &ClientOptions::default())
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    // The same through the config file, as `reqsync run` reads it.
    let world = World::new(kcmo()).await;
    let local = world.receiver.base_url();
    world.edit_config(&local, "http://192.0.2.1");
    let refused = client_for(&world.config(), PASSWORD).expect_err("refused from the config");
    assert!(matches!(refused, ClientError::InsecureHttp { .. }));
    world.edit_config("[reqcheck]\n", "[reqcheck]\nallow_insecure_http = true\n");
    client_for(&world.config(), PASSWORD).expect("allowed by the config");
}

#[tokio::test(flavor = "multi_thread")]
async fn reqsync_run_refuses_plain_http_to_a_remote_host_before_sending_anything() {
    let world = World::new(kcmo()).await;
    // 0.0.0.0 is not loopback, so the client must refuse it; were the check ever broken, the
    // connection would still go to this machine (Linux routes 0.0.0.0 to itself), never out.
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["run", "--reqcheck-url", "http://0.0.0.0:9"])
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env_remove("REQSYNC_LOG")
        .output()
        .expect("run reqsync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("allow_insecure_http"), "{stderr}");
}

#[test]
fn a_bad_fault_spec_is_a_usage_error_naming_the_problem() {
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["receiver", "--fault", "patients:1=503"])
        .env_remove("REQSYNC_LOG")
        .output()
        .expect("run reqsync receiver");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--fault") && stderr.contains("unknown endpoint `patients`"),
        "{stderr}"
    );
}

/// Kills the spawned receiver however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_receiver_binary_logs_its_fault_plan_and_applies_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_reqsync"))
            .args([
                "--log-json",
                "receiver",
                "--listen",
                "127.0.0.1:0",
                "--db",
                "receiver.db",
                "--fault",
                "heartbeat:1=503+retry-after=1",
                "--fault",
                "patient_data:1..=400",
            ])
            .current_dir(dir.path())
            .env("RECEIVER_USERNAME", USER)
            .env("RECEIVER_PASSWORD", PASSWORD)
            .env_remove("REQSYNC_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn reqsync receiver"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    // The log is read on a thread of its own (reading blocks), to its end: a reader that
    // stopped after the two lines it wants would close the pipe under a receiver still
    // writing its usage note, and a receiver whose stderr is gone ends itself quietly.
    let (found, found_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut addr = None;
        let mut plan = None;
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let fields = &event["fields"];
            match fields["event"].as_str() {
                Some("receiver_listening") => addr = fields["addr"].as_str().map(String::from),
                Some("faults_planned") => plan = fields["plan"].as_str().map(String::from),
                _ => {}
            }
            if addr.is_some()
                && plan.is_some()
                && let Some(found) = found.take()
            {
                let _ = found.send((addr.clone(), plan.clone()));
            }
        }
        if let Some(found) = found {
            let _ = found.send((addr, plan));
        }
    });
    let (addr, plan) = tokio::task::spawn_blocking(move || found_rx.recv())
        .await
        .expect("log reader")
        .expect("the log reader ends only after sending");
    let addr = addr.expect("the receiver logs its address");
    assert_eq!(
        plan.as_deref(),
        Some("heartbeat:1=503+retry-after=1, patient_data:1..=400")
    );
    let credentials = Credentials {
        username: USER.into(),
        password: Secret::new(PASSWORD),
        origin: None,
    };
    let options = ClientOptions {
        retry: fast(RetryPolicy::default()),
        ..ClientOptions::default()
    };
    let client =
        ReqCheckClient::new(&format!("http://{addr}"), credentials, &options).expect("client");
    let started = Instant::now();
    client.heartbeat().await.expect("answers after the 503");
    assert!(started.elapsed() >= Duration::from_secs(1));
    let error = client
        .import("/patient_data", b"{\"patient_data\":[]}".to_vec())
        .await
        .expect_err("400 by plan");
    assert!(
        matches!(error, ClientError::Rejected { status: 400, .. }),
        "{error}"
    );
}

/// A service shutting down while a request waits to be retried stops at once, instead of
/// waiting out the backoff (here a `Retry-After` of five minutes), and the request it gave up
/// on is recorded as failed, so the next run sends it again.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_stops_waiting_to_retry_and_records_the_request_failed() {
    let world = World::with_faults(kcmo(), &["patient_data:1=503+retry-after=300"]).await;
    let config = config(&world);
    let client = client(&config, PASSWORD);
    let cancel = CancellationToken::new();
    let options = RunOptions {
        cancel: Some(cancel.clone()),
        ..RunOptions::default()
    };
    let run = tokio::spawn(run_through(config, client, options));
    // Once the 503 is sent, the client is waiting for its Retry-After.
    let deadline = Instant::now() + Duration::from_secs(120);
    while world.receiver.requests().patient_data == 0 {
        assert!(Instant::now() < deadline, "no patient request arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    let error = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops without waiting out the Retry-After")
        .expect("join")
        .expect_err("the run is abandoned");
    assert_eq!(error.class(), FailureClass::Abandoned, "{error}");

    let run = last_run(&world);
    let patients = ledger_requests(&run, "patients");
    assert!(
        patients.iter().any(|r| r.status == "failed"),
        "{patients:?}"
    );
    assert!(
        patients
            .iter()
            .all(|r| r.status != "sending" && r.answered_at.is_some()),
        "a request was left in doubt: {patients:?}"
    );
    // Patients first: no dose went out after the patients job stopped.
    assert_eq!(world.receiver.requests().vaccine_dose_data, 0);
}

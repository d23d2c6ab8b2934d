//! What a ReqCheck (or whatever answers at its address) cannot make reqsync do, over real
//! sockets against a hostile server (`hostile_reqcheck.rs`): follow a redirect with patient
//! data and the password, fill memory with an endless answer, or turn a stalled answer into a
//! failure that is not retried; and a ReqCheck URL with credentials in it is refused before it
//! can be written anywhere.

use std::path::Path;
use std::time::{Duration, Instant};

use reqsync_runtime::config::Config;
use reqsync_runtime::ledger::RunStatus;
use reqsync_runtime::pipeline::RunOptions;
use reqsync_runtime::reqcheck::ClientError;
use reqsync_runtime::reqcheck::client::MAX_ANSWER_BYTES;
use reqsync_seeder::SeedOptions;

use crate::delivery_faults::{self, delivery_error};
use crate::hostile_reqcheck::{Hostile, Reply, Seen};
use crate::support::{PASSWORD, World, client_for, last_run, reqsync, run_through, testdata};

fn kcmo() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    }
}

/// The world's config (fast retries) sending to `url`, one request at a time, so that "nothing
/// after the failed request" is exact.
fn config_for(world: &World, url: &str) -> Config {
    let mut config = delivery_faults::config(world);
    config.reqcheck.url = url.to_string();
    config.reqcheck.requests_in_flight = 1;
    config
}

/// A well-behaved ReqCheck at every endpoint but `endpoint`, which answers `reply(attempt)`.
fn hostile_at(
    endpoint: &'static str,
    reply: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    move |seen, nth| match seen.path.as_str() {
        p if p == endpoint => reply(nth),
        "/heartbeat" => Reply::heartbeat(),
        _ => Reply::imported(nth),
    }
}

/// Points the project's config file (what a spawned `reqsync` reads) at `url`.
fn point_config_file_at(world: &World, url: &str) {
    world.share_module_cache();
    world.edit_config(
        &format!("url = \"{}\"", world.receiver.base_url()),
        &format!("url = \"{url}\""),
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `reqsync -vv ARGS…` with every reqsync target at trace level, as in the PHI sweep.
fn reqsync_verbose(world: &World, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["-vv"];
    all.extend_from_slice(args);
    let out = reqsync(world, &all);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Every file under `dir` (the state folder: ledger, its journal, run reports, audit trail),
/// searched byte for byte.
pub fn assert_no_file_holds(dir: &Path, needle: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_no_file_holds(&path, needle);
        } else {
            let bytes = std::fs::read(&path).expect("read state file");
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "`{needle}` was written into {}",
                path.display()
            );
        }
    }
}

// ---- Redirects ----------------------------------------------------------------------------

const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

/// Where the hostile server redirects to: another server, with a user part, a path and a query
/// that must never appear in a message.
fn stolen(elsewhere: &Hostile, path: &str) -> String {
    let authority = elsewhere.authority();
    let scheme = elsewhere
        .base_url()
        .split("://")
        .next()
        .unwrap_or("http")
        .to_string();
    format!("{scheme}://thief:pw0wned@{authority}{path}/stolen?token=t0ken")
}

/// The redirect was reported naming the status and where it pointed, not followed, not retried,
/// and nothing was sent after it; the run is recorded as failed.
fn assert_refused_redirect(
    world: &World,
    error: &ClientError,
    status: u16,
    reqcheck: &Hostile,
    elsewhere: &Hostile,
    endpoint: &str,
) {
    let case = format!("{status} on {endpoint}");
    assert!(
        matches!(error, ClientError::Redirected { status: s, .. } if *s == status),
        "{case}: {error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("({status})")),
        "{case}: {message}"
    );
    assert!(
        message.contains(&elsewhere.authority()),
        "{case}: {message}"
    );
    assert!(message.contains("[reqcheck] url"), "{case}: {message}");
    for secret in ["stolen", "t0ken", "thief", "pw0wned"] {
        assert!(!message.contains(secret), "{case}: {message}");
    }
    assert_eq!(
        elsewhere.connections(),
        0,
        "{case}: the redirect was followed"
    );
    assert_eq!(reqcheck.count(endpoint), 1, "{case}: a 3xx was retried");
    let after = match endpoint {
        "/heartbeat" => reqcheck.count("/patient_data") + reqcheck.count("/vaccine_dose_data"),
        _ => reqcheck.count("/vaccine_dose_data"),
    };
    assert_eq!(after, 0, "{case}: a request left after the redirect");
    // The requests that did reach ReqCheck carried the credentials: the test would see them
    // leave if they did.
    assert!(reqcheck.seen().iter().all(|s| s.authorization.is_some()));
    let run = last_run(world);
    assert_eq!(run.status, RunStatus::Failed, "{case}");
    assert_eq!(run.error_class.as_deref(), Some("delivery"), "{case}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_reqcheck_is_never_followed_and_sends_nothing_further() {
    let world = World::new(kcmo()).await;
    for endpoint in ["/heartbeat", "/patient_data"] {
        for status in REDIRECTS {
            let elsewhere = Hostile::elsewhere().await;
            let location = stolen(&elsewhere, endpoint);
            let reqcheck = Hostile::start(hostile_at(endpoint, move |_| {
                Reply::redirect(status, &location)
            }))
            .await;
            let config = config_for(&world, &reqcheck.base_url());
            let client = delivery_faults::client(&config, PASSWORD);
            let error = delivery_error(run_through(config, client, RunOptions::default()).await);
            assert_refused_redirect(&world, &error, status, &reqcheck, &elsewhere, endpoint);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_https_to_plain_http_is_never_followed() {
    let world = World::new(kcmo()).await;
    for (endpoint, status) in [("/heartbeat", 307), ("/patient_data", 308)] {
        let elsewhere = Hostile::elsewhere().await;
        let location = stolen(&elsewhere, endpoint);
        assert!(location.starts_with("http://"));
        let reqcheck = Hostile::start_tls(hostile_at(endpoint, move |_| {
            Reply::redirect(status, &location)
        }))
        .await;
        assert!(reqcheck.base_url().starts_with("https://"));
        let mut config = config_for(&world, &reqcheck.base_url());
        config.reqcheck.ca_file = Some(testdata().join("ca.pem"));
        let client = delivery_faults::client(&config, PASSWORD);
        let error = delivery_error(run_through(config, client, RunOptions::default()).await);
        assert_refused_redirect(&world, &error, status, &reqcheck, &elsewhere, endpoint);
        assert!(
            error
                .to_string()
                .contains(&format!("http://{}", elsewhere.authority())),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reqsync_run_exits_6_on_a_redirect_and_follows_it_nowhere() {
    let world = World::new(kcmo()).await;
    let elsewhere = Hostile::elsewhere().await;
    let location = stolen(&elsewhere, "/patient_data");
    let reqcheck = Hostile::start(hostile_at("/patient_data", move |_| {
        Reply::redirect(307, &location)
    }))
    .await;
    point_config_file_at(&world, &reqcheck.base_url());
    world.edit_config("# requests_in_flight = 2", "requests_in_flight = 1");
    let (code, stdout, stderr) = reqsync_verbose(&world, &["run"]);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(stderr.contains("redirect (307)"), "{stderr}");
    assert!(stderr.contains(&elsewhere.authority()), "{stderr}");
    for secret in ["stolen", "t0ken", "thief", "pw0wned"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret}: {stderr}"
        );
    }
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
    assert_eq!(reqcheck.count("/patient_data"), 1, "a 3xx was retried");
    assert_eq!(reqcheck.count("/vaccine_dose_data"), 0);
    assert_eq!(last_run(&world).status, RunStatus::Failed);
}

// ---- Credentials in the ReqCheck URL ------------------------------------------------------

const URL_PASSWORD: &str = "s3cret";

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_reqcheck_url_on_the_command_line_are_refused_and_never_written() {
    let world = World::new(kcmo()).await;
    let reqcheck = Hostile::start(hostile_at("/none", |_| Reply::heartbeat())).await;
    world.share_module_cache();
    let url = format!("http://user:{URL_PASSWORD}@{}", reqcheck.authority());
    for command in [&["run"][..], &["daemon"], &["init", "fresh"]] {
        let args = [command, &["--reqcheck-url", &url]].concat();
        let (code, stdout, stderr) = reqsync_verbose(&world, &args);
        let command = command.join(" ");
        assert_eq!(code, Some(3), "{command}: {stderr}");
        assert!(stderr.contains("--reqcheck-url"), "{command}: {stderr}");
        assert!(
            stderr.contains("user name or password"),
            "{command}: {stderr}"
        );
        assert!(
            !stdout.contains(URL_PASSWORD) && !stderr.contains(URL_PASSWORD),
            "{command}: {stderr}"
        );
    }
    assert_no_file_holds(&world.path(".reqsync"), URL_PASSWORD);
    assert!(!world.path("fresh").exists(), "init wrote a project");
    assert_eq!(reqcheck.connections(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_the_config_files_reqcheck_url_are_refused_and_never_written() {
    let world = World::new(kcmo()).await;
    let reqcheck = Hostile::start(hostile_at("/none", |_| Reply::heartbeat())).await;
    let url = format!("http://user:{URL_PASSWORD}@{}", reqcheck.authority());
    let mut config = world.config();
    point_config_file_at(&world, &url);
    for command in ["run", "check"] {
        let (code, stdout, stderr) = reqsync_verbose(&world, &[command]);
        assert_eq!(code, Some(3), "{command}: {stderr}");
        assert!(stderr.contains("reqcheck.url"), "{command}: {stderr}");
        assert!(
            stderr.contains("user name or password"),
            "{command}: {stderr}"
        );
        assert!(
            !stdout.contains(URL_PASSWORD) && !stderr.contains(URL_PASSWORD),
            "{command}: {stderr}"
        );
    }
    assert_no_file_holds(&world.path(".reqsync"), URL_PASSWORD);
    assert_eq!(reqcheck.connections(), 0);
    // A program building the client itself is refused the same way.
    config.reqcheck.url = url;
    let error = client_for(&config, PASSWORD).expect_err("refused");
    assert!(matches!(error, ClientError::BadUrl { .. }), "{error}");
    assert!(error.to_string().contains("***@"), "{error}");
    assert!(!error.to_string().contains(URL_PASSWORD), "{error}");
}

// ---- Answers larger than ReqCheck ever gives ----------------------------------------------

/// Far more than the cap, yet not enough to hurt the machine if a client reads it all.
const FLOOD: usize = 64 << 20;

/// What a client that stopped at the cap can have made the server write: the cap plus what
/// the kernel's socket buffers took on both ends.
const READ_AT_MOST: usize = 24 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_heartbeat_answer_is_cut_off_at_the_cap_and_not_retried() {
    let world = World::new(kcmo()).await;
    for announced in [None, Some(1_500_000_000)] {
        let reqcheck = Hostile::start(hostile_at("/heartbeat", move |_| Reply::Flood {
            status: 200,
            announced,
            bytes: FLOOD,
        }))
        .await;
        let config = config_for(&world, &reqcheck.base_url());
        let started = Instant::now();
        let error = tokio::time::timeout(
            Duration::from_secs(20),
            delivery_faults::client(&config, PASSWORD).heartbeat(),
        )
        .await
        .expect("the client stops reading at the cap instead of waiting for the end")
        .expect_err("an endless answer is an error");
        assert!(started.elapsed() < Duration::from_secs(10), "{announced:?}");
        assert!(
            matches!(&error, ClientError::AnswerTooLarge { endpoint, limit }
                if endpoint == "/heartbeat" && *limit == MAX_ANSWER_BYTES),
            "{announced:?}: {error}"
        );
        assert!(error.to_string().contains("1024 KiB"), "{error}");
        assert_eq!(reqcheck.count("/heartbeat"), 1, "not retried");
        assert!(
            reqcheck.body_bytes_written() < READ_AT_MOST,
            "{announced:?}: the client read {} bytes",
            reqcheck.body_bytes_written()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_import_answer_fails_the_run_and_is_not_retried() {
    let world = World::new(kcmo()).await;
    let reqcheck = Hostile::start(hostile_at("/patient_data", |_| Reply::Flood {
        status: 201,
        announced: None,
        bytes: FLOOD,
    }))
    .await;
    let config = config_for(&world, &reqcheck.base_url());
    let client = delivery_faults::client(&config, PASSWORD);
    let run = run_through(config, client, RunOptions::default());
    let result = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run stops reading at the cap");
    let error = delivery_error(result);
    assert!(
        matches!(&error, ClientError::AnswerTooLarge { endpoint, .. } if endpoint == "/patient_data"),
        "{error}"
    );
    assert_eq!(reqcheck.count("/patient_data"), 1, "not retried");
    assert_eq!(reqcheck.count("/vaccine_dose_data"), 0);
    assert!(reqcheck.body_bytes_written() < READ_AT_MOST);
    assert_eq!(last_run(&world).status, RunStatus::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_rejection_body_is_not_read_past_the_cap() {
    let world = World::new(kcmo()).await;
    let reqcheck = Hostile::start(hostile_at("/heartbeat", |_| Reply::Flood {
        status: 400,
        announced: None,
        bytes: FLOOD,
    }))
    .await;
    let mut config = config_for(&world, &reqcheck.base_url());
    // Reading to the end would stall until this timeout, after the whole flood.
    config.reqcheck.timeout = Duration::from_secs(60);
    let started = Instant::now();
    let error = tokio::time::timeout(
        Duration::from_secs(30),
        delivery_faults::client(&config, PASSWORD).heartbeat(),
    )
    .await
    .expect("the client stops reading at the cap")
    .expect_err("a 400 is an error");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(&error, ClientError::Rejected { status: 400, message, .. } if message == "no reason given"),
        "{error}"
    );
    assert!(reqcheck.body_bytes_written() < READ_AT_MOST);
}

// ---- Answers that stall or break off ------------------------------------------------------

/// Headers and 10 of the heartbeat's bytes, then silence (or a closed connection).
fn cut_heartbeat(hold: bool) -> Reply {
    Reply::Cut {
        status: 200,
        body: br#"{"last_update_date":null}"#.to_vec(),
        sent: 10,
        hold,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_stalls_mid_body_is_a_timeout_and_is_retried() {
    let world = World::new(kcmo()).await;
    let mut config = delivery_faults::config(&world);
    config.reqcheck.timeout = Duration::from_millis(500);
    config.reqcheck.retry.max_attempts = 3;

    // Once: the second attempt answers.
    let reqcheck = Hostile::start(hostile_at("/heartbeat", |nth| match nth {
        1 => cut_heartbeat(true),
        _ => Reply::heartbeat(),
    }))
    .await;
    config.reqcheck.url = reqcheck.base_url();
    let heartbeat = delivery_faults::client(&config, PASSWORD).heartbeat().await;
    assert_eq!(heartbeat.expect("retried").last_update_date, None);
    assert_eq!(reqcheck.count("/heartbeat"), 2);

    // Every time: each attempt times out, and the error says so.
    let reqcheck = Hostile::start(hostile_at("/heartbeat", |_| cut_heartbeat(true))).await;
    config.reqcheck.url = reqcheck.base_url();
    let error = delivery_faults::client(&config, PASSWORD)
        .heartbeat()
        .await
        .expect_err("every attempt stalls");
    assert!(
        matches!(error, ClientError::GaveUp { attempts: 3, .. }),
        "{error}"
    );
    assert!(
        matches!(error.last_cause(), ClientError::AnswerInterrupted { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_eq!(reqcheck.count("/heartbeat"), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_answer_cut_off_mid_body_is_sent_again() {
    let world = World::new(kcmo()).await;
    let reqcheck = Hostile::start(hostile_at("/patient_data", |nth| match nth {
        1 => Reply::Cut {
            status: 201,
            body: br#"{"status":"success","data_import_id":1,"error_objects_ids":[]}"#.to_vec(),
            sent: 20,
            hold: false,
        },
        n => Reply::imported(n),
    }))
    .await;
    let config = config_for(&world, &reqcheck.base_url());
    let client = delivery_faults::client(&config, PASSWORD);
    let report = run_through(config, client, RunOptions::default())
        .await
        .expect("the run succeeds once the import is sent again");
    let patient_requests: usize = report
        .jobs
        .iter()
        .filter(|j| j.endpoint == "/patient_data")
        .map(|j| j.requests.len())
        .sum();
    assert!(patient_requests >= 1);
    assert_eq!(reqcheck.count("/patient_data"), patient_requests + 1);
    // The same body both times: what ReqCheck may have stored is stored again, no more.
    let bodies: Vec<Vec<u8>> = reqcheck
        .seen()
        .into_iter()
        .filter(|s| s.path == "/patient_data")
        .map(|s| s.body)
        .collect();
    assert_eq!(bodies[0], bodies[1]);
}

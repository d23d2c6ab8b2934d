//! `reqsync daemon`: scheduled runs against a real clinic database and receiver, `/healthz` and
//! `/metrics` over a real socket, and the real binary stopping cleanly on SIGTERM.
//! Every wait polls for a state with a generous limit; nothing asserts how long a run took.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqsync_runtime::daemon::{PipelineRunner, Service, SystemClock, http, scheduled_jobs};
use reqsync_runtime::pipeline::{Delivery, FailureClass, Pipeline, RunOptions};
use reqsync_runtime::reqcheck::client::ClientOptions;
use reqsync_runtime::reqcheck::{Credentials, ReqCheckClient, Secret};
use reqsync_runtime::source::{self, SourceUrl};
use reqsync_runtime::transform::{SandboxLimits, TransformEngine};
use reqsync_seeder::SeedOptions;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{PASSWORD, USER, World, corpus_csv};
use crate::sync::assert_receiver_equals_corpus;

/// Longest any wait below polls before the test fails: far above a KCMO sync, which takes
/// about a second once modules are compiled.
const PATIENCE: Duration = Duration::from_secs(120);

async fn kcmo() -> World {
    World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await
}

/// Gives every job the same `schedule` (what the docs recommend: one run, patients first).
pub(crate) fn schedule_all(world: &World, schedule: &str) {
    let path = world.path("reqsync.toml");
    let text = std::fs::read_to_string(&path).expect("read config");
    let text = text.replace(
        "[[jobs]]\n",
        &format!("[[jobs]]\nschedule = \"{schedule}\"\n"),
    );
    std::fs::write(&path, text).expect("write config");
}

pub(crate) fn pipeline(world: &World) -> Pipeline {
    let config = world.config();
    let url = SourceUrl::parse(&config.source_url, Some(config.base_dir())).expect("source url");
    let source = source::open(&url, config.clinic_tz).expect("source");
    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(config.module_cache().expect("module cache")),
    )
    .expect("engine");
    let credentials = Credentials {
        username: USER.into(),
        password: Secret::new(PASSWORD),
        origin: None,
    };
    let client = ReqCheckClient::new(&config.reqcheck.url, credentials, &ClientOptions::default())
        .expect("client");
    Pipeline {
        config,
        source,
        engine,
        delivery: Delivery::ReqCheck(client),
        modules: None,
    }
}

pub(crate) async fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_second_schedule_syncs_repeatedly_and_serves_health_and_metrics() {
    let world = kcmo().await;
    schedule_all(&world, "* * * * * *");
    let pipeline = pipeline(&world);
    let (jobs, unscheduled) = scheduled_jobs(&pipeline.config);
    assert_eq!(jobs.len(), 2);
    assert!(unscheduled.is_empty());
    let tz = pipeline.config.clinic_tz;
    let service = Service::new(
        jobs,
        tz,
        Arc::new(PipelineRunner::new(pipeline)),
        Arc::new(SystemClock),
    );
    let state = service.state();
    let listener = http::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        state.clone(),
        http::HttpLimits::default(),
        stop.clone(),
    ));
    let daemon = tokio::spawn(service.run(stop.clone()));

    // Two finished runs: the first full (the receiver is empty), the second incremental.
    poll("two scheduled runs", || {
        let h = state.health();
        (h.jobs["patients"].runs >= 2).then_some(())
    })
    .await;

    let http_client = reqwest::Client::new();
    let health = http_client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status(), 200);
    let health_text = health.text().await.expect("body");
    let health: Value = serde_json::from_str(&health_text).expect("JSON");
    assert_eq!(health["status"], "ok", "{health}");
    for job in ["patients", "vaccine-doses"] {
        assert_eq!(health["jobs"][job]["schedule"], "* * * * * *", "{health}");
        assert!(health["jobs"][job]["next_run"].is_string(), "{health}");
        assert_eq!(health["jobs"][job]["last_run"]["outcome"], "ok", "{health}");
    }
    let metrics = http_client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        metrics.headers()
    );
    let metrics_text = metrics.text().await.expect("body");
    for name in [
        r#"reqsync_runs_total{job="patients",outcome="ok"}"#,
        r#"reqsync_runs_total{job="vaccine-doses",outcome="ok"}"#,
        r#"reqsync_last_success_timestamp_seconds{job="patients"}"#,
        r#"reqsync_rows_read_total{job="vaccine-doses"}"#,
        r#"reqsync_rows_emitted_total{job="patients"}"#,
        r#"reqsync_rows_rejected_total{job="patients"}"#,
        r#"reqsync_records_sent_total{job="vaccine-doses"}"#,
        r#"reqsync_skipped_ticks_total{job="patients"}"#,
        "reqsync_run_duration_seconds_count",
        "reqsync_run_in_progress",
    ] {
        assert!(
            metrics_text.contains(name),
            "{name} missing:\n{metrics_text}"
        );
    }
    // The first run sent all 21 patients; later runs re-send the look-back window.
    let sent = metrics_text
        .lines()
        .find_map(|l| l.strip_prefix(r#"reqsync_records_sent_total{job="patients"} "#))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("patients sent");
    assert!(sent >= 21, "{sent}");
    // No PHI on either endpoint: no patient name or date of birth of the corpus appears.
    for row in corpus_csv("kcmo/mpfile.csv") {
        for field in ["fname", "lname", "birth_date"] {
            let value = row[field].trim();
            if value.len() >= 4 {
                assert!(
                    !health_text.contains(value) && !metrics_text.contains(value),
                    "the {field} of a patient appears on /healthz or /metrics"
                );
            }
        }
    }

    stop.cancel();
    let summary = daemon.await.expect("daemon task");
    server.await.expect("server task").expect("server");
    assert!(summary.runs >= 2, "{summary:?}");
    // Patients and doses share a schedule, so each run carried both, patients first: the
    // receiver holds exactly the source and no "Not Found" placeholder patient.
    let health = state.health();
    assert_eq!(
        health.jobs["patients"].runs,
        health.jobs["vaccine-doses"].runs
    );
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_stops_before_its_first_request() {
    let world = kcmo().await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let error = crate::support::run_with(
        world.config(),
        RunOptions {
            cancel: Some(cancel),
            ..RunOptions::default()
        },
    )
    .await
    .expect_err("abandoned");
    assert_eq!(error.class(), FailureClass::Abandoned, "{error}");
    assert!(world.dump().data_imports.is_empty());
}

/// The real binary, as a service manager starts it. Its log goes to a file (`log`), not a
/// pipe: a pipe nobody reads while the daemon runs would fill up and block it.
fn start_daemon(world: &World, listen: &str) -> Child {
    let log = std::fs::File::create(world.path("daemon.log")).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["daemon", "--listen", listen])
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env_remove("REQSYNC_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start reqsync daemon")
}

fn log(world: &World) -> String {
    std::fs::read_to_string(world.path("daemon.log")).unwrap_or_default()
}

/// Waits for the process to exit, off the async threads.
async fn wait(mut child: Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait")
}

/// A loopback port free a moment ago (the daemon binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_stops_cleanly_on_sigterm_with_exit_code_zero() {
    let world = kcmo().await;
    world.share_module_cache();
    schedule_all(&world, "* * * * * *");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = start_daemon(&world, &listen);

    // Up and scheduling once /healthz answers and a run has finished.
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(code) = child.try_wait().expect("try_wait") {
            panic!("daemon exited early ({code}): {}", log(&world));
        }
        let runs = match client.get(format!("http://{listen}/healthz")).send().await {
            Ok(r) => r.json::<Value>().await.ok(),
            Err(_) => None,
        }
        .and_then(|h| h["jobs"]["patients"]["runs"].as_u64())
        .unwrap_or(0);
        if runs >= 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "daemon never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = wait(child).await;
    let stderr = log(&world);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("shutdown requested"), "{stderr}");
    assert!(stderr.contains("daemon stopped"), "{stderr}");
    // Log fields carry plain values (a time, a list of jobs, a basis), never Rust's debug forms
    // such as `next_run=Some(2026-…)` or `jobs={"patients", …}`.
    assert!(stderr.contains("next_run=20"), "{stderr}");
    assert!(stderr.contains("jobs=patients,vaccine-doses"), "{stderr}");
    assert!(
        stderr.contains("basis=full") || stderr.contains("basis=last-complete-run"),
        "{stderr}"
    );
    for debug_form in ["Some(", "jobs={", "jobs=[", "basis=Full", "basis=Last"] {
        assert!(!stderr.contains(debug_form), "{debug_form}: {stderr}");
    }
    // Whatever the last run managed before stopping, ReqCheck never got a dose of a patient it
    // lacks (a run stops between requests, patients first).
    let dump = world.dump();
    assert!(dump.data_import_errors.is_empty());
    assert!(dump.patients.iter().all(|p| p["first_name"] != "Not Found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_any_schedule_the_daemon_refuses_to_start() {
    let world = kcmo().await;
    let status = wait(start_daemon(&world, "127.0.0.1:0")).await;
    assert_eq!(status.code(), Some(3), "{}", log(&world));
    assert!(log(&world).contains("schedule"), "{}", log(&world));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_schedule_names_its_key() {
    let world = kcmo().await;
    schedule_all(&world, "every night");
    let status = wait(start_daemon(&world, "127.0.0.1:0")).await;
    assert_eq!(status.code(), Some(3), "{}", log(&world));
    assert!(log(&world).contains("jobs[0].schedule"), "{}", log(&world));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_transform_list_show_the_active_module_and_a_refused_one_on_disk() {
    let world = kcmo().await;
    world.share_module_cache();
    schedule_all(&world, "0 0 3 * * *");
    let listen = format!("127.0.0.1:{}", free_port());
    // `transform list` finds the service where the config says it listens.
    let config_text = std::fs::read_to_string(world.path("reqsync.toml")).expect("config");
    std::fs::write(
        world.path("reqsync.toml"),
        format!("{config_text}\n[daemon]\nlisten = \"{listen}\"\n"),
    )
    .expect("config");
    let child = start_daemon(&world, &listen);
    let module = world.path("transforms/patients.wasm");
    let sha = hex::encode(sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        std::fs::read(&module).expect("module"),
    )));
    let client = reqwest::Client::new();
    let health = || async {
        match client.get(format!("http://{listen}/healthz")).send().await {
            Ok(r) => r.json::<Value>().await.ok(),
            Err(_) => None,
        }
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let first = loop {
        if let Some(h) = health().await {
            break h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no /healthz: {}",
            log(&world)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let active = &first["jobs"]["patients"]["module"];
    assert_eq!(active["name"], "patients", "{first}");
    assert_eq!(active["version"], "1.0.0", "{first}");
    assert_eq!(active["sha256"], sha.as_str(), "{first}");
    assert!(active.get("refused").is_none(), "{first}");

    // A version that is no component: refused, and both places say so.
    let broken = world.path("transforms/.patients.wasm.new");
    std::fs::write(&broken, b"\0asm not a component").expect("write");
    std::fs::rename(&broken, &module).expect("rename");
    let refused = loop {
        let h = health().await.unwrap_or_default();
        if !h["jobs"]["patients"]["module"]["refused"].is_null() {
            break h["jobs"]["patients"]["module"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused: {}",
            log(&world)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        refused["sha256"],
        sha.as_str(),
        "the old version still runs"
    );
    assert!(
        refused["refused"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a valid WebAssembly component")),
        "{refused}"
    );
    let config = world.path("reqsync.toml");
    let list = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_reqsync"))
            .args(["transform", "list", "--config"])
            .arg(config)
            .output()
            .expect("transform list")
    })
    .await
    .expect("join");
    let said = String::from_utf8_lossy(&list.stdout);
    assert!(
        said.contains(&format!("running: patients 1.0.0 sha256 {sha}")),
        "{said}"
    );
    assert!(said.contains("the file on disk was refused at"), "{said}");
    assert!(said.contains("not a valid WebAssembly component"), "{said}");
    assert_eq!(
        list.status.code(),
        Some(5),
        "the file on disk cannot be used"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(wait(child).await.code(), Some(0), "{}", log(&world));
}

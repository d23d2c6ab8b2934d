//! `[notify]` end to end: `reqsync run` and `reqsync daemon` as an operator runs them, a real
//! SMTP server (aiosmtpd, started from `tests/e2e/smtp_server.py`: STARTTLS and AUTH over a
//! socket) and real HTTP endpoints receiving the JSON, Teams and Slack shapes. Every message
//! received is swept for the clinic's patient values, and a notice that cannot be delivered
//! must leave the run's exit code as it was.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use reqsync_runtime::ledger::Ledger;
use reqsync_runtime::reqcheck::Secret;
use reqsync_runtime::secret_store::{SecretName, SecretStore, WriteOptions};
use reqsync_seeder::SeedOptions;
use serde_json::Value;

use crate::phi::Phi;
use crate::support::{World, as_the_user, testdata};

const SMTP_USER: &str = "reqsync-mailer";
const SMTP_PASSWORD: &str = "smtp-s3cret-pw";
/// Stands for the token Teams and Slack put in a webhook's path: it must never be printed.
const HOOK_TOKEN: &str = "T0KEN-d0-not-print";

fn kcmo() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    }
}

// ---- the SMTP server ----------------------------------------------------------------------

/// aiosmtpd on 127.0.0.1, with the receiver's test certificate for STARTTLS; each message it
/// accepts lands in `out` as JSON. Stopped when dropped (its stdin closes).
struct SmtpServer {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let python = std::env::var("REQSYNC_TEST_SMTP_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-tools/smtp/bin/python")
            });
        assert!(
            python.exists(),
            "no Python with aiosmtpd at {}: the e-mail tests need a real SMTP server. Run \
             ./scripts/test, or `eval \"$(./scripts/test-smtp)\"` before `cargo test`",
            python.display()
        );
        let out = tempfile::tempdir().expect("mail folder");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/smtp_server.py");
        let mut child = Command::new(python)
            // aiosmtpd warns about its own use of a deprecated attribute on every login.
            .args(["-W", "ignore::DeprecationWarning"])
            .arg(script)
            .arg(testdata().join("server.pem"))
            .arg(testdata().join("server.key"))
            .arg(SMTP_USER)
            .arg(SMTP_PASSWORD)
            .arg(out.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the SMTP server's port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"));
        SmtpServer { child, port, out }
    }

    /// The messages received so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .expect("mail folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| {
                serde_json::from_str(&std::fs::read_to_string(p).expect("mail")).expect("json")
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.child.wait_timeout_secs(5).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

trait WaitTimeout {
    fn wait_timeout_secs(&mut self, secs: u64) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout_secs(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

// ---- the webhook endpoints ----------------------------------------------------------------

/// An HTTP server taking POSTs on any path; paths starting with `flaky` answer 503 to their
/// first request.
struct Hooks {
    base: String,
    received: Arc<Mutex<Vec<(String, Value)>>>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct HookState {
    received: Arc<Mutex<Vec<(String, Value)>>>,
    flaky_calls: Arc<AtomicUsize>,
}

async fn hook(
    State(state): State<HookState>,
    UrlPath(path): UrlPath<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    if path.starts_with("flaky") && state.flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        state
            .received
            .lock()
            .expect("lock")
            .push((format!("{path} (refused)"), body));
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    state.received.lock().expect("lock").push((path, body));
    StatusCode::OK
}

impl Hooks {
    async fn start() -> Hooks {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(hook))
            .with_state(HookState {
                received: received.clone(),
                flaky_calls: Arc::new(AtomicUsize::new(0)),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hooks {
            base,
            received,
            _server: server,
        }
    }

    /// The bodies received on paths starting with `prefix`.
    fn at(&self, prefix: &str) -> Vec<Value> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p.starts_with(prefix) && !p.ends_with("(refused)"))
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn refused(&self, prefix: &str) -> usize {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p.starts_with(prefix) && p.ends_with("(refused)"))
            .count()
    }

    /// Waits (polling) until `prefix` has received `n` bodies.
    async fn wait_for(&self, prefix: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.at(prefix);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `reqsync ARGS…` in the world's folder, with extra environment variables.
fn reqsync_with(world: &World, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    command.args(args);
    as_the_user(&mut command, world);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run reqsync")
}

fn append_config(world: &World, text: &str) {
    let path = world.path("reqsync.toml");
    let mut config = std::fs::read_to_string(&path).expect("config");
    config.push_str(text);
    std::fs::write(&path, config).expect("write config");
}

fn outbox(world: &World) -> Vec<reqsync_runtime::ledger::NotificationRecord> {
    Ledger::open(&world.path(".reqsync/state"))
        .expect("ledger")
        .notifications(100)
        .expect("outbox")
}

// ---- the tests ----------------------------------------------------------------------------

/// A run failing at ReqCheck is mailed over STARTTLS with the configured login; the message
/// holds the run id, the error class, the job names and counts, and no patient value; the next
/// (complete) run sends "recovered". The exit codes are those of the runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_and_its_recovery_are_mailed_over_starttls_with_the_login() {
    let smtp = SmtpServer::start();
    // The first dose request is refused (400, not retried): the run fails with class
    // `delivery` after the patients job completed.
    let world = World::with_faults(kcmo(), &["vaccine_dose_data:1=400"]).await;
    world.share_module_cache();
    let ca = testdata().join("ca.pem");
    append_config(
        &world,
        &format!(
            "\n[notify]\n\
             [notify.email]\n\
             host = \"127.0.0.1\"\n\
             port = {}\n\
             tls = \"starttls\"\n\
             from = \"reqsync <reqsync@clinic.example>\"\n\
             to = [\"ops@clinic.example\", \"oncall@clinic.example\"]\n\
             username_env = \"E2E_SMTP_USER\"\n\
             password_env = \"E2E_SMTP_PASSWORD\"\n\
             ca_file = {:?}\n",
            smtp.port,
            ca.display().to_string()
        ),
    );
    let env = [
        ("E2E_SMTP_USER", SMTP_USER),
        ("E2E_SMTP_PASSWORD", SMTP_PASSWORD),
    ];

    let out = reqsync_with(&world, &env, &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}\n{stderr}");
    let mail = &messages[0];
    assert_eq!(mail["tls"], true, "STARTTLS before MAIL");
    assert_eq!(mail["authenticated"], true);
    assert_eq!(mail["login"], SMTP_USER);
    assert_eq!(mail["mail_from"], "reqsync@clinic.example");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@clinic.example", "oncall@clinic.example"])
    );
    assert_eq!(mail["subject"], "reqsync: run 1 failed (delivery)");
    let raw = mail["data"].as_str().expect("message");
    let data = mail["body"].as_str().expect("text");
    assert!(data.contains("Run: 1"), "{data}");
    assert!(data.contains("Error class: delivery"), "{data}");
    assert!(
        data.contains(
            "patients: complete, read 21, emitted 21, rejected 0, sent 21, acknowledged 21"
        ),
        "{data}"
    );
    assert!(data.contains("vaccine-doses: failed"), "{data}");
    let phi = Phi::of(&world);
    phi.assert_absent("the failure e-mail", data);
    phi.assert_absent("the failure e-mail as sent", raw);
    assert!(!raw.contains(SMTP_PASSWORD));
    assert!(!stderr.contains(SMTP_PASSWORD), "{stderr}");

    // The fault was for the first dose request only: this run completes, and says so.
    let out = reqsync_with(&world, &env, &["run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[1]["subject"],
        "reqsync: recovered: run 2 complete after 1 failed run"
    );
    let data = messages[1]["body"].as_str().expect("text");
    assert!(data.contains("Previous error class: delivery"), "{data}");
    phi.assert_absent("the recovery e-mail", data);
    // A third, complete, run has nothing to say.
    let out = reqsync_with(&world, &env, &["run"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(smtp.messages().len(), 2);
    assert!(outbox(&world).iter().all(|n| n.delivered));
}

/// A wrong SMTP password: the notice is not delivered, a warning says so without the password,
/// the run's exit code is unchanged, and the notice waits in the outbox for the next run.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_is_logged_and_kept_for_later_without_changing_the_exit_code() {
    let smtp = SmtpServer::start();
    let world = World::kcmo().await;
    append_config(
        &world,
        &format!(
            "\n[notify]\non = [\"run-failed\", \"recovered\"]\n\
             [notify.email]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"reqsync@clinic.example\"\n\
             to = [\"ops@clinic.example\"]\nusername_env = \"E2E_SMTP_USER\"\n\
             password_env = \"E2E_SMTP_PASSWORD\"\nca_file = {:?}\n",
            smtp.port,
            testdata().join("ca.pem").display().to_string()
        ),
    );
    // The ReqCheck password is wrong too: the run fails (class delivery, exit 6).
    let out = reqsync_with(
        &world,
        &[
            ("E2E_SMTP_USER", SMTP_USER),
            ("E2E_SMTP_PASSWORD", "not-the-password"),
            ("REQCHECK_PASSWORD", "wrong"),
        ],
        &["run"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("notification not delivered"), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert!(smtp.messages().is_empty());
    let pending = outbox(&world);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(
        !pending[0].delivered && pending[0].attempts == 3,
        "{pending:?}"
    );
    assert_eq!(pending[0].event, "run-failed");

    // Fixed: the next run (failing again the same way) delivers the waiting notice, and sends
    // no second one for the same failure.
    let out = reqsync_with(
        &world,
        &[
            ("E2E_SMTP_USER", SMTP_USER),
            ("E2E_SMTP_PASSWORD", SMTP_PASSWORD),
            ("REQCHECK_PASSWORD", "wrong"),
        ],
        &["run"],
    );
    assert_eq!(out.status.code(), Some(6));
    let messages = smtp.messages();
    let subjects: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert_eq!(subjects, ["reqsync: run 1 failed (delivery)"]);
    assert!(
        !subjects.iter().any(|s| s.contains("run 2")),
        "the same failure again is not news: {subjects:?}"
    );
    assert!(outbox(&world).iter().all(|n| n.delivered));
}

/// The webhooks: the notice in each shape (JSON, Teams, Slack), URLs from the config, the
/// environment and the secret store; an endpoint that refuses once gets it on the retry; an
/// unreachable one leaves the exit code as it was and its URL (holding a token) unprinted.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_get_the_json_teams_and_slack_shapes_and_failures_change_no_exit_code() {
    let hooks = Hooks::start().await;
    let world = World::with_faults(kcmo(), &["vaccine_dose_data:1=400"]).await;
    world.share_module_cache();
    let store = SecretStore::beside_config(world.dir.path());
    store
        .write(
            &SecretName::parse("slack-hook").expect("name"),
            &Secret::new(format!("{}/slack/{HOOK_TOKEN}", hooks.base)),
            &WriteOptions::default(),
        )
        .expect("store the Slack URL");
    let dead = format!("http://127.0.0.1:{}/dead/{HOOK_TOKEN}", closed_port());
    append_config(
        &world,
        &format!(
            "\n[notify]\n\
             [[notify.webhook]]\nurl = \"{base}/json/{HOOK_TOKEN}\"\n\
             [[notify.webhook]]\nurl_env = \"E2E_TEAMS_URL\"\nformat = \"teams\"\n\
             [[notify.webhook]]\nurl_secret = \"slack-hook\"\nformat = \"slack\"\n\
             [[notify.webhook]]\nurl = \"{base}/flaky/{HOOK_TOKEN}\"\n\
             [[notify.webhook]]\nurl = \"{dead}\"\ntimeout = \"2s\"\n",
            base = hooks.base
        ),
    );
    let teams = format!("{}/teams/{HOOK_TOKEN}", hooks.base);
    let out = reqsync_with(&world, &[("E2E_TEAMS_URL", &teams)], &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exactly what the run would exit with without notifications.
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        !stderr.contains(HOOK_TOKEN),
        "a webhook URL was printed:\n{stderr}"
    );
    assert!(
        stderr.contains("webhook 5 (json)") && stderr.contains("notification not delivered"),
        "{stderr}"
    );

    let json = hooks.at("json");
    assert_eq!(json.len(), 1, "{json:?}");
    assert_eq!(json[0]["event"], "run-failed");
    assert_eq!(json[0]["run_id"], 1);
    assert_eq!(json[0]["error_class"], "delivery");
    assert_eq!(json[0]["jobs"][0]["job"], "patients");
    assert_eq!(json[0]["jobs"][0]["acknowledged"], 21);
    assert_eq!(json[0]["jobs"][1]["job"], "vaccine-doses");
    assert_eq!(json[0]["jobs"][1]["status"], "failed");

    let teams = hooks.at("teams");
    assert_eq!(teams.len(), 1, "{teams:?}");
    assert_eq!(teams[0]["type"], "message");
    let card = &teams[0]["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(
        card["content"]["body"][0]["text"],
        "reqsync: run 1 failed (delivery)"
    );
    let facts = card["content"]["body"][1]["facts"]
        .as_array()
        .expect("facts");
    assert!(
        facts
            .iter()
            .any(|f| f["title"] == "Error class" && f["value"] == "delivery")
    );

    let slack = hooks.at("slack");
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert_eq!(slack[0]["text"], "reqsync: run 1 failed (delivery)");
    assert_eq!(slack[0]["blocks"][0]["type"], "section");
    assert!(
        slack[0]["blocks"][0]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("vaccine-doses: failed"))
    );

    // Refused once (503), delivered on the in-process retry.
    assert_eq!(hooks.refused("flaky"), 1);
    assert_eq!(hooks.at("flaky").len(), 1);

    let phi = Phi::of(&world);
    for (path, body) in hooks.received.lock().expect("lock").iter() {
        phi.assert_absent(&format!("the body sent to {path}"), &body.to_string());
    }
    let rows = outbox(&world);
    let dead_row = rows.iter().find(|r| r.channel == "webhook-5").expect("row");
    assert!(
        !dead_row.delivered && dead_row.attempts == 3,
        "{dead_row:?}"
    );
    assert!(
        !dead_row
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains(HOOK_TOKEN),
        "{dead_row:?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.channel != "webhook-5")
            .all(|r| r.delivered),
        "{rows:?}"
    );
}

/// The daemon notices "no complete run within `[status] max_age`" without any run happening, and says
/// it once per episode.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_notices_no_complete_run_once() {
    let hooks = Hooks::start().await;
    let world = World::kcmo().await;
    // A schedule that does not fire during the test: the daemon only checks.
    world.edit_config("# schedule = \"0 2 * * *\"", "schedule = \"0 0 1 1 *\"");
    append_config(
        &world,
        &format!(
            "\n[daemon]\nlisten = \"127.0.0.1:0\"\n\
             [status]\nmax_age = \"2s\"\n[notify]\n\
             [[notify.webhook]]\nurl = \"{}/stale\"\n",
            hooks.base
        ),
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    command
        .arg("daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    as_the_user(&mut command, &world);
    let mut daemon = command.spawn().expect("start the daemon");
    let got = hooks.wait_for("stale", 1, Duration::from_secs(30)).await;
    // A few more checks (one a second): still one notice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got_later = hooks.at("stale");
    let _ = daemon.kill();
    let output = daemon.wait_with_output().expect("daemon output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(got.len(), 1, "{stderr}");
    assert_eq!(got[0]["event"], "stale", "{:?}", got[0]);
    assert_eq!(got[0]["stale"]["stale_after"], "2s");
    assert!(got[0].get("run_id").is_none());
    assert_eq!(
        got_later.len(),
        1,
        "stale is sent once per episode: {got_later:?}"
    );
}

/// `reqsync notify test` reaches every channel and says which failed (exit 6).
#[tokio::test(flavor = "multi_thread")]
async fn notify_test_reaches_every_channel_and_names_the_one_that_failed() {
    let hooks = Hooks::start().await;
    let smtp = SmtpServer::start();
    let world = World::kcmo().await;
    append_config(
        &world,
        &format!(
            "\n[notify]\n[notify.email]\nhost = \"127.0.0.1\"\nport = {}\n\
             from = \"reqsync@clinic.example\"\nto = [\"ops@clinic.example\"]\n\
             username_env = \"E2E_SMTP_USER\"\npassword_env = \"E2E_SMTP_PASSWORD\"\n\
             ca_file = {:?}\n\
             [[notify.webhook]]\nurl = \"{}/test-hook\"\nformat = \"teams\"\n",
            smtp.port,
            testdata().join("ca.pem").display().to_string(),
            hooks.base
        ),
    );
    let env = [
        ("E2E_SMTP_USER", SMTP_USER),
        ("E2E_SMTP_PASSWORD", SMTP_PASSWORD),
    ];
    let out = reqsync_with(&world, &env, &["notify", "test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("e-mail via 127.0.0.1"), "{stdout}");
    assert!(stdout.contains("webhook 1 (teams): sent"), "{stdout}");
    assert_eq!(smtp.messages().len(), 1);
    assert!(
        smtp.messages()[0]["subject"] == "reqsync: test notification",
        "{:?}",
        smtp.messages()
    );
    assert_eq!(hooks.at("test-hook").len(), 1);

    // Without the SMTP server (stopped): the e-mail channel fails, the webhook still works.
    drop(smtp);
    let out = reqsync_with(&world, &env, &["notify", "test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert_eq!(hooks.at("test-hook").len(), 2);
}

/// A server that accepts the connection and then says nothing: the notice gives up after the
/// e-mail `timeout`, and the run ends as it would have, with its own exit code.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_smtp_server_does_not_hold_the_run() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            connections.push(socket);
        }
    });
    let world = World::kcmo().await;
    append_config(
        &world,
        &format!(
            "\n[notify]\n[notify.email]\nhost = \"127.0.0.1\"\nport = {port}\n\
             from = \"reqsync@clinic.example\"\nto = [\"ops@clinic.example\"]\ntimeout = \"1s\"\n"
        ),
    );
    let started = Instant::now();
    let out = reqsync_with(&world, &[("REQCHECK_PASSWORD", "wrong")], &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("notification not delivered"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

/// A run that fails before the ledger records it (no ReqCheck password in the environment) is
/// notified by its class, with no run id; the exit code is still 3.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_failing_before_it_is_recorded_is_notified_by_its_class() {
    let hooks = Hooks::start().await;
    let world = World::kcmo().await;
    append_config(
        &world,
        &format!(
            "\n[notify]\n[[notify.webhook]]\nurl = \"{}/early\"\n",
            hooks.base
        ),
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    command.arg("run");
    as_the_user(&mut command, &world).env_remove("REQCHECK_PASSWORD");
    let out = command.output().expect("run reqsync");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = hooks.at("early");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "run-failed");
    assert_eq!(got[0]["error_class"], "config");
    assert!(got[0].get("run_id").is_none(), "{:?}", got[0]);
    assert_eq!(
        got[0]["title"],
        "reqsync: a run failed before it started (config)"
    );
}

/// A run whose imports ReqCheck stores with a record error (a template that garbles one date of
/// birth), and whose transform rejects two patients (empty last names) past a quarantine
/// threshold of one: both are notified, with counts and no row value or patient number.
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_failure_and_a_quarantine_past_its_threshold_are_notified_without_row_values() {
    let hooks = Hooks::start().await;
    let world = World::new(kcmo()).await;
    world.share_module_cache();
    let broken: Vec<i64> = {
        let clinic = world.clinic();
        let mut stmt = clinic
            .prepare("SELECT patno FROM mpfile ORDER BY patno DESC LIMIT 2")
            .expect("query");
        stmt.query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("patnos")
    };
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET lname = '' WHERE patno IN (SELECT patno FROM mpfile ORDER BY patno DESC LIMIT 2)",
            [],
        )
        .expect("break two rows");
    std::fs::write(
        world.path("templates/patient_data.json.j2"),
        crate::ledger_cli::GARBLING_TEMPLATE,
    )
    .expect("template");
    append_config(
        &world,
        &format!(
            "\n[notify]\nquarantine_threshold = 1\n\
             [[notify.webhook]]\nurl = \"{}/json/{HOOK_TOKEN}\"\n",
            hooks.base
        ),
    );
    let out = reqsync_with(&world, &[], &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What the run exits with anyway: ReqCheck stored a record with an error.
    assert_eq!(out.status.code(), Some(7), "{stderr}");

    let json = hooks.at("json");
    let event = |name: &str| {
        json.iter()
            .find(|n| n["event"] == name)
            .unwrap_or_else(|| panic!("no {name} notice in {json:?}"))
    };
    let partial = event("partial-failure");
    assert_eq!(partial["run_id"], 1);
    let quarantine = event("quarantine");
    assert_eq!(quarantine["quarantine"]["open"], 2, "{quarantine}");
    assert_eq!(quarantine["quarantine"]["threshold"], 1, "{quarantine}");
    assert_eq!(
        quarantine["quarantine"]["by_job"]["patients"], 2,
        "{quarantine}"
    );

    let phi = Phi::of(&world);
    for body in &json {
        phi.assert_absent("a notice", &body.to_string());
        // A quarantined key would be a value of its own (a number, or a text of it); digits
        // inside timestamps or paths are not looked at (they match by chance).
        let mut values = Vec::new();
        leaves(body, &mut values);
        for patno in &broken {
            assert!(
                !values.contains(&patno.to_string()),
                "the quarantined patient {patno} is named in {body}"
            );
        }
    }
}

/// Every number and text in a JSON value, as text.
fn leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| leaves(v, out)),
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        _ => {}
    }
}

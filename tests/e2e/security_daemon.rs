//! `reqsync daemon`'s `/healthz` and `/metrics` listener under hostile clients, against the
//! real binary on a real loopback socket: connections that send nothing, or half a request
//! line, are closed after the header timeout; a flood of them is capped (the process's file
//! descriptors stay bounded, and `/healthz` answers again once the idle ones are dropped); a
//! non-loopback address is warned about; and a run that finds no file descriptor left is
//! reported as a resource problem, not as a busy project.
//!
//! Every connection goes to 127.0.0.1; loops are bounded in count and time.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqsync_seeder::SeedOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{PASSWORD, USER, World};

/// Longest any wait for the daemon polls (start-up compiles modules unless cached).
const PATIENCE: Duration = Duration::from_secs(120);

/// A schedule that does not fire while a test runs (midnight on January 1st), for the tests
/// that are about the listener only.
const NEVER_DURING_THE_TEST: &str = "0 0 1 1 *";

/// The real binary with `[daemon]` limits of its own, killed when the test ends, pass or fail.
struct Daemon {
    child: Child,
    listen: String,
    world: World,
}

impl Daemon {
    /// Starts the daemon on `listen` with `limits` (TOML lines of `[daemon]`) and every job on
    /// `schedule`, and waits until it says it started.
    async fn start(listen: &str, limits: &str, schedule: &str) -> Daemon {
        Self::start_with_env(listen, limits, schedule, &[]).await
    }

    /// [`Daemon::start`] with more variables in the daemon's environment.
    async fn start_with_env(
        listen: &str,
        limits: &str,
        schedule: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let world = World::new(SeedOptions {
            kcmo: true,
            ..SeedOptions::default()
        })
        .await;
        world.share_module_cache();
        let path = world.path("reqsync.toml");
        let text = std::fs::read_to_string(&path).expect("read config");
        let text = text.replace(
            "[[jobs]]\n",
            &format!("[[jobs]]\nschedule = \"{schedule}\"\n"),
        );
        std::fs::write(&path, format!("{text}\n[daemon]\n{limits}\n")).expect("write config");
        // The log goes to a file the daemon holds from the start: it needs no new descriptor
        // to write it, even when it has none left.
        let log = std::fs::File::create(world.path("daemon.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_reqsync"))
            .args(["daemon", "--listen", listen])
            .current_dir(world.dir.path())
            .env("REQCHECK_USERNAME", USER)
            .env("REQCHECK_PASSWORD", PASSWORD)
            .env_remove("REQSYNC_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start reqsync daemon");
        let mut daemon = Daemon {
            child,
            listen: listen.to_string(),
            world,
        };
        daemon.wait_for_log("daemon started").await;
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.world.path("daemon.log")).unwrap_or_default()
    }

    async fn wait_for_log(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("the daemon exited ({status}) before saying {text:?}:\n{log}");
            }
            assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// File descriptors the daemon holds now.
    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("the daemon's /proc/PID/fd")
            .count()
    }

    /// `GET path`'s status and body, or `None` when the connection is refused or closed.
    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let response = client
            .get(format!("http://{}{path}", self.listen))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free a moment ago (the daemon binds it right after).
fn free_port() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    format!("127.0.0.1:{port}")
}

/// Waits up to `within` for the server to close `stream` (end of stream or reset), reading and
/// keeping whatever it sends first; `None` if it is still open then.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), received)),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

async fn connect(addr: &str) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_send_nothing_or_half_a_request_are_closed_after_the_header_timeout() {
    let daemon = Daemon::start(
        &free_port(),
        "header_timeout = \"1s\"\nrequest_timeout = \"2s\"",
        NEVER_DURING_THE_TEST,
    )
    .await;
    let connected = Instant::now();
    let silent = connect(&daemon.listen).await;
    let mut half = connect(&daemon.listen).await;
    half.write_all(b"GET /heal").await.expect("write");
    // A kept-alive connection after one full answer: idle, it is closed the same way.
    let mut kept = connect(&daemon.listen).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: reqsync\r\n\r\n")
        .await
        .expect("write");
    for (what, mut stream) in [("silent", silent), ("half a request line", half)] {
        closed_within(&mut stream, Duration::from_secs(8))
            .await
            .unwrap_or_else(|| panic!("the {what} connection was still open after 8 s"));
        println!(
            "{what} connection closed {:?} after connecting",
            connected.elapsed()
        );
    }
    let (_, answer) = closed_within(&mut kept, Duration::from_secs(8))
        .await
        .expect("the idle kept-alive connection was still open after 8 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    println!(
        "idle kept-alive connection closed {:?} after connecting",
        connected.elapsed()
    );
    // Not at once: the timeout, not an error, closed them.
    assert!(connected.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_kept_busy_is_closed_once_its_time_is_up() {
    // Open for at most header_timeout + request_timeout = 3 s, however many requests it sends.
    let daemon = Daemon::start(
        &free_port(),
        "header_timeout = \"1s\"\nrequest_timeout = \"2s\"",
        NEVER_DURING_THE_TEST,
    )
    .await;
    let connected = Instant::now();
    let (mut reader, mut writer) = connect(&daemon.listen).await.into_split();
    let reading = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut answers = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(12), reader.read(&mut buf)).await {
                Err(_) => return (false, answers),
                Ok(Ok(0)) | Ok(Err(_)) => return (true, answers),
                Ok(Ok(n)) => {
                    answers += buf[..n]
                        .windows(12)
                        .filter(|w| w == b"HTTP/1.1 200")
                        .count()
                }
            }
        }
    });
    // A request every 300 ms, each within the header timeout, for at most 10 s.
    while connected.elapsed() < Duration::from_secs(10) && !reading.is_finished() {
        if writer
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: reqsync\r\n\r\n")
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (closed, answers) = reading.await.expect("join");
    let open_for = connected.elapsed();
    println!("a busy connection got {answers} answers and was closed after {open_for:?}");
    assert!(closed, "the busy connection was still open after 12 s");
    assert!(answers >= 2, "{answers} answers");
    assert!(
        open_for < Duration::from_secs(7),
        "closed only after {open_for:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_idle_connections_is_capped_and_healthz_answers_once_they_are_dropped() {
    const CAP: usize = 4;
    const FLOOD: usize = 100;
    // A header timeout long enough to tell "closed at once" from "closed when it ran out".
    let header_timeout = Duration::from_secs(6);
    let daemon = Daemon::start(
        &free_port(),
        &format!("header_timeout = \"6s\"\nmax_connections = {CAP}"),
        NEVER_DURING_THE_TEST,
    )
    .await;
    let (status, _) = daemon.get("/healthz").await.expect("healthz answers");
    assert_eq!(status, 200);
    let before = daemon.open_files();

    let opened = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..FLOOD {
        streams.push(connect(&daemon.listen).await);
    }
    // Connections beyond the cap are closed as they are accepted, long before the header
    // timeout; the ones holding a slot stay open until it.
    let mut waits = Vec::new();
    for mut stream in streams {
        waits.push(tokio::spawn(async move {
            closed_within(&mut stream, Duration::from_secs(3))
                .await
                .is_some()
                .then_some(())
                .ok_or(stream)
        }));
    }
    let mut still_open = Vec::new();
    for wait in waits {
        if let Err(stream) = wait.await.expect("join") {
            still_open.push(stream);
        }
    }
    let peak = daemon.open_files();
    println!(
        "{} of {FLOOD} idle connections still open after 3 s; daemon fds {before} before, {peak} during",
        still_open.len()
    );
    assert!(
        still_open.len() <= CAP,
        "{} idle connections held open (cap {CAP})",
        still_open.len()
    );
    assert!(
        peak <= before + CAP + 2,
        "the daemon holds {peak} file descriptors, {before} before the flood (cap {CAP})"
    );
    // Once the idle ones time out, /healthz answers again.
    let deadline = opened + header_timeout + Duration::from_secs(10);
    loop {
        if let Some((200, body)) = daemon.get("/healthz").await {
            assert!(body.contains("\"jobs\""), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz did not answer after the idle connections timed out"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for mut stream in still_open {
        assert!(
            closed_within(&mut stream, Duration::from_secs(1))
                .await
                .is_some(),
            "an idle connection outlived the header timeout"
        );
    }
    assert!(daemon.open_files() <= before + 2, "descriptors left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_served_beyond_loopback_is_warned_about_at_start_up() {
    // Bound on every interface, port chosen by the system; nothing connects to it.
    let daemon = Daemon::start("0.0.0.0:0", "", NEVER_DURING_THE_TEST).await;
    let log = daemon.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("/metrics"))
        .unwrap_or_else(|| panic!("no warning about the address:\n{log}"));
    for part in ["0.0.0.0:", "127.0.0.1", "firewall"] {
        assert!(warning.contains(part), "{warning}");
    }
    // Loopback stays quiet.
    let quiet = Daemon::start(&free_port(), "", NEVER_DURING_THE_TEST).await;
    assert!(
        !quiet.log().contains("reachable from other hosts"),
        "{}",
        quiet.log()
    );
}

/// `GET /status` with an optional basic-authentication header: status, `WWW-Authenticate`, body.
async fn status_page(addr: &str, login: Option<(&str, &str)>) -> (u16, Option<String>, String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut request = client.get(format!("http://{addr}/status"));
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.expect("GET /status");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("header").to_string());
    (status, challenge, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_beyond_loopback_needs_a_login_and_is_refused_without_one() {
    let port = free_port().rsplit_once(':').expect("port").1.to_string();
    let daemon = Daemon::start_with_env(
        &format!("0.0.0.0:{port}"),
        "status_username = \"clinic-it\"\nstatus_password_env = \"STATUS_PAGE_PASSWORD\"",
        NEVER_DURING_THE_TEST,
        &[("STATUS_PAGE_PASSWORD", "correct horse")],
    )
    .await;
    let addr = format!("127.0.0.1:{port}");
    let (status, challenge, _) = status_page(&addr, None).await;
    assert_eq!(status, 401);
    assert!(
        challenge.is_some_and(|c| c.starts_with("Basic ")),
        "a browser is asked for the login"
    );
    let (status, _, _) = status_page(&addr, Some(("clinic-it", "wrong"))).await;
    assert_eq!(status, 401);
    let (status, _, _) = status_page(&addr, Some(("someone", "correct horse"))).await;
    assert_eq!(status, 401);
    let (status, _, body) = status_page(&addr, Some(("clinic-it", "correct horse"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("reqsync status"), "{body}");
    assert!(
        !daemon.log().contains("correct horse"),
        "the password reached the log"
    );
    // `/status is not served` is the warning of a page without a login; this one has one.
    assert!(
        !daemon.log().contains("/status is not served"),
        "{}",
        daemon.log()
    );
    drop(daemon);

    // No login configured: warned at start-up, and the page is never served there.
    let port = free_port().rsplit_once(':').expect("port").1.to_string();
    let daemon = Daemon::start(&format!("0.0.0.0:{port}"), "", NEVER_DURING_THE_TEST).await;
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("/status is not served")),
        "{log}"
    );
    let (status, _, body) = status_page(&format!("127.0.0.1:{port}"), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("status_username"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_page_password_in_the_config_file_is_refused() {
    let world = World::kcmo().await;
    world.edit_config("[source]", "[daemon]\nstatus_password = \"x\"\n\n[source]");
    let out = crate::support::reqsync(&world, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("daemon.status_password"), "{stderr}");
    assert!(stderr.contains("status_password_secret"), "{stderr}");
}

/// `prlimit --pid PID --nofile=SOFT:` (util-linux): the soft open-file limit of a running
/// process, the hard one left as it is.
fn set_open_file_limit(pid: u32, soft: u64) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit failed: {status}");
}

/// The soft open-file limit of a process, from /proc.
fn open_file_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("Max open files")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_finds_no_file_descriptor_left_is_reported_as_a_resource_problem_not_busy() {
    let mut daemon = Daemon::start(&free_port(), "", "* * * * * *").await;
    let pid = daemon.pid();
    let limit = open_file_limit(pid);
    // Descriptors 0–2 are taken: nothing more can be opened, neither the run lock nor a
    // connection. (Lowering the limit below what is open closes nothing.) A run already under
    // way (one starts every second) fails at whatever it opens next, perhaps a connection whose
    // error is not a resource one; the run after it fails at the run lock, which must be.
    set_open_file_limit(pid, 3);
    let log = daemon
        .wait_for_log("scheduled run failed error=cannot open the run lock")
        .await;
    set_open_file_limit(pid, limit);
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("scheduled run failed"))
        .collect();
    let at_the_lock = failures
        .iter()
        .find(|l| l.contains("cannot open the run lock"))
        .expect("the failure at the run lock");
    assert!(at_the_lock.contains(r#"class="resource""#), "{at_the_lock}");
    assert!(
        at_the_lock.contains("raise the open-file limit"),
        "{at_the_lock}"
    );
    for failure in &failures {
        assert!(!failure.contains("busy"), "{failure}");
        assert!(!failure.contains("another reqsync run"), "{failure}");
    }
    // Counted under its class in the metrics, once the listener can accept again.
    let deadline = Instant::now() + PATIENCE;
    let metrics = loop {
        if let Some((200, text)) = daemon.get("/metrics").await {
            break text;
        }
        assert!(Instant::now() < deadline, "/metrics never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(runs_ending(&metrics, "resource") >= 1, "{metrics}");
    assert_eq!(runs_ending(&metrics, "busy"), 0, "{metrics}");
}

/// `reqsync_runs_total` of the patients job for one outcome (0 when not reported).
fn runs_ending(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!(r#"reqsync_runs_total{{job="patients",outcome="{outcome}"}} "#);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

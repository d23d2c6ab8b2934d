//! ReqCheck through a clinic's HTTP proxy, over real sockets: the project's receiver over HTTPS
//! with the test CA, reached through a real CONNECT proxy on loopback (`connect_proxy.rs`).
//! The proxy is configured in `[reqcheck] proxy` or taken from `HTTPS_PROXY`; its credentials
//! come from the environment, and a proxy URL holding them is refused; a proxy sees neither
//! patient data nor the ReqCheck password, cannot downgrade the TLS, and its refusals are errors
//! that name it. Redirects stay unfollowed inside the tunnel.
//!
//! Tests that set proxy variables do so for a spawned `reqsync` only: this test process's own
//! environment is shared by every test running in parallel.

use std::process::{Command, Output};

use reqsync_runtime::config::Config;
use reqsync_runtime::pipeline::RunOptions;
use reqsync_runtime::reqcheck::client::ClientOptions;
use reqsync_runtime::reqcheck::{ClientError, Credentials, ProxySetting, ReqCheckClient, Secret};
use reqsync_seeder::SeedOptions;

use crate::connect_proxy::{ConnectProxy, Mode, Options};
use crate::delivery_faults;
use crate::hostile_reqcheck::{Hostile, Reply};
use crate::phi::Phi;
use crate::security_reqcheck::assert_no_file_holds;
use crate::support::{PASSWORD, USER, World, as_the_user, last_run, run_through, testdata};

/// What a run exits with when ReqCheck (or the way to it) fails, and for a bad config.
const EXIT_DELIVERY: i32 = 6;
const EXIT_CONFIG: i32 = 3;

const PROXY_USER: &str = "clinic-proxy";
const PROXY_PASSWORD: &str = "pr0xy-s3cret";

/// Every variable through which a proxy could reach a spawned `reqsync` from the developer's
/// (or CI's) own environment.
const PROXY_VARS: [&str; 9] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

fn kcmo() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    }
}

/// A world whose receiver serves HTTPS with the test certificate, and whose config file (what
/// a spawned `reqsync` reads) trusts the test CA, shares the module cache and holds `extra`
/// in `[reqcheck]`.
async fn https_world(extra: &str) -> World {
    let world = World::with_tls(kcmo()).await;
    world.share_module_cache();
    let url = format!("url = \"{}\"", world.receiver.base_url());
    world.edit_config(
        &url,
        &format!(
            "{url}\nca_file = '{}'\n{extra}",
            testdata().join("ca.pem").display()
        ),
    );
    world
}

/// `reqsync ARGS…` as the user runs it, with exactly the proxy variables in `env`.
fn reqsync_with(world: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    command.args(args);
    as_the_user(&mut command, world);
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("run reqsync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The run succeeded and the receiver holds the whole KCMO data set.
fn assert_delivered(world: &World, out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}\nstdout: {}",
        text(&out.stderr),
        text(&out.stdout)
    );
    let dump = world.dump();
    assert_eq!(dump.vaccine_doses.len(), 177);
    assert!(!dump.patients.is_empty());
}

/// `127.0.0.1:PORT` of the world's receiver, as a CONNECT request names it.
fn receiver_target(world: &World) -> String {
    world
        .receiver
        .base_url()
        .trim_start_matches("https://")
        .to_string()
}

/// The world's config (fast retries) with a client that goes through `proxy`.
fn client_through(
    config: &Config,
    proxy: ProxySetting,
    login: Option<(&str, &str)>,
) -> Result<ReqCheckClient, ClientError> {
    let options = ClientOptions {
        timeout: config.reqcheck.timeout,
        ca_file: Some(testdata().join("ca.pem")),
        retry: config.reqcheck.retry.clone(),
        allow_insecure_http: false,
        proxy,
        proxy_credentials: login.map(|(username, password)| Credentials {
            username: username.into(),
            password: Secret::new(password),
            origin: None,
        }),
    };
    ReqCheckClient::new(
        &config.reqcheck.url,
        Credentials {
            username: USER.into(),
            password: Secret::new(PASSWORD),
            origin: None,
        },
        &options,
    )
    .map(|c| c.with_jitter_seed(7))
}

fn explicit(proxy: &ConnectProxy) -> ProxySetting {
    ProxySetting::parse(&proxy.url()).expect("proxy URL")
}

// ---- Delivery through the proxy -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_over_https_goes_through_the_configured_proxy() {
    let proxy = ConnectProxy::start().await;
    let world = https_world(&format!("proxy = \"{}\"", proxy.url())).await;
    let out = reqsync_with(&world, &["run"], &[]);
    assert_delivered(&world, &out);
    // Every request crossed the proxy: one tunnel per connection, each to the receiver.
    assert!(proxy.tunnels() >= 1);
    let targets = proxy.targets();
    assert!(
        targets.iter().all(|t| *t == receiver_target(&world)),
        "{targets:?}"
    );
    // The log says which way ReqCheck is reached, naming the proxy.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("through a proxy"), "{stderr}");
    assert!(stderr.contains(&proxy.url()), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_proxy_is_spoken_to_over_tls_with_a_tunnel_inside() {
    let proxy = ConnectProxy::with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let world = World::with_tls(kcmo()).await;
    let config = delivery_faults::config(&world);
    let client = client_through(&config, explicit(&proxy), None).expect("client");
    client
        .heartbeat()
        .await
        .expect("heartbeat through an https:// proxy");
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(proxy.targets(), [receiver_target(&world)]);
}

// ---- What the proxy can see -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_sees_neither_patient_data_nor_the_reqcheck_password() {
    let proxy = ConnectProxy::start().await;
    let world = World::with_tls(kcmo()).await;
    let config = delivery_faults::config(&world);
    let client = client_through(&config, explicit(&proxy), None).expect("client");
    run_through(config, client, RunOptions::default())
        .await
        .expect("sync through the proxy");
    assert_eq!(world.dump().vaccine_doses.len(), 177);
    let traffic = proxy.traffic();
    // The bodies did cross the proxy, encrypted: the tunnel carried more than their bytes.
    let run = last_run(&world);
    let sent: i64 = run
        .jobs
        .iter()
        .flat_map(|j| j.requests.iter().map(|r| r.bytes))
        .sum();
    assert!(sent > 10_000, "{sent} body bytes");
    assert!(
        traffic.len() as i64 > sent,
        "{} bytes through the tunnel for {sent} body bytes",
        traffic.len()
    );
    let seen = text(&traffic);
    Phi::of(&world).assert_absent("the proxy's view of the tunnel", &seen);
    for secret in [PASSWORD, "Authorization", "patient_number", "POST /"] {
        assert!(
            !traffic
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "`{secret}` crossed the proxy in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_answering_in_plain_http_cannot_downgrade_the_tunnel() {
    let proxy = ConnectProxy::with(Options {
        mode: Mode::Downgrade,
        ..Options::default()
    })
    .await;
    let world = World::with_tls(kcmo()).await;
    let config = delivery_faults::config(&world);
    let client = client_through(&config, explicit(&proxy), None).expect("client");
    let body = br#"{"patient_data":[{"lname":"Quixbottom-Downgrade"}]}"#.to_vec();
    let error = client
        .import("/patient_data", body)
        .await
        .expect_err("a plain answer inside the tunnel is refused");
    // A TLS failure: not retried, and nothing but the TLS ClientHello went out.
    assert!(matches!(error, ClientError::Tls { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&proxy.url()), "{message}");
    let traffic = proxy.traffic();
    assert!(
        !traffic.is_empty(),
        "the client's handshake reached the proxy"
    );
    for secret in [PASSWORD, "Quixbottom", "Authorization", "POST"] {
        assert!(
            !traffic
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "`{secret}` reached the downgrading proxy"
        );
    }
    assert_eq!(proxy.tunnels(), 1, "a TLS failure is not retried");
    assert!(world.dump().data_imports.is_empty());
}

// ---- Credentials --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn proxy_credentials_from_the_environment_open_the_tunnel() {
    let proxy = ConnectProxy::with(Options {
        login: Some((PROXY_USER.into(), PROXY_PASSWORD.into())),
        ..Options::default()
    })
    .await;
    let world = https_world(&format!(
        "proxy = \"{}\"\nproxy_username_env = \"CLINIC_PROXY_USER\"\n\
         proxy_password_env = \"CLINIC_PROXY_PASSWORD\"",
        proxy.url()
    ))
    .await;
    let out = reqsync_with(
        &world,
        &["run"],
        &[
            ("CLINIC_PROXY_USER", PROXY_USER),
            ("CLINIC_PROXY_PASSWORD", PROXY_PASSWORD),
        ],
    );
    assert_delivered(&world, &out);
    assert!(proxy.tunnels() >= 1);
    assert_eq!(proxy.refused_logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_proxy_login_is_a_407_error_that_never_shows_the_password() {
    let proxy = ConnectProxy::with(Options {
        login: Some((PROXY_USER.into(), PROXY_PASSWORD.into())),
        ..Options::default()
    })
    .await;
    let world = https_world(&format!(
        "proxy = \"{}\"\nproxy_username_env = \"CLINIC_PROXY_USER\"\n\
         proxy_password_env = \"CLINIC_PROXY_PASSWORD\"",
        proxy.url()
    ))
    .await;
    let wrong = "wr0ng-pr0xy-passw0rd";
    let out = reqsync_with(
        &world,
        &["-vv", "run"],
        &[
            ("CLINIC_PROXY_USER", PROXY_USER),
            ("CLINIC_PROXY_PASSWORD", wrong),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(EXIT_DELIVERY), "{stderr}");
    assert!(stderr.contains("407"), "{stderr}");
    assert!(stderr.contains(&proxy.url()), "{stderr}");
    // Where the refused credentials were read, by name: the variables the config gives.
    assert!(
        stderr.contains(
            "check the user name in the environment variable CLINIC_PROXY_USER and the \
             password in the environment variable CLINIC_PROXY_PASSWORD"
        ),
        "{stderr}"
    );
    // Not retried: a wrong password stays wrong, and failed logins can lock the account.
    assert_eq!(proxy.refused_logins(), 1);
    assert_eq!(proxy.tunnels(), 0);
    let basic = base64_of(&format!("{PROXY_USER}:{wrong}"));
    for secret in [wrong, PROXY_PASSWORD, basic.as_str()] {
        assert!(
            !stdout.contains(secret),
            "stdout shows `{secret}`:\n{stdout}"
        );
        assert!(
            !stderr.contains(secret),
            "stderr shows `{secret}`:\n{stderr}"
        );
        assert_no_file_holds(&world.path(".reqsync"), secret);
    }
    assert!(world.dump().data_imports.is_empty());
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_url_with_credentials_in_the_config_is_refused() {
    let proxy = ConnectProxy::start().await;
    let with_login = proxy
        .url()
        .replace("http://", &format!("http://{PROXY_USER}:{PROXY_PASSWORD}@"));
    let world = https_world(&format!("proxy = \"{with_login}\"")).await;
    let out = reqsync_with(&world, &["-vv", "run"], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{stderr}");
    assert!(stderr.contains("reqcheck.proxy"), "{stderr}");
    assert!(stderr.contains("proxy_password_env"), "{stderr}");
    for shown in [&stdout, &stderr] {
        assert!(!shown.contains(PROXY_PASSWORD), "{shown}");
    }
    assert_eq!(proxy.connections(), 0, "nothing was sent anywhere");
}

// ---- The system's proxy -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_from_the_environment_is_used_when_no_proxy_is_configured() {
    let proxy = ConnectProxy::start().await;
    let world = https_world("").await;
    // The receiver is on loopback, which the system's proxy skips unless NO_PROXY is set:
    // an empty NO_PROXY says "no exceptions".
    let out = reqsync_with(
        &world,
        &["run"],
        &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "")],
    );
    assert_delivered(&world, &out);
    assert!(proxy.tunnels() >= 1);
    assert!(
        proxy
            .targets()
            .iter()
            .all(|t| *t == receiver_target(&world)),
        "{:?}",
        proxy.targets()
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("HTTPS_PROXY"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_none_ignores_https_proxy_from_the_environment() {
    let proxy = ConnectProxy::start().await;
    let world = https_world("proxy = \"none\"").await;
    let out = reqsync_with(
        &world,
        &["run"],
        &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "")],
    );
    assert_delivered(&world, &out);
    assert_eq!(proxy.connections(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_reqcheck_skips_https_proxy_unless_no_proxy_is_set() {
    let proxy = ConnectProxy::start().await;
    let world = https_world("").await;
    let out = reqsync_with(&world, &["run"], &[("https_proxy", &proxy.url())]);
    assert_delivered(&world, &out);
    assert_eq!(proxy.connections(), 0);
}

// ---- Refusals -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_refusing_the_tunnel_is_named_and_retried_as_a_delivery_failure() {
    for status in [403, 502] {
        let proxy = ConnectProxy::with(Options {
            mode: Mode::Refuse(status),
            ..Options::default()
        })
        .await;
        let world = World::with_tls(kcmo()).await;
        let mut config = delivery_faults::config(&world);
        config.reqcheck.retry.max_attempts = 2;
        let client = client_through(&config, explicit(&proxy), None).expect("client");
        let error = client.heartbeat().await.expect_err("refused");
        assert!(
            matches!(error, ClientError::GaveUp { attempts: 2, .. }),
            "{status}: {error}"
        );
        assert!(
            matches!(error.last_cause(), ClientError::ProxyRefused { .. }),
            "{status}: {error}"
        );
        let message = error.to_string();
        assert!(message.contains(&proxy.url()), "{message}");
        assert!(message.contains("CONNECT"), "{message}");
        assert!(message.contains(&receiver_target(&world)), "{message}");
        assert!(message.contains("[reqcheck] proxy"), "{message}");
        assert_eq!(proxy.targets().len(), 2, "{status}: tried twice");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_proxy_is_named_in_the_error() {
    // A port nothing listens on any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let world = World::with_tls(kcmo()).await;
    let mut config = delivery_faults::config(&world);
    config.reqcheck.retry.max_attempts = 1;
    let url = format!("http://{closed}");
    let client = client_through(
        &config,
        ProxySetting::parse(&url).expect("url"),
        Some((PROXY_USER, PROXY_PASSWORD)),
    )
    .expect("client");
    let error = client.heartbeat().await.expect_err("no proxy there");
    assert!(
        matches!(error, ClientError::ProxyUnreachable { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(message.contains("[reqcheck] proxy"), "{message}");
    assert!(!message.contains(PROXY_PASSWORD), "{message}");
}

// ---- Redirects ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_through_the_proxy_is_not_followed() {
    let elsewhere = Hostile::start_tls(|_, _| Reply::heartbeat()).await;
    let location = format!("{}/collect", elsewhere.base_url());
    let reqcheck = Hostile::start_tls(move |_, _| Reply::redirect(307, &location)).await;
    let proxy = ConnectProxy::start().await;
    let world = World::new(kcmo()).await;
    let mut config = delivery_faults::config(&world);
    config.reqcheck.url = reqcheck.base_url();
    let client = client_through(&config, explicit(&proxy), None).expect("client");
    let error = client
        .heartbeat()
        .await
        .expect_err("a redirect is an error");
    assert!(
        matches!(error, ClientError::Redirected { status: 307, .. }),
        "{error}"
    );
    assert_eq!(reqcheck.count("/heartbeat"), 1, "not retried");
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
    assert_eq!(proxy.targets(), [reqcheck.authority()]);
}

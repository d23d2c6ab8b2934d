//! Windows authentication to SQL Server (`auth=windows`, `auth=integrated`) against the TDS test
//! double, which serves the NTLM exchange the way SQL Server does and checks the NTLMv2 proof
//! itself (`tds_double/ntlm.rs`).
//!
//! Three groups, by what each can run on:
//!
//! - **The exchange itself**, on every platform: the NTLMv2 client tiberius runs for
//!   `auth=windows` in the Windows build (the `winauth` crate) logs in to the double over a real
//!   socket, carried in LOGIN7 and SSPI messages encoded by an independent TDS codec
//!   (`tds-protocol`), and a wrong password or an account without a login is refused with the
//!   error SQL Server gives.
//! - **The Linux build's refusal**: tiberius offers Windows authentication on Windows only, so
//!   `reqsync run` with `auth=integrated` or `auth=windows` exits 4 saying so, before reading a
//!   password or opening a connection.
//! - **The Windows build, end to end**: `reqsync run` with `auth=windows` syncs the KCMO corpus
//!   through an NTLM login, the errors an operator meets say what to fix without showing the
//!   password at `-vv`, and an `auth=integrated` login that cannot complete is a login failure.
//!   On Windows these run against the test binary; elsewhere they run the Windows build under
//!   Wine (`REQSYNC_WINDOWS_EXE`, set by `scripts/test-windows`), and are ignored by a plain
//!   `cargo test`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use tds_protocol::{EncryptionLevel, Login7, PacketType, PreLogin, Token, TokenParser};
use winauth::NextBytes;

use crate::sources_sqlserver::{SQL_PASSWORD, SQL_USER, SqlWorld, ca_signed};
use crate::support::{PASSWORD, USER, testdata};
use crate::tds_double::clinic::ClinicTables;
use crate::tds_double::ntlm::SERVER_DOMAIN;
use crate::tds_double::{
    DoubleConfig, Handler, LoggedIn, TdsDouble, TlsIdentity, WindowsAccount, wire,
};

/// The service account the clinic's reqsync logs in as, with a login on the server.
const SERVICE: &str = "reqsync_svc";
const SERVICE_PASSWORD: &str = "Corr3ct-Horse-Battery";
/// An account of the domain that proves its password but has no login on the server.
const NO_LOGIN: &str = "frontdesk";
const NO_LOGIN_PASSWORD: &str = "Fr0nt-Desk-Pass";
/// Never the password of anything: must never be printed.
const WRONG_PASSWORD: &str = "Wr0ng-Guess-7781";

async fn windows_double(handler: Arc<dyn Handler>, tls: Option<TlsIdentity>) -> TdsDouble {
    TdsDouble::start(DoubleConfig {
        user: SQL_USER.into(),
        password: SQL_PASSWORD.into(),
        windows_accounts: vec![
            WindowsAccount {
                domain: SERVER_DOMAIN.into(),
                user: SERVICE.into(),
                password: SERVICE_PASSWORD.into(),
                has_login: true,
            },
            WindowsAccount {
                domain: SERVER_DOMAIN.into(),
                user: NO_LOGIN.into(),
                password: NO_LOGIN_PASSWORD.into(),
                has_login: false,
            },
        ],
        databases: vec!["clinic".into()],
        missing_database_error: 4060,
        tls,
        handler,
    })
    .await
}

fn service_account() -> String {
    format!("{SERVER_DOMAIN}\\{SERVICE}")
}

// ---- The exchange itself, on every platform ----

/// How the client's AUTHENTICATE message travels: tiberius sends it in an SSPI message (0x11)
/// for `auth=integrated` and with the LOGIN7 packet type (0x10) for `auth=windows`.
#[derive(Debug, Clone, Copy)]
enum AuthenticateIn {
    SspiMessage,
    LoginPacket,
}

/// Logs in to `double` with NTLM as tiberius does: prelogin without TLS, LOGIN7 with the
/// integrated-security flag and winauth's NEGOTIATE, the CHALLENGE from the server's SSPI token
/// to winauth, its AUTHENTICATE back. `Ok` on LOGINACK, the server's error otherwise.
async fn ntlm_login(
    double: &TdsDouble,
    domain: &str,
    user: &str,
    password: &str,
    carried: AuthenticateIn,
) -> Result<(), (i32, String)> {
    let mut socket = tokio::net::TcpStream::connect(double.addr)
        .await
        .expect("connect to the double");
    let prelogin = PreLogin::new().with_encryption(EncryptionLevel::NotSupported);
    wire::write_message(&mut socket, PacketType::PreLogin, &prelogin.encode())
        .await
        .expect("prelogin");
    wire::read_message(&mut socket)
        .await
        .expect("read")
        .expect("prelogin answer");

    let spn = format!("MSSQLSvc/127.0.0.1:{}", double.port());
    let mut client =
        winauth::NtlmV2ClientBuilder::new()
            .target_spn(spn)
            .build(Some(domain), user, password);
    let negotiate = client
        .next_bytes(None)
        .expect("NEGOTIATE")
        .expect("a first token");
    let login = Login7::new()
        .with_integrated_auth(negotiate)
        .with_database("clinic")
        .with_app_name("reqsync");
    wire::write_message(&mut socket, PacketType::Tds7Login, &login.encode())
        .await
        .expect("login7");
    let answer = wire::read_message(&mut socket)
        .await
        .expect("read")
        .expect("an answer to LOGIN7");
    let mut tokens = TokenParser::new(answer.payload.into());
    let challenge = match tokens.next_token().expect("token") {
        Some(Token::Sspi(sspi)) => sspi.data,
        other => panic!("expected an SSPI token, got {other:?}"),
    };
    assert!(tokens.next_token().expect("token").is_none(), "SSPI alone");

    let authenticate = client
        .next_bytes(Some(&challenge))
        .expect("winauth accepts the double's CHALLENGE")
        .expect("an AUTHENTICATE");
    let packet_type = match carried {
        AuthenticateIn::SspiMessage => PacketType::Sspi,
        AuthenticateIn::LoginPacket => PacketType::Tds7Login,
    };
    wire::write_message(&mut socket, packet_type, &authenticate)
        .await
        .expect("authenticate");
    let answer = wire::read_message(&mut socket)
        .await
        .expect("read")
        .expect("the login's outcome");
    let mut tokens = TokenParser::new(answer.payload.into());
    while let Some(token) = tokens.next_token().expect("token") {
        match token {
            Token::LoginAck(_) => return Ok(()),
            Token::Error(e) => return Err((e.number, e.message)),
            _ => {}
        }
    }
    panic!("neither LOGINACK nor an error")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ntlm_client_of_the_windows_build_logs_in_to_the_double_with_the_right_password() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    for carried in [AuthenticateIn::SspiMessage, AuthenticateIn::LoginPacket] {
        ntlm_login(&double, SERVER_DOMAIN, SERVICE, SERVICE_PASSWORD, carried)
            .await
            .unwrap_or_else(|e| panic!("{carried:?}: {e:?}"));
    }
    // The account name is case-insensitive, as Windows' is.
    ntlm_login(
        &double,
        "clinic",
        "REQSYNC_SVC",
        SERVICE_PASSWORD,
        AuthenticateIn::LoginPacket,
    )
    .await
    .expect("names in another case");
    assert_eq!(
        *double.logins.lock().expect("logins"),
        vec![LoggedIn::Ntlm(service_account()); 3]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_unknown_account_or_domain_is_refused_with_18452_as_sql_server_does() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    for (domain, user, password) in [
        (SERVER_DOMAIN, SERVICE, WRONG_PASSWORD),
        // The password of another account of the domain.
        (SERVER_DOMAIN, SERVICE, NO_LOGIN_PASSWORD),
        (SERVER_DOMAIN, "nobody", SERVICE_PASSWORD),
        ("ELSEWHERE", SERVICE, SERVICE_PASSWORD),
    ] {
        let (number, message) =
            ntlm_login(&double, domain, user, password, AuthenticateIn::LoginPacket)
                .await
                .expect_err("refused");
        assert_eq!(number, 18452, "{domain}\\{user}: {message}");
        assert!(message.contains("untrusted domain"), "{message}");
    }
    assert!(double.logins.lock().expect("logins").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_that_proves_its_password_but_has_no_login_gets_18456_naming_it() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    let (number, message) = ntlm_login(
        &double,
        SERVER_DOMAIN,
        NO_LOGIN,
        NO_LOGIN_PASSWORD,
        AuthenticateIn::SspiMessage,
    )
    .await
    .expect_err("no login");
    assert_eq!(number, 18456);
    assert_eq!(
        message,
        format!("Login failed for user '{SERVER_DOMAIN}\\{NO_LOGIN}'.")
    );
}

// ---- The Linux build's refusal ----

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `reqsync -vv run` of this build in the project folder, as an operator runs it.
#[cfg(not(windows))]
fn run_verbose(dir: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["-vv", "run"])
        .current_dir(dir)
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env_remove("REQSYNC_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run reqsync")
}

#[cfg(not(windows))]
#[tokio::test(flavor = "multi_thread")]
async fn auth_integrated_on_linux_exits_4_saying_it_needs_the_windows_build() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    let world = SqlWorld::new(|_| {
        format!(
            "sqlserver://127.0.0.1:{}/clinic?auth=integrated&encrypt=false",
            double.port()
        )
    })
    .await;
    let out = run_verbose(world.dir(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("`auth=integrated`"), "{err}");
    assert!(err.contains("works only in the Windows build"), "{err}");
    assert!(err.contains("SQL Server login"), "{err}");
    assert!(double.served().is_empty() && double.logins.lock().expect("l").is_empty());
}

#[cfg(not(windows))]
#[tokio::test(flavor = "multi_thread")]
async fn auth_windows_on_linux_exits_4_without_reading_or_showing_the_password() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    let world = SqlWorld::new(|_| {
        format!(
            "sqlserver://{SERVER_DOMAIN}%5C{SERVICE}@127.0.0.1:{}/clinic?auth=windows\
             &password_env=CLINIC_SVC_PASSWORD&encrypt=false",
            double.port()
        )
    })
    .await;
    let out = run_verbose(world.dir(), &[("CLINIC_SVC_PASSWORD", SERVICE_PASSWORD)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("`auth=windows`"), "{err}");
    assert!(err.contains("works only in the Windows build"), "{err}");
    assert!(!err.contains(SERVICE_PASSWORD) && !stdout(&out).contains(SERVICE_PASSWORD));
    assert!(double.served().is_empty() && double.logins.lock().expect("l").is_empty());
}

// ---- The Windows build, end to end ----

/// The Windows build of reqsync: this test binary's own on Windows, otherwise the one
/// `REQSYNC_WINDOWS_EXE` names, run under Wine (`REQSYNC_WINE`, default `wine`).
fn windows_reqsync(dir: &Path) -> Command {
    #[cfg(windows)]
    let mut command = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    #[cfg(not(windows))]
    let mut command = {
        let exe = std::env::var("REQSYNC_WINDOWS_EXE").expect(
            "REQSYNC_WINDOWS_EXE names the Windows build of reqsync to run under Wine \
             (scripts/test-windows sets it)",
        );
        let mut command =
            Command::new(std::env::var("REQSYNC_WINE").unwrap_or_else(|_| "wine".into()));
        command.arg(exe);
        command
    };
    command
        .current_dir(dir)
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env_remove("REQSYNC_LOG");
    command
}

/// A project whose source is `double` with `auth=windows` as `account`, its password in the
/// file `win-password`; over TLS checked against the test CA when `tls`.
async fn windows_world(double: &TdsDouble, account: &str, password: &str, tls: bool) -> SqlWorld {
    SqlWorld::new(|dir| {
        reqsync_private_fs::write_atomically(
            &dir.join("win-password"),
            format!("{password}\n").as_bytes(),
        )
        .expect("password file");
        // In the project folder, so that the Windows build finds it by a relative path.
        std::fs::copy(testdata().join("ca.pem"), dir.join("sql-ca.pem")).expect("CA");
        let transport = if tls {
            "trust_ca_file=sql-ca.pem"
        } else {
            "encrypt=false"
        };
        format!(
            "sqlserver://{}@127.0.0.1:{}/clinic?auth=windows&password_file=win-password\
             &{transport}",
            account.replace('\\', "%5C"),
            double.port()
        )
    })
    .await
}

#[cfg_attr(
    not(windows),
    ignore = "runs the Windows build under Wine: scripts/test-windows"
)]
#[tokio::test(flavor = "multi_thread")]
async fn windows_build_syncs_the_kcmo_corpus_through_an_ntlm_login_over_tls() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), Some(ca_signed())).await;
    let world = windows_world(&double, &service_account(), SERVICE_PASSWORD, true).await;
    let out = windows_reqsync(world.dir())
        .arg("run")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dump = world.dump();
    assert_eq!((dump.patients.len(), dump.vaccine_doses.len()), (21, 177));
    crate::sync::assert_receiver_equals_corpus(&dump, "kcmo");
    let logins = double.logins.lock().expect("logins").clone();
    assert!(!logins.is_empty());
    assert!(
        logins
            .iter()
            .all(|l| *l == LoggedIn::Ntlm(service_account())),
        "every session was an NTLM login of the service account: {logins:?}"
    );
}

#[cfg_attr(
    not(windows),
    ignore = "runs the Windows build under Wine: scripts/test-windows"
)]
#[tokio::test(flavor = "multi_thread")]
async fn windows_build_with_a_wrong_password_exits_4_with_the_fix_and_never_the_password() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    let world = windows_world(&double, &service_account(), WRONG_PASSWORD, false).await;
    let out = windows_reqsync(world.dir())
        .args(["-vv", "run"])
        .output()
        .expect("run");
    let (err, printed) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("SQL Server error 18452"), "{err}");
    assert!(err.contains(&format!("`{}`", service_account())), "{err}");
    assert!(
        err.contains("win-password"),
        "names where the password came from: {err}"
    );
    for secret in [WRONG_PASSWORD, SERVICE_PASSWORD] {
        assert!(!err.contains(secret) && !printed.contains(secret), "{err}");
    }
    assert!(double.logins.lock().expect("logins").is_empty());
    assert!(world.dump().data_imports.is_empty());
}

#[cfg_attr(
    not(windows),
    ignore = "runs the Windows build under Wine: scripts/test-windows"
)]
#[tokio::test(flavor = "multi_thread")]
async fn windows_build_with_an_account_without_a_login_names_the_create_login_that_fixes_it() {
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    let account = format!("{SERVER_DOMAIN}\\{NO_LOGIN}");
    let world = windows_world(&double, &account, NO_LOGIN_PASSWORD, false).await;
    let out = windows_reqsync(world.dir())
        .args(["-vv", "run"])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("SQL Server error 18456"), "{err}");
    assert!(
        err.contains(&format!("CREATE LOGIN [{account}] FROM WINDOWS")),
        "{err}"
    );
    assert!(err.contains("GRANT SELECT"), "{err}");
    assert!(!err.contains(NO_LOGIN_PASSWORD) && !stdout(&out).contains(NO_LOGIN_PASSWORD));
}

#[cfg_attr(
    not(windows),
    ignore = "runs the Windows build under Wine: scripts/test-windows"
)]
#[tokio::test(flavor = "multi_thread")]
async fn windows_build_with_integrated_auth_the_double_cannot_verify_exits_4_as_a_login_failure() {
    // The double knows no account for the identity this process runs as, so the login fails
    // everywhere: on Windows when the double refuses the NTLM proof SSPI made (18452), under
    // Wine already in SSPI (Wine's NTLM needs Samba's ntlm_auth). Either way it is a login
    // failure saying what to check, not a crash or a protocol error.
    let double = windows_double(Arc::new(ClinicTables::kcmo()), None).await;
    let world = SqlWorld::new(|_| {
        format!(
            "sqlserver://127.0.0.1:{}/clinic?auth=integrated&encrypt=false",
            double.port()
        )
    })
    .await;
    let out = windows_reqsync(world.dir())
        .arg("run")
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("login failed"), "{err}");
    assert!(err.contains("account reqsync runs as"), "{err}");
    assert!(!err.contains("os error 0"), "{err}");
    assert!(double.logins.lock().expect("logins").is_empty());
}

//! A **test double** of Microsoft SQL Server — not a database.
//!
//! It speaks the real TDS 7.4 wire protocol over a real TCP socket (PRELOGIN with or without
//! TLS inside PRELOGIN packets, LOGIN7, SQL batches and RPC `sp_executesql` with typed
//! parameters, result sets, row counts, errors), so the product's own SQL Server source and seed
//! writer drive the real `tiberius` driver against it. It parses no SQL: a [`Handler`]
//! programmed by the test answers each request with a [`Reply`] — a result set, row counts, an
//! error, or a fault such as a connection dropped mid-result — usually by comparing the request
//! with the exact statements the product generates. [`clinic::ClinicTables`] answers the default
//! queries from the KCMO corpus, evaluating the window parameter exactly, and takes the rows
//! `reqsync seed` writes.
//!
//! The one thing the double itself understands is **transaction control**, because it is
//! protocol state, not data: SQL batches made only of `SET XACT_ABORT ON|OFF`, `BEGIN TRAN`,
//! `COMMIT` and `[IF @@TRANCOUNT > 0] ROLLBACK` are answered as SQL Server does, with
//! ENVCHANGE tokens carrying a transaction descriptor (which the client must then send with
//! every request of the transaction), and reported to the handler
//! ([`Handler::transaction`]). With `XACT_ABORT ON`, an error answered inside a transaction
//! rolls it back, and a connection that ends with a transaction open rolls it back, as on a
//! real server.
//!
//! Two answers follow what real servers do, so that the product fails here where it would fail
//! there:
//!
//! - An RPC parameter sent as TDS NULLTYPE (0x1F, no type and no value: how tiberius sends a NULL
//!   string, date or timestamp) is refused with error 8009 naming the parameter, as Babelfish
//!   for PostgreSQL 4.3 refuses it ([`request::Refused`]).
//! - `sp_describe_undeclared_parameters` answers one row per parameter of the batch, in order of
//!   first use, and error 11508 ("The undeclared parameter '@P1' is used more than once in the
//!   batch being analyzed") when a parameter appears twice, as SQL Server does; the type each
//!   row suggests is the [`Handler`]'s.
//!
//! **Windows authentication** is served as SQL Server serves NTLM: a LOGIN7 with the
//! integrated-security flag carries an NTLM NEGOTIATE message, the double answers with an SSPI
//! token (0xED) holding an NTLM CHALLENGE with a server challenge it picks at random, the client
//! sends its AUTHENTICATE message in an SSPI message, and the double checks the NTLMv2 proof in
//! it against the [`WindowsAccount`]s it was given ([`ntlm`]). As on SQL Server, a proof that
//! does not verify (a wrong password, an unknown account or domain) is refused with error
//! 18452, and an account that proves its password but has no login on the server with 18456.
//!
//! No SQL Server can run on the machines this project is built on; this is how the SQL Server
//! path is tested end to end. It lives in the test tree only, never in the shipped binary.

pub mod clinic;
pub mod ntlm;
pub mod request;
pub mod tokens;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tds_protocol::{EncryptionLevel, PacketType, PreLogin};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

pub use request::{ParamValue, Request};
pub use tokens::{Cell, Col, ResultSet, SqlType};
use wire::ResponseWriter;

/// What the double answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A result set, possibly interrupted by a fault.
    Rows(ResultSet, Option<Fault>),
    /// A server error (ERROR token, then DONE with the error bit).
    Error {
        number: u32,
        class: u8,
        message: String,
    },
    /// Statements without a result set (DDL, INSERT, DELETE): one DONE per statement, with its
    /// row count when it has one.
    Done(Vec<Option<u64>>),
}

impl Reply {
    pub fn rows(result: ResultSet) -> Self {
        Reply::Rows(result, None)
    }
}

/// Something going wrong part-way through a result set.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Send the metadata and this many rows, then close the socket (no DONE token).
    DropAfterRows(usize),
    /// Send this many rows, then go silent for the duration.
    StallAfterRows(usize, Duration),
}

/// The test's program: answers requests.
pub trait Handler: Send + Sync + 'static {
    /// Answers a SQL batch or an `sp_executesql` call.
    fn execute(&self, request: &Request) -> Reply;

    /// What `sp_describe_undeclared_parameters` says about the parameters of `sql` (`@P1`,
    /// `@P2`, …, each used once: the double answers error 11508 for one used twice, as SQL
    /// Server does): the type name every parameter gets, nothing (an empty result, as some
    /// servers answer), or a server error (number, message).
    fn describe_window_parameter(&self, _sql: &str) -> Result<Option<String>, (u32, String)> {
        Ok(Some("datetime2(7)".into()))
    }

    /// A transaction began, committed or rolled back on some connection.
    fn transaction(&self, _event: Transaction) {}
}

/// A transaction event, with the transaction's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    Begin(u64),
    Commit(u64),
    /// Asked for, forced by an error under `XACT_ABORT ON`, or because the connection ended.
    Rollback(u64),
}

/// Certificate and key (PEM) the double presents when TLS is negotiated.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A Windows account the double's "domain" knows.
#[derive(Debug, Clone)]
pub struct WindowsAccount {
    pub domain: String,
    pub user: String,
    pub password: String,
    /// Whether the server has a login for it (`CREATE LOGIN [DOMAIN\user] FROM WINDOWS`):
    /// without one, a correct password still ends in error 18456, as on SQL Server.
    pub has_login: bool,
}

/// Who logged in, for assertions on how a session was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedIn {
    /// A SQL Server login, by name.
    Sql(String),
    /// A Windows account whose NTLMv2 proof the double verified, as `DOMAIN\user`.
    Ntlm(String),
}

/// How the double behaves as a server.
#[derive(Clone)]
pub struct DoubleConfig {
    /// The SQL Server login (SQL authentication).
    pub user: String,
    pub password: String,
    /// Accounts that may log in with Windows authentication (NTLM).
    pub windows_accounts: Vec<WindowsAccount>,
    pub databases: Vec<String>,
    /// The error a login to a database not in `databases` gets: 4060 (and 18456) as SQL Server
    /// answers, or 911 alone as Babelfish for PostgreSQL does.
    pub missing_database_error: u32,
    /// `None`: the double answers that it does not support encryption.
    pub tls: Option<TlsIdentity>,
    pub handler: Arc<dyn Handler>,
}

/// A running double on 127.0.0.1. Stops when dropped.
pub struct TdsDouble {
    pub addr: SocketAddr,
    /// Every request served, in order (for assertions on parameters).
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// The application name of every successful login.
    pub app_names: Arc<Mutex<Vec<String>>>,
    /// Who each successful login was, in order.
    pub logins: Arc<Mutex<Vec<LoggedIn>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TdsDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TdsDouble {
    pub async fn start(config: DoubleConfig) -> TdsDouble {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test double");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app_names = Arc::new(Mutex::new(Vec::new()));
        let logins = Arc::new(Mutex::new(Vec::new()));
        let tls = config.tls.as_ref().map(acceptor);
        let shared = Arc::new(config);
        let log = requests.clone();
        let seen = Seen {
            apps: app_names.clone(),
            logins: logins.clone(),
        };
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let config = shared.clone();
                let tls = tls.clone();
                let log = log.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    // A failing connection is the client's business (faults, wrong password…);
                    // the double just stops serving it.
                    let _ = serve(socket, &config, tls, &log, &seen).await;
                });
            }
        });
        TdsDouble {
            addr,
            requests,
            app_names,
            logins,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests served so far.
    pub fn served(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }
}

fn acceptor(identity: &TlsIdentity) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&identity.cert)
        .expect("double cert")
        .collect::<Result<_, _>>()
        .expect("double cert");
    let key = PrivateKeyDer::from_pem_file(&identity.key).expect("double key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // TLS 1.2, as SQL Server negotiates inside TDS 7.x prelogin packets.
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("double tls config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// What the double records of successful logins.
#[derive(Clone)]
struct Seen {
    apps: Arc<Mutex<Vec<String>>>,
    logins: Arc<Mutex<Vec<LoggedIn>>>,
}

type Io = Box<dyn AsyncReadWrite>;
trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

async fn serve(
    socket: TcpStream,
    config: &DoubleConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    log: &Mutex<Vec<Request>>,
    seen: &Seen,
) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    let mut socket = socket;
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);

    // PRELOGIN: agree on encryption.
    let Some(msg) = wire::read_message(&mut socket).await? else {
        return Ok(());
    };
    if msg.packet_type != PacketType::PreLogin as u8 {
        return Err(bad("expected PRELOGIN".into()));
    }
    let client = PreLogin::decode(&msg.payload[..]).map_err(|e| bad(e.to_string()))?;
    let wants_tls = !matches!(client.encryption, EncryptionLevel::NotSupported);
    let use_tls = wants_tls && tls.is_some();
    let mut answer = PreLogin::new().with_encryption(if use_tls {
        EncryptionLevel::On
    } else {
        EncryptionLevel::NotSupported
    });
    if client.instance.is_some() {
        // An empty name is the "instance is valid" answer.
        answer = answer.with_instance("");
    }
    wire::write_message(&mut socket, PacketType::PreLogin, &answer.encode()).await?;

    let mut io: Io = match (use_tls, tls) {
        (true, Some(acceptor)) => {
            let mut stream = acceptor.accept(wire::PreloginTls::new(socket)).await?;
            stream.get_mut().0.handshake_done();
            Box::new(stream)
        }
        _ => {
            if wants_tls {
                // The client insists on encryption the double does not offer: it gives up.
                return Ok(());
            }
            Box::new(socket)
        }
    };

    // LOGIN7.
    let Some(msg) = wire::read_message(&mut io).await? else {
        return Ok(());
    };
    if msg.packet_type != PacketType::Tds7Login as u8 {
        return Err(bad(format!(
            "expected LOGIN7, got 0x{:02X}",
            msg.packet_type
        )));
    }
    let login = request::login7(&msg.payload).map_err(bad)?;
    if login.tds_version != 0x7400_0004 {
        return refuse(&mut io, 18456, "TDS 7.4 is expected").await;
    }
    let who = if login.integrated_security {
        match windows_login(&mut io, config, &login).await? {
            Ok(who) => who,
            Err((number, message)) => return refuse(&mut io, number, &message).await,
        }
    } else {
        if login.user != config.user || login.password != config.password {
            let message = format!("Login failed for user '{}'.", login.user);
            return refuse(&mut io, 18456, &message).await;
        }
        LoggedIn::Sql(login.user.clone())
    };
    let login_name = match &who {
        LoggedIn::Sql(name) | LoggedIn::Ntlm(name) => name.clone(),
    };
    let mut w = ResponseWriter::new();
    let out = w.buffer();
    if !config
        .databases
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&login.database))
    {
        if config.missing_database_error == 911 {
            let text = format!("database \"{}\" does not exist", login.database);
            tokens::message(out, true, 911, 16, &text, 1);
        } else {
            tokens::message(
                out,
                true,
                4060,
                11,
                &format!(
                    "Cannot open database \"{}\" requested by the login. The login failed.",
                    login.database
                ),
                1,
            );
            tokens::message(
                out,
                true,
                18456,
                14,
                &format!("Login failed for user '{login_name}'."),
                1,
            );
        }
        tokens::done(out, tokens::DONE_ERROR, 0);
        return w.finish(&mut io).await;
    }
    seen.apps.lock().expect("apps").push(login.app_name.clone());
    seen.logins.lock().expect("logins").push(who);
    tokens::env_change(out, 1, &login.database, "master");
    tokens::message(
        out,
        false,
        5701,
        10,
        &format!("Changed database context to '{}'.", login.database),
        1,
    );
    tokens::login_ack(out);
    tokens::env_change(
        out,
        4,
        &wire::PACKET_SIZE.to_string(),
        &wire::PACKET_SIZE.to_string(),
    );
    tokens::done(out, 0, 0);
    w.finish(&mut io).await?;

    // Requests until the client leaves; a transaction still open then is rolled back, as
    // SQL Server does when a session ends.
    let mut session = Session::default();
    let served = requests(&mut io, config, log, &mut session).await;
    if let Some(descriptor) = session.open.take() {
        config
            .handler
            .transaction(Transaction::Rollback(descriptor));
    }
    served
}

/// Answers a login with an error (severity 14, as SQL Server's login errors) and DONE.
async fn refuse(io: &mut Io, number: u32, message: &str) -> std::io::Result<()> {
    let mut w = ResponseWriter::new();
    tokens::message(w.buffer(), true, number, 14, message, 1);
    tokens::done(w.buffer(), tokens::DONE_ERROR, 0);
    w.finish(io).await
}

/// SQL Server's answer when the SSPI exchange does not authenticate the client: the same words
/// whatever went wrong (wrong password, unknown account, untrusted domain), the reason going to
/// the server's error log only (as error 17806, "SSPI handshake failed").
const UNTRUSTED: &str = "Login failed. The login is from an untrusted domain and cannot be used \
                         with Integrated authentication.";

/// The NTLM exchange of a LOGIN7 with integrated security: the account that proved its password
/// and has a login, or the error SQL Server answers.
async fn windows_login(
    io: &mut Io,
    config: &DoubleConfig,
    login: &request::Login,
) -> std::io::Result<Result<LoggedIn, (u32, String)>> {
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let flags = ntlm::negotiate_flags(&login.sspi).map_err(bad)?;
    let server_challenge: [u8; 8] = rand::random();
    // FILETIME now: a real server's clock, which the client copies into its response.
    let filetime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| 116_444_736_000_000_000 + d.as_nanos() as u64 / 100)
        .unwrap_or(0);
    let mut w = ResponseWriter::new();
    tokens::sspi(
        w.buffer(),
        &ntlm::challenge(flags, server_challenge, filetime),
    );
    w.finish(io).await?;

    // MS-TDS gives the client's next token the SSPI packet type (0x11). tiberius sends it with
    // that type for `AuthMethod::Integrated` but with the LOGIN7 type (0x10) for
    // `AuthMethod::Windows`, which SQL Server accepts too: so does the double.
    let Some(msg) = wire::read_message(io).await? else {
        return Ok(Err((18452, UNTRUSTED.into())));
    };
    if msg.packet_type != 0x11 && msg.packet_type != PacketType::Tds7Login as u8 {
        return Err(bad(format!(
            "expected an SSPI message, got packet type 0x{:02X}",
            msg.packet_type
        )));
    }
    let auth = ntlm::authenticate(&msg.payload).map_err(bad)?;
    let account = config.windows_accounts.iter().find(|a| {
        a.domain.eq_ignore_ascii_case(&auth.domain) && a.user.eq_ignore_ascii_case(&auth.user)
    });
    match account {
        Some(account) if ntlm::verify(&auth, &account.password, &server_challenge) => {
            let name = format!("{}\\{}", account.domain, account.user);
            if account.has_login {
                Ok(Ok(LoggedIn::Ntlm(name)))
            } else {
                Ok(Err((18456, format!("Login failed for user '{name}'."))))
            }
        }
        _ => Ok(Err((18452, UNTRUSTED.into()))),
    }
}

/// Transaction state of one connection.
#[derive(Debug, Default)]
struct Session {
    xact_abort: bool,
    open: Option<u64>,
}

/// Descriptors are unique across the double's connections, as a server's are.
static NEXT_DESCRIPTOR: AtomicU64 = AtomicU64::new(0x5EED_0000_0001);

async fn requests(
    io: &mut Io,
    config: &DoubleConfig,
    log: &Mutex<Vec<Request>>,
    session: &mut Session,
) -> std::io::Result<()> {
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    while let Some(msg) = wire::read_message(io).await? {
        let request = match msg.packet_type {
            0x01 => request::sql_batch(&msg.payload),
            0x03 => request::rpc(&msg.payload),
            0x06 => {
                // ATTENTION: acknowledge the cancel.
                let mut w = ResponseWriter::new();
                tokens::done(w.buffer(), 0x20, 0);
                w.finish(io).await?;
                continue;
            }
            other => Err(format!("packet type 0x{other:02X} is not served")),
        }
        .map_err(bad)?;
        log.lock().expect("log").push(request.clone());
        if !request.rpc
            && let Some(controls) = transaction_control(&request.sql)
        {
            let mut w = ResponseWriter::new();
            control(w.buffer(), &controls, session, config.handler.as_ref());
            w.finish(io).await?;
            continue;
        }
        let reply = answer_to(&request, config);
        // Under XACT_ABORT ON an error ends the transaction (MS-TDS: ERROR, then the rollback
        // ENVCHANGE, then DONE).
        let aborted = match (&reply, session.open) {
            (Reply::Error { class, .. }, Some(descriptor))
                if session.xact_abort && *class >= 11 =>
            {
                session.open = None;
                config
                    .handler
                    .transaction(Transaction::Rollback(descriptor));
                Some(descriptor)
            }
            _ => None,
        };
        if !respond(io, &request, reply, aborted).await? {
            return Ok(()); // a fault closed the connection
        }
    }
    Ok(())
}

/// A transaction control statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    XactAbort(bool),
    Begin,
    Commit,
    Rollback,
    /// `IF @@TRANCOUNT > 0 ROLLBACK`.
    RollbackIfOpen,
}

/// The statements of a batch made only of transaction control; `None` for any other batch.
fn transaction_control(sql: &str) -> Option<Vec<Control>> {
    let mut controls = Vec::new();
    for statement in sql.split(';') {
        let words: Vec<String> = statement
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (conditional, rest) = match words.as_slice() {
            ["IF", "@@TRANCOUNT", ">", "0", rest @ ..] => (true, rest),
            rest => (false, rest),
        };
        let control = match rest {
            [] if !conditional => continue,
            ["SET", "XACT_ABORT", "ON"] => Control::XactAbort(true),
            ["SET", "XACT_ABORT", "OFF"] => Control::XactAbort(false),
            ["BEGIN", "TRAN" | "TRANSACTION"] => Control::Begin,
            ["COMMIT"] | ["COMMIT", "TRAN" | "TRANSACTION"] => Control::Commit,
            ["ROLLBACK"] | ["ROLLBACK", "TRAN" | "TRANSACTION"] if conditional => {
                Control::RollbackIfOpen
            }
            ["ROLLBACK"] | ["ROLLBACK", "TRAN" | "TRANSACTION"] => Control::Rollback,
            _ => return None,
        };
        if conditional && control != Control::RollbackIfOpen {
            return None;
        }
        controls.push(control);
    }
    (!controls.is_empty()).then_some(controls)
}

/// Answers a transaction control batch as SQL Server does (ENVCHANGE tokens, then DONE), or
/// with the error it gives for a COMMIT or ROLLBACK without a transaction.
fn control(out: &mut Vec<u8>, controls: &[Control], session: &mut Session, handler: &dyn Handler) {
    for c in controls {
        let error = match (*c, session.open) {
            (Control::XactAbort(on), _) => {
                session.xact_abort = on;
                None
            }
            (Control::Begin, None) => {
                let descriptor = NEXT_DESCRIPTOR.fetch_add(1, Ordering::Relaxed);
                tokens::transaction_change(
                    out,
                    tokens::ENV_BEGIN_TRANSACTION,
                    &descriptor.to_le_bytes(),
                    &[],
                );
                session.open = Some(descriptor);
                handler.transaction(Transaction::Begin(descriptor));
                None
            }
            // SQL Server would nest (@@TRANCOUNT 2); nothing the product does needs it.
            (Control::Begin, Some(_)) => {
                Some((50000, "the test double does not serve nested transactions"))
            }
            (Control::Commit, Some(descriptor)) => {
                tokens::transaction_change(
                    out,
                    tokens::ENV_COMMIT_TRANSACTION,
                    &[],
                    &descriptor.to_le_bytes(),
                );
                session.open = None;
                handler.transaction(Transaction::Commit(descriptor));
                None
            }
            (Control::Rollback | Control::RollbackIfOpen, Some(descriptor)) => {
                tokens::transaction_change(
                    out,
                    tokens::ENV_ROLLBACK_TRANSACTION,
                    &[],
                    &descriptor.to_le_bytes(),
                );
                session.open = None;
                handler.transaction(Transaction::Rollback(descriptor));
                None
            }
            (Control::RollbackIfOpen, None) => None,
            (Control::Commit, None) => Some((
                3902,
                "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )),
            (Control::Rollback, None) => Some((
                3903,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )),
        };
        if let Some((number, message)) = error {
            tokens::message(out, true, number, 16, message, 1);
            tokens::done(out, tokens::DONE_ERROR, 0);
            return;
        }
    }
    tokens::done(out, 0, 0);
}

const DESCRIBE: &str = "EXEC sp_describe_undeclared_parameters @tsql = @P1";

fn answer_to(request: &Request, config: &DoubleConfig) -> Reply {
    if let Some(refused) = &request.refused {
        return Reply::Error {
            number: 8009,
            class: 16,
            message: refused.message(),
        };
    }
    if request.sql == DESCRIBE {
        let Some(ParamValue::Text(tsql)) = request.param("@P1") else {
            return Reply::Error {
                number: 8144,
                class: 16,
                message: "@tsql is missing".into(),
            };
        };
        let columns = vec![
            Col::new("parameter_ordinal", SqlType::Int),
            Col::new("name", SqlType::NVarChar(128)),
            Col::new("suggested_system_type_id", SqlType::Int),
            Col::new("suggested_system_type_name", SqlType::NVarChar(256)),
        ];
        // As SQL Server answers: one row per parameter, in order of first use, or error 11508
        // when one is used more than once (SQL Server cannot describe such a parameter, even
        // when every use is compared with the same type).
        let names = parameter_uses(tsql);
        let mut distinct: Vec<&str> = Vec::new();
        for name in &names {
            if distinct.iter().any(|d| d.eq_ignore_ascii_case(name)) {
                return Reply::Error {
                    number: 11508,
                    class: 16,
                    message: format!(
                        "The undeclared parameter '{name}' is used more than once in the batch \
                         being analyzed."
                    ),
                };
            }
            distinct.push(name);
        }
        if distinct.is_empty() {
            return Reply::rows(ResultSet {
                columns,
                rows: vec![],
            });
        }
        return match config.handler.describe_window_parameter(tsql) {
            Ok(None) => Reply::rows(ResultSet {
                columns,
                rows: vec![],
            }),
            Ok(Some(name)) => Reply::rows(ResultSet {
                columns,
                rows: distinct
                    .iter()
                    .enumerate()
                    .map(|(i, parameter)| {
                        vec![
                            Cell::Int(i as i64 + 1),
                            Cell::Text((*parameter).to_string()),
                            Cell::Int(0),
                            Cell::Text(name.clone()),
                        ]
                    })
                    .collect(),
            }),
            Err((number, message)) => Reply::Error {
                number,
                class: 16,
                message,
            },
        };
    }
    config.handler.execute(request)
}

/// Every use of a parameter `@P<digits>` in `sql`, in order (the double parses no SQL: comments
/// and literals are not skipped, and the product's queries hold no `@P` in either).
fn parameter_uses(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut uses = Vec::new();
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == b'@' && bytes[i + 1].eq_ignore_ascii_case(&b'P') {
            let digits = bytes[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 {
                uses.push(sql[i..i + 2 + digits].to_string());
                i += 2 + digits;
                continue;
            }
        }
        i += 1;
    }
    uses
}

/// Writes the reply; `false` when a fault closed the connection. `aborted`: the transaction
/// the error rolled back.
async fn respond(
    io: &mut Io,
    request: &Request,
    reply: Reply,
    aborted: Option<u64>,
) -> std::io::Result<bool> {
    let mut w = ResponseWriter::new();
    match reply {
        Reply::Error {
            number,
            class,
            message,
        } => {
            let out = w.buffer();
            tokens::message(out, true, number, class, &message, 1);
            if let Some(descriptor) = aborted {
                tokens::transaction_change(
                    out,
                    tokens::ENV_ROLLBACK_TRANSACTION,
                    &[],
                    &descriptor.to_le_bytes(),
                );
            }
            if request.rpc {
                tokens::done_in_proc(out, tokens::DONE_ERROR, 0);
                tokens::return_status(out, 1);
                tokens::done_proc(out, tokens::DONE_ERROR);
            } else {
                tokens::done(out, tokens::DONE_ERROR, 0);
            }
            w.finish(io).await?;
            Ok(true)
        }
        Reply::Done(counts) => {
            let out = w.buffer();
            let status = |count: &Option<u64>| {
                if count.is_some() {
                    tokens::DONE_COUNT
                } else {
                    0
                }
            };
            if request.rpc {
                // Every statement of the procedure ends in DONEINPROC; DONEPROC ends the call.
                for count in &counts {
                    tokens::done_in_proc(
                        out,
                        status(count) | tokens::DONE_MORE,
                        count.unwrap_or(0),
                    );
                }
                tokens::return_status(out, 0);
                tokens::done_proc(out, 0);
            } else if let Some((last, first)) = counts.split_last() {
                for count in first {
                    tokens::done(out, status(count) | tokens::DONE_MORE, count.unwrap_or(0));
                }
                tokens::done(out, status(last), last.unwrap_or(0));
            } else {
                tokens::done(out, 0, 0);
            }
            w.finish(io).await?;
            Ok(true)
        }
        Reply::Rows(result, fault) => {
            tokens::col_metadata(w.buffer(), &result.columns);
            for (i, row) in result.rows.iter().enumerate() {
                match fault {
                    Some(Fault::DropAfterRows(n)) if i == n => {
                        w.flush_partial(io).await?;
                        let _ = tokio::io::AsyncWriteExt::shutdown(io).await;
                        return Ok(false);
                    }
                    Some(Fault::StallAfterRows(n, pause)) if i == n => {
                        w.flush_partial(io).await?;
                        tokio::time::sleep(pause).await;
                    }
                    _ => {}
                }
                tokens::row(w.buffer(), &result.columns, row);
                w.flush_full(io).await?;
            }
            let count = result.rows.len() as u64;
            let out = w.buffer();
            if request.rpc {
                tokens::done_in_proc(out, tokens::DONE_COUNT, count);
                tokens::return_status(out, 0);
                tokens::done_proc(out, 0);
            } else {
                tokens::done(out, tokens::DONE_COUNT, count);
            }
            w.finish(io).await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_uses_are_found_whole() {
        assert_eq!(
            parameter_uses("a >= @P1 OR b >= @p12 OR c = @Px OR @P1"),
            vec!["@P1", "@p12", "@P1"]
        );
    }

    #[test]
    fn only_batches_of_transaction_control_are_recognised() {
        use Control::*;
        assert_eq!(
            transaction_control("SET XACT_ABORT ON;\nBEGIN TRANSACTION"),
            Some(vec![XactAbort(true), Begin])
        );
        assert_eq!(transaction_control("commit tran;"), Some(vec![Commit]));
        assert_eq!(
            transaction_control("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION"),
            Some(vec![RollbackIfOpen])
        );
        assert_eq!(transaction_control("BEGIN TRAN; DELETE FROM t"), None);
        assert_eq!(transaction_control("IF @@TRANCOUNT > 0 COMMIT"), None);
        assert_eq!(transaction_control("SELECT 1"), None);
    }
}

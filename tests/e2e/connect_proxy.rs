//! A real HTTP CONNECT proxy for the proxy tests (`proxy.rs`), on 127.0.0.1:0, plain or over
//! TLS with the receiver's test certificate: it reads `CONNECT host:port HTTP/1.1`, optionally
//! demands `Proxy-Authorization: Basic …`, opens a TCP connection to the target and splices
//! bytes both ways, as squid and the like do. It keeps what a test needs to show that traffic
//! really went through it, and what a proxy can see of it: the CONNECT targets, the tunnels
//! opened, and every byte that crossed a tunnel.
//!
//! It connects only to loopback targets (`127.0.0.1`, `localhost`, `[::1]`) and answers 502 to
//! any other: whatever a test does, nothing leaves the machine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does with a CONNECT request it accepted (after the login, if one is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Opens the tunnel and splices bytes both ways.
    Tunnel,
    /// Answers with this status (403, 502, …) and closes, as a proxy whose rules forbid the
    /// target or that cannot reach it does.
    Refuse(u16),
    /// Answers 200, then, instead of passing the client's TLS handshake on, answers it with a
    /// plain-HTTP heartbeat: a proxy trying to downgrade the connection to read it.
    Downgrade,
}

/// What the proxy saw, shared with its connection tasks.
#[derive(Debug, Default)]
struct Log {
    connections: AtomicUsize,
    tunnels: AtomicUsize,
    refused_logins: AtomicUsize,
    /// `host:port` of every CONNECT request, in order, whether or not a tunnel followed.
    targets: Mutex<Vec<String>>,
    /// Every byte that crossed a tunnel, both directions, as the proxy saw it.
    traffic: Mutex<Vec<u8>>,
}

/// A running proxy; stops accepting when dropped.
pub struct ConnectProxy {
    addr: SocketAddr,
    tls: bool,
    log: Arc<Log>,
    task: JoinHandle<()>,
}

/// How a proxy is started.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// The user name and password it demands (407 without them).
    pub login: Option<(String, String)>,
    /// Spoken to over TLS, with the receiver's test certificate (an `https://` proxy).
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: Mode::Tunnel,
            login: None,
            tls: false,
        }
    }
}

impl ConnectProxy {
    /// A plain proxy that opens every tunnel it is asked for, without a login.
    pub async fn start() -> ConnectProxy {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Log::default());
        let acceptor = options.tls.then(crate::hostile_reqcheck::tls_acceptor);
        let shared = log.clone();
        let tls = options.tls;
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (log, options, acceptor) = (shared.clone(), options.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, &options, &log).await;
                            }
                        }
                        None => serve(tcp, &options, &log).await,
                    }
                });
            }
        });
        ConnectProxy {
            addr,
            tls,
            log,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS proxy).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// TCP connections accepted, whatever came of them.
    pub fn connections(&self) -> usize {
        self.log.connections.load(Ordering::SeqCst)
    }

    /// Tunnels opened (200 answered and the target connected).
    pub fn tunnels(&self) -> usize {
        self.log.tunnels.load(Ordering::SeqCst)
    }

    /// CONNECT requests answered 407.
    pub fn refused_logins(&self) -> usize {
        self.log.refused_logins.load(Ordering::SeqCst)
    }

    /// The `host:port` of every CONNECT request.
    pub fn targets(&self) -> Vec<String> {
        self.log.targets.lock().expect("targets").clone()
    }

    /// Every byte that crossed a tunnel, both directions.
    pub fn traffic(&self) -> Vec<u8> {
        self.log.traffic.lock().expect("traffic").clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut client: S,
    options: &Options,
    log: &Log,
) {
    let Some((head, early)) = read_head(&mut client).await else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        let _ = answer(&mut client, 400, "Bad Request", "").await;
        return;
    };
    if method != "CONNECT" {
        // Forwarding plain requests is not what these tests are about.
        let _ = answer(&mut client, 405, "Method Not Allowed", "").await;
        return;
    }
    log.targets
        .lock()
        .expect("targets")
        .push(target.to_string());
    if let Some((user, password)) = &options.login {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let given = head.split("\r\n").skip(1).find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_string())
        });
        if given.as_deref() != Some(expected.as_str()) {
            log.refused_logins.fetch_add(1, Ordering::SeqCst);
            let _ = answer(
                &mut client,
                407,
                "Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"clinic proxy\"\r\n",
            )
            .await;
            return;
        }
    }
    match options.mode {
        Mode::Refuse(status) => {
            let _ = answer(&mut client, status, "Refused", "").await;
        }
        Mode::Downgrade => {
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            log.tunnels.fetch_add(1, Ordering::SeqCst);
            // Whatever the client sends first (its TLS ClientHello) is what the proxy gets to
            // see; the answer is plain HTTP where TLS was expected.
            let mut first = vec![0u8; 16 * 1024];
            let n = client.read(&mut first).await.unwrap_or(0);
            log.traffic
                .lock()
                .expect("traffic")
                .extend_from_slice(&first[..n]);
            let body = r#"{"last_update_date":null}"#;
            let _ = client
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            let _ = client.shutdown().await;
        }
        Mode::Tunnel => {
            let Some(upstream) = connect_loopback(target).await else {
                let _ = answer(&mut client, 502, "Bad Gateway", "").await;
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            log.tunnels.fetch_add(1, Ordering::SeqCst);
            splice(client, upstream, early, log).await;
        }
    }
}

/// The request head, up to its blank line, and any bytes that came after it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..at]).into_owned();
            return Some((head, buf[at + 4..].to_vec()));
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn answer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    reason: &str,
    headers: &str,
) -> std::io::Result<()> {
    stream
        .write_all(
            format!(
                "HTTP/1.1 {status} {reason}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    stream.shutdown().await
}

/// A connection to `host:port` if the host is loopback; `None` for any other host.
async fn connect_loopback(target: &str) -> Option<TcpStream> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        other => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?,
    };
    if !ip.is_loopback() {
        return None;
    }
    TcpStream::connect((ip, port)).await.ok()
}

/// Copies bytes both ways until either side closes, keeping a copy of everything.
async fn splice<S: AsyncRead + AsyncWrite + Unpin + Send>(
    client: S,
    upstream: TcpStream,
    early: Vec<u8>,
    log: &Log,
) {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let outbound = async {
        if !early.is_empty() {
            log.traffic
                .lock()
                .expect("traffic")
                .extend_from_slice(&early);
            upstream_write.write_all(&early).await?;
        }
        pump(&mut client_read, &mut upstream_write, log).await?;
        upstream_write.shutdown().await
    };
    let inbound = async {
        pump(&mut upstream_read, &mut client_write, log).await?;
        client_write.shutdown().await
    };
    let _ = tokio::join!(outbound, inbound);
}

async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from: &mut R,
    to: &mut W,
    log: &Log,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        log.traffic
            .lock()
            .expect("traffic")
            .extend_from_slice(&buf[..n]);
        to.write_all(&buf[..n]).await?;
    }
}

//! A hostile ReqCheck for the security tests (`security_reqcheck.rs`): a real HTTP/1.1 server on
//! 127.0.0.1:0, plain or TLS with the receiver's test certificate, that answers each request as
//! the test's script says, down to the bytes on the wire (a redirect, a body that never ends, a
//! body that stalls or breaks off), and logs what reached it. Every connection serves one
//! request and is then closed (or held open, for the stalls).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::support::testdata;

/// A request as it reached the server.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole answer.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// `bytes` of JSON whitespace in 64 KiB pieces, announced as `announced` bytes long (or
    /// chunked), then nothing more while the connection is held open.
    Flood {
        status: u16,
        announced: Option<u64>,
        bytes: usize,
    },
    /// Announces `body`, sends its first `sent` bytes, then holds the connection open without
    /// another byte (`hold`) or closes it.
    Cut {
        status: u16,
        body: Vec<u8>,
        sent: usize,
        hold: bool,
    },
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// ReqCheck's answer to a heartbeat before any import.
    pub fn heartbeat() -> Reply {
        Reply::json(200, r#"{"last_update_date":null}"#)
    }

    /// ReqCheck's answer to an import it stored whole.
    pub fn imported(id: usize) -> Reply {
        Reply::json(
            201,
            &format!(r#"{{"status":"success","data_import_id":{id},"error_objects_ids":[]}}"#),
        )
    }

    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Location", location.to_string())],
            body: Vec::new(),
        }
    }
}

/// Answers a request, given how many requests to its path arrived so far (this one included).
pub type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A running hostile server; stops accepting when dropped.
pub struct Hostile {
    addr: SocketAddr,
    tls: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    body_bytes_written: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// What every connection's task shares.
#[derive(Clone)]
struct Shared {
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<Seen>>>,
    body_bytes_written: Arc<AtomicUsize>,
}

impl Hostile {
    /// Plain HTTP.
    pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Hostile {
        Self::listen(None, Arc::new(script)).await
    }

    /// HTTPS with the receiver's test certificate (for `localhost` and 127.0.0.1), which a
    /// client trusts through `testdata()/ca.pem`.
    pub async fn start_tls(
        script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        Self::listen(Some(tls_acceptor()), Arc::new(script)).await
    }

    /// A server that answers every request with a heartbeat: it must never be reached, and
    /// counts whatever does.
    pub async fn elsewhere() -> Hostile {
        Self::start(|_, _| Reply::heartbeat()).await
    }

    async fn listen(tls: Option<TlsAcceptor>, script: Arc<Script>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Shared {
            script,
            seen: Arc::default(),
            body_bytes_written: Arc::default(),
        };
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen, body_bytes_written) = (shared.seen.clone(), shared.body_bytes_written.clone());
        let counted = connections.clone();
        let serving_tls = tls.is_some();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let (shared, tls) = (shared.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, shared).await;
                            }
                        }
                        None => serve(tcp, shared).await,
                    }
                });
            }
        });
        Hostile {
            addr,
            tls: serving_tls,
            seen,
            connections,
            body_bytes_written,
            task,
        }
    }

    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    /// Requests that reached `path` (e.g. `/heartbeat`).
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }

    /// TCP connections accepted, whether or not a request followed.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Body bytes the server managed to write, over all answers.
    pub fn body_bytes_written(&self) -> usize {
        self.body_bytes_written.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, shared: Shared) {
    let Some(seen) = read_request(&mut stream).await else {
        return;
    };
    let nth = {
        let mut log = shared.seen.lock().expect("log");
        log.push(seen.clone());
        log.iter().filter(|s| s.path == seen.path).count()
    };
    let reply = (shared.script)(&seen, nth);
    let _ = write_reply(&mut stream, reply, &shared.body_bytes_written).await;
}

/// The request head and its `Content-Length` body; `None` if the client went away first.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap_or(0));
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        path,
        authorization: header("authorization"),
        body,
    })
}

async fn write_reply<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    reply: Reply,
    written: &AtomicUsize,
) -> std::io::Result<()> {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let extra: String = headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}\r\n"))
                .collect();
            let head = format!("Content-Length: {}\r\n{extra}", body.len());
            write_head(stream, status, &head).await?;
            stream.write_all(&body).await?;
            written.fetch_add(body.len(), Ordering::SeqCst);
            stream.flush().await?;
            stream.shutdown().await
        }
        Reply::Flood {
            status,
            announced,
            bytes,
        } => {
            let head = match announced {
                Some(n) => format!("Content-Length: {n}\r\n"),
                None => "Transfer-Encoding: chunked\r\n".to_string(),
            };
            write_head(stream, status, &head).await?;
            let piece = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < bytes {
                if announced.is_none() {
                    stream
                        .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                        .await?;
                }
                stream.write_all(&piece).await?;
                if announced.is_none() {
                    stream.write_all(b"\r\n").await?;
                }
                sent += piece.len();
                written.fetch_add(piece.len(), Ordering::SeqCst);
            }
            stream.flush().await?;
            hold(stream).await
        }
        Reply::Cut {
            status,
            body,
            sent,
            hold: held,
        } => {
            write_head(
                stream,
                status,
                &format!("Content-Length: {}\r\n", body.len()),
            )
            .await?;
            stream.write_all(&body[..sent]).await?;
            written.fetch_add(sent, Ordering::SeqCst);
            stream.flush().await?;
            if held { hold(stream).await } else { Ok(()) }
        }
    }
}

async fn write_head<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} Hostile\r\nContent-Type: application/json\r\nConnection: close\r\n\
         {headers}\r\n"
    );
    stream.write_all(head.as_bytes()).await
}

/// Sends nothing more and waits until the client closes the connection.
async fn hold<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).await? > 0 {}
    Ok(())
}

pub fn tls_acceptor() -> TlsAcceptor {
    let dir = testdata();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("test certificate")
        .collect::<Result<_, _>>()
        .expect("test certificate");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("test key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

//! The receiver's public error type.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong starting, running or reading the development receiver.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The listen address could not be bound (in use, or not an address of this machine).
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    /// The TLS certificate file could not be read or holds no PEM certificate.
    #[error("could not load the TLS certificate chain from {path}: {reason}")]
    TlsCert { path: PathBuf, reason: String },

    /// The TLS key file could not be read or holds no PEM private key.
    #[error("could not load the TLS private key from {path}: {reason}")]
    TlsKey { path: PathBuf, reason: String },

    /// rustls refused the certificate/key pair (for example, the key does not match).
    #[error("the TLS certificate and key were rejected: {0}")]
    TlsConfig(#[source] rustls::Error),

    /// The SQLite file could not be opened or initialised.
    #[error("could not open the receiver database {path}: {source}")]
    OpenDb {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The database file could not be created (a missing folder, a link in its place).
    #[error("could not create the receiver database {path}: {reason}")]
    CreateDb { path: PathBuf, reason: String },

    /// `Store::open_read_only` was given a path with no file.
    #[error("the receiver database {path} does not exist")]
    DbMissing { path: PathBuf },

    /// The file is an SQLite database, but not one the receiver created; it is left untouched.
    #[error(
        "{path} is not a reqsync receiver database (refusing to add tables to someone else's file)"
    )]
    NotAReceiverDb { path: PathBuf },

    /// A query on an open receiver database failed.
    #[error("receiver database query failed: {0}")]
    Db(#[from] rusqlite::Error),

    /// A stored value could not be read back (the file was edited by hand, or is damaged).
    #[error("the receiver database holds a value it cannot read: {0}")]
    Corrupt(String),

    /// The HTTP server stopped with an I/O error.
    #[error("the receiver's HTTP server failed: {0}")]
    Serve(#[source] io::Error),

    /// A background task panicked or was cancelled.
    #[error("a receiver task ended abnormally: {0}")]
    Task(String),

    /// Ctrl-C / SIGTERM handlers could not be installed.
    #[error("could not listen for shutdown signals: {0}")]
    Signal(#[source] io::Error),
}

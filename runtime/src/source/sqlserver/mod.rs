//! Microsoft SQL Server through `tiberius` (TDS 7.4 over TCP, TLS by rustls).
//!
//! Each query gets its own connection: log in, learn the window parameters' types, run the query
//! with `sp_executesql` (the window start is a typed parameter per `?`, `@P1`, `@P2`, …, never
//! text in the SQL),
//! and stream rows into the bounded channel. tiberius reads the socket only as fast as rows are
//! taken, so a slow pipeline holds the server back through TCP instead of filling memory.
//!
//! Logging in: a SQL Server login with its password (`auth=sql`), or, in the Windows build, a
//! Windows account with its password through NTLM (`auth=windows`) or the process's own Windows
//! identity through SSPI (`auth=integrated`); see [`config::Auth`] and `docs/CONFIG.md`.
//!
//! TLS backend: tiberius' `rustls` feature (rustls 0.23 with aws-lc-rs, the same stack as the
//! ReqCheck client), chosen because `cargo audit` reports no advisory on it, while tiberius'
//! `native-tls` path would pull OpenSSL bindings and 0.12's rustls path pulled rustls-webpki
//! 0.101 with three open advisories. See `docs/CONFIG.md`.

pub mod config;
mod errors;
pub mod types;
pub mod window;

use std::time::Duration;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use futures::TryStreamExt;
use tiberius::{AuthMethod, Client, ColumnData, EncryptionLevel, QueryItem, SqlBrowser};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::{
    ColumnInfo, ConnectFailure, PlaceholderStyle, Query, RowBatch, RowStream, Source, SourceError,
    Value, bind_window_start, channel,
};
use crate::reqcheck::{CredentialsSource, Secret};
pub use config::{Auth, Credentials, SqlServerUrl, TlsMode, Trust, UserSource};
use window::{Suggestion, WindowType};

/// A logged-in session (the seeder writes through it too).
pub type SqlClient = Client<Compat<TcpStream>>;
type BatchSender = tokio::sync::mpsc::Sender<super::BatchMessage>;

/// A SQL Server clinic database.
#[derive(Debug, Clone)]
pub struct SqlServerSource {
    url: SqlServerUrl,
    login: Login,
    /// The zone of the clinic's local timestamps: `datetimeoffset` instants are shown in it,
    /// and the window start is converted with it when compared with such a column.
    clinic_tz: Tz,
}

impl SqlServerSource {
    /// Reads the login and password and checks the certificate files; connects only when a
    /// query runs. Warns when the URL weakens TLS.
    pub fn open(url: &SqlServerUrl, clinic_tz: Tz) -> Result<Self, SourceError> {
        let open_err = |reason: String| SourceError::Open {
            what: url.display(),
            reason,
        };
        let login = match &url.auth {
            Auth::Sql(credentials) => {
                let (user, password) =
                    read_credentials(credentials, config::AuthKind::Sql).map_err(open_err)?;
                Login::Sql { user, password }
            }
            #[cfg(windows)]
            Auth::Windows(credentials) => {
                let (account, password) =
                    read_credentials(credentials, config::AuthKind::Windows).map_err(open_err)?;
                Login::Windows { account, password }
            }
            #[cfg(windows)]
            Auth::Integrated => Login::Integrated,
            // tiberius offers Windows authentication on Windows only: its Linux NTLM (`sspi-rs`)
            // and Kerberos (`integrated-auth-gssapi`) features are not built (see Cargo.toml).
            // Refused here, before any secret is read, rather than when the URL is parsed: a
            // config meant for the clinic's Windows server still parses (and is checked) on the
            // machine where it is written.
            #[cfg(not(windows))]
            Auth::Windows(_) | Auth::Integrated => {
                return Err(open_err(windows_only(&url.auth)));
            }
        };
        match &url.tls {
            TlsMode::Off => tracing::warn!(
                source = %url.display(),
                "encrypt=false: every row and the login (a SQL Server login's password, or \
                 the NTLM exchange of a Windows account) cross the network unencrypted; use \
                 this on a loopback or otherwise trusted link only"
            ),
            TlsMode::Required { trust, .. } => match trust {
                Trust::AnyCertificate => tracing::warn!(
                    source = %url.display(),
                    "trust_any_certificate=true: the SQL Server certificate is NOT checked; \
                     anyone able to intercept the connection can read the password and every \
                     row. Trust the server's CA (trust_ca_file) or pin its certificate \
                     (trust_server_certificate) instead"
                ),
                Trust::CaFile(path) | Trust::ServerCertificate(path) => {
                    // The driver reads the file itself, whole: make sure it is one of a
                    // certificate's size, not a device or an export named by mistake.
                    crate::input_file::read(path, crate::input_file::CERTIFICATES).map_err(
                        |e| {
                            open_err(format!(
                                "cannot read the certificate file {}: {}",
                                path.display(),
                                e.reason()
                            ))
                        },
                    )?;
                }
                Trust::System => {}
            },
        }
        Ok(Self {
            url: url.clone(),
            login,
            clinic_tz,
        })
    }

    /// The parsed URL.
    pub fn url(&self) -> &SqlServerUrl {
        &self.url
    }

    fn tiberius_config(&self) -> tiberius::Config {
        let url = &self.url;
        let mut config = tiberius::Config::new();
        config.host(&url.host);
        if let Some(port) = url.port {
            config.port(port);
        }
        if let Some(instance) = &url.instance {
            config.instance_name(instance);
        }
        config.database(&url.database);
        config.application_name(&url.application_name);
        config.authentication(match &self.login {
            Login::Sql { user, password } => AuthMethod::sql_server(user, password.expose()),
            // NTLM by tiberius' own NTLMv2 client (the `winauth` crate): the account's name and
            // password are used to answer the server's challenge, never sent.
            #[cfg(windows)]
            Login::Windows { account, password } => AuthMethod::windows(account, password.expose()),
            // Windows' SSPI (NTLM package) with the credentials of the account the process runs
            // as; reqsync never sees them.
            #[cfg(windows)]
            Login::Integrated => AuthMethod::Integrated,
        });
        config.handshake_timeout(Some(url.connect_timeout));
        config.command_timeout(Some(url.query_timeout));
        match &url.tls {
            TlsMode::Off => config.encryption(EncryptionLevel::NotSupported),
            TlsMode::Required {
                trust,
                hostname_in_certificate,
            } => {
                config.encryption(EncryptionLevel::Required);
                match trust {
                    Trust::System => {}
                    // A self-signed server certificate works as its own trust anchor, so pinning
                    // uses the same mechanism as an extra CA; the host name is still checked.
                    Trust::CaFile(path) | Trust::ServerCertificate(path) => {
                        config.trust_cert_ca(path.display())
                    }
                    Trust::AnyCertificate => config.trust_cert(),
                }
                if let Some(name) = hostname_in_certificate {
                    config.hostname_in_certificate(name);
                }
            }
        }
        config
    }

    /// TCP connect, prelogin, TLS and login, within `connect_timeout` in all.
    pub async fn connect(&self) -> Result<SqlClient, SourceError> {
        let url = &self.url;
        let open_err = |(kind, reason): (ConnectFailure, String)| SourceError::Connect {
            what: url.display(),
            kind,
            reason,
        };
        let config = self.tiberius_config();
        let addr = config.get_addr();
        let deadline = tokio::time::Instant::now() + url.connect_timeout;
        let tcp = if url.instance.is_some() {
            tokio::time::timeout_at(deadline, TcpStream::connect_named(&config))
                .await
                .map_err(|_| open_err(errors::tcp_reason(url, &addr, &timed_out())))?
                .map_err(|e| open_err(errors::browser_reason(url, &e)))?
        } else {
            tokio::time::timeout_at(deadline, TcpStream::connect(&addr))
                .await
                .map_err(|_| open_err(errors::tcp_reason(url, &addr, &timed_out())))?
                .map_err(|e| open_err(errors::tcp_reason(url, &addr, &e)))?
        };
        // Requests are small and answered at once; Nagle's delay would only add latency.
        let _ = tcp.set_nodelay(true);
        let client = tokio::time::timeout_at(deadline, Client::connect(config, tcp.compat_write()))
            .await
            .map_err(|_| {
                open_err(errors::connect_reason(
                    url,
                    self.login.user(),
                    &tiberius::error::Error::Io {
                        kind: std::io::ErrorKind::TimedOut,
                        message: "handshake timed out".into(),
                    },
                ))
            })?
            .map_err(|e| open_err(errors::connect_reason(url, self.login.user(), &e)))?;
        Ok(client)
    }

    /// The type to bind the window start as at each of the query's `placeholders` parameters
    /// (`@P1`, `@P2`, …, one per `?`), asked from the server (see [`window`]). Each gets the
    /// type of the column it is compared with, so two placeholders compared with columns of
    /// different types are each rounded to their own column's resolution.
    async fn window_types(
        &self,
        client: &mut SqlClient,
        sql: &str,
        placeholders: usize,
        query: &Query,
    ) -> Result<Vec<WindowType>, SourceError> {
        let described = async {
            let stream = client
                .query(
                    "EXEC sp_describe_undeclared_parameters @tsql = @P1",
                    &[&sql],
                )
                .await?;
            let rows = stream.into_first_result().await?;
            // One row per parameter, by name; a parameter the server could not deduce may be
            // missing, or have no type.
            let mut suggestions: Vec<Option<String>> = vec![None; placeholders];
            for row in rows {
                let name: Option<&str> = row.try_get("name")?;
                let index = name
                    .and_then(|n| n.strip_prefix('@'))
                    .and_then(|n| n.strip_prefix(['P', 'p']))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=placeholders).contains(n));
                if let Some(n) = index {
                    let ty: Option<&str> = row.try_get("suggested_system_type_name")?;
                    suggestions[n - 1] = ty.map(str::to_string);
                }
            }
            Ok::<_, tiberius::error::Error>(suggestions)
        }
        .await;
        let suggestions = match described {
            Ok(suggestions) => suggestions,
            // The server could not deduce the types (e.g. a parameter is compared with columns
            // of different types, or the batch uses temporary tables). The query itself may
            // still be fine; binding datetime2(7) is exact on compatibility level 130+.
            Err(e) => {
                tracing::warn!(
                    query = %query.name,
                    error_code = e.code().unwrap_or(0),
                    "cannot ask SQL Server for the window parameter's type; binding it as \
                     datetime2(7)"
                );
                if client_is_broken(&e) {
                    return Err(SourceError::Query {
                        query: query.name.clone(),
                        reason: errors::query_reason(&e, self.url.query_timeout),
                    });
                }
                return Ok(vec![WindowType::FALLBACK; placeholders]);
            }
        };
        let mut undescribed = Vec::new();
        let types = suggestions
            .into_iter()
            .enumerate()
            .map(|(i, suggestion)| match suggestion {
                Some(name) => match WindowType::from_suggestion(&name) {
                    Suggestion::Use(ty) => ty,
                    Suggestion::Unusual(name) => {
                        tracing::warn!(
                            query = %query.name,
                            parameter = %format!("@P{}", i + 1),
                            suggested_type = %name,
                            "the window start is compared with a column that is not a date or \
                             time type; binding it as datetime2(7)"
                        );
                        WindowType::FALLBACK
                    }
                },
                None => {
                    undescribed.push(format!("@P{}", i + 1));
                    WindowType::FALLBACK
                }
            })
            .collect();
        // No row (or no type) for a parameter: some servers (and compatibility levels)
        // describe nothing rather than fail. Exact on compatibility level 130+, as above.
        if !undescribed.is_empty() {
            tracing::warn!(
                query = %query.name,
                parameters = %undescribed.join(", "),
                "SQL Server did not describe the window parameter's type; binding it as \
                 datetime2(7)"
            );
        }
        Ok(types)
    }
}

/// Who logs in, with what: read when the source opens, so that a missing password is reported
/// before any connection is attempted.
#[derive(Debug, Clone)]
enum Login {
    Sql {
        user: String,
        password: Secret,
    },
    #[cfg(windows)]
    Windows {
        /// `DOMAIN\name` or `name@domain`.
        account: String,
        password: Secret,
    },
    #[cfg(windows)]
    Integrated,
}

impl Login {
    /// The name to quote in messages; `None` for the process's own identity, whose name only
    /// the server's answer tells.
    fn user(&self) -> Option<&str> {
        match self {
            Login::Sql { user, .. } => Some(user),
            #[cfg(windows)]
            Login::Windows { account, .. } => Some(account),
            #[cfg(windows)]
            Login::Integrated => None,
        }
    }
}

/// Reads a login name and its password from where the URL says, checking the name is of the
/// kind `auth=` expects.
fn read_credentials(
    credentials: &Credentials,
    kind: config::AuthKind,
) -> Result<(String, Secret), String> {
    let user = match &credentials.user {
        UserSource::Literal(u) => u.clone(),
        UserSource::Env(var) => {
            let user = std::env::var(var).map_err(|_| {
                format!(
                    "no login name: export {var}, or name the login in the URL \
                     (sqlserver://LOGIN@HOST/DATABASE)"
                )
            })?;
            config::check_user(kind, &user).map_err(|reason| format!("${var}: {reason}"))?;
            user
        }
    };
    let password = match &credentials.password {
        CredentialsSource::Env(var) => std::env::var(var).map_err(|_| {
            format!("no password: export {var}, or set `password_file=PATH` in the URL")
        })?,
        CredentialsSource::File(path) => crate::secret_file::read(path)
            .map_err(|e| format!("password_file: {e}"))?
            // A trailing newline is how editors and `echo` write files, not part of the secret.
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        CredentialsSource::Store(secret) => secret
            .read()
            .map_err(|e| format!("password_secret: {e}"))?
            .secret
            .expose()
            .to_string(),
    };
    if user.is_empty() || password.is_empty() {
        return Err("the login name or the password is empty".into());
    }
    Ok((user, Secret::new(password)))
}

/// Why `auth=windows` or `auth=integrated` cannot be used by this (non-Windows) build.
#[cfg(not(windows))]
fn windows_only(auth: &Auth) -> String {
    let what = match auth {
        Auth::Integrated => {
            "`auth=integrated` (the Windows account reqsync runs as, through SSPI) works only in \
             the Windows build of reqsync, running on Windows"
        }
        _ => {
            "`auth=windows` (a Windows account through NTLM) works only in the Windows build of \
             reqsync: the SQL Server driver offers NTLM and SSPI on Windows only"
        }
    };
    format!(
        "{what}; on this system, log in with a SQL Server login instead (remove `auth=`, name \
         the login in the URL and give its password with `password_env` or `password_file`), \
         or run reqsync on the clinic's Windows server"
    )
}

/// Why a statement that writes (the seed's DDL and upserts) failed, naming nothing from its
/// rows: SQL Server's message only for errors whose text quotes no value.
pub fn describe_write_error(e: &tiberius::error::Error, query_timeout: Duration) -> String {
    errors::write_reason(e, query_timeout)
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")
}

/// An I/O error leaves the connection unusable; a server error does not.
fn client_is_broken(e: &tiberius::error::Error) -> bool {
    matches!(e, tiberius::error::Error::Io { .. })
}

impl Source for SqlServerSource {
    async fn stream(
        &self,
        query: &Query,
        window_start: NaiveDateTime,
        batch_rows: usize,
    ) -> Result<RowStream, SourceError> {
        let (tx, rx) = channel();
        let (columns_tx, columns_rx) = oneshot::channel();
        let source = self.clone();
        let query = query.clone();
        let batch_rows = batch_rows.max(1);
        tokio::spawn(async move {
            read_query(&source, &query, window_start, batch_rows, columns_tx, tx).await;
        });
        let columns = columns_rx.await.map_err(|_| {
            SourceError::Reader("SQL Server reader ended before the query started".into())
        })??;
        Ok(RowStream {
            columns,
            batches: rx,
        })
    }
}

/// Reads one query on its own connection: starts it and says which columns it returns (or why
/// it cannot run) on `columns_tx`, then streams its rows into `tx` in batches of `batch_rows`.
async fn read_query(
    source: &SqlServerSource,
    query: &Query,
    window_start: NaiveDateTime,
    batch_rows: usize,
    columns_tx: oneshot::Sender<Result<Vec<ColumnInfo>, SourceError>>,
    tx: BatchSender,
) {
    let mut client = match source.connect().await {
        Ok(c) => c,
        Err(e) => {
            let _ = columns_tx.send(Err(e));
            return;
        }
    };
    let (stream, columns) = match start_query(source, &mut client, query, window_start).await {
        Ok(started) => started,
        Err(e) => {
            let _ = columns_tx.send(Err(e));
            return;
        }
    };
    let infos = columns
        .iter()
        .map(|(name, ty)| ColumnInfo {
            name: name.clone(),
            declared_type: types::declared_type(*ty).to_string(),
        })
        .collect();
    if columns_tx.send(Ok(infos)).is_err() {
        return;
    }
    let reader = Reader {
        source,
        query,
        columns: &columns,
        batch_rows,
    };
    if let Err(Stop::Failed(error)) = reader.read(stream, &tx).await {
        let _ = tx.send(Err(error)).await;
    }
}

/// A result column: its name and the type the server declared.
type ResultColumn = (String, tiberius::ColumnType);

/// Runs the query with the window start bound to each of its placeholders, and reads the
/// columns of its result (refusing binary ones) before any row.
async fn start_query<'c>(
    source: &SqlServerSource,
    client: &'c mut SqlClient,
    query: &Query,
    window_start: NaiveDateTime,
) -> Result<(tiberius::QueryStream<'c>, Vec<ResultColumn>), SourceError> {
    let (sql, placeholders) = bind_window_start(&query.sql, PlaceholderStyle::SqlServer);
    let bound = window_values(source, client, &sql, placeholders, query, window_start).await?;
    let params: Vec<&dyn tiberius::ToSql> =
        bound.iter().map(|p| p as &dyn tiberius::ToSql).collect();
    let mut stream = client
        .query(sql.as_str(), &params)
        .await
        .map_err(|e| query_error(source, query, &e))?;
    let columns: Vec<ResultColumn> = match stream.columns().await {
        Ok(Some(cols)) => cols
            .iter()
            .map(|c| (c.name().to_string(), c.column_type()))
            .collect(),
        Ok(None) => {
            return Err(SourceError::Query {
                query: query.name.clone(),
                reason: "the query returned no result set (a SELECT is expected)".into(),
            });
        }
        Err(e) => return Err(query_error(source, query, &e)),
    };
    if let Some((name, ty)) = columns.iter().find(|(_, ty)| types::is_binary(*ty)) {
        return Err(SourceError::Value {
            query: query.name.clone(),
            column: name.clone(),
            reason: format!(
                "a binary column ({}) cannot be passed to a transform (they receive no bytes): \
                 leave it out of the query, or convert it in SQL, e.g. \
                 CONVERT(varchar(max), {name}, 2) for hexadecimal text",
                types::declared_type(*ty)
            ),
        });
    }
    Ok((stream, columns))
}

/// One value per placeholder (`@P1`, `@P2`, …), each the window start as its own type.
async fn window_values(
    source: &SqlServerSource,
    client: &mut SqlClient,
    sql: &str,
    placeholders: usize,
    query: &Query,
    window_start: NaiveDateTime,
) -> Result<Vec<ColumnData<'static>>, SourceError> {
    if placeholders == 0 {
        return Ok(Vec::new());
    }
    let types = source
        .window_types(client, sql, placeholders, query)
        .await?;
    types
        .into_iter()
        .map(|ty| {
            ty.bind(window_start, source.clinic_tz)
                .map_err(|reason| SourceError::Query {
                    query: query.name.clone(),
                    reason: format!("the window start cannot be bound: {reason}"),
                })
        })
        .collect()
}

/// Why the query (or reading its result) failed, in the words of [`errors::query_reason`].
fn query_error(source: &SqlServerSource, query: &Query, e: &tiberius::error::Error) -> SourceError {
    SourceError::Query {
        query: query.name.clone(),
        reason: errors::query_reason(e, source.url.query_timeout),
    }
}

/// Why reading stopped before the end of the result.
enum Stop {
    /// The pipeline stopped listening (the run was abandoned): nothing more to say.
    Abandoned,
    /// The result cannot be read to its end: the error ends the stream, and the pipeline fails
    /// the job instead of sending a partial group.
    Failed(SourceError),
}

/// Converts a started query's rows into batches.
struct Reader<'a> {
    source: &'a SqlServerSource,
    query: &'a Query,
    columns: &'a [ResultColumn],
    batch_rows: usize,
}

impl Reader<'_> {
    /// Reads every row into batches, sending each full one (and the last, partial one).
    async fn read(
        &self,
        mut stream: tiberius::QueryStream<'_>,
        tx: &BatchSender,
    ) -> Result<(), Stop> {
        let mut batch = RowBatch::new(self.columns.len());
        let mut row_number = 0u64;
        let mut result_sets = 0u32;
        while let Some(item) = stream
            .try_next()
            .await
            .map_err(|e| Stop::Failed(query_error(self.source, self.query, &e)))?
        {
            let row = match item {
                QueryItem::Metadata(_) => {
                    result_sets += 1;
                    if result_sets > 1 {
                        return Err(Stop::Failed(SourceError::Query {
                            query: self.query.name.clone(),
                            reason: "the query returned more than one result set; a query \
                                     file must be one SELECT"
                                .into(),
                        }));
                    }
                    continue;
                }
                QueryItem::Row(row) => row,
            };
            row_number += 1;
            self.append(row, row_number, &mut batch)
                .map_err(Stop::Failed)?;
            if batch.len() == self.batch_rows {
                let next = batch.empty_like();
                let full = std::mem::replace(&mut batch, next);
                // Waits while the pipeline is behind: this is the backpressure.
                tx.send(Ok(full)).await.map_err(|_| Stop::Abandoned)?;
            }
        }
        if !batch.is_empty() {
            tx.send(Ok(batch)).await.map_err(|_| Stop::Abandoned)?;
        }
        Ok(())
    }

    /// Converts one row into `batch`'s columns, or says which column of row `row_number`
    /// failed and why (never its value).
    fn append(
        &self,
        row: tiberius::Row,
        row_number: u64,
        batch: &mut RowBatch,
    ) -> Result<(), SourceError> {
        for (i, ((name, ty), (_, data))) in self.columns.iter().zip(row.cells()).enumerate() {
            let value = types::to_value(*ty, data, self.source.clinic_tz).and_then(|v| match &v {
                Value::Text(t) if t.len() > super::MAX_VALUE_BYTES => {
                    Err(super::too_large(t.len()))
                }
                _ => Ok(v),
            });
            match value {
                Ok(v) => batch.push(i, v.as_cell()),
                Err(reason) => {
                    return Err(SourceError::Value {
                        query: self.query.name.clone(),
                        column: name.clone(),
                        reason: format!("row {row_number}: {reason}"),
                    });
                }
            }
        }
        // A row with fewer cells than columns gets NULL for the rest.
        batch.finish_row();
        Ok(())
    }
}

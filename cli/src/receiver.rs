//! `reqsync receiver`: the ReqCheck-compatible development endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqsync_receiver::{FaultRule, Faults, ReceiverConfig, Store, TlsFiles};
use reqsync_runtime::config::{DEFAULT_PASSWORD_ENV, DEFAULT_USERNAME_ENV};

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReceiverArgs {
    #[command(subcommand)]
    pub command: Option<ReceiverCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReceiverCommand {
    /// Show what a receiver database holds: counts, imports and record errors; with --json,
    /// every stored record (test data only: a receiver holds whatever it was sent).
    Dump(DumpArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// SQLite file holding what the receiver was sent (created if missing).
    #[arg(long, default_value = "receiver.db")]
    pub db: PathBuf,
    /// TLS certificate (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Username clients must send (ReqCheck's development default is `test`).
    #[arg(long, env = "RECEIVER_USERNAME", default_value = "test")]
    pub username: String,
    /// Password clients must send (ReqCheck's development default is `test`).
    #[arg(
        long,
        env = "RECEIVER_PASSWORD",
        default_value = DEFAULT_PASSWORD,
        hide_default_value = true,
        hide_env_values = true
    )]
    pub password: String,
    /// Fail requests on purpose, to test a client's retries (repeatable; the first matching
    /// rule wins): ENDPOINT:N=ACTION or ENDPOINT:N..=ACTION.
    ///
    /// ENDPOINT is heartbeat, patient_data, vaccine_dose_data or * (any). N counts the requests
    /// to that endpoint from 1, once past HTTP Basic auth; N.. is the Nth and every later one.
    /// ACTION is one of:
    ///   STATUS                   answer this 4xx/5xx status, store nothing (e.g. 503);
    ///   STATUS+retry-after=SECS  the same with a Retry-After header in seconds
    ///                            (+retry-after-date=SECS: as an HTTP-date SECS from now);
    ///   delay=DURATION           wait (e.g. 500ms, 2s), then answer normally;
    ///   reset                    close the connection without an answer;
    ///   store-then-500           store the import, then answer 500.
    /// Example: --fault patient_data:1=503 --fault 'patient_data:2..=429+retry-after=1'.
    /// The plan is logged at start.
    #[arg(long = "fault", value_name = "SPEC", verbatim_doc_comment)]
    pub faults: Vec<FaultRule>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The receiver database.
    #[arg(long, default_value = "receiver.db")]
    pub db: PathBuf,
    /// Print every stored patient, dose, import and error as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ReceiverArgs) -> Result<u8, Failure> {
    match args.command {
        Some(ReceiverCommand::Dump(dump)) => {
            let store = Store::open_read_only(&dump.db)
                .or_exit(exit::CONFIG, "cannot open the receiver database")?;
            let contents = store
                .dump()
                .or_exit(exit::INTERNAL, "cannot read the receiver database")?;
            if dump.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&contents)
                        .or_exit(exit::INTERNAL, "cannot write JSON")?
                );
            } else {
                print!("{}", contents.summary());
            }
            Ok(exit::OK)
        }
        None => {
            let s = args.serve;
            let tls = match (s.tls_cert, s.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                _ => None,
            };
            let config = ReceiverConfig {
                listen: s.listen,
                db_path: s.db,
                username: s.username,
                password: s.password,
                tls,
                faults: Faults::new(s.faults),
            };
            let default_password = config.password == DEFAULT_PASSWORD;
            let username = config.username.clone();
            let running = reqsync_receiver::start(config)
                .await
                .or_exit(exit::CONFIG, "the receiver did not start")?;
            eprintln!(
                "{}",
                how_to_use(&running.base_url(), &username, default_password)
            );
            reqsync_receiver::serve_until_signal(running)
                .await
                .or_exit(exit::CONFIG, "the receiver stopped")?;
            Ok(exit::OK)
        }
    }
}

/// ReqCheck's development password, the receiver's default: documented, so printed; any other
/// password is not.
const DEFAULT_PASSWORD: &str = "test";

/// What the receiver prints once it listens: where, and how to point a project at it (a new
/// user otherwise finds the address and the login only in `--help`).
fn how_to_use(base_url: &str, username: &str, default_password: bool) -> String {
    let password = if default_password {
        format!("{DEFAULT_PASSWORD_ENV}={DEFAULT_PASSWORD}")
    } else {
        format!("{DEFAULT_PASSWORD_ENV}=<the receiver's --password>")
    };
    let init = if base_url == DEV_URL {
        "`reqsync init DIR --dev` writes a project that uses it".to_owned()
    } else {
        format!("`reqsync init DIR --reqcheck-url {base_url}` writes a project that uses it")
    };
    format!(
        "receiver listening on {base_url} (Ctrl-C to stop)\n\
         {init} (or set `url = \"{base_url}\"` under [reqcheck]); a run there needs \
         {DEFAULT_USERNAME_ENV}={username} {password}"
    )
}

/// Where `reqsync receiver` listens by default, and what `reqsync init --dev` points at.
const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEV_URL: &str = "http://127.0.0.1:3000";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_dev_points_at_where_the_receiver_listens_by_default() {
        assert_eq!(DEV_URL, format!("http://{DEFAULT_LISTEN}"));
    }

    #[test]
    fn the_receiver_says_how_to_point_a_project_at_it_without_a_password_it_was_given() {
        let default = how_to_use(DEV_URL, "test", true);
        assert!(default.contains("http://127.0.0.1:3000"), "{default}");
        assert!(default.contains("init DIR --dev"), "{default}");
        assert!(default.contains("REQCHECK_PASSWORD=test"), "{default}");
        let other = how_to_use("https://127.0.0.1:8443", "clinic", false);
        assert!(
            other.contains("--reqcheck-url https://127.0.0.1:8443"),
            "{other}"
        );
        assert!(other.contains("REQCHECK_USERNAME=clinic"), "{other}");
        assert!(!other.contains("REQCHECK_PASSWORD=test"), "{other}");
    }
}

//! `reqsync receiver`: the ReqCheck-compatible development endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqsync::receiver::{self, FaultRule, Faults, ReceiverConfig, Store, TlsFiles};

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
    #[arg(long, default_value = "127.0.0.1:3000")]
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
        default_value = "test",
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
            eprintln!("receiver listening on {} (Ctrl-C to stop)", config.listen);
            receiver::serve_forever(config)
                .await
                .or_exit(exit::CONFIG, "the receiver stopped")?;
            Ok(exit::OK)
        }
    }
}

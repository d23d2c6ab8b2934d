//! The `reqsync` command line.
//!
//! A thin binary over the library crates: command-line definitions (flags are defined once
//! here; `--help` comes from them), dispatch, and each command's module.

mod audit;
mod check;
mod closed_output;
mod daemon;
mod demo;
mod engine_options;
mod exit;
mod history;
mod init;
mod logging;
mod notify;
mod quarantine;
mod receiver;
mod run;
mod schedule;
mod secret;
mod seed;
mod service;
mod service_health;
mod status;
mod transform;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::Failure;

fn main() -> ExitCode {
    closed_output::end_quietly_when_the_reader_leaves();
    let args = Cli::parse();
    // Started by the Windows Service Control Manager: the service's thread sets up its own log
    // (in files: there is no console) and runtime.
    #[cfg(windows)]
    if let Command::Service(service::ServiceArgs {
        action: service::ServiceAction::Run(run),
    }) = args.command
    {
        return service::dispatch(run);
    }
    let quietness = match &args.command {
        // The demo prints its own narrative; the in-process receiver's request log would drown
        // it.
        Command::Demo(_) => logging::Quietness::Warnings,
        // Their output is a report (`dev`: one status line per save); -v adds the log.
        Command::Transform(t)
            if matches!(
                t.command,
                transform::TransformCommand::Test(_) | transform::TransformCommand::Dev(_)
            ) =>
        {
            logging::Quietness::Report
        }
        _ if args.quiet => logging::Quietness::Warnings,
        _ => logging::Quietness::Run,
    };
    match &args.log_dir {
        Some(dir) => {
            if let Err(e) = logging::init_files(dir, args.verbose, args.log_json, quietness) {
                eprintln!("error: {e:#}");
                return ExitCode::from(exit::CONFIG);
            }
        }
        None => logging::init(args.verbose, args.log_json, quietness),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let outcome = runtime.block_on(dispatch(args));
    // The last audit entries may still be on their way to disk (`audit::flush`).
    reqsync_runtime::audit::flush();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // `{:#}` prints the context chain on one line: what failed, then why.
            eprintln!("error: {:#}", e.error);
            ExitCode::from(e.code)
        }
    }
}

/// Keeps ReqCheck fed from a clinic database: reads changed rows, maps and validates them in
/// sandboxed WebAssembly transform modules, and posts them to ReqCheck.
#[derive(Debug, Parser)]
#[command(name = "reqsync", version, about, long_about = None, after_help = exit::HELP)]
pub struct Cli {
    /// More log output (-v: debug and the audit events, -vv: trace). Logs never contain row
    /// values. REQSYNC_LOG overrides the level with a filter (REQSYNC_LOG=warn,reqsync=debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Warnings and errors only (a command's own output, such as a run's summary, still prints).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Write logs as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Write the log to a file a day in this folder (the last 30 kept) instead of stderr: for
    /// a daemon or a scheduled run that no terminal or journal is watching.
    #[arg(long, global = true, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one sync now (what cron or Windows Task Scheduler calls).
    Run(run::RunArgs),
    /// Load every job and check each query's columns against its transform module, without
    /// reading rows or contacting ReqCheck.
    Check(check::CheckArgs),
    /// Run the jobs on their `schedule`s until SIGTERM or Ctrl-C; serve /healthz and /metrics.
    Daemon(daemon::DaemonArgs),
    /// Seed a clinic database with the source schema and test data.
    Seed(seed::SeedArgs),
    /// Run the ReqCheck-compatible development receiver, or inspect what it holds.
    Receiver(receiver::ReceiverArgs),
    /// Write a complete, working project folder (config, queries, templates, transform modules).
    Init(init::InitArgs),
    /// Transform modules: new, build, dev, test, try, diff, inspect, list.
    Transform(transform::TransformArgs),
    /// Did the last sync work? Each job's last run, last complete run, next run, quarantine and
    /// module; exit 11 when a last run failed, 12 when no run completed within `max_age`.
    Status(status::StatusArgs),
    /// Recent runs from the run ledger: windows, counts, statuses, ReqCheck's import ids.
    History(history::HistoryArgs),
    /// Rows a transform rejected: list them, show one, or replay those that now pass.
    Quarantine(quarantine::QuarantineArgs),
    /// Build a demo clinic database, start a receiver, and run a full and an incremental sync.
    Demo(demo::DemoArgs),
    /// Check the hash chain of an audit trail (`[audit] file`).
    Audit(audit::AuditArgs),
    /// Run the daemon as a Windows service: install, start, stop, status, uninstall.
    Service(service::ServiceArgs),
    /// Run one sync a day from Windows Task Scheduler: install, show (the task's XML),
    /// uninstall.
    Schedule(schedule::ScheduleArgs),
    /// Notifications (`[notify]`): `test` sends a test notice to every configured channel.
    Notify(notify::NotifyArgs),
    /// Store the secrets `*_secret` keys name (`password_secret = "NAME"`): set, check, remove.
    Secret(secret::SecretArgs),
}

pub async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Check(args) => check::run(args).await,
        Command::Daemon(args) => daemon::run(args).await,
        Command::Seed(args) => seed::run(args).await,
        Command::Receiver(args) => receiver::run(args).await,
        Command::Init(args) => init::run(args),
        // Module calls block (and a guest writing to stderr, e.g. when it panics, makes WASI
        // block on its own runtime), so they must not run on an async worker thread.
        Command::Transform(args) => tokio::task::spawn_blocking(move || transform::run(args))
            .await
            .map_err(|e| Failure::new(exit::INTERNAL, anyhow::anyhow!("transform command: {e}")))?,
        Command::Demo(args) => demo::run(args).await,
        Command::Audit(args) => audit::run(args),
        Command::Status(args) => status::run(args).await,
        Command::History(args) => history::run(args),
        Command::Quarantine(args) => quarantine::run(args).await,
        Command::Schedule(args) => tokio::task::spawn_blocking(move || schedule::run(args))
            .await
            .map_err(|e| Failure::new(exit::INTERNAL, anyhow::anyhow!("schedule command: {e}")))?,
        // Blocking calls into the Service Control Manager (`stop` waits for the service).
        Command::Service(args) => tokio::task::spawn_blocking(move || service::run(args))
            .await
            .map_err(|e| Failure::new(exit::INTERNAL, anyhow::anyhow!("service command: {e}")))?,
        Command::Secret(args) => secret::run(args),
        Command::Notify(args) => notify::run(args).await,
    }
}

/// The default config file: `reqsync.toml` in the current folder.
pub fn default_config() -> PathBuf {
    PathBuf::from("reqsync.toml")
}

/// Which config to load, and the overrides every command that runs jobs accepts.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The config file.
    #[arg(long, short, default_value_os_t = default_config())]
    pub config: PathBuf,
    /// Read from this source instead of the config's (e.g. sqlite://clinic.db).
    #[arg(long)]
    pub source: Option<String>,
    /// Send to this ReqCheck instead of the config's.
    #[arg(long)]
    pub reqcheck_url: Option<String>,
}

impl ConfigArgs {
    /// Loads the config and applies the overrides.
    pub fn load(&self) -> Result<reqsync_runtime::config::Config, Failure> {
        use exit::OrExit;
        let mut config = reqsync_runtime::config::Config::load(&self.config)
            .or_exit(exit::CONFIG, "cannot load the configuration")?;
        if let Some(url) = &self.reqcheck_url {
            config
                .set_reqcheck_url(url)
                .or_exit(exit::CONFIG, "--reqcheck-url")?;
        }
        if let Some(url) = &self.source {
            config.source_url = url.clone();
            config
                .check_secret_files()
                .or_exit(exit::CONFIG, "cannot load the configuration")?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (duplicate flags, a global flag a
    /// subcommand redefines, bad defaults): they run only for the subcommand a user types, so
    /// a command nobody tested by hand (`service run`, which only Windows starts) would
    /// otherwise panic there first.
    #[test]
    fn every_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// `reqsync --help` is where a new user learns what `transform` holds: its one line names
    /// every subcommand (it once said "Inspect transform modules", hiding test, try and diff).
    #[test]
    fn the_transform_line_of_the_help_names_every_transform_subcommand() {
        use clap::CommandFactory;
        let cli = super::Cli::command();
        let transform = cli.find_subcommand("transform").expect("transform");
        let about = transform.get_about().expect("about").to_string();
        for sub in transform.get_subcommands() {
            let name = sub.get_name();
            assert!(
                about.split([' ', ',', '.', ':']).any(|w| w == name),
                "`{name}` is missing from {about:?}"
            );
        }
    }
}

//! `reqsync service`: the daemon as a Windows service. `install` registers it with the Service
//! Control Manager (SCM), `start` / `stop` / `status` / `uninstall` drive it, and the hidden
//! `run` is what the SCM starts: the daemon with its log in files (a service has no console)
//! and the SCM's stop request doing what SIGTERM does elsewhere.
//!
//! On Linux the daemon runs under systemd (the unit the .deb installs); this command says so.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[cfg(windows)]
mod windows;

#[cfg(not(windows))]
use super::exit;
use super::exit::Failure;

/// The service's name, unless `--name` says otherwise (several projects on one server each
/// get a service of their own).
pub const DEFAULT_NAME: &str = "reqsync";

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub action: ServiceAction,
}

#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Register the daemon as a Windows service that starts with the machine (run as an
    /// administrator). The config is checked first.
    Install(InstallArgs),
    /// Stop the service if it runs and remove it (config, state and logs stay).
    Uninstall(NameArgs),
    /// Start the service.
    Start(NameArgs),
    /// Ask the service to stop: the run in progress stops at its next request boundary.
    Stop(NameArgs),
    /// Whether the service is installed and running, and how it exited last.
    Status(NameArgs),
    /// What the Service Control Manager starts; not for use in a console.
    #[command(hide = true)]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The service's name.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub name: NameArgs,
    /// The config the service runs (default: %ProgramData%\reqsync\reqsync.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where the service writes its log files, one a day, the last 30 kept
    /// (default: %ProgramData%\reqsync\logs).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// The account the service runs as. The default, the virtual account
    /// `NT SERVICE\<name>`, has no password and no rights beyond its own folders; it reaches
    /// SQL Server with Windows authentication as the machine's domain account. A user account
    /// takes its password from REQSYNC_SERVICE_PASSWORD (never a flag: flags show in process
    /// lists).
    #[arg(long)]
    pub account: Option<String>,
    /// Start the service only when asked, not with the machine.
    #[arg(long)]
    pub manual: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub name: NameArgs,
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub log_dir: PathBuf,
}

#[cfg(windows)]
pub use windows::dispatch;

#[cfg(windows)]
pub fn run(args: ServiceArgs) -> Result<u8, Failure> {
    windows::control(args.action)
}

#[cfg(not(windows))]
pub fn run(_args: ServiceArgs) -> Result<u8, Failure> {
    Err(Failure::new(
        exit::USAGE,
        anyhow::anyhow!(
            "`reqsync service` manages a Windows service; on Linux run `reqsync daemon` under \
             systemd (the reqsync.service unit the .deb installs; docs/INSTALL.md)"
        ),
    ))
}

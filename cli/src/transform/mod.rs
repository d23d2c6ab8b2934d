//! `reqsync transform …`: work on transform modules without a database or ReqCheck.
//!
//! `new` writes a module folder to start from and `build` builds one (the analyst's kit, see
//! [`kit`]); `list` shows what a config would run; `inspect` describes one module file; `test`
//! checks a module against its example cases and generated rows; `try` shows what a module does
//! to given rows; `diff` compares two versions of a module on the same rows.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use reqsync_runtime::config::Config;
use reqsync_runtime::transform::{CompiledModule, TransformEngine, TransformInstance};

use super::engine_options::{CacheArgs, EngineOptions};
use super::exit::{self, Failure, OrExit};

mod build;
mod dev;
mod diff;
mod inspect;
pub mod kit;
mod list;
mod new;
mod row_input;
mod test;
mod try_rows;

#[derive(Debug, Args)]
pub struct TransformArgs {
    #[command(subcommand)]
    pub command: TransformCommand,
}

#[derive(Debug, Subcommand)]
pub enum TransformCommand {
    /// Start a module folder (Rust, Python or JavaScript) from a default module; no reqsync
    /// repository needed.
    New(new::NewArgs),
    /// Build a module folder into build/NAME.wasm, installing the language's build tools on
    /// first use.
    Build(build::BuildArgs),
    /// Watch a module folder: on every save build, test, compare on the project's rows and,
    /// when all passed, deploy into the project (a running service swaps it in).
    Dev(dev::DevArgs),
    /// The module of every job of a config: name, version, record type and content hash —
    /// what the next run (or a service started now) would use.
    List(list::ListArgs),
    /// What a module file is: name, version, WIT world, declared columns and fields, hash.
    Inspect(inspect::InspectArgs),
    /// Check a module alone: its example cases, then generated rows (property tests).
    ///
    /// Prints its report and nothing else; -v (--verbose) adds the host's log, e.g. a warning
    /// for each batch retried row by row after the module failed on one of its rows.
    Test(test::TestArgs),
    /// Show what a module does to given rows.
    Try(try_rows::TryArgs),
    /// Run two versions of a module on the same rows and show what changes.
    Diff(diff::DiffArgs),
}

pub fn run(args: TransformArgs) -> Result<u8, Failure> {
    match args.command {
        TransformCommand::New(a) => new::run(a),
        TransformCommand::Build(a) => build::run(a),
        TransformCommand::Dev(a) => dev::run(a),
        TransformCommand::List(a) => list::run(a),
        TransformCommand::Inspect(a) => inspect::run(a),
        TransformCommand::Test(a) => test::run(a),
        TransformCommand::Try(a) => try_rows::run(a),
        TransformCommand::Diff(a) => diff::run(a),
    }
}

/// `--config` for the commands that take a module file: run it as the project would.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// A project's config file: its `[sync]` sandbox limits apply, and its compiled-module
    /// cache (the one its service uses) is used, so the module is compiled once for this
    /// command and the service.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ProjectArgs {
    /// The engine options of the project `--config` names (when it does) under the cache
    /// flags.
    pub fn engine_options(&self, cache: &CacheArgs) -> Result<EngineOptions, Failure> {
        let config = match &self.config {
            Some(path) => {
                Some(Config::load(path).or_exit(exit::CONFIG, "cannot load the configuration")?)
            }
            None => None,
        };
        Ok(EngineOptions::new(config.as_ref(), cache))
    }
}

/// `reqsync`'s folder under the user's XDG folder `xdg_var` (else `~/<home_default>`), or under
/// `%LOCALAPPDATA%` on Windows.
pub(crate) fn user_folder(xdg_var: &str, home_default: &str) -> Option<PathBuf> {
    let base = std::env::var_os(xdg_var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_default)))
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))?;
    Some(base.join("reqsync"))
}

/// Loads (compiles, or finds in the cache) a module, with a spinner on a terminal: a Python or
/// JavaScript component takes 10–20 s to compile the first time.
pub fn load_with_progress(
    engine: &TransformEngine,
    path: &Path,
) -> Result<CompiledModule, reqsync_runtime::transform::TransformError> {
    let spinner = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!(
            "loading {} (compiled for this machine once per version)",
            path.display()
        ));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let loaded = engine.load(path);
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    loaded
}

/// Loads a module file and instantiates it once (which runs its `describe`).
pub fn load_module(
    engine: &TransformEngine,
    path: &Path,
) -> Result<(CompiledModule, TransformInstance), Failure> {
    let context = format!("transform module {}", path.display());
    let module = engine.load(path).or_exit(exit::TRANSFORM, &context)?;
    let instance = TransformInstance::new(engine, &module).or_exit(exit::TRANSFORM, &context)?;
    Ok((module, instance))
}

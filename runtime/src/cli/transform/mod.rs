//! `reqsync transform …`: work on transform modules without a database or ReqCheck.
//!
//! `list` shows what a config would run; `inspect` describes one module file; `test` checks a
//! module against its example cases and generated rows; `try` shows what a module does to given
//! rows; `diff` compares two versions of a module on the same rows.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use reqsync::transform::{
    CompiledModule, ModuleCache, SandboxLimits, TransformEngine, TransformInstance,
};

use super::exit::{self, Failure, OrExit};

mod diff;
mod inspect;
mod list;
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
        TransformCommand::List(a) => list::run(a),
        TransformCommand::Inspect(a) => inspect::run(a),
        TransformCommand::Test(a) => test::run(a),
        TransformCommand::Try(a) => try_rows::run(a),
        TransformCommand::Diff(a) => diff::run(a),
    }
}

/// Where the commands that take a module file directly keep precompiled modules.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Folder of precompiled modules [default: $XDG_CACHE_HOME/reqsync/modules, else
    /// ~/.cache/reqsync/modules; on Windows %LOCALAPPDATA%\reqsync\modules]. Its entries are
    /// tagged with a key kept in your own state folder ($XDG_STATE_HOME/reqsync, else
    /// ~/.local/state/reqsync; %LOCALAPPDATA%\reqsync on Windows).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile the module on every start instead of caching it.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

impl CacheArgs {
    fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir
            .clone()
            .or_else(|| user_folder("XDG_CACHE_HOME", ".cache").map(|d| d.join("modules")))
    }

    /// The cache the flags name, checked and keyed; `None` with `--no-cache` or when no folder
    /// for it is known (no home folder).
    pub fn module_cache(&self) -> Result<Option<ModuleCache>, Failure> {
        let (Some(dir), Some(state)) = (self.dir(), user_folder("XDG_STATE_HOME", ".local/state"))
        else {
            return Ok(None);
        };
        ModuleCache::open(&dir, &state.join("module-cache.key"))
            .map(Some)
            .or_exit(exit::CONFIG, "cannot use the module cache")
    }

    /// An engine with the default sandbox limits (a job's config may set others).
    pub fn engine(&self) -> Result<TransformEngine, Failure> {
        TransformEngine::new(SandboxLimits::default(), self.module_cache()?)
            .or_exit(exit::INTERNAL, "cannot start the transform engine")
    }
}

/// `reqsync`'s folder under the user's XDG folder `xdg_var` (else `~/<home_default>`), or under
/// `%LOCALAPPDATA%` on Windows.
fn user_folder(xdg_var: &str, home_default: &str) -> Option<PathBuf> {
    let base = std::env::var_os(xdg_var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_default)))
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))?;
    Some(base.join("reqsync"))
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

//! `reqsync transform …`: work on transform modules without a database or ReqCheck.
//!
//! `new` writes a module folder to start from and `build` builds one (the analyst's kit, see
//! [`kit`]); `list` shows what a config would run; `inspect` describes one module file; `test`
//! checks a module against its example cases and generated rows; `try` shows what a module does
//! to given rows; `diff` compares two versions of a module on the same rows.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use reqsync_runtime::transform::{
    CompiledModule, ModuleCache, SandboxLimits, TransformEngine, TransformInstance,
};

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

    /// The project's cache when `project` names its config (and no flag says otherwise), else
    /// the user's: a module tested or built against a project is then compiled once for the
    /// command and for the project's service.
    pub fn module_cache_for(&self, project: &ProjectArgs) -> Result<Option<ModuleCache>, Failure> {
        match &project.config {
            Some(path) if !self.no_cache && self.cache_dir.is_none() => {
                let config = reqsync_runtime::config::Config::load(path)
                    .or_exit(exit::CONFIG, "cannot load the configuration")?;
                config
                    .module_cache()
                    .map(Some)
                    .or_exit(exit::CONFIG, "cannot use the module cache")
            }
            _ => self.module_cache(),
        }
    }

    /// [`CacheArgs::engine`] with [`CacheArgs::module_cache_for`]'s cache.
    pub fn engine_for(&self, project: &ProjectArgs) -> Result<TransformEngine, Failure> {
        TransformEngine::new(SandboxLimits::default(), self.module_cache_for(project)?)
            .or_exit(exit::INTERNAL, "cannot start the transform engine")
    }
}

/// `--config` for the commands that take a module file: share the project's compiled modules.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// A project's config file: use its compiled-module cache (the one its service uses), so
    /// the module is compiled once for this command and the service.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
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

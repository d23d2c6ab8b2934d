//! How every command gets its transform engine: which sandbox limits apply and which
//! compiled-module cache is used, decided here once from the config (when there is one) and the
//! cache flags. What an engine *is* (interruption, memory limiting, capabilities) is the
//! runtime's `transform::engine`; this only chooses what goes into it.
//!
//! The rules, the same for `run`, the service, `check`, `demo`, quarantine replay and the
//! `transform` commands:
//! - limits: a job's when the command works on one job; else the config's `[sync]` limits;
//!   without a config the defaults ([`SandboxLimits::default`], which are also `[sync]`'s);
//! - cache: none with `--no-cache`; `--cache-dir DIR` when given; else the config's
//!   `[sync] cache_dir`, the folder its service uses, so a module is compiled once for the
//!   command and the service; without a config the user's own cache folder (none when no home
//!   folder is known).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use reqsync_runtime::config::{Config, JobConfig};
use reqsync_runtime::transform::{ModuleCache, SandboxLimits, TransformEngine};

use crate::exit::{self, Failure, OrExit};
use crate::transform::user_folder;

/// Where the commands that take a module file directly keep precompiled modules.
#[derive(Debug, Default, Args)]
pub struct CacheArgs {
    /// Folder of precompiled modules [default: with --config the project's cache_dir, else
    /// $XDG_CACHE_HOME/reqsync/modules, else ~/.cache/reqsync/modules; on Windows
    /// %LOCALAPPDATA%\reqsync\modules]. Entries of a folder other than the project's are
    /// tagged with a key kept in your own state folder ($XDG_STATE_HOME/reqsync, else
    /// ~/.local/state/reqsync; %LOCALAPPDATA%\reqsync on Windows).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile the module on every start instead of caching it.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// A compiled-module cache folder and the file holding the key its entries are tagged with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CachePlace {
    dir: PathBuf,
    key: PathBuf,
}

/// Everything a command decides about its transform engine; [`EngineOptions::engine`] builds
/// it.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    limits: SandboxLimits,
    /// `None`: every module is compiled on load.
    cache: Option<CachePlace>,
    repeated_builds: bool,
}

impl EngineOptions {
    /// The options of `config` (when there is one) under the cache flags `flags`.
    pub fn new(config: Option<&Config>, flags: &CacheArgs) -> Self {
        Self {
            limits: config.map(|c| c.sandbox.clone()).unwrap_or_default(),
            cache: cache_place(config, flags),
            repeated_builds: false,
        }
    }

    /// What a sync of `config` uses: its limits and its own module cache.
    pub fn for_config(config: &Config) -> Self {
        Self::new(Some(config), &CacheArgs::default())
    }

    /// The limits of `job` (its own overrides of `[sync]`'s) instead of the config's.
    pub fn job(mut self, job: &JobConfig) -> Self {
        self.limits = job.sandbox.clone();
        self
    }

    /// Another wall-clock budget per call (`transform test --deadline-ms`).
    pub fn call_deadline(mut self, deadline: Duration) -> Self {
        self.limits.call_deadline = deadline;
        self
    }

    /// For a process that compiles one module again and again as it is edited
    /// ([`TransformEngine::for_repeated_builds`]).
    pub fn repeated_builds(mut self) -> Self {
        self.repeated_builds = true;
        self
    }

    /// The engine, with its cache opened (checked and keyed).
    pub fn engine(&self) -> Result<TransformEngine, Failure> {
        let cache = match &self.cache {
            Some(place) => Some(
                ModuleCache::open(&place.dir, &place.key)
                    .or_exit(exit::CONFIG, "cannot use the module cache")?,
            ),
            None => None,
        };
        let limits = self.limits.clone();
        let engine = if self.repeated_builds {
            TransformEngine::for_repeated_builds(limits, cache)
        } else {
            TransformEngine::new(limits, cache)
        };
        engine.or_exit(exit::INTERNAL, "cannot start the transform engine")
    }
}

/// The cache the flags and the config name (see the module's rules).
fn cache_place(config: Option<&Config>, flags: &CacheArgs) -> Option<CachePlace> {
    if flags.no_cache {
        return None;
    }
    if let (None, Some(config)) = (&flags.cache_dir, config) {
        return Some(CachePlace {
            dir: config.cache_dir.clone(),
            key: config.module_cache_key(),
        });
    }
    let dir = flags
        .cache_dir
        .clone()
        .or_else(|| user_folder("XDG_CACHE_HOME", ".cache").map(|d| d.join("modules")))?;
    let state = user_folder("XDG_STATE_HOME", ".local/state")?;
    Some(CachePlace {
        dir,
        key: state.join("module-cache.key"),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A project whose `[sync]` limits and one job's override differ from the defaults.
    fn config() -> Config {
        Config::parse(
            Path::new("/srv/clinic/reqsync.toml"),
            r#"
[reqcheck]
url = "https://reqcheck.example.org"

[source]
url = "sqlite://clinic.db"

[sync]
cache_dir = "compiled"
transform_deadline_ms = 2500

[[jobs]]
name = "patients"
query = "queries/patients.sql"
transform = "transforms/patients.wasm"
template = "templates/patient_data.json.j2"
transform_memory_mb = 64
"#,
        )
        .expect("config")
    }

    fn flags(cache_dir: Option<&str>, no_cache: bool) -> CacheArgs {
        CacheArgs {
            cache_dir: cache_dir.map(PathBuf::from),
            no_cache,
        }
    }

    #[test]
    fn a_config_gives_its_sync_limits_and_a_job_its_own() {
        let config = config();
        let options = EngineOptions::for_config(&config);
        assert_eq!(options.limits.call_deadline, Duration::from_millis(2500));
        assert_eq!(
            options.limits.memory_bytes,
            SandboxLimits::default().memory_bytes
        );
        let options = options.job(&config.jobs[0]);
        assert_eq!(options.limits.call_deadline, Duration::from_millis(2500));
        assert_eq!(options.limits.memory_bytes, 64 << 20);
    }

    #[test]
    fn without_a_config_the_default_limits_apply() {
        let options = EngineOptions::new(None, &flags(None, false));
        let defaults = SandboxLimits::default();
        assert_eq!(options.limits.call_deadline, defaults.call_deadline);
        assert_eq!(options.limits.memory_bytes, defaults.memory_bytes);
        assert_eq!(options.limits.max_record_bytes, defaults.max_record_bytes);
    }

    #[test]
    fn a_deadline_flag_replaces_only_the_deadline() {
        let config = config();
        let options = EngineOptions::new(Some(&config), &flags(None, false))
            .job(&config.jobs[0])
            .call_deadline(Duration::from_millis(7));
        assert_eq!(options.limits.call_deadline, Duration::from_millis(7));
        assert_eq!(options.limits.memory_bytes, 64 << 20);
    }

    #[test]
    fn a_config_without_cache_flags_uses_the_projects_own_cache() {
        let config = config();
        let place = EngineOptions::new(Some(&config), &flags(None, false)).cache;
        assert_eq!(
            place,
            Some(CachePlace {
                dir: config.cache_dir.clone(),
                key: config.module_cache_key(),
            })
        );
        assert_eq!(
            place.map(|p| p.dir),
            Some(PathBuf::from("/srv/clinic/compiled"))
        );
    }

    #[test]
    fn cache_flags_override_the_configs_cache() {
        let config = config();
        assert_eq!(
            EngineOptions::new(Some(&config), &flags(None, true)).cache,
            None
        );
        let place = EngineOptions::new(Some(&config), &flags(Some("/tmp/mine"), false)).cache;
        assert_ne!(place.as_ref().map(|p| &p.dir), Some(&config.cache_dir));
        // Keyed in the user's state folder (no cache at all when no home folder is known).
        if let Some(place) = place {
            assert_eq!(place.dir, PathBuf::from("/tmp/mine"));
            assert_ne!(place.key, config.module_cache_key());
        }
    }

    #[test]
    fn no_cache_without_a_config_compiles_every_time() {
        assert_eq!(EngineOptions::new(None, &flags(None, true)).cache, None);
    }
}

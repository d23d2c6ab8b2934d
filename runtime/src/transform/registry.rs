//! Hot swap: the active version of each transform module file, replaced while the service runs.
//!
//! A changed module file (written in place or renamed over the old one) is compiled off the batch
//! path, then validated — it must load inside the sandbox, describe itself compatibly with the
//! module it replaces and with the columns its job's query returns, and pass the example cases
//! shipped beside it (`NAME.examples.json` for `NAME.wasm`) — before it becomes active. Runs pick
//! up the new version between batches ([`super::LiveTransform`]); a batch is always processed by
//! exactly one version. A module that fails validation is refused with a log line and the old
//! one keeps running. Every swap attempt is an audit event with both hashes and the result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::examples::ExampleFile;
use super::{BatchPlan, CompiledModule, TransformEngine, TransformError, TransformInstance};
use crate::audit::{ModuleSwap, SwapResult};
use crate::source::ColumnInfo;

/// Editors and copy tools write a file in several steps; events closer together than this are
/// one change.
const SETTLE: Duration = Duration::from_millis(50);

/// One module file and its active version.
#[derive(Debug)]
pub struct ModuleSlot {
    path: PathBuf,
    active: RwLock<Arc<CompiledModule>>,
    /// Bumped on every swap; readers compare it between batches (one atomic load).
    version: AtomicU64,
    /// The columns the job's query returned at its last run, for validating a new version.
    query_columns: Mutex<Option<Vec<ColumnInfo>>>,
    /// What the active version says it is (name, version), for status reports.
    described: RwLock<(String, String)>,
    /// The newest version on disk that was refused, while it is still what the file holds.
    refused: Mutex<Option<RefusedVersion>>,
}

/// A module file whose content is not the active version: a swap was refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct RefusedVersion {
    /// The file's content (empty when it could not be read).
    pub sha256: String,
    pub refused_at: chrono::DateTime<chrono::Utc>,
    /// Why: names files, codes and example case names, never row data.
    pub reason: String,
}

/// What a module file runs, for `/healthz` and `reqsync transform list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleStatus {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// 1 for the version the service started with, one more for every swap since.
    pub generation: u64,
    /// Set when the file on disk differs from the active version because its swap was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusedOnDisk>,
}

/// [`RefusedVersion`] as reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefusedOnDisk {
    pub sha256: String,
    pub refused_at: String,
    pub reason: String,
}

impl ModuleSlot {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The active module and its version.
    pub fn current(&self) -> (u64, Arc<CompiledModule>) {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        (self.version(), active.clone())
    }

    /// What runs from this file, and whether the file holds a refused version.
    pub fn status(&self) -> ModuleStatus {
        let (generation, module) = self.current();
        let (name, version) = self
            .described
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .map(|r| RefusedOnDisk {
                sha256: r.sha256,
                refused_at: r
                    .refused_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                reason: r.reason,
            });
        ModuleStatus {
            path: self.path.clone(),
            name,
            version,
            sha256: module.sha256.clone(),
            generation,
            refused,
        }
    }

    /// Records the columns a run's query returned, so a new version can be checked against them.
    pub fn note_query_columns(&self, columns: &[ColumnInfo]) {
        *self.query_columns.lock().unwrap_or_else(|p| p.into_inner()) = Some(columns.to_vec());
    }
}

/// The result of one swap attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SwapReport {
    pub path: PathBuf,
    pub old_sha256: String,
    /// Hash of the candidate file (empty when it could not be read).
    pub new_sha256: String,
    /// `None` when the new version is active; otherwise why it was refused.
    pub refused: Option<String>,
    /// From noticing the change to the new version being active (or refused).
    pub millis: u128,
}

/// All module files a service uses, keyed by path.
#[derive(Debug)]
pub struct ModuleRegistry {
    engine: TransformEngine,
    slots: Mutex<HashMap<PathBuf, Arc<ModuleSlot>>>,
    /// The most recent swap attempts, newest last (bounded).
    history: Mutex<Vec<SwapReport>>,
}

/// Swap attempts kept for status reports.
const HISTORY: usize = 100;

impl ModuleRegistry {
    pub fn new(engine: TransformEngine) -> Arc<Self> {
        Arc::new(Self {
            engine,
            slots: Mutex::new(HashMap::new()),
            history: Mutex::new(Vec::new()),
        })
    }

    pub fn engine(&self) -> &TransformEngine {
        &self.engine
    }

    /// The slot of a module file, loading it on first use.
    pub fn slot(&self, path: &Path) -> Result<Arc<ModuleSlot>, TransformError> {
        let key = canonical(path);
        if let Some(slot) = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(slot.clone());
        }
        let module = self.engine.load(path)?;
        let info = TransformInstance::new(&self.engine, &module)?
            .info()
            .clone();
        let slot = Arc::new(ModuleSlot {
            path: path.to_path_buf(),
            active: RwLock::new(Arc::new(module)),
            version: AtomicU64::new(1),
            query_columns: Mutex::new(None),
            described: RwLock::new((info.name, info.version)),
            refused: Mutex::new(None),
        });
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        Ok(slots.entry(key).or_insert(slot).clone())
    }

    /// The active versions, for `transform list` and health reports.
    pub fn active(&self) -> Vec<(PathBuf, String, u64)> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = slots
            .values()
            .map(|s| {
                let (version, module) = s.current();
                (s.path.clone(), module.sha256.clone(), version)
            })
            .collect();
        out.sort();
        out
    }

    /// The most recent swap attempts, oldest first.
    pub fn history(&self) -> Vec<SwapReport> {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Compiles, validates and (if it passes) activates the current content of `path`.
    /// Blocking: call it off the batch path (the watcher does).
    pub(crate) fn try_swap(&self, path: &Path) -> Option<SwapReport> {
        let began = Instant::now();
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&canonical(path))
            .cloned()?;
        let (_, old) = slot.current();
        let mut report = SwapReport {
            path: slot.path.clone(),
            old_sha256: old.sha256.clone(),
            new_sha256: String::new(),
            refused: None,
            millis: 0,
        };
        let set_refused = |refused: Option<RefusedVersion>| {
            *slot.refused.lock().unwrap_or_else(|p| p.into_inner()) = refused;
        };
        match self.validate(&slot, &old) {
            Ok((new, _)) if new.sha256 == old.sha256 => {
                // Touched, or put back as it was: the file is the active version again.
                set_refused(None);
                return None;
            }
            Ok((new, info)) => {
                report.new_sha256 = new.sha256.clone();
                *slot.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                *slot.described.write().unwrap_or_else(|p| p.into_inner()) =
                    (info.name, info.version);
                slot.version.fetch_add(1, Ordering::AcqRel);
                set_refused(None);
            }
            Err((sha, reason)) => {
                if sha.as_deref() == Some(old.sha256.as_str()) {
                    set_refused(None);
                    return None;
                }
                report.new_sha256 = sha.unwrap_or_default();
                set_refused(Some(RefusedVersion {
                    sha256: report.new_sha256.clone(),
                    refused_at: chrono::Utc::now(),
                    reason: reason.clone(),
                }));
                report.refused = Some(reason);
            }
        }
        report.millis = began.elapsed().as_millis();
        audit(&report);
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() == HISTORY {
            history.remove(0);
        }
        history.push(report.clone());
        Some(report)
    }

    /// Loads the candidate and checks it; on refusal, the candidate's hash (if it could be
    /// read) and the reason.
    fn validate(
        &self,
        slot: &ModuleSlot,
        old: &CompiledModule,
    ) -> Result<(CompiledModule, super::ModuleInfo), (Option<String>, String)> {
        let candidate = self
            .engine
            .load(&slot.path)
            .map_err(|e| (module_file_sha256(&slot.path), e.to_string()))?;
        let sha = Some(candidate.sha256.clone());
        let refuse = |reason: String| (sha.clone(), reason);
        let mut instance =
            TransformInstance::new(&self.engine, &candidate).map_err(|e| refuse(e.to_string()))?;
        let old_info = TransformInstance::new(&self.engine, old)
            .map(|i| i.info().clone())
            .map_err(|e| refuse(format!("cannot describe the active version: {e}")))?;
        let info = instance.info().clone();
        if info.target != old_info.target || info.key_column != old_info.key_column {
            return Err(refuse(format!(
                "it emits `{}` keyed by `{}`, the active version `{}` keyed by `{}`",
                info.target, info.key_column, old_info.target, old_info.key_column
            )));
        }
        let columns = slot
            .query_columns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(columns) = columns {
            BatchPlan::new(&info, &columns, chrono_tz::UTC).map_err(|e| refuse(e.to_string()))?;
        }
        let examples_path = examples_beside(&slot.path);
        let examples = ExampleFile::load(&examples_path).map_err(|e| {
            refuse(format!(
                "{e} (a module is only swapped in after passing the example cases shipped beside it)"
            ))
        })?;
        let failures = examples
            .run(&mut instance)
            .map_err(|e| refuse(e.to_string()))?;
        if let Some(first) = failures.first() {
            return Err(refuse(format!(
                "{} of {} example cases fail, first `{}`: {}",
                failures.len(),
                examples.cases.len(),
                first.name,
                first.reason
            )));
        }
        Ok((candidate, info))
    }

    /// What each module file runs, sorted by path.
    pub fn statuses(&self) -> Vec<ModuleStatus> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<ModuleStatus> = slots.values().map(|s| s.status()).collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// What the module file `path` runs, when the registry has it.
    pub fn status_of(&self, path: &Path) -> Option<ModuleStatus> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&canonical(path))
            .cloned()?;
        Some(slot.status())
    }

    /// Watches the folders of every loaded module and swaps changed files in. The watcher
    /// stops when the returned handle is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<Watch, TransformError> {
        use notify::Watcher;
        let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx)
            .map_err(|e| TransformError::Engine(format!("cannot watch module files: {e}")))?;
        let dirs: std::collections::BTreeSet<PathBuf> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|s| canonical(&s.path).parent().map(Path::to_path_buf))
            .collect();
        for dir in &dirs {
            // The folder, not the file: an atomic rename replaces the file's inode.
            watcher
                .watch(dir, notify::RecursiveMode::NonRecursive)
                .map_err(|e| {
                    TransformError::Engine(format!("cannot watch {}: {e}", dir.display()))
                })?;
        }
        let registry = Arc::downgrade(self);
        let thread = std::thread::Builder::new()
            .name("module-watch".into())
            .spawn(move || {
                while let Ok(event) = rx.recv() {
                    let mut changed: Vec<PathBuf> = paths_of(event);
                    // Let the writer finish, and fold the burst of events it causes into one.
                    std::thread::sleep(SETTLE);
                    while let Ok(more) = rx.try_recv() {
                        changed.extend(paths_of(more));
                    }
                    changed.sort();
                    changed.dedup();
                    let Some(registry) = registry.upgrade() else {
                        return;
                    };
                    for path in changed {
                        registry.try_swap(&path);
                    }
                }
            })
            .map_err(|e| TransformError::Engine(format!("cannot start the module watcher: {e}")))?;
        Ok(Watch {
            _watcher: watcher,
            _thread: thread,
        })
    }
}

/// Keeps a module watcher alive.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    _thread: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

fn paths_of(event: notify::Result<notify::Event>) -> Vec<PathBuf> {
    match event {
        Ok(e) if !matches!(e.kind, notify::EventKind::Access(_)) => {
            e.paths.iter().map(|p| canonical(p)).collect()
        }
        _ => Vec::new(),
    }
}

/// `patients.wasm` → `patients.examples.json`, the layout `reqsync init` writes.
pub fn examples_beside(module: &Path) -> PathBuf {
    module.with_extension("examples.json")
}

/// Paths are compared by their canonical folder plus file name: the file itself may not exist
/// for a moment during an atomic replace.
fn canonical(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
        .map(|d| d.join(name))
        .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// The SHA-256 of the file at `path`, when it is one a module could be (a regular file within
/// the module size cap): a path swapped for a device must not be read without end.
pub(crate) fn module_file_sha256(path: &Path) -> Option<String> {
    use sha2::Digest;
    crate::input_file::read(path, crate::input_file::MODULE)
        .ok()
        .map(|b| hex::encode(sha2::Sha256::digest(b)))
}

/// The audit event of a swap attempt.
fn audit(r: &SwapReport) {
    ModuleSwap {
        path: &r.path,
        old_sha256: &r.old_sha256,
        new_sha256: &r.new_sha256,
        result: match &r.refused {
            None => SwapResult::Activated {
                millis: r.millis as u64,
            },
            Some(reason) => SwapResult::Refused { reason },
        },
    }
    .emit();
}

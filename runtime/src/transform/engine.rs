//! The one place that owns WebAssembly engine policy: which features are on, how calls are
//! interrupted, how much memory an instance may take, what capabilities a module gets, and how
//! compiled modules are cached. Nothing else in reqsync touches `wasmtime::Config`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::TransformError;

/// How often the epoch advances. Deadlines are whole ticks, so this is their resolution.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every transform call. Defaults are generous for the default modules
/// (which use a few MiB and microseconds per row) and tight enough that a runaway module is
/// stopped long before it hurts the host.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Wall-clock budget of one `transform` call (one batch).
    pub call_deadline: Duration,
    /// Linear memory an instance may grow to.
    pub memory_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            call_deadline: Duration::from_secs(10),
            memory_bytes: 256 << 20,
        }
    }
}

/// Per-instance host state: an empty WASI context (no files, network, environment or
/// arguments; output streams discarded) and the memory limiter.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A compiled transform module and the hash of the file it came from.
#[derive(Clone)]
pub struct CompiledModule {
    pub(crate) component: Component,
    /// SHA-256 of the `.wasm` file, hex: what runs are recorded against.
    pub sha256: String,
    pub path: PathBuf,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModule")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The wasmtime engine with reqsync's policy applied, and the compiled-module cache.
#[derive(Clone)]
pub struct TransformEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: SandboxLimits,
    cache_dir: Option<PathBuf>,
}

impl std::fmt::Debug for TransformEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformEngine")
            .field("limits", &self.limits)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl TransformEngine {
    /// Builds the engine. `cache_dir` holds precompiled modules (created if missing); `None`
    /// compiles every module on load.
    pub fn new(limits: SandboxLimits, cache_dir: Option<PathBuf>) -> Result<Self, TransformError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Epoch interruption costs a few percent per call, far less than fuel metering, and is
        // what lets a deadline stop a module that loops forever.
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| TransformError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        // Guests built for wasm32-wasip2 import WASI interfaces even when they never call them;
        // they are satisfied from an empty context (see `new_store`).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| TransformError::Engine(e.to_string()))?;
        spawn_epoch_ticker(&engine);
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            limits,
            cache_dir,
        })
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Deadline of one call, in epoch ticks.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.limits.call_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }

    /// A store for one instance, with the sandbox applied.
    pub(crate) fn new_store(&self) -> Store<HostState> {
        let wasi = WasiCtx::builder().build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(16)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                limits,
            },
        );
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        store
    }

    /// Loads a module file, through the cache when there is one.
    pub fn load(&self, path: &Path) -> Result<CompiledModule, TransformError> {
        let bytes = std::fs::read(path).map_err(|e| TransformError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let component = match &self.cache_dir {
            Some(dir) => self.load_cached(dir, path, &bytes, &sha256)?,
            None => self.compile(path, &bytes)?,
        };
        Ok(CompiledModule {
            component,
            sha256,
            path: path.to_path_buf(),
        })
    }

    fn compile(&self, path: &Path, bytes: &[u8]) -> Result<Component, TransformError> {
        Component::new(&self.engine, bytes).map_err(|e| TransformError::NotAComponent {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })
    }

    fn load_cached(
        &self,
        dir: &Path,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<Component, TransformError> {
        let cached = dir.join(format!("{sha256}-{}.cwasm", self.engine_fingerprint()));
        if cached.is_file() {
            // SAFETY: `deserialize_file` trusts its input to be wasmtime's own output. The
            // cache folder only ever receives files this function wrote (atomically, named by
            // the module's content hash and this engine's build and configuration), so a file
            // found there was produced by a compatible engine from exactly these bytes.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &cached) };
            match loaded {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(cache = %cached.display(), error = %e, "discarding unreadable cached module");
                    let _ = std::fs::remove_file(&cached);
                }
            }
        }
        // Validate by compiling before anything is written to the cache.
        let component = self.compile(path, bytes)?;
        match component.serialize() {
            Ok(artifact) => {
                if let Err(e) = write_atomically(dir, &cached, &artifact) {
                    tracing::warn!(cache = %dir.display(), error = %e, "cannot write the module cache; continuing without it");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize a compiled module"),
        }
        Ok(component)
    }

    /// Identifies the engine build and configuration: a precompiled module is only valid for the
    /// same wasmtime version and the same `Config`.
    fn engine_fingerprint(&self) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// Advances the engine's epoch every tick; ends when the last handle to the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let _ = std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        });
}

fn write_atomically(dir: &Path, dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp-{}", std::process::id(), rand_suffix()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dest)
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

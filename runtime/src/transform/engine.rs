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
use super::bindings::WIT_PACKAGE;
use super::module_cache::ModuleCache;

/// How often the epoch advances. Deadlines are whole ticks, so this is their resolution.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How a call that runs too long is stopped. An engine-wide choice: wasmtime compiles the checks
/// into the module's code, so the modules of one engine all share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// The default. A background thread advances the engine's epoch every [`EPOCH_TICK`]; a call
    /// still running at its wall-clock deadline ([`SandboxLimits::call_deadline`]) traps. The
    /// compiled checks only load and compare a counter, so they cost little.
    Epoch,
    /// Fuel metering: each call may execute about `units_per_call` wasm instructions. The budget
    /// is deterministic (the same rows stop at the same instruction on any machine), but every
    /// basic block pays for the count; measured in docs/PERFORMANCE.md.
    Fuel { units_per_call: u64 },
    /// No interruption at all: a module that loops hangs its thread for good. Exists only so the
    /// transform-cost benchmark can measure what the other two cost; never for a sync.
    Unbounded,
}

/// Limits applied to every transform call. Defaults are generous for the default modules
/// (which use a few MiB and about a microsecond per row) and tight enough that a runaway module
/// is stopped long before it hurts the host.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Wall-clock budget of one `transform` call (one batch, or one row when a batch is retried
    /// row by row after a failure).
    pub call_deadline: Duration,
    /// Linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// Largest emitted record, in bytes of JSON; a bigger one rejects its row.
    pub max_record_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            call_deadline: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            max_record_bytes: 1 << 20,
        }
    }
}

/// The WASI interfaces a module may import, and nothing else. Rust's standard library pulls in
/// `wasi:cli` and `wasi:io` through its panic path even when a guest never prints; clocks and
/// randomness are satisfied by fixed values (below) so transforms stay deterministic. Files and
/// sockets are capabilities a transform never gets: a module importing them is refused at load.
const ALLOWED_IMPORT_PREFIXES: &[&str] = &[
    // The world's own type definitions (no functions), imported by every transform.
    "reqsync:transform/types@",
    "wasi:io/",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-",
    "wasi:clocks/",
    "wasi:random/",
];

/// The instant a module's clocks show: the Unix epoch, always. Age rules use the as-of date the
/// host passes, never a clock.
#[derive(Debug)]
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Seed of every instance's random sources: a module that draws random numbers draws the same
/// ones on every run, so the same rows always give the same records.
const RANDOM_SEED: u64 = 0x5245_5153_594e_4321;

/// Per-instance host state: a WASI context with no files, network, environment or arguments,
/// discarded output streams, frozen clocks and seeded randomness; and the memory limiter.
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

/// `HasData` projection for the `wasi:io` bindings, which only need the resource table.
struct IoTable;

impl wasmtime::component::HasData for IoTable {
    type Data<'a> = &'a mut ResourceTable;
}

fn io_table(s: &mut HostState) -> &mut ResourceTable {
    &mut s.table
}

fn wasi_random(s: &mut HostState) -> &mut wasmtime_wasi::random::WasiRandomCtx {
    s.wasi.random()
}

/// Links exactly the allowed interfaces (see [`ALLOWED_IMPORT_PREFIXES`]).
fn link_sandbox(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};
    use wasmtime_wasi::random::WasiRandom;

    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<HostState, IoTable>(linker, io_table)?;
    sync::io::poll::add_to_linker::<HostState, IoTable>(linker, io_table)?;
    sync::io::streams::add_to_linker::<HostState, IoTable>(linker, io_table)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(linker, HostState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(linker, HostState::clocks)?;
    random::random::add_to_linker::<HostState, WasiRandom>(linker, wasi_random)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(linker, wasi_random)?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(linker, wasi_random)?;
    Ok(())
}

/// A compiled transform module and the hash of the file it came from.
#[derive(Clone)]
pub struct CompiledModule {
    pub(crate) component: Component,
    /// SHA-256 of the `.wasm` file, hex: what runs are recorded against.
    pub sha256: String,
    pub path: PathBuf,
    /// The WIT package the module was built against, e.g. `reqsync:transform@3.0.0`.
    pub wit_package: String,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModule")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("wit_package", &self.wit_package)
            .finish()
    }
}

/// The wasmtime engine with reqsync's policy applied, and the compiled-module cache.
#[derive(Clone)]
pub struct TransformEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: SandboxLimits,
    interruption: Interruption,
    cache: Option<ModuleCache>,
}

impl std::fmt::Debug for TransformEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformEngine")
            .field("limits", &self.limits)
            .field("interruption", &self.interruption)
            .field("cache", &self.cache)
            .finish()
    }
}

impl TransformEngine {
    /// Builds the engine. `cache` holds precompiled modules; `None` compiles every module on
    /// load. Calls are stopped at their wall-clock deadline by epoch
    /// interruption: 6–9 % per row against none at all, where fuel metering costs another
    /// 7–14 % (docs/PERFORMANCE.md, "Transform cost").
    pub fn new(limits: SandboxLimits, cache: Option<ModuleCache>) -> Result<Self, TransformError> {
        Self::build(limits, cache, Interruption::Epoch)
    }

    /// Like [`TransformEngine::new`], but a call is stopped after about `units_per_call` wasm
    /// instructions (fuel metering) instead of at a wall-clock deadline; running out maps to the
    /// same `transform-timeout` rejection. Instantiation and `describe` get the same budget.
    pub fn with_fuel(
        limits: SandboxLimits,
        cache: Option<ModuleCache>,
        units_per_call: u64,
    ) -> Result<Self, TransformError> {
        Self::build(limits, cache, Interruption::Fuel { units_per_call })
    }

    /// An engine whose calls are never interrupted: **unsafe for production**, a module that
    /// loops hangs its thread for good. Only for measuring what interruption costs.
    #[doc(hidden)]
    pub fn without_interruption_for_benchmarks(
        limits: SandboxLimits,
        cache: Option<ModuleCache>,
    ) -> Result<Self, TransformError> {
        Self::build(limits, cache, Interruption::Unbounded)
    }

    fn build(
        limits: SandboxLimits,
        cache: Option<ModuleCache>,
        interruption: Interruption,
    ) -> Result<Self, TransformError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(interruption == Interruption::Epoch);
        config.consume_fuel(matches!(interruption, Interruption::Fuel { .. }));
        // For profiling only: with REQSYNC_PERFMAP=1 wasmtime writes /tmp/perf-PID.map, so that
        // `perf report` names the modules' functions (e.g. CPython's inside a Python module)
        // instead of showing bare JIT addresses (docs/PERFORMANCE.md, "Guest languages").
        if std::env::var_os("REQSYNC_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| TransformError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        link_sandbox(&mut linker).map_err(|e| TransformError::Engine(e.to_string()))?;
        if interruption == Interruption::Epoch {
            spawn_epoch_ticker(&engine);
        }
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            limits,
            interruption,
            cache,
        })
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Deadline of one call under `limits`, in epoch ticks.
    fn deadline_ticks(limits: &SandboxLimits) -> u64 {
        (limits.call_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }

    /// Gives `store` a fresh budget for its next call: a deadline `limits.call_deadline` from
    /// now, or a full tank of fuel.
    pub(crate) fn arm_call(&self, store: &mut Store<HostState>, limits: &SandboxLimits) {
        match self.interruption {
            Interruption::Epoch => store.set_epoch_deadline(Self::deadline_ticks(limits)),
            Interruption::Fuel { units_per_call } => {
                // Fails only when the engine does not meter fuel, which `build` rules out.
                let _ = store.set_fuel(units_per_call);
            }
            Interruption::Unbounded => {}
        }
    }

    /// A store for one instance, with the sandbox applied.
    pub(crate) fn new_store(&self, limits: &SandboxLimits) -> Store<HostState> {
        use rand010::SeedableRng;
        let wasi = WasiCtx::builder()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(rand010::rngs::StdRng::seed_from_u64(RANDOM_SEED))
            .insecure_random(rand010::rngs::StdRng::seed_from_u64(RANDOM_SEED))
            .insecure_random_seed(u128::from(RANDOM_SEED))
            .build();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            // A component is several core instances: a Rust module is a handful, one built by
            // componentize-py or componentize-js (an interpreter, libc and adapters) about 20.
            // The limit stops a module that instantiates without bound; memory is capped below.
            .instances(64)
            // A failed memory.grow traps instead of returning -1: a module that runs out of its
            // budget stops at once rather than limping on with a half-built batch.
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                limits: store_limits,
            },
        );
        store.limiter(|s| &mut s.limits);
        if self.interruption == Interruption::Epoch {
            store.epoch_deadline_trap();
        }
        // Start-up code and `describe` run under the same budget as a call.
        self.arm_call(&mut store, limits);
        store
    }

    /// Loads a module file, through the cache when there is one.
    pub fn load(&self, path: &Path) -> Result<CompiledModule, TransformError> {
        let bytes = crate::input_file::read(path, crate::input_file::MODULE).map_err(|e| {
            TransformError::Read {
                path: path.to_path_buf(),
                reason: e.reason(),
            }
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let component = match &self.cache {
            Some(cache) => self.load_cached(cache, path, &bytes, &sha256)?,
            None => self.compile(path, &bytes)?,
        };
        self.check_imports(path, &component)?;
        let wit_package = self.check_wit_version(path, &component)?;
        Ok(CompiledModule {
            component,
            sha256,
            path: path.to_path_buf(),
            wit_package,
        })
    }

    /// Every transform imports the world's `types` interface, whose name carries the WIT package
    /// version it was built against. A module built against another version is refused with
    /// that said plainly, instead of a type-mismatch error at instantiation.
    fn check_wit_version(
        &self,
        path: &Path,
        component: &Component,
    ) -> Result<String, TransformError> {
        const TYPES: &str = "reqsync:transform/types@";
        let ty = component.component_type();
        let found = ty
            .imports(&self.engine)
            .find_map(|(name, _)| name.strip_prefix(TYPES).map(str::to_owned));
        let expected = WIT_PACKAGE.trim_start_matches("reqsync:transform@");
        match found {
            Some(version) if version == expected => Ok(WIT_PACKAGE.to_owned()),
            Some(version) => Err(TransformError::WitVersion {
                path: path.to_path_buf(),
                found: format!("reqsync:transform@{version}"),
            }),
            None => Err(TransformError::WitVersion {
                path: path.to_path_buf(),
                found: "no reqsync:transform world".to_owned(),
            }),
        }
    }

    /// Refuses a module that imports anything outside the sandbox, naming the import, before it
    /// is ever instantiated.
    fn check_imports(&self, path: &Path, component: &Component) -> Result<(), TransformError> {
        let ty = component.component_type();
        let forbidden: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name)
            .filter(|name| !ALLOWED_IMPORT_PREFIXES.iter().any(|p| name.starts_with(p)))
            .map(str::to_string)
            .collect();
        if forbidden.is_empty() {
            Ok(())
        } else {
            Err(TransformError::ForbiddenImport {
                path: path.to_path_buf(),
                imports: forbidden,
            })
        }
    }

    fn compile(&self, path: &Path, bytes: &[u8]) -> Result<Component, TransformError> {
        let not_a_component = |reason: String| TransformError::NotAComponent {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(reason) = misfit_header(bytes) {
            return Err(not_a_component(reason.to_string()));
        }
        Component::new(&self.engine, bytes).map_err(|e| not_a_component(format!("{e:#}")))
    }

    fn load_cached(
        &self,
        cache: &ModuleCache,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<Component, TransformError> {
        let fingerprint = self.engine_fingerprint();
        if let Some(artifact) = cache.lookup(sha256, &fingerprint) {
            // SAFETY: `deserialize` trusts its input to be wasmtime's own output. `lookup` only
            // returns code whose HMAC, keyed by a secret outside the cache folder, binds it to
            // exactly this module file's SHA-256 and this engine's build and configuration:
            // this process (or another run with the same key) compiled it from these bytes.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize(&self.engine, &artifact) };
            match loaded {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(module = %path.display(), error = %format!("{e:#}"), "cannot load a verified compiled-module cache entry; compiling the module again");
                }
            }
        }
        // Validate by compiling before anything is written to the cache.
        let component = self.compile(path, bytes)?;
        match component.serialize() {
            Ok(artifact) => cache.store(sha256, &fingerprint, &artifact),
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

/// Why a file's first eight bytes already show it is no component: said plainly, where the
/// parser would print the bytes it expected and found.
fn misfit_header(bytes: &[u8]) -> Option<&'static str> {
    // `\0asm`, then a 16-bit version and a 16-bit layer: 1/0 for a core module, 0x0d/1 for a
    // component (the component-model encoding in wasmparser).
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    if bytes.is_empty() {
        return Some("the file is empty");
    }
    if !bytes.starts_with(MAGIC) {
        return Some("the file does not start with the WebAssembly header (`\\0asm`)");
    }
    if bytes.get(4..8) == Some(&CORE_MODULE[..]) {
        return Some("it is a core WebAssembly module, not a component");
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_cannot_be_components_are_named_for_what_they_are() {
        assert_eq!(misfit_header(b""), Some("the file is empty"));
        assert!(
            misfit_header(b"PK\x03\x04 a zip file")
                .is_some_and(|r| r.contains("WebAssembly header"))
        );
        assert!(
            misfit_header(b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0")
                .is_some_and(|r| r.contains("core WebAssembly module"))
        );
        // A component header is left to the parser.
        assert_eq!(misfit_header(b"\0asm\x0d\0\x01\0"), None);
    }
}

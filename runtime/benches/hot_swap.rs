//! Hot-swap latency: from a module file being replaced to the new version being the one the
//! next batch runs (issue 7, target ≤ 250 ms).
//!
//!     cargo bench -p reqsync --bench hot_swap
//!
//! The service's own path: a `ModuleRegistry` watching the folder (notify), the settle delay,
//! loading through the module cache, validation (instantiate, describe, compare with the active
//! version and the job's query columns, run the example cases) and the switch. The module is the
//! default `patients` one, replaced the way deployment tools do (write beside, rename over).
//!
//! Two cases, `ROUNDS` swaps each:
//! - **new build**: every swap installs bytes never seen before (the module with a different
//!   custom section appended), so it is compiled from scratch, as after an analyst's rebuild;
//! - **roll back**: alternates between two builds already in the module cache.
//!
//! For each swap the figure is the time from the rename to the slot's version changing (what a
//! running job checks between batches); the registry's own `millis` (load + validate + switch)
//! is shown beside it, the rest being the watcher's notification and settle delay.

use std::path::Path;
use std::time::{Duration, Instant};

use reqsync_runtime::source::ColumnInfo;
use reqsync_runtime::transform::registry::examples_beside;
use reqsync_runtime::transform::{
    ModuleCache, ModuleRegistry, ModuleSlot, SandboxLimits, TransformEngine, TransformInstance,
};

const ROUNDS: u32 = 15;
/// A swap slower than this is reported as not happening at all.
const GIVE_UP: Duration = Duration::from_secs(10);

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = dir.path().join("patients.wasm");
    let original = std::fs::read(reqsync_test_guests::PATIENTS).expect("patients module");
    std::fs::write(&module, &original).expect("install");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../transforms/patients/examples.json"),
        examples_beside(&module),
    )
    .expect("examples");

    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(
            ModuleCache::open(&dir.path().join("cache"), &dir.path().join("cache.key"))
                .expect("module cache"),
        ),
    )
    .expect("engine");
    let registry = ModuleRegistry::new(engine);
    let slot = registry.slot(&module).expect("module loads");
    slot.note_query_columns(&declared_columns(&registry, &slot));
    let _watch = registry.watch().expect("watcher");

    println!("hot swap of the patients module, {ROUNDS} swaps per case");
    println!(
        "{:<10} {:>14} {:>14} {:>20}",
        "case", "median (ms)", "max (ms)", "registry median (ms)"
    );
    let mut serial = 0u32;
    let mut next_build = || {
        serial += 1;
        with_custom_section(&original, serial)
    };

    let builds: Vec<Vec<u8>> = (0..ROUNDS).map(|_| next_build()).collect();
    report("new build", swap_each(&module, &slot, &registry, &builds));

    let (a, b) = (next_build(), next_build());
    // Both builds pass through the cache once before the timed swaps.
    swap_each(&module, &slot, &registry, &[a.clone(), b.clone()]);
    let alternating: Vec<Vec<u8>> = (0..ROUNDS)
        .map(|i| if i % 2 == 0 { a.clone() } else { b.clone() })
        .collect();
    report(
        "roll back",
        swap_each(&module, &slot, &registry, &alternating),
    );
}

/// Installs each build in turn and times it into use: (rename → new version, registry millis).
fn swap_each(
    module: &Path,
    slot: &ModuleSlot,
    registry: &ModuleRegistry,
    builds: &[Vec<u8>],
) -> Vec<(Duration, u128)> {
    let tmp = module.with_extension("wasm.tmp");
    builds
        .iter()
        .map(|bytes| {
            // Let the previous swap's events drain, so each swap starts from a quiet folder.
            std::thread::sleep(Duration::from_millis(200));
            let before = slot.version();
            std::fs::write(&tmp, bytes).expect("write");
            let started = Instant::now();
            std::fs::rename(&tmp, module).expect("rename");
            while slot.version() == before {
                assert!(
                    started.elapsed() < GIVE_UP,
                    "the module was not swapped within {GIVE_UP:?}: {:?}",
                    registry.history().last().and_then(|r| r.refused.clone())
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            let took = started.elapsed();
            let report = registry.history().last().cloned().expect("a swap report");
            assert!(
                report.refused.is_none(),
                "swap refused: {:?}",
                report.refused
            );
            (took, report.millis)
        })
        .collect()
}

fn report(case: &str, mut swaps: Vec<(Duration, u128)>) {
    swaps.sort_by_key(|(took, _)| *took);
    let median = swaps[swaps.len() / 2].0;
    let max = swaps.last().map(|s| s.0).unwrap_or_default();
    let mut registry: Vec<u128> = swaps.iter().map(|s| s.1).collect();
    registry.sort_unstable();
    println!(
        "{case:<10} {:>14.1} {:>14.1} {:>20}",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        registry[registry.len() / 2]
    );
}

/// The component with a custom section appended: the same code under a new file hash, which
/// the module cache has never seen.
fn with_custom_section(component: &[u8], serial: u32) -> Vec<u8> {
    let name = b"reqsync-bench";
    let payload = serial.to_le_bytes();
    let mut section = Vec::new();
    leb128(&mut section, name.len() as u32);
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = component.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, section.len() as u32);
    out.extend_from_slice(&section);
    out
}

fn leb128(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The columns the module reads, as the job's query would return them, so that validation
/// matches them against the query as in a service.
fn declared_columns(registry: &ModuleRegistry, slot: &ModuleSlot) -> Vec<ColumnInfo> {
    let (_, module) = slot.current();
    let instance = TransformInstance::new(registry.engine(), &module).expect("instantiates");
    instance
        .info()
        .input_columns
        .iter()
        .map(|c| ColumnInfo {
            name: c.name.clone(),
            declared_type: String::new(),
        })
        .collect()
}

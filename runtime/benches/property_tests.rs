//! Property-test speed: generated rows per second of `reqsync transform test` for the default
//! modules (issue 7, target ≥ 5,000/s for the Rust modules) and the Python and JavaScript twins
//! of `patients` (targets ≥ 1,000/s and ≥ 500/s).
//!
//!     scripts/build-guest-python && scripts/build-guest-javascript
//!     cargo bench -p reqsync --bench property_tests [-- MODULE…]   # e.g. -- patients-js
//!
//! Runs the same function as the command (`property::test_module`), with the command's
//! settings, a number of generated rows per run (fewer for the interpreted modules) and `RUNS`
//! runs per module, each with its own seed (0, 1, …). Two medians over the runs: the report's
//! `cases_per_second` (timed over the generated rows: each row generated, run twice on one
//! instance and once on another, and held to every property), and the whole call's rows per
//! second (`cases / elapsed`: instantiation, example cases, generated rows and the closing
//! batch check included).

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqsync_runtime::transform::examples::ExampleFile;
use reqsync_runtime::transform::property::{DEFAULT_FRESH_EVERY, TestOptions, test_module};
use reqsync_runtime::transform::{ModuleCache, SandboxLimits, TransformEngine};

const RUNS: u64 = 5;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let transforms = root.join("transforms");
    let guests = root.join("target/guests");
    let modules = [
        (
            "patients",
            PathBuf::from(reqsync_test_guests::PATIENTS),
            transforms.join("patients/examples.json"),
            20_000,
        ),
        (
            "vaccine-doses",
            PathBuf::from(reqsync_test_guests::VACCINE_DOSES),
            transforms.join("vaccine-doses/examples.json"),
            20_000,
        ),
        (
            "patients-py",
            guests.join("patients-py.wasm"),
            guests.join("patients-py.examples.json"),
            2_000,
        ),
        (
            "patients-js",
            guests.join("patients-js.wasm"),
            guests.join("patients-js.examples.json"),
            2_000,
        ),
    ];
    // Names given after `--` pick modules; cargo passes `--bench` itself.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let modules: Vec<_> = modules
        .into_iter()
        .filter(|(name, ..)| only.is_empty() || only.iter().any(|o| o == name))
        .collect();
    for (name, path, _, _) in &modules {
        assert!(
            path.is_file(),
            "{name}: {} is missing (scripts/build-guest-python, scripts/build-guest-javascript)",
            path.display()
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(
            ModuleCache::open(&dir.path().join("cache"), &dir.path().join("cache.key"))
                .expect("module cache"),
        ),
    )
    .expect("engine");

    println!(
        "transform test, {RUNS} runs per module (seeds 0–{})",
        RUNS - 1
    );
    println!(
        "{:<14} {:>7} {:>14} {:>8} {:>8} {:>14} {:>8} {:>8}",
        "module", "rows", "median rows/s", "min", "max", "whole test/s", "min", "max"
    );
    for (name, path, examples, cases) in &modules {
        let module = engine.load(path).expect("module loads");
        let as_of = ExampleFile::load(examples).expect("examples").as_of_date;
        let (mut rates, mut whole): (Vec<f64>, Vec<f64>) = (0..RUNS)
            .map(|seed| {
                let options = TestOptions {
                    cases: *cases,
                    seed,
                    as_of,
                    examples: Some(examples.clone()),
                    fresh_every: DEFAULT_FRESH_EVERY,
                    max_shrink_time: Duration::from_secs(60),
                    max_generation_time: None,
                };
                let report = test_module(&engine, &module, &options).expect("test runs");
                assert!(report.passed, "{name} fails its property tests: {report:?}");
                let whole = f64::from(*cases) / (report.elapsed_ms.max(1) as f64 / 1000.0);
                (report.cases_per_second, whole)
            })
            .unzip();
        rates.sort_by(f64::total_cmp);
        whole.sort_by(f64::total_cmp);
        let mid = rates.len() / 2;
        println!(
            "{name:<14} {cases:>7} {:>14.0} {:>8.0} {:>8.0} {:>14.0} {:>8.0} {:>8.0}",
            rates[mid],
            rates[0],
            rates[rates.len() - 1],
            whole[mid],
            whole[0],
            whole[whole.len() - 1]
        );
    }
}

//! Property-test speed: generated cases per second of `reqsync transform test` for the default
//! modules (issue 7, target ≥ 5,000/s for the Rust modules).
//!
//!     cargo bench -p reqsync --bench property_tests
//!
//! Runs the same function as the command (`property::test_module`), with the command's
//! settings, `CASES` generated rows per run and `RUNS` runs per module, each with its own seed;
//! the figure is the median of the runs' `cases_per_second` (timed over the generation phase:
//! each case is a row generated, run twice on one instance and once on a fresh one, and held
//! to every property). Example cases are checked first, as by the command, outside the timing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqsync::transform::examples::ExampleFile;
use reqsync::transform::property::{DEFAULT_FRESH_EVERY, TestOptions, test_module};
use reqsync::transform::{ModuleCache, SandboxLimits, TransformEngine};

const CASES: u32 = 20_000;
const RUNS: u64 = 5;

fn main() {
    let transforms = Path::new(env!("CARGO_MANIFEST_DIR")).join("../transforms");
    let modules = [
        (
            PathBuf::from(env!("REQSYNC_PATIENTS_WASM")),
            transforms.join("patients/examples.json"),
        ),
        (
            PathBuf::from(env!("REQSYNC_VACCINE_DOSES_WASM")),
            transforms.join("vaccine-doses/examples.json"),
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(
            ModuleCache::open(&dir.path().join("cache"), &dir.path().join("cache.key"))
                .expect("module cache"),
        ),
    )
    .expect("engine");

    println!("transform test, {CASES} generated cases per run, {RUNS} runs per module");
    println!(
        "{:<15} {:>16} {:>12} {:>12}",
        "module", "median cases/s", "min", "max"
    );
    for (path, examples) in &modules {
        let module = engine.load(path).expect("module loads");
        let as_of = ExampleFile::load(examples).expect("examples").as_of_date;
        let mut rates: Vec<f64> = (0..RUNS)
            .map(|seed| {
                let options = TestOptions {
                    cases: CASES,
                    seed,
                    as_of,
                    examples: Some(examples.clone()),
                    fresh_every: DEFAULT_FRESH_EVERY,
                    max_shrink_time: Duration::from_secs(60),
                };
                let report = test_module(&engine, &module, &options).expect("test runs");
                assert!(report.passed, "the default module fails its property tests");
                report.cases_per_second
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        println!(
            "{name:<15} {:>16.0} {:>12.0} {:>12.0}",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1]
        );
    }
}

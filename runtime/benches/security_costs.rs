//! What the security hardening adds to a run (docs/SECURITY.md, docs/PERFORMANCE.md
//! "Security hardening"), each against its baseline in the same process:
//!
//! - loading a module from the compiled-module cache, against reading the cache entry alone:
//!   the difference is the entry's HMAC-SHA256 check, paid once per module per run or swap;
//! - one audit-trail append, the entry now written before every request (`request_sending`).
//!
//!     cargo bench -p reqsync --bench security_costs
//!
//! Build the Python and JavaScript modules first (`scripts/build-guest-python`,
//! `scripts/build-guest-javascript`); they are the large cache entries.

use std::path::{Path, PathBuf};
use std::time::Instant;

use reqsync_runtime::audit::AuditWriter;
use reqsync_runtime::transform::{ModuleCache, SandboxLimits, TransformEngine};
use serde_json::{Map, Value};

const ROUNDS: usize = 15;
const APPENDS: u64 = 3_000;

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ is in the workspace")
        .to_path_buf();
    let modules = [
        ("Rust", PathBuf::from(reqsync_test_guests::PATIENTS)),
        ("Python", workspace.join("target/guests/patients-py.wasm")),
        (
            "JavaScript",
            workspace.join("target/guests/patients-js.wasm"),
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = dir.path().join("cache");
    let cache = ModuleCache::open(&cache_dir, &dir.path().join("cache.key")).expect("cache");
    let engine =
        TransformEngine::new(SandboxLimits::default(), Some(cache.clone())).expect("engine");
    println!("module cache (medians of {ROUNDS}):");
    for (language, path) in &modules {
        if !path.is_file() {
            println!("  {language}: {} missing, skipped", path.display());
            continue;
        }
        let sha256 = engine.load(path).expect("module compiles").sha256;
        let (entry, fingerprint) = cache_entry(&cache_dir, &sha256);
        let load = median_ms(|| drop(engine.load(path).expect("cached load")));
        let read = median_ms(|| drop(std::fs::read(&entry).expect("entry")));
        let checked = median_ms(|| drop(cache.lookup(&sha256, &fingerprint).expect("verifies")));
        let size = std::fs::metadata(&entry).expect("entry").len() as f64 / 1e6;
        println!(
            "  {language}: entry {size:.1} MB; cached load {load:.2} ms; entry read {read:.2} ms, \
             read and tag check {checked:.2} ms: the check {:.2} ms ({:.0} % of the load)",
            checked - read,
            (checked - read) / load * 100.0
        );
    }

    let writer = AuditWriter::open(&dir.path().join("audit.jsonl")).expect("trail");
    let mut micros: Vec<f64> = (0..APPENDS)
        .map(|seq| {
            let entry = request_sending(seq);
            let started = Instant::now();
            writer.append("INFO", entry).expect("append");
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    writer.flush();
    micros.sort_by(f64::total_cmp);
    println!(
        "audit trail: one request_sending append, median {:.1} µs, p90 {:.1} µs ({APPENDS} appends)",
        micros[micros.len() / 2],
        micros[micros.len() * 9 / 10]
    );
}

/// The cache entry of the module hashing to `sha256`, and the engine fingerprint in its name.
fn cache_entry(dir: &Path, sha256: &str) -> (PathBuf, String) {
    let entry = std::fs::read_dir(dir)
        .expect("cache folder")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(sha256))
        })
        .expect("the module's entry");
    // `<module sha256>-<fingerprint>-<key id>.cwasm`
    let name = entry
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let fingerprint = name.split('-').nth(1).expect("fingerprint").to_string();
    (entry, fingerprint)
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

/// An entry like the one written before each request.
fn request_sending(seq: u64) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("event".into(), "request_sending".into());
    fields.insert("run_id".into(), 1.into());
    fields.insert("job".into(), "patients".into());
    fields.insert("seq".into(), seq.into());
    fields.insert("url".into(), "https://reqcheck.example.org/".into());
    fields.insert("endpoint".into(), "/patient_data".into());
    fields.insert("records".into(), 500.into());
    fields.insert("bytes".into(), 215_000.into());
    fields.insert(
        "body_sha256".into(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
    );
    fields
}

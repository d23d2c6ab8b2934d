//! The `patients` transform written in Python (`transforms/patients-py`, a componentize-py
//! component built by `scripts/build-guest-python`) is a drop-in for the Rust one: it loads in
//! the same sandbox, describes itself the same way, passes the Rust module's example cases and
//! gives the same verdict on every row: the KCMO data, a synthetic clinic with its deliberately
//! invalid patients, and generated rows full of the values rules trip over.
//!
//! The component is built outside cargo (it needs Python and componentize-py); these tests fail,
//! never skip, when it is missing or older than its sources.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqsync::seed::{InvalidKind, SeedOptions, SourceTable, SyntheticOptions, seed_sqlite};
use reqsync::source::{self, Query, SourceUrl};
use reqsync::transform::examples::ExampleFile;
use reqsync::transform::json_rows::batch_from_json;
use reqsync::transform::{
    BatchPlan, CompiledModule, ModuleInfo, RowOutcome, SandboxLimits, TransformEngine,
    TransformError, TransformInstance, Verdict, WIT_PACKAGE,
};
use serde_json::{Map, Value, json};

use crate::support::CLINIC_TZ;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ is inside the workspace")
        .to_path_buf()
}

/// `target/guests/patients-py.wasm`, checked to exist and to be built from the current sources.
fn python_wasm() -> PathBuf {
    let root = workspace();
    let wasm = root.join("target/guests/patients-py.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run `scripts/build-guest-python` (it builds the Python transform with \
         componentize-py) before these tests",
        wasm.display()
    );
    // The script records each build (or check that nothing changed) in this stamp; a source
    // edited after it means the component under test is not the code in the repository.
    let stamp = root.join("target/guests/patients-py.wasm.inputs");
    let checked = modified(&stamp);
    let mut sources = vec![root.join("transforms/patients/examples.json")];
    for dir in ["transforms/patients-py", "guest-sdk/wit"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("source folder") {
            let path = entry.expect("entry").path();
            if path
                .extension()
                .is_some_and(|e| e == "py" || e == "wit" || e == "json")
            {
                sources.push(path);
            }
        }
    }
    for source in sources {
        assert!(
            modified(&source) <= checked,
            "{} changed after the Python transform was last built: run \
             `scripts/build-guest-python` again",
            source.display()
        );
    }
    wasm
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e} (run `scripts/build-guest-python`)", path.display()))
}

/// One engine and one compile of each module for all tests here: the Python component carries
/// CPython (18 MB), and compiling it is most of these tests' time. The cache folder is the one
/// the other tests share, so a warm cache makes this a load.
struct Modules {
    engine: TransformEngine,
    python: CompiledModule,
    rust: CompiledModule,
}

static MODULES: LazyLock<Modules> = LazyLock::new(|| {
    let cache = crate::support::module_cache();
    let engine = TransformEngine::new(SandboxLimits::default(), Some(cache)).expect("engine");
    let started = Instant::now();
    let python = engine
        .load(&python_wasm())
        .unwrap_or_else(|e| panic!("the Python module must load in the sandbox: {e}"));
    eprintln!(
        "guest_python: Python component compiled or loaded in {:.1?}",
        started.elapsed()
    );
    let rust = engine
        .load(Path::new(env!("REQSYNC_PATIENTS_WASM")))
        .expect("the Rust module loads");
    Modules {
        engine,
        python,
        rust,
    }
});

fn modules() -> &'static Modules {
    // Checked outside the LazyLock, so every test fails with the message, not a poisoned lock.
    python_wasm();
    &MODULES
}

fn instances() -> (TransformInstance, TransformInstance) {
    let m = modules();
    (
        TransformInstance::new(&m.engine, &m.python).expect("the Python module instantiates"),
        TransformInstance::new(&m.engine, &m.rust).expect("the Rust module instantiates"),
    )
}

#[test]
fn python_patients_loads_in_the_sandbox_and_describes_itself_as_the_rust_module_does() {
    let m = modules();
    // `load` refuses forbidden imports (files, sockets) and other WIT versions.
    assert_eq!(m.python.wit_package, WIT_PACKAGE);
    let (python, rust) = instances();
    let (python, rust) = (python.info().clone(), rust.info().clone());
    assert_eq!(python.version, "1.0.0+python");
    assert_eq!(rust.version, "1.0.0");
    // Everything else — name, target, key column, every input column with its type, flags and
    // hints, every output field — is the same.
    assert_eq!(
        ModuleInfo {
            version: rust.version.clone(),
            ..python
        },
        rust
    );
}

#[test]
fn python_patients_passes_the_rust_modules_example_cases() {
    let wasm = python_wasm();
    let beside = wasm.with_file_name("patients-py.examples.json");
    let spec = workspace().join("transforms/patients/examples.json");
    assert_eq!(
        std::fs::read(&beside).expect("examples beside the module"),
        std::fs::read(&spec).expect("the Rust module's examples"),
        "{} is not a copy of {}: run `scripts/build-guest-python`",
        beside.display(),
        spec.display()
    );
    let examples = ExampleFile::load(&beside).expect("examples parse");
    assert!(examples.cases.len() >= 30, "the spec has shrunk");
    let (mut python, _) = instances();
    let failures = examples.run(&mut python).expect("runs");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_rust_patients_agree_on_every_kcmo_and_synthetic_row() {
    let (mut python, mut rust) = instances();
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("clinic.db");
    let seeded = seed_sqlite(
        &db,
        &SeedOptions {
            kcmo: true,
            synthetic: Some(SyntheticOptions::new(3000, 11)),
            ..SeedOptions::default()
        },
    )
    .expect("seed");
    let synthetic = seeded.synthetic.as_ref().expect("synthetic report");
    let invalid = synthetic.invalid_in(SourceTable::Mpfile);
    assert!(invalid > 0, "the synthetic set has invalid patients");

    // The default patients query, through the real source and batch plan, 500 rows a batch.
    let source = source::open(&SourceUrl::Sqlite(db), CLINIC_TZ).expect("source");
    let query = Query {
        name: "patients.sql".into(),
        sql: std::fs::read_to_string(workspace().join("queries/patients.sql")).expect("query"),
    };
    let window_start = NaiveDate::from_ymd_opt(1900, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date");
    let mut stream = source
        .stream(&query, window_start, 500)
        .await
        .expect("query runs");
    let python_plan = BatchPlan::new(python.info(), &stream.columns, CLINIC_TZ).expect("plan");
    let rust_plan = BatchPlan::new(rust.info(), &stream.columns, CLINIC_TZ).expect("plan");
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");

    let mut tally = Tally::default();
    while let Some(batch) = stream.next_batch().await {
        let batch = batch.expect("batch");
        let started = Instant::now();
        let from_python = python.process(&python_plan, &batch, as_of).expect("Python");
        tally.python_time += started.elapsed();
        let started = Instant::now();
        let from_rust = rust.process(&rust_plan, &batch, as_of).expect("Rust");
        tally.rust_time += started.elapsed();
        for (py, rs) in from_python.iter().zip(&from_rust) {
            assert_same(py, rs, || format!("patno {}", rs.key));
        }
        assert_eq!(from_python.len(), from_rust.len());
        tally.count(&from_rust);
    }
    tally.report("KCMO + synthetic");
    assert_eq!(
        tally.rows, seeded.patients as usize,
        "every seeded patient was read"
    );
    // Not a vacuous comparison: each kind of verdict occurred, invalid patients included.
    assert_eq!(tally.rejected, invalid as usize);
    assert!(
        synthetic
            .invalid
            .iter()
            .any(|r| r.kind == InvalidKind::PatientNumberOutOfRange)
    );
    assert!(tally.emitted > 2500 && tally.warned > 0, "{tally:?}");
}

#[test]
fn python_and_rust_patients_agree_on_generated_edge_case_rows() {
    let (mut python, mut rust) = instances();
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    let mut rng = ChaCha8Rng::seed_from_u64(0x7079_7468_6f6e);
    let mut tally = Tally::default();
    for _ in 0..8 {
        let rows: Vec<Map<String, Value>> = (0..250).map(|_| edge_case_row(&mut rng)).collect();
        let refs: Vec<&Map<String, Value>> = rows.iter().collect();
        let run = |instance: &mut TransformInstance| {
            let converted = batch_from_json(instance.info(), &refs).expect("rows fit the columns");
            instance.process_converted(converted, as_of).expect("runs")
        };
        let started = Instant::now();
        let from_python = run(&mut python);
        tally.python_time += started.elapsed();
        let started = Instant::now();
        let from_rust = run(&mut rust);
        tally.rust_time += started.elapsed();
        for ((py, rs), row) in from_python.iter().zip(&from_rust).zip(&rows) {
            // Generated rows are made-up data: showing them is what makes a failure useful.
            assert_same(py, rs, || format!("row {}", Value::Object(row.clone())));
        }
        tally.count(&from_rust);
    }
    tally.report("generated edge cases");
    assert!(
        tally.emitted > 200 && tally.rejected > 200 && tally.warned > 200,
        "the generator must reach every kind of verdict: {tally:?}"
    );
}

#[test]
fn python_and_rust_patients_treat_batches_with_fewer_or_reordered_columns_alike() {
    let (mut python, mut rust) = instances();
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    let rows = [
        json!({"patno": 7, "lname": " Nguyễn ", "fname": "José", "birth_date": "2010-05-06",
               "updated_at": "2016-09-28T12:00:00-05:00", "state": "mo", "zip": "6410",
               "email": "josé@bücher.de", "notes": "  keep  "}),
        json!({"patno": 0, "lname": "\u{a0}", "fname": null, "birth_date": "2010-02-30",
               "updated_at": "2016-09-28T12:00:00", "home_phone": "+1 (816) 555-0100"}),
    ];
    let rows: Vec<&Map<String, Value>> = rows
        .iter()
        .map(|r| r.as_object().expect("object"))
        .collect();

    // Only the required columns, in reverse order: optional columns read as NULL.
    let required_only = |info: &ModuleInfo| {
        let mut info = info.clone();
        info.input_columns.retain(|c| c.required);
        let mut converted = batch_from_json(&info, &rows).expect("rows fit");
        converted.batch.columns.reverse();
        converted
    };
    let from_python = python
        .process_converted(required_only(python.info()), as_of)
        .expect("Python");
    let from_rust = rust
        .process_converted(required_only(rust.info()), as_of)
        .expect("Rust");
    assert!(matches!(from_rust[0].verdict, Verdict::Emit { ref record, .. } if record.len() == 5));
    for (py, rs) in from_python.iter().zip(&from_rust) {
        assert_same(py, rs, || format!("required-only row {}", rs.key));
    }

    // A batch without a required column is refused whole, with the same code and message.
    let without_birth_date = |info: &ModuleInfo| {
        let mut info = info.clone();
        info.input_columns.retain(|c| c.name != "birth_date");
        batch_from_json(&info, &rows).expect("rows fit")
    };
    let refusal = |result: Result<Vec<RowOutcome>, TransformError>| match result {
        Err(TransformError::BatchRefused { code, message, .. }) => (code, message),
        other => panic!("expected a refused batch, got {other:?}"),
    };
    let python_refusal =
        refusal(python.process_converted(without_birth_date(python.info()), as_of));
    let rust_refusal = refusal(rust.process_converted(without_birth_date(rust.info()), as_of));
    assert_eq!(python_refusal, rust_refusal);
    assert_eq!(python_refusal.0, "missing-column");
}

/// Same key and the same verdict: the same record (as JSON values), the same warnings, skip
/// code or findings — messages included, in the same order.
fn assert_same(python: &RowOutcome, rust: &RowOutcome, which: impl Fn() -> String) {
    assert_eq!(python.key, rust.key, "keys differ at {}", which());
    if python.verdict == rust.verdict {
        return;
    }
    // `Verdict`'s Debug shows fields and codes, never values.
    let mut detail = format!("Python {:?}\n  Rust {:?}", python.verdict, rust.verdict);
    if let (Verdict::Emit { record: py, .. }, Verdict::Emit { record: rs, .. }) =
        (&python.verdict, &rust.verdict)
    {
        let differing: Vec<&String> = py
            .keys()
            .chain(rs.keys())
            .filter(|k| py.get(*k) != rs.get(*k))
            .collect();
        detail.push_str(&format!("\n  fields that differ: {differing:?}"));
    }
    panic!(
        "the Python and Rust modules disagree on {}:\n{detail}",
        which()
    );
}

#[derive(Debug, Default)]
struct Tally {
    rows: usize,
    emitted: usize,
    warned: usize,
    rejected: usize,
    python_time: Duration,
    rust_time: Duration,
}

impl Tally {
    fn count(&mut self, outcomes: &[RowOutcome]) {
        for outcome in outcomes {
            self.rows += 1;
            match &outcome.verdict {
                Verdict::Emit { warnings, .. } => {
                    self.emitted += 1;
                    self.warned += usize::from(!warnings.is_empty());
                }
                Verdict::Reject { .. } => self.rejected += 1,
                Verdict::Skip { .. } => {}
            }
        }
    }

    fn report(&self, what: &str) {
        let per_row = |d: Duration| d.as_secs_f64() * 1e6 / self.rows.max(1) as f64;
        eprintln!(
            "guest_python: {what}: {} rows ({} emitted, {} with warnings, {} rejected); \
             Python {:.1} µs/row, Rust {:.1} µs/row (this build's wasmtime)",
            self.rows,
            self.emitted,
            self.warned,
            self.rejected,
            per_row(self.python_time),
            per_row(self.rust_time),
        );
    }
}

// ---- generated rows --------------------------------------------------------------------------

/// Characters the rules treat specially, so that a mismatch in trimming, whitespace, digits,
/// JSON escaping or UTF-8 handling between the two languages shows up: Unicode whitespace
/// (and the ASCII separators U+001C..U+001F, which Python's `str.strip` removes and Rust's
/// `trim` keeps), characters that look like whitespace but are not (U+200B, U+180E, a
/// byte-order mark, which a UTF-8 decoder may drop), controls, quotes, non-ASCII letters, a
/// full-width digit, an emoji.
const TRICKY: &[&str] = &[
    " ", "  ", "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{1c}", "\u{1f}", "\u{85}", "\u{a0}",
    "\u{2003}", "\u{2028}", "\u{3000}", "\u{200b}", "\u{180e}", "\u{feff}", "\u{0}", "\u{7f}",
    "\u{9f}", "\"", "\\", "'", "-", ".", "@", "(", ")", "+", "/", "é", "ễ", "２", "😀", "Z", "T",
    ":",
];

fn pick<'a>(rng: &mut ChaCha8Rng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or_default()
}

/// A value built from `base`: as is (mostly), wrapped in or spliced with tricky characters.
fn mangle(rng: &mut ChaCha8Rng, base: &str) -> String {
    match rng.random_range(0..10u32) {
        0..=4 => base.to_owned(),
        5 => format!("{}{base}{}", pick(rng, TRICKY), pick(rng, TRICKY)),
        6 => {
            let at = rng.random_range(0..=base.chars().count());
            let mut chars: Vec<char> = base.chars().collect();
            chars.splice(at..at, pick(rng, TRICKY).chars());
            chars.into_iter().collect()
        }
        7 => base.to_uppercase(),
        8 => (0..rng.random_range(0..6u32))
            .map(|_| pick(rng, TRICKY))
            .collect(),
        _ => base
            .chars()
            .take(rng.random_range(0..=base.chars().count()))
            .collect(),
    }
}

/// A text cell: NULL sometimes, else a plausible value for the column, mangled.
fn text(rng: &mut ChaCha8Rng, null_percent: u32, plausible: &[&str]) -> Value {
    if rng.random_range(0..100) < null_percent {
        return Value::Null;
    }
    let base = pick(rng, plausible);
    Value::String(mangle(rng, base))
}

/// A required column: mostly its first, valid, value, so that enough rows get past the patient
/// rules to exercise the optional ones.
fn required_text(rng: &mut ChaCha8Rng, plausible: &[&str]) -> Value {
    if rng.random_range(0..4) > 0 {
        return Value::String(plausible[0].to_owned());
    }
    text(rng, 10, plausible)
}

fn integer(rng: &mut ChaCha8Rng, edges: &[i64]) -> Value {
    match rng.random_range(0..10u32) {
        0 => Value::Null,
        1..=2 => json!(edges.choose(rng).copied().unwrap_or_default()),
        _ => json!(rng.random_range(1..100_000i64)),
    }
}

fn edge_case_row(rng: &mut ChaCha8Rng) -> Map<String, Value> {
    let int32_edges = [
        i64::MIN,
        -(1 << 31) - 1,
        -(1 << 31),
        -1,
        0,
        1,
        (1 << 31) - 1,
        1 << 31,
        i64::MAX,
    ];
    let names = [
        "Smith",
        "Mary  Ann",
        " De La Cruz",
        "O'Brien-Nguyễn",
        "José",
        "Zoë\tÅberg",
        "",
    ];
    let dates = [
        "2013-11-26",
        "1900-01-01",
        "1899-12-31",
        "2026-01-01",
        "2026-01-02",
        "2024-02-29",
        "2023-02-29",
        "2000-02-29",
        "1900-02-29",
        "0000-01-01",
        "2013-13-01",
        "2013-1-26",
        "11/26/2013",
        "２０１３-11-26",
        "2013-11-26T00:00:00",
    ];
    let timestamps = [
        "2016-09-28T12:00:00-05:00",
        "2016-09-28T12:00:00.250-05:00",
        "2016-09-28T12:00:00Z",
        "2016-09-28T12:00:00.123456789+05:30",
        "2016-09-28T12:00:00.1234567890-05:00",
        "2016-09-28T12:00:00.-05:00",
        "2016-09-28 12:00:00",
        "2016-09-28T24:00:00-05:00",
        "2016-09-28T23:59:60-05:00",
        "2016-09-28T12:00:00-24:00",
        "2016-09-28T12:00:00-0500",
        "2016-02-30T12:00:00-05:00",
        "2016-09-28T12:00:00+23:59",
    ];
    let states = [
        "MO", "mo", " ks ", "Pr", "ap", "UM", "XX", "Missouri", "M", "é", "ÉÉ",
    ];
    let zips = [
        "64106",
        "64106-1234",
        "641061234",
        "6410",
        "64106-123",
        "6410a",
        "64106 1234",
    ];
    let phones = [
        "8165550100",
        "(816) 555-0100",
        "816.555.0100",
        "+1 816 555 0100",
        "1-816-555-0100",
        "555-0100",
        "816-555-01000",
        "2-816-555-0100",
        "816-555-0100 x12",
        "816-555-O100",
        "123-456-7890",
        "816-155-0100",
        "+44 20 7946 0958",
        "++1 816 555 0100",
        "１816-555-0100",
    ];
    let emails = [
        "john.smith@example.com",
        " j.doe+shots@mail.example.org ",
        "o'brien@example.com",
        "josé@bücher.de",
        "none",
        "n/a",
        "john@",
        "@example.com",
        "john@gmail",
        "john@@example.com",
        "john@example..com",
        "john@-example.com",
        "john doe@example.com",
        ".john@example.com",
        "john..doe@example.com",
        "john@example.c",
        "john@10.0.0.1",
        "john@exa_mple.com",
        "jo\u{a0}hn@example.com",
        "john@example.é",
        "a@b.éé",
        "jo\u{7f}hn@example.com",
        "jo\u{1c}hn@example.com",
        "x@y.z9",
    ];
    let sexes = ["M", "f", " u ", "X", "Male", "m\u{1c}", ""];
    let free_text = [
        "12 Main St",
        "Apt 4",
        "Kansas City",
        "White",
        "Not Hispanic or Latino",
        "Line one\n  She said \"no more\"\\ok  ",
        "Calle Luna 5",
        "",
        "   ",
    ];
    let mut row = Map::new();
    let mut put = |column: &str, value: Value| {
        row.insert(column.to_owned(), value);
    };
    put("patno", integer(rng, &int32_edges));
    put("lname", required_text(rng, &names));
    put("fname", required_text(rng, &names));
    put("birth_date", required_text(rng, &dates));
    put("sex", text(rng, 20, &sexes));
    put("addr1", text(rng, 30, &free_text));
    put("addr2", text(rng, 50, &free_text));
    put("city", text(rng, 30, &free_text));
    put("state", text(rng, 20, &states));
    put("zip", text(rng, 20, &zips));
    put("home_phone", text(rng, 20, &phones));
    put("cell_phone", text(rng, 20, &phones));
    put("email", text(rng, 20, &emails));
    put("race", text(rng, 40, &free_text));
    put("ethnicity", text(rng, 40, &free_text));
    put("family_no", integer(rng, &int32_edges));
    put("notes", text(rng, 40, &free_text));
    put("updated_at", required_text(rng, &timestamps));
    row
}

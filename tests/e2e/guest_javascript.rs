//! The `patients` transform written in JavaScript (`transforms/patients-js`, built into a
//! component by `scripts/build-guest-javascript`) runs in the same sandbox as the Rust modules
//! and behaves exactly like the Rust `patients` module: same self-description, same example
//! cases, and the same verdict on every row, real, synthetic and deliberately odd.
//!
//! The component is built outside cargo (Node.js and componentize-js), so these tests fail,
//! never skip, when it is missing or older than its sources.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqsync::seed::{SeedOptions, SourceTable, SyntheticOptions, seed_sqlite};
use reqsync::source::{Query, Source, SqliteSource};
use reqsync::transform::examples::ExampleFile;
use reqsync::transform::json_rows::batch_from_json;
use reqsync::transform::{
    BatchPlan, CompiledModule, ModuleInfo, RowOutcome, SandboxLimits, TransformEngine,
    TransformError, TransformInstance, Verdict, WIT_PACKAGE,
};
use serde_json::{Map, Value, json};

/// The as-of date of the comparisons: the synthetic generator's reference date, so its valid
/// rows are valid and its future-dated ones are in the future.
const AS_OF: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 1) {
    Some(date) => date,
    None => panic!("2026-01-01 is a date"),
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn guests() -> PathBuf {
    workspace().join("target/guests")
}

/// The engine every test here shares, and the JavaScript module loaded into it once per test
/// process. Compiling the 12 MB component is by far the slowest step (minutes in a debug
/// build, see `transforms/patients-js/README.md`), so it goes through the module cache shared
/// with the other tests and is never compiled twice in one run.
fn shared() -> &'static (TransformEngine, CompiledModule) {
    static SHARED: OnceLock<(TransformEngine, CompiledModule)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let path = built_module();
        let cache = crate::support::module_cache();
        let engine = TransformEngine::new(SandboxLimits::default(), Some(cache)).expect("engine");
        let module = engine
            .load(&path)
            .unwrap_or_else(|e| panic!("the JavaScript patients module must load: {e}"));
        (engine, module)
    })
}

/// `target/guests/patients-js.wasm`, checked to exist and to be at least as new as its sources
/// (a stale build would test yesterday's rules).
fn built_module() -> PathBuf {
    let wasm = guests().join("patients-js.wasm");
    let stamp = guests().join("patients-js.wasm.inputs");
    let rebuild = "run scripts/build-guest-javascript (it needs Node.js 20+; see \
                   transforms/patients-js/README.md)";
    assert!(
        wasm.is_file() && stamp.is_file(),
        "{} is missing: {rebuild}",
        wasm.display()
    );
    let built = modified(&stamp);
    let mut sources = vec![workspace().join("guest-sdk/wit/transform.wit")];
    for entry in std::fs::read_dir(workspace().join("transforms/patients-js")).expect("sources") {
        let path = entry.expect("source entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".js") || name.ends_with(".mjs") || name.starts_with("package") {
            sources.push(path);
        }
    }
    for source in sources {
        assert!(
            modified(&source) <= built,
            "{} is older than {}: {rebuild}",
            wasm.display(),
            source.display()
        );
    }
    wasm
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn javascript() -> TransformInstance {
    let (engine, module) = shared();
    TransformInstance::new(engine, module).expect("the JavaScript module instantiates")
}

fn rust() -> TransformInstance {
    let (engine, _) = shared();
    let module = engine
        .load(Path::new(env!("REQSYNC_PATIENTS_WASM")))
        .expect("the Rust module loads");
    TransformInstance::new(engine, &module).expect("the Rust module instantiates")
}

#[test]
fn javascript_patients_loads_in_the_sandbox_and_describes_itself_like_the_rust_module() {
    // Loading checks the imports (only the sandbox's; componentize-js's WASI features are all
    // disabled) and the WIT version.
    let (_, module) = shared();
    assert_eq!(module.wit_package, WIT_PACKAGE);
    assert_eq!(WIT_PACKAGE, "reqsync:transform@3.0.0");

    let js = javascript().info().clone();
    let rs = rust().info().clone();
    assert_eq!(js.version, "1.0.0+javascript");
    assert_eq!(rs.version, "1.0.0");
    // Everything but the version: columns with their flags and hints, fields, key, target.
    let same_version = ModuleInfo {
        version: rs.version.clone(),
        ..js
    };
    assert_eq!(same_version, rs);
}

#[test]
fn javascript_patients_passes_the_rust_modules_example_cases() {
    // The Rust module's cases are the specification, and the build puts a copy beside the
    // component, where the host's hot swap looks for it.
    let spec = workspace().join("transforms/patients/examples.json");
    let beside = guests().join("patients-js.examples.json");
    assert_eq!(
        std::fs::read(&beside).unwrap_or_default(),
        std::fs::read(&spec).expect("examples.json"),
        "{} is not a copy of {}: run scripts/build-guest-javascript",
        beside.display(),
        spec.display()
    );
    let examples = ExampleFile::load(&beside).expect("example cases");
    assert!(examples.cases.len() >= 30, "too few example cases");
    let failures = examples.run(&mut javascript()).expect("runs");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_and_rust_patients_agree_on_every_kcmo_and_synthetic_row() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("clinic.db");
    let seeded = seed_sqlite(
        &db,
        &SeedOptions {
            kcmo: true,
            synthetic: Some(SyntheticOptions::new(3000, 7)),
            ..SeedOptions::default()
        },
    )
    .expect("seed");
    let invalid: BTreeSet<String> = seeded
        .synthetic
        .as_ref()
        .expect("synthetic report")
        .invalid
        .iter()
        .filter(|r| r.table == SourceTable::Mpfile)
        .map(|r| r.key.to_string())
        .collect();
    assert!(
        !invalid.is_empty(),
        "the synthetic set has invalid patients"
    );

    // The default query, read through the source in the pipeline's batch size.
    let query = Query {
        name: "patients.sql".into(),
        sql: std::fs::read_to_string(workspace().join("queries/patients.sql")).expect("query"),
    };
    let full_extract = NaiveDate::from_ymd_opt(1900, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("start");
    let source = SqliteSource::open(&db).expect("source");
    let mut stream = source
        .stream(&query, full_extract, 500)
        .await
        .expect("query");
    let (mut js, mut rs) = (javascript(), rust());
    let plan =
        BatchPlan::new(rs.info(), &stream.columns, chrono_tz::America::Chicago).expect("plan");

    let mut tally = Tally::default();
    while let Some(batch) = stream.next_batch().await {
        let batch = batch.expect("batch");
        let from_js = js.process(&plan, &batch, AS_OF).expect("JavaScript batch");
        let from_rs = rs.process(&plan, &batch, AS_OF).expect("Rust batch");
        tally.compare(&from_js, &from_rs);
    }
    tally.assert_agreement();
    assert_eq!(
        tally.rows as u64, seeded.patients,
        "every seeded patient was compared"
    );
    assert_eq!(tally.rejected, invalid, "the deliberately invalid patients");
    assert!(tally.emitted > 2500, "{tally:?}");
}

#[test]
fn javascript_and_rust_patients_agree_on_generated_edge_case_rows() {
    // Values chosen where JavaScript and Rust differ by default: Unicode whitespace (JS `trim`
    // strips U+FEFF but not U+0085), UTF-8 byte offsets vs UTF-16 indices, surrogate pairs,
    // 64-bit integers, case mapping outside ASCII, byte limits of e-mail addresses. Every batch
    // also arrives in another column order or without some optional columns.
    let (mut js, mut rs) = (javascript(), rust());
    let info = rs.info().clone();
    let optional: Vec<String> = info
        .input_columns
        .iter()
        .filter(|c| !c.required)
        .map(|c| c.name.clone())
        .collect();
    let mut rng = StdRng::seed_from_u64(20_260_101);
    let mut tally = Tally::default();
    for batch_number in 0..12 {
        let rows: Vec<Map<String, Value>> = (0..250).map(|_| odd_row(&mut rng)).collect();
        let refs: Vec<&Map<String, Value>> = rows.iter().collect();
        let dropped: Vec<String> = optional
            .iter()
            .filter(|_| batch_number % 3 == 2 && rng.random_bool(0.5))
            .cloned()
            .collect();
        let convert = || {
            let mut converted = batch_from_json(&info, &refs).expect("batch");
            let columns = &mut converted.batch.columns;
            columns.retain(|c| !dropped.contains(&c.name));
            if batch_number % 3 == 1 {
                columns.reverse();
            }
            converted
        };
        let from_js = js.process_converted(convert(), AS_OF).expect("JS batch");
        let from_rs = rs.process_converted(convert(), AS_OF).expect("Rust batch");
        tally.compare(&from_js, &from_rs);
    }
    tally.assert_agreement();
    // The generator reaches every kind of verdict, or the comparison proves little.
    assert!(
        tally.emitted > 100 && tally.rejected.len() > 100,
        "{tally:?}"
    );
    assert!(tally.warned > 100, "{tally:?}");
}

/// componentize-js drops a byte order mark that opens a string it receives, so the glue puts it
/// back before cutting a column's text into cells. When the rest of the column is ASCII, the
/// cells are cut by string index: the mark must be back before that choice, or every offset of
/// the column is 3 bytes off and the batch is refused as malformed.
#[test]
fn a_byte_order_mark_opening_an_otherwise_ascii_column_reaches_the_javascript_module() {
    let (mut js, mut rs) = (javascript(), rust());
    let info = rs.info().clone();
    let rows: Vec<Map<String, Value>> = ["\u{feff}Smith", "Jones", "Lee"]
        .iter()
        .enumerate()
        .map(|(i, last)| {
            let row = json!({
                "patno": i + 1,
                "lname": last,
                "fname": "Ann",
                "birth_date": "2015-01-01",
                "updated_at": "2016-09-28T12:00:00-05:00",
            });
            row.as_object().expect("object").clone()
        })
        .collect();
    let refs: Vec<&Map<String, Value>> = rows.iter().collect();
    let batch = || batch_from_json(&info, &refs).expect("batch");
    let from_js = js
        .process_converted(batch(), AS_OF)
        .expect("JavaScript batch");
    let from_rs = rs.process_converted(batch(), AS_OF).expect("Rust batch");
    let mut tally = Tally::default();
    tally.compare(&from_js, &from_rs);
    tally.assert_agreement();
    assert_eq!(tally.rows, 3);
}

#[test]
fn javascript_and_rust_patients_refuse_malformed_batches_alike() {
    let (mut js, mut rs) = (javascript(), rust());
    let info = rs.info().clone();
    let rows = [
        json!({"patno": 1, "lname": "A", "fname": "B", "birth_date": "2000-01-01",
               "updated_at": "2016-09-28T12:00:00-05:00"}),
        json!({"patno": 2, "lname": null, "fname": "B", "birth_date": "2000-01-01",
               "updated_at": "2016-09-28T12:00:00-05:00"}),
    ];
    let rows: Vec<&Map<String, Value>> = rows.iter().filter_map(Value::as_object).collect();
    let position = |name: &str| {
        info.input_columns
            .iter()
            .position(|c| c.name == name)
            .expect("declared column")
    };
    let (patno, lname) = (position("patno"), position("lname"));
    // Each damage, and the batch error both modules must answer it with.
    for (damage, expected_code) in [
        ("a required column is missing", "missing-column"),
        ("integers arrive for a text column", "wrong-column-type"),
        ("the NULL map is short", "malformed-batch"),
    ] {
        let convert = || {
            let mut converted = batch_from_json(&info, &rows).expect("batch");
            let columns = &mut converted.batch.columns;
            match damage {
                "a required column is missing" => columns.retain(|c| c.name != "birth_date"),
                "integers arrive for a text column" => {
                    columns[lname].values = columns[patno].values.clone();
                }
                _ => columns[lname].present.truncate(1),
            }
            converted
        };
        let refused = |result: Result<Vec<RowOutcome>, TransformError>| match result {
            Err(TransformError::BatchRefused { code, message, .. }) => (code, message),
            other => panic!("{damage}: expected a refused batch, got {other:?}"),
        };
        let from_js = refused(js.process_converted(convert(), AS_OF));
        let from_rs = refused(rs.process_converted(convert(), AS_OF));
        assert_eq!(from_js.0, expected_code, "{damage}");
        assert_eq!(from_js, from_rs, "{damage}");
    }
}

/// What two modules answered for the same rows, and where they differ.
#[derive(Debug, Default)]
struct Tally {
    rows: usize,
    emitted: usize,
    warned: usize,
    rejected: BTreeSet<String>,
    /// The first differences, described in full: all rows here are test data, not PHI.
    differences: Vec<String>,
    different: usize,
}

impl Tally {
    fn compare(&mut self, js: &[RowOutcome], rs: &[RowOutcome]) {
        assert_eq!(js.len(), rs.len(), "one outcome per row");
        for (j, r) in js.iter().zip(rs) {
            self.rows += 1;
            match &r.verdict {
                Verdict::Emit { warnings, .. } => {
                    self.emitted += 1;
                    self.warned += usize::from(!warnings.is_empty());
                }
                Verdict::Reject { .. } => {
                    self.rejected.insert(r.key.to_string());
                }
                Verdict::Skip { .. } => {}
            }
            if j != r {
                self.different += 1;
                if self.differences.len() < 10 {
                    self.differences.push(format!(
                        "row {}:\n  JavaScript: {}\n  Rust:       {}",
                        r.key,
                        show(&j.verdict),
                        show(&r.verdict)
                    ));
                }
            }
        }
    }

    fn assert_agreement(&self) {
        assert!(
            self.different == 0,
            "{} of {} rows differ; the first:\n{}",
            self.different,
            self.rows,
            self.differences.join("\n")
        );
    }
}

/// A verdict in full, values included (for test data only).
fn show(verdict: &Verdict) -> String {
    let findings = |list: &[reqsync::transform::Finding]| {
        list.iter()
            .map(|f| format!("{} ({})", f.tag(), f.message))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match verdict {
        Verdict::Emit { record, warnings } => format!(
            "emit {} warnings [{}]",
            Value::Object(record.fields().clone()),
            findings(warnings)
        ),
        Verdict::Skip { code, message } => format!("skip {code} ({message})"),
        Verdict::Reject { findings: list } => format!("reject [{}]", findings(list)),
    }
}

// ---- Generated rows ------------------------------------------------------------------------

/// Text fragments where the two languages' defaults disagree, or where the rules have edges.
const FRAGMENTS: &[&str] = &[
    "Smith",
    "Ann",
    "José",
    "Nguyễn",
    "O'Brien-Smith",
    "😀",
    "d\u{301}",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\u{85}",
    "\u{a0}",
    "\u{feff}",
    "\u{200b}",
    "\u{2003}",
    "\u{2028}",
    "\u{3000}",
    "\u{1c}",
    "\u{0}",
    "\u{7f}",
    "\"",
    "\\",
    "ﬂ",
    "ß",
    "İ",
    "ǅ",
    "Ⅻ",
    "１",
    "-",
    ".",
    "@",
    "(",
];

fn fragments(rng: &mut StdRng, max: usize) -> String {
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| *FRAGMENTS.choose(rng).expect("fragments"))
        .collect()
}

/// A value from `pool`, fragments, or NULL.
fn pick(rng: &mut StdRng, pool: &[&str]) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 | 2 => Value::String(fragments(rng, 4)),
        3 => {
            let base = *pool.choose(rng).expect("pool");
            let edge = fragments(rng, 2);
            Value::String(if rng.random_bool(0.5) {
                format!("{edge}{base}")
            } else {
                format!("{base}{edge}")
            })
        }
        _ => Value::String((*pool.choose(rng).expect("pool")).to_owned()),
    }
}

fn pick_int(rng: &mut StdRng, pool: &[i64]) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 => json!(rng.random::<i64>()),
        2 => json!(rng.random_range(-5..3_000_000_000i64)),
        _ => json!(*pool.choose(rng).expect("pool")),
    }
}

fn digits_and_punctuation(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..16);
    (0..n)
        .map(|_| {
            *[
                "0", "1", "2", "5", "8", "9", " ", "-", "(", ")", ".", "+", "x", "\u{a0}",
            ]
            .choose(rng)
            .expect("characters")
        })
        .collect()
}

fn odd_row(rng: &mut StdRng) -> Map<String, Value> {
    const NUMBERS: &[i64] = &[
        1,
        7,
        77,
        101,
        0,
        -1,
        -14,
        2_147_483_647,
        2_147_483_648,
        -2_147_483_648,
        -2_147_483_649,
        i64::MAX,
        i64::MIN,
        9_007_199_254_740_993, // 2^53 + 1: not a double
    ];
    const DATES: &[&str] = &[
        "2013-11-26",
        "2024-02-29",
        "2023-02-29",
        "1900-02-29",
        "2000-02-29",
        "1900-01-01",
        "1899-12-31",
        "2026-01-01",
        "2026-01-02",
        "0000-01-01",
        "0001-01-01",
        "9999-12-31",
        "2013-04-31",
        "2013-13-01",
        "2013-00-10",
        "2013-1-26",
        "11/26/2013",
        "26-11-2013",
        "２０２３-01-02",
        "2013-11-26T00:00:00",
        "2013/11/26",
        "",
    ];
    const TIMESTAMPS: &[&str] = &[
        "2016-09-28T12:00:00-05:00",
        "2016-09-28T12:00:00Z",
        "2016-09-28T12:00:00.250-05:00",
        "2016-09-28T12:00:00.123456789+05:30",
        "2016-09-28T12:00:00.1234567890+05:30",
        "2016-09-28T12:00:00.-05:00",
        "2016-09-28T12:00:00+14:00",
        "2016-09-28T12:00:00+23:59",
        "2016-09-28T12:00:00-24:00",
        "2016-09-28T12:00:00+05:60",
        "2016-09-28T24:00:00-05:00",
        "2016-09-28T23:59:59-05:00",
        "2016-09-28T12:60:00-05:00",
        "2016-09-28T12:00:60-05:00",
        "2016-09-28 12:00:00-05:00",
        "2016-09-28T12:00:00",
        "2016-09-28T12:00:00-0500",
        "2016-02-30T12:00:00-05:00",
        "2016-09-28t12:00:00-05:00",
        "2016-09-28T12:00:00z",
        "yesterday",
    ];
    const SEXES: &[&str] = &["M", "m", "F", "f", "U", "u", "X", "Male", "ｍ"];
    const STATES: &[&str] = &[
        "MO", "mo", "Ks", "pr", "AP", "UM", "XX", "Missouri", "M", "ﬂ", "ＭＯ", "é", "M1",
    ];
    const ZIPS: &[&str] = &[
        "64106",
        "03406",
        "64106-1234",
        "641061234",
        "6410",
        "641061",
        "64106-123",
        "64106 1234",
        "6410a",
        "ABCDE",
        "６４１０６",
        "64106–1234",
    ];
    const PHONES: &[&str] = &[
        "8165550100",
        "(816) 555-0100",
        "816.555.0100",
        "+1 816 555 0100",
        "1-816-555-0100",
        "+44 20 7946 0958",
        "816-555-0100 x12",
        "123-456-7890",
        "816-155-0100",
        "++18165550100",
        "18165550100",
        "28165550100",
        "816555010000",
        "816-555-O100",
        "８１６５５５０１００",
        "555-0100",
    ];
    let long_local = "a".repeat(64);
    let long_label = "b".repeat(63);
    let long_address = format!(
        "{long_local}@{long_label}.{long_label}.{long_label}.{}",
        "c".repeat(58)
    );
    let emails: Vec<String> = vec![
        "newemail@example.com".into(),
        "j.doe+shots@mail.example.org".into(),
        "o'brien@example.com".into(),
        "josé@bücher.de".into(),
        "jo\u{a0}hn@example.com".into(),
        "john@exam\u{2003}ple.com".into(),
        "john@example.é".into(),
        "john@example.éé".into(),
        "a\u{80}b@example.com".into(),
        "a\u{9f}b@example.com".into(),
        "a\u{a1}b@example.com".into(),
        "jo\u{7f}hn@example.com".into(),
        "john@10.0.0.1".into(),
        "john@example.c".into(),
        "john@example.c1".into(),
        "john..doe@example.com".into(),
        ".john@example.com".into(),
        "john.@example.com".into(),
        "john@-example.com".into(),
        "john@example-.com".into(),
        "john@@example.com".into(),
        "john@example..com".into(),
        "john@example.com.".into(),
        "(john)@example.com".into(),
        "john@exa_mple.com".into(),
        "john@😀.com".into(),
        "none".into(),
        "n/a".into(),
        format!("{long_local}@example.com"),
        format!("{long_local}a@example.com"),
        format!("x@{long_label}.com"),
        format!("x@{long_label}b.com"),
        long_address.clone(),
        format!("{long_address}c"),
        format!("x@{}.com", "é".repeat(31)),
        format!("x@{}.com", "é".repeat(32)),
    ];
    let email_refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let text = &[
        "12 Main St",
        "Kansas City",
        "White",
        "Apt 4",
        "Calle Luna 5",
        "Saint-Joseph",
    ];

    let mut row = Map::new();
    row.insert("patno".into(), pick_int(rng, NUMBERS));
    row.insert(
        "lname".into(),
        pick(rng, &["Smith", "De La Cruz", "Nguyễn"]),
    );
    row.insert("fname".into(), pick(rng, &["John", "Mary  Ann", "José"]));
    row.insert("birth_date".into(), pick(rng, DATES));
    row.insert("sex".into(), pick(rng, SEXES));
    for column in ["addr1", "addr2", "city", "race", "ethnicity"] {
        row.insert(column.into(), pick(rng, text));
    }
    row.insert("state".into(), pick(rng, STATES));
    row.insert("zip".into(), pick(rng, ZIPS));
    for column in ["home_phone", "cell_phone"] {
        let value = if rng.random_bool(0.3) {
            Value::String(digits_and_punctuation(rng))
        } else {
            pick(rng, PHONES)
        };
        row.insert(column.into(), value);
    }
    row.insert("email".into(), pick(rng, &email_refs));
    row.insert("family_no".into(), pick_int(rng, NUMBERS));
    row.insert(
        "notes".into(),
        pick(rng, &["Line one\n  She said \"no\"\\ok  ", "  keep  "]),
    );
    row.insert("updated_at".into(), pick(rng, TIMESTAMPS));
    // Now and then a row that passes every rule, so emits are common enough to compare.
    if rng.random_bool(0.4) {
        row.insert("patno".into(), json!(rng.random_range(1..1_000_000)));
        row.insert("lname".into(), json!("Smith"));
        row.insert("fname".into(), json!("José"));
        row.insert("birth_date".into(), json!("2013-11-26"));
        row.insert("updated_at".into(), json!("2016-09-28T12:00:00-05:00"));
    }
    row
}

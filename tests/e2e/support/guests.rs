//! The Python and JavaScript twins of the default modules (`transforms/*-py`, `transforms/*-js`,
//! components built by `scripts/build-guest-python` and `scripts/build-guest-javascript`), held
//! to the Rust modules: where their components are, whether they were built from the current
//! sources, and the comparisons `guest_python.rs` and `guest_javascript.rs` both run.
//!
//! The components are built outside cargo (they need Python or Node.js), so the tests fail,
//! never skip, when one is missing or older than its sources. Each is compiled at most once per
//! test process, through the module cache the other tests share: compiling a component that
//! carries an interpreter takes minutes in a debug build (see `transforms/patients-js/README.md`).
//!
//! Comparisons show differing rows in full, values included: every row here is test data (KCMO's
//! public test patients, synthetic rows, generated rows), never a clinic's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqsync_runtime::source::{self, Query, SourceUrl};
use reqsync_runtime::transform::examples::ExampleFile;
use reqsync_runtime::transform::json_rows::batch_from_json;
use reqsync_runtime::transform::{
    BatchPlan, CompiledModule, ModuleInfo, RowOutcome, SandboxLimits, TransformEngine,
    TransformError, TransformInstance, Verdict, WIT_PACKAGE,
};
use reqsync_seeder::{SeedOptions, SeedReport, SyntheticOptions, seed_sqlite};
use serde_json::{Map, Value, json};

use super::CLINIC_TZ;

/// The as-of date of every comparison: the synthetic generator's reference date, so its valid
/// rows are valid and its future-dated ones are in the future.
pub const AS_OF: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 1) {
    Some(date) => date,
    None => panic!("2026-01-01 is a date"),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    JavaScript,
}

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
        }
    }

    /// The Rust module's version with this implementation's build tag.
    pub fn version(self) -> &'static str {
        match self {
            Language::Python => "1.0.0+python",
            Language::JavaScript => "1.0.0+javascript",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::JavaScript => "js",
        }
    }

    fn script(self) -> &'static str {
        match self {
            Language::Python => "build-guest-python",
            Language::JavaScript => "build-guest-javascript",
        }
    }

    /// The shared glue and build files every module of the language uses.
    fn sdk(self) -> &'static str {
        match self {
            Language::Python => "guest-sdk/python",
            Language::JavaScript => "guest-sdk/javascript",
        }
    }

    /// Whether a file of a module folder (or of the SDK folder) is a build input.
    fn is_source(self, name: &str) -> bool {
        match self {
            Language::Python => name.ends_with(".py") || name.ends_with(".csv"),
            Language::JavaScript => {
                name.ends_with(".js") || name.ends_with(".mjs") || name.starts_with("package")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Patients,
    VaccineDoses,
}

impl Module {
    pub fn name(self) -> &'static str {
        match self {
            Module::Patients => "patients",
            Module::VaccineDoses => "vaccine-doses",
        }
    }

    fn rust_wasm(self) -> &'static Path {
        Path::new(match self {
            Module::Patients => reqsync_test_guests::PATIENTS,
            Module::VaccineDoses => reqsync_test_guests::VACCINE_DOSES,
        })
    }

    /// The default query (`queries/`) whose rows the module maps.
    fn query(self) -> &'static str {
        match self {
            Module::Patients => "patients.sql",
            Module::VaccineDoses => "vaccine_doses.sql",
        }
    }

    /// Data files the Python and JavaScript modules build from besides their folders' files.
    fn data(self) -> &'static [&'static str] {
        match self {
            Module::Patients => &[],
            // JavaScript's cvx-codes.js is generated from it at build time.
            Module::VaccineDoses => &["transforms/vaccine-doses/data/cvx_codes.csv"],
        }
    }

    fn index(self) -> usize {
        match self {
            Module::Patients => 0,
            Module::VaccineDoses => 1,
        }
    }
}

/// One Python or JavaScript module, e.g. `vaccine-doses` in Python (`vaccine-doses-py.wasm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    pub language: Language,
    pub module: Module,
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ is inside the workspace")
        .to_path_buf()
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The engine every comparison runs on, with the shared module cache.
fn engine() -> &'static TransformEngine {
    static ENGINE: OnceLock<TransformEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        TransformEngine::new(SandboxLimits::default(), Some(super::module_cache())).expect("engine")
    })
}

impl Guest {
    pub const fn new(language: Language, module: Module) -> Self {
        Guest { language, module }
    }

    /// `patients-py`, `vaccine-doses-js`, …: the module folder's name and the component's stem.
    pub fn name(self) -> String {
        format!("{}-{}", self.module.name(), self.language.suffix())
    }

    /// What to run when the component is missing or stale.
    pub fn rebuild(self) -> String {
        let needs = match self.language {
            Language::Python => "it installs componentize-py",
            Language::JavaScript => "it needs Node.js 20+; see transforms/patients-js/README.md",
        };
        format!(
            "run `scripts/{} {}` ({needs})",
            self.language.script(),
            self.module.name()
        )
    }

    /// `target/guests/NAME.wasm`, checked to exist and to be built from the current sources.
    pub fn wasm(self) -> PathBuf {
        let root = workspace();
        let guests = root.join("target/guests");
        let wasm = guests.join(format!("{}.wasm", self.name()));
        // The build script writes (or, when nothing changed, touches) this stamp: a source
        // edited after it means the component under test is not the code in the repository.
        let stamp = guests.join(format!("{}.wasm.inputs", self.name()));
        assert!(
            wasm.is_file() && stamp.is_file(),
            "{} is missing: {}",
            wasm.display(),
            self.rebuild()
        );
        let built = modified(&stamp);
        let mut sources = vec![
            root.join("guest-sdk/wit/transform.wit"),
            root.join("transforms")
                .join(self.module.name())
                .join("examples.json"),
        ];
        sources.extend(self.module.data().iter().map(|file| root.join(file)));
        // Links (to the shared glue, rules and the CVX list) count with their targets' times.
        for dir in [
            root.join("transforms").join(self.name()),
            root.join(self.language.sdk()),
        ] {
            for entry in std::fs::read_dir(&dir).expect("source folder") {
                let path = entry.expect("source entry").path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if self.language.is_source(name) {
                    sources.push(path);
                }
            }
        }
        for source in sources {
            assert!(
                modified(&source) <= built,
                "{} changed after {} was last built: {}",
                source.display(),
                wasm.display(),
                self.rebuild()
            );
        }
        wasm
    }

    /// The component, compiled (or loaded from the cache) once per test process.
    pub fn compiled(self) -> &'static CompiledModule {
        static COMPILED: [OnceLock<CompiledModule>; 4] = [const { OnceLock::new() }; 4];
        // Checked on every call, so that each test fails with the message.
        let path = self.wasm();
        let index = 2 * usize::from(self.language == Language::JavaScript) + self.module.index();
        COMPILED[index].get_or_init(|| {
            let started = Instant::now();
            let module = engine().load(&path).unwrap_or_else(|e| {
                panic!(
                    "the {} {} module must load: {e}",
                    self.language.name(),
                    self.module.name()
                )
            });
            eprintln!(
                "{}: compiled or loaded from the cache in {:.1?}",
                self.name(),
                started.elapsed()
            );
            module
        })
    }

    pub fn instance(self) -> TransformInstance {
        TransformInstance::new(engine(), self.compiled())
            .unwrap_or_else(|e| panic!("the {} module must instantiate: {e}", self.name()))
    }

    /// A fresh instance of the Rust module this one is the twin of.
    pub fn rust_instance(self) -> TransformInstance {
        static COMPILED: [OnceLock<CompiledModule>; 2] = [const { OnceLock::new() }; 2];
        let module = COMPILED[self.module.index()].get_or_init(|| {
            engine()
                .load(self.module.rust_wasm())
                .expect("the Rust module loads")
        });
        TransformInstance::new(engine(), module).expect("the Rust module instantiates")
    }

    /// Both instances: (this module, the Rust module).
    pub fn instances(self) -> (TransformInstance, TransformInstance) {
        (self.instance(), self.rust_instance())
    }
}

// ---- the checks every guest module passes ---------------------------------------------------

/// Loads in the sandbox (which refuses forbidden imports: files, sockets, other WIT versions)
/// and describes itself as the Rust module does: name, target, key column, every input column
/// with its type, flags and hints (the CVX code list included), every output field. Only the
/// version differs, by its build tag.
pub fn assert_describes_itself_like_the_rust_module(guest: Guest) {
    assert_eq!(guest.compiled().wit_package, WIT_PACKAGE);
    let (mine, rust) = guest.instances();
    let (mine, rust) = (mine.info().clone(), rust.info().clone());
    assert_eq!(mine.version, guest.language.version());
    assert_eq!(rust.version, "1.0.0");
    assert_eq!(
        ModuleInfo {
            version: rust.version.clone(),
            ..mine
        },
        rust
    );
}

/// The build put a copy of the Rust module's example cases beside the component (where the host
/// looks for them), and the component passes every one.
pub fn assert_passes_the_rust_modules_example_cases(guest: Guest, at_least: usize) {
    let beside = guest
        .wasm()
        .with_file_name(format!("{}.examples.json", guest.name()));
    let spec = workspace()
        .join("transforms")
        .join(guest.module.name())
        .join("examples.json");
    assert_eq!(
        std::fs::read(&beside).unwrap_or_default(),
        std::fs::read(&spec).expect("the Rust module's examples"),
        "{} is not a copy of {}: {}",
        beside.display(),
        spec.display(),
        guest.rebuild()
    );
    let examples = ExampleFile::load(&beside).expect("example cases");
    assert!(examples.cases.len() >= at_least, "the spec has shrunk");
    let failures = examples.run(&mut guest.instance()).expect("runs");
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Seeds a clinic (KCMO plus `synthetic`) into SQLite and runs the module's default query through
/// the real source and batch plan, 500 rows a batch, into both modules.
pub async fn compare_on_seeded_clinic(
    guest: Guest,
    synthetic: SyntheticOptions,
) -> (Tally, SeedReport) {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("clinic.db");
    let seeded = seed_sqlite(
        &db,
        &SeedOptions {
            kcmo: true,
            synthetic: Some(synthetic),
            ..SeedOptions::default()
        },
    )
    .expect("seed");
    let source = source::open(&SourceUrl::Sqlite(db), CLINIC_TZ).expect("source");
    let query = Query {
        name: guest.module.query().into(),
        sql: std::fs::read_to_string(workspace().join("queries").join(guest.module.query()))
            .expect("query"),
    };
    let full_extract = NaiveDate::from_ymd_opt(1900, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date");
    let mut stream = source
        .stream(&query, full_extract, 500)
        .await
        .expect("query runs");
    let (mut mine, mut rust) = guest.instances();
    let my_plan = BatchPlan::new(mine.info(), &stream.columns, CLINIC_TZ).expect("plan");
    let rust_plan = BatchPlan::new(rust.info(), &stream.columns, CLINIC_TZ).expect("plan");
    let mut tally = Tally::new(guest);
    while let Some(batch) = stream.next_batch().await {
        let batch = batch.expect("batch");
        let started = Instant::now();
        let from_mine = mine.process(&my_plan, &batch, AS_OF).expect("batch");
        tally.guest_time += started.elapsed();
        let started = Instant::now();
        let from_rust = rust.process(&rust_plan, &batch, AS_OF).expect("Rust batch");
        tally.rust_time += started.elapsed();
        tally.compare(&from_mine, &from_rust);
    }
    tally.report("KCMO + synthetic");
    tally.assert_agreement();
    (tally, seeded)
}

/// Runs batches of JSON rows (one batch per list) through both modules. The batches vary in
/// shape as the queries clinics write do: every third arrives with its columns in reverse order,
/// every third without some of the optional columns.
pub fn compare_json_rows(guest: Guest, batches: &[Vec<Map<String, Value>>]) -> Tally {
    let (mut mine, mut rust) = guest.instances();
    let info = rust.info().clone();
    let optional: Vec<&str> = info
        .input_columns
        .iter()
        .filter(|c| !c.required)
        .map(|c| c.name.as_str())
        .collect();
    let mut tally = Tally::new(guest);
    for (number, rows) in batches.iter().enumerate() {
        let refs: Vec<&Map<String, Value>> = rows.iter().collect();
        let mut converted = batch_from_json(&info, &refs).expect("rows fit the columns");
        let columns = &mut converted.batch.columns;
        match number % 3 {
            1 => columns.reverse(),
            2 => {
                // A different half of the optional columns each time.
                let dropped: Vec<&str> = optional
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (i + number / 3) % 2 == 0)
                    .map(|(_, name)| *name)
                    .collect();
                columns.retain(|c| !dropped.contains(&c.name.as_str()));
            }
            _ => {}
        }
        let started = Instant::now();
        let from_mine = mine
            .process_converted(converted.clone(), AS_OF)
            .expect("batch");
        tally.guest_time += started.elapsed();
        let started = Instant::now();
        let from_rust = rust
            .process_converted(converted, AS_OF)
            .expect("Rust batch");
        tally.rust_time += started.elapsed();
        tally.compare(&from_mine, &from_rust);
    }
    tally.report("generated rows");
    tally.assert_agreement();
    tally
}

/// A batch of only the required columns, in reverse order (optional columns read as NULL), gets
/// the same verdicts; `emitted` rows of it must emit.
pub fn assert_required_columns_alone_agree(guest: Guest, rows: &[Value], emitted: usize) {
    let rows: Vec<&Map<String, Value>> = rows.iter().filter_map(Value::as_object).collect();
    let mut info = guest.rust_instance().info().clone();
    info.input_columns.retain(|c| c.required);
    let mut converted = batch_from_json(&info, &rows).expect("rows fit");
    converted.batch.columns.reverse();
    let (mut mine, mut rust) = guest.instances();
    let from_mine = mine
        .process_converted(converted.clone(), AS_OF)
        .expect("batch");
    let from_rust = rust
        .process_converted(converted, AS_OF)
        .expect("Rust batch");
    let mut tally = Tally::new(guest);
    tally.compare(&from_mine, &from_rust);
    tally.assert_agreement();
    assert_eq!(tally.emitted, emitted, "{tally:?}");
}

/// Damaged batches are refused whole by both modules, with the same code and message: a
/// required column missing, integers arriving for text column `text_column`, a short NULL map.
pub fn assert_refuses_malformed_batches_alike(
    guest: Guest,
    rows: &[Value],
    required_column: &str,
    text_column: &str,
    integer_column: &str,
) {
    let info = guest.rust_instance().info().clone();
    let rows: Vec<&Map<String, Value>> = rows.iter().filter_map(Value::as_object).collect();
    let position = |name: &str| {
        info.input_columns
            .iter()
            .position(|c| c.name == name)
            .expect("declared column")
    };
    let (text, integer) = (position(text_column), position(integer_column));
    let (mut mine, mut rust) = guest.instances();
    for (damage, expected_code) in [
        ("a required column is missing", "missing-column"),
        ("integers arrive for a text column", "wrong-column-type"),
        ("the NULL map is short", "malformed-batch"),
    ] {
        let mut converted = batch_from_json(&info, &rows).expect("batch");
        let columns = &mut converted.batch.columns;
        match damage {
            "a required column is missing" => columns.retain(|c| c.name != required_column),
            "integers arrive for a text column" => {
                columns[text].values = columns[integer].values.clone();
            }
            _ => columns[text].present.truncate(1),
        }
        let refused = |result: Result<Vec<RowOutcome>, TransformError>| match result {
            Err(TransformError::BatchRefused { code, message, .. }) => (code, message),
            other => panic!("{damage}: expected a refused batch, got {other:?}"),
        };
        let from_mine = refused(mine.process_converted(converted.clone(), AS_OF));
        let from_rust = refused(rust.process_converted(converted, AS_OF));
        assert_eq!(from_mine.0, expected_code, "{damage}");
        assert_eq!(from_mine, from_rust, "{damage}");
    }
}

// ---- comparing outcomes --------------------------------------------------------------------

/// What two modules answered for the same rows, and where they differ.
#[derive(Debug)]
pub struct Tally {
    guest: Guest,
    pub rows: usize,
    pub emitted: usize,
    pub warned: usize,
    pub rejected: usize,
    /// The keys of the rejected rows.
    pub rejected_keys: BTreeSet<String>,
    /// Skipped rows by skip code.
    pub skipped: BTreeMap<String, usize>,
    /// The first differences, described in full (test data only).
    differences: Vec<String>,
    different: usize,
    guest_time: Duration,
    rust_time: Duration,
}

impl Tally {
    fn new(guest: Guest) -> Self {
        Tally {
            guest,
            rows: 0,
            emitted: 0,
            warned: 0,
            rejected: 0,
            rejected_keys: BTreeSet::new(),
            skipped: BTreeMap::new(),
            differences: Vec::new(),
            different: 0,
            guest_time: Duration::ZERO,
            rust_time: Duration::ZERO,
        }
    }

    /// Counts the Rust module's verdicts and notes every row where the other module's differs:
    /// in key, in kind, in the record (compared as JSON text: the same fields, values and key
    /// order), in warnings, findings or skip reasons, messages included, in the same order.
    pub fn compare(&mut self, mine: &[RowOutcome], rust: &[RowOutcome]) {
        assert_eq!(mine.len(), rust.len(), "one outcome per row");
        for (m, r) in mine.iter().zip(rust) {
            self.rows += 1;
            match &r.verdict {
                Verdict::Emit { warnings, .. } => {
                    self.emitted += 1;
                    self.warned += usize::from(!warnings.is_empty());
                }
                Verdict::Reject { .. } => {
                    self.rejected += 1;
                    self.rejected_keys.insert(r.key.to_string());
                }
                Verdict::Skip { code, .. } => *self.skipped.entry(code.clone()).or_default() += 1,
            }
            let same_json = match (&m.verdict, &r.verdict) {
                (Verdict::Emit { record: a, .. }, Verdict::Emit { record: b, .. }) => {
                    a.json() == b.json()
                }
                _ => true,
            };
            if m != r || !same_json {
                self.different += 1;
                if self.differences.len() < 10 {
                    self.differences.push(format!(
                        "row {} (Rust: {}):\n  {:<10}  {}\n  {:<10}  {}",
                        m.key,
                        r.key,
                        self.guest.language.name(),
                        show(&m.verdict),
                        "Rust",
                        show(&r.verdict)
                    ));
                }
            }
        }
    }

    pub fn assert_agreement(&self) {
        assert!(
            self.different == 0,
            "the {} and Rust {} modules disagree on {} of {} rows; the first:\n{}",
            self.guest.language.name(),
            self.guest.module.name(),
            self.different,
            self.rows,
            self.differences.join("\n")
        );
    }

    fn report(&self, what: &str) {
        let per_row = |d: Duration| d.as_secs_f64() * 1e6 / self.rows.max(1) as f64;
        eprintln!(
            "{}: {what}: {} rows ({} emitted, {} with warnings, {} rejected, skipped {:?}); \
             {} {:.1} µs/row, Rust {:.1} µs/row (this build's wasmtime)",
            self.guest.name(),
            self.rows,
            self.emitted,
            self.warned,
            self.rejected,
            self.skipped,
            self.guest.language.name(),
            per_row(self.guest_time),
            per_row(self.rust_time),
        );
    }
}

/// A verdict in full, values included (for test data only).
fn show(verdict: &Verdict) -> String {
    let findings = |list: &[reqsync_runtime::transform::Finding]| {
        list.iter()
            .map(|f| format!("{} ({})", f.tag(), f.message))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match verdict {
        Verdict::Emit { record, warnings } => {
            format!("emit {} warnings [{}]", record.json(), findings(warnings))
        }
        Verdict::Skip { code, message } => format!("skip {code} ({message})"),
        Verdict::Reject { findings: list } => format!("reject [{}]", findings(list)),
    }
}

// ---- generated dose rows --------------------------------------------------------------------

/// Text fragments where Python's, JavaScript's and Rust's defaults disagree, or where the rules
/// have edges: Unicode whitespace (Python's `strip` also removes U+001C..U+001F, JavaScript's
/// `trim` strips U+FEFF but not U+0085), look-alikes that are not whitespace (U+200B, U+180E),
/// controls (NUL is refused in a record), non-ASCII digits, surrogate pairs, combining marks.
const FRAGMENTS: &[&str] = &[
    " ", "  ", "\t", "\n", "\r\n", "\u{b}", "\u{c}", "\u{1c}", "\u{1f}", "\u{85}", "\u{a0}",
    "\u{2003}", "\u{2028}", "\u{3000}", "\u{200b}", "\u{180e}", "\u{feff}", "\u{0}", "\u{7f}",
    "\u{9f}", "\"", "\\", "'", "é", "ễ", "２", "😀", "d\u{301}", "-", ".",
];

/// Manufacturer codes as typed, and strings whose upper-casing differs between naive
/// implementations: full mappings that change the length (ß → SS, ŉ → ʼN, ﬂ → FL, ΐ → Ϊ́),
/// characters that map outside their block (ÿ → Ÿ, µ → Μ, ı → I), lower-case letters that are not
/// in category Ll (ⓐ, ⅰ, ͅ), titlecase letters, which Rust does not upper-case alone (ǅ, ᾈ), and
/// lower-case letters without an upper-case form (ĸ, ª).
const MVX: &[&str] = &[
    "PMC",
    "pmc",
    " gsk ",
    "Mrk",
    "SKB",
    "unk",
    "ß",
    "Straße",
    "ŉ",
    "ﬂu",
    "ΐ",
    "ÿ",
    "µ",
    "ı",
    "İ",
    "ⓐbc",
    "ⅰⅱ",
    "a\u{345}",
    "ǅ",
    "ǅx",
    "Xǅ",
    "ᾈ",
    "ᾈa",
    "ĸ",
    "ªB",
    "ǈĸx",
    "Ⅻ",
    "ꭰ",
    "😀a",
    "\u{feff}pmc",
    "p\u{0}mc",
    "",
];

/// CVX codes: listed ones of every status, and unknown ones near the edges (0, negative, beyond
/// 16 bits, where a code that wraps would land on a listed one: 65 546 = 65 536 + 10).
const CVX: &[i64] = &[
    1,
    3,
    8,
    10,
    20,
    187,
    208,
    300,
    801,
    998,
    999,
    0,
    -10,
    2000,
    9999,
    65_535,
    65_536,
    65_546,
    i64::MAX,
    i64::MIN,
];

const NUMBERS: &[i64] = &[
    1,
    4,
    101,
    0,
    -1,
    2_147_483_647,
    2_147_483_648,
    -2_147_483_648,
    i64::MAX,
    i64::MIN,
    9_007_199_254_740_993, // 2^53 + 1: not a double
];

const DATES: &[&str] = &[
    "2013-11-26",
    "2013-11-25",
    "2013-11-27",
    "2014-03-08",
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
    "2013-1-26",
    "11/26/2013",
    "２０２３-01-02",
    "2013-11-26T00:00:00",
    "",
];

const TIMESTAMPS: &[&str] = &[
    "2016-10-24T10:00:00-05:00",
    "2016-10-24T10:00:00Z",
    "2016-10-24T10:00:00.250-05:00",
    "2016-10-24T10:00:00.123456789+05:30",
    "2016-10-24T10:00:00.1234567890+05:30",
    "2016-10-24T10:00:00.-05:00",
    "2016-10-24T10:00:00+23:59",
    "2016-10-24T10:00:00-24:00",
    "2016-10-24T24:00:00-05:00",
    "2016-10-24T23:59:60-05:00",
    "2016-10-24 10:00:00-05:00",
    "2016-10-24T10:00:00",
    "2016-10-24T10:00:00-0500",
    "2016-02-30T10:00:00-05:00",
    "2016-10-24t10:00:00-05:00",
    "yesterday",
];

const HISTORY: &[&str] = &[
    "Y",
    "N",
    " Y ",
    "N\t",
    "\u{a0}N\u{85}",
    "\u{3000}Y",
    "y",
    "n",
    "1",
    "0",
    "YES",
    "No",
    "Ｙ",
    "\u{feff}Y",
    "\u{1c}N",
    "N\u{200b}",
    "",
];

const FREE_TEXT: &[&str] = &[
    "POL",
    "C-Polio (Unknown Type)",
    "K1330",
    "432",
    "0.5 mL",
    "LA",
    "Nurse Nguyễn",
    "V02",
    "VFC eligible - Medicaid",
    "E-77",
    "Parent's note:\n  \"arm sore\" \\ follow up  ",
    "",
    "   ",
];

const NAMES: &[&str] = &["Tester", "Mary  Ann", " De La Cruz ", "José", "Nguyễn", ""];

fn fragments(rng: &mut StdRng, max: usize) -> String {
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| *FRAGMENTS.choose(rng).expect("fragments"))
        .collect()
}

/// A text cell: NULL now and then, else a value of `pool`, sometimes with fragments around or
/// instead of it.
fn text(rng: &mut StdRng, pool: &[&str]) -> Value {
    let base = *pool.choose(rng).expect("pool");
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 => Value::String(fragments(rng, 4)),
        2 | 3 => {
            let edge = fragments(rng, 2);
            Value::String(if rng.random_bool(0.5) {
                format!("{edge}{base}")
            } else {
                format!("{base}{edge}")
            })
        }
        _ => Value::String(base.to_owned()),
    }
}

fn integer(rng: &mut StdRng, pool: &[i64]) -> Value {
    match rng.random_range(0..12) {
        0 => Value::Null,
        1 => json!(rng.random::<i64>()),
        _ => json!(*pool.choose(rng).expect("pool")),
    }
}

/// A dose row full of awkward values. Most rows are given a valid patient and dose (with the
/// optional columns left as generated) so that emits, and with them the optional fields'
/// rules, are common; the rest go wherever the values take them.
pub fn dose_row(rng: &mut StdRng) -> Map<String, Value> {
    fn put(row: &mut Map<String, Value>, column: &str, value: Value) {
        row.insert(column.to_owned(), value);
    }
    let mut row = Map::new();
    let im_id = rng.random_range(1..10_000_000i64);
    put(&mut row, "im_id", json!(im_id));
    let patno = integer(rng, NUMBERS);
    put(&mut row, "patno", patno.clone());
    // Mostly the dose's own patient; sometimes none (no mpfile row) or another one.
    let joined = match rng.random_range(0..10) {
        0 => Value::Null,
        1 => integer(rng, NUMBERS),
        _ => patno,
    };
    put(&mut row, "patient_patno", joined);
    put(&mut row, "patient_lname", text(rng, NAMES));
    put(&mut row, "patient_fname", text(rng, NAMES));
    put(&mut row, "patient_birth_date", text(rng, DATES));
    put(&mut row, "cvx", integer(rng, CVX));
    put(&mut row, "admin_date", text(rng, DATES));
    put(&mut row, "history", text(rng, HISTORY));
    put(&mut row, "updated_at", text(rng, TIMESTAMPS));
    put(&mut row, "exp_date", text(rng, DATES));
    put(&mut row, "mvx", text(rng, MVX));
    for column in [
        "vac_code",
        "vac_desc",
        "lot_no",
        "provider",
        "dosage",
        "site",
        "given_by",
        "vfc_code",
        "vfc_desc",
        "encounter_id",
        "comments",
    ] {
        put(&mut row, column, text(rng, FREE_TEXT));
    }
    if rng.random_bool(0.45) {
        let patno = rng.random_range(1..1_000_000i64);
        put(&mut row, "patno", json!(patno));
        put(&mut row, "patient_patno", json!(patno));
        put(&mut row, "patient_lname", json!("Tester"));
        put(&mut row, "patient_fname", json!("José"));
        put(&mut row, "patient_birth_date", json!("2013-11-26"));
        put(
            &mut row,
            "cvx",
            json!(*CVX[..11].choose(rng).expect("codes")),
        );
        put(&mut row, "admin_date", json!("2014-03-08"));
        put(
            &mut row,
            "history",
            json!(*["Y", "N", " N "].choose(rng).expect("flags")),
        );
        put(&mut row, "updated_at", json!(TIMESTAMPS[0]));
    }
    row
}

/// `batches` batches of `rows` generated dose rows, the same for every run.
pub fn dose_batches(seed: u64, batches: usize, rows: usize) -> Vec<Vec<Map<String, Value>>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..batches)
        .map(|_| (0..rows).map(|_| dose_row(&mut rng)).collect())
        .collect()
}

/// Two patients: one that emits, one rejected on every patient rule.
pub fn two_patients() -> [Value; 2] {
    [
        json!({"patno": 7, "lname": " Nguyễn ", "fname": "José", "birth_date": "2010-05-06",
               "updated_at": "2016-09-28T12:00:00-05:00", "state": "mo", "zip": "6410",
               "email": "josé@bücher.de", "notes": "  keep  "}),
        json!({"patno": 0, "lname": "\u{a0}", "fname": null, "birth_date": "2010-02-30",
               "updated_at": "2016-09-28T12:00:00", "home_phone": "+1 (816) 555-0100"}),
    ]
}

/// Two doses: one that emits (with a warning and repaired values), one rejected on every dose
/// rule, its `history` NULL.
pub fn two_doses() -> [Value; 2] {
    [
        json!({"im_id": 1, "patno": 4, "cvx": 10, "admin_date": "2014-03-08", "history": " Y ",
               "updated_at": "2016-10-24T10:00:00-05:00", "patient_patno": 4,
               "patient_lname": " Nguyễn ", "patient_fname": "José",
               "patient_birth_date": "2013-11-26", "mvx": " pmc ", "exp_date": "2015-02-30",
               "comments": "  keep  "}),
        json!({"im_id": 2, "patno": 5, "cvx": 65_546, "admin_date": "2013-11-25",
               "history": null, "updated_at": "2016-10-24T10:00:00", "patient_patno": 5,
               "patient_lname": "Tester", "patient_fname": "Test",
               "patient_birth_date": "2013-11-26"}),
    ]
}

/// The seeded comparison was not vacuous: doses were emitted, both kinds of held-back dose
/// occurred, and every synthetic dose that is invalid in itself was rejected.
pub fn assert_every_dose_verdict_occurred(tally: &Tally, seeded: &SeedReport) {
    use reqsync_seeder::{InvalidKind, SourceTable};
    let synthetic = seeded.synthetic.as_ref().expect("synthetic report");
    let mut invalid_doses = 0;
    for row in synthetic
        .invalid
        .iter()
        .filter(|r| r.table == SourceTable::Imfile)
    {
        let rejected = matches!(
            row.kind,
            InvalidKind::UnknownCvx
                | InvalidKind::BadHistoryFlag
                | InvalidKind::AdminDateInFuture
                | InvalidKind::AdminDateBeforeBirth
        );
        if rejected {
            invalid_doses += 1;
            assert!(
                tally.rejected_keys.contains(&row.key.to_string()),
                "dose {} ({}) was not rejected",
                row.key,
                row.kind
            );
        }
    }
    assert!(invalid_doses > 0, "the synthetic set has invalid doses");
    assert!(tally.emitted > 1000, "{tally:?}");
    for code in ["patient-not-found", "patient-not-sent"] {
        assert!(
            tally.skipped.get(code).copied().unwrap_or(0) > 0,
            "{tally:?}"
        );
    }
}

/// The generated rows reached every verdict and both skip reasons often enough to compare.
pub fn assert_generated_doses_reach_every_verdict(tally: &Tally) {
    assert!(
        tally.emitted > 300 && tally.rejected > 100 && tally.warned > 100,
        "{tally:?}"
    );
    for code in ["patient-not-found", "patient-not-sent"] {
        assert!(
            tally.skipped.get(code).copied().unwrap_or(0) > 20,
            "{tally:?}"
        );
    }
}

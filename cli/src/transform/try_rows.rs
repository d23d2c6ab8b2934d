//! `reqsync transform try`: what a module does to given rows.
//!
//! The rows may be real patients: they and the records are printed on stdout for the analyst
//! who asked, and never logged.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;
use reqsync_runtime::transform::{Finding, RowOutcome, Verdict};
use serde::Serialize;
use serde_json::{Map, Value};

use super::row_input::{self, RowInput};
use crate::engine_options::CacheArgs;
use crate::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct TryArgs {
    /// The module file (`.wasm`).
    #[arg(value_name = "MODULE.wasm")]
    pub module: PathBuf,
    #[command(flatten)]
    pub input: RowInput,
    /// With --from-source: read at most N rows [default: all the query returns].
    #[arg(long, value_name = "N", requires = "from_source")]
    pub limit: Option<usize>,
    /// Evaluate date rules against this date (YYYY-MM-DD) [default: today].
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// Print one JSON object per row (JSON Lines).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

pub fn run(args: TryArgs) -> Result<u8, Failure> {
    let job = args.input.job()?;
    let engine = row_input::engine(&args.cache, job.as_ref())?;
    let (module, mut instance) = super::load_module(&engine, &args.module)?;
    let rows = args.input.load(job.as_ref(), args.limit)?;
    rows.check_columns(&[instance.info()])?;
    let as_of = row_input::as_of(args.as_of, job.as_ref());
    let outcomes = rows.outcomes(&mut instance, as_of)?;
    let info = instance.info();

    let mut out = String::new();
    if args.json {
        for (i, o) in outcomes.iter().enumerate() {
            let line = serde_json::to_string(&RowJson::new(i + 1, o))
                .or_exit(exit::INTERNAL, "cannot write JSON")?;
            out.push_str(&line);
            out.push('\n');
        }
    } else {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "{} {} (sha256 {}), as of {as_of}, {} row{}",
            info.name,
            info.version,
            short_hash(&module.sha256),
            outcomes.len(),
            plural(outcomes.len())
        );
        for (i, o) in outcomes.iter().enumerate() {
            out.push('\n');
            out.push_str(&describe_row(
                i + 1,
                &info.key_column,
                rows.group_column(),
                o,
            ));
        }
        let counts = Counts::of(&outcomes);
        let _ = writeln!(
            out,
            "\n{} row{}: {} emit, {} skip, {} reject",
            outcomes.len(),
            plural(outcomes.len()),
            counts.emit,
            counts.skip,
            counts.reject
        );
    }
    write_stdout(&out)?;
    Ok(exit::OK)
}

/// How many rows got each outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub emit: usize,
    pub skip: usize,
    pub reject: usize,
}

impl Counts {
    pub fn of(outcomes: &[RowOutcome]) -> Self {
        let mut c = Counts::default();
        for o in outcomes {
            match o.verdict {
                Verdict::Emit { .. } => c.emit += 1,
                Verdict::Skip { .. } => c.skip += 1,
                Verdict::Reject { .. } => c.reject += 1,
            }
        }
        c
    }
}

/// One row of `--json` output.
#[derive(Debug, Serialize)]
struct RowJson<'a> {
    /// 1-based, as in the text output and in error messages.
    index: usize,
    key: &'a str,
    /// The row's value of the job's group column (a dose's patient), for rows read from the
    /// source.
    group: Option<&'a str>,
    outcome: &'static str,
    record: Option<&'a Map<String, Value>>,
    warnings: &'a [Finding],
    findings: &'a [Finding],
    skip: Option<Skip<'a>>,
}

#[derive(Debug, Serialize)]
struct Skip<'a> {
    code: &'a str,
    message: &'a str,
}

impl<'a> RowJson<'a> {
    fn new(index: usize, o: &'a RowOutcome) -> Self {
        let (record, warnings, findings, skip): (_, &[Finding], &[Finding], _) = match &o.verdict {
            Verdict::Emit { record, warnings } => (Some(record.fields()), warnings, &[], None),
            Verdict::Skip { code, message } => (None, &[], &[], Some(Skip { code, message })),
            Verdict::Reject { findings } => (None, &[], findings, None),
        };
        RowJson {
            index,
            key: &o.key,
            group: o.group.as_deref(),
            outcome: outcome_word(&o.verdict),
            record,
            warnings,
            findings,
            skip,
        }
    }
}

pub fn outcome_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Emit { .. } => "emit",
        Verdict::Skip { .. } => "skip",
        Verdict::Reject { .. } => "reject",
    }
}

/// `row 3  patno 101`, and for dose rows read from the source their patient:
/// `row 3  im_id 7 (patno 101)`. `group` is the group column's name and the row's value.
pub fn row_heading(
    index: usize,
    key_column: &str,
    key: &str,
    group: Option<(&str, &str)>,
) -> String {
    let key = if key.is_empty() { "(none)" } else { key };
    match group {
        Some((column, value)) => format!("row {index}  {key_column} {key} ({column} {value})"),
        None => format!("row {index}  {key_column} {key}"),
    }
}

fn describe_row(index: usize, key_column: &str, group_column: &str, o: &RowOutcome) -> String {
    use std::fmt::Write;
    let group = o.group.as_deref().map(|g| (group_column, g));
    let mut out = format!(
        "{}: {}\n",
        row_heading(index, key_column, &o.key, group),
        outcome_word(&o.verdict)
    );
    match &o.verdict {
        Verdict::Emit { record, warnings } => {
            let pretty = serde_json::to_string_pretty(record).unwrap_or_default();
            for line in pretty.lines() {
                let _ = writeln!(out, "  {line}");
            }
            for w in warnings {
                let _ = writeln!(out, "  warning {}", finding_line(w));
            }
        }
        Verdict::Skip { code, message } => {
            let _ = writeln!(out, "  {code}: {message}");
        }
        Verdict::Reject { findings } => {
            for f in findings {
                let _ = writeln!(out, "  {}", finding_line(f));
            }
        }
    }
    out
}

/// `field: code — message` (messages never quote row values).
pub fn finding_line(f: &Finding) -> String {
    format!("{}: {} — {}", f.field, f.code, f.message)
}

/// Writes a command's output to stdout. A closed pipe (`… | head`) is not an error: the reader
/// has what it wanted.
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).or_exit(exit::INTERNAL, "cannot write to stdout")
        }
        _ => Ok(()),
    }
}

pub fn short_hash(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

//! `reqsync transform inspect`: what a module file is, from its own description.

use std::path::PathBuf;

use clap::Args;
use reqsync_runtime::reqcheck::targets;
use reqsync_runtime::transform::{ColumnSpec, FieldSpec, ValueHint};
use serde::Serialize;

use super::row_input::kind_name;
use super::try_rows::write_stdout;
use crate::engine_options::CacheArgs;
use crate::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The module file (`.wasm`).
    #[arg(value_name = "MODULE.wasm")]
    pub module: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub project: super::ProjectArgs,
}

#[derive(Debug, Serialize)]
struct Inspected<'a> {
    path: &'a std::path::Path,
    name: &'a str,
    version: &'a str,
    wit_package: &'a str,
    /// The record type it emits.
    target: &'a str,
    /// Whether ReqCheck imports that record type (`/patient_data`, `/vaccine_dose_data`).
    reqcheck_endpoint: Option<&'static str>,
    key_column: &'a str,
    input_columns: &'a [ColumnSpec],
    output_fields: &'a [FieldSpec],
    sha256: &'a str,
    size_bytes: u64,
}

pub fn run(args: InspectArgs) -> Result<u8, Failure> {
    let engine = args.project.engine_options(&args.cache)?.engine()?;
    let (module, instance) = super::load_module(&engine, &args.module)?;
    let size_bytes = std::fs::metadata(&args.module)
        .or_exit(
            exit::TRANSFORM,
            &format!("transform module {}", args.module.display()),
        )?
        .len();
    let info = instance.info();
    let inspected = Inspected {
        path: &args.module,
        name: &info.name,
        version: &info.version,
        wit_package: &module.wit_package,
        target: &info.target,
        reqcheck_endpoint: targets::by_name(&info.target).map(|t| t.endpoint),
        key_column: &info.key_column,
        input_columns: &info.input_columns,
        output_fields: &info.output_fields,
        sha256: &module.sha256,
        size_bytes,
    };
    let out = if args.json {
        serde_json::to_string_pretty(&inspected).or_exit(exit::INTERNAL, "cannot write JSON")?
            + "\n"
    } else {
        human(&inspected)
    };
    write_stdout(&out)?;
    Ok(exit::OK)
}

fn human(m: &Inspected<'_>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", m.name, m.version);
    let target = match m.reqcheck_endpoint {
        Some(endpoint) => format!("{} (POST {endpoint})", m.target),
        None => format!("{} (not a record type ReqCheck imports)", m.target),
    };
    for (label, value) in [
        (
            "file",
            format!("{} ({} bytes)", m.path.display(), m.size_bytes),
        ),
        ("sha256", m.sha256.to_string()),
        ("WIT world", m.wit_package.to_string()),
        ("record type", target),
        ("key column", m.key_column.to_string()),
    ] {
        let _ = writeln!(out, "  {label:<12} {value}");
    }
    let _ = writeln!(out, "\ninput columns ({}):", m.input_columns.len());
    let width = m
        .input_columns
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in m.input_columns {
        let mut flags = vec![if c.required { "required" } else { "optional" }];
        if c.nullable {
            flags.push("nullable");
        }
        let hints: Vec<String> = c.hints.iter().map(hint).collect();
        let line = format!(
            "  {:<width$}  {:<9}  {:<18}  {}",
            c.name,
            kind_name(c.kind),
            flags.join(", "),
            hints.join("; ")
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "\noutput fields ({}):", m.output_fields.len());
    let width = m
        .output_fields
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0);
    for f in m.output_fields {
        let _ = writeln!(
            out,
            "  {:<width$}  {}",
            f.name,
            if f.required { "required" } else { "optional" }
        );
    }
    out
}

/// Long code lists are cut in the text output (`--json` lists them all).
const SHOWN_CODES: usize = 12;

fn hint(h: &ValueHint) -> String {
    match h {
        ValueHint::Range { min, max } => format!("range {min}..={max}"),
        ValueHint::Dates { min, max } => format!("dates {min}..={max}"),
        ValueHint::MaxLength(n) => format!("max length {n}"),
        ValueHint::OneOf(codes) if codes.len() > SHOWN_CODES => format!(
            "one of {}, … ({} more; --json lists all)",
            codes[..SHOWN_CODES].join(", "),
            codes.len() - SHOWN_CODES
        ),
        ValueHint::OneOf(codes) => format!("one of {}", codes.join(", ")),
        ValueHint::Pattern(p) => format!("pattern {p}"),
    }
}

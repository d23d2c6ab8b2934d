//! `reqsync transform diff`: two versions of a module on the same rows, and what changes.
//!
//! A row *changed* when its outcome (emit, skip, reject), its codes (warnings, findings, skip
//! code) or its emitted record differ; messages are not compared. Field names are printed by
//! default and values only with `--values`: this output is pasted into tickets, and values are
//! PHI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::Args;
use reqsync_runtime::render::BodyTemplate;
use reqsync_runtime::reqcheck::targets;
use reqsync_runtime::transform::{ColumnSpec, ModuleInfo, Record, RowOutcome, Verdict};
use serde::Serialize;
use serde_json::{Map, Value};

use super::row_input::{self, JobContext, RowInput, kind_name};
use super::try_rows::{Counts, outcome_word, plural, row_heading, short_hash, write_stdout};
use crate::engine_options::CacheArgs;
use crate::exit::{self, Failure, OrExit};

/// Rows compared with --from-source when --sample is not given.
const DEFAULT_SAMPLE: usize = 1000;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The module version in use (`.wasm`).
    #[arg(value_name = "OLD.wasm")]
    pub old: PathBuf,
    /// The version that would replace it.
    #[arg(value_name = "NEW.wasm")]
    pub new: PathBuf,
    #[command(flatten)]
    pub input: RowInput,
    /// With --from-source: compare the first N rows the query returns [default: 1000].
    #[arg(long, value_name = "N", requires = "from_source")]
    pub sample: Option<usize>,
    /// Evaluate date rules against this date (YYYY-MM-DD) [default: today]; both modules get
    /// the same date.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// Also print the old and new values of changed fields and the rendered records' text
    /// diff. Values are PHI: mind where the output goes (tickets, chat).
    #[arg(long)]
    pub values: bool,
    /// Exit with code 1 when any row's outcome changed (for CI).
    #[arg(long)]
    pub fail_on_change: bool,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// What a module is, for the report's header.
#[derive(Debug, Serialize)]
struct ModuleId {
    path: PathBuf,
    name: String,
    version: String,
    sha256: String,
}

/// One difference between what the two modules declare.
#[derive(Debug, Serialize)]
struct DeclarationChange {
    /// `target`, `key_column`, `input_column` or `output_field`.
    what: &'static str,
    detail: String,
    /// A hot swap from old to new is refused for this difference alone.
    hot_swap_refuses: bool,
}

/// One side of a changed row.
#[derive(Debug, Serialize)]
struct Side {
    outcome: &'static str,
    /// Warnings (emit), findings (reject) as `field:code`, or the skip code.
    codes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct FieldChanges {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ValueChange {
    field: String,
    /// Left out when the field is absent on that side.
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<Value>,
}

#[derive(Debug, Serialize)]
struct RowChange {
    /// 1-based.
    index: usize,
    key: String,
    /// The new module's key, when it reads another key column.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_key: Option<String>,
    old: Side,
    new: Side,
    /// For emit → emit: the fields whose presence or value changed.
    fields: Option<FieldChanges>,
    /// With --values: the old and new value of every added, removed or changed field.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Vec<ValueChange>>,
}

#[derive(Debug, Serialize)]
struct RenderedRecord {
    index: usize,
    key: String,
    /// `old` or `new` when only that side emits the row; `null` when both do.
    only: Option<&'static str>,
    /// When both sides emit the row: the top-level keys of the rendered record whose presence
    /// or value differs.
    keys: Vec<String>,
    /// With --values: a unified diff of the rendered record, old → new.
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

#[derive(Debug, Serialize)]
struct Rendered {
    job: String,
    template: PathBuf,
    /// Whether the body of all accepted records, rendered by the job's template, differs.
    payload_differs: bool,
    old_records: usize,
    new_records: usize,
    /// Changed rows whose rendered record differs.
    records: Vec<RenderedRecord>,
}

#[derive(Debug, Serialize)]
struct Report {
    old: ModuleId,
    new: ModuleId,
    as_of: NaiveDate,
    rows: usize,
    counts: SideCounts,
    changed_rows: usize,
    declaration_changes: Vec<DeclarationChange>,
    changes: Vec<RowChange>,
    /// With --config and --job: the records rendered through the job's template.
    rendered: Option<Rendered>,
    /// Why the records were not rendered although a job was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_rendered: Option<String>,
}

#[derive(Debug, Serialize)]
struct SideCounts {
    old: Counts,
    new: Counts,
}

pub fn run(args: DiffArgs) -> Result<u8, Failure> {
    let job = args.input.job()?;
    let engine = row_input::engine(&args.cache, job.as_ref())?;
    let (old_module, mut old) = super::load_module(&engine, &args.old)?;
    let (new_module, mut new) = super::load_module(&engine, &args.new)?;
    let rows = args
        .input
        .load(job.as_ref(), Some(args.sample.unwrap_or(DEFAULT_SAMPLE)))?;
    rows.check_columns(&[old.info(), new.info()])?;
    let as_of = row_input::as_of(args.as_of, job.as_ref());
    let old_out = rows.outcomes(&mut old, as_of)?;
    let new_out = rows.outcomes(&mut new, as_of)?;

    let changes: Vec<RowChange> = old_out
        .iter()
        .zip(&new_out)
        .enumerate()
        .filter_map(|(i, (o, n))| compare_row(i + 1, o, n, args.values))
        .collect();
    let (rendered, not_rendered) = match &job {
        Some(ctx) => match render(
            ctx,
            (old.info(), &old_out),
            (new.info(), &new_out),
            &changes,
            args.values,
        )? {
            Ok(r) => (Some(r), None),
            Err(why) => (None, Some(why)),
        },
        None => (None, None),
    };
    let id = |path: &Path, info: &ModuleInfo, sha256: &str| ModuleId {
        path: path.to_path_buf(),
        name: info.name.clone(),
        version: info.version.clone(),
        sha256: sha256.to_string(),
    };
    let report = Report {
        old: id(&args.old, old.info(), &old_module.sha256),
        new: id(&args.new, new.info(), &new_module.sha256),
        as_of,
        rows: rows.len(),
        counts: SideCounts {
            old: Counts::of(&old_out),
            new: Counts::of(&new_out),
        },
        changed_rows: changes.len(),
        declaration_changes: declaration_changes(old.info(), new.info()),
        changes,
        rendered,
        not_rendered,
    };
    let out = if args.json {
        serde_json::to_string_pretty(&report).or_exit(exit::INTERNAL, "cannot write JSON")? + "\n"
    } else {
        human(&report, &old.info().key_column)
    };
    write_stdout(&out)?;
    Ok(if args.fail_on_change && report.changed_rows > 0 {
        1
    } else {
        exit::OK
    })
}

/// How many rows a new version treats differently (outcome, codes or record), as `diff` counts.
pub(super) fn changed_rows(old: &[RowOutcome], new: &[RowOutcome]) -> usize {
    old.iter()
        .zip(new)
        .enumerate()
        .filter(|(i, (o, n))| compare_row(i + 1, o, n, false).is_some())
        .count()
}

fn codes(v: &Verdict) -> Vec<String> {
    match v {
        Verdict::Emit { warnings, .. } => warnings.iter().map(|w| w.tag()).collect(),
        Verdict::Skip { code, .. } => vec![code.clone()],
        Verdict::Reject { findings } => findings.iter().map(|f| f.tag()).collect(),
    }
}

fn side(v: &Verdict) -> Side {
    Side {
        outcome: outcome_word(v),
        codes: codes(v),
    }
}

/// Names of the fields added, removed and changed from `old` to `new`, sorted.
fn field_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> FieldChanges {
    FieldChanges {
        added: new
            .keys()
            .filter(|k| !old.contains_key(*k))
            .cloned()
            .collect(),
        removed: old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect(),
        changed: old
            .iter()
            .filter(|(k, v)| new.get(*k).is_some_and(|n| n != *v))
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

fn compare_row(index: usize, o: &RowOutcome, n: &RowOutcome, values: bool) -> Option<RowChange> {
    let (old_side, new_side) = (side(&o.verdict), side(&n.verdict));
    let records = match (&o.verdict, &n.verdict) {
        (Verdict::Emit { record: a, .. }, Verdict::Emit { record: b, .. }) => Some((a, b)),
        _ => None,
    };
    let same_record = records.is_none_or(|(a, b)| a == b);
    if old_side.outcome == new_side.outcome && old_side.codes == new_side.codes && same_record {
        return None;
    }
    let fields = records.map(|(a, b)| field_changes(a, b));
    let value_changes = match (&fields, records, values) {
        (Some(f), Some((a, b)), true) => Some(
            f.changed
                .iter()
                .chain(&f.added)
                .chain(&f.removed)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|name| ValueChange {
                    field: name.clone(),
                    old: a.get(name).cloned(),
                    new: b.get(name).cloned(),
                })
                .collect(),
        ),
        _ => None,
    };
    Some(RowChange {
        index,
        key: o.key.to_string(),
        new_key: (n.key != o.key).then(|| n.key.to_string()),
        old: old_side,
        new: new_side,
        fields,
        values: value_changes,
    })
}

fn column_summary(c: &ColumnSpec) -> String {
    format!(
        "{}, {}{}",
        kind_name(c.kind),
        if c.required { "required" } else { "optional" },
        if c.nullable { ", nullable" } else { "" }
    )
}

/// What hot-swap validation and the ReqCheck contract look at: the record type, the key
/// column, the columns read and the fields emitted.
fn declaration_changes(old: &ModuleInfo, new: &ModuleInfo) -> Vec<DeclarationChange> {
    let mut out = Vec::new();
    if old.target != new.target {
        out.push(DeclarationChange {
            what: "target",
            detail: format!("record type `{}` → `{}`", old.target, new.target),
            hot_swap_refuses: true,
        });
    }
    if old.key_column != new.key_column {
        out.push(DeclarationChange {
            what: "key_column",
            detail: format!("key column `{}` → `{}`", old.key_column, new.key_column),
            hot_swap_refuses: true,
        });
    }
    for c in &old.input_columns {
        match new.input_columns.iter().find(|n| n.name == c.name) {
            None => out.push(DeclarationChange {
                what: "input_column",
                detail: format!("input column `{}` ({}) removed", c.name, column_summary(c)),
                hot_swap_refuses: false,
            }),
            Some(n) if n != c => {
                let mut parts = Vec::new();
                if n.kind != c.kind {
                    parts.push(format!(
                        "kind {} → {}",
                        kind_name(c.kind),
                        kind_name(n.kind)
                    ));
                }
                if n.required != c.required {
                    parts.push(if n.required {
                        "now required (a hot swap is refused if the job's query lacks it)".into()
                    } else {
                        "now optional".into()
                    });
                }
                if n.nullable != c.nullable {
                    parts.push(if n.nullable {
                        "now nullable".into()
                    } else {
                        "no longer nullable".into()
                    });
                }
                if n.hints != c.hints {
                    parts.push("value hints changed".into());
                }
                out.push(DeclarationChange {
                    what: "input_column",
                    detail: format!("input column `{}`: {}", c.name, parts.join("; ")),
                    hot_swap_refuses: false,
                });
            }
            Some(_) => {}
        }
    }
    for n in &new.input_columns {
        if !old.input_columns.iter().any(|c| c.name == n.name) {
            let note = if n.required {
                " (a hot swap is refused if the job's query lacks it)"
            } else {
                ""
            };
            out.push(DeclarationChange {
                what: "input_column",
                detail: format!(
                    "input column `{}` ({}) added{note}",
                    n.name,
                    column_summary(n)
                ),
                hot_swap_refuses: false,
            });
        }
    }
    let required = |r: bool| if r { "required" } else { "optional" };
    for f in &old.output_fields {
        match new.output_fields.iter().find(|n| n.name == f.name) {
            None => out.push(DeclarationChange {
                what: "output_field",
                detail: format!(
                    "output field `{}` ({}) removed",
                    f.name,
                    required(f.required)
                ),
                hot_swap_refuses: false,
            }),
            Some(n) if n.required != f.required => out.push(DeclarationChange {
                what: "output_field",
                detail: format!(
                    "output field `{}`: {} → {}",
                    f.name,
                    required(f.required),
                    required(n.required)
                ),
                hot_swap_refuses: false,
            }),
            Some(_) => {}
        }
    }
    for n in &new.output_fields {
        if !old.output_fields.iter().any(|f| f.name == n.name) {
            out.push(DeclarationChange {
                what: "output_field",
                detail: format!("output field `{}` ({}) added", n.name, required(n.required)),
                hot_swap_refuses: false,
            });
        }
    }
    out
}

/// Renders each side's accepted records through the job's body template, as a request body
/// would be, and each changed row's record on its own; or says why there is nothing to render.
fn render(
    ctx: &JobContext,
    (old_info, old_out): (&ModuleInfo, &[RowOutcome]),
    (new_info, new_out): (&ModuleInfo, &[RowOutcome]),
    changes: &[RowChange],
    values: bool,
) -> Result<Result<Rendered, String>, Failure> {
    let job = &ctx.job;
    let context = format!("job `{}`", job.name);
    if old_info.target != new_info.target {
        return Ok(Err(format!(
            "the modules emit different record types (`{}`, `{}`)",
            old_info.target, new_info.target
        )));
    }
    let Some(target) = targets::by_name(&old_info.target) else {
        return Ok(Err(format!(
            "ReqCheck does not import `{}` records",
            old_info.target
        )));
    };
    let template = BodyTemplate::load(&job.template, target).or_exit(exit::CONFIG, &context)?;
    let emitted = |out: &[RowOutcome]| -> Vec<Record> {
        out.iter()
            .filter_map(|o| match &o.verdict {
                Verdict::Emit { record, .. } => Some(record.clone()),
                _ => None,
            })
            .collect()
    };
    let body = |records: &[Record]| -> Result<Value, Failure> {
        // An empty array is never sent (ReqCheck answers 400): no records, no body.
        if records.is_empty() {
            return Ok(Value::Null);
        }
        let bytes = template.render(records).or_exit(exit::CONFIG, &context)?;
        serde_json::from_slice(&bytes).or_exit(exit::CONFIG, &context)
    };
    let (old_records, new_records) = (emitted(old_out), emitted(new_out));
    let payload_differs = body(&old_records)? != body(&new_records)?;

    let rendered_record = |o: &RowOutcome| -> Result<Option<Value>, Failure> {
        match &o.verdict {
            Verdict::Emit { record, .. } => {
                let body = body(std::slice::from_ref(record))?;
                Ok(body.get(target.body_key).and_then(|a| a.get(0)).cloned())
            }
            _ => Ok(None),
        }
    };
    let mut records = Vec::new();
    for change in changes {
        let i = change.index - 1;
        let a = rendered_record(&old_out[i])?;
        let b = rendered_record(&new_out[i])?;
        if a == b {
            continue;
        }
        let only = match (&a, &b) {
            (Some(_), None) => Some("old"),
            (None, Some(_)) => Some("new"),
            _ => None,
        };
        let keys: BTreeSet<String> = match (&a, &b) {
            (Some(Value::Object(ma)), Some(Value::Object(mb))) => {
                let f = field_changes(ma, mb);
                f.added
                    .into_iter()
                    .chain(f.removed)
                    .chain(f.changed)
                    .collect()
            }
            _ => BTreeSet::new(),
        };
        let diff = values.then(|| {
            let text = |v: &Option<Value>| match v {
                Some(v) => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
                None => String::new(),
            };
            let (old_text, new_text) = (text(&a), text(&b));
            similar::TextDiff::from_lines(&old_text, &new_text)
                .unified_diff()
                .context_radius(1)
                .header("old", "new")
                .to_string()
        });
        records.push(RenderedRecord {
            index: change.index,
            key: change.key.clone(),
            only,
            keys: keys.into_iter().collect(),
            diff,
        });
    }
    Ok(Ok(Rendered {
        job: job.name.clone(),
        template: job.template.clone(),
        payload_differs,
        old_records: old_records.len(),
        new_records: new_records.len(),
        records,
    }))
}

fn side_text(s: &Side) -> String {
    if s.codes.is_empty() {
        s.outcome.to_string()
    } else {
        format!("{} ({})", s.outcome, s.codes.join(", "))
    }
}

fn value_text(v: &Option<Value>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "(absent)".into(),
    }
}

fn human(r: &Report, key_column: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (label, m) in [("old", &r.old), ("new", &r.new)] {
        let _ = writeln!(
            out,
            "{label}  {} {}  sha256 {}  {}",
            m.name,
            m.version,
            short_hash(&m.sha256),
            m.path.display()
        );
    }
    let _ = writeln!(out, "as of {}, {} row{}", r.as_of, r.rows, plural(r.rows));

    if !r.declaration_changes.is_empty() {
        let refused = r.declaration_changes.iter().any(|d| d.hot_swap_refuses);
        let _ = writeln!(
            out,
            "\nwarning: the modules' declarations differ{}:",
            if refused {
                " (hot swap would refuse this replacement)"
            } else {
                ""
            }
        );
        for d in &r.declaration_changes {
            let _ = writeln!(out, "  {}", d.detail);
        }
    }

    let _ = writeln!(out, "\n         emit  skip  reject");
    for (label, c) in [("old", r.counts.old), ("new", r.counts.new)] {
        let _ = writeln!(out, "  {label}  {:>6}{:>6}{:>8}", c.emit, c.skip, c.reject);
    }

    if r.changes.is_empty() {
        let _ = writeln!(out, "\nno row changed");
    } else {
        let _ = writeln!(
            out,
            "\n{} row{} changed:",
            r.changed_rows,
            plural(r.changed_rows)
        );
    }
    for c in &r.changes {
        let key = match &c.new_key {
            Some(k) => format!("{} (new key {k})", c.key),
            None => c.key.clone(),
        };
        let heading = row_heading(c.index, key_column, &key, None);
        let _ = writeln!(
            out,
            "{heading}: {} → {}",
            side_text(&c.old),
            side_text(&c.new)
        );
        if let Some(f) = &c.fields {
            for (label, names) in [
                ("added", &f.added),
                ("removed", &f.removed),
                ("changed", &f.changed),
            ] {
                if !names.is_empty() {
                    let _ = writeln!(out, "  {label}: {}", names.join(", "));
                }
            }
        }
        for v in c.values.iter().flatten() {
            let _ = writeln!(
                out,
                "    {}: {} → {}",
                v.field,
                value_text(&v.old),
                value_text(&v.new)
            );
        }
    }

    if let Some(why) = &r.not_rendered {
        let _ = writeln!(out, "\nnot rendered through the job's template: {why}");
    }
    if let Some(rendered) = &r.rendered {
        let _ = writeln!(
            out,
            "\nrendered with job `{}` ({}): {} → {} records, the payload {}",
            rendered.job,
            rendered.template.display(),
            rendered.old_records,
            rendered.new_records,
            if rendered.payload_differs {
                "differs"
            } else {
                "is identical"
            }
        );
        for rec in &rendered.records {
            let what = match rec.only {
                Some(side) => format!("rendered by {side} only"),
                None if rec.keys.is_empty() => "rendered record differs".to_string(),
                None => format!("rendered record differs in {}", rec.keys.join(", ")),
            };
            let _ = writeln!(
                out,
                "  {}: {what}",
                row_heading(rec.index, key_column, &rec.key, None)
            );
            if let Some(diff) = &rec.diff {
                for line in diff.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        if !rendered.records.is_empty() && rendered.records.iter().all(|x| x.diff.is_none()) {
            let _ = writeln!(out, "  (--values shows the rendered text diff)");
        }
    }
    out
}

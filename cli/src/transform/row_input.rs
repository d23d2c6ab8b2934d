//! Where `reqsync transform try` and `diff` take their rows from: `--row`, `--rows`, `--csv` or
//! `--from-source`, exactly one.
//!
//! Rows the analyst gives are kept as JSON objects keyed by column name and turned into each
//! module's columnar input by `json_rows` (CSV cells are first read as the kind each module
//! declares for the column). Rows from the source stay as the source delivered them and go
//! through the module's `BatchPlan`, as in a sync. Either way the rows may be real patients:
//! they are shown back on stdout only, and no error message quotes a value.

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use clap::{ArgGroup, Args};
use reqsync_runtime::config::{Config, JobConfig};
use reqsync_runtime::reqcheck::targets;
use reqsync_runtime::reqcheck::window::full_extract_start;
use reqsync_runtime::source::{self, ColumnInfo, Query, RowBatch};
use reqsync_runtime::transform::json_rows::{batch_from_json, undeclared_columns};
use reqsync_runtime::transform::{
    BatchPlan, ColumnKind, ModuleInfo, RowOutcome, TransformEngine, TransformInstance,
};
use serde_json::{Map, Value};

use crate::engine_options::{CacheArgs, EngineOptions};
use crate::exit::{self, Failure, OrExit};

/// Rows per transform call for rows given on the command line (the `[sync]` default).
const GIVEN_BATCH_ROWS: usize = 512;

/// The rows to run, from exactly one place.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("rows_from")
        .required(true)
        .args(["row", "rows", "csv", "from_source"])
))]
pub struct RowInput {
    /// A row as a JSON object keyed by column name, holding what the module receives: strings
    /// for text, date, time and timestamp columns, numbers, booleans, null (repeatable).
    #[arg(long = "row", value_name = "JSON")]
    pub row: Vec<String>,
    /// A file of rows: JSON Lines (one object per line) or one JSON array of objects.
    #[arg(long, value_name = "FILE")]
    pub rows: Option<PathBuf>,
    /// A CSV file: the header row names the columns, an empty cell is NULL, and each cell is
    /// read as the kind the module declares for its column (integer, float, boolean or text).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Read the rows with the job's query from the configured source (needs --config and
    /// --job), converted exactly as a sync converts them.
    #[arg(long, requires_all = ["config", "job"])]
    pub from_source: bool,
    /// A config file: the job's sandbox limits apply, and --from-source reads its source.
    #[arg(long, short, value_name = "FILE", requires = "job")]
    pub config: Option<PathBuf>,
    /// The job of --config whose query, limits (and, for diff, template) are used.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub job: Option<String>,
    /// With --from-source: the window start bound to the query's `?` (YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM:SS, clinic time) [default: the full history].
    #[arg(long, value_name = "DATE", requires = "from_source", value_parser = parse_since)]
    pub since: Option<NaiveDateTime>,
}

fn parse_since(s: &str) -> Result<NaiveDateTime, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_time(NaiveTime::MIN))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS".to_string())
}

/// The config and job named by `--config` and `--job`.
#[derive(Debug)]
pub struct JobContext {
    pub config: Config,
    pub job: JobConfig,
}

impl JobContext {
    /// The config at `path` and its job `name`.
    pub fn load(path: &Path, name: &str) -> Result<Self, Failure> {
        let config = Config::load(path).or_exit(exit::CONFIG, "cannot load the configuration")?;
        let Some(job) = config.jobs.iter().find(|j| j.name == name).cloned() else {
            let jobs: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
            return Err(Failure::new(
                exit::CONFIG,
                anyhow::anyhow!(
                    "no job `{name}` in {} (jobs: {})",
                    path.display(),
                    jobs.join(", ")
                ),
            ));
        };
        Ok(JobContext { config, job })
    }

    /// The first `limit` rows of the job's query over the full history, converted exactly as a
    /// sync converts them.
    pub fn sample_rows(&self, limit: usize) -> Result<Rows, Failure> {
        block_on(read_source(
            &self.config,
            &self.job,
            full_extract_start(),
            Some(limit),
        ))?
    }
}

impl RowInput {
    /// The config and job, when `--config` is given.
    pub fn job(&self) -> Result<Option<JobContext>, Failure> {
        let (Some(path), Some(name)) = (&self.config, &self.job) else {
            return Ok(None);
        };
        JobContext::load(path, name).map(Some)
    }

    /// Reads the rows. `limit` caps the rows read from the source.
    pub fn load(&self, job: Option<&JobContext>, limit: Option<usize>) -> Result<Rows, Failure> {
        if !self.row.is_empty() {
            let rows = self
                .row
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    parse_object(text).map_err(|why| usage(format!("--row {}: {why}", i + 1)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Rows::Given {
                rows,
                origin: Origin::Json,
            });
        }
        if let Some(path) = &self.rows {
            return Ok(Rows::Given {
                rows: read_json_rows(path)?,
                origin: Origin::Json,
            });
        }
        if let Some(path) = &self.csv {
            return read_csv(path);
        }
        let Some(ctx) = job else {
            // clap requires --config and --job with --from-source.
            return Err(usage("--from-source needs --config and --job".into()));
        };
        block_on(read_source(
            &ctx.config,
            &ctx.job,
            self.since.unwrap_or_else(full_extract_start),
            limit,
        ))?
    }
}

/// An engine for the modules: the job's sandbox limits and the config's module cache when a
/// config is given (unless `--cache-dir`/`--no-cache` say otherwise), the defaults otherwise.
pub fn engine(cache: &CacheArgs, job: Option<&JobContext>) -> Result<TransformEngine, Failure> {
    match job {
        Some(ctx) => EngineOptions::new(Some(&ctx.config), cache).job(&ctx.job),
        None => EngineOptions::new(None, cache),
    }
    .engine()
}

/// The date age rules compare against: `--as-of`, else today (in the clinic's time zone when
/// a config says which).
pub fn as_of(given: Option<NaiveDate>, job: Option<&JobContext>) -> NaiveDate {
    given.unwrap_or_else(|| match job {
        Some(ctx) => chrono::Utc::now()
            .with_timezone(&ctx.config.clinic_tz)
            .date_naive(),
        None => chrono::Local::now().date_naive(),
    })
}

/// Where rows given as JSON objects came from (for messages).
#[derive(Debug)]
pub enum Origin {
    Json,
    /// Cells are text until a module says what kind each column is; `lines` holds each row's
    /// line number in the file.
    Csv {
        path: PathBuf,
        lines: Vec<u64>,
    },
}

/// Rows of the job's query, as the source delivered them.
#[derive(Debug)]
pub struct SourceRows {
    pub columns: Vec<ColumnInfo>,
    pub batches: Vec<RowBatch>,
    clinic_tz: chrono_tz::Tz,
    /// `group_by_column` of the job (used when a module emits a grouped record type).
    group_by_column: Option<String>,
}

/// The rows to run.
#[derive(Debug)]
pub enum Rows {
    /// Rows given on the command line or in a file, as JSON objects keyed by column name.
    Given {
        rows: Vec<Map<String, Value>>,
        origin: Origin,
    },
    /// Rows read from the source.
    Source(SourceRows),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Given { rows, .. } => rows.len(),
            Rows::Source(s) => s.batches.iter().map(RowBatch::len).sum(),
        }
    }

    /// The query column that groups rows (a dose's patient): the job's `group_by_column`, by
    /// default `patno`. Only rows read from the source report a group.
    pub fn group_column(&self) -> &str {
        match self {
            Rows::Source(s) => s.group_by_column.as_deref().unwrap_or("patno"),
            Rows::Given { .. } => "patno",
        }
    }

    /// Refuses row keys that no module in `modules` reads: a misspelt column would silently be
    /// NULL for the module. Lists every unknown key (column names, never values).
    pub fn check_columns(&self, modules: &[&ModuleInfo]) -> Result<(), Failure> {
        let Rows::Given { rows, origin } = self else {
            // Source rows: extra query columns are normal (the module reads what it declares).
            return Ok(());
        };
        let mut unknown: Vec<(String, usize)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let mut keys = modules
                .first()
                .map(|m| undeclared_columns(m, row))
                .unwrap_or_default();
            for m in modules.iter().skip(1) {
                let other = undeclared_columns(m, row);
                keys.retain(|k| other.contains(k));
            }
            for k in keys {
                if !unknown.iter().any(|(u, _)| *u == k) {
                    unknown.push((k, i + 1));
                }
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = unknown
            .iter()
            .map(|(k, row)| format!("`{k}` (row {row})"))
            .collect();
        let declared: Vec<&str> = modules
            .iter()
            .flat_map(|m| m.input_columns.iter().map(|c| c.name.as_str()))
            .fold(Vec::new(), |mut acc, c| {
                if !acc.contains(&c) {
                    acc.push(c);
                }
                acc
            });
        let whose = match modules {
            [one] => format!("module `{}`", one.name),
            _ => "either module".to_string(),
        };
        let from = match origin {
            Origin::Json => "the rows".to_string(),
            Origin::Csv { path, .. } => format!("the header of {}", path.display()),
        };
        Err(usage(format!(
            "{from} name column(s) that {whose} does not read: {} (a typo? the module would read \
             NULL for the column meant). Input columns: {}",
            listed.join(", "),
            declared.join(", ")
        )))
    }

    /// Runs every row through `instance`, in batches, and returns one outcome per row.
    pub fn outcomes(
        &self,
        instance: &mut TransformInstance,
        as_of: NaiveDate,
    ) -> Result<Vec<RowOutcome>, Failure> {
        let context = format!("transform module {}", instance.module().path.display());
        let mut out = Vec::with_capacity(self.len());
        match self {
            Rows::Given { rows, origin } => {
                let typed;
                let rows: &[Map<String, Value>] = match origin {
                    Origin::Json => rows,
                    Origin::Csv { path, lines } => {
                        typed = type_csv_rows(instance.info(), rows, path, lines)?;
                        &typed
                    }
                };
                for (chunk_index, chunk) in rows.chunks(GIVEN_BATCH_ROWS).enumerate() {
                    let refs: Vec<&Map<String, Value>> = chunk.iter().collect();
                    let batch = batch_from_json(instance.info(), &refs).map_err(|e| {
                        let row = chunk_index * GIVEN_BATCH_ROWS + e.row + 1;
                        usage(format!("row {row}: column `{}` {}", e.column, e.reason))
                    })?;
                    out.extend(
                        instance
                            .process_converted(batch, as_of)
                            .or_exit(exit::TRANSFORM, &context)?,
                    );
                }
            }
            Rows::Source(source) => {
                let info = instance.info();
                let mut plan = BatchPlan::new(info, &source.columns, source.clinic_tz)
                    .or_exit(exit::TRANSFORM, &context)?;
                // Grouped record types (doses) report each row's patient, as in a sync; a query
                // without the group column fails here as the sync would.
                if targets::by_name(&info.target).is_some_and(|t| t.group_field.is_some()) {
                    plan = plan
                        .with_group_column(self.group_column(), &source.columns)
                        .or_exit(exit::TRANSFORM, &context)?;
                }
                for batch in &source.batches {
                    out.extend(
                        instance
                            .process(&plan, batch, as_of)
                            .or_exit(exit::TRANSFORM, &context)?,
                    );
                }
            }
        }
        Ok(out)
    }
}

pub fn usage(message: String) -> Failure {
    Failure::new(exit::USAGE, anyhow::Error::msg(message))
}

/// A JSON object, or why not. serde_json's syntax errors name the line and column only; the
/// type of a non-object is named, never its value.
fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "expected a JSON object keyed by column name, got {}",
            json_kind(&other)
        )),
        Err(e) => Err(format!("not valid JSON ({e})")),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `--rows FILE`: one JSON array of objects, or JSON objects one after the other (JSON Lines).
fn read_json_rows(path: &Path) -> Result<Vec<Map<String, Value>>, Failure> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read --rows {file}: {e}")))?;
    let bad = |n: usize, why: String| usage(format!("--rows {file}, row {n}: {why}"));
    let object = |n: usize, v: Value| match v {
        Value::Object(map) => Ok(map),
        other => Err(bad(
            n,
            format!(
                "expected a JSON object keyed by column name, got {}",
                json_kind(&other)
            ),
        )),
    };
    if text.trim_start().starts_with('[') {
        let values: Vec<Value> = serde_json::from_str(&text)
            .map_err(|e| usage(format!("--rows {file} is not valid JSON ({e})")))?;
        return values
            .into_iter()
            .enumerate()
            .map(|(i, v)| object(i + 1, v))
            .collect();
    }
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .enumerate()
        .map(|(i, v)| {
            let v = v.map_err(|e| bad(i + 1, format!("not valid JSON ({e})")))?;
            object(i + 1, v)
        })
        .collect()
}

/// `--csv FILE`: the header names the columns; every cell is text (an empty one NULL) until a
/// module says what kind its column is.
fn read_csv(path: &Path) -> Result<Rows, Failure> {
    let file = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| usage(format!("cannot read --csv {file}: {}", csv_reason(&e))))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| usage(format!("--csv {file}, header row: {}", csv_reason(&e))))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if let Some(dup) = headers
        .iter()
        .enumerate()
        .find(|(i, h)| headers[..*i].contains(h))
        .map(|(_, h)| h)
    {
        return Err(usage(format!(
            "--csv {file}: the header names column `{dup}` twice"
        )));
    }
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record
            .map_err(|e| usage(format!("--csv {file}, row {}: {}", i + 1, csv_reason(&e))))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let row = headers
            .iter()
            .zip(record.iter())
            .map(|(h, cell)| {
                let v = if cell.is_empty() {
                    Value::Null
                } else {
                    Value::String(cell.to_string())
                };
                (h.clone(), v)
            })
            .collect();
        rows.push(row);
        lines.push(line);
    }
    Ok(Rows::Given {
        rows,
        origin: Origin::Csv {
            path: path.to_path_buf(),
            lines,
        },
    })
}

/// What went wrong reading a CSV file, without quoting its content.
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 (save the file as UTF-8)".into(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} cells where the header has {expected_len}"),
        _ => "cannot be read as CSV".into(),
    }
}

/// CSV cells read as the kinds `info` declares: integer, float and boolean columns parsed,
/// text-like columns left as text. A cell that does not parse is an error naming the row and
/// column, never the cell.
fn type_csv_rows(
    info: &ModuleInfo,
    rows: &[Map<String, Value>],
    path: &Path,
    lines: &[u64],
) -> Result<Vec<Map<String, Value>>, Failure> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .map(|(name, cell)| {
                    let kind = info
                        .input_columns
                        .iter()
                        .find(|c| &c.name == name)
                        .map(|c| c.kind);
                    let typed = match (kind, cell) {
                        (Some(kind), Value::String(text)) => {
                            csv_cell(kind, text).ok_or_else(|| {
                                usage(format!(
                                    "--csv {}, row {} (line {}): column `{name}` is not {}, as module \
                                     `{}` declares it",
                                    path.display(),
                                    i + 1,
                                    lines.get(i).copied().unwrap_or(0),
                                    kind_article(kind),
                                    info.name,
                                ))
                            })?
                        }
                        _ => cell.clone(),
                    };
                    Ok((name.clone(), typed))
                })
                .collect()
        })
        .collect()
}

fn csv_cell(kind: ColumnKind, text: &str) -> Option<Value> {
    let t = text.trim();
    match kind {
        ColumnKind::Integer => t.parse::<i64>().ok().map(Value::from),
        ColumnKind::Float => t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ColumnKind::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Some(Value::Bool(true)),
            "false" | "f" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        ColumnKind::Text | ColumnKind::Date | ColumnKind::Time | ColumnKind::Timestamp => {
            Some(Value::String(text.to_string()))
        }
    }
}

/// A column kind as the WIT and `inspect` name it.
pub fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "text",
        ColumnKind::Integer => "integer",
        ColumnKind::Float => "float",
        ColumnKind::Boolean => "boolean",
        ColumnKind::Date => "date",
        ColumnKind::Time => "time",
        ColumnKind::Timestamp => "timestamp",
    }
}

fn kind_article(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Integer => "an integer",
        ColumnKind::Float => "a number",
        ColumnKind::Boolean => "a boolean (true/false, 1/0)",
        _ => "text",
    }
}

/// Runs the job's query from `since` and keeps at most `limit` rows; the query is stopped (its
/// stream dropped) as soon as enough rows are in.
async fn read_source(
    config: &Config,
    job: &JobConfig,
    since: NaiveDateTime,
    limit: Option<usize>,
) -> Result<Rows, Failure> {
    // What `reqsync run` does to open the source (`cli::run::pipeline`).
    let url = config
        .source()
        .or_exit(exit::CONFIG, "invalid source URL")?;
    let source =
        source::open(&url, config.clinic_tz).or_exit(exit::SOURCE, "cannot open the source")?;
    let sql =
        reqsync_runtime::input_file::read_to_string(&job.query, reqsync_runtime::input_file::QUERY)
            .or_exit(
                exit::CONFIG,
                &format!(
                    "job `{}`: cannot read query file {}",
                    job.name,
                    job.query.display()
                ),
            )?;
    let query = Query {
        name: job.query.display().to_string(),
        sql,
    };
    let mut stream = source
        .stream(&query, since, config.transform_batch_rows)
        .await
        .or_exit(exit::SOURCE, &format!("job `{}`", job.name))?;
    let columns = stream.columns.clone();
    let mut batches = Vec::new();
    let mut read = 0usize;
    while limit.is_none_or(|l| read < l) {
        let Some(batch) = stream.next_batch().await else {
            break;
        };
        let mut batch = batch.or_exit(exit::SOURCE, &format!("job `{}`", job.name))?;
        if let Some(l) = limit {
            batch.truncate(l - read);
        }
        read += batch.len();
        batches.push(batch);
    }
    drop(stream);
    Ok(Rows::Source(SourceRows {
        columns,
        batches,
        clinic_tz: config.clinic_tz,
        group_by_column: job.group_by_column.clone(),
    }))
}

/// Runs a future to completion from the synchronous `transform` commands, which are called on
/// the runtime's thread: a plain thread of its own blocks on the runtime instead.
fn block_on<F>(future: F) -> Result<F::Output, Failure>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            std::thread::scope(|s| match s.spawn(move || handle.block_on(future)).join() {
                Ok(out) => Ok(out),
                Err(panic) => std::panic::resume_unwind(panic),
            })
        }
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(future))
            .or_exit(exit::INTERNAL, "cannot start the async runtime"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_that_is_not_an_object_is_refused_without_quoting_it() {
        let why = parse_object(r#""Jane Doe""#).unwrap_err();
        assert!(why.contains("got a string"), "{why}");
        assert!(!why.contains("Jane"), "{why}");
        let why = parse_object(r#"{"lname": "Jane"#).unwrap_err();
        assert!(why.starts_with("not valid JSON"), "{why}");
        assert!(!why.contains("Jane"), "{why}");
    }

    #[test]
    fn csv_cells_are_read_as_the_declared_kind() {
        assert_eq!(csv_cell(ColumnKind::Integer, " 42 "), Some(Value::from(42)));
        assert_eq!(csv_cell(ColumnKind::Integer, "4.2"), None);
        assert_eq!(csv_cell(ColumnKind::Float, "4.5"), Some(Value::from(4.5)));
        assert_eq!(csv_cell(ColumnKind::Float, "NaN"), None);
        assert_eq!(
            csv_cell(ColumnKind::Boolean, "TRUE"),
            Some(Value::Bool(true))
        );
        assert_eq!(csv_cell(ColumnKind::Boolean, "0"), Some(Value::Bool(false)));
        assert_eq!(csv_cell(ColumnKind::Boolean, "yes"), None);
        // Text-like cells stay exactly as written (the module trims, not the host).
        assert_eq!(
            csv_cell(ColumnKind::Text, " Nguyễn "),
            Some(Value::from(" Nguyễn "))
        );
        assert_eq!(
            csv_cell(ColumnKind::Date, "2013-11-26"),
            Some(Value::from("2013-11-26"))
        );
    }

    #[test]
    fn since_takes_a_date_or_a_local_timestamp() {
        assert_eq!(
            parse_since("2025-10-01").unwrap().to_string(),
            "2025-10-01 00:00:00"
        );
        assert_eq!(
            parse_since("2025-10-01T08:30:00").unwrap().to_string(),
            "2025-10-01 08:30:00"
        );
        assert!(parse_since("10/01/2025").is_err());
    }
}

//! Clinic databases for demos, tests and benchmarks (`reqsync seed`).
//!
//! Builds the clinic source schema of `docs/default-mapping.md` and fills it from up to three
//! sources, all through the same typed rows ([`model`]):
//!
//! - the real KCMO test data and the CDC CDSi test cases, compiled into the binary ([`corpus`]);
//! - deterministic synthetic patients with a ground-truth manifest of the rows the default rules
//!   must reject or hold back ([`synthetic`]).
//!
//! The schema is data ([`schema`]) rendered per [`schema::Dialect`] and written by [`sqlite`]
//! ([`seed_sqlite`]), [`postgres`] ([`seed_postgres`]) or [`sqlserver`] ([`seed_sqlserver`]),
//! storage conventions in [`schema`]'s docs. Every engine gets the same rows from the same
//! corpora and [`synthetic::SyntheticRows`].
//!
//! Seeding is an **upsert**: rows replace rows with the same `patno` / `im_id`, so re-seeding the
//! same sources is idempotent. Nothing is deleted: seeding fewer synthetic patients, or another
//! seed, over an earlier run leaves that run's other rows in place (use a fresh file for exact
//! ground truth). Patient numbers of the three sources do not overlap, so they can share a file.
//! All of one call is a single transaction: a failed seed leaves the database as it was.
//!
//! PostgreSQL and SQL Server seeding create tables (and the schema a PostgreSQL URL's
//! `search_path` names), never the database: `createdb` / `CREATE DATABASE` first.

pub mod corpus;
pub mod model;
pub mod postgres;
pub mod schema;
pub mod sqlite;
pub mod sqlserver;
pub mod synthetic;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use reqsync_runtime::source::{PostgresSource, SourceError, SqlServerSource};

pub use corpus::{Corpus, CorpusError};
pub use model::{Dose, Patient};
pub use synthetic::{
    InvalidKind, InvalidRow, SourceTable, SyntheticError, SyntheticOptions, SyntheticRows,
    SyntheticSlot,
};

/// What to seed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedOptions {
    /// Load the KCMO test data (21 patients, 177 doses).
    pub kcmo: bool,
    /// Load the CDC CDSi test cases (928 patients, 2,142 doses).
    pub cdsi: bool,
    /// Generate synthetic patients.
    pub synthetic: Option<SyntheticOptions>,
}

/// Seeding failed; the database is unchanged (one transaction).
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The database could not be opened or written (locked, read-only, not a database…).
    #[error("cannot write the seed database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file could not be created owner-only (a missing folder, a link in its
    /// place).
    #[error("cannot create the seed database {path}: {reason}")]
    Create {
        /// The database file.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
    /// An embedded data file did not parse (a build problem, not a user error).
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// The synthetic options are out of bounds, or the generator could not start.
    #[error(transparent)]
    Synthetic(#[from] SyntheticError),
    /// A database server could not be reached or refused the session.
    #[error(transparent)]
    Connect(#[from] SourceError),
    /// A PostgreSQL statement failed while creating the schema or writing rows.
    #[error("cannot write the seed database {what}: {reason}")]
    Postgres {
        /// The database (`postgres://USER@HOST:PORT/DATABASE`).
        what: String,
        /// The server's message (withheld for data errors, which can quote values).
        reason: String,
    },
    /// A SQL Server statement failed; the transaction was rolled back.
    #[error("cannot write the seed database {what} while {step}: {reason}")]
    SqlServer {
        /// The database (`sqlserver://HOST:PORT/DATABASE`).
        what: String,
        /// What was being done: the table and which of its rows, or the transaction step.
        step: sqlserver::Step,
        /// SQL Server's error number, and its message when that cannot quote a value.
        reason: String,
    },
}

/// Rows written from one corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusReport {
    /// Which corpus.
    pub corpus: Corpus,
    /// `mpfile` rows written.
    pub patients: u64,
    /// `imfile` rows written.
    pub doses: u64,
}

/// Rows written by the synthetic generator, and its ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticReport {
    /// The options used.
    pub options: SyntheticOptions,
    /// `mpfile` rows written (invalid ones included; orphan slots have none).
    pub patients: u64,
    /// `imfile` rows written (invalid ones included).
    pub doses: u64,
    /// Every row the default rules must reject or hold back, in write order. A few percent of
    /// the rows; all other synthetic rows are valid.
    pub invalid: Vec<InvalidRow>,
}

impl SyntheticReport {
    /// Invalid rows per kind; every kind is present, possibly with 0.
    pub fn invalid_counts(&self) -> BTreeMap<InvalidKind, u64> {
        let mut counts: BTreeMap<InvalidKind, u64> =
            InvalidKind::ALL.iter().map(|&k| (k, 0)).collect();
        for row in &self.invalid {
            *counts.entry(row.kind).or_default() += 1;
        }
        counts
    }

    /// Invalid rows of one table.
    pub fn invalid_in(&self, table: SourceTable) -> u64 {
        self.invalid.iter().filter(|r| r.table == table).count() as u64
    }
}

/// What a seed run wrote. `Display` prints counts only, never row values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// `mpfile` rows written in total (inserted or replaced).
    pub patients: u64,
    /// `imfile` rows written in total (inserted or replaced).
    pub doses: u64,
    /// Per corpus, in load order.
    pub corpora: Vec<CorpusReport>,
    /// The synthetic part, when requested.
    pub synthetic: Option<SyntheticReport>,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seeded {} patients and {} doses",
            self.patients, self.doses
        )?;
        for c in &self.corpora {
            writeln!(
                f,
                "  {}: {} patients, {} doses",
                c.corpus.name(),
                c.patients,
                c.doses
            )?;
        }
        if let Some(s) = &self.synthetic {
            writeln!(
                f,
                "  synthetic (seed {}, reference date {}): {} patients, {} doses; \
                 invalid by design: {} patients, {} doses",
                s.options.seed,
                s.options.reference_date,
                s.patients,
                s.doses,
                s.invalid_in(SourceTable::Mpfile),
                s.invalid_in(SourceTable::Imfile)
            )?;
            for (kind, n) in s.invalid_counts() {
                writeln!(f, "    {kind}: {n}")?;
            }
        }
        Ok(())
    }
}

/// Creates the clinic source schema in the SQLite database at `path` (creating the file if
/// needed) and loads the requested sources, in one transaction.
pub fn seed_sqlite(path: &Path, opts: &SeedOptions) -> Result<SeedReport, SeedError> {
    let db_error = |source| SeedError::Database {
        path: path.to_owned(),
        source,
    };
    // Refuse bad options before creating a file.
    if let Some(synthetic) = &opts.synthetic {
        synthetic.validate().map_err(SyntheticError::Options)?;
    }
    // Test patients stand in for real ones: owner-only, like a clinic database should be.
    reqsync_private_fs::precreate_sqlite(path).map_err(|e| SeedError::Create {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut conn = Connection::open(path).map_err(db_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db_error)?;
    // 64 MiB of page cache (default 2 MiB): the `updated_at` indexes are written in random
    // order, and with the default cache 100k patients took ~35 % longer. Bounded, whatever N.
    conn.pragma_update(None, "cache_size", -65536)
        .map_err(db_error)?;
    seed_connection(&mut conn, opts)
}

/// [`seed_sqlite`] on an open connection (for example an in-memory database).
pub fn seed_connection(conn: &mut Connection, opts: &SeedOptions) -> Result<SeedReport, SeedError> {
    let path = PathBuf::from(conn.path().unwrap_or(":memory:"));
    let db_error = |source| SeedError::Database {
        path: path.clone(),
        source,
    };
    // Parse and validate everything before the transaction starts.
    let corpora = load_corpora(opts)?;
    let synthetic = opts
        .synthetic
        .as_ref()
        .map(synthetic::SyntheticRows::new)
        .transpose()?;

    let tx = conn.transaction().map_err(db_error)?;
    sqlite::create_schema(&tx).map_err(db_error)?;
    let mut report = SeedReport::default();
    {
        let mut writer = sqlite::SqliteWriter::new(&tx).map_err(db_error)?;
        for (corpus, patients, doses) in &corpora {
            for p in patients {
                writer.patient(p).map_err(db_error)?;
            }
            for d in doses {
                writer.dose(d).map_err(db_error)?;
            }
            report.corpora.push(CorpusReport {
                corpus: *corpus,
                patients: patients.len() as u64,
                doses: doses.len() as u64,
            });
        }
        if let (Some(rows), Some(options)) = (synthetic, opts.synthetic) {
            let mut part = SyntheticReport {
                options,
                patients: 0,
                doses: 0,
                invalid: Vec::new(),
            };
            for slot in rows {
                if let Some(p) = &slot.patient {
                    writer.patient(p).map_err(db_error)?;
                    part.patients += 1;
                }
                for d in &slot.doses {
                    writer.dose(d).map_err(db_error)?;
                }
                part.doses += slot.doses.len() as u64;
                part.invalid.extend(slot.invalid);
            }
            report.synthetic = Some(part);
        }
    }
    tx.commit().map_err(db_error)?;
    Ok(report.with_totals())
}

/// The corpora `opts` asks for, parsed: their rows and which corpus they are.
type LoadedCorpus = (Corpus, Vec<Patient>, Vec<Dose>);

fn load_corpora(opts: &SeedOptions) -> Result<Vec<LoadedCorpus>, SeedError> {
    let mut corpora = Vec::new();
    for (wanted, corpus) in [(opts.kcmo, Corpus::Kcmo), (opts.cdsi, Corpus::Cdsi)] {
        if wanted {
            corpora.push((corpus, corpus.patients()?, corpus.doses()?));
        }
    }
    Ok(corpora)
}

impl SeedReport {
    fn with_totals(mut self) -> Self {
        self.patients = self.corpora.iter().map(|c| c.patients).sum::<u64>()
            + self.synthetic.as_ref().map_or(0, |s| s.patients);
        self.doses = self.corpora.iter().map(|c| c.doses).sum::<u64>()
            + self.synthetic.as_ref().map_or(0, |s| s.doses);
        self
    }
}

/// Where the network writers put rows: the loop over corpora and synthetic slots
/// ([`write_rows`]) is shared by every engine whose driver is async.
trait RowSink {
    type Error;
    async fn patient(&mut self, patient: Patient) -> Result<(), Self::Error>;
    async fn dose(&mut self, dose: Dose) -> Result<(), Self::Error>;
}

/// Writes every corpus, then the synthetic slots, and reports what was written (totals are
/// added once the transaction committed).
async fn write_rows<S: RowSink>(
    sink: &mut S,
    corpora: Vec<LoadedCorpus>,
    synthetic: Option<(SyntheticRows, SyntheticOptions)>,
) -> Result<SeedReport, S::Error> {
    let mut report = SeedReport::default();
    for (corpus, patients, doses) in corpora {
        report.corpora.push(CorpusReport {
            corpus,
            patients: patients.len() as u64,
            doses: doses.len() as u64,
        });
        for p in patients {
            sink.patient(p).await?;
        }
        for d in doses {
            sink.dose(d).await?;
        }
    }
    if let Some((rows, options)) = synthetic {
        let mut part = SyntheticReport {
            options,
            patients: 0,
            doses: 0,
            invalid: Vec::new(),
        };
        for slot in rows {
            part.doses += slot.doses.len() as u64;
            part.invalid.extend(slot.invalid);
            if let Some(p) = slot.patient {
                sink.patient(p).await?;
                part.patients += 1;
            }
            for d in slot.doses {
                sink.dose(d).await?;
            }
        }
        report.synthetic = Some(part);
    }
    Ok(report)
}

/// The synthetic generator `opts` asks for, started (its options are checked here).
fn synthetic_rows(
    opts: &SeedOptions,
) -> Result<Option<(SyntheticRows, SyntheticOptions)>, SeedError> {
    opts.synthetic
        .map(|options| Ok((SyntheticRows::new(&options)?, options)))
        .transpose()
}

/// Creates the clinic source schema in the PostgreSQL database `source` names (in the first
/// schema of its `search_path`, created if needed) and loads the requested sources, in one
/// transaction. The database itself must exist.
pub async fn seed_postgres(
    source: &PostgresSource,
    opts: &SeedOptions,
) -> Result<SeedReport, SeedError> {
    let what = source.url().to_string();
    let db_error = |e: tokio_postgres::Error| SeedError::Postgres {
        what: what.clone(),
        reason: reqsync_runtime::source::postgres::describe_error(&e),
    };
    // Parse and validate everything before connecting.
    let corpora = load_corpora(opts)?;
    let synthetic = synthetic_rows(opts)?;

    let mut client = source.connect().await?;
    let tx = client.transaction().await.map_err(db_error)?;
    let schema = source.url().search_path.first().map(String::as_str);
    postgres::create_schema(&tx, schema)
        .await
        .map_err(db_error)?;
    let mut writer = postgres::PostgresWriter::new(&tx);
    let report = write_rows(&mut writer, corpora, synthetic)
        .await
        .map_err(db_error)?;
    writer.finish().await.map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(report.with_totals())
}

/// Creates the clinic source schema in the SQL Server database `source` names (in the login's
/// default schema, usually `dbo`) and loads the requested sources, in one transaction: a failed
/// seed leaves the database as it was. The database itself must exist.
pub async fn seed_sqlserver(
    source: &SqlServerSource,
    opts: &SeedOptions,
) -> Result<SeedReport, SeedError> {
    // Parse and validate everything before connecting.
    let corpora = load_corpora(opts)?;
    let synthetic = synthetic_rows(opts)?;

    let mut client = source.connect().await?;
    let written = async {
        sqlserver::begin(&mut client).await?;
        sqlserver::create_schema(&mut client).await?;
        let mut writer = sqlserver::SqlServerWriter::new(&mut client);
        let report = write_rows(&mut writer, corpora, synthetic).await?;
        writer.finish().await?;
        sqlserver::commit(&mut client).await?;
        Ok::<_, sqlserver::WriteFailure>(report)
    }
    .await;
    match written {
        Ok(report) => {
            // A close that fails after COMMIT loses nothing.
            let _ = client.close().await;
            Ok(report.with_totals())
        }
        Err(sqlserver::WriteFailure { step, error }) => {
            sqlserver::roll_back(&mut client).await;
            // Ending the session rolls back whatever the ROLLBACK could not reach.
            drop(client);
            Err(SeedError::SqlServer {
                what: source.url().display(),
                step,
                reason: reqsync_runtime::source::sqlserver::describe_write_error(
                    &error,
                    source.url().query_timeout,
                ),
            })
        }
    }
}

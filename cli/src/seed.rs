//! `reqsync seed`: a clinic database in the source schema, with test data.

use clap::Args;
use reqsync_runtime::source::{PostgresSource, SourceUrl, SqlServerSource};
use reqsync_seeder::{SeedOptions, SyntheticOptions, seed_postgres, seed_sqlite, seed_sqlserver};

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// The database to create or extend, e.g. sqlite://clinic.db,
    /// postgres://USER@HOST/DATABASE (an existing database; the password from PGPASSWORD or the
    /// URL's password_env / password_file) or sqlserver://LOGIN@HOST/DATABASE (an existing
    /// database; the password from REQSYNC_SQLSERVER_PASSWORD or password_env / password_file).
    #[arg(long)]
    pub db: String,
    /// Load the 21 real de-identified KCMO test patients and their 177 doses.
    #[arg(long)]
    pub kcmo: bool,
    /// Load the 928 CDC CDSi test-case patients and their 2,142 doses.
    #[arg(long)]
    pub cdsi: bool,
    /// Generate this many synthetic patients (with doses, and a few percent of invalid rows).
    #[arg(long, value_name = "N")]
    pub synthetic: Option<u32>,
    /// Seed of the synthetic generator: the same seed gives the same rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(args: SeedArgs) -> Result<u8, Failure> {
    let url = SourceUrl::parse(&args.db, None).or_exit(exit::CONFIG, "invalid --db")?;
    if !args.kcmo && !args.cdsi && args.synthetic.is_none() {
        eprintln!(
            "note: no data asked for (--kcmo, --cdsi, --synthetic N): creating the schema only"
        );
    }
    let options = SeedOptions {
        kcmo: args.kcmo,
        cdsi: args.cdsi,
        synthetic: args
            .synthetic
            .map(|count| SyntheticOptions::new(count, args.seed)),
    };
    let report = match url {
        SourceUrl::Sqlite(path) => seed_sqlite(&path, &options),
        SourceUrl::Postgres(url) => {
            // The clinic time zone only matters for reading zone-aware columns; seeding writes
            // wall-clock `timestamp`s.
            let source = PostgresSource::open(&url, chrono_tz::UTC)
                .or_exit(exit::SOURCE, "cannot open the database")?;
            seed_postgres(&source, &options).await
        }
        SourceUrl::SqlServer(url) => {
            // As for PostgreSQL: seeding writes wall-clock `datetime2` values, no zone needed.
            let source = SqlServerSource::open(&url, chrono_tz::UTC)
                .or_exit(exit::SOURCE, "cannot open the database")?;
            seed_sqlserver(&source, &options).await
        }
    }
    .or_exit(exit::SOURCE, "seeding failed")?;
    println!("{report}");
    Ok(exit::OK)
}

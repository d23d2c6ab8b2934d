//! `reqsync seed`: a clinic database in the source schema, with test data.

use clap::Args;
use reqsync::seed::{SeedOptions, SyntheticOptions, seed_sqlite};
use reqsync::source::SourceUrl;

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// The database to create or extend, e.g. sqlite://clinic.db.
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

pub fn run(args: SeedArgs) -> Result<u8, Failure> {
    let url = SourceUrl::parse(&args.db, None).or_exit(exit::CONFIG, "invalid --db")?;
    let SourceUrl::Sqlite(path) = url;
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
    let report = seed_sqlite(&path, &options).or_exit(exit::SOURCE, "seeding failed")?;
    println!("{report}");
    Ok(exit::OK)
}

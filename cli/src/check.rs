//! `reqsync check`: load every job and ask the source for each query's columns, without a run.

use std::path::PathBuf;

use clap::Args;
use reqsync_runtime::config::Config;
use reqsync_runtime::pipeline::{Delivery, DryRunOutput};

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file.
    #[arg(long, short, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// Check against this source instead of the config's.
    #[arg(long)]
    pub source: Option<String>,
    /// Check only this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: CheckArgs) -> Result<u8, Failure> {
    let mut config =
        Config::load(&args.config).or_exit(exit::CONFIG, "cannot load the configuration")?;
    if let Some(url) = &args.source {
        config.source_url = url.clone();
    }
    // Nothing is delivered by a check; ReqCheck is not contacted.
    let delivery = Delivery::DryRun {
        output: DryRunOutput::Stdout,
        client: None,
    };
    let pipeline = super::run::pipeline(config, delivery)?;
    let checks = pipeline.check(args.job.as_deref()).await?;
    let ok = checks.iter().all(|c| c.missing_columns.is_empty());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).or_exit(exit::INTERNAL, "cannot write JSON")?
        );
    } else {
        for c in &checks {
            if c.missing_columns.is_empty() {
                println!(
                    "{}: ok ({} {}, query returns {} columns)",
                    c.job,
                    c.module,
                    c.module_version,
                    c.query_columns.len()
                );
            } else {
                println!(
                    "{}: the query lacks column(s) {} that module `{}` needs",
                    c.job,
                    c.missing_columns.join(", "),
                    c.module
                );
            }
            if !c.absent_optional_columns.is_empty() {
                println!(
                    "    optional column(s) not returned (read as NULL): {}",
                    c.absent_optional_columns.join(", ")
                );
            }
        }
    }
    Ok(if ok { exit::OK } else { exit::TRANSFORM })
}

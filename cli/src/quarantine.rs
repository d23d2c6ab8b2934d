//! `reqsync quarantine list|show|replay`: rows a transform rejected, by key and finding code.

use std::collections::{HashMap, HashSet};

use clap::{Args, Subcommand};
use reqsync_runtime::ledger::{Ledger, QuarantineEntry, QuarantineFilter};
use reqsync_runtime::pipeline::{Delivery, DryRunOutput, Progress, RunOptions};

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// The open entries (rows rejected and not passed since), by job and first sighting.
    List(ListArgs),
    /// One row's entry: its findings, the module that rejected it, when it was seen.
    Show(ShowArgs),
    /// Re-read the quarantined rows from the source and send those that now pass (a patient's
    /// doses travel together: a quarantined dose replays its patient's whole history).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    #[arg(long)]
    pub job: Option<String>,
    /// Include entries whose rows have passed since.
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// The row's key (`patno` for patients, `im_id` for doses).
    pub key: String,
    #[arg(long)]
    pub job: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// Replay only this job's entries.
    #[arg(long)]
    pub job: Option<String>,
    /// Replay only these keys (repeatable; default: every open entry).
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Render what would be sent without sending it.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: QuarantineArgs) -> Result<u8, Failure> {
    match args.command {
        QuarantineCommand::List(a) => list(a),
        QuarantineCommand::Show(a) => show(a),
        QuarantineCommand::Replay(a) => replay(a).await,
    }
}

fn entries(
    config: &super::ConfigArgs,
    filter: &QuarantineFilter,
) -> Result<(reqsync_runtime::config::Config, Vec<QuarantineEntry>), Failure> {
    let config = config.load()?;
    let entries = match Ledger::open_existing(&config.state_dir)
        .or_exit(exit::CONFIG, "cannot open the run ledger")?
    {
        Some(ledger) => ledger
            .quarantine(filter)
            .or_exit(exit::CONFIG, "cannot read the quarantine")?,
        None => Vec::new(),
    };
    Ok((config, entries))
}

fn list(args: ListArgs) -> Result<u8, Failure> {
    let (_, entries) = entries(
        &args.config,
        &QuarantineFilter {
            job: args.job.clone(),
            keys: Vec::new(),
            include_resolved: args.all,
        },
    )?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        println!("the quarantine is empty");
        return Ok(exit::OK);
    }
    println!(
        "{:<14} {:<12} {:<10} {:<40} {:<12} {:<24} seen",
        "job", "key", "group", "codes", "module", "first seen"
    );
    for e in &entries {
        println!(
            "{:<14} {:<12} {:<10} {:<40} {:<12} {:<24} {}x{}",
            e.job,
            e.key,
            e.group.as_deref().unwrap_or("-"),
            e.codes().join(","),
            &e.module_sha256[..12.min(e.module_sha256.len())],
            e.first_seen,
            e.times_seen,
            e.resolved_at
                .as_deref()
                .map(|at| format!("  (passed {at})"))
                .unwrap_or_default()
        );
    }
    println!(
        "{} row(s); `reqsync quarantine show KEY` for one, `reqsync quarantine replay` sends those that now pass",
        entries.len()
    );
    Ok(exit::OK)
}

fn show(args: ShowArgs) -> Result<u8, Failure> {
    let (_, entries) = entries(
        &args.config,
        &QuarantineFilter {
            job: args.job.clone(),
            keys: vec![args.key.clone()],
            include_resolved: true,
        },
    )?;
    if entries.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow::anyhow!(
                "no quarantine entry with key `{}`{}",
                args.key,
                args.job
                    .as_deref()
                    .map(|j| format!(" in job `{j}`"))
                    .unwrap_or_default()
            ),
        ));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    for e in &entries {
        println!("job          {}", e.job);
        println!("key          {}", e.key);
        if let Some(g) = &e.group {
            println!("group        {g} (its other rows are held back with it)");
        }
        println!("findings     {}", e.findings.join(", "));
        println!("fields       {}", e.fields().join(", "));
        println!("module       {}", e.module_sha256);
        println!("first seen   {} (run {})", e.first_seen, e.first_run);
        println!(
            "last seen    {} (run {}), {} time(s)",
            e.last_seen, e.last_run, e.times_seen
        );
        match &e.resolved_at {
            Some(at) => println!(
                "status       passed {at} (run {})",
                e.resolved_run.unwrap_or_default()
            ),
            None => println!("status       open"),
        }
        println!(
            "try it       reqsync transform try <module.wasm> --from-source --config … --job {} (values stay on your screen)",
            e.job
        );
    }
    Ok(exit::OK)
}

async fn replay(args: ReplayArgs) -> Result<u8, Failure> {
    let (config, entries) = entries(
        &args.config,
        &QuarantineFilter {
            job: args.job.clone(),
            keys: args.keys.clone(),
            include_resolved: false,
        },
    )?;
    if entries.is_empty() {
        println!("nothing to replay: no open quarantine entry matches");
        return Ok(exit::OK);
    }
    // A dose row replays its patient's whole history: ReqCheck replaces a patient's doses
    // with each request, so the group is what is selected.
    let mut selection: HashMap<String, HashSet<String>> = HashMap::new();
    for e in &entries {
        selection
            .entry(e.job.clone())
            .or_default()
            .insert(e.group.clone().unwrap_or_else(|| e.key.clone()));
    }
    // Every other job runs too, selecting nothing of its own: a dose job then sends the doses
    // of the patients that pass now (their doses were held back while they were quarantined).
    if args.job.is_none() {
        for job in &config.jobs {
            selection.entry(job.name.clone()).or_default();
        }
    }
    if !args.dry_run {
        reqsync_runtime::audit::open(&config.audit_file)
            .map_err(|e| Failure::new(exit::CONFIG, e))?;
    }
    let delivery = if args.dry_run {
        Delivery::DryRun {
            output: DryRunOutput::Stdout,
            client: None,
        }
    } else {
        Delivery::ReqCheck(super::run::reqcheck_client(&config)?)
    };
    let state_dir = config.state_dir.clone();
    let report = super::run::execute(
        config,
        delivery,
        &RunOptions {
            replay: Some(selection),
            ..RunOptions::default()
        },
        &Progress::auto(),
    )
    .await?;
    let code = super::run::print_report(&report, args.json);
    if !args.dry_run
        && let Some(ledger) =
            Ledger::open_existing(&state_dir).or_exit(exit::CONFIG, "cannot open the run ledger")?
    {
        let still = ledger
            .quarantine(&QuarantineFilter {
                job: args.job.clone(),
                keys: entries.iter().map(|e| e.key.clone()).collect(),
                include_resolved: false,
            })
            .or_exit(exit::CONFIG, "cannot read the quarantine")?;
        eprintln!(
            "replayed {} quarantined row(s): {} passed and were sent, {} still rejected",
            entries.len(),
            entries.len() - still.len(),
            still.len()
        );
    }
    Ok(code)
}

//! `reqsync history`: recent runs from the run ledger.

use clap::Args;
use reqsync_runtime::ledger::{Ledger, RunRecord};
use reqsync_runtime::status::short_sha;

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// How many runs to list, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Show one run in full, with every request and ReqCheck's answer.
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: HistoryArgs) -> Result<u8, Failure> {
    let config = args.config.load()?;
    let Some(ledger) = Ledger::open_existing(&config.state_dir)
        .or_exit(exit::CONFIG, "cannot open the run ledger")?
    else {
        eprintln!(
            "no runs recorded yet (no ledger in {})",
            config.state_dir.display()
        );
        return Ok(exit::OK);
    };
    let runs = match args.run {
        Some(id) => vec![ledger.run(id, true).or_exit(exit::USAGE, "no such run")?],
        None => ledger
            .recent_runs(args.limit, false)
            .or_exit(exit::CONFIG, "cannot read the run ledger")?,
    };
    if args.json {
        let json = match args.run {
            Some(_) => serde_json::to_string_pretty(&runs[0]),
            None => serde_json::to_string_pretty(&runs),
        };
        println!("{}", json.unwrap_or_default());
        return Ok(exit::OK);
    }
    if runs.is_empty() {
        println!("no runs recorded yet");
    }
    for run in &runs {
        print_run(run, args.run.is_some());
    }
    Ok(exit::OK)
}

fn print_run(run: &RunRecord, detail: bool) {
    println!(
        "run {:<5} {:<8} {:<11} started {}  finished {}{}",
        run.id,
        run.kind.as_str(),
        run.status.as_str(),
        run.started_at,
        run.finished_at.as_deref().unwrap_or("-"),
        run.error_class
            .as_deref()
            .map(|c| format!("  error: {c}"))
            .unwrap_or_default()
    );
    if detail {
        if let Some(hb) = &run.heartbeat {
            println!("    ReqCheck heartbeat {hb}");
        }
        if let Some(e) = &run.error {
            println!("    error: {e}");
        }
        if let Some(f) = &run.report_file {
            println!("    report {f}");
        }
    }
    for j in &run.jobs {
        println!(
            "    {:<14} {:<11} window {}  read {}  emitted {}  skipped {}  rejected {}  sent {}  acknowledged {}",
            j.job,
            j.status.as_str(),
            j.window_start_text(),
            j.read,
            j.emitted,
            j.skipped,
            j.rejected,
            j.sent,
            j.acknowledged
        );
        if detail {
            println!(
                "        module {}  query {}  template {}",
                short_sha(&j.module_sha256),
                short_sha(&j.query_sha256),
                short_sha(&j.template_sha256)
            );
            for r in &j.requests {
                println!(
                    "        request {:>4} {} {} records {} bytes  {}{}{}",
                    r.seq,
                    r.endpoint,
                    r.records,
                    r.bytes,
                    r.status,
                    r.data_import_id
                        .map(|id| format!("  import {id}"))
                        .unwrap_or_default(),
                    if r.error_ids.is_empty() {
                        String::new()
                    } else {
                        format!("  record errors {:?}", r.error_ids)
                    }
                );
            }
        }
    }
}

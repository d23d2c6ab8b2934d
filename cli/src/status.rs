//! `reqsync status`: did last night's sync work? Each job's last run, how long ago a run last
//! completed it, its next scheduled run, open quarantine and module — and an exit code a
//! monitoring script or a Task Scheduler condition can act on.

use std::time::Duration;

use clap::Args;
use reqsync_runtime::ledger::{JobRunSummary, Ledger, RunStatus};
use reqsync_runtime::status::{JobStatus, ProjectStatus, age_text, project_status, short_sha};
use reqsync_runtime::transform::registry::ModuleStatus;

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The config file.
    #[arg(long, short, default_value_os_t = super::default_config())]
    pub config: std::path::PathBuf,
    /// How old a job's last complete run may be before the status fails (e.g. "26h", "3d";
    /// default `[status] max_age`, itself 26 hours by default).
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub max_age: Option<Duration>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_age(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. \"26h\", \"3d\")"))
}

pub async fn run(args: StatusArgs) -> Result<u8, Failure> {
    let config = reqsync_runtime::config::Config::load(&args.config)
        .or_exit(exit::CONFIG, "cannot load the configuration")?;
    let max_age = args.max_age.unwrap_or(config.status_max_age);
    let ledger = Ledger::open_existing(&config.state_dir)
        .or_exit(exit::CONFIG, "cannot open the run ledger")?;
    let status = project_status(&config, ledger.as_ref(), max_age, chrono::Utc::now())
        .or_exit(exit::CONFIG, "cannot read the run ledger")?;
    // The running service, if any, says which module it runs (a swap it refused leaves the
    // file on disk different from what runs).
    let running = super::service_health::running_modules(config.daemon.listen)
        .await
        .ok();
    if args.json {
        let json = serde_json::json!({
            "healthy": status.healthy(),
            "status": status,
            "running_modules": running,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).or_exit(exit::INTERNAL, "cannot write JSON")?
        );
    } else {
        if ledger.is_none() {
            println!(
                "no runs recorded yet (no ledger in {})",
                config.state_dir.display()
            );
        }
        for job in &status.jobs {
            print_job(job, running.as_ref().and_then(|r| r.get(&job.overview.job)));
        }
        print_verdict(&status);
    }
    Ok(exit_code(&status))
}

/// Failed runs first: a failing job is also stale soon, and the failure says why.
fn exit_code(status: &ProjectStatus) -> u8 {
    use reqsync_runtime::status::Problem;
    let problems = || status.jobs.iter().flat_map(|j| &j.problems);
    if problems().any(|p| matches!(p, Problem::LastRunFailed { .. })) {
        exit::STATUS_FAILED
    } else if problems().next().is_some() {
        exit::STATUS_STALE
    } else {
        exit::OK
    }
}

fn print_job(job: &JobStatus, running: Option<&ModuleStatus>) {
    let o = &job.overview;
    let verdict = if job.problems.is_empty() {
        "ok"
    } else {
        "ATTENTION"
    };
    println!("{}: {verdict}", o.job);
    match &o.last_run {
        Some(last) => println!("  last run       {}", run_line(last, job.running_now)),
        None => println!("  last run       none recorded"),
    }
    if job.running_now {
        println!("  running now");
    }
    match (&o.last_complete, job.last_complete_age_seconds) {
        (Some(done), Some(age)) => println!(
            "  last complete  {} ago (run {})",
            age_text(Duration::from_secs(age)),
            done.run_id
        ),
        _ => println!("  last complete  never"),
    }
    match (&job.next_run, &job.schedule) {
        (Some(next), Some(schedule)) => println!(
            "  next run       {} (schedule \"{schedule}\", in {})",
            next.format("%Y-%m-%d %H:%M:%S UTC"),
            age_text(
                (*next - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            )
        ),
        _ => println!(
            "  next run       not scheduled in the config (no `schedule`; a Task Scheduler \
             task or cron entry may run it)"
        ),
    }
    println!("  quarantine     {} open", o.open_quarantine);
    let module = &job.module;
    let on_disk = match &module.sha256 {
        Some(sha) => format!("sha256 {}", short_sha(sha)),
        None => "cannot be read".into(),
    };
    let relation = match (&module.sha256, &o.last_run) {
        (Some(_), Some(_)) if module.used_by_last_run => ", the one the last run used",
        (Some(_), Some(_)) => ", not the one the last run used: it changed since",
        _ => "",
    };
    println!(
        "  module         {} ({on_disk}{relation})",
        module.path.display()
    );
    if let Some(r) = running {
        println!(
            "  service runs   {} {} sha256 {}",
            r.name,
            r.version,
            short_sha(&r.sha256)
        );
    }
    for problem in &job.problems {
        println!("  ! {}", problem.describe());
    }
}

fn run_line(last: &JobRunSummary, running_now: bool) -> String {
    // `running` in the ledger with no process holding the run lock: it died.
    let status = match last.status {
        RunStatus::Running if !running_now => RunStatus::Interrupted,
        status => status,
    };
    format!(
        "run {} ({}) {status} at {}: sent {}, acknowledged {}, rejected {}{}",
        last.run_id,
        last.kind.as_str(),
        last.finished_at
            .unwrap_or(last.started_at)
            .format("%Y-%m-%d %H:%M:%S UTC"),
        last.sent,
        last.acknowledged,
        last.rejected,
        last.error_class
            .as_deref()
            .map(|c| format!(" ({c} error)"))
            .unwrap_or_default()
    )
}

fn print_verdict(status: &ProjectStatus) {
    let attention = status
        .jobs
        .iter()
        .filter(|j| !j.problems.is_empty())
        .count();
    if attention == 0 {
        println!(
            "all {} job(s) ok (last complete run within {})",
            status.jobs.len(),
            age_text(Duration::from_secs(status.max_age_seconds))
        );
    } else {
        println!("{attention} of {} job(s) need attention", status.jobs.len());
    }
}

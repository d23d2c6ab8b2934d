//! `reqsync run`: one sync now.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use reqsync_runtime::config::Config;
use reqsync_runtime::ledger::RunStatus;
use reqsync_runtime::notify::Notifier;
use reqsync_runtime::pipeline::{
    Delivery, DryRunDir, DryRunOutput, Pipeline, Progress, RunOptions, RunReport,
};
use reqsync_runtime::reqcheck::client::ClientOptions;
use reqsync_runtime::reqcheck::{Credentials, ReqCheckClient};
use reqsync_runtime::source;

use super::engine_options::EngineOptions;
use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// Run only this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Render the exact request bodies without sending them: to stdout, or to files in
    /// --out DIR. Without --full it still asks ReqCheck's heartbeat for the window.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: write one file per request into this folder (created owner-only; it
    /// must be empty).
    #[arg(long, requires = "dry_run")]
    pub out: Option<PathBuf>,
    /// With --out: delete the bodies an earlier dry run left in the folder first (only files
    /// named `NNNN-<job>.json`; a folder holding anything else is refused).
    #[arg(long, requires = "out")]
    pub replace_out: bool,
    /// Ignore ReqCheck's last import and send everything the queries select from the start.
    /// A periodic full sync is how corrections that the watermark cannot see reach ReqCheck.
    #[arg(long)]
    pub full: bool,
    /// Evaluate date rules against this date instead of today (YYYY-MM-DD).
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RunArgs) -> Result<u8, Failure> {
    let config = args.config.load()?;
    // A dry run sends nothing, so it notifies nothing either.
    let notifier = if args.dry_run {
        None
    } else {
        Notifier::new(&config)
    };
    let before = notifier.as_ref().and_then(Notifier::prepare);
    let result = sync(config, args).await;
    if let Some(notifier) = notifier {
        // Whatever the outcome; a notice that cannot be delivered is logged and retried
        // later, and never changes the exit code.
        let failure = result.as_ref().err().and_then(|f| exit::class_of(f.code));
        notifier.after_run(before, failure).await;
    }
    result
}

async fn sync(config: Config, args: RunArgs) -> Result<u8, Failure> {
    reqsync_runtime::audit::open(&config.audit_file).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let credentials = || {
        Credentials::load(&config.reqcheck.username, &config.reqcheck.password)
            .or_exit(exit::CONFIG, "cannot read the ReqCheck credentials")
    };
    let delivery = if args.dry_run {
        let output = match &args.out {
            Some(dir) => DryRunOutput::Dir(
                DryRunDir::prepare(dir, args.replace_out)
                    .or_exit(exit::CONFIG, "cannot use the --out folder")?,
            ),
            None => DryRunOutput::Stdout,
        };
        let client = if args.full {
            None
        } else {
            Some(client(&config, credentials()?)?)
        };
        Delivery::DryRun { output, client }
    } else {
        Delivery::ReqCheck(client(&config, credentials()?)?)
    };
    let report = execute(
        config,
        delivery,
        &RunOptions {
            full: args.full,
            job: args.job,
            as_of: args.as_of,
            cancel: None,
            replay: None,
        },
        &Progress::auto(),
    )
    .await?;
    Ok(print_report(&report, args.json))
}

/// Prints a finished run's report; the exit code says whether ReqCheck stored every record.
pub fn print_report(report: &RunReport, json: bool) -> u8 {
    if json {
        // Streamed: a report lists every rejected row, megabytes at a million rows.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            eprintln!("error: cannot print the run report: {e}");
        }
    } else {
        print!("{report}");
    }
    if report.status == RunStatus::Partial {
        eprintln!(
            "ReqCheck stored {} import(s) with record errors (partial_failure); the next run \
             re-sends this window. The reasons are in ReqCheck's admin UI; set \
             `[sync] on_partial_failure = \"accept\"` to treat this as success.",
            report.partial_failures().count()
        );
        return exit::PARTIAL_FAILURE;
    }
    exit::OK
}

pub fn client(config: &Config, credentials: Credentials) -> Result<ReqCheckClient, Failure> {
    // Read wherever ReqCheck's are: a missing variable is a configuration error before any
    // row is read, not a 407 halfway through.
    let proxy_credentials = config
        .reqcheck
        .proxy_credentials
        .as_ref()
        .map(Credentials::load_proxy)
        .transpose()
        .or_exit(exit::CONFIG, "cannot read the proxy's credentials")?;
    let options = ClientOptions {
        timeout: config.reqcheck.timeout,
        ca_file: config.reqcheck.ca_file.clone(),
        retry: config.reqcheck.retry.clone(),
        allow_insecure_http: config.reqcheck.allow_insecure_http,
        proxy: config.reqcheck.proxy.clone(),
        proxy_credentials,
    };
    ReqCheckClient::new(&config.reqcheck.url, credentials, &options)
        .or_exit(exit::CONFIG, "cannot set up the ReqCheck client")
}

/// Opens the source and engine a config names and runs one sync.
pub async fn execute(
    config: Config,
    delivery: Delivery,
    options: &RunOptions,
    progress: &Progress,
) -> Result<RunReport, Failure> {
    let pipeline = pipeline(config, delivery)?;
    Ok(pipeline.run(options, progress).await?)
}

/// The source, engine and delivery a config names.
pub fn pipeline(config: Config, delivery: Delivery) -> Result<Pipeline, Failure> {
    let url = config
        .source()
        .or_exit(exit::CONFIG, "invalid source URL")?;
    let source =
        source::open(&url, config.clinic_tz).or_exit(exit::SOURCE, "cannot open the source")?;
    let engine = EngineOptions::for_config(&config).engine()?;
    Ok(Pipeline {
        config,
        source,
        engine,
        delivery,
        modules: None,
    })
}

/// The ReqCheck client of a config, with its credentials loaded.
pub fn reqcheck_client(config: &Config) -> Result<ReqCheckClient, Failure> {
    let credentials = Credentials::load(&config.reqcheck.username, &config.reqcheck.password)
        .or_exit(exit::CONFIG, "cannot read the ReqCheck credentials")?;
    client(config, credentials)
}

//! `reqsync daemon`: the jobs on their schedules until SIGTERM or Ctrl-C, with `/healthz` and
//! `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use reqsync_runtime::daemon::{
    PipelineRunner, Service, SystemClock, http, scheduled_jobs, status_page,
};
use reqsync_runtime::notify::Notifier;
use reqsync_runtime::pipeline::Delivery;
use reqsync_runtime::reqcheck::Credentials;
use reqsync_runtime::transform::ModuleRegistry;
use tokio_util::sync::CancellationToken;

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Jobs run on their `schedule`; jobs without one are not run.
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// Serve /healthz and /metrics on this address instead of `[daemon] listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// `reqsync daemon` in a console or under systemd: stops on SIGTERM / Ctrl-C (a second one
/// exits at once).
pub async fn run(args: DaemonArgs) -> Result<u8, Failure> {
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    serve(args, shutdown).await
}

/// The daemon until `shutdown` is cancelled: then no new run starts, the current one stops at
/// its next request boundary, and `/healthz` answers until it has. Whoever owns the process
/// decides what cancels it: signals in a console, the Service Control Manager's stop request
/// for a Windows service (`cli::service`).
pub async fn serve(args: DaemonArgs, shutdown: CancellationToken) -> Result<u8, Failure> {
    let config = args.config.load()?;
    reqsync_runtime::audit::open(&config.audit_file).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let (jobs, unscheduled) = scheduled_jobs(&config);
    if jobs.is_empty() {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow::anyhow!(
                "no job in {} has a `schedule`: give the jobs one cron expression (e.g. \
                 schedule = \"0 2 * * *\"; a config from `reqsync init` has that line \
                 commented out in each job) or call `reqsync run` from a scheduler instead",
                config.path.display()
            ),
        ));
    }
    for job in &unscheduled {
        tracing::warn!(job = %job, "no `schedule`: the daemon does not run this job");
    }
    // Credentials are read once here: a missing variable stops the start-up, not every run.
    let credentials = Credentials::load(&config.reqcheck.username, &config.reqcheck.password)
        .or_exit(exit::CONFIG, "cannot read the ReqCheck credentials")?;
    let client = super::run::client(&config, credentials)?;
    let listen = args.listen.unwrap_or(config.daemon.listen);
    let limits = config.daemon.limits;
    let status_login = match &config.daemon.status_login {
        Some((username, password)) => Some((
            username.clone(),
            password
                .read_status_password()
                .or_exit(exit::CONFIG, "cannot read the status page's password")?,
        )),
        None => None,
    };
    let page_config = config.daemon.status_page.then(|| Arc::new(config.clone()));
    let tz = config.clinic_tz;
    let notifier = Notifier::new(&config).map(Arc::new);
    if let Some(notifier) = &notifier {
        notifier.prepare();
    }
    let mut pipeline = super::run::pipeline(config, Delivery::ReqCheck(client))?;
    // Hot swap: every job's module is loaded into the registry now, and the folders holding
    // them are watched; a changed file is validated and swapped in between batches.
    let modules = ModuleRegistry::new(pipeline.engine.clone());
    for job in &pipeline.config.jobs {
        modules
            .slot(&job.transform)
            .or_exit(exit::TRANSFORM, &format!("job `{}`", job.name))?;
    }
    let _watch = modules
        .watch()
        .or_exit(exit::INTERNAL, "cannot watch the transform modules")?;
    for (path, sha256, _) in modules.active() {
        tracing::info!(module = %path.display(), %sha256, "transform module active");
    }
    let module_files = pipeline
        .config
        .jobs
        .iter()
        .map(|j| (j.name.clone(), j.transform.clone()))
        .collect();
    pipeline.modules = Some(modules.clone());
    let listener = http::bind(listen)
        .await
        .or_exit(exit::CONFIG, "cannot start the daemon")?;
    let local = listener.local_addr().unwrap_or(listen);

    let service = Service::new(
        jobs,
        tz,
        Arc::new(PipelineRunner::new(pipeline).with_notifier(notifier.clone())),
        Arc::new(SystemClock),
    );
    service.state().attach_modules(modules, module_files);
    if let Some(page_config) = page_config {
        let access = status_page::Access::new(local, status_login);
        if let Some(warning) = access.warning(local) {
            tracing::warn!("{warning}");
        }
        service
            .state()
            .attach_status_page(status_page::StatusPage::new(page_config, access));
    }
    // The HTTP server outlives the scheduler's shutdown: `/healthz` keeps answering while the
    // current run stops at its batch boundary.
    let http_stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        service.state(),
        limits,
        http_stop.clone(),
    ));
    tracing::info!(
        listen = %local,
        "daemon started: serving /healthz, /metrics and /status"
    );
    if let Some(warning) = http::exposure_warning(local) {
        tracing::warn!("{warning}");
    }

    let checks = notifier.map(|n| tokio::spawn(notify_checks(n, shutdown.clone())));
    let summary = service.run(shutdown).await;
    if let Some(checks) = checks {
        // A delivery cut short stays in the ledger's outbox for the next start.
        checks.abort();
    }

    http_stop.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the /healthz and /metrics server failed"),
        Err(e) => tracing::warn!(error = %e, "the /healthz and /metrics server panicked"),
    }
    tracing::info!(
        runs = summary.runs,
        skipped_ticks = summary.skipped_ticks,
        "daemon stopped"
    );
    Ok(exit::OK)
}

/// `[notify]`'s periodic round: "no complete run within `[status] max_age`" needs no run to
/// happen to be noticed, and notices a channel refused earlier are retried. Every 5 minutes, or
/// a quarter of `max_age` when that is shorter (at least a second).
async fn notify_checks(notifier: Arc<Notifier>, shutdown: CancellationToken) {
    let every =
        (notifier.config().stale_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
    loop {
        notifier.check().await;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// First SIGTERM / Ctrl-C: stop scheduling and let the current run stop at its next batch
/// boundary. A second one exits at once, for an operator who will not wait for the request in
/// flight (it may or may not have been imported; the next run's look-back re-sends it).
async fn watch_signals(shutdown: CancellationToken) {
    if let Err(e) = signal().await {
        tracing::error!(error = %e, "cannot listen for shutdown signals");
        return;
    }
    tracing::info!("shutdown requested: finishing the requests in flight");
    shutdown.cancel();
    if signal().await.is_ok() {
        tracing::warn!("second shutdown signal: exiting without waiting for the run");
        reqsync_runtime::audit::flush();
        std::process::exit(130);
    }
}

#[cfg(unix)]
async fn signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

/// A Windows console sends Ctrl-C, Ctrl-Break, "close" when its window is closed, and
/// "shutdown" when the machine goes down: each one asks the daemon to stop. (Log-off is left
/// out: another user logging off is no reason to stop. A Windows service has no console; its
/// stop request arrives through `cli::service` instead.)
#[cfg(windows)]
async fn signal() -> std::io::Result<()> {
    use tokio::signal::windows;
    let mut ctrl_break = windows::ctrl_break()?;
    let mut close = windows::ctrl_close()?;
    let mut shutdown = windows::ctrl_shutdown()?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = ctrl_break.recv() => Ok(()),
        _ = close.recv() => Ok(()),
        _ = shutdown.recv() => Ok(()),
    }
}

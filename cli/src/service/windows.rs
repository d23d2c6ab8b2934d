//! The Windows side of `reqsync service`, on the `windows-service` crate.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::{InstallArgs, NameArgs, RunArgs, ServiceAction as Action};
use crate::daemon::{self, DaemonArgs};
use crate::exit::{self, Failure, OrExit};
use crate::{ConfigArgs, logging};

/// How long the SCM is told a stop may take before it considers the service hung; renewed
/// while the run in progress finishes its request (which may wait up to `[reqcheck] timeout`).
const STOP_WAIT_HINT: Duration = Duration::from_secs(30);

/// Error 1063: the process was not started by the SCM (someone typed `reqsync service run`).
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

pub fn control(action: Action) -> Result<u8, Failure> {
    match action {
        Action::Install(args) => install(args),
        Action::Uninstall(NameArgs { name }) => uninstall(&name),
        Action::Start(NameArgs { name }) => start(&name),
        Action::Stop(NameArgs { name }) => stop(&name),
        Action::Status(NameArgs { name }) => status(&name),
        Action::Run(_) => Err(Failure::new(
            exit::USAGE,
            anyhow::anyhow!("`reqsync service run` is started by the Service Control Manager"),
        )),
    }
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, Failure> {
    ServiceManager::local_computer(None::<&str>, access).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            anyhow::Error::new(e).context(
                "cannot reach the Service Control Manager (installing or removing a service \
                 needs a console run as administrator)",
            ),
        )
    })
}

fn open(name: &str, access: ServiceAccess) -> Result<windows_service::service::Service, Failure> {
    manager(ServiceManagerAccess::CONNECT)?
        .open_service(name, access)
        .map_err(|e| {
            Failure::new(
                exit::CONFIG,
                anyhow::Error::new(e).context(format!(
                    "cannot open the service `{name}` (is it installed? `reqsync service \
                     install`; managing it needs an administrator)"
                )),
            )
        })
}

fn install(args: InstallArgs) -> Result<u8, Failure> {
    let name = args.name.name;
    let config =
        reqsync_runtime::native_path::native(&args.config.unwrap_or_else(|| {
            reqsync_runtime::native_path::program_data_dir().join("reqsync.toml")
        }));
    let config = std::path::absolute(&config).unwrap_or(config);
    let log_dir = args
        .log_dir
        .unwrap_or_else(|| reqsync_runtime::native_path::program_data_dir().join("logs"));
    let log_dir = std::path::absolute(&log_dir).unwrap_or(log_dir);
    // A service that cannot load its config would start, fail and be restarted over and over;
    // say so now, while someone is watching.
    reqsync_runtime::config::Config::load(&config).or_exit(
        exit::CONFIG,
        "the service would not start: its configuration does not load",
    )?;
    let executable_path =
        std::env::current_exe().or_exit(exit::INTERNAL, "cannot find reqsync's own path")?;
    let account = args
        .account
        .unwrap_or_else(|| format!(r"NT SERVICE\{name}"));
    let account_password = if is_builtin_account(&account) {
        None
    } else {
        std::env::var_os("REQSYNC_SERVICE_PASSWORD")
    };
    let info = ServiceInfo {
        name: OsString::from(&name),
        display_name: OsString::from(format!("reqsync ({name})")),
        service_type: ServiceType::OWN_PROCESS,
        start_type: if args.manual {
            ServiceStartType::OnDemand
        } else {
            ServiceStartType::AutoStart
        },
        error_control: ServiceErrorControl::Normal,
        executable_path,
        launch_arguments: vec![
            "service".into(),
            "run".into(),
            "--name".into(),
            OsString::from(&name),
            "--config".into(),
            config.clone().into_os_string(),
            "--log-dir".into(),
            log_dir.clone().into_os_string(),
        ],
        dependencies: vec![],
        account_name: Some(OsString::from(&account)),
        account_password,
    };
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .map_err(|e| {
            Failure::new(
                exit::CONFIG,
                anyhow::Error::new(e).context(format!(
                    "cannot install the service `{name}` (already installed? `reqsync service \
                     uninstall --name {name}` first; installing needs an administrator)"
                )),
            )
        })?;
    // Best effort: the service works without a description or restart policy.
    if let Err(e) = service.set_description(
        "Keeps ReqCheck fed from the clinic database: runs the sync jobs on their schedules \
         (reqsync daemon).",
    ) {
        tracing::warn!(error = %e, "cannot set the service's description");
    }
    // A crash, or an exit with an error, is retried after a minute, then five; a third failure
    // in a day leaves it stopped for a person to look at (its log says why).
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    let actions = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![
            restart(60),
            restart(300),
            ServiceAction {
                action_type: ServiceActionType::None,
                delay: Duration::ZERO,
            },
        ]),
    };
    if let Err(e) = service
        .update_failure_actions(actions)
        .and_then(|()| service.set_failure_actions_on_non_crash_failures(true))
    {
        tracing::warn!(error = %e, "cannot set the service's restart policy");
    }
    println!(
        "installed the service `{name}` (runs as {account}{start})\n  config: {}\n  logs:   {}\n\
         Start it with `reqsync service start --name {name}`.",
        config.display(),
        log_dir.display(),
        start = if args.manual {
            ", started by hand"
        } else {
            ", starts with Windows"
        },
    );
    Ok(exit::OK)
}

/// Accounts Windows signs in itself: no password to give.
fn is_builtin_account(account: &str) -> bool {
    reqsync_runtime::windows_accounts::service_account_sid(account).is_some()
        || account.to_ascii_lowercase().starts_with(r"nt service\")
        // A group-managed service account (DOMAIN\name$): its password is the domain's.
        || account.ends_with('$')
}

fn uninstall(name: &str) -> Result<u8, Failure> {
    let service = open(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
    )?;
    if let Ok(status) = service.query_status()
        && status.current_state != ServiceState::Stopped
    {
        let _ = service.stop();
        wait_for(&service, ServiceState::Stopped, Duration::from_secs(120));
    }
    service.delete().map_err(|e| {
        Failure::new(
            exit::CONFIG,
            anyhow::Error::new(e).context(format!("cannot remove the service `{name}`")),
        )
    })?;
    println!("removed the service `{name}` (its config, state and logs are left in place)");
    Ok(exit::OK)
}

fn start(name: &str) -> Result<u8, Failure> {
    let service = open(name, ServiceAccess::QUERY_STATUS | ServiceAccess::START)?;
    service.start::<&OsStr>(&[]).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            anyhow::Error::new(e).context(format!("cannot start the service `{name}`")),
        )
    })?;
    let state = wait_for(&service, ServiceState::Running, Duration::from_secs(30));
    println!("service `{name}`: {}", state_text(state));
    Ok(if state == Some(ServiceState::Running) {
        exit::OK
    } else {
        exit::CONFIG
    })
}

fn stop(name: &str) -> Result<u8, Failure> {
    let service = open(name, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP)?;
    service.stop().map_err(|e| {
        Failure::new(
            exit::CONFIG,
            anyhow::Error::new(e).context(format!("cannot stop the service `{name}`")),
        )
    })?;
    let state = wait_for(&service, ServiceState::Stopped, Duration::from_secs(180));
    println!("service `{name}`: {}", state_text(state));
    Ok(exit::OK)
}

fn status(name: &str) -> Result<u8, Failure> {
    let service = open(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG,
    )?;
    let status = service
        .query_status()
        .or_exit(exit::CONFIG, "cannot query the service")?;
    println!(
        "service `{name}`: {}",
        state_text(Some(status.current_state))
    );
    if let Some(pid) = status.process_id.filter(|pid| *pid != 0) {
        println!("  process: {pid}");
    }
    if let ServiceExitCode::ServiceSpecific(code) = status.exit_code {
        println!("  last exit: {code} (see `reqsync --help` for what each code means)");
    }
    if let Ok(config) = service.query_config() {
        println!(
            "  runs as: {}",
            config.account_name.unwrap_or_default().to_string_lossy()
        );
        println!("  command: {}", config.executable_path.display());
    }
    Ok(exit::OK)
}

/// Polls until the service reaches `want` or `limit` passes; the last state seen.
fn wait_for(
    service: &windows_service::service::Service,
    want: ServiceState,
    limit: Duration,
) -> Option<ServiceState> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let state = service.query_status().ok().map(|s| s.current_state);
        if state == Some(want) || std::time::Instant::now() >= deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn state_text(state: Option<ServiceState>) -> &'static str {
    match state {
        Some(ServiceState::Running) => "running",
        Some(ServiceState::Stopped) => "stopped",
        Some(ServiceState::StartPending) => "starting",
        Some(ServiceState::StopPending) => "stopping (finishing the request in flight)",
        Some(_) => "paused",
        None => "unknown",
    }
}

// ---- What runs inside the service process. ----

/// The arguments `service run` was started with, for `service_main` (which the SCM calls on a
/// thread of its own, with only the arguments of `sc start`).
static RUN_ARGS: OnceLock<RunArgs> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// `reqsync service run`: hands the main thread to the SCM's dispatcher, which calls
/// `service_main` and returns when the service has stopped.
pub fn dispatch(args: RunArgs) -> ExitCode {
    let name = args.name.name.clone();
    let _ = RUN_ARGS.set(args);
    match service_dispatcher::start(&name, ffi_service_main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) =>
        {
            eprintln!(
                "error: `reqsync service run` is what the Service Control Manager starts; to \
                 run the daemon in this console use `reqsync daemon`, to start the service \
                 `reqsync service start`"
            );
            ExitCode::from(exit::USAGE)
        }
        Err(e) => {
            eprintln!("error: cannot connect to the Service Control Manager: {e}");
            ExitCode::from(exit::INTERNAL)
        }
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let Some(args) = RUN_ARGS.get() else {
        return;
    };
    // No console: the log goes to files. If even that fails, the SCM's status is all there is.
    let logging = logging::init_files(&args.log_dir, 0, false, logging::Quietness::Run);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let handler = move |control| match control {
        // A stop request, or the machine shutting down: exactly what SIGTERM does elsewhere.
        ServiceControl::Stop | ServiceControl::Shutdown => {
            stop.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = match service_control_handler::register(&args.name.name, handler) {
        Ok(status) => status,
        Err(e) => {
            tracing::error!(error = %e, "cannot register with the Service Control Manager");
            return;
        }
    };
    let report = |state, checkpoint, exit_code| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code,
            checkpoint,
            wait_hint: if state == ServiceState::Running || state == ServiceState::Stopped {
                Duration::ZERO
            } else {
                STOP_WAIT_HINT
            },
            process_id: None,
        });
    };
    let code = if logging.is_err() {
        // Nowhere to say why; the exit code the SCM records says "configuration".
        exit::CONFIG
    } else {
        report(ServiceState::Running, 0, ServiceExitCode::NO_ERROR);
        run_daemon(args, shutdown, &report)
    };
    reqsync_runtime::audit::flush();
    let exit_code = if code == exit::OK {
        ServiceExitCode::NO_ERROR
    } else {
        // Windows records a service-specific exit code in the System event log (event 7024),
        // so a service that stopped on an error is visible there too.
        ServiceExitCode::ServiceSpecific(u32::from(code))
    };
    report(ServiceState::Stopped, 0, exit_code);
}

fn run_daemon(
    args: &RunArgs,
    shutdown: CancellationToken,
    report: &(dyn Fn(ServiceState, u32, ServiceExitCode) + Sync),
) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return exit::INTERNAL;
        }
    };
    let daemon_args = DaemonArgs {
        config: ConfigArgs {
            config: args.config.clone(),
            source: None,
            reqcheck_url: None,
        },
        listen: None,
    };
    tracing::info!(service = %args.name.name, config = %args.config.display(), "service started");
    let outcome = runtime.block_on(async {
        // While the run in progress finishes, tell the SCM the stop is still under way, so
        // it does not give up on a service that is only waiting for ReqCheck's answer.
        let stopping = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                tracing::info!("stop requested by the Service Control Manager");
                for checkpoint in 1.. {
                    report(
                        ServiceState::StopPending,
                        checkpoint,
                        ServiceExitCode::NO_ERROR,
                    );
                    tokio::time::sleep(STOP_WAIT_HINT / 3).await;
                }
            }
        };
        tokio::select! {
            outcome = daemon::serve(daemon_args, shutdown) => outcome,
            () = stopping => unreachable!("the stop reporter never ends"),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            tracing::error!(
                error = format!("{:#}", failure.error),
                code = failure.code,
                "the service stopped on an error"
            );
            failure.code
        }
    }
}

//! `reqsync transform list`: the modules a config's jobs would run — and, when the project's
//! service is running, what it runs now (a swap it refused leaves the file on disk different
//! from the active version; this is where that shows).

use std::path::PathBuf;

use clap::Args;
use reqsync_runtime::config::Config;
use reqsync_runtime::transform::TransformInstance;
use reqsync_runtime::transform::registry::ModuleStatus;
use serde::Serialize;

use crate::engine_options::EngineOptions;
use crate::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The config file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    pub config: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Listed {
    job: String,
    path: PathBuf,
    /// The file on disk: what the next run (or a service started now) would use.
    on_disk: Option<OnDisk>,
    /// Why the file on disk cannot be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What the running service runs for this job (`None` when no service answered).
    running: Option<ModuleStatus>,
}

#[derive(Debug, Serialize)]
struct OnDisk {
    module: String,
    version: String,
    target: String,
    sha256: String,
}

pub fn run(args: ListArgs) -> Result<u8, Failure> {
    let config =
        Config::load(&args.config).or_exit(exit::CONFIG, "cannot load the configuration")?;
    let engine = EngineOptions::for_config(&config).engine()?;
    let service = tokio::runtime::Handle::try_current()
        .map_err(|e| e.to_string())
        .and_then(|handle| {
            handle.block_on(crate::service_health::running_modules(config.daemon.listen))
        });
    let mut listed = Vec::new();
    for job in &config.jobs {
        let described = engine.load(&job.transform).and_then(|module| {
            // Under the job's own limits, as a run instantiates it: a module that cannot start
            // within them is one the next run cannot use.
            let instance = TransformInstance::with_limits(&engine, &module, job.sandbox.clone())?;
            let info = instance.info();
            Ok(OnDisk {
                module: info.name.clone(),
                version: info.version.clone(),
                target: info.target.clone(),
                sha256: module.sha256.clone(),
            })
        });
        let (on_disk, error) = match described {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let running = service
            .as_ref()
            .ok()
            .and_then(|health| health.get(&job.name).cloned());
        listed.push(Listed {
            job: job.name.clone(),
            path: job.transform.clone(),
            on_disk,
            error,
            running,
        });
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listed).or_exit(exit::INTERNAL, "cannot write JSON")?
        );
    } else {
        print_human(&listed, &service);
    }
    Ok(if listed.iter().any(|l| l.error.is_some()) {
        exit::TRANSFORM
    } else {
        exit::OK
    })
}

fn print_human(
    listed: &[Listed],
    service: &Result<std::collections::BTreeMap<String, ModuleStatus>, String>,
) {
    for l in listed {
        match (&l.on_disk, &l.error) {
            (Some(d), _) => println!(
                "{:<14} {} {} ({}) sha256 {}  {}",
                l.job,
                d.module,
                d.version,
                d.target,
                d.sha256,
                l.path.display()
            ),
            (None, error) => println!(
                "{:<14} {}: cannot be used: {}",
                l.job,
                l.path.display(),
                error.as_deref().unwrap_or("?")
            ),
        }
        let Some(running) = &l.running else { continue };
        let same = l
            .on_disk
            .as_ref()
            .is_some_and(|d| d.sha256 == running.sha256);
        if same {
            println!(
                "{:<14} running: the same (swapped {} time{})",
                "",
                running.generation - 1,
                if running.generation == 2 { "" } else { "s" }
            );
        } else {
            println!(
                "{:<14} running: {} {} sha256 {}",
                "", running.name, running.version, running.sha256
            );
            match &running.refused {
                Some(r) => println!(
                    "{:<14} the file on disk was refused at {}: {}",
                    "", r.refused_at, r.reason
                ),
                None => println!(
                    "{:<14} the file on disk is newer than the running version (a swap may be \
                     in progress)",
                    ""
                ),
            }
        }
    }
    if let Err(why) = service {
        println!("no running service answered: {why}");
    }
}

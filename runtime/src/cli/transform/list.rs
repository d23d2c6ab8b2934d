//! `reqsync transform list`: the modules a config's jobs would run.

use std::path::PathBuf;

use clap::Args;
use reqsync::config::Config;
use reqsync::transform::{SandboxLimits, TransformEngine, TransformInstance};
use serde::Serialize;

use crate::cli::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The config file.
    #[arg(long, short, default_value_os_t = crate::cli::default_config())]
    pub config: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Listed {
    job: String,
    path: PathBuf,
    module: String,
    version: String,
    target: String,
    sha256: String,
}

pub fn run(args: ListArgs) -> Result<u8, Failure> {
    let config =
        Config::load(&args.config).or_exit(exit::CONFIG, "cannot load the configuration")?;
    let cache = config
        .module_cache()
        .or_exit(exit::CONFIG, "cannot use the module cache")?;
    let engine = TransformEngine::new(SandboxLimits::default(), Some(cache))
        .or_exit(exit::INTERNAL, "cannot start the transform engine")?;
    let mut listed = Vec::new();
    for job in &config.jobs {
        let module = engine
            .load(&job.transform)
            .or_exit(exit::TRANSFORM, &format!("job `{}`", job.name))?;
        let instance = TransformInstance::new(&engine, &module)
            .or_exit(exit::TRANSFORM, &format!("job `{}`", job.name))?;
        let info = instance.info();
        listed.push(Listed {
            job: job.name.clone(),
            path: job.transform.clone(),
            module: info.name.clone(),
            version: info.version.clone(),
            target: info.target.clone(),
            sha256: module.sha256.clone(),
        });
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listed).or_exit(exit::INTERNAL, "cannot write JSON")?
        );
    } else {
        for l in &listed {
            println!(
                "{:<14} {} {} ({}) sha256 {}  {}",
                l.job,
                l.module,
                l.version,
                l.target,
                l.sha256,
                l.path.display()
            );
        }
    }
    Ok(exit::OK)
}

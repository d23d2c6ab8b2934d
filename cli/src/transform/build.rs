//! `reqsync transform build [DIR]`: a module folder (made by `transform new`) into
//! `build/NAME.wasm`, in any of the three languages, then loaded into the sandbox once to show
//! what was built.

use std::path::PathBuf;

use clap::Args;
use reqsync_runtime::transform::TransformInstance;

use super::kit::build;
use super::kit::toolchain::Toolchains;
use super::load_with_progress;
use crate::engine_options::CacheArgs;
use crate::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The module folder (holding reqsync-module.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub toolchain: ToolchainArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub project: super::ProjectArgs,
}

/// Where the Python and JavaScript build tools are installed.
#[derive(Debug, Args)]
pub struct ToolchainArgs {
    /// Folder of the build toolchains, installed on first use [default:
    /// $XDG_CACHE_HOME/reqsync/toolchains, else ~/.cache/reqsync/toolchains; on Windows
    /// %LOCALAPPDATA%\reqsync\toolchains].
    #[arg(long, value_name = "DIR")]
    pub toolchain_dir: Option<PathBuf>,
}

impl ToolchainArgs {
    pub fn toolchains(&self) -> Result<Toolchains, Failure> {
        Toolchains::locate(self.toolchain_dir.clone())
            .or_exit(exit::CONFIG, "cannot use the toolchain folder")
    }
}

pub fn run(args: BuildArgs) -> Result<u8, Failure> {
    let toolchains = args.toolchain.toolchains()?;
    let built =
        build::build(&args.dir, &toolchains).or_exit(exit::TRANSFORM, "cannot build the module")?;
    if !built.refreshed.is_empty() {
        eprintln!(
            "updated reqsync's own files to this reqsync's: {}",
            built.refreshed.join(", ")
        );
    }
    let engine = args.project.engine_options(&args.cache)?.engine()?;
    let context = format!("the built module {}", built.module.display());
    let module = load_with_progress(&engine, &built.module).or_exit(exit::TRANSFORM, &context)?;
    let instance = TransformInstance::new(&engine, &module).or_exit(exit::TRANSFORM, &context)?;
    let info = instance.info();
    let how = if built.up_to_date {
        "up to date, sources unchanged".to_owned()
    } else {
        format!("in {:.1} s", built.took.as_secs_f64())
    };
    println!(
        "built {} {} ({}, sha256 {}) {how} with {} → {}",
        info.name,
        info.version,
        info.target,
        &module.sha256[..16],
        built.tool,
        built.module.display()
    );
    match &built.examples {
        Some(examples) => println!("example cases copied beside it: {}", examples.display()),
        None => eprintln!(
            "warning: the folder has no examples.json; a running service refuses to swap in a \
             module without example cases"
        ),
    }
    Ok(exit::OK)
}

//! `reqsync init DIR`: a complete project folder that works as written and that a user edits.

use std::path::PathBuf;

use clap::Args;
use reqsync::project::write_project;

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create (it may exist, but must not hold the files init writes).
    pub dir: PathBuf,
    /// Source URL to put in the config.
    #[arg(long, default_value = "sqlite://clinic.db")]
    pub source: String,
    /// ReqCheck URL to put in the config.
    #[arg(long, default_value = "https://reqcheck.example.org")]
    pub reqcheck_url: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: InitArgs) -> Result<u8, Failure> {
    // Checked as the config file's `url` will be, so that init never writes a config that
    // every later command refuses (or a password into a file).
    reqsync::reqcheck::parse_base_url(&args.reqcheck_url)
        .or_exit(exit::CONFIG, "--reqcheck-url")?;
    write_project(&args.dir, &args.source, &args.reqcheck_url, args.force)
        .or_exit(exit::CONFIG, "cannot write the project")?;
    let config = args.dir.join("reqsync.toml");
    println!("wrote a reqsync project to {}", args.dir.display());
    println!(
        "next: edit {0}, export REQCHECK_USERNAME and REQCHECK_PASSWORD, then `reqsync run --config {0}`",
        config.display()
    );
    Ok(exit::OK)
}

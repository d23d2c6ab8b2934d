//! `reqsync init DIR`: a complete project folder that works as written and that a user edits.

use std::path::PathBuf;

use clap::Args;
use reqsync_project::write_project;
use reqsync_runtime::config::{DEFAULT_PASSWORD_ENV, DEFAULT_USERNAME_ENV};

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
    /// Point the project at the development receiver (`reqsync receiver`, on its default
    /// address) instead of a ReqCheck: for trying reqsync out.
    #[arg(long, conflicts_with = "reqcheck_url")]
    pub dev: bool,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: InitArgs) -> Result<u8, Failure> {
    // Checked as the config file's `url` will be, so that init never writes a config that
    // every later command refuses (or a password into a file).
    let reqcheck_url = if args.dev {
        super::receiver::DEV_URL
    } else {
        args.reqcheck_url.as_str()
    };
    reqsync_runtime::reqcheck::parse_base_url(reqcheck_url)
        .or_exit(exit::CONFIG, "--reqcheck-url")?;
    write_project(&args.dir, &args.source, reqcheck_url, args.force)
        .or_exit(exit::CONFIG, "cannot write the project")?;
    let config = args.dir.join("reqsync.toml");
    let (user, password) = (DEFAULT_USERNAME_ENV, DEFAULT_PASSWORD_ENV);
    println!("wrote a reqsync project to {}", args.dir.display());
    if args.dev {
        // The development receiver's documented login; a real ReqCheck's never shows here.
        println!(
            "next: start `reqsync receiver` in another terminal, seed a clinic database \
             (`reqsync seed --db {source} --kcmo`), then \
             `{user}=test {password}=test reqsync run --config {config}`",
            source = seed_url(&args),
            config = config.display()
        );
    } else {
        println!(
            "next: edit {0}, export {user} and {password}, then `reqsync run --config {0}`",
            config.display()
        );
    }
    Ok(exit::OK)
}

/// The source URL as `reqsync seed` run here must name it: a relative SQLite path in the config
/// is relative to the project folder.
fn seed_url(args: &InitArgs) -> String {
    match args.source.strip_prefix("sqlite://") {
        Some(path) if std::path::Path::new(path).is_relative() => {
            format!("sqlite://{}", args.dir.join(path).display())
        }
        _ => args.source.clone(),
    }
}

//! `reqsync transform new DIR --lang rust|python|js [--from patients|vaccine-doses]`: a module
//! folder to build, test and deploy without the reqsync repository.

use std::path::PathBuf;

use clap::Args;

use super::kit::manifest::Language;
use super::kit::scaffold::{self, Template};
use crate::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The folder to create (it must not exist, or be empty).
    pub dir: PathBuf,
    /// The language to write the module in.
    #[arg(long, value_enum)]
    pub lang: Language,
    /// The default module to start from: its rules, example cases and (Rust) property tests.
    #[arg(long, value_enum, default_value = "patients")]
    pub from: Template,
}

pub fn run(args: NewArgs) -> Result<u8, Failure> {
    let planned = scaffold::new_module(args.lang, args.from);
    scaffold::check_empty(&args.dir).or_exit(exit::USAGE, "cannot start a module")?;
    scaffold::write_new(&args.dir, &planned)
        .or_exit(exit::CONFIG, "cannot write the module folder")?;
    let name = args.from.module_name();
    let dir = args.dir.display();
    println!(
        "wrote the `{name}` module ({}) in {dir}: {} files",
        args.lang,
        planned.len()
    );
    println!("next:");
    println!("  reqsync transform build {dir}");
    println!("  reqsync transform test {dir}/build/{name}.wasm");
    println!("  reqsync transform dev {dir} --config PROJECT/reqsync.toml");
    Ok(exit::OK)
}

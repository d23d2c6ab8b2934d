//! `reqsync audit verify`: checks the audit trail's hash chain.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqsync_runtime::audit::{self, Verdict};

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that no entry of an audit trail was edited, deleted, inserted or moved (exit code 8
    /// names the first bad line). Lines cut off the end cannot be detected from the file alone:
    /// keep the printed last hash somewhere else and compare.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The audit file [default: the config's `[audit] file`, `.reqsync/audit.jsonl` beside it
    /// unless set].
    pub file: Option<PathBuf>,
    /// The config whose audit trail is checked (when no FILE is given).
    #[arg(long, short, default_value_os_t = super::default_config(), conflicts_with = "file")]
    pub config: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: AuditArgs) -> Result<u8, Failure> {
    match args.command {
        AuditCommand::Verify(args) => verify(args),
    }
}

fn verify(args: VerifyArgs) -> Result<u8, Failure> {
    let path = match args.file {
        Some(file) => file,
        None => {
            reqsync_runtime::config::Config::load(&args.config)
                .or_exit(exit::CONFIG, "cannot load the configuration")?
                .audit_file
        }
    };
    let verdict = audit::verify_file(&path).or_exit(exit::CONFIG, "cannot verify")?;
    let file = path.display();
    if args.json {
        let out = match &verdict {
            Verdict::Intact(s) => serde_json::json!({
                "file": file.to_string(),
                "intact": true,
                "entries": s.entries,
                "first": s.first,
                "last": s.last,
            }),
            Verdict::Broken { at, intact } => serde_json::json!({
                "file": file.to_string(),
                "intact": false,
                "line": at.line,
                "problem": at.problem.to_string(),
                "intact_entries_before": intact,
            }),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&out).or_exit(exit::INTERNAL, "cannot write JSON")?
        );
        return Ok(match verdict {
            Verdict::Intact(_) => exit::OK,
            Verdict::Broken { .. } => exit::AUDIT_BROKEN,
        });
    }
    match verdict {
        Verdict::Intact(s) => {
            match (&s.first, &s.last) {
                (Some(first), Some(last)) => {
                    let noun = if s.entries == 1 { "entry" } else { "entries" };
                    println!(
                        "{file}: {} {noun}, chain intact, first {first}, last {last}",
                        s.entries
                    );
                    println!("last hash: {}", last.hash);
                    println!(
                        "(lines cut off the end cannot be seen in the file itself: keep the last \
                         hash elsewhere and compare it next time)"
                    );
                }
                _ => println!("{file}: 0 entries (empty file)"),
            }
            Ok(exit::OK)
        }
        Verdict::Broken { at, intact } => {
            let before = match intact {
                0 => String::new(),
                1 => "; entry 1 before it is intact".to_string(),
                n => format!("; entries 1 to {n} before it are intact"),
            };
            Err(Failure::new(
                exit::AUDIT_BROKEN,
                anyhow::anyhow!("the audit trail {file} is broken at {at}{before}"),
            ))
        }
    }
}

//! `reqsync notify test`: checks every `[notify]` channel by sending it a test notice.

use clap::{Args, Subcommand};
use reqsync_runtime::notify::Notifier;

use super::exit::{self, Failure};

#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub command: NotifyCommand,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test notice to every channel of `[notify]` (e-mail, webhooks) and say what each
    /// answered; exit code 6 when one could not be reached.
    Test {
        #[command(flatten)]
        config: super::ConfigArgs,
    },
}

pub async fn run(args: NotifyArgs) -> Result<u8, Failure> {
    match args.command {
        NotifyCommand::Test { config } => {
            let config = config.load()?;
            let Some(notifier) = Notifier::new(&config) else {
                return Err(Failure::new(
                    exit::CONFIG,
                    anyhow::anyhow!(
                        "{} has no [notify] section: nothing to test (docs/CONFIG.md, \
                         \"[notify]\")",
                        config.path.display()
                    ),
                ));
            };
            let mut failed = 0;
            for outcome in notifier.send_test().await {
                match outcome.result {
                    Ok(()) => println!("{}: sent", outcome.channel),
                    Err(e) => {
                        failed += 1;
                        println!("{}: FAILED: {e}", outcome.channel);
                    }
                }
            }
            Ok(if failed == 0 {
                exit::OK
            } else {
                exit::DELIVERY
            })
        }
    }
}

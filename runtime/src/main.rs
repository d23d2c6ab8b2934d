//! The `reqsync` command line.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    cli::closed_output::end_quietly_when_the_reader_leaves();
    let args = cli::Cli::parse();
    // Started by the Windows Service Control Manager: the service's thread sets up its own log
    // (in files: there is no console) and runtime.
    #[cfg(windows)]
    if let cli::Command::Service(cli::service::ServiceArgs {
        action: cli::service::ServiceAction::Run(run),
    }) = args.command
    {
        return cli::service::dispatch(run);
    }
    let quietness = match &args.command {
        // The demo prints its own narrative; the in-process receiver's request log would drown
        // it.
        cli::Command::Demo(_) => cli::logging::Quietness::Warnings,
        // Their output is a report (`dev`: one status line per save); -v adds the log.
        cli::Command::Transform(t)
            if matches!(
                t.command,
                cli::transform::TransformCommand::Test(_)
                    | cli::transform::TransformCommand::Dev(_)
            ) =>
        {
            cli::logging::Quietness::Report
        }
        _ if args.quiet => cli::logging::Quietness::Warnings,
        _ => cli::logging::Quietness::Run,
    };
    match &args.log_dir {
        Some(dir) => {
            if let Err(e) = cli::logging::init_files(dir, args.verbose, args.log_json, quietness) {
                eprintln!("error: {e:#}");
                return ExitCode::from(cli::exit::CONFIG);
            }
        }
        None => cli::logging::init(args.verbose, args.log_json, quietness),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::exit::INTERNAL);
        }
    };
    let outcome = runtime.block_on(cli::dispatch(args));
    // The last audit entries may still be on their way to disk (`audit::flush`).
    reqsync::audit::flush();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // `{:#}` prints the context chain on one line: what failed, then why.
            eprintln!("error: {:#}", e.error);
            ExitCode::from(e.code)
        }
    }
}

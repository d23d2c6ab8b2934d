//! Log output: human-readable text on stderr, or JSON lines.

use tracing_subscriber::EnvFilter;

/// `quiet` lowers the default to warnings (verbosity flags still raise it).
pub fn init(verbose: u8, json: bool, quiet: bool) {
    let default = match verbose {
        0 if quiet => "warn",
        0 => "warn,reqsync=info",
        1 => "info,reqsync=debug",
        _ => "debug,reqsync=trace",
    };
    let filter = EnvFilter::try_from_env("REQSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

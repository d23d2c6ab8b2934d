//! Log output: human-readable text on stderr, or JSON lines.

use tracing_subscriber::EnvFilter;

/// `quiet` lowers the default to warnings (verbosity flags still raise it).
pub fn init(verbose: u8, json: bool, quiet: bool) {
    // tiberius logs SQL Server's error messages (which can quote row values, e.g. a failed
    // conversion) at ERROR level and packet contents at TRACE: silenced, since the SQL Server
    // source reports every failure itself, with PHI-free messages.
    let default = match verbose {
        0 if quiet => "warn,tiberius=off",
        0 => "warn,reqsync=info,tiberius=off",
        1 => "info,reqsync=debug,tiberius=off",
        _ => "debug,reqsync=trace,tiberius=off",
    };
    let filter = EnvFilter::try_from_env("REQSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour codes only on a terminal: under systemd they would land in the journal as escapes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

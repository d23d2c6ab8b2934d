//! Log output: human-readable text on stderr, or JSON lines; and the audit trail.

use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// What a command logs when neither `-v` nor `REQSYNC_LOG` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quietness {
    /// reqsync's progress and everyone's warnings: runs, the daemon, most commands. Audit
    /// events (one or two per request) stay in the audit trail, out of the log: `-v` adds them.
    Run,
    /// Warnings only: `-q`, and the demo, which narrates itself.
    Warnings,
    /// Errors only: a command whose output is a report (`transform test`, and `transform dev`,
    /// which tests on every save). The warnings a failing module makes the host log (a batch
    /// retried row by row on a fresh instance, once per failing batch, hundreds of times while
    /// a failure shrinks) belong in a run's log; the report says what failed.
    Report,
}

/// The stderr log; `quietness` sets the default level (verbosity flags still raise it).
pub fn init(verbose: u8, json: bool, quietness: Quietness) {
    let filter = EnvFilter::try_from_env("REQSYNC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose, quietness)));
    // Colour codes only on a terminal: under systemd they would land in the journal as escapes.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if terminal {
        // A run's progress line is drawn there too: each log line clears it, is written
        // whole, and the line is redrawn below it.
        subscriber(filter, json, true, BelowTheProgressLine).init();
    } else {
        subscriber(filter, json, false, std::io::stderr).init();
    }
}

/// Stderr for the log on a terminal: one log line at a time, written with the progress bars
/// cleared ([`reqsync_runtime::pipeline::progress::suspended`]) so that neither tears the other.
struct BelowTheProgressLine;

/// One log event, collected as the formatter writes it and printed when it is dropped.
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        reqsync_runtime::pipeline::progress::suspended(|| {
            use std::io::Write;
            let mut stderr = std::io::stderr().lock();
            // Nowhere to report a failure to write the log to.
            let _ = stderr.write_all(&self.0).and_then(|()| stderr.flush());
        });
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BelowTheProgressLine {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// How many daily log files a service keeps (a month of nights to look back on).
const LOG_FILES_KEPT: usize = 30;

/// The log of a process without a console (a Windows service): a file a day in `dir`,
/// `reqsync.YYYY-MM-DD.log`, the oldest deleted beyond [`LOG_FILES_KEPT`]. The folder is
/// created owner-only, like the state folder: the log holds no row data, but it names hosts,
/// files and job sizes.
pub fn init_files(
    dir: &std::path::Path,
    verbose: u8,
    json: bool,
    quietness: Quietness,
) -> anyhow::Result<()> {
    use anyhow::Context;
    reqsync_private_fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the log folder {}", dir.display()))?;
    let files = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("reqsync")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(dir)
        .with_context(|| format!("cannot open a log file in {}", dir.display()))?;
    let filter = EnvFilter::try_from_env("REQSYNC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose, quietness)));
    subscriber(filter, json, false, files).try_init()?;
    Ok(())
}

fn default_filter(verbose: u8, quietness: Quietness) -> &'static str {
    // tiberius logs SQL Server's error messages (which can quote row values, e.g. a failed
    // conversion) at ERROR level and packet contents at TRACE: silenced, since the SQL Server
    // source reports every failure itself, with PHI-free messages. A target directive matches
    // by prefix, so `reqsync` covers every crate of the workspace (`reqsync_runtime`,
    // `reqsync_receiver`, …) and `reqsync::audit` the audit trail's target.
    match verbose {
        0 => match quietness {
            Quietness::Run => "warn,reqsync=info,reqsync::audit=warn,tiberius=off",
            Quietness::Warnings => "warn,tiberius=off",
            Quietness::Report => "error,tiberius=off",
        },
        1 => "info,reqsync=debug,tiberius=off",
        _ => "debug,reqsync=trace,tiberius=off",
    }
}

/// The stderr log and the audit layer, each behind a filter of its own: the log's filter (flags,
/// `REQSYNC_LOG`) is a per-layer filter rather than a global one, because a global filter would
/// also decide what the audit layer sees, and `-q` or `REQSYNC_LOG=warn` would then silently
/// stop the audit trail. The audit layer writes nowhere until a command calls
/// `reqsync_runtime::audit::open` with the config's `[audit] file`.
fn subscriber<W>(
    filter: EnvFilter,
    json: bool,
    ansi: bool,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    let log: Box<dyn Layer<Registry> + Send + Sync> = if json {
        log.json().with_filter(filter).boxed()
    } else {
        log.with_filter(filter).boxed()
    };
    tracing_subscriber::registry()
        .with(log)
        .with(reqsync_runtime::audit::layer())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Printed(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Printed {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Printed {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    /// The subscriber `init` installs, with the quietest log, still records audit events;
    /// the log still shows warnings and hides debug output. (The process-wide audit file is
    /// set here: this test binary has no other test that uses it.)
    #[test]
    fn audit_events_are_recorded_whatever_the_log_level() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        reqsync_runtime::audit::open(&path).unwrap();
        for json in [false, true] {
            let printed = Printed::default();
            let log = printed.clone();
            let sub = subscriber(EnvFilter::new("warn"), json, false, move || log.clone());
            tracing::subscriber::with_default(sub, || {
                tracing::info!(target: reqsync_runtime::audit::TARGET, event = "run_started", json);
                tracing::debug!(target: reqsync_runtime::audit::TARGET, event = "not_audited");
                tracing::debug!("not printed");
                tracing::warn!("printed");
            });
            let text = printed.text();
            assert!(
                text.contains("printed") && !text.contains("not printed"),
                "{text}"
            );
            assert!(!text.contains("run_started"), "{text}");
        }
        reqsync_runtime::audit::close();
        let entries = reqsync_runtime::audit::read_entries(&path).unwrap();
        let events: Vec<_> = entries.iter().map(|e| e["event"].clone()).collect();
        assert_eq!(events, ["run_started", "run_started"]);

        // (The trail is closed from here on.) At the default level a run's log keeps reqsync's
        // progress but leaves the audit events, one or two per request, to the trail; `-v`
        // shows them too; `-q` keeps warnings only.
        for (verbose, quietness, progress, audit) in [
            (0, Quietness::Run, true, false),
            (1, Quietness::Run, true, true),
            (0, Quietness::Warnings, false, false),
        ] {
            let printed = Printed::default();
            let log = printed.clone();
            let filter = EnvFilter::new(default_filter(verbose, quietness));
            let sub = subscriber(filter, false, false, move || log.clone());
            tracing::subscriber::with_default(sub, || {
                tracing::info!(target: "reqsync::pipeline", "run finished");
                tracing::info!(target: reqsync_runtime::audit::TARGET, event = "request_sent");
                tracing::warn!(target: "reqsync::pipeline", "a warning");
            });
            let text = printed.text();
            let case = format!("-v×{verbose} {quietness:?}: {text}");
            assert_eq!(text.contains("run finished"), progress, "{case}");
            assert_eq!(text.contains("request_sent"), audit, "{case}");
            assert!(text.contains("a warning"), "{case}");
        }
    }
}

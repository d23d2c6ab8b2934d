//! A progress line on a terminal for long runs; nothing when output is not a terminal.
//!
//! The line shows rows read and records sent and, when the ledger knows how many rows the
//! job's last complete run of the same kind read, that number as the expected total with a
//! percentage and an estimate of the time left. Counting the rows first would cost a second
//! pass over the clinic's database; the last run's count costs one indexed read of the ledger,
//! and a nightly sync reads about as many rows as the night before.
//!
//! Every bar is drawn through one process-wide [`MultiProgress`], and the log writes through
//! [`suspended`]: a log line clears the bar, prints, and lets the bar redraw below it, instead
//! of landing in the middle of it.

use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The terminal's bars. Hidden until a visible [`Progress`] adds one.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Runs `write` (a log line going to stderr) with the progress bars cleared, then redraws
/// them: what the log's writer calls for every line when stderr is a terminal.
pub fn suspended<R>(write: impl FnOnce() -> R) -> R {
    bars().suspend(write)
}

/// Progress display for a run. `Progress::hidden()` draws nothing (tests, cron, services).
#[derive(Debug, Clone)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Draws on stderr when it is a terminal.
    pub fn auto() -> Self {
        use std::io::IsTerminal;
        Self {
            visible: std::io::stderr().is_terminal(),
        }
    }

    pub fn hidden() -> Self {
        Self { visible: false }
    }

    /// Whether anything is drawn: the expected total is looked up only then.
    pub(crate) fn visible(&self) -> bool {
        self.visible
    }

    /// A job's line; `expected_rows` is the job's last comparable run's count, if known.
    pub fn job(&self, name: &str, expected_rows: Option<u64>) -> JobProgress {
        let bar = self.visible.then(|| {
            // Set up before it is added: adding draws it.
            let bar = ProgressBar::new(expected_rows.unwrap_or(0))
                .with_style(style(expected_rows.is_some()))
                .with_prefix(name.to_string())
                .with_message("0");
            let bar = bars().add(bar);
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        JobProgress {
            bar,
            expected_rows,
            beyond_expected: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

// Short enough for an 80-column console with a long job name: a wrapped line is redrawn as
// two, and each redraw then leaves a line behind.
const WITH_TOTAL: &str =
    "{spinner} {prefix}: {pos}/~{len} rows ({percent}%), {msg} sent, ~{eta} left";
const COUNTS_ONLY: &str = "{spinner} {prefix}: {pos} rows read, {msg} sent [{elapsed}]";

/// With an expected total: the percentage and indicatif's estimate of the time left (from the
/// rate so far). Without one, or once the rows outnumber it: counts and elapsed time.
fn style(with_total: bool) -> ProgressStyle {
    let template = if with_total { WITH_TOTAL } else { COUNTS_ONLY };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

#[derive(Debug)]
pub struct JobProgress {
    bar: Option<ProgressBar>,
    expected_rows: Option<u64>,
    beyond_expected: std::sync::atomic::AtomicBool,
}

impl JobProgress {
    pub fn set(&self, read: u64, sent: usize) {
        let Some(bar) = &self.bar else { return };
        use std::sync::atomic::Ordering::Relaxed;
        // More rows than the last run read: the total was a guess, and a bar stuck at 100 %
        // with a zero estimate would mislead. Counts only from here on.
        if self.expected_rows.is_some_and(|e| read > e) && !self.beyond_expected.swap(true, Relaxed)
        {
            bar.set_style(style(false));
        }
        bar.set_position(read);
        bar.set_message(sent.to_string());
    }

    pub fn finish(&self, read: u64, sent: usize) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            bars().remove(bar);
            let _ = (read, sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_line_templates_are_valid() {
        // A typo in a template falls back to a bare spinner at run time; catch it here.
        for template in [WITH_TOTAL, COUNTS_ONLY] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn a_hidden_progress_draws_nothing_and_ignores_updates() {
        let job = Progress::hidden().job("patients", Some(10));
        job.set(20, 5);
        job.finish(20, 5);
        assert!(job.bar.is_none());
    }
}

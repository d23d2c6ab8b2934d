//! A progress line on a terminal for long runs; nothing when output is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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

    pub fn job(&self, name: &str) -> JobProgress {
        let bar = if self.visible {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        JobProgress { bar }
    }
}

#[derive(Debug)]
pub struct JobProgress {
    bar: Option<ProgressBar>,
}

impl JobProgress {
    pub fn set(&self, read: u64, sent: usize) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{read} rows read, {sent} records sent"));
        }
    }

    pub fn finish(&self, read: u64, sent: usize) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
            let _ = (read, sent);
        }
    }
}

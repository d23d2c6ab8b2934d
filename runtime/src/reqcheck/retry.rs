//! When and how long the client waits before trying a request again.

use std::time::Duration;

/// Bounds on retrying one request to ReqCheck: attempts and total time, both configurable
/// (`[reqcheck] retry_attempts`, `retry_max_time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// No new attempt starts later than this after the first one began.
    pub max_elapsed: Duration,
    /// The ceiling of the first backoff; it doubles per attempt up to `max_delay`.
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(600),
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

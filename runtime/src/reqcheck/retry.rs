//! When and how long the client waits before trying a request again.
//!
//! The decisions are pure functions of the policy, the attempt count, the time spent so far,
//! what went wrong and a random source, so they can be tested with a seeded generator and no
//! clock; [`super::client`] runs the loop (sending, sleeping, logging).
//!
//! Why retrying is safe at all: every ReqCheck request can be sent twice. `/heartbeat` reads
//! only; `/patient_data` upserts each patient by number; `/vaccine_dose_data` replaces each
//! patient's whole dose history with the one in the request. A request that ReqCheck stored
//! before the connection broke (or before it answered 500, or while its answer was on the way
//! and broke off) leaves the same state when sent again; at most it adds one more DataImport
//! row to ReqCheck's import log.

use std::time::{Duration, SystemTime};

use rand::Rng;

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

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// The request or its answer took longer than the client's timeout.
    Timeout,
    /// The connection was reset or closed before a whole answer arrived.
    Closed,
    /// The TLS handshake failed (an unknown or expired certificate, a name mismatch): waiting
    /// does not fix a certificate, so it is not retried.
    Tls,
    /// Any other transport failure while the request was under way.
    Transport,
    /// ReqCheck answered with this HTTP status (not the one the endpoint returns on success).
    Status(u16),
    /// The request could not be built (a bug or a bad URL): never retried.
    Local,
    /// The proxy refused its credentials (407): the same ones would be refused again, and
    /// repeated failed logins can lock the proxy account.
    ProxyAuth,
    /// The proxy would not open a tunnel to ReqCheck (any status but 200 and 407: reqwest does
    /// not say which). Retried like ReqCheck being unreachable, since the usual causes, 502,
    /// 503 and 504 (the proxy cannot reach ReqCheck), pass; a 403 (the proxy's rules) fails
    /// the same way on every attempt and ends the run once they are used up.
    ProxyRefused,
    /// The answer was longer than any ReqCheck gives (`client::MAX_ANSWER_BYTES`): whatever
    /// answers is not ReqCheck, or not speaking its API, and would answer the same again.
    TooLarge,
}

impl FailureKind {
    /// Transient failures are retried: the network, timeouts, 408, 429 and 5xx. Other 4xx say
    /// the request itself is wrong and would be refused again; 401 in particular means the
    /// credentials are wrong, and hammering ReqCheck with them could lock the account (a
    /// proxy's 407 likewise). A 3xx (a redirect, never followed) would only redirect again.
    pub(crate) fn is_transient(self) -> bool {
        match self {
            FailureKind::Connect
            | FailureKind::Timeout
            | FailureKind::Closed
            | FailureKind::Transport
            | FailureKind::ProxyRefused => true,
            FailureKind::Tls
            | FailureKind::Local
            | FailureKind::TooLarge
            | FailureKind::ProxyAuth => false,
            FailureKind::Status(s) => s == 408 || s == 429 || (500..=599).contains(&s),
        }
    }

    /// Only these answers carry a `Retry-After` worth obeying (RFC 9110 §10.2.3; ReqCheck's
    /// proxy sends it with 503 during maintenance, a rate limiter with 429).
    pub(crate) fn honours_retry_after(self) -> bool {
        matches!(self, FailureKind::Status(429 | 503))
    }

    /// The fixed name logged for this class (never an error text, which could be long).
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Closed => "connection-closed",
            FailureKind::Tls => "tls",
            FailureKind::Transport => "transport",
            FailureKind::Status(_) => "status",
            FailureKind::Local => "local",
            FailureKind::TooLarge => "answer-too-large",
            FailureKind::ProxyAuth => "proxy-auth",
            FailureKind::ProxyRefused => "proxy-refused",
        }
    }

    /// The HTTP status, for [`FailureKind::Status`].
    pub fn status(self) -> Option<u16> {
        match self {
            FailureKind::Status(s) => Some(s),
            _ => None,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Wait this long, then try again.
    Retry {
        delay: Duration,
        /// Whether `delay` is the server's `Retry-After` rather than the jittered backoff.
        from_retry_after: bool,
    },
    /// Stop and report the failure.
    Stop(StopReason),
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The failure is not transient (4xx other than 408/429, TLS): report it as it is.
    NotTransient,
    /// `max_attempts` attempts were made.
    Attempts,
    /// The next wait would end after `max_elapsed`; `wait` is that wait.
    Time { wait: Duration },
}

impl RetryPolicy {
    /// The upper bound of the wait after the `failed`-th failed attempt (1-based):
    /// `min(max_delay, initial_delay * 2^(failed-1))`.
    pub(crate) fn backoff_ceiling(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = u64::try_from(self.initial_delay.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_mul(factor);
        Duration::from_nanos(nanos).min(self.max_delay)
    }

    /// "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): a
    /// uniform wait in `[0, ceiling]`. It spreads out clients that failed together (every
    /// clinic's cron job hitting a ReqCheck that just came back) better than a fixed or
    /// "equal" jitter, at the same mean total wait.
    pub(crate) fn jittered(&self, failed: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = u64::try_from(self.backoff_ceiling(failed).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=ceiling))
    }

    /// Whether and how long to wait after the `failed`-th attempt failed with `kind`,
    /// `elapsed` after the first attempt began. `retry_after` is the server's `Retry-After`,
    /// already converted to a wait; it is used only for 429 and 503.
    ///
    /// A `Retry-After` replaces the jittered backoff, even when shorter and even above
    /// `max_delay`: it is ReqCheck saying when it will take requests again, and
    /// waiting less would only earn another 503, waiting more only delays the run. The
    /// spread jitter gives is not needed there: the server chose the time.
    ///
    /// Either wait is still bounded by `max_elapsed`: if it would end after that, the
    /// client gives up now rather than sleep for an attempt it may not start.
    pub(crate) fn decide(
        &self,
        failed: u32,
        elapsed: Duration,
        kind: FailureKind,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Decision {
        if !kind.is_transient() {
            return Decision::Stop(StopReason::NotTransient);
        }
        if failed >= self.max_attempts {
            return Decision::Stop(StopReason::Attempts);
        }
        let (delay, from_retry_after) = match retry_after.filter(|_| kind.honours_retry_after()) {
            Some(wait) => (wait, true),
            None => (self.jittered(failed, rng), false),
        };
        if elapsed.saturating_add(delay) > self.max_elapsed {
            return Decision::Stop(StopReason::Time { wait: delay });
        }
        Decision::Retry {
            delay,
            from_retry_after,
        }
    }
}

/// A `Retry-After` header value as a wait from `now`: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, and the obsolete forms RFC 9110 requires accepting). A
/// date in the past means "now". `None` for a value that is neither: the header is then
/// ignored and the usual backoff applies.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Beyond u64 seconds is "never"; saturate rather than reject.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(600),
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }

    fn retry_delay(d: Decision) -> Duration {
        match d {
            Decision::Retry { delay, .. } => delay,
            Decision::Stop(r) => panic!("expected a retry, got {r:?}"),
        }
    }

    #[test]
    fn ceiling_doubles_from_the_initial_delay_and_caps_at_max_delay() {
        let p = policy();
        let ceilings: Vec<u64> = (1..=10)
            .map(|n| p.backoff_ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(
            ceilings,
            [
                500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000
            ]
        );
        // No overflow however many attempts a config allows.
        assert_eq!(p.backoff_ceiling(u32::MAX), p.max_delay);
        assert_eq!(p.backoff_ceiling(0), p.initial_delay);
    }

    #[test]
    fn jitter_stays_within_zero_and_the_ceiling_and_spreads() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        for failed in 1..=9 {
            let ceiling = p.backoff_ceiling(failed);
            let draws: Vec<Duration> = (0..200).map(|_| p.jittered(failed, &mut rng)).collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "attempt {failed}");
            // Full jitter: draws fall in both halves of [0, ceiling], not bunched at the top.
            assert!(draws.iter().any(|d| *d < ceiling / 2), "attempt {failed}");
            assert!(draws.iter().any(|d| *d > ceiling / 2), "attempt {failed}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_waits() {
        let p = policy();
        let waits = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..=5)
                .map(|n| {
                    retry_delay(p.decide(
                        n,
                        Duration::ZERO,
                        FailureKind::Status(503),
                        None,
                        &mut rng,
                    ))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(waits(42), waits(42));
        assert_ne!(waits(42), waits(43));
    }

    #[test]
    fn classification_table() {
        let retried = [
            FailureKind::Connect,
            FailureKind::Timeout,
            FailureKind::Closed,
            FailureKind::Transport,
            FailureKind::Status(408),
            FailureKind::Status(429),
            FailureKind::Status(500),
            FailureKind::Status(502),
            FailureKind::Status(503),
            FailureKind::Status(504),
            FailureKind::Status(599),
            FailureKind::ProxyRefused,
        ];
        let not_retried = [
            FailureKind::ProxyAuth,
            FailureKind::Status(407),
            FailureKind::Tls,
            FailureKind::Local,
            FailureKind::TooLarge,
            FailureKind::Status(301),
            FailureKind::Status(303),
            FailureKind::Status(307),
            FailureKind::Status(308),
            FailureKind::Status(400),
            FailureKind::Status(401),
            FailureKind::Status(403),
            FailureKind::Status(404),
            FailureKind::Status(409),
            FailureKind::Status(422),
            FailureKind::Status(200),
            FailureKind::Status(302),
        ];
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        for kind in retried {
            assert!(kind.is_transient(), "{kind:?}");
            assert!(
                matches!(
                    p.decide(1, Duration::ZERO, kind, None, &mut rng),
                    Decision::Retry { .. }
                ),
                "{kind:?}"
            );
        }
        for kind in not_retried {
            assert!(!kind.is_transient(), "{kind:?}");
            assert_eq!(
                p.decide(1, Duration::ZERO, kind, None, &mut rng),
                Decision::Stop(StopReason::NotTransient),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn max_attempts_counts_the_first_attempt() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..policy()
        };
        let mut rng = StdRng::seed_from_u64(1);
        let kind = FailureKind::Status(503);
        assert!(matches!(
            p.decide(1, Duration::ZERO, kind, None, &mut rng),
            Decision::Retry { .. }
        ));
        assert!(matches!(
            p.decide(2, Duration::ZERO, kind, None, &mut rng),
            Decision::Retry { .. }
        ));
        assert_eq!(
            p.decide(3, Duration::ZERO, kind, None, &mut rng),
            Decision::Stop(StopReason::Attempts)
        );
        let never = RetryPolicy {
            max_attempts: 1,
            ..policy()
        };
        assert_eq!(
            never.decide(1, Duration::ZERO, kind, None, &mut rng),
            Decision::Stop(StopReason::Attempts)
        );
    }

    #[test]
    fn a_wait_past_max_elapsed_gives_up_now() {
        let p = RetryPolicy {
            max_elapsed: Duration::from_secs(10),
            ..policy()
        };
        let mut rng = StdRng::seed_from_u64(3);
        let kind = FailureKind::Status(503);
        // Retry-After of 5 s at 4 s elapsed ends at 9 s: allowed; at 6 s it would end at 11 s.
        let five = Some(Duration::from_secs(5));
        assert_eq!(
            p.decide(1, Duration::from_secs(4), kind, five, &mut rng),
            Decision::Retry {
                delay: Duration::from_secs(5),
                from_retry_after: true
            }
        );
        assert_eq!(
            p.decide(1, Duration::from_secs(6), kind, five, &mut rng),
            Decision::Stop(StopReason::Time {
                wait: Duration::from_secs(5)
            })
        );
        // The jittered backoff is bounded the same way: past the limit, no wait fits.
        assert!(matches!(
            p.decide(1, Duration::from_secs(11), kind, None, &mut rng),
            Decision::Stop(StopReason::Time { .. })
        ));
        // A wait ending exactly at the limit is still allowed.
        assert!(matches!(
            p.decide(1, Duration::from_secs(5), kind, five, &mut rng),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_replaces_the_backoff_only_on_429_and_503() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(9);
        let long = Some(Duration::from_secs(120));
        for status in [429, 503] {
            assert_eq!(
                p.decide(
                    1,
                    Duration::ZERO,
                    FailureKind::Status(status),
                    long,
                    &mut rng
                ),
                Decision::Retry {
                    delay: Duration::from_secs(120),
                    from_retry_after: true
                },
                "{status}"
            );
        }
        // Above max_delay too: the server's word wins.
        let short_cap = RetryPolicy {
            max_delay: Duration::from_secs(1),
            ..policy()
        };
        assert_eq!(
            retry_delay(short_cap.decide(
                1,
                Duration::ZERO,
                FailureKind::Status(429),
                long,
                &mut rng
            )),
            Duration::from_secs(120)
        );
        // A 500 or 502 with the header keeps the jittered backoff.
        for status in [500, 502] {
            let d = p.decide(
                1,
                Duration::ZERO,
                FailureKind::Status(status),
                long,
                &mut rng,
            );
            assert!(
                matches!(d, Decision::Retry { delay, from_retry_after: false } if delay <= p.initial_delay),
                "{status}: {d:?}"
            );
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        // IMF-fixdate, and the obsolete RFC 850 and asctime forms.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:50:07 1994", now),
            Some(Duration::from_secs(30))
        );
        // A date already past means now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}

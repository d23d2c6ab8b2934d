//! Scripted misbehaviour: a plan that makes the receiver fail the way a real ReqCheck (or the
//! proxy in front of it) does now and then, so that tests can watch the client cope.
//!
//! A plan is a list of rules written `ENDPOINT:N=ACTION` or `ENDPOINT:N..=ACTION` (the
//! `--fault` flag of `reqsync receiver`, or [`Faults::parse`]). Requests are counted per
//! endpoint, from 1, once they have passed HTTP Basic auth: a refused request is not one the
//! action could have run, so it does not use up a rule. The first rule that matches a request
//! decides what happens to it; a request no rule matches is handled normally.
//!
//! | part | meaning |
//! | --- | --- |
//! | `ENDPOINT` | `heartbeat`, `patient_data`, `vaccine_dose_data`, or `*` (any; `N` is then the count of the request's own endpoint) |
//! | `N` | only the `N`th request to the endpoint |
//! | `N..` | the `N`th and every later one |
//! | `STATUS` | answer this 4xx/5xx status with Rails' error page; nothing is stored |
//! | `STATUS+retry-after=SECS` | the same with `Retry-After: SECS` |
//! | `STATUS+retry-after-date=SECS` | the same with `Retry-After` as the HTTP-date `SECS` from now |
//! | `delay=DURATION` | wait (`500ms`, `2s`), then handle the request normally |
//! | `reset` | close the connection without any answer |
//! | `store-then-500` | handle the request (an import is stored), then answer 500 anyway, as ReqCheck does when it fails after writing |

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::Response;

/// A fault plan; the default is no fault at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    rules: Vec<FaultRule>,
}

/// One `ENDPOINT:N=ACTION` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub endpoint: FaultEndpoint,
    pub requests: Requests,
    pub action: FaultAction,
}

/// Which endpoint's requests a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultEndpoint {
    Heartbeat,
    PatientData,
    VaccineDoseData,
    /// `*`: every endpoint, each with its own count.
    Any,
}

/// Which requests (1-based, per endpoint, after auth) a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// `N`: that one only.
    Nth(u32),
    /// `N..`: that one and every later one.
    From(u32),
}

/// What the receiver does instead of (or before) answering normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer this status without touching the store.
    Status {
        status: u16,
        retry_after: Option<RetryAfter>,
    },
    /// Sleep, then handle the request normally.
    Delay(Duration),
    /// Drop the connection without sending anything back.
    Reset,
    /// Handle the request, then answer 500.
    StoreThen500,
}

/// The `Retry-After` header a status fault sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: SECS`
    Seconds(u64),
    /// `Retry-After: <HTTP-date SECS from the moment of the answer>`
    DateIn(u64),
}

/// A `--fault` SPEC that does not parse. The messages quote the spec: it is test input typed
/// by a developer, never request data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    #[error(
        "fault `{0}` is not ENDPOINT:N=ACTION or ENDPOINT:N..=ACTION (e.g. patient_data:1=503)"
    )]
    Shape(String),
    #[error(
        "fault `{spec}`: unknown endpoint `{endpoint}` (heartbeat, patient_data, vaccine_dose_data or *)"
    )]
    Endpoint { spec: String, endpoint: String },
    #[error("fault `{spec}`: `{count}` is not a request count (N or N.., counted from 1)")]
    Count { spec: String, count: String },
    #[error(
        "fault `{spec}`: unknown action `{action}` (a 4xx/5xx status with optional \
         +retry-after=SECS or +retry-after-date=SECS, delay=DURATION, reset, store-then-500)"
    )]
    Action { spec: String, action: String },
    #[error("fault `{spec}`: status {status} is not an error status (400–599)")]
    Status { spec: String, status: String },
    #[error("fault `{spec}`: `{value}` is not a whole number of seconds")]
    RetryAfter { spec: String, value: String },
    #[error("fault `{spec}`: `{value}` is not a duration such as 500ms or 2s: {reason}")]
    Delay {
        spec: String,
        value: String,
        reason: String,
    },
}

impl Faults {
    pub fn new(rules: Vec<FaultRule>) -> Self {
        Self { rules }
    }

    /// A plan from `--fault` specs, in order.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, FaultSpecError> {
        specs
            .iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// What to do with the `n`th admitted request to `endpoint` (a route name such as
    /// `patient_data`): the first matching rule's action.
    pub(crate) fn action_for(&self, endpoint: &str, n: u32) -> Option<&FaultAction> {
        self.rules
            .iter()
            .find(|r| r.endpoint.matches(endpoint) && r.requests.contains(n))
            .map(|r| &r.action)
    }
}

impl FaultEndpoint {
    fn matches(self, endpoint: &str) -> bool {
        match self {
            FaultEndpoint::Any => true,
            other => other.name() == endpoint,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FaultEndpoint::Heartbeat => "heartbeat",
            FaultEndpoint::PatientData => "patient_data",
            FaultEndpoint::VaccineDoseData => "vaccine_dose_data",
            FaultEndpoint::Any => "*",
        }
    }
}

impl Requests {
    fn contains(self, n: u32) -> bool {
        match self {
            Requests::Nth(k) => n == k,
            Requests::From(k) => n >= k,
        }
    }
}

impl FromStr for FaultRule {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let shape = || FaultSpecError::Shape(spec.to_string());
        let (endpoint, rest) = spec.trim().split_once(':').ok_or_else(shape)?;
        // The count never holds `=`, the action may (`delay=2s`): split at the first one.
        let (count, action) = rest.split_once('=').ok_or_else(shape)?;
        let endpoint = match endpoint.trim().trim_start_matches('/') {
            "heartbeat" => FaultEndpoint::Heartbeat,
            "patient_data" => FaultEndpoint::PatientData,
            "vaccine_dose_data" => FaultEndpoint::VaccineDoseData,
            "*" => FaultEndpoint::Any,
            other => {
                return Err(FaultSpecError::Endpoint {
                    spec: spec.to_string(),
                    endpoint: other.to_string(),
                });
            }
        };
        let count_error = || FaultSpecError::Count {
            spec: spec.to_string(),
            count: count.to_string(),
        };
        let (digits, open) = match count.trim().strip_suffix("..") {
            Some(d) => (d, true),
            None => (count.trim(), false),
        };
        let n: u32 = digits.parse().map_err(|_| count_error())?;
        if n == 0 {
            return Err(count_error());
        }
        let requests = if open {
            Requests::From(n)
        } else {
            Requests::Nth(n)
        };
        Ok(FaultRule {
            endpoint,
            requests,
            action: parse_action(spec, action.trim())?,
        })
    }
}

fn parse_action(spec: &str, action: &str) -> Result<FaultAction, FaultSpecError> {
    match action {
        "reset" => return Ok(FaultAction::Reset),
        "store-then-500" => return Ok(FaultAction::StoreThen500),
        _ => {}
    }
    if let Some(value) = action.strip_prefix("delay=") {
        return humantime::parse_duration(value)
            .map(FaultAction::Delay)
            .map_err(|e| FaultSpecError::Delay {
                spec: spec.to_string(),
                value: value.to_string(),
                reason: e.to_string(),
            });
    }
    let (status, header) = match action.split_once('+') {
        Some((s, h)) => (s, Some(h)),
        None => (action, None),
    };
    if status.is_empty() || !status.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FaultSpecError::Action {
            spec: spec.to_string(),
            action: action.to_string(),
        });
    }
    let code = status
        .parse::<u16>()
        .ok()
        .filter(|c| (400..=599).contains(c))
        .ok_or_else(|| FaultSpecError::Status {
            spec: spec.to_string(),
            status: status.to_string(),
        })?;
    let retry_after = match header {
        None => None,
        Some(h) => {
            let (make, value): (fn(u64) -> RetryAfter, &str) =
                if let Some(v) = h.strip_prefix("retry-after=") {
                    (RetryAfter::Seconds, v)
                } else if let Some(v) = h.strip_prefix("retry-after-date=") {
                    (RetryAfter::DateIn, v)
                } else {
                    return Err(FaultSpecError::Action {
                        spec: spec.to_string(),
                        action: action.to_string(),
                    });
                };
            let secs = value
                .parse::<u64>()
                .map_err(|_| FaultSpecError::RetryAfter {
                    spec: spec.to_string(),
                    value: value.to_string(),
                })?;
            Some(make(secs))
        }
    };
    Ok(FaultAction::Status {
        status: code,
        retry_after,
    })
}

/// The spec form, so a plan logs as it was written (and parses back to itself).
impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, open) = match self.requests {
            Requests::Nth(n) => (n, ""),
            Requests::From(n) => (n, ".."),
        };
        write!(f, "{}:{n}{open}={}", self.endpoint.name(), self.action)
    }
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAction::Status {
                status,
                retry_after,
            } => {
                write!(f, "{status}")?;
                match retry_after {
                    Some(RetryAfter::Seconds(s)) => write!(f, "+retry-after={s}"),
                    Some(RetryAfter::DateIn(s)) => write!(f, "+retry-after-date={s}"),
                    None => Ok(()),
                }
            }
            FaultAction::Delay(d) => write!(f, "delay={}", humantime::format_duration(*d)),
            FaultAction::Reset => f.write_str("reset"),
            FaultAction::StoreThen500 => f.write_str("store-then-500"),
        }
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("none");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

/// How many requests reached each endpoint past auth, and how many auth refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub heartbeat: u32,
    pub patient_data: u32,
    pub vaccine_dose_data: u32,
    /// Requests to any endpoint refused with 401.
    pub unauthorized: u32,
}

/// The live counters behind [`RequestCounts`], shared by the request handlers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    heartbeat: AtomicU32,
    patient_data: AtomicU32,
    vaccine_dose_data: AtomicU32,
    unauthorized: AtomicU32,
}

impl Counters {
    /// Counts an admitted request and returns its 1-based number for its endpoint.
    pub(crate) fn admit(&self, endpoint: &str) -> u32 {
        let counter = match endpoint {
            "heartbeat" => &self.heartbeat,
            "patient_data" => &self.patient_data,
            _ => &self.vaccine_dose_data,
        };
        counter.fetch_add(1, Ordering::SeqCst).saturating_add(1)
    }

    pub(crate) fn refuse(&self) {
        self.unauthorized.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            heartbeat: self.heartbeat.load(Ordering::SeqCst),
            patient_data: self.patient_data.load(Ordering::SeqCst),
            vaccine_dose_data: self.vaccine_dose_data.load(Ordering::SeqCst),
            unauthorized: self.unauthorized.load(Ordering::SeqCst),
        }
    }
}

/// Marks a response that must not be sent: [`DropMarked`] turns it into a service error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// The error that makes hyper close the connection. hyper writes nothing for a request whose
/// service call failed, and ends the connection: to the client this is a connection closed
/// before the answer, as when a proxy or a crashed worker drops it.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped without an answer (fault injection)")]
pub(crate) struct ConnectionDropped;

/// Wraps the router, which cannot fail (axum's layers must answer), in a service that can:
/// the only way to have hyper drop a connection from inside a handler without a panic.
#[derive(Debug, Clone)]
pub(crate) struct DropMarked<S> {
    inner: S,
}

impl<S> DropMarked<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, R> tower_service::Service<R> for DropMarked<S>
where
    S: tower_service::Service<R, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = ConnectionDropped;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ConnectionDropped>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|never| match never {})
    }

    fn call(&mut self, request: R) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                Err(ConnectionDropped)
            } else {
                Ok(response)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(spec: &str) -> FaultRule {
        spec.parse()
            .unwrap_or_else(|e| panic!("{spec} should parse: {e}"))
    }

    fn error(spec: &str) -> FaultSpecError {
        spec.parse::<FaultRule>()
            .expect_err("the spec should be refused")
    }

    #[test]
    fn specs_parse_into_rules() {
        assert_eq!(
            rule("patient_data:2=503"),
            FaultRule {
                endpoint: FaultEndpoint::PatientData,
                requests: Requests::Nth(2),
                action: FaultAction::Status {
                    status: 503,
                    retry_after: None
                },
            }
        );
        assert_eq!(
            rule("*:1..=429+retry-after=3"),
            FaultRule {
                endpoint: FaultEndpoint::Any,
                requests: Requests::From(1),
                action: FaultAction::Status {
                    status: 429,
                    retry_after: Some(RetryAfter::Seconds(3))
                },
            }
        );
        assert_eq!(
            rule("heartbeat:1=503+retry-after-date=2").action,
            FaultAction::Status {
                status: 503,
                retry_after: Some(RetryAfter::DateIn(2))
            }
        );
        assert_eq!(
            rule("/vaccine_dose_data:3=delay=1500ms"),
            FaultRule {
                endpoint: FaultEndpoint::VaccineDoseData,
                requests: Requests::Nth(3),
                action: FaultAction::Delay(Duration::from_millis(1500)),
            }
        );
        assert_eq!(rule("heartbeat:1=reset").action, FaultAction::Reset);
        assert_eq!(
            rule("patient_data:1..=store-then-500").action,
            FaultAction::StoreThen500
        );
    }

    #[test]
    fn rules_print_as_their_spec() {
        for spec in [
            "patient_data:2=503",
            "*:1..=429+retry-after=3",
            "heartbeat:4=503+retry-after-date=2",
            "vaccine_dose_data:3..=delay=1s 500ms",
            "heartbeat:1=reset",
            "patient_data:1=store-then-500",
            "patient_data:1=400",
        ] {
            assert_eq!(rule(spec).to_string(), spec);
            assert_eq!(rule(&rule(spec).to_string()), rule(spec));
        }
        let plan = Faults::parse(&["heartbeat:1=503", "patient_data:2..=reset"]).expect("plan");
        assert_eq!(plan.to_string(), "heartbeat:1=503, patient_data:2..=reset");
        assert_eq!(Faults::default().to_string(), "none");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(matches!(error("patient_data"), FaultSpecError::Shape(_)));
        assert!(matches!(error("patient_data:1"), FaultSpecError::Shape(_)));
        assert!(matches!(
            error("patients:1=503"),
            FaultSpecError::Endpoint { .. }
        ));
        assert!(matches!(
            error("heartbeat:0=503"),
            FaultSpecError::Count { .. }
        ));
        assert!(matches!(
            error("heartbeat:x=503"),
            FaultSpecError::Count { .. }
        ));
        assert!(matches!(
            error("heartbeat:..2=503"),
            FaultSpecError::Count { .. }
        ));
        assert!(matches!(
            error("heartbeat:1=explode"),
            FaultSpecError::Action { .. }
        ));
        assert!(matches!(
            error("heartbeat:1="),
            FaultSpecError::Action { .. }
        ));
        assert!(matches!(
            error("heartbeat:1=200"),
            FaultSpecError::Status { .. }
        ));
        assert!(matches!(
            error("heartbeat:1=999"),
            FaultSpecError::Status { .. }
        ));
        assert!(matches!(
            error("heartbeat:1=503+retry-after=soon"),
            FaultSpecError::RetryAfter { .. }
        ));
        assert!(matches!(
            error("heartbeat:1=503+wait=1"),
            FaultSpecError::Action { .. }
        ));
        assert!(matches!(
            error("heartbeat:1=delay=forever"),
            FaultSpecError::Delay { .. }
        ));
        let message = error("patients:1=503").to_string();
        assert!(
            message.contains("patients") && message.contains("patient_data"),
            "{message}"
        );
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let plan = Faults::parse(&["patient_data:2=503", "*:2..=reset"]).expect("plan");
        assert_eq!(plan.action_for("patient_data", 1), None);
        assert_eq!(
            plan.action_for("patient_data", 2),
            Some(&FaultAction::Status {
                status: 503,
                retry_after: None
            })
        );
        assert_eq!(
            plan.action_for("patient_data", 3),
            Some(&FaultAction::Reset)
        );
        assert_eq!(plan.action_for("heartbeat", 1), None);
        assert_eq!(plan.action_for("heartbeat", 2), Some(&FaultAction::Reset));
        assert_eq!(Faults::default().action_for("heartbeat", 1), None);
    }

    #[test]
    fn counters_number_requests_per_endpoint() {
        let c = Counters::default();
        assert_eq!(c.admit("heartbeat"), 1);
        assert_eq!(c.admit("patient_data"), 1);
        assert_eq!(c.admit("heartbeat"), 2);
        c.refuse();
        assert_eq!(
            c.snapshot(),
            RequestCounts {
                heartbeat: 2,
                patient_data: 1,
                vaccine_dose_data: 0,
                unauthorized: 1
            }
        );
    }
}

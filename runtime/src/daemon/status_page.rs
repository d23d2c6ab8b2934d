//! `/status`: one page for the person who checks in the morning — each job's verdict (as
//! `reqsync status` gives it), the last runs, a chart of records sent and rejected per run over
//! the last 30 days, the open quarantine by finding code and the modules running.
//!
//! Run ids, times, counts, job names, error classes, finding codes and module hashes only: the
//! ledger holds patient numbers (quarantine keys), and none of them is shown. The page is plain
//! HTML with an inline SVG chart drawn here, no script: its Content-Security-Policy allows
//! nothing but its own inline styles. It is served on loopback without a login; on any other
//! address only behind HTTP basic authentication (`[daemon] status_username` and a password
//! from the environment, a file or the secret store), and refused without one.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::service::DaemonState;
use crate::config::Config;
use crate::ledger::{Ledger, QuarantineCount, RunRecord, RunTotals};
use crate::reqcheck::Secret;
use crate::status::{ProjectStatus, age_text, project_status, short_sha};

/// How far back the chart reaches.
const CHART_DAYS: i64 = 30;
/// How many runs the table lists.
const RECENT_RUNS: usize = 20;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// Who may see the page.
#[derive(Debug, Clone)]
pub enum Access {
    /// Loopback without a login configured: whoever can connect is on this machine.
    Open,
    /// Basic authentication with this user name and password.
    Login { username: String, password: Secret },
    /// Reachable from other hosts and no login configured: never served.
    Refused,
}

impl Access {
    /// The access for a listen address and the configured login.
    pub fn new(listen: SocketAddr, login: Option<(String, Secret)>) -> Self {
        match login {
            Some((username, password)) => Access::Login { username, password },
            None if listen.ip().is_loopback() => Access::Open,
            None => Access::Refused,
        }
    }

    /// Said at start-up when the page cannot be served where the daemon listens.
    pub fn warning(&self, listen: SocketAddr) -> Option<String> {
        matches!(self, Access::Refused).then(|| {
            format!(
                "/status is not served: the daemon listens on {listen}, reachable from other \
                 hosts, and the status page needs a login there; set `[daemon] status_username` \
                 and `status_password_env`, `status_password_file` or `status_password_secret`"
            )
        })
    }

    fn allows(&self, headers: &HeaderMap) -> bool {
        match self {
            Access::Open => true,
            Access::Refused => false,
            Access::Login { username, password } => headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .is_some_and(|given| {
                    let expected = format!("{username}:{}", password.expose());
                    // Constant time: the comparison must not tell how much of a guess was right.
                    aws_lc_rs::constant_time::verify_slices_are_equal(&given, expected.as_bytes())
                        .is_ok()
                }),
        }
    }
}

/// What the page is drawn from: the project's config (jobs, ledger, schedules) and who may
/// see it.
#[derive(Debug, Clone)]
pub struct StatusPage {
    config: Arc<Config>,
    access: Access,
}

impl StatusPage {
    pub fn new(config: Arc<Config>, access: Access) -> Self {
        Self { config, access }
    }
}

pub async fn handler(State(state): State<Arc<DaemonState>>, headers: HeaderMap) -> Response {
    let Some(page) = state.status_page() else {
        return (
            StatusCode::NOT_FOUND,
            "the status page is off (`[daemon] status_page = false`)\n",
        )
            .into_response();
    };
    match &page.access {
        Access::Refused => {
            return (
                StatusCode::FORBIDDEN,
                "the status page is not served on an address other hosts can reach without a \
                 login: set `[daemon] status_username` and its password\n",
            )
                .into_response();
        }
        access if !access.allows(&headers) => {
            tracing::debug!("status page: a request without a valid login");
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"reqsync status\", charset=\"UTF-8\"",
                )],
                "a login is needed\n",
            )
                .into_response();
        }
        _ => {}
    }
    let health = state.health();
    let config = Arc::clone(&page.config);
    // The ledger is SQLite: read it off the async workers.
    let built =
        tokio::task::spawn_blocking(move || PageData::read(&config, Utc::now(), health)).await;
    let html = match built {
        Ok(Ok(data)) => render(&data),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.to_string()),
    };
    match html {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "status page: cannot read the run ledger");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the run ledger; the daemon's log says why\n",
            )
                .into_response()
        }
    }
}

/// Everything the template shows, already reduced to words and numbers.
#[derive(Debug, Serialize)]
struct PageData {
    project: String,
    checked_at: String,
    daemon_started: String,
    running: Vec<String>,
    healthy: bool,
    max_age: String,
    jobs: Vec<JobRow>,
    runs: Vec<RunRow>,
    quarantine: Vec<QuarantineCount>,
    chart: Chart,
}

#[derive(Debug, Serialize)]
struct JobRow {
    job: String,
    ok: bool,
    last_run: String,
    last_complete: String,
    next_run: String,
    open_quarantine: i64,
    module: String,
    problems: Vec<String>,
}

#[derive(Debug, Serialize)]
struct RunRow {
    id: i64,
    kind: &'static str,
    status: &'static str,
    ok: bool,
    started: String,
    finished: String,
    sent: i64,
    rejected: i64,
    error_class: String,
}

impl PageData {
    fn read(
        config: &Config,
        now: DateTime<Utc>,
        health: super::service::Health,
    ) -> Result<Self, String> {
        let ledger = Ledger::open_existing(&config.state_dir).map_err(|e| e.to_string())?;
        let status = project_status(config, ledger.as_ref(), config.status_max_age, now)
            .map_err(|e| e.to_string())?;
        let (recent, totals, quarantine) = match &ledger {
            Some(ledger) => (
                ledger
                    .recent_runs(RECENT_RUNS, false)
                    .map_err(|e| e.to_string())?,
                ledger
                    .run_totals_since(now - Duration::days(CHART_DAYS))
                    .map_err(|e| e.to_string())?,
                ledger
                    .open_quarantine_by_code()
                    .map_err(|e| e.to_string())?,
            ),
            None => Default::default(),
        };
        Ok(PageData {
            project: config.path.display().to_string(),
            checked_at: time_text(now),
            daemon_started: time_text(health.started_at),
            running: health.running.clone(),
            healthy: status.healthy(),
            max_age: age_text(std::time::Duration::from_secs(status.max_age_seconds)),
            jobs: job_rows(&status, &health),
            runs: recent.iter().map(run_row).collect(),
            quarantine,
            chart: Chart::draw(&totals, now),
        })
    }
}

fn time_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn job_rows(status: &ProjectStatus, health: &super::service::Health) -> Vec<JobRow> {
    status
        .jobs
        .iter()
        .map(|j| {
            let o = &j.overview;
            let module = match health.jobs.get(&o.job).and_then(|h| h.module.as_ref()) {
                Some(m) => format!(
                    "{} {} ({}){}",
                    m.name,
                    m.version,
                    short_sha(&m.sha256),
                    if m.refused.is_some() {
                        "; a newer file on disk was refused"
                    } else {
                        ""
                    }
                ),
                None => j.module.sha256.as_deref().map_or_else(
                    || "unreadable".into(),
                    |s| format!("on disk {}", short_sha(s)),
                ),
            };
            JobRow {
                job: o.job.clone(),
                ok: j.problems.is_empty(),
                last_run: o.last_run.as_ref().map_or_else(
                    || "none".into(),
                    |r| {
                        format!(
                            "run {} {} at {}: sent {}, rejected {}",
                            r.run_id,
                            r.status,
                            time_text(r.finished_at.unwrap_or(r.started_at)),
                            r.sent,
                            r.rejected
                        )
                    },
                ),
                last_complete: j.last_complete_age_seconds.map_or_else(
                    || "never".into(),
                    |s| format!("{} ago", age_text(std::time::Duration::from_secs(s))),
                ),
                next_run: j.next_run.map_or_else(|| "not scheduled".into(), time_text),
                open_quarantine: o.open_quarantine,
                module,
                problems: j.problems.iter().map(|p| p.describe()).collect(),
            }
        })
        .collect()
}

fn run_row(run: &RunRecord) -> RunRow {
    RunRow {
        id: run.id,
        kind: run.kind.as_str(),
        status: run.status.as_str(),
        ok: run.status == crate::ledger::RunStatus::Complete,
        started: run.started_at.clone(),
        finished: run.finished_at.clone().unwrap_or_default(),
        sent: run.jobs.iter().map(|j| j.sent).sum(),
        rejected: run.jobs.iter().map(|j| j.rejected).sum(),
        error_class: run.error_class.clone().unwrap_or_default(),
    }
}

/// The chart as shapes with coordinates: two panels (sent above, rejected below, each on its
/// own scale: rejections are a few where sends are thousands), runs placed by time so that a
/// night without a run shows as a gap, failed runs marked under the axis.
#[derive(Debug, Default, Serialize)]
struct Chart {
    width: u32,
    height: u32,
    sent: Vec<Bar>,
    rejected: Vec<Bar>,
    failed: Vec<Mark>,
    ticks: Vec<Tick>,
    max_sent: i64,
    max_rejected: i64,
    /// Panel geometry, for the axes.
    left: f64,
    right: f64,
    sent_top: f64,
    sent_base: f64,
    rejected_top: f64,
    rejected_base: f64,
}

#[derive(Debug, Serialize)]
struct Bar {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    title: String,
}

#[derive(Debug, Serialize)]
struct Mark {
    x: f64,
    y: f64,
    title: String,
}

#[derive(Debug, Serialize)]
struct Tick {
    x: f64,
    label: String,
}

impl Chart {
    const WIDTH: f64 = 960.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const PANEL: f64 = 150.0;

    fn draw(runs: &[RunTotals], now: DateTime<Utc>) -> Chart {
        let start = now - Duration::days(CHART_DAYS);
        let span = (now - start).num_seconds() as f64;
        let plot = Self::WIDTH - Self::LEFT - Self::RIGHT;
        let x_of = |t: DateTime<Utc>| {
            Self::LEFT + ((t - start).num_seconds() as f64 / span).clamp(0.0, 1.0) * plot
        };
        // Bars as wide as the runs leave room for, between a hairline and a thumb.
        let w = (plot / (runs.len().max(1) as f64) * 0.7).clamp(2.0, 14.0);
        let (sent_top, sent_base) = (20.0, 20.0 + Self::PANEL);
        let (rejected_top, rejected_base) = (sent_base + 50.0, sent_base + 50.0 + Self::PANEL);
        let max_sent = runs.iter().map(|r| r.sent).max().unwrap_or(0);
        let max_rejected = runs.iter().map(|r| r.rejected).max().unwrap_or(0);
        let bar = |value: i64, max: i64, base: f64, r: &RunTotals, what: &str| {
            let h = if max > 0 {
                (value as f64 / max as f64 * Self::PANEL).max(if value > 0 { 1.0 } else { 0.0 })
            } else {
                0.0
            };
            Bar {
                x: round(x_of(r.started_at) - w / 2.0),
                y: round(base - h),
                w: round(w),
                h: round(h),
                title: format!(
                    "run {} ({}) {}: {value} {what}",
                    r.run_id,
                    time_text(r.started_at),
                    r.status
                ),
            }
        };
        let delivered = |r: &&RunTotals| r.status.delivered() || r.status.as_str() == "running";
        Chart {
            width: Self::WIDTH as u32,
            height: (rejected_base + 40.0) as u32,
            sent: runs
                .iter()
                .filter(|r| r.sent > 0)
                .map(|r| bar(r.sent, max_sent, sent_base, r, "records sent"))
                .collect(),
            rejected: runs
                .iter()
                .filter(|r| r.rejected > 0)
                .map(|r| bar(r.rejected, max_rejected, rejected_base, r, "rows rejected"))
                .collect(),
            failed: runs
                .iter()
                .filter(|r| !delivered(r))
                .map(|r| Mark {
                    x: round(x_of(r.started_at)),
                    y: sent_base + 12.0,
                    title: format!("run {} {}", r.run_id, r.status),
                })
                .collect(),
            ticks: (0..=CHART_DAYS)
                .step_by(5)
                .map(|d| {
                    let t = start + Duration::days(d);
                    Tick {
                        x: round(x_of(t)),
                        label: t.format("%m-%d").to_string(),
                    }
                })
                .collect(),
            max_sent,
            max_rejected,
            left: Self::LEFT,
            right: Self::WIDTH - Self::RIGHT,
            sent_top,
            sent_base,
            rejected_top,
            rejected_base,
        }
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn render(data: &PageData) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    // `.html`: every value is HTML-escaped unless the template says otherwise (it never does).
    env.add_template("status.html", include_str!("status_page.html"))
        .map_err(|e| e.to_string())?;
    env.get_template("status.html")
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(data))))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{RunKind, RunStatus};

    fn totals(id: i64, days_ago: i64, status: RunStatus, sent: i64, rejected: i64) -> RunTotals {
        RunTotals {
            run_id: id,
            kind: RunKind::Sync,
            status,
            started_at: now() - Duration::days(days_ago),
            sent,
            rejected,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_chart_places_runs_by_time_scales_each_panel_and_marks_failures() {
        let runs = [
            totals(1, 20, RunStatus::Complete, 1000, 0),
            totals(2, 10, RunStatus::Failed, 0, 0),
            totals(3, 1, RunStatus::Complete, 500, 4),
        ];
        let chart = Chart::draw(&runs, now());
        assert_eq!(chart.sent.len(), 2);
        assert_eq!(chart.rejected.len(), 1);
        assert_eq!(chart.failed.len(), 1);
        assert!(chart.failed[0].title.contains("run 2 failed"));
        // The largest send fills its panel, half of it half.
        assert_eq!(chart.sent[0].h, Chart::PANEL);
        assert_eq!(chart.sent[1].h, Chart::PANEL / 2.0);
        assert_eq!(chart.rejected[0].h, Chart::PANEL);
        // Later runs further right.
        assert!(chart.sent[0].x < chart.failed[0].x && chart.failed[0].x < chart.sent[1].x);
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let mut data = PageData {
            project: "<script>alert(1)</script>".into(),
            checked_at: String::new(),
            daemon_started: String::new(),
            running: vec![],
            healthy: true,
            max_age: "1 d".into(),
            jobs: vec![],
            runs: vec![],
            quarantine: vec![],
            chart: Chart::draw(&[], now()),
        };
        data.quarantine.push(QuarantineCount {
            job: "<b>".into(),
            code: "x\"y".into(),
            entries: 1,
        });
        let html = render(&data).unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn basic_authentication_accepts_only_the_configured_login() {
        let access = Access::Login {
            username: "it".into(),
            password: Secret::new("s3cret"),
        };
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(access.allows(&with(&format!("Basic {}", encode("it:s3cret")))));
        assert!(!access.allows(&with(&format!("Basic {}", encode("it:s3cre")))));
        assert!(!access.allows(&with(&format!("Basic {}", encode("other:s3cret")))));
        assert!(!access.allows(&with("Bearer x")));
        assert!(!access.allows(&HeaderMap::new()));
    }

    #[test]
    fn the_page_is_open_on_loopback_only_without_a_login() {
        let loopback = "127.0.0.1:9464".parse().unwrap();
        let exposed: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert!(matches!(Access::new(loopback, None), Access::Open));
        assert!(matches!(Access::new(exposed, None), Access::Refused));
        assert!(Access::new(exposed, None).warning(exposed).is_some());
        assert!(matches!(
            Access::new(exposed, Some(("it".into(), Secret::new("p")))),
            Access::Login { .. }
        ));
    }
}

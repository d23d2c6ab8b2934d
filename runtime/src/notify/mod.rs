//! `[notify]`: telling someone when unattended syncs go wrong, and when they recover.
//!
//! Events are found in the run ledger, not passed in by whoever ran the sync: a run started by
//! the daemon, by Task Scheduler or by hand is noticed the same way, and so is a run that
//! crashed (the next run finds it `interrupted`). Each round ([`Notifier::check`]) looks at the
//! runs finished since the last round, the newest complete run and the open quarantine
//! ([`event::decide`]), records the notices in the ledger's outbox in the same transaction,
//! then delivers the outbox: a few attempts with backoff now, and what is still undelivered
//! at the next run or daemon tick (for up to [`GIVE_UP_AFTER`]).
//!
//! A notice that cannot be delivered is a warning in the log and nothing more: it never fails
//! the run or changes its exit code. Notices hold counts, run ids, error classes and job names
//! only; secrets (the SMTP login, a webhook URL with a token) are read when sending and never
//! logged.

pub mod email;
pub mod event;
pub mod render;
pub mod settings;
pub mod webhook;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::config::Config;
use crate::ledger::{Ledger, LedgerError, NewNotification, RunId};
use crate::reqcheck::RetryPolicy;
use crate::reqcheck::credentials::CredentialsError;
pub use event::{Notice, Origin, UnrecordedFailure};
pub use settings::{EventKind, NotifyConfig, WebhookFormat};
use webhook::WebhookUrlError;

/// A notice still undelivered this long after it was recorded is dropped (with a warning):
/// by then it is old news, and the ledger should not grow without bound for a dead channel.
pub(crate) const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(3);

/// How long a process holds an outbox row it is delivering: past every attempt's timeout and
/// backoff, so that a process that died mid-delivery does not keep the notice from others for
/// long.
const CLAIM: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Why one delivery attempt failed. Messages hold no secret and no row value: a webhook URL is
/// never quoted, reqwest's errors are stripped of it.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("webhook URL {0}")]
    Url(#[from] WebhookUrlError),
    #[error("CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("e-mail: {0}")]
    Email(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("webhook: {0}")]
    Http(String),
    #[error("webhook answered HTTP {0}")]
    Status(u16),
}

/// A configured channel.
#[derive(Debug, Clone)]
enum Channel<'a> {
    Email(&'a settings::EmailConfig),
    Webhook(usize, &'a settings::WebhookConfig),
}

impl Channel<'_> {
    /// The outbox's name of the channel.
    fn key(&self) -> String {
        match self {
            Channel::Email(_) => "email".into(),
            Channel::Webhook(i, _) => format!("webhook-{}", i + 1),
        }
    }

    /// How the log names it: the SMTP host, or the webhook's number and format — never its
    /// URL.
    fn label(&self) -> String {
        match self {
            Channel::Email(e) => format!("e-mail via {}:{}", e.host, e.port),
            Channel::Webhook(i, w) => format!("webhook {} ({})", i + 1, w.format.as_str()),
        }
    }

    async fn send(&self, notice: &Notice) -> Result<(), DeliveryError> {
        match self {
            Channel::Email(e) => email::send(e, notice).await,
            Channel::Webhook(_, w) => webhook::send(w, notice).await,
        }
    }
}

/// What one channel answered to `reqsync notify test`.
#[derive(Debug)]
pub struct TestResult {
    pub channel: String,
    pub result: Result<(), DeliveryError>,
}

/// Notifications of one project: its `[notify]`, its ledger, who it is.
#[derive(Debug)]
pub struct Notifier {
    config: NotifyConfig,
    state_dir: PathBuf,
    origin: Origin,
    retry: RetryPolicy,
    /// One round at a time in this process (the daemon's tick and its runs); across processes
    /// the ledger's write transaction keeps detection single.
    gate: tokio::sync::Mutex<()>,
}

impl Notifier {
    /// `None` when the config has no `[notify]`.
    pub fn new(config: &Config) -> Option<Self> {
        let notify = config.notify.clone()?;
        Some(Self {
            config: notify,
            state_dir: config.state_dir.clone(),
            origin: Origin {
                host: gethostname::gethostname().to_string_lossy().into_owned(),
                // Absolute: "reqsync.toml" alone does not say which installation is talking.
                config: std::path::absolute(&config.path)
                    .unwrap_or_else(|_| config.path.clone())
                    .display()
                    .to_string(),
            },
            retry: RetryPolicy {
                max_attempts: 3,
                max_elapsed: Duration::from_secs(60),
                initial_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(10),
            },
            gate: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    fn channels(&self) -> Vec<Channel<'_>> {
        let mut channels = Vec::new();
        if let Some(e) = &self.config.email {
            channels.push(Channel::Email(e));
        }
        channels.extend(
            self.config
                .webhooks
                .iter()
                .enumerate()
                .map(|(i, w)| Channel::Webhook(i, w)),
        );
        channels
    }

    /// Sets up the notification state before a run, so that the run is looked at afterwards
    /// (runs before notifications were set up are not); returns the newest run id, for
    /// [`Self::after_run`]. Errors are logged: notifications never stop a run.
    pub fn prepare(&self) -> Option<RunId> {
        let ledger = self.ledger().ok()?;
        if let Err(e) = ledger.notify_init(Utc::now()) {
            tracing::warn!(error = %e, "notifications: cannot set up their state in the run ledger");
        }
        newest_run(&ledger)
    }

    /// After a run, whatever its outcome: a round of detection and delivery. `failure` is the
    /// class of a run that failed; it is notified as such only when the run never reached the
    /// ledger (the newest run id is still `before`), as the ledger's record says more.
    pub async fn after_run(&self, before: Option<RunId>, failure: Option<&'static str>) {
        let unrecorded = match (failure, self.ledger()) {
            (Some(class), Ok(ledger)) if newest_run(&ledger) == before => {
                Some(UnrecordedFailure { class })
            }
            _ => None,
        };
        self.round(unrecorded).await;
    }

    /// A round of detection and delivery (the daemon's periodic check).
    pub async fn check(&self) {
        self.round(None).await;
    }

    async fn round(&self, unrecorded: Option<UnrecordedFailure>) {
        let _gate = self.gate.lock().await;
        let Ok(ledger) = self.ledger() else { return };
        let now = Utc::now();
        let keys: Vec<String> = self.channels().iter().map(Channel::key).collect();
        let mut found = Vec::new();
        let recorded = ledger.notify_round(now, &keys, |snapshot| {
            let (state, notices) =
                event::decide(&self.config, &self.origin, snapshot, unrecorded, now);
            found = notices.iter().map(|n| n.event.as_str()).collect();
            let rows = notices
                .iter()
                .map(|n| NewNotification {
                    event: n.event.as_str().to_string(),
                    run_id: n.run_id,
                    notice: serde_json::to_string(n).unwrap_or_default(),
                })
                .collect();
            (state, rows)
        });
        match recorded {
            Ok(_) if !found.is_empty() => {
                tracing::info!(events = %found.join(","), "notifications: events recorded")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "notifications: cannot record events"),
        }
        self.deliver(&ledger).await;
    }

    /// Delivers the outbox: each notice a few times with backoff; a channel that still fails
    /// is left for the next round (its later notices too).
    async fn deliver(&self, ledger: &Ledger) {
        let pending = match ledger.notifications_pending() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: cannot read the outbox");
                return;
            }
        };
        let channels = self.channels();
        let mut down: HashSet<String> = HashSet::new();
        let mut rng = StdRng::from_os_rng();
        for row in pending {
            let now = Utc::now();
            let Some(channel) = channels.iter().find(|c| c.key() == row.channel) else {
                let _ = ledger.notification_given_up(row.id, now, "channel no longer configured");
                continue;
            };
            if down.contains(&row.channel) {
                continue;
            }
            if now - row.created_at > GIVE_UP_AFTER {
                tracing::warn!(
                    channel = %channel.label(),
                    event = %row.event,
                    attempts = row.attempts,
                    "notifications: giving up on a notice never delivered"
                );
                let _ = ledger.notification_given_up(row.id, now, "undelivered for 3 days");
                continue;
            }
            let Ok(notice) = serde_json::from_str::<Notice>(&row.notice) else {
                let _ = ledger.notification_given_up(row.id, now, "unreadable notice");
                continue;
            };
            // Long enough for every attempt of this round to time out.
            let until = now + CLAIM;
            if !ledger
                .notification_claim(row.id, now, until)
                .unwrap_or(false)
            {
                continue;
            }
            let mut failed = 0;
            loop {
                match channel.send(&notice).await {
                    Ok(()) => {
                        let _ = ledger.notification_attempted(row.id, Utc::now(), None);
                        tracing::info!(channel = %channel.label(), event = %row.event, "notification sent");
                        break;
                    }
                    Err(e) => {
                        failed += 1;
                        let text = e.to_string();
                        let _ = ledger.notification_attempted(row.id, Utc::now(), Some(&text));
                        if failed >= self.retry.max_attempts {
                            tracing::warn!(
                                channel = %channel.label(),
                                event = %row.event,
                                attempts = row.attempts + i64::from(failed),
                                error = %text,
                                "notification not delivered; it is retried at the next run or \
                                 daemon check"
                            );
                            down.insert(row.channel.clone());
                            break;
                        }
                        tokio::time::sleep(self.retry.jittered(failed, &mut rng)).await;
                    }
                }
            }
        }
    }

    /// `reqsync notify test`: a test notice straight to every channel (not through the
    /// outbox), and what each answered.
    pub async fn send_test(&self) -> Vec<TestResult> {
        let notice = self.origin.notice(
            EventKind::Test,
            "reqsync: test notification".into(),
            Utc::now(),
        );
        let mut results = Vec::new();
        for channel in self.channels() {
            results.push(TestResult {
                channel: channel.label(),
                result: channel.send(&notice).await,
            });
        }
        results
    }

    fn ledger(&self) -> Result<Ledger, LedgerError> {
        Ledger::open(&self.state_dir).inspect_err(|e| {
            tracing::warn!(error = %e, "notifications: cannot open the run ledger");
        })
    }
}

fn newest_run(ledger: &Ledger) -> Option<RunId> {
    ledger
        .recent_runs(1, false)
        .ok()
        .and_then(|runs| runs.first().map(|r| r.id))
}

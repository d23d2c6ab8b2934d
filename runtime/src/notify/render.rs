//! A notice as an e-mail's text, and as the JSON, Microsoft Teams and Slack webhook bodies.
//! Everything here comes from the [`Notice`]: counts, run ids, classes and job names.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::event::Notice;
use super::settings::WebhookFormat;

/// The plain-text body of an e-mail (and the text of the chat messages).
pub fn text(notice: &Notice) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", notice.title);
    let _ = writeln!(out);
    for (name, value) in facts(notice) {
        let _ = writeln!(out, "{name}: {value}");
    }
    if !notice.jobs.is_empty() {
        let _ = writeln!(out);
        for line in job_lines(notice) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(q) = &notice.quarantine {
        let _ = writeln!(out);
        for (job, n) in &q.by_job {
            let _ = writeln!(out, "  {job}: {n} open");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", next_step(notice));
    out
}

/// Name/value pairs: the header of the e-mail and the Teams card's fact set.
fn facts(notice: &Notice) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Host", notice.host.clone()),
        ("Config", notice.config.clone()),
        ("Event", notice.event.as_str().to_string()),
        (
            "At",
            notice.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ];
    if let Some(id) = notice.run_id {
        facts.push(("Run", id.to_string()));
    }
    if let Some(kind) = &notice.run_kind {
        facts.push(("Kind", kind.clone()));
    }
    if let Some(status) = &notice.status {
        facts.push(("Status", status.clone()));
    }
    if let Some(class) = &notice.error_class {
        facts.push(("Error class", class.clone()));
    }
    if let Some(q) = &notice.quarantine {
        facts.push(("Open quarantine", q.open.to_string()));
        facts.push(("Threshold", q.threshold.to_string()));
    }
    if let Some(s) = &notice.stale {
        facts.push(("Hours without a complete run", s.hours.to_string()));
        facts.push(("stale_after", s.stale_after.clone()));
        if let Some(id) = s.last_complete_run {
            facts.push(("Last complete run", id.to_string()));
        }
    }
    if let Some(r) = &notice.recovered {
        facts.push(("Failed runs before", r.failed_runs.to_string()));
        if let Some(class) = &r.previous_class {
            facts.push(("Previous error class", class.clone()));
        }
    }
    facts
}

fn job_lines(notice: &Notice) -> Vec<String> {
    notice
        .jobs
        .iter()
        .map(|j| {
            let mut line = format!(
                "{}: {}, read {}, emitted {}, rejected {}, sent {}, acknowledged {}",
                j.job, j.status, j.read, j.emitted, j.rejected, j.sent, j.acknowledged
            );
            if j.partial_failures > 0 {
                let _ = write!(
                    line,
                    ", {} import(s) with {} record error(s)",
                    j.partial_failures, j.record_errors
                );
            }
            line
        })
        .collect()
}

fn next_step(notice: &Notice) -> String {
    let history = match notice.run_id {
        Some(id) => format!("`reqsync history --run {id}`"),
        None => "`reqsync history`".to_string(),
    };
    format!(
        "Counts, run ids, classes and job names only. Details on {}: {history}, \
         `reqsync quarantine list`, and the run's log.",
        notice.host
    )
}

/// The body a webhook of `format` receives.
pub(crate) fn webhook_body(notice: &Notice, format: WebhookFormat) -> Value {
    match format {
        WebhookFormat::Json => {
            let mut value = serde_json::to_value(notice).unwrap_or_else(|_| json!({}));
            if let Some(map) = value.as_object_mut() {
                map.insert("text".into(), Value::String(text(notice)));
            }
            value
        }
        WebhookFormat::Teams => teams(notice),
        WebhookFormat::Slack => slack(notice),
    }
}

/// A Teams message carrying an Adaptive Card: what Teams' "Workflows" incoming webhooks take
/// (and the older Office 365 connectors accept too).
fn teams(notice: &Notice) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": notice.title, "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({
            "type": "FactSet",
            "facts": facts(notice)
                .into_iter()
                .map(|(title, value)| json!({"title": title, "value": value}))
                .collect::<Vec<_>>(),
        }),
    ];
    let lines = job_lines(notice);
    if !lines.is_empty() {
        body.push(json!({"type": "TextBlock", "text": lines.join("\n\n"), "wrap": true}));
    }
    if let Some(q) = &notice.quarantine {
        let text = q
            .by_job
            .iter()
            .map(|(job, n)| format!("{job}: {n} open"))
            .collect::<Vec<_>>()
            .join("\n\n");
        body.push(json!({"type": "TextBlock", "text": text, "wrap": true}));
    }
    body.push(
        json!({"type": "TextBlock", "text": next_step(notice), "wrap": true, "isSubtle": true}),
    );
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

/// A Slack incoming-webhook message: `text` (the notification line) and a section with the
/// details (Slack caps a section at 3000 characters).
fn slack(notice: &Notice) -> Value {
    let mut details = text(notice);
    if details.len() > 2900 {
        let mut end = 2900;
        while !details.is_char_boundary(end) {
            end -= 1;
        }
        details.truncate(end);
        details.push('…');
    }
    json!({
        "text": notice.title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("```{details}```")}},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::{JobLine, Origin};
    use crate::notify::settings::EventKind;

    fn notice() -> Notice {
        let mut n = Origin {
            host: "clinic-host".into(),
            config: "/srv/reqsync/reqsync.toml".into(),
        }
        .notice(
            EventKind::PartialFailure,
            "reqsync: run 7 partly failed".into(),
            chrono::Utc::now(),
        );
        n.run_id = Some(7);
        n.error_class = Some("partial_failure".into());
        n.jobs = vec![JobLine {
            job: "vaccine-doses".into(),
            status: "partial".into(),
            read: 10,
            emitted: 10,
            rejected: 0,
            sent: 10,
            acknowledged: 10,
            partial_failures: 1,
            record_errors: 2,
        }];
        n
    }

    #[test]
    fn every_shape_carries_the_title_run_and_counts() {
        let n = notice();
        let text = text(&n);
        assert!(text.starts_with("reqsync: run 7 partly failed\n"), "{text}");
        assert!(text.contains("Run: 7"), "{text}");
        assert!(
            text.contains("1 import(s) with 2 record error(s)"),
            "{text}"
        );
        assert!(text.contains("`reqsync history --run 7`"), "{text}");

        let json = webhook_body(&n, WebhookFormat::Json);
        assert_eq!(json["event"], "partial-failure");
        assert_eq!(json["jobs"][0]["record_errors"], 2);
        assert_eq!(json["text"], text);

        let teams = webhook_body(&n, WebhookFormat::Teams);
        let card = &teams["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["body"][0]["text"], n.title);

        let slack = webhook_body(&n, WebhookFormat::Slack);
        assert_eq!(slack["text"], n.title);
        assert!(
            slack["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("Run: 7")
        );
    }
}

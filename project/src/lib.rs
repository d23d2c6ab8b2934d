//! A complete project folder, as `reqsync init` writes it: config, queries, templates, and the
//! default transform modules with their example cases.

use std::path::{Path, PathBuf};

/// The default modules, built from `transforms/` by build.rs. They are written out as files;
/// runs load modules from the files the config names.
pub const PATIENTS_WASM: &[u8] = include_bytes!(env!("REQSYNC_PATIENTS_WASM"));
pub const VACCINE_DOSES_WASM: &[u8] = include_bytes!(env!("REQSYNC_VACCINE_DOSES_WASM"));

/// Every file of a new project except the config: path inside the folder, contents.
pub const FILES: &[(&str, &[u8])] = &[
    (
        "queries/patients.sql",
        include_bytes!("../../queries/patients.sql"),
    ),
    (
        "queries/vaccine_doses.sql",
        include_bytes!("../../queries/vaccine_doses.sql"),
    ),
    (
        "templates/patient_data.json.j2",
        include_bytes!("../../templates/patient_data.json.j2"),
    ),
    (
        "templates/vaccine_dose_data.json.j2",
        include_bytes!("../../templates/vaccine_dose_data.json.j2"),
    ),
    ("transforms/patients.wasm", PATIENTS_WASM),
    ("transforms/vaccine-doses.wasm", VACCINE_DOSES_WASM),
    (
        "transforms/patients.examples.json",
        include_bytes!("../../transforms/patients/examples.json"),
    ),
    (
        "transforms/vaccine-doses.examples.json",
        include_bytes!("../../transforms/vaccine-doses/examples.json"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{} already exist(s): {} (use --force to overwrite)", .0.len(), .0.join(", "))]
    Exists(Vec<String>),
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

/// The config of a new project.
pub fn config_text(source: &str, reqcheck_url: &str) -> String {
    use reqsync_runtime::config::{self as c, duration_text};
    // As TOML strings: a Windows path in a URL (`sqlite://C:\proj\clinic.db`) holds
    // backslashes, which a plain "…" would turn into escape sequences.
    let source = toml_string(source);
    let reqcheck_url = toml_string(reqcheck_url);
    // The defaults the file states, from where they are defined.
    let (username_env, password_env) = (c::DEFAULT_USERNAME_ENV, c::DEFAULT_PASSWORD_ENV);
    let timeout = toml_string(&duration_text(
        reqsync_runtime::reqcheck::client::DEFAULT_TIMEOUT,
    ));
    let requests_in_flight = c::DEFAULT_REQUESTS_IN_FLIGHT;
    let clinic_time_zone = toml_string(c::DEFAULT_CLINIC_TIME_ZONE);
    let look_back = toml_string(c::DEFAULT_LOOK_BACK);
    let state_dir = toml_string(c::DEFAULT_STATE_DIR);
    let on_partial_failure = toml_string(c::PartialFailurePolicy::default().as_str());
    let batch_size = c::DEFAULT_BATCH_SIZE;
    let group_by_column = toml_string(c::DEFAULT_GROUP_BY_COLUMN);
    let listen = toml_string(c::DEFAULT_DAEMON_LISTEN);
    let max_age = toml_string(&duration_text(reqsync_runtime::status::DEFAULT_MAX_AGE));
    format!(
        r#"# reqsync configuration; every key is described in docs/CONFIG.md.
# Secrets never go here: the ReqCheck username and password come from the environment
# ({username_env}, {password_env}), from files (username_file, password_file), or from
# the secret store (`reqsync secret set reqcheck`, then password_secret = "reqcheck").

[reqcheck]
url = {reqcheck_url}
# username_env = "{username_env}"
# password_env = "{password_env}"
# password_secret = "reqcheck"
# timeout = {timeout}
# Requests awaiting ReqCheck's answer at once (1 = one at a time).
# requests_in_flight = {requests_in_flight}
# The HTTP proxy to ReqCheck: by default HTTPS_PROXY or the system's; "none" connects directly.
# Its credentials, if it wants them, come from proxy_username_env / proxy_password_env (or _file).
# proxy = "http://proxy.example:3128"

[source]
url = {source}

[sync]
clinic_time_zone = {clinic_time_zone}
# Re-read this much before ReqCheck's last import, for rows committed late in the source.
look_back = {look_back}
# Window start when ReqCheck has no import yet; without it the first run reads everything.
# initial_start = "2016-01-01T00:00:00"
# The run ledger, run reports and quarantine (see README, "The run ledger").
# state_dir = {state_dir}
# "fail" (exit 7, next run re-sends) or "accept" when ReqCheck answers partial_failure.
# on_partial_failure = {on_partial_failure}

# Patients run first whatever the order here: ReqCheck invents placeholder patients for doses
# of patients it does not have.
[[jobs]]
name = "patients"
query = "queries/patients.sql"
transform = "transforms/patients.wasm"
template = "templates/patient_data.json.j2"
# When `reqsync daemon` runs the job: cron, in clinic_time_zone (02:00 daily here). Give both
# jobs the same schedule: they then run as one run, patients first. `reqsync run` ignores it.
# schedule = "0 2 * * *"
batch_size = {batch_size}

[[jobs]]
name = "vaccine-doses"
query = "queries/vaccine_doses.sql"
transform = "transforms/vaccine-doses.wasm"
template = "templates/vaccine_dose_data.json.j2"
# schedule = "0 2 * * *"
# A patient's doses always go in one request, even if that exceeds the batch size.
batch_size = {batch_size}
group_by_column = {group_by_column}

# `reqsync daemon` only: where it serves /healthz, /metrics and the /status page (loopback
# unless you mean it; elsewhere the page needs status_username and status_password_secret).
# [daemon]
# listen = {listen}

# `reqsync status`, the /status page and notices call a job stale when its last complete run
# is older than this.
# [status]
# max_age = {max_age}

# Tell someone when a run fails, the quarantine grows or no run completes (see `[notify]` in
# docs/CONFIG.md); `reqsync notify test` sends a test notice. The SMTP password and a webhook
# URL come from the environment, a file or the secret store, never from this file.
# [notify]
# [notify.email]
# host = "smtp.clinic.example"
# from = "reqsync@clinic.example"
# to = ["it-oncall@clinic.example"]
# username_env = "SMTP_USERNAME"
# password_secret = "smtp"
# [[notify.webhook]]
# url_secret = "teams-hook"
# format = "teams"
"#
    )
}

/// `text` as a TOML string literal: single-quoted (no escapes at all) when it can be, else a
/// basic string with TOML's escapes.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Writes a project into `dir`. Without `force`, refuses to overwrite any file.
pub fn write_project(
    dir: &Path,
    source: &str,
    reqcheck_url: &str,
    force: bool,
) -> Result<(), ProjectError> {
    let config = config_text(source, reqcheck_url);
    let all: Vec<(&str, &[u8])> = std::iter::once(("reqsync.toml", config.as_bytes()))
        .chain(FILES.iter().copied())
        .collect();
    if !force {
        let existing: Vec<String> = all
            .iter()
            .map(|(p, _)| dir.join(p))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(ProjectError::Exists(existing));
        }
    }
    for (path, bytes) in all {
        let path = dir.join(path);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes)
        };
        write().map_err(|e| ProjectError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commented `[status]` and `[notify]` examples of a new config, uncommented as a user
    /// would, load: an example that no longer parses would be a trap for the first user.
    #[test]
    fn the_commented_status_and_notify_examples_load_once_uncommented() {
        let text = config_text("sqlite://clinic.db", "https://reqcheck.example.org");
        let start = text.find("# [status]").expect("a [status] example");
        let (head, examples) = text.split_at(start);
        let uncommented: String = examples
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(toml) if toml.starts_with('[') || toml.contains(" = ") => toml,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = reqsync_runtime::config::Config::parse(
            Path::new("/srv/clinic/reqsync.toml"),
            &format!("{head}{uncommented}\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.status_max_age,
            reqsync_runtime::status::DEFAULT_MAX_AGE
        );
        let notify = config.notify.expect("[notify]");
        assert!(notify.email.is_some());
        assert_eq!(notify.webhooks.len(), 1);
    }

    /// The defaults a new config states, in comments or written out, are the code's: stating
    /// them all, or leaving them all out, loads the config as written.
    #[test]
    fn the_defaults_a_new_config_states_are_the_defaults() {
        let text = config_text("sqlite://clinic.db", "https://reqcheck.example.org");
        let parse = |text: &str| {
            let config =
                reqsync_runtime::config::Config::parse(Path::new("/srv/clinic/reqsync.toml"), text)
                    .unwrap_or_else(|e| panic!("{e}\n{text}"));
            format!("{config:?}")
        };
        let commented = [
            "# username_env = ",
            "# password_env = ",
            "# timeout = ",
            "# requests_in_flight = ",
            "# state_dir = ",
            "# on_partial_failure = ",
            "# [daemon]",
            "# listen = ",
            "# [status]",
            "# max_age = ",
        ];
        // The `[notify]` example that closes the file is an example, not a default.
        let (head, notify) = text.split_at(text.find("\n# [notify]\n").expect("[notify]"));
        let stated = commented.iter().fold(head.to_string(), |t, line| {
            assert_eq!(t.matches(line).count(), 1, "{line}");
            t.replace(line, &line[2..])
        }) + notify;
        let written = ["clinic_time_zone = ", "look_back = ", "batch_size = "];
        let left_out: String = text
            .lines()
            .filter(|line| !written.iter().any(|key| line.starts_with(key)))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(left_out.lines().count(), text.lines().count() - 4);
        let as_written = parse(&text);
        assert!(parse(&stated) == as_written, "{stated}");
        assert!(parse(&left_out) == as_written, "{left_out}");
    }

    /// `reqsync init C:\proj --source sqlite://C:\proj\clinic.db` on Windows: the backslashes
    /// must reach the config as they were typed, not as TOML escapes (which fail to parse).
    #[test]
    fn windows_paths_in_the_source_url_survive_the_config_file() {
        for source in [
            r"sqlite://C:\proj\clinic.db",
            r#"sqlite://C:\it's "quoted"\clinic.db"#,
            "sqlite://clinic.db",
        ] {
            let text = config_text(source, "https://reqcheck.example.org");
            let config = reqsync_runtime::config::Config::parse(Path::new("reqsync.toml"), &text)
                .unwrap_or_else(|e| panic!("{source}: {e}"));
            assert_eq!(config.source_url, source);
            assert_eq!(config.reqcheck.url, "https://reqcheck.example.org");
        }
    }

    /// A new project is one edit from a service: uncommenting the schedule and `[daemon]` lines
    /// the config carries gives both jobs the same valid schedule and the daemon its address.
    #[test]
    fn the_commented_schedule_and_daemon_lines_work_once_uncommented() {
        let text = config_text("sqlite://clinic.db", "https://reqcheck.example.org");
        let parse =
            |text: &str| reqsync_runtime::config::Config::parse(Path::new("reqsync.toml"), text);
        let plain = parse(&text).expect("the config as written");
        assert!(plain.jobs.iter().all(|j| j.schedule.is_none()));
        let uncommented = ["# schedule = ", "# [daemon]", "# listen = "]
            .iter()
            .fold(text.clone(), |t, line| t.replace(line, &line[2..]));
        assert_eq!(
            uncommented.matches("\nschedule = ").count(),
            2,
            "{uncommented}"
        );
        let service = parse(&uncommented).expect("the config uncommented");
        let schedules: Vec<_> = service.jobs.iter().map(|j| j.schedule.as_ref()).collect();
        assert_eq!(schedules.len(), 2);
        assert!(
            schedules[0].is_some() && schedules[0] == schedules[1],
            "{schedules:?}"
        );
        assert_eq!(service.daemon.listen.to_string(), "127.0.0.1:9464");
    }
}

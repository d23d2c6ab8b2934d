//! `reqsync schedule`: one sync a night from Windows Task Scheduler, for clinics that would
//! rather not run a service (the 2016 extractor ran that way). `install` registers a task that
//! runs `reqsync run` at a set time; `show` prints the same task as XML for an administrator to
//! review or import by hand (`schtasks /Create /XML`); `uninstall` removes it.
//!
//! A scheduled task has no console, so the task's command line sends the log to files. Task
//! Scheduler shows reqsync's exit code as the task's "Last Run Result" (0x0 success, 0x3
//! configuration, 0x6 delivery, …; the table is in `reqsync --help` and docs/INSTALL.md).
//!
//! On Linux the same job is the `reqsync-sync.timer` systemd unit; `show` works everywhere.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime};
use clap::{Args, Subcommand};

use super::exit::{self, Failure};

/// The task's name unless `--name` says otherwise.
pub const DEFAULT_TASK: &str = "reqsync-sync";

/// Task Scheduler ends a run that takes longer than this (the process is killed; the next run
/// picks up where it stopped, from the run ledger). Far beyond a real night's sync.
const EXECUTION_TIME_LIMIT: &str = "PT4H";

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub action: ScheduleAction,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleAction {
    /// Register a Windows task that runs one sync a day (run as an administrator).
    Install(TaskArgs),
    /// Print the task as Task Scheduler XML (what `install` registers), for review or for
    /// `schtasks /Create /TN reqsync-sync /XML <file>`.
    Show(TaskArgs),
    /// Remove the task.
    Uninstall(TaskName),
}

#[derive(Debug, Args)]
pub struct TaskName {
    /// The task's name in Task Scheduler.
    #[arg(long, default_value = DEFAULT_TASK)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(flatten)]
    pub name: TaskName,
    /// The config the task runs (default: %ProgramData%\reqsync\reqsync.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Local time of the daily run, HH:MM (24-hour clock).
    #[arg(long, default_value = "02:00", value_parser = parse_time)]
    pub at: NaiveTime,
    /// Where the task's runs write their log, a file a day (default: %ProgramData%\reqsync\logs).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// The account the task runs as: `NETWORK SERVICE` (the default: no password, no rights
    /// beyond what is granted, reaches SQL Server with Windows authentication as the machine's
    /// domain account), `LOCAL SERVICE`, `SYSTEM`, or a user (`DOMAIN\user`; schtasks then asks
    /// for its password, which Windows stores).
    #[arg(long, default_value = "NETWORK SERVICE")]
    pub account: String,
}

fn parse_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| format!("`{text}` is not a time of day as HH:MM (e.g. 02:00)"))
}

/// A task to register: what runs, when, as whom.
#[derive(Debug)]
pub struct Task {
    pub name: String,
    pub exe: PathBuf,
    pub config: PathBuf,
    pub log_dir: PathBuf,
    /// The config's folder: relative paths in the config resolve from there anyway; this is
    /// for anything a user adds that does not.
    pub working_dir: PathBuf,
    pub at: NaiveTime,
    /// The first day the trigger counts from (any past day will do; today reads best).
    pub from: NaiveDate,
    pub account: String,
}

impl Task {
    fn from_args(args: TaskArgs) -> Result<Self, Failure> {
        let base = reqsync_runtime::native_path::program_data_dir();
        let absolute = |p: PathBuf| {
            let p = reqsync_runtime::native_path::native(&p);
            std::path::absolute(&p).unwrap_or(p)
        };
        let exe = std::env::current_exe().map_err(|e| {
            Failure::new(
                exit::INTERNAL,
                anyhow::anyhow!("cannot find reqsync's own path: {e}"),
            )
        })?;
        let config = absolute(args.config.unwrap_or_else(|| base.join("reqsync.toml")));
        Ok(Self {
            name: args.name.name,
            exe,
            working_dir: config.parent().map(Path::to_path_buf).unwrap_or_default(),
            config,
            log_dir: absolute(args.log_dir.unwrap_or_else(|| base.join("logs"))),
            at: args.at,
            from: chrono::Local::now().date_naive(),
            account: args.account,
        })
    }

    /// The task in Task Scheduler's XML schema (version 1.2: Windows Server 2008 R2 and later).
    pub fn xml(&self) -> String {
        let (user_id, logon_type) =
            match reqsync_runtime::windows_accounts::service_account_sid(&self.account) {
                Some(sid) => (sid.to_string(), "ServiceAccount"),
                None => (self.account.clone(), "Password"),
            };
        let arguments = [
            OsString::from("--log-dir"),
            self.log_dir.clone().into_os_string(),
            OsString::from("run"),
            OsString::from("--config"),
            self.config.clone().into_os_string(),
        ]
        .iter()
        .map(|a| quote_argument(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
        format!(
            r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>{description}</Description>
    <URI>\{name}</URI>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>{from}T{at}</StartBoundary>
      <Enabled>true</Enabled>
      <ScheduleByDay>
        <DaysInterval>1</DaysInterval>
      </ScheduleByDay>
    </CalendarTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{user_id}</UserId>
      <LogonType>{logon_type}</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <ExecutionTimeLimit>{limit}</ExecutionTimeLimit>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{exe}</Command>
      <Arguments>{arguments}</Arguments>
      <WorkingDirectory>{working_dir}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"#,
            description = xml_text(
                "reqsync: one sync a day (reqsync run). Last Run Result is reqsync's exit \
                 code: 0 success, 3 configuration, 4 source database, 5 transform module, \
                 6 delivery, 7 partial failure, 9 another run in progress (reqsync --help)."
            ),
            name = xml_text(&self.name),
            from = self.from.format("%Y-%m-%d"),
            at = self.at.format("%H:%M:%S"),
            user_id = xml_text(&user_id),
            limit = EXECUTION_TIME_LIMIT,
            exe = xml_text(&self.exe.display().to_string()),
            arguments = xml_text(&arguments),
            working_dir = xml_text(&self.working_dir.display().to_string()),
        )
    }
}

/// `text` safe inside an XML element.
fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// One argument of a Windows command line, quoted the way the C runtime (and Rust's std)
/// splits it back: quotes around anything with a space, tab or quote; backslashes doubled only
/// where they precede a quote.
fn quote_argument(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '"']) {
        return arg.to_string();
    }
    let mut out = String::from('"');
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            c => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    out
}

pub fn run(args: ScheduleArgs) -> Result<u8, Failure> {
    match args.action {
        ScheduleAction::Show(args) => {
            print!("{}", Task::from_args(args)?.xml());
            Ok(exit::OK)
        }
        ScheduleAction::Install(args) => install(Task::from_args(args)?),
        ScheduleAction::Uninstall(TaskName { name }) => uninstall(&name),
    }
}

#[cfg(not(windows))]
fn install(_task: Task) -> Result<u8, Failure> {
    Err(not_windows())
}

#[cfg(not(windows))]
fn uninstall(_name: &str) -> Result<u8, Failure> {
    Err(not_windows())
}

#[cfg(not(windows))]
fn not_windows() -> Failure {
    Failure::new(
        exit::USAGE,
        anyhow::anyhow!(
            "`reqsync schedule install|uninstall` registers a Windows task; on Linux enable \
             the reqsync-sync.timer systemd unit the .deb installs (docs/INSTALL.md)"
        ),
    )
}

#[cfg(windows)]
fn install(task: Task) -> Result<u8, Failure> {
    use std::io::Write;
    // A task that cannot load its config fails every night; say so while someone is watching.
    reqsync_runtime::config::Config::load(&task.config).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            anyhow::Error::new(e).context("the task would fail: its configuration does not load"),
        )
    })?;
    // schtasks reads the XML from a file, in UTF-16 (the encoding its declaration names).
    let mut file = tempfile::Builder::new()
        .prefix("reqsync-task")
        .suffix(".xml")
        .tempfile()
        .map_err(|e| {
            Failure::new(
                exit::INTERNAL,
                anyhow::anyhow!("cannot write the task file: {e}"),
            )
        })?;
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(task.xml().encode_utf16().flat_map(u16::to_le_bytes));
    file.write_all(&bytes)
        .and_then(|()| file.flush())
        .map_err(|e| {
            Failure::new(
                exit::INTERNAL,
                anyhow::anyhow!("cannot write the task file: {e}"),
            )
        })?;
    // Closed before schtasks reads it (still deleted when dropped): schtasks opens the file
    // without sharing write access, and fails with "could not open file" while we hold it.
    let path = file.into_temp_path();
    let mut command = std::process::Command::new("schtasks");
    command
        .args(["/Create", "/F", "/TN", &task.name, "/XML"])
        .arg(&path);
    if reqsync_runtime::windows_accounts::service_account_sid(&task.account).is_none() {
        // The password is asked for by schtasks itself, never put on a command line.
        command.args(["/RU", &task.account, "/RP", "*"]);
    }
    schtasks(command, "cannot register the task")?;
    println!(
        "registered the task `{}`: `reqsync run` every day at {} as {}\n  config: {}\n  logs:   {}\n\
         Task Scheduler shows each run's exit code as its Last Run Result (docs/INSTALL.md).",
        task.name,
        task.at.format("%H:%M"),
        task.account,
        task.config.display(),
        task.log_dir.display(),
    );
    Ok(exit::OK)
}

#[cfg(windows)]
fn uninstall(name: &str) -> Result<u8, Failure> {
    let mut command = std::process::Command::new("schtasks");
    command.args(["/Delete", "/F", "/TN", name]);
    schtasks(command, "cannot remove the task")?;
    println!("removed the task `{name}`");
    Ok(exit::OK)
}

/// Runs schtasks, whose own message (printed to the console) says what went wrong.
#[cfg(windows)]
fn schtasks(mut command: std::process::Command, what: &str) -> Result<(), Failure> {
    let status = command.status().map_err(|e| {
        Failure::new(
            exit::INTERNAL,
            anyhow::anyhow!("{what}: cannot run schtasks: {e}"),
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(
            exit::CONFIG,
            anyhow::anyhow!(
                "{what}: schtasks failed ({status}; registering a task needs a console run as \
                 administrator)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(account: &str) -> Task {
        Task {
            name: "reqsync-sync".into(),
            exe: PathBuf::from(r"C:\Program Files\reqsync\reqsync.exe"),
            config: PathBuf::from(r"C:\ProgramData\reqsync\reqsync.toml"),
            log_dir: PathBuf::from(r"C:\ProgramData\reqsync\logs"),
            working_dir: PathBuf::from(r"C:\ProgramData\reqsync"),
            at: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            from: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            account: account.into(),
        }
    }

    #[test]
    fn the_task_runs_one_sync_a_day_at_the_given_time_with_its_log_in_files() {
        let xml = task("NETWORK SERVICE").xml();
        assert!(
            xml.contains("<StartBoundary>2026-12-07T02:00:00</StartBoundary>"),
            "{xml}"
        );
        assert!(xml.contains("<DaysInterval>1</DaysInterval>"), "{xml}");
        assert!(
            xml.contains(r#"<Command>C:\Program Files\reqsync\reqsync.exe</Command>"#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<Arguments>--log-dir C:\ProgramData\reqsync\logs run --config C:\ProgramData\reqsync\reqsync.toml</Arguments>"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r"<WorkingDirectory>C:\ProgramData\reqsync</WorkingDirectory>"));
        // Two runs never overlap (reqsync's run lock would refuse the second anyway).
        assert!(xml.contains("<MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>"));
        // A machine that was off at 02:00 runs the missed sync when it comes back.
        assert!(xml.contains("<StartWhenAvailable>true</StartWhenAvailable>"));
    }

    #[test]
    fn builtin_accounts_are_named_by_sid_and_need_no_password() {
        for (account, sid) in [
            ("NETWORK SERVICE", "S-1-5-20"),
            (r"NT AUTHORITY\NetworkService", "S-1-5-20"),
            ("LOCAL SERVICE", "S-1-5-19"),
            ("SYSTEM", "S-1-5-18"),
        ] {
            let xml = task(account).xml();
            assert!(
                xml.contains(&format!("<UserId>{sid}</UserId>")),
                "{account}: {xml}"
            );
            assert!(
                xml.contains("<LogonType>ServiceAccount</LogonType>"),
                "{xml}"
            );
        }
        let xml = task(r"CLINIC\svc-reqsync").xml();
        assert!(
            xml.contains(r"<UserId>CLINIC\svc-reqsync</UserId>"),
            "{xml}"
        );
        assert!(xml.contains("<LogonType>Password</LogonType>"), "{xml}");
    }

    #[test]
    fn paths_with_markup_characters_or_quotes_cannot_break_the_task_xml() {
        let mut t = task("SYSTEM");
        t.config = PathBuf::from(r#"C:\R&D <clinic>\"x"\reqsync.toml"#);
        let xml = t.xml();
        assert!(!xml.contains("R&D"), "{xml}");
        assert!(xml.contains("R&amp;D &lt;clinic&gt;"), "{xml}");
        assert_eq!(xml.matches("<Arguments>").count(), 1);
    }

    #[test]
    fn arguments_are_quoted_as_windows_splits_them() {
        assert_eq!(quote_argument(r"C:\plain\path"), r"C:\plain\path");
        assert_eq!(
            quote_argument(r"C:\Program Files\x"),
            r#""C:\Program Files\x""#
        );
        // A trailing backslash must not escape the closing quote.
        assert_eq!(quote_argument(r"C:\with space\"), r#""C:\with space\\""#);
        assert_eq!(quote_argument(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quote_argument(r#"a\"b"#), r#""a\\\"b""#);
        assert_eq!(quote_argument(""), r#""""#);
    }

    #[test]
    fn times_of_day_are_hours_and_minutes() {
        assert_eq!(
            parse_time("02:00").unwrap(),
            NaiveTime::from_hms_opt(2, 0, 0).unwrap()
        );
        assert_eq!(
            parse_time("23:59").unwrap(),
            NaiveTime::from_hms_opt(23, 59, 0).unwrap()
        );
        for bad in ["2am", "24:00", "2:0:0", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}

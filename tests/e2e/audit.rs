//! The audit trail: `reqsync audit verify` on intact and altered files, and `reqsync run`
//! opening the trail named by the config before it sends anything.

use std::path::Path;
use std::process::{Command, Output};

use reqsync_runtime::audit::AuditWriter;
use serde_json::{Map, json};

use crate::support::{PASSWORD, USER, World};

fn reqsync(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    cmd.env_remove("REQSYNC_LOG");
    run_in(cmd, dir, args)
}

fn run_in(mut cmd: Command, dir: &Path, args: &[&str]) -> Output {
    cmd.args(args)
        .current_dir(dir)
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .output()
        .expect("run reqsync")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A trail of `n` entries written by the library's writer.
fn trail(dir: &Path, n: u64) -> std::path::PathBuf {
    let path = dir.join("audit.jsonl");
    let w = AuditWriter::open(&path).expect("open trail");
    for i in 1..=n {
        let mut fields = Map::new();
        fields.insert("event".into(), json!("run_finished"));
        fields.insert("records".into(), json!(i));
        w.append("INFO", fields).expect("append");
    }
    path
}

/// `reqsync audit verify … | head -1`, `reqsync seed … | head -1`: the reader has closed the
/// pipe before reqsync prints. The command ends quietly (exit 0), never with a panic and a
/// backtrace.
#[test]
fn printing_into_a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().expect("dir");
    trail(dir.path(), 4);
    for args in [
        &["audit", "verify", "audit.jsonl"][..],
        &["audit", "verify", "audit.jsonl", "--json"][..],
        &["seed", "--db", "sqlite://clinic.db", "--kcmo"][..],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reqsync"));
        cmd.env_remove("REQSYNC_LOG").stdout(writer);
        let out = run_in(cmd, dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

/// Every other command finds its files through `--config`; so does `audit verify` when no file
/// is named: the trail the config's `[audit] file` names.
#[test]
fn verify_without_a_file_checks_the_trail_of_the_config() {
    let dir = tempfile::tempdir().expect("dir");
    let out = reqsync(dir.path(), &["init", "proj"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let state = dir.path().join("proj/.reqsync");
    std::fs::create_dir_all(&state).expect("state dir");
    let written = trail(&state, 3);
    assert_eq!(written, state.join("audit.jsonl"));

    let out = reqsync(
        dir.path(),
        &["audit", "verify", "--config", "proj/reqsync.toml"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("3 entries, chain intact"), "{stdout}");
    // The default config, as for every command: reqsync.toml in the working folder.
    let out = reqsync(&dir.path().join("proj"), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("3 entries, chain intact"));
    // A file and a config at once is ambiguous.
    let out = reqsync(
        dir.path(),
        &[
            "audit",
            "verify",
            "x.jsonl",
            "--config",
            "proj/reqsync.toml",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn verify_accepts_an_intact_trail_and_prints_its_last_hash() {
    let dir = tempfile::tempdir().expect("dir");
    let path = trail(dir.path(), 4);
    let last_hash = reqsync_runtime::audit::read_entries(&path).expect("entries")[3]["hash"]
        .as_str()
        .expect("hash")
        .to_string();
    let out = reqsync(dir.path(), &["audit", "verify", "audit.jsonl"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("4 entries, chain intact"), "{stdout}");
    assert!(stdout.contains(&last_hash), "{stdout}");

    let out = reqsync(dir.path(), &["audit", "verify", "audit.jsonl", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (v["intact"].clone(), v["entries"].clone()),
        (json!(true), json!(4))
    );
    assert_eq!(v["last"]["hash"], last_hash.as_str());
}

#[test]
fn verify_exits_8_naming_the_first_altered_line() {
    let dir = tempfile::tempdir().expect("dir");
    let path = trail(dir.path(), 5);
    let original = std::fs::read_to_string(&path).expect("read");
    let edited = original.replace("\"records\":3", "\"records\":33");
    assert_ne!(edited, original);
    std::fs::write(&path, edited).expect("write");

    let out = reqsync(dir.path(), &["audit", "verify", "audit.jsonl"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("line 3") && stderr.contains("edited"),
        "{stderr}"
    );

    // A deleted line: the next line is out of place.
    let mut lines: Vec<&str> = original.lines().collect();
    lines.remove(1);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let out = reqsync(dir.path(), &["audit", "verify", "audit.jsonl", "--json"]);
    assert_eq!(out.status.code(), Some(8));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (v["intact"].clone(), v["line"].clone()),
        (json!(false), json!(2))
    );
}

#[test]
fn verify_exits_3_when_the_file_cannot_be_read() {
    let dir = tempfile::tempdir().expect("dir");
    let out = reqsync(dir.path(), &["audit", "verify", "missing.jsonl"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("missing.jsonl"));
}

/// `reqsync run` creates the trail beside the config (readable by its owner only) and records
/// its audit events there as an intact chain, even with the log showing only warnings.
#[tokio::test(flavor = "multi_thread")]
async fn run_records_into_the_trail_beside_the_config_whatever_the_log_level() {
    let world = World::kcmo().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    cmd.env("REQSYNC_LOG", "warn");
    let out = run_in(cmd, world.dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let path = world.path(".reqsync/audit.jsonl");
    assert!(path.exists(), "no audit trail at {}", path.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let entries = reqsync_runtime::audit::read_entries(&path).expect("an intact chain");
    assert!(!entries.is_empty(), "the run recorded no audit event");
    assert!(
        entries.iter().all(|e| e["event"].is_string()),
        "{entries:?}"
    );
}

/// A trail that cannot be opened is a configuration error, reported before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn run_exits_3_before_sending_when_the_trail_cannot_be_opened() {
    let world = World::kcmo().await;
    // A folder cannot be created below a file.
    let config = world.path("reqsync.toml");
    let mut text_ = std::fs::read_to_string(&config).expect("config");
    text_.push_str("\n[audit]\nfile = \"clinic.db/audit.jsonl\"\n");
    std::fs::write(&config, text_).expect("config");
    let out = reqsync(world.dir.path(), &["run"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("audit.jsonl") && stderr.contains("[audit] file"),
        "{stderr}"
    );
    assert!(world.dump().data_imports.is_empty());
}

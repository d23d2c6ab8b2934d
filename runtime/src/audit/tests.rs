use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::chain::{self, Malformed};
use super::*;

fn trail() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("audit.jsonl");
    (dir, path)
}

fn fields(i: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("event".into(), json!("run_started"));
    m.insert("job".into(), json!("patients"));
    m.insert("records".into(), json!(i));
    m
}

/// A trail of `n` entries; returns its lines.
fn write(path: &Path, n: u64) -> Vec<String> {
    let w = AuditWriter::open(path).unwrap();
    for i in 1..=n {
        w.append("INFO", fields(i)).unwrap();
    }
    lines(path)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn verify_lines(lines: &[String]) -> Verdict {
    verify_bytes(format!("{}\n", lines.join("\n")).as_bytes())
}

fn broken_at(v: Verdict) -> (u64, Problem) {
    match v {
        Verdict::Broken { at, .. } => (at.line, at.problem),
        Verdict::Intact(s) => panic!("intact: {s:?}"),
    }
}

// --- the chain ---

#[test]
fn a_chain_of_n_entries_verifies() {
    let (_d, path) = trail();
    let w = AuditWriter::open(&path).unwrap();
    let mut last = Link::genesis();
    for i in 1..=20 {
        last = w.append("INFO", fields(i)).unwrap();
    }
    let Verdict::Intact(s) = verify_file(&path).unwrap() else {
        panic!("broken")
    };
    assert_eq!(s.entries, 20);
    assert_eq!(s.first.as_ref().map(|f| f.seq), Some(1));
    let l = s.last.unwrap();
    assert_eq!((l.seq, l.hash), (20, last.hash));
    assert_eq!(l.event.as_deref(), Some("run_started"));
}

#[test]
fn an_entry_holds_the_event_fields_and_the_writer_fields() {
    let (_d, path) = trail();
    write(&path, 2);
    let entries = read_entries(&path).unwrap();
    let e = &entries[1];
    assert_eq!(e["event"], "run_started");
    assert_eq!(e["records"], 2);
    assert_eq!(e["seq"], 2);
    assert_eq!(e["level"], "INFO");
    assert_eq!(e["pid"], std::process::id());
    assert_eq!(e["prev"], entries[0]["hash"]);
    assert_eq!(entries[0]["prev"], GENESIS);
    assert!(!e["user"].as_str().unwrap().is_empty());
    assert!(!e["host"].as_str().unwrap().is_empty());
    // UTC, RFC 3339, milliseconds.
    let ts = e["ts"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-01-02T03:04:05.678Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(ts).is_ok());
}

#[test]
fn an_empty_trail_is_intact() {
    assert_eq!(
        verify_bytes(b""),
        Verdict::Intact(Summary {
            entries: 0,
            first: None,
            last: None
        })
    );
}

// --- each kind of tampering, found at the right line ---

#[test]
fn an_edited_value_is_found_on_its_line() {
    let (_d, path) = trail();
    let mut l = write(&path, 5);
    assert!(l[2].contains("\"records\":3"));
    l[2] = l[2].replace("\"records\":3", "\"records\":30");
    assert_eq!(broken_at(verify_lines(&l)), (3, Problem::Hash));
}

#[test]
fn a_deleted_line_is_found_where_it_was() {
    let (_d, path) = trail();
    let mut l = write(&path, 5);
    l.remove(2);
    assert_eq!(
        broken_at(verify_lines(&l)),
        (
            3,
            Problem::Seq {
                expected: 3,
                found: 4
            }
        )
    );
}

#[test]
fn swapped_lines_are_found_at_the_first() {
    let (_d, path) = trail();
    let mut l = write(&path, 5);
    l.swap(2, 3);
    assert_eq!(
        broken_at(verify_lines(&l)),
        (
            3,
            Problem::Seq {
                expected: 3,
                found: 4
            }
        )
    );
}

/// A forged entry with a correct `seq` and a hash recomputed over its content still cannot
/// name the hash of the entry before it without matching it.
#[test]
fn an_inserted_line_with_a_recomputed_hash_but_wrong_prev_is_found() {
    let (_d, path) = trail();
    let mut l = write(&path, 5);
    let wrong_prev = "ab".repeat(32);
    let mut forged: BTreeMap<String, Value> = BTreeMap::new();
    forged.insert("event".into(), json!("run_started"));
    forged.insert("seq".into(), json!(3));
    forged.insert("prev".into(), json!(wrong_prev));
    let (line, _) = chain::seal(&forged, &wrong_prev);
    assert!(
        chain::unseal(&line).unwrap().hash_matches,
        "a well-formed forgery"
    );
    l.insert(2, line);
    assert_eq!(broken_at(verify_lines(&l)), (3, Problem::Prev));
}

/// Chained correctly to the line before it, the forgery breaks the line after it instead.
#[test]
fn an_inserted_line_chained_to_its_predecessor_breaks_the_next_line() {
    let (_d, path) = trail();
    let mut l = write(&path, 5);
    let prev = chain::unseal(&l[1]).unwrap().hash;
    let mut forged: BTreeMap<String, Value> = BTreeMap::new();
    forged.insert("event".into(), json!("run_started"));
    forged.insert("seq".into(), json!(3));
    forged.insert("prev".into(), json!(prev));
    let (line, _) = chain::seal(&forged, &prev);
    l.insert(2, line);
    assert_eq!(
        broken_at(verify_lines(&l)),
        (
            4,
            Problem::Seq {
                expected: 4,
                found: 3
            }
        )
    );
}

#[test]
fn a_line_cut_mid_way_is_found() {
    let (_d, path) = trail();
    let mut l = write(&path, 5);
    let half = l[1].len() / 2;
    l[1].truncate(half);
    assert!(matches!(
        broken_at(verify_lines(&l)),
        (2, Problem::Malformed(Malformed::NotJson(_)))
    ));
}

#[test]
fn a_file_cut_mid_way_through_its_last_line_is_found() {
    let (_d, path) = trail();
    write(&path, 5);
    let bytes = std::fs::read(&path).unwrap();
    let cut = &bytes[..bytes.len() - 20];
    assert_eq!(broken_at(verify_bytes(cut)), (5, Problem::Incomplete));
}

#[test]
fn an_empty_line_is_found() {
    let (_d, path) = trail();
    let mut l = write(&path, 3);
    l.insert(1, String::new());
    assert_eq!(broken_at(verify_lines(&l)), (2, Problem::EmptyLine));
}

/// The documented limit: whole lines cut off the end leave a consistent, shorter chain. Only
/// the last hash recorded elsewhere shows it.
#[test]
fn whole_lines_cut_off_the_end_are_not_detectable() {
    let (_d, path) = trail();
    let mut l = write(&path, 5);
    let recorded = chain::unseal(&l[4]).unwrap().hash;
    l.truncate(3);
    let Verdict::Intact(s) = verify_lines(&l) else {
        panic!("broken")
    };
    assert_eq!(s.entries, 3);
    assert_ne!(s.last.unwrap().hash, recorded);
}

// --- the writer ---

#[test]
fn the_writer_refuses_to_extend_a_broken_tail() {
    let (_d, path) = trail();
    write(&path, 3);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = AuditWriter::open(&path).unwrap_err();
    assert!(matches!(err, AuditError::BrokenTail { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("reqsync audit verify"),
        "{msg}"
    );

    // An edited last line is refused too, and nothing is appended.
    std::fs::write(&path, &bytes).unwrap();
    let w = AuditWriter::open(&path).unwrap();
    let edited = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("\"records\":3", "\"records\":4");
    std::fs::write(&path, &edited).unwrap();
    assert!(matches!(
        w.append("INFO", fields(4)),
        Err(AuditError::BrokenTail { .. })
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
}

/// A failed append is reported, and the next one, once the cause is gone, chains on.
#[test]
fn after_a_failed_append_the_next_one_chains_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = state.join("audit.jsonl");
    let w = AuditWriter::open(&path).unwrap();
    w.append("INFO", fields(1)).unwrap();
    std::fs::rename(&state, dir.path().join("away")).unwrap();
    let err = w.append("INFO", fields(2)).unwrap_err();
    assert!(matches!(err, AuditError::Open { .. }), "{err}");
    std::fs::rename(dir.path().join("away"), &state).unwrap();
    assert_eq!(w.append("INFO", fields(3)).unwrap().seq, 2);
    assert!(matches!(verify_file(&path).unwrap(), Verdict::Intact(s) if s.entries == 2));
}

#[cfg(unix)]
#[test]
fn the_trail_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, path) = trail();
    write(&path, 1);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn two_threads_appending_keep_one_chain() {
    let (_d, path) = trail();
    AuditWriter::open(&path).unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                // A writer each: two handles on the file, as two processes would have.
                let w = AuditWriter::open(&path).unwrap();
                for i in 0..25 {
                    w.append("INFO", fields(i)).unwrap();
                }
            });
        }
    });
    assert!(matches!(verify_file(&path).unwrap(), Verdict::Intact(s) if s.entries == 50));
}

const CHILD_FILE: &str = "REQSYNC_AUDIT_TEST_CHILD_FILE";
const CHILD_ENTRIES: u64 = 40;

/// Run by [`two_processes_appending_keep_one_chain`] in child processes; does nothing
/// otherwise.
#[test]
#[ignore = "a child process of two_processes_appending_keep_one_chain"]
fn child_process_appender() {
    let Ok(path) = std::env::var(CHILD_FILE) else {
        return;
    };
    let w = AuditWriter::open(Path::new(&path)).unwrap();
    for i in 0..CHILD_ENTRIES {
        w.append("INFO", fields(i)).unwrap();
    }
}

#[test]
fn two_processes_appending_keep_one_chain() {
    let (_d, path) = trail();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "audit::tests::child_process_appender",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_FILE, &path)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let entries = read_entries(&path).unwrap();
    assert_eq!(entries.len() as u64, 2 * CHILD_ENTRIES);
    let pids: std::collections::BTreeSet<_> = entries.iter().map(|e| e["pid"].as_u64()).collect();
    assert_eq!(pids.len(), 2, "both processes wrote");
}

// --- the layer ---

/// A writer for the layer tests, and the entries it has recorded.
fn layer_trail() -> (tempfile::TempDir, Arc<AuditWriter>) {
    let (d, path) = trail();
    (d, Arc::new(AuditWriter::open(&path).unwrap()))
}

#[test]
fn every_audit_event_becomes_an_entry_with_all_its_fields() {
    let (_d, w) = layer_trail();
    tracing::subscriber::with_default(subscriber(w.clone()), || {
        let path = Path::new("transforms/patients.wasm");
        tracing::info!(
            target: "reqsync::audit",
            event = "run_started",
            job = "patients",
            records = 12,
            offset = -3,
            ratio = 0.25,
            full = true,
            path = %path.display(),
            kind = ?Some("x"),
            "a run started"
        );
        tracing::warn!(target: "reqsync::audit", event = "module_swap", result = "refused");
        tracing::error!(target: "reqsync::audit", event = "run_failed");
    });
    let e = read_entries(w.path()).unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0]["event"], "run_started");
    assert_eq!(e[0]["job"], "patients");
    assert_eq!(e[0]["records"], 12);
    assert_eq!(e[0]["offset"], -3);
    assert_eq!(e[0]["ratio"], 0.25);
    assert_eq!(e[0]["full"], true);
    assert_eq!(e[0]["path"], "transforms/patients.wasm");
    assert_eq!(e[0]["kind"], "Some(\"x\")");
    assert_eq!(e[0]["message"], "a run started");
    assert_eq!(e[0]["level"], "INFO");
    assert_eq!(
        (e[1]["level"].as_str(), e[2]["level"].as_str()),
        (Some("WARN"), Some("ERROR"))
    );
}

#[test]
fn debug_events_and_other_targets_are_not_audited() {
    let (_d, w) = layer_trail();
    // With the log at `-vv` (trace), debug events reach the subscriber: the audit filter, not
    // the global level hint, must turn them away.
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(EnvFilter::new("trace")),
        )
        .with(AuditLayer::to(w.clone()).filtered());
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(target: "reqsync::audit", event = "too_chatty");
        tracing::trace!(target: "reqsync::audit", event = "too_chatty");
        tracing::info!(target: "reqsync::pipeline", event = "not_audit");
        tracing::info!(target: "reqsync::audit::writer", event = "not_audit");
        tracing::error!(event = "not_audit");
        tracing::info_span!(target: "reqsync::audit", "a_span").in_scope(|| {});
        tracing::info!(target: "reqsync::audit", event = "audited");
    });
    let e = read_entries(w.path()).unwrap();
    let events: Vec<_> = e.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["audited"]);
}

/// A `Write` for the stderr log under test.
#[derive(Clone, Default)]
struct Printed(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Printed {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn audit_events_are_recorded_when_the_log_shows_only_warnings() {
    let (_d, w) = layer_trail();
    let printed = Printed::default();
    let log = printed.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || log.clone())
                .with_filter(EnvFilter::new("warn")),
        )
        .with(AuditLayer::to(w.clone()).filtered());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "reqsync::audit", event = "run_started", records = 1);
    });
    assert_eq!(read_entries(w.path()).unwrap().len(), 1);
    assert!(printed.0.lock().unwrap().is_empty(), "the log stayed quiet");
}

#[test]
fn event_fields_cannot_forge_the_writer_fields() {
    let (_d, w) = layer_trail();
    tracing::subscriber::with_default(subscriber(w.clone()), || {
        tracing::info!(target: "reqsync::audit", event = "x", seq = 99, hash = "forged", user = "root");
    });
    let e = &read_entries(w.path()).unwrap()[0];
    assert_eq!(e["seq"], 1);
    assert_eq!(e["field_seq"], 99);
    assert_eq!(e["field_hash"], "forged");
    assert_eq!(e["field_user"], "root");
    assert_ne!(e["user"], "root");
}

/// The one test that uses the process-wide sink (`open`), so parallel tests do not see it.
#[test]
fn the_installed_layer_writes_to_the_opened_file_and_drops_events_otherwise() {
    let (_d, path) = trail();
    let sub = || tracing_subscriber::registry().with(layer());
    tracing::subscriber::with_default(sub(), || {
        tracing::info!(target: "reqsync::audit", event = "before_open");
    });
    open(&path).unwrap();
    assert_eq!(current_path().as_deref(), Some(path.as_path()));
    tracing::subscriber::with_default(sub(), || {
        tracing::info!(target: "reqsync::audit", event = "while_open");
    });
    close();
    tracing::subscriber::with_default(sub(), || {
        tracing::info!(target: "reqsync::audit", event = "after_close");
    });
    let e = read_entries(&path).unwrap();
    let events: Vec<_> = e.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["while_open"]);
}

#[test]
fn open_names_the_path_when_it_cannot_create_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "").unwrap();
    let path = file.join("audit.jsonl");
    let err = AuditWriter::open(&path).unwrap_err();
    assert!(matches!(err, AuditError::Open { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_capture_collects_the_entries_of_code_run_under_it() {
    let capture = AuditCapture::new().unwrap();
    tracing::dispatcher::with_default(&capture.dispatch(), || {
        tracing::info!(target: "reqsync::audit", event = "run_started", records = 12);
    });
    let e = capture.entries().unwrap();
    assert_eq!((e.len(), &e[0]["records"]), (1, &json!(12)));
    let path = capture.path().to_path_buf();
    drop(capture);
    assert!(!path.exists());
}

const CHILD_LOG: &str = "REQSYNC_AUDIT_TEST_CHILD_LOG";

/// Run by [`a_failed_append_is_logged_and_the_process_goes_on`] in a child process, where it
/// can install the global subscriber as `cli::logging` does; does nothing otherwise.
#[test]
#[ignore = "a child process of a_failed_append_is_logged_and_the_process_goes_on"]
fn child_process_with_a_failing_trail() {
    if std::env::var(CHILD_LOG).is_err() {
        return;
    }
    use tracing_subscriber::util::SubscriberInitExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let w = Arc::new(AuditWriter::open(&state.join("audit.jsonl")).unwrap());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(EnvFilter::new("warn")),
        )
        .with(AuditLayer::to(w).filtered())
        .init();
    std::fs::remove_dir_all(&state).unwrap();
    tracing::info!(target: "reqsync::audit", event = "run_started");
    eprintln!("still running");
}

#[test]
fn a_failed_append_is_logged_and_the_process_goes_on() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audit::tests::child_process_with_a_failing_trail",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_LOG, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ERROR") && stderr.contains("cannot write the audit trail"),
        "{stderr}"
    );
    assert!(stderr.contains("audit.jsonl"), "names the file: {stderr}");
    assert!(stderr.contains("still running"), "{stderr}");
}

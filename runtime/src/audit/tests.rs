use std::collections::{BTreeMap, BTreeSet};
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
    let pids: BTreeSet<_> = entries.iter().map(|e| e["pid"].as_u64()).collect();
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
            target: TARGET,
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
        tracing::warn!(target: TARGET, event = "module_swap", result = "refused");
        tracing::error!(target: TARGET, event = "run_failed");
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
        tracing::debug!(target: TARGET, event = "too_chatty");
        tracing::trace!(target: TARGET, event = "too_chatty");
        tracing::info!(target: "reqsync::pipeline", event = "not_audit");
        tracing::info!(target: "reqsync::audit::writer", event = "not_audit");
        tracing::error!(event = "not_audit");
        tracing::info_span!(target: TARGET, "a_span").in_scope(|| {});
        tracing::info!(target: TARGET, event = "audited");
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
        tracing::info!(target: TARGET, event = "run_started", records = 1);
    });
    assert_eq!(read_entries(w.path()).unwrap().len(), 1);
    assert!(printed.0.lock().unwrap().is_empty(), "the log stayed quiet");
}

#[test]
fn event_fields_cannot_forge_the_writer_fields() {
    let (_d, w) = layer_trail();
    tracing::subscriber::with_default(subscriber(w.clone()), || {
        tracing::info!(target: TARGET, event = "x", seq = 99, hash = "forged", user = "root");
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
        tracing::info!(target: TARGET, event = "before_open");
    });
    open(&path).unwrap();
    assert_eq!(current_path().as_deref(), Some(path.as_path()));
    tracing::subscriber::with_default(sub(), || {
        tracing::info!(target: TARGET, event = "while_open");
    });
    close();
    tracing::subscriber::with_default(sub(), || {
        tracing::info!(target: TARGET, event = "after_close");
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
        tracing::info!(target: TARGET, event = "run_started", records = 12);
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
    tracing::info!(target: TARGET, event = "run_started");
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

// --- the events ---

/// Emits one event into a trail of its own; returns its entry's level and its other fields
/// without those the writer adds.
fn entry_of(emit: impl FnOnce()) -> (String, Map<String, Value>) {
    let (_d, w) = layer_trail();
    tracing::subscriber::with_default(subscriber(w.clone()), emit);
    let mut entries = read_entries(w.path()).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mut entry = entries.remove(0);
    let level = entry["level"].as_str().unwrap().to_string();
    for field in RESERVED {
        entry.remove(field);
    }
    (level, entry)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

const REQCHECK: &str = "https://sync:s3cret@reqcheck.example.org/?token=t0ken";
const SHA: &str = "5f2b9d0c7e4a1b3c6d8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";

fn request() -> RequestFields<'static> {
    RequestFields {
        run_id: 42,
        job: "patients",
        seq: 3,
        url: crate::redact::RedactedUrl::new(REQCHECK),
        endpoint: "/patient_data",
        records: 500,
        bytes: 151_200,
        body_sha256: SHA,
    }
}

/// What every request event starts with, as written.
fn request_entry(event: &str) -> Value {
    json!({
        "event": event,
        "run_id": 42,
        "job": "patients",
        // The writer's own `seq` numbers the lines; the request's is kept beside it.
        "field_seq": 3,
        "url": "https://***@reqcheck.example.org/?…",
        "endpoint": "/patient_data",
        "records": 500,
        "bytes": 151_200,
        "body_sha256": SHA,
    })
}

fn with(base: Value, more: Value) -> Map<String, Value> {
    let mut map = object(base);
    map.extend(object(more));
    map
}

/// An event struct emitted through the real layer and writer, and what it must write.
struct Case {
    name: &'static str,
    written: (String, Map<String, Value>),
    expected: (&'static str, Map<String, Value>),
}

/// Each event struct (both outcomes where an event has two shapes), with the level and entry it
/// must write: the line format docs/AUDIT.md describes and verifiers and log shippers read.
fn every_event() -> Vec<Case> {
    let jobs = ["patients".to_string(), "vaccine-doses".to_string()];
    let failure = crate::reqcheck::ClientError::Server {
        endpoint: "/patient_data".into(),
        status: 503,
    };
    let window_start = chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
        .unwrap()
        .and_hms_opt(6, 30, 0)
        .unwrap();
    vec![
        Case {
            name: "RunStarted",
            written: entry_of(|| {
                RunStarted {
                    run_id: 42,
                    kind: crate::ledger::RunKind::DryRun,
                    jobs: &jobs,
                    config: Path::new("clinic/reqsync.toml"),
                    source: crate::redact::RedactedUrl::new("postgres://reader:pw@db/clinic"),
                    reqcheck: crate::redact::RedactedUrl::new(REQCHECK),
                    ledger: Path::new("clinic/.reqsync/ledger.db"),
                }
                .emit();
            }),
            expected: (
                "INFO",
                object(json!({
                    "event": "run_started",
                    "run_id": 42,
                    "kind": "dry-run",
                    "jobs": "patients,vaccine-doses",
                    "config": "clinic/reqsync.toml",
                    "source": "postgres://***@db/clinic",
                    "reqcheck": "https://***@reqcheck.example.org/?…",
                    "ledger": "clinic/.reqsync/ledger.db",
                })),
            ),
        },
        Case {
            name: "RequestSending",
            written: entry_of(|| RequestSending { request: request() }.emit()),
            expected: ("INFO", object(request_entry("request_sending"))),
        },
        Case {
            name: "RequestSent",
            written: entry_of(|| {
                RequestSent {
                    request: request(),
                    status: crate::reqcheck::ImportStatus::PartialFailure,
                    data_import_id: 9001,
                    record_errors: 2,
                }
                .emit();
            }),
            expected: (
                "INFO",
                with(
                    request_entry("request_sent"),
                    json!({
                        "status": "partial_failure",
                        "data_import_id": 9001,
                        "record_errors": 2,
                    }),
                ),
            ),
        },
        Case {
            name: "RequestFailed",
            written: entry_of(|| {
                RequestFailed {
                    request: request(),
                    error: &failure,
                }
                .emit();
            }),
            expected: (
                "INFO",
                with(
                    request_entry("request_failed"),
                    json!({"error": failure.to_string()}),
                ),
            ),
        },
        Case {
            name: "JobFinished",
            written: entry_of(|| {
                JobFinished {
                    run_id: 42,
                    job: "vaccine-doses",
                    status: crate::ledger::RunStatus::Partial,
                    window_start,
                    read: 1200,
                    emitted: 1150,
                    skipped: 30,
                    rejected: 20,
                    sent: 1150,
                    acknowledged: 1148,
                    requests: 3,
                    quarantine_resolved: 4,
                    module_sha256: "aa",
                    query_sha256: "bb",
                    template_sha256: "cc",
                }
                .emit();
            }),
            expected: (
                "INFO",
                object(json!({
                    "event": "job_finished",
                    "run_id": 42,
                    "job": "vaccine-doses",
                    "status": "partial",
                    "window_start": "2026-03-01 06:30:00",
                    "read": 1200,
                    "emitted": 1150,
                    "skipped": 30,
                    "rejected": 20,
                    "sent": 1150,
                    "acknowledged": 1148,
                    "requests": 3,
                    "quarantine_resolved": 4,
                    "module_sha256": "aa",
                    "query_sha256": "bb",
                    "template_sha256": "cc",
                })),
            ),
        },
        Case {
            name: "RunFinished (failed)",
            written: entry_of(|| {
                RunFinished {
                    run_id: 42,
                    status: crate::ledger::RunStatus::Failed,
                    seconds: 12.5,
                    jobs: 2,
                    sent: 1650,
                    error_class: Some("delivery"),
                    report_file: Some("/srv/clinic/.reqsync/runs/run-000042.json"),
                }
                .emit();
            }),
            expected: (
                "INFO",
                object(json!({
                    "event": "run_finished",
                    "run_id": 42,
                    "status": "failed",
                    "seconds": 12.5,
                    "jobs": 2,
                    "sent": 1650,
                    "error_class": "delivery",
                    "report_file": "/srv/clinic/.reqsync/runs/run-000042.json",
                })),
            ),
        },
        Case {
            name: "RunFinished (no error, no report)",
            written: entry_of(|| {
                RunFinished {
                    run_id: 43,
                    status: crate::ledger::RunStatus::Complete,
                    seconds: 0.0,
                    jobs: 0,
                    sent: 0,
                    error_class: None,
                    report_file: None,
                }
                .emit();
            }),
            expected: (
                "INFO",
                object(json!({
                    "event": "run_finished",
                    "run_id": 43,
                    "status": "complete",
                    "seconds": 0.0,
                    "jobs": 0,
                    "sent": 0,
                    "error_class": "",
                    "report_file": "",
                })),
            ),
        },
        Case {
            name: "ModuleSwap (activated)",
            written: entry_of(|| {
                ModuleSwap {
                    path: Path::new("transforms/patients.wasm"),
                    old_sha256: "aa",
                    new_sha256: "dd",
                    result: SwapResult::Activated { millis: 38 },
                }
                .emit();
            }),
            expected: (
                "INFO",
                object(json!({
                    "event": "module_swap",
                    "path": "transforms/patients.wasm",
                    "old_sha256": "aa",
                    "new_sha256": "dd",
                    "result": "activated",
                    "millis": 38,
                    "message": "transform module swapped",
                })),
            ),
        },
        Case {
            name: "ModuleSwap (refused)",
            written: entry_of(|| {
                ModuleSwap {
                    path: Path::new("transforms/patients.wasm"),
                    old_sha256: "aa",
                    new_sha256: "",
                    result: SwapResult::Refused {
                        reason: "example case `minimal` failed: code date_invalid",
                    },
                }
                .emit();
            }),
            expected: (
                "WARN",
                object(json!({
                    "event": "module_swap",
                    "path": "transforms/patients.wasm",
                    "old_sha256": "aa",
                    "new_sha256": "",
                    "result": "refused",
                    "reason": "example case `minimal` failed: code date_invalid",
                    "message": "new transform module refused; the active version keeps running",
                })),
            ),
        },
    ]
}

#[test]
fn each_event_struct_writes_its_name_level_and_fields_to_the_trail() {
    for Case {
        name,
        written,
        expected,
    } in every_event()
    {
        assert_eq!(written.0, expected.0, "{name}");
        assert_eq!(
            Value::Object(written.1),
            Value::Object(expected.1),
            "{name}"
        );
    }
}

/// The level cell and the fields docs/AUDIT.md's event table lists, by event.
fn documented_events() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/AUDIT.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = text
        .split("\n### Events\n")
        .nth(1)
        .expect("docs/AUDIT.md has a section `### Events`");
    let section = section.split("\n#").next().unwrap_or(section);
    // `text` in backticks: the event in the first cell, field names in the last (where
    // nothing else is in backticks).
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect()
    };
    let mut documented = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let event = ticked(cells[0]).remove(0);
        let level = cells[1].to_string();
        let fields = ticked(cells.last().unwrap()).into_iter().collect();
        assert!(
            documented.insert(event.clone(), (level, fields)).is_none(),
            "{event} twice"
        );
    }
    documented
}

#[test]
fn docs_audit_md_lists_every_event_with_its_level_and_exactly_its_fields() {
    let documented = documented_events();
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for Case {
        name,
        written: (level, entry),
        ..
    } in every_event()
    {
        let event = entry["event"].as_str().unwrap().to_string();
        let documented_level = documented.get(&event).map_or("", |(l, _)| l.as_str());
        assert!(
            documented_level.contains(&level),
            "{name}: {level} is not in `{documented_level}`"
        );
        written
            .entry(event)
            .or_default()
            .extend(entry.keys().filter(|k| *k != "event").cloned());
    }
    let documented: BTreeMap<_, _> = documented
        .into_iter()
        .map(|(event, (_, fields))| (event, fields))
        .collect();
    assert_eq!(documented, written);
}

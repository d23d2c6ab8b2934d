//! No PHI anywhere but in ReqCheck: the whole pipeline at the most verbose log level, on the
//! KCMO data and a large synthetic set, through success, rejected rows, the quarantine, a replay,
//! every kind of delivery failure, and the commands that read the ledger; every line of output
//! and every file reqsync writes (run reports, the ledger, the audit trail) is searched for the
//! source's names, dates of birth, addresses, phone numbers, e-mail addresses and lot numbers.
//! The bad-input cases run the same sweep on their output (`bad_input.rs`). The ReqCheck password
//! is looked for too.

use std::path::Path;
use std::process::{Command, Output};

use reqsync_receiver::{Faults, ReceiverConfig};
use reqsync_seeder::{SeedOptions, SyntheticOptions};

use crate::phi::Phi;
use crate::support::{PASSWORD, USER, World};

/// `reqsync -vv ARGS…` with every target at trace level too.
fn reqsync(world: &World, password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .arg("-vv")
        .args(args)
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", password)
        .env("REQSYNC_LOG", "trace,tiberius=off")
        .output()
        .expect("run reqsync")
}

/// Runs a command and sweeps both of its streams; returns the exit code.
fn swept(phi: &Phi, world: &World, password: &str, args: &[&str]) -> Option<i32> {
    let out = reqsync(world, password, args);
    let what = format!("`reqsync {}`", args.join(" "));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    phi.assert_absent(&format!("stdout of {what}"), &stdout);
    phi.assert_absent(&format!("stderr of {what}"), &stderr);
    // Nor the password, whatever the log level (trace includes the HTTP client's own logs).
    assert!(
        !stdout.contains(password) && !stderr.contains(password),
        "the password reached the output of {what}"
    );
    assert!(!stderr.contains("panicked"), "{what} panicked");
    out.status.code()
}

/// Every text reqsync keeps: run reports, the audit trail, and each ledger table as text.
fn sweep_state(phi: &Phi, world: &World) {
    let state = world.path(".reqsync/state");
    let mut files = 0;
    for entry in std::fs::read_dir(state.join("runs")).expect("runs folder") {
        let path = entry.expect("entry").path();
        phi.assert_absent(
            &path.display().to_string(),
            &std::fs::read_to_string(&path).expect("report"),
        );
        files += 1;
    }
    assert!(files >= 5, "every run wrote a report");
    let audit = std::fs::read_to_string(world.path(".reqsync/audit.jsonl")).expect("audit trail");
    assert!(audit.lines().count() > 20);
    phi.assert_absent("the audit trail", &audit);
    assert!(
        !audit.contains(PASSWORD),
        "the password reached the audit trail"
    );
    sweep_ledger(phi, &state.join("ledger.db"));
}

fn sweep_ledger(phi: &Phi, path: &Path) {
    let conn = rusqlite::Connection::open(path).expect("ledger");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    assert!(tables.contains(&"quarantine".to_string()));
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("select");
        let n = stmt.column_count();
        // `runs.pid` is the operating system's process id, which can equal a digits-only lot
        // number by chance (a CI run got pid 9555, a lot number of this world).
        let pid = stmt.column_index("pid").ok();
        let mut text = String::new();
        let mut rows = stmt.query([]).expect("rows");
        while let Some(row) = rows.next().expect("row") {
            for i in (0..n).filter(|&i| Some(i) != pid) {
                let v: rusqlite::types::Value = row.get(i).expect("value");
                text.push_str(&format!("{v:?} "));
            }
            text.push('\n');
        }
        phi.assert_absent(&format!("ledger table {table}"), &text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_phi_reaches_logs_reports_errors_ledger_or_audit_trail_at_the_most_verbose_level() {
    let world = World::with_faults(
        SeedOptions {
            kcmo: true,
            synthetic: Some(SyntheticOptions::new(4000, 23)),
            ..SeedOptions::default()
        },
        // The first run meets a 503 with Retry-After, a reset and a 429 before it succeeds.
        &[
            "patient_data:2=503+retry-after=1",
            "patient_data:4=reset",
            "vaccine_dose_data:3=429",
        ],
    )
    .await;
    world.share_module_cache();
    world.edit_config(
        "[reqcheck]",
        "[reqcheck]\nretry_attempts = 3\nretry_max_time = \"20s\"",
    );
    let phi = Phi::of(&world);
    assert!(phi.len() > 10_000, "a large set: {}", phi.len());

    // Success with rejected rows (the synthetic set carries invalid ones), through retries.
    assert_eq!(swept(&phi, &world, PASSWORD, &["run", "--json"]), Some(0));
    assert_eq!(swept(&phi, &world, PASSWORD, &["run"]), Some(0));
    // The commands that read what was recorded.
    assert_eq!(swept(&phi, &world, PASSWORD, &["history"]), Some(0));
    assert_eq!(
        swept(&phi, &world, PASSWORD, &["history", "--run", "1", "--json"]),
        Some(0)
    );
    assert_eq!(
        swept(&phi, &world, PASSWORD, &["quarantine", "list", "--json"]),
        Some(0)
    );
    assert_eq!(
        swept(&phi, &world, PASSWORD, &["quarantine", "list"]),
        Some(0)
    );
    let key = reqsync_runtime::ledger::Ledger::open(&world.path(".reqsync/state"))
        .expect("ledger")
        .quarantine(&Default::default())
        .expect("quarantine")
        .first()
        .map(|e| e.key.clone())
        .expect("rejected rows are quarantined");
    assert_eq!(
        swept(&phi, &world, PASSWORD, &["quarantine", "show", &key]),
        Some(0)
    );
    assert_eq!(
        swept(&phi, &world, PASSWORD, &["quarantine", "replay"]),
        Some(0)
    );
    // Delivery failures: ReqCheck failing for good after one accepted request, refusing the
    // credentials, unreachable.
    let failing = reqsync_receiver::start(ReceiverConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        db_path: world.path("receiver.db"),
        username: USER.into(),
        password: PASSWORD.into(),
        tls: None,
        faults: Faults::parse(&["patient_data:2..=503"]).expect("faults"),
    })
    .await
    .expect("failing receiver");
    assert_eq!(
        swept(
            &phi,
            &world,
            PASSWORD,
            &["run", "--full", "--reqcheck-url", &failing.base_url()]
        ),
        Some(6)
    );
    failing.shutdown().await.expect("stops");
    assert_eq!(
        swept(&phi, &world, "wrong-password", &["run", "--full"]),
        Some(6)
    );
    assert_eq!(
        swept(
            &phi,
            &world,
            PASSWORD,
            &["run", "--full", "--reqcheck-url", "http://127.0.0.1:9"]
        ),
        Some(6)
    );
    // A check and the audit trail's verification print nothing from rows either.
    assert_eq!(swept(&phi, &world, PASSWORD, &["check"]), Some(0));
    assert_eq!(
        swept(
            &phi,
            &world,
            PASSWORD,
            &["audit", "verify", ".reqsync/audit.jsonl"]
        ),
        Some(0)
    );
    sweep_state(&phi, &world);
}

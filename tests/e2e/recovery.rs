//! Nothing lost when a run fails or is killed part-way: the run ledger makes the next run start
//! early enough, whatever ReqCheck's heartbeat says.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqsync_receiver::{Dump, Faults, ReceiverConfig, RequestCounts};
use reqsync_runtime::ledger::{Ledger, RunStatus};
use reqsync_runtime::pipeline::RunOptions;
use reqsync_runtime::reqcheck::window::WindowBasis;
use reqsync_seeder::{SeedOptions, SyntheticOptions};
use serde_json::Value;

use crate::support::{PASSWORD, USER, World, client_for, doses, patients, run_through};

/// Receiver columns that differ between two receivers holding the same data.
const LOCAL_COLUMNS: [&str; 4] = ["id", "created_at", "updated_at", "patient_id"];

fn strip(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for c in LOCAL_COLUMNS {
            o.remove(c);
        }
    }
    v
}

/// What the receiver holds, without its own ids and timestamps: patients by number, and each
/// patient's doses in a stable order.
fn holdings(dump: &Dump) -> (BTreeMap<i64, Value>, BTreeMap<i64, Vec<String>>) {
    let p = patients(dump)
        .into_iter()
        .map(|(k, v)| (k, strip(&v)))
        .collect();
    let d = doses(dump)
        .into_iter()
        .map(|(k, v)| {
            let mut list: Vec<String> = v.iter().map(|d| strip(d).to_string()).collect();
            list.sort();
            (k, list)
        })
        .collect();
    (p, d)
}

fn seed() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        synthetic: Some(SyntheticOptions::new(1500, 11)),
        ..SeedOptions::default()
    }
}

/// Points the project at a second receiver on the same database, failing as `specs` say.
async fn faulty_receiver(world: &World, specs: &[&str]) -> reqsync_receiver::RunningReceiver {
    reqsync_receiver::start(ReceiverConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        db_path: world.path("receiver.db"),
        username: USER.into(),
        password: PASSWORD.into(),
        tls: None,
        faults: Faults::parse(specs).expect("fault specs"),
    })
    .await
    .expect("faulty receiver")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_failing_after_some_requests_does_not_make_the_next_run_skip_the_rest() {
    let world = World::new(seed()).await;
    world.edit_config("look_back = \"1d\"", "look_back = \"1s\"");
    world.edit_config("batch_size = 500", "batch_size = 100");
    world.edit_config("# timeout = \"2m\"", "retry_attempts = 1");

    let first = world.run(RunOptions::default()).await.expect("first run");
    assert_eq!(first.status, RunStatus::Complete);

    // Every patient changes after the complete run.
    let changed = world
        .clinic()
        .execute(
            "UPDATE mpfile SET addr2 = 'Apt 9', updated_at = datetime('now', '-6 hours')",
            [],
        )
        .expect("update source");
    assert!(changed > 1000);
    // ReqCheck's heartbeat will be later than the changes plus the 1 s look-back.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The second run gets two patient requests through, then ReqCheck fails for good.
    let faulty = faulty_receiver(&world, &["patient_data:3..=500"]).await;
    let url = world.receiver.base_url();
    world.edit_config(&url, &faulty.base_url());
    let config = world.config();
    let client = client_for(&config, PASSWORD).expect("client");
    let error = run_through(config, client, RunOptions::default())
        .await
        .expect_err("second run fails");
    assert!(error.to_string().contains("500"), "{error}");
    world.edit_config(&faulty.base_url(), &url);
    faulty.shutdown().await.expect("faulty receiver stops");

    // The heartbeat moved past the changes; the ledger knows the second run did not finish.
    let third = world.run(RunOptions::default()).await.expect("third run");
    let patients_job = &third.jobs[0];
    assert_eq!(patients_job.window_basis, WindowBasis::Ledger);
    assert_eq!(patients_job.counts.read, changed as u64);
    let dump = world.dump();
    let with_apt: usize = dump
        .patients
        .iter()
        .filter(|p| p["address2"] == "Apt 9")
        .count();
    let emitted = patients_job.counts.emitted as usize;
    assert_eq!(with_apt, emitted, "every changed patient reached ReqCheck");

    let ledger = Ledger::open(&world.config().state_dir).expect("ledger");
    let runs = ledger.recent_runs(3, true).expect("runs");
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![RunStatus::Complete, RunStatus::Failed, RunStatus::Complete]
    );
    let failed = &runs[1].jobs[0].requests;
    let statuses: Vec<&str> = failed.iter().map(|r| r.status.as_str()).collect();
    // Requests go two at a time (`requests_in_flight`), so ReqCheck's third arrival, the first
    // to fail, may be the ledger's second or third request: the second travels on a connection
    // of its own, and on a busy machine it can reach ReqCheck after the first was answered and
    // the third sent on the first's connection. One more may be on its way when the failure is
    // seen, and fails too. Nothing is sent after that, so the ledger holds exactly the two that
    // got through and one or two failures, and nothing unanswered.
    let count = |status: &str| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(count("success"), 2, "{statuses:?}");
    assert!((1..=2).contains(&count("failed")), "{statuses:?}");
    assert_eq!(
        statuses.len(),
        count("success") + count("failed"),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], "success", "{statuses:?}");
}

/// Where a run is killed.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// The first batch has been read from the source.
    Read,
    /// A few batches have gone through the transform.
    Transform,
    /// Between two accepted patient requests.
    BetweenPatientRequests,
    /// While ReqCheck holds a patient request (delayed by the receiver).
    MidPatientRequest,
    /// Between dose requests, patients all sent.
    BetweenDoseRequests,
    /// While ReqCheck holds a dose request.
    MidDoseRequest,
}

impl Stage {
    /// For the mid-request stages: whether the receiver holds the delayed request.
    fn in_flight(self) -> Option<fn(&RequestCounts) -> bool> {
        match self {
            Stage::MidPatientRequest => Some(|c| c.patient_data >= 3),
            Stage::MidDoseRequest => Some(|c| c.vaccine_dose_data >= 2),
            _ => None,
        }
    }

    fn faults(self) -> Vec<&'static str> {
        match self {
            Stage::MidPatientRequest => vec!["patient_data:3=delay=60s"],
            Stage::MidDoseRequest => vec!["vaccine_dose_data:2=delay=60s"],
            _ => Vec::new(),
        }
    }

    /// Whether this log line (JSON) is the moment to kill; `seen` counts earlier matches.
    fn is_moment(self, line: &Value, seen: &mut u32) -> bool {
        let message = line["fields"]["message"].as_str().unwrap_or_default();
        let job = line["fields"]["job"].as_str().unwrap_or_default();
        let seq = line["fields"]["seq"].as_u64().unwrap_or_default();
        let (wanted, nth) = match self {
            Stage::Read => (message == "batch read", 1),
            Stage::Transform => (message == "batch transformed", 3),
            Stage::BetweenPatientRequests => {
                (message == "request accepted" && job == "patients", 2)
            }
            Stage::MidPatientRequest => (
                message == "sending request" && job == "patients" && seq == 3,
                1,
            ),
            Stage::BetweenDoseRequests => {
                (message == "request accepted" && job == "vaccine-doses", 1)
            }
            Stage::MidDoseRequest => (
                message == "sending request" && job == "vaccine-doses" && seq == 2,
                1,
            ),
        };
        if wanted {
            *seen += 1;
        }
        wanted && *seen == nth
    }
}

fn reqsync(world: &World) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    cmd.current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env("REQSYNC_LOG", "warn,reqsync=debug");
    cmd
}

/// Starts `reqsync run`, kills it with SIGKILL at `stage`; returns whether the moment came.
fn run_and_kill(world: &World, stage: Stage) -> bool {
    let mut child = reqsync(world)
        .args(["--log-json", "run", "--config", "reqsync.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reqsync run");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = 0;
    let mut killed = false;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let Ok(json) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if stage.is_moment(&json, &mut seen) {
            // "Mid-request" means ReqCheck has the request: wait until the receiver counts it
            // (it is then in the fault's delay), not just until the client is about to send.
            if let Some(arrived) = stage.in_flight() {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !arrived(&world.receiver.requests()) {
                    assert!(
                        Instant::now() < deadline,
                        "{stage:?}: request never arrived"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            child.kill().expect("SIGKILL");
            killed = true;
            break;
        }
    }
    child.wait().expect("reap");
    killed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_at_any_stage_and_run_again_leaves_the_receiver_equal_to_the_source() {
    let tune = |world: &World| {
        world.share_module_cache();
        world.edit_config(
            "look_back = \"1d\"",
            "look_back = \"1d\"\ntransform_batch_rows = 64",
        );
        world.edit_config("batch_size = 500", "batch_size = 40");
        world.edit_config("batch_size = 500", "batch_size = 40");
    };

    // What a clean full sync leaves in ReqCheck.
    let reference = World::new(seed()).await;
    tune(&reference);
    let clean = reference
        .run(RunOptions::default())
        .await
        .expect("clean sync");
    assert!(clean.jobs[0].requests.len() > 5 && clean.jobs[1].requests.len() > 5);
    let expected = holdings(&reference.dump());

    for stage in [
        Stage::Read,
        Stage::Transform,
        Stage::BetweenPatientRequests,
        Stage::MidPatientRequest,
        Stage::BetweenDoseRequests,
        Stage::MidDoseRequest,
    ] {
        let faults = stage.faults();
        let world = if faults.is_empty() {
            World::new(seed()).await
        } else {
            World::with_faults(seed(), &faults).await
        };
        tune(&world);
        let started = Instant::now();
        assert!(
            run_and_kill(&world, stage),
            "{stage:?}: the run ended before the moment to kill it came"
        );
        // The rerun is an ordinary incremental run.
        let out = reqsync(&world)
            .args(["run", "--config", "reqsync.toml"])
            .output()
            .expect("rerun");
        assert!(
            out.status.success(),
            "{stage:?}: rerun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = holdings(&world.dump());
        assert_eq!(
            got.0.len(),
            expected.0.len(),
            "{stage:?}: patient count differs"
        );
        assert!(
            got == expected,
            "{stage:?}: receiver differs from the source"
        );

        let ledger = Ledger::open(&world.config().state_dir).expect("ledger");
        let runs = ledger.recent_runs(2, true).expect("runs");
        assert_eq!(runs[1].status, RunStatus::Interrupted, "{stage:?}");
        assert_eq!(runs[0].status, RunStatus::Complete, "{stage:?}");
        eprintln!("{stage:?}: killed and recovered in {:?}", started.elapsed());
    }
}

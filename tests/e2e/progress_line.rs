//! The progress line as a person at a terminal sees it: `reqsync run` on a pseudo-terminal
//! (util-linux `script`), with the expected total from the last comparable run, and a warning
//! logged mid-run (ReqCheck answers one request 503, the client retries) that must land on a
//! line of its own, not inside the progress line.

use std::process::Command;

use reqsync_seeder::{SeedOptions, SyntheticOptions};

use crate::support::{World, as_the_user, reqsync};

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_progress_line_shows_the_expected_total_and_log_lines_never_tear_it() {
    // 3,000 synthetic patients: a few dozen requests, so the line is drawn many times; the
    // 12th patient request of the whole test (in the second run) is answered 503 once.
    let world = World::with_faults(
        SeedOptions {
            kcmo: true,
            synthetic: Some(SyntheticOptions::new(3000, 7)),
            ..SeedOptions::default()
        },
        &["patient_data:12=503", "vaccine_dose_data:1..=delay=20ms"],
    )
    .await;
    world.share_module_cache();

    // The first full read: nothing to expect yet.
    let out = reqsync(&world, &["run", "--full"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = {
        let out = reqsync(&world, &["history", "--json", "--limit", "1"]);
        serde_json::from_slice(&out.stdout).expect("history JSON")
    };
    let read = report[0]["jobs"][0]["read"]
        .as_i64()
        .expect("patients read");

    // The second, on a terminal.
    let typescript = world.path("typescript");
    let command = format!("{} run --full", env!("CARGO_BIN_EXE_reqsync"));
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c", &command])
        .arg(&typescript)
        .env("TERM", "xterm")
        .env("COLUMNS", "100");
    let out = as_the_user(&mut script, &world)
        .output()
        .expect("util-linux `script`");
    let screen =
        String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned();
    assert_eq!(out.status.code(), Some(0), "{screen}");

    let expected = format!("/~{read} rows (");
    assert!(
        screen.contains(&expected),
        "the line shows the last full read's {read} rows as the total:\n{screen}"
    );
    assert!(
        screen.contains("ReqCheck request failed; trying again"),
        "{screen}"
    );
    // Every log line starts on a line of its own: nothing of the progress line before it.
    for segment in screen.split(['\r', '\n']) {
        let log_line = ["INFO", "WARN"].iter().any(|level| segment.contains(level));
        assert!(
            !(log_line && segment.contains(" rows (")),
            "a log line tore the progress line: {segment:?}"
        );
    }
}

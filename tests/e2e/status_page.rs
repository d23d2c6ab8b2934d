//! The daemon's status page in a real browser: scheduled runs against the KCMO data (one
//! patient's row rejected by the transform), then `/status` loaded in headless Chromium, its
//! screenshot read back to see that the chart was drawn, and the page swept for PHI.
//!
//! Chromium comes from `scripts/test-browser` (which `scripts/test` runs); the test fails,
//! saying so, without it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use reqsync_runtime::daemon::status_page::{Access, StatusPage};
use reqsync_runtime::daemon::{PipelineRunner, Service, SystemClock, http, scheduled_jobs};
use reqsync_runtime::ledger::{Ledger, QuarantineFilter};
use tokio_util::sync::CancellationToken;

use crate::daemon::{pipeline, poll, schedule_all};
use crate::phi::Phi;
use crate::support::World;

/// Chromium starts, loads one page and writes a PNG in a few seconds; a first start on a slow
/// machine can take longer.
const BROWSER_PATIENCE: Duration = Duration::from_secs(120);

const SENT_BLUE: [u8; 3] = [0x25, 0x63, 0xeb];
const REJECTED_RED: [u8; 3] = [0xdc, 0x26, 0x26];

fn chromium() -> PathBuf {
    let found = std::env::var_os("REQSYNC_TEST_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        });
    found.expect(
        "no Chromium for the status page test: run `eval \"$(./scripts/test-browser)\"` (or \
         scripts/test, which does)",
    )
}

/// Pixels of `rgb` (within a small tolerance for anti-aliasing) in an RGB(A) PNG.
fn pixels_of(png_file: &std::path::Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_file).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "an RGB screenshot ({:?})", info.color_type);
    buffer[..info.buffer_size()]
        .chunks_exact(channels)
        .filter(|px| (0..3).all(|i| px[i].abs_diff(rgb[i]) <= 8))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_renders_its_chart_in_a_real_browser_and_shows_no_phi() {
    let browser = chromium();
    let world = World::kcmo().await;
    let phi = Phi::of(&world);
    // One patient with an empty last name: the transform rejects the row (quarantined).
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET lname = '' WHERE patno = (SELECT MIN(patno) FROM mpfile)",
            [],
        )
        .expect("break one row");
    schedule_all(&world, "* * * * * *");
    let pipeline = pipeline(&world);
    let config = Arc::new(pipeline.config.clone());
    let (jobs, _) = scheduled_jobs(&config);
    let service = Service::new(
        jobs,
        config.clinic_tz,
        Arc::new(PipelineRunner::new(pipeline)),
        Arc::new(SystemClock),
    );
    let state = service.state();
    let listener = http::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    state.attach_status_page(StatusPage::new(
        Arc::clone(&config),
        Access::new(addr, None),
    ));
    let (runs_stop, http_stop) = (CancellationToken::new(), CancellationToken::new());
    let server = tokio::spawn(http::serve(
        listener,
        state.clone(),
        http::HttpLimits::default(),
        http_stop.clone(),
    ));
    let daemon = tokio::spawn(service.run(runs_stop.clone()));
    poll("two scheduled runs", || {
        (state.health().jobs["patients"].runs >= 2).then_some(())
    })
    .await;
    // The runs stop; the page stays, so what it shows and the ledger agree.
    runs_stop.cancel();
    daemon.await.expect("daemon");

    let ledger = Ledger::open_existing(&world.path(".reqsync/state"))
        .expect("ledger")
        .expect("a ledger");
    let runs = ledger.recent_runs(100, false).expect("runs");
    let quarantined = ledger
        .quarantine(&QuarantineFilter::default())
        .expect("quarantine");
    assert_eq!(quarantined.len(), 1, "the broken patient is quarantined");

    let response = reqwest::get(format!("http://{addr}/status"))
        .await
        .expect("GET /status");
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = response.text().await.expect("body");
    // One blue bar per run that sent something, one red bar per run with a rejection.
    let sending = runs
        .iter()
        .filter(|r| r.jobs.iter().map(|j| j.sent).sum::<i64>() > 0)
        .count();
    let rejecting = runs
        .iter()
        .filter(|r| r.jobs.iter().map(|j| j.rejected).sum::<i64>() > 0)
        .count();
    assert!(sending >= 1 && rejecting >= 1, "{runs:?}");
    assert_eq!(html.matches("<rect class=\"sent\"").count(), sending);
    assert_eq!(html.matches("<rect class=\"rejected\"").count(), rejecting);
    for run in &runs {
        assert!(
            html.contains(&format!("<td>{}</td>", run.id)),
            "run {}",
            run.id
        );
    }
    assert!(html.contains("patients") && html.contains("vaccine-doses"));
    // No row values and no patient numbers: the quarantined key is nowhere on the page.
    phi.assert_absent("the status page", &html);
    let key = &quarantined[0].key;
    assert!(
        !html.contains(&format!(">{key}<")) && !html.contains(&format!(" {key} ")),
        "the quarantined patient's number {key} is on the page"
    );

    // The real browser: it loads the page and draws the chart.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let screenshot = shots.join("status.png");
    let _ = std::fs::remove_file(&screenshot);
    let profile = tempfile::tempdir().expect("browser profile");
    let log = std::fs::File::create(shots.join("chromium.log")).expect("browser log");
    let mut browser = Command::new(&browser)
        .args([
            "--headless",
            // The test may run as root, where Chromium's own sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1100,1200",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("http://{addr}/status"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start chromium");
    // Served by this test's runtime meanwhile: wait without blocking it, and never forever.
    let deadline = tokio::time::Instant::now() + BROWSER_PATIENCE;
    let status = loop {
        if let Some(status) = browser.try_wait().expect("chromium") {
            break Some(status);
        }
        if tokio::time::Instant::now() > deadline {
            let _ = browser.kill();
            let _ = browser.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        screenshot.exists(),
        "Chromium took no screenshot ({}):\n{}",
        status.map_or_else(
            || "killed after the time limit".to_string(),
            |s| s.to_string()
        ),
        std::fs::read_to_string(shots.join("chromium.log")).unwrap_or_default()
    );
    let blue = pixels_of(&screenshot, SENT_BLUE);
    let red = pixels_of(&screenshot, REJECTED_RED);
    // With a handful of runs a bar is 14 px wide, and the tallest fills its 150 px panel; the
    // legend's swatch adds about 120 pixels of each colour, so the bars must be far more.
    assert!(
        blue > 1000,
        "the sent bars were not drawn ({blue} blue pixels)"
    );
    assert!(
        red > 1000,
        "the rejected bars were not drawn ({red} red pixels)"
    );
    eprintln!("status page screenshot: {}", screenshot.display());

    http_stop.cancel();
    server.await.expect("server").expect("served");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

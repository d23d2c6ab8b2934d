//! The commands that install reqsync into a platform's service manager, and `--log-dir`, as
//! they behave on Linux (scripts/test-windows runs the Windows side under Wine).

use crate::support::{World, reqsync};

#[tokio::test(flavor = "multi_thread")]
async fn windows_service_and_task_commands_on_linux_say_what_to_use_instead() {
    let world = World::kcmo().await;
    for (args, hint) in [
        (&["service", "status"][..], "systemd"),
        (
            &["service", "install", "--config", "reqsync.toml"][..],
            "systemd",
        ),
        (
            &["schedule", "install", "--config", "reqsync.toml"][..],
            "reqsync-sync.timer",
        ),
        (&["schedule", "uninstall"][..], "reqsync-sync.timer"),
    ] {
        let out = reqsync(&world, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(hint), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_show_prints_a_daily_task_running_this_config_with_its_log_in_files() {
    let world = World::kcmo().await;
    let out = reqsync(
        &world,
        &[
            "schedule",
            "show",
            "--config",
            "reqsync.toml",
            "--at",
            "03:30",
        ],
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(xml.contains("T03:30:00</StartBoundary>"), "{xml}");
    let config = std::fs::canonicalize(world.path("reqsync.toml")).unwrap();
    assert!(
        xml.contains(&format!("run --config {}", config.display())),
        "the task names the config by its absolute path: {xml}"
    );
    assert!(xml.contains("--log-dir"), "{xml}");
    assert!(
        xml.contains("<UserId>S-1-5-20</UserId>"),
        "NETWORK SERVICE: {xml}"
    );
    let bad = reqsync(&world, &["schedule", "show", "--at", "25:00"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("HH:MM"));
}

#[tokio::test(flavor = "multi_thread")]
async fn log_dir_puts_the_log_in_a_daily_owner_only_file_instead_of_stderr() {
    let world = World::kcmo().await;
    let out = reqsync(&world, &["--log-dir", "logs", "-v", "run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("run recorded"),
        "the log went to stderr: {stderr}"
    );
    let files: Vec<_> = std::fs::read_dir(world.path("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(name, format!("reqsync.{today}.log"));
    let log = std::fs::read_to_string(&files[0]).unwrap();
    assert!(log.contains("run recorded"), "{log}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(world.path("logs"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the log folder is owner-only");
    }
}

//! Files on disk as an attacker or an unlucky operator leaves them: other local users reading
//! state files, links planted where reqsync writes, stale or truncated state, a module cache
//! written by someone else. Each test reproduces one attack against the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqsync_seeder::SeedOptions;

use crate::support::{World, as_the_user, reqsync};

fn kcmo() -> SeedOptions {
    SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `reqsync ARGS…` under umask 022, the common default that made files world-readable.
fn reqsync_umask_022(world: &World, args: &[&str]) -> Output {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_reqsync"))
        .args(args);
    as_the_user(&mut command, world)
        .output()
        .expect("run reqsync")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if entry.file_type().expect("type").is_dir() {
            out.push(path.clone());
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn state_files_and_dry_run_bodies_are_never_readable_by_other_users() {
    let world = World::new(kcmo()).await;
    // Everything under .reqsync made by reqsync itself, the module cache included (not the
    // suite's shared one), so that every file it creates is checked.
    std::fs::remove_dir_all(world.path(".reqsync")).expect("fresh state");
    let out = reqsync_umask_022(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = reqsync_umask_022(&world, &["run", "--dry-run", "--full", "--out", "bodies"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let mut checked = 0;
    for root in [world.path(".reqsync"), world.path("bodies")] {
        assert_eq!(mode(&root), 0o700, "{}", root.display());
        for path in files_under(&root) {
            let expected = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&path), expected, "{}", path.display());
            checked += 1;
        }
    }
    // Ledger, run lock, cache key, two reports, audit trail, two cache entries, bodies.
    assert!(checked >= 12, "only {checked} files checked");
    assert!(world.path(".reqsync/state/ledger.db").exists());
    assert!(world.path(".reqsync/state/runs/run-000002.json").exists());
    assert!(world.path("bodies/0001-patients.json").exists());
    // The development receiver's database holds every patient sent.
    assert_eq!(mode(&world.path("receiver.db")), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_planted_at_a_dry_run_body_is_never_written_through() {
    let world = World::new(kcmo()).await;
    world.share_module_cache();
    let victim = world.path("victim.txt");
    std::fs::write(&victim, "precious").expect("victim");
    std::fs::create_dir(world.path("bodies")).expect("out dir");
    std::os::unix::fs::symlink(&victim, world.path("bodies/0001-patients.json")).expect("link");

    for args in [
        &["run", "--dry-run", "--full", "--out", "bodies"][..],
        &[
            "run",
            "--dry-run",
            "--full",
            "--out",
            "bodies",
            "--replace-out",
        ][..],
    ] {
        let out = reqsync(&world, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious",
            "{args:?}"
        );
    }
    assert!(
        std::fs::symlink_metadata(world.path("bodies/0001-patients.json"))
            .expect("link kept")
            .is_symlink()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_earlier_dry_runs_bodies_are_never_mixed_with_new_ones() {
    let world = World::new(kcmo()).await;
    world.share_module_cache();
    world.edit_config("batch_size = 500", "batch_size = 2");
    let first = reqsync(&world, &["run", "--dry-run", "--full", "--out", "bodies"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let written = std::fs::read_dir(world.path("bodies"))
        .expect("dir")
        .count();
    assert!(written > 2, "{written}");

    world.edit_config("batch_size = 2", "batch_size = 500");
    let again = reqsync(&world, &["run", "--dry-run", "--full", "--out", "bodies"]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("--replace-out"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_dir(world.path("bodies"))
            .expect("dir")
            .count(),
        written,
        "nothing written or removed"
    );

    let replaced = reqsync(
        &world,
        &[
            "run",
            "--dry-run",
            "--full",
            "--out",
            "bodies",
            "--replace-out",
        ],
    );
    assert_eq!(replaced.status.code(), Some(0), "{}", stderr(&replaced));
    let mut names: Vec<String> = std::fs::read_dir(world.path("bodies"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // One patients request (batch_size 500 now) plus the dose job's requests, and nothing left
    // of the first run's numbered patient bodies.
    assert_eq!(names[0], "0001-patients.json");
    assert!(
        !names.contains(&"0002-patients.json".to_string()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emptied_ledger_is_reported_damaged_and_never_silently_recreated() {
    let world = World::new(kcmo()).await;
    world.share_module_cache();
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = world.path(".reqsync/state/runs/run-000001.json");
    let first_report = std::fs::read(&report).expect("report");

    std::fs::File::create(world.path(".reqsync/state/ledger.db")).expect("truncate the ledger");
    let _ = std::fs::remove_file(world.path(".reqsync/state/ledger.db-wal"));
    let _ = std::fs::remove_file(world.path(".reqsync/state/ledger.db-shm"));
    let imports_before = world.dump().data_imports.len();

    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("damaged") && message.contains("--full"),
        "{message}"
    );
    assert_eq!(
        std::fs::metadata(world.path(".reqsync/state/ledger.db"))
            .expect("ledger")
            .len(),
        0,
        "left as found"
    );
    assert_eq!(std::fs::read(&report).expect("report"), first_report);
    assert_eq!(world.dump().data_imports.len(), imports_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_report_already_on_disk_is_never_overwritten() {
    let world = World::new(kcmo()).await;
    world.share_module_cache();
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A report file for the next run id, planted (or left by a ledger restored from backup).
    let planted = world.path(".reqsync/state/runs/run-000002.json");
    std::fs::write(&planted, "planted").expect("plant");

    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write the run report"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&planted).expect("kept"), "planted");
}

/// The project's cache entry of the module whose file is `module`.
fn cache_entry(world: &World, module: &str) -> PathBuf {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(
        std::fs::read(world.path(module)).expect("module"),
    ));
    let entries: Vec<PathBuf> = std::fs::read_dir(world.path(".reqsync/cache"))
        .expect("cache")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&sha))
        })
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().expect("entry")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_entry_copied_over_another_modules_is_discarded_not_run() {
    let world = World::new(kcmo()).await;
    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let patients = cache_entry(&world, "transforms/patients.wasm");
    let doses = cache_entry(&world, "transforms/vaccine-doses.wasm");
    std::fs::copy(&doses, &patients).expect("copy the dose module's code over");

    let out = reqsync(&world, &["run", "--full"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("discarding a compiled-module cache entry"),
        "{err}"
    );
    // The patients job ran the patients module: every patient is in ReqCheck as before.
    assert!(world.dump().patients.len() >= 20);
    assert_ne!(
        std::fs::read(&patients).expect("recompiled"),
        std::fs::read(&doses).expect("doses")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_cache_folder_others_can_write_is_refused() {
    let world = World::new(kcmo()).await;
    let cache = world.path(".reqsync/cache");
    std::fs::create_dir_all(&cache).expect("cache");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");

    let out = reqsync(&world, &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing the module cache folder"),
        "{}",
        stderr(&out)
    );
    assert!(world.dump().data_imports.is_empty());
}

//! The secret store (`reqsync secret set|check|remove`, `password_secret = "NAME"`): the real
//! binary stores a secret read from standard input, and a real sync against the development
//! receiver authenticates with it while nothing puts the password in reqsync's environment;
//! systemd's `$CREDENTIALS_DIRECTORY` the same way; and the password never shows in what
//! reqsync prints or keeps, even at `-vv`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{PASSWORD, USER, World};

/// `reqsync ARGS…` in the world's folder with nothing secret in its environment: no
/// `REQCHECK_PASSWORD`, no systemd credentials unless `credentials` names a folder. The user
/// name comes from `REQCHECK_USERNAME` unless the config says otherwise.
fn reqsync(
    world: &World,
    args: &[&str],
    stdin: Option<&str>,
    credentials: Option<&Path>,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reqsync"));
    command
        .args(args)
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env_remove("REQCHECK_PASSWORD")
        .env_remove("REQSYNC_LOG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = credentials {
        command.env("CREDENTIALS_DIRECTORY", dir);
    }
    let mut child = command.spawn().expect("run reqsync");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("reqsync output")
}

/// stdout and stderr together.
fn printed(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn use_stored_password(world: &World) {
    world.edit_config(
        "# password_env = \"REQCHECK_PASSWORD\"",
        "password_secret = \"reqcheck\"",
    );
}

/// The store's file of secret `name` in the world's default store.
fn store_file(world: &World, name: &str) -> PathBuf {
    let file = if cfg!(windows) {
        format!("{name}.dpapi")
    } else {
        name.to_string()
    };
    world.path("secrets").join(file)
}

/// Every file under `dir`, read as text: what runs left for later readers (ledger, reports,
/// audit trail).
fn text_under(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        if entry.file_type().expect("type").is_dir() {
            text.push_str(&text_under(&entry.path()));
        } else {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).expect("file"),
            ));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_set_from_stdin_is_the_only_password_a_real_sync_needs() {
    let world = World::kcmo().await;
    use_stored_password(&world);

    let out = reqsync(&world, &["secret", "set", "reqcheck"], Some(""), None);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(printed(&out).contains("empty"), "{}", printed(&out));

    let out = reqsync(
        &world,
        &["secret", "set", "reqcheck"],
        Some(&format!("{PASSWORD}\n")),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(!printed(&out).contains(PASSWORD), "{}", printed(&out));
    let file = store_file(&world, "reqcheck");
    // Named as the config names it: relative to where reqsync runs.
    let relative = file.strip_prefix(world.dir.path()).expect("in the world");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&relative.display().to_string()),
        "{}",
        printed(&out)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&world.path("secrets")), 0o700);
        assert_eq!(mode(&file), 0o600);
    }

    let out = reqsync(&world, &["secret", "check", "reqcheck"], None, None);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let said = printed(&out);
    assert!(
        said.contains(&format!("{} characters", PASSWORD.len())),
        "{said}"
    );
    assert!(said.contains("the secret store"), "{said}");
    assert!(said.contains("reqcheck.password_secret"), "{said}");
    assert!(!said.contains(PASSWORD), "{said}");

    let out = reqsync(&world, &["run", "-vv"], None, None);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(
        !printed(&out).contains(PASSWORD),
        "the password was printed"
    );
    assert!(!world.dump().patients.is_empty(), "the sync sent patients");
    assert!(!text_under(&world.path(".reqsync")).contains(PASSWORD));

    let out = reqsync(&world, &["secret", "remove", "reqcheck"], None, None);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(printed(&out).contains("still uses it"), "{}", printed(&out));
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_credentials_supply_the_secrets_and_the_store_is_not_consulted() {
    let world = World::kcmo().await;
    use_stored_password(&world);
    world.edit_config(
        "# username_env = \"REQCHECK_USERNAME\"",
        "username_secret = \"reqcheck-user\"",
    );
    // A stale value in the store: with systemd's credentials present it must not be used.
    let out = reqsync(
        &world,
        &["secret", "set", "reqcheck"],
        Some("stale-password\n"),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));

    // What `LoadCredential=reqcheck:…` leaves for the service: files owned by root that the
    // service's user reads through an ACL, which the mode bits show as group-readable.
    let credentials = tempfile::tempdir().expect("credentials dir");
    for (name, value) in [("reqcheck", PASSWORD), ("reqcheck-user", USER)] {
        let path = credentials.path().join(name);
        std::fs::write(&path, format!("{value}\n")).expect("credential");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).expect("chmod");
        }
    }

    let out = reqsync(&world, &["run", "-vv"], None, Some(credentials.path()));
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(
        !printed(&out).contains(PASSWORD),
        "the password was printed"
    );
    assert!(!world.dump().patients.is_empty(), "the sync sent patients");

    let out = reqsync(
        &world,
        &["secret", "check", "reqcheck"],
        None,
        Some(credentials.path()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(
        printed(&out).contains("$CREDENTIALS_DIRECTORY"),
        "{}",
        printed(&out)
    );

    // A secret the unit does not load is an error naming the unit's fix, not a fallback to
    // the store.
    std::fs::remove_file(credentials.path().join("reqcheck")).expect("remove");
    let out = reqsync(&world, &["run"], None, Some(credentials.path()));
    assert_eq!(out.status.code(), Some(3), "{}", printed(&out));
    assert!(
        printed(&out).contains("LoadCredential=reqcheck:"),
        "{}",
        printed(&out)
    );
    assert!(!printed(&out).contains("stale-password"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_password_reqcheck_refuses_is_never_printed_even_at_vv() {
    let world = World::kcmo().await;
    use_stored_password(&world);
    let wrong = "not-the-e2e-password-9f3";
    let out = reqsync(
        &world,
        &["secret", "set", "reqcheck"],
        Some(&format!("{wrong}\r\n")),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let out = reqsync(&world, &["run", "-vv"], None, None);
    assert_ne!(
        out.status.code(),
        Some(0),
        "ReqCheck accepted a wrong password"
    );
    let said = printed(&out);
    assert!(!said.contains(wrong), "the password was printed: {said}");
    assert!(!said.contains(PASSWORD), "{said}");
    assert!(!text_under(&world.path(".reqsync")).contains(wrong));
    assert!(world.dump().patients.is_empty());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_store_file_other_users_can_read_is_refused_with_the_chmod_fix() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::kcmo().await;
    use_stored_password(&world);
    let out = reqsync(&world, &["secret", "set", "reqcheck"], Some(PASSWORD), None);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let file = store_file(&world, "reqcheck");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let relative = file.strip_prefix(world.dir.path()).expect("in the world");

    for args in [&["run", "-vv"][..], &["secret", "check", "reqcheck"][..]] {
        let out = reqsync(&world, args, None, None);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", printed(&out));
        let said = printed(&out);
        assert!(
            said.contains(&format!("chmod 600 {}", relative.display())),
            "{args:?}: {said}"
        );
        assert!(!said.contains(PASSWORD), "{args:?}: {said}");
    }
    assert!(world.dump().patients.is_empty());

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = reqsync(&world, &["run"], None, None);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_names_the_command_that_stores_it() {
    let world = World::kcmo().await;
    use_stored_password(&world);
    for args in [
        &["run"][..],
        &["secret", "check", "reqcheck"][..],
        &["secret", "remove", "reqcheck"][..],
    ] {
        let out = reqsync(&world, args, None, None);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", printed(&out));
        assert!(
            printed(&out).contains("reqsync secret set reqcheck"),
            "{args:?}: {}",
            printed(&out)
        );
    }
    assert!(world.dump().patients.is_empty());
}

/// The source URL's `password_secret=`, found in the config's own `[secrets] dir`: a real sync
/// from the SQL Server test double with both passwords from the store and none in the
/// environment.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_password_secret_is_read_from_the_configs_secrets_dir() {
    use std::sync::Arc;

    use crate::sources_sqlserver::{SQL_PASSWORD, SQL_USER, double};
    use crate::tds_double::clinic::ClinicTables;

    let double = double(Arc::new(ClinicTables::kcmo()), None).await;
    let world = World::kcmo().await;
    world.edit_config(
        &format!("url = \"{}\"", world.source_url),
        &format!(
            "url = \"sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?password_secret=sql&encrypt=false\"",
            double.port()
        ),
    );
    use_stored_password(&world);
    let config = world.path("reqsync.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("{text}\n[secrets]\ndir = \"private/store\"\n"),
    )
    .expect("config");

    for (name, value) in [("sql", SQL_PASSWORD), ("reqcheck", PASSWORD)] {
        let out = reqsync(&world, &["secret", "set", name], Some(value), None);
        assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    }
    assert!(
        !world.path("secrets").exists(),
        "the default store was used"
    );
    let out = reqsync(&world, &["secret", "check", "sql"], None, None);
    assert!(
        printed(&out).contains("the source URL's password_secret"),
        "{}",
        printed(&out)
    );

    let out = reqsync(&world, &["run", "-vv"], None, None);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let said = printed(&out);
    assert!(
        !said.contains(SQL_PASSWORD) && !said.contains(PASSWORD),
        "{said}"
    );
    assert_eq!(world.dump().patients.len(), 21);
}

/// ReqCheck's 401 is reported naming where reqsync read what it sent, so an operator whose
/// password is in the store is not sent to look for a `REQCHECK_PASSWORD` that was never used.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_stored_password_is_reported_naming_the_secret_not_the_environment() {
    let world = World::kcmo().await;
    use_stored_password(&world);
    let wrong = "not-the-password-5150";
    let out = reqsync(
        &world,
        &["secret", "set", "reqcheck"],
        Some(&format!("{wrong}\n")),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));

    let out = reqsync(&world, &["run", "-vv"], None, None);
    assert_eq!(out.status.code(), Some(6), "{}", printed(&out));
    let said = printed(&out);
    assert!(said.contains("refused the credentials (401)"), "{said}");
    assert!(
        said.contains("the user name in the environment variable REQCHECK_USERNAME"),
        "{said}"
    );
    assert!(
        said.contains("the password in the stored secret `reqcheck`"),
        "{said}"
    );
    assert!(!said.contains("REQCHECK_PASSWORD"), "{said}");
    assert!(!said.contains(wrong), "{said}");
    assert!(world.dump().patients.is_empty(), "nothing was stored");
}

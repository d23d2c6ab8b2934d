//! `reqsync demo`: the whole job on the embedded default, in one command.
//!
//! Seeds a SQLite clinic database (the real KCMO test patients plus synthetic ones), writes a
//! project folder, starts the development receiver in-process, runs a full sync, changes a few
//! source rows the way a clinic would (a corrected name, a new dose, a corrected dose), and runs
//! an incremental sync that sends only the patients those changes touch.

use std::path::{Path, PathBuf};

use clap::Args;
use reqsync_receiver::{ReceiverConfig, RunningReceiver, Store};
use reqsync_runtime::config::Config;
use reqsync_runtime::pipeline::{Delivery, Progress, RunOptions};
use reqsync_runtime::reqcheck::{Credentials, ReqCheckClient, Secret};
use reqsync_seeder::{SeedOptions, SyntheticOptions, seed_sqlite};

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo project, clinic database and receiver database (recreated).
    #[arg(long, default_value = "reqsync-demo")]
    pub dir: PathBuf,
    /// Synthetic patients to add to the 21 KCMO patients.
    #[arg(long, default_value_t = 500)]
    pub synthetic: u32,
    /// Seed of the synthetic generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(args: DemoArgs) -> Result<u8, Failure> {
    let dir = &args.dir;
    let (clinic, received) = fresh_databases(dir)?;

    println!("== 1. clinic database: {}", clinic.display());
    seed_clinic(&clinic, &args)?;

    // A throwaway password for this process only: the receiver and the client share it in
    // memory, so no secret is written anywhere.
    let password = random_password();
    let running = start_receiver(&received, &password).await?;
    println!(
        "\n== 2. development receiver at {} (database {})",
        running.base_url(),
        received.display()
    );

    let config = write_project(dir, &running)?;
    let audit_file = config.audit_file.clone();
    let credentials = Credentials {
        username: "demo".into(),
        password: Secret::new(password),
        origin: None,
    };
    let client = super::run::client(&config, credentials)?;

    println!("\n== 3. first sync (ReqCheck has nothing yet: full extract)");
    sync(config.clone(), &client).await?;

    println!(
        "\n== 4. the clinic changes a few rows: a corrected name, a new dose, a corrected dose"
    );
    let touched =
        change_source(&clinic).or_exit(exit::SOURCE, "cannot change the demo database")?;
    println!("changed patients {touched:?}");

    println!("\n== 5. incremental sync (window from ReqCheck's heartbeat)");
    sync(config, &client).await?;

    println!("\n== 6. what the receiver holds");
    let dump = Store::open_read_only(&received)
        .and_then(|s| s.dump())
        .or_exit(exit::INTERNAL, "cannot read the receiver database")?;
    print!("{}", dump.summary());
    verify_audit_trail(&audit_file)?;
    println!(
        "\nproject folder: {} (see `reqsync receiver dump --db {} --json` for the records)",
        dir.display(),
        received.display()
    );
    running
        .shutdown()
        .await
        .or_exit(exit::INTERNAL, "receiver shutdown failed")?;
    Ok(exit::OK)
}

/// Creates the demo folder and removes the databases an earlier demo left in it; returns the
/// paths of the clinic's and the receiver's databases.
fn fresh_databases(dir: &Path) -> Result<(PathBuf, PathBuf), Failure> {
    reqsync_private_fs::create_dir_all(dir)
        .or_exit(exit::CONFIG, "cannot create the demo folder")?;
    let clinic = dir.join("clinic.db");
    let received = dir.join("receiver.db");
    for f in [&clinic, &received] {
        if f.exists() {
            std::fs::remove_file(f)
                .or_exit(exit::CONFIG, "cannot remove the previous demo database")?;
        }
    }
    Ok((clinic, received))
}

/// Seeds the clinic database with the KCMO patients and the synthetic ones asked for.
fn seed_clinic(clinic: &Path, args: &DemoArgs) -> Result<(), Failure> {
    let seeded = seed_sqlite(
        clinic,
        &SeedOptions {
            kcmo: true,
            cdsi: false,
            synthetic: (args.synthetic > 0)
                .then(|| SyntheticOptions::new(args.synthetic, args.seed)),
        },
    )
    .or_exit(exit::SOURCE, "seeding the demo database failed")?;
    println!("{seeded}");
    Ok(())
}

/// The development receiver on a free loopback port, storing into `db_path`.
async fn start_receiver(db_path: &Path, password: &str) -> Result<RunningReceiver, Failure> {
    reqsync_receiver::start(ReceiverConfig {
        listen: "127.0.0.1:0"
            .parse()
            .or_exit(exit::INTERNAL, "bad listen address")?,
        db_path: db_path.to_path_buf(),
        username: "demo".into(),
        password: password.to_owned(),
        tls: None,
        faults: reqsync_receiver::Faults::default(),
    })
    .await
    .or_exit(exit::DELIVERY, "cannot start the development receiver")
}

/// Writes the project folder pointing at the clinic database and the receiver, and opens its
/// audit trail: the syncs are audited as `reqsync run` audits them.
fn write_project(dir: &Path, receiver: &RunningReceiver) -> Result<Config, Failure> {
    reqsync_project::write_project(dir, "sqlite://clinic.db", &receiver.base_url(), true)
        .or_exit(exit::CONFIG, "cannot write the demo project")?;
    let config = Config::load(&dir.join("reqsync.toml"))
        .or_exit(exit::CONFIG, "cannot load the demo config")?;
    reqsync_runtime::audit::open(&config.audit_file).map_err(|e| Failure::new(exit::CONFIG, e))?;
    Ok(config)
}

/// One sync of the demo project, as `reqsync run` does it; prints its report.
async fn sync(config: Config, client: &ReqCheckClient) -> Result<(), Failure> {
    let report = super::run::execute(
        config,
        Delivery::ReqCheck(client.clone()),
        &RunOptions::default(),
        &Progress::auto(),
    )
    .await?;
    print!("{report}");
    Ok(())
}

/// Checks the chain of the audit trail both syncs wrote, and says so.
fn verify_audit_trail(audit_file: &Path) -> Result<(), Failure> {
    reqsync_runtime::audit::flush();
    match reqsync_runtime::audit::verify_file(audit_file) {
        Ok(reqsync_runtime::audit::Verdict::Intact(summary)) => {
            println!(
                "audit trail {}: {} entries, chain intact (`reqsync audit verify` checks it)",
                audit_file.display(),
                summary.entries
            );
            Ok(())
        }
        Ok(reqsync_runtime::audit::Verdict::Broken { at, .. }) => Err(Failure::new(
            exit::AUDIT_BROKEN,
            anyhow::anyhow!("the demo's audit trail is broken at {at}"),
        )),
        Err(e) => Err(Failure::new(exit::AUDIT_BROKEN, e)),
    }
}

/// Applies the demo's source changes, stamped with the current clinic time; returns the
/// patients they touch.
fn change_source(path: &Path) -> rusqlite::Result<Vec<i64>> {
    let now = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Chicago)
        .naive_local();
    let stamp = now.format("%Y-%m-%d %H:%M:%S").to_string();
    let today = now.date().format("%Y-%m-%d").to_string();
    let conn = rusqlite::Connection::open(path)?;
    conn.execute(
        "UPDATE mpfile SET fname = 'Zoë', updated_at = ?1 WHERE patno = 101",
        [&stamp],
    )?;
    conn.execute(
        "INSERT INTO imfile (im_id, patno, vac_code, vac_desc, cvx, mvx, admin_date, history, updated_at)
         SELECT MAX(im_id) + 1, 102, 'FLUZ', 'Flu, Preservative Free', 140, 'UNK', ?1, 'N', ?2 FROM imfile",
        [&today, &stamp],
    )?;
    conn.execute(
        "UPDATE imfile SET lot_no = 'K1330', updated_at = ?1
         WHERE im_id = (SELECT MIN(im_id) FROM imfile WHERE patno = 103)",
        [&stamp],
    )?;
    Ok(vec![101, 102, 103])
}

fn random_password() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

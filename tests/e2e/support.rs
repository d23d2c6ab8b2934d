//! Shared fixtures: a seeded clinic database, a running receiver, a project folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqsync::config::Config;
use reqsync::pipeline::{Delivery, Pipeline, Progress, RunError, RunOptions, RunReport};
use reqsync::receiver::{self, Dump, ReceiverConfig, RunningReceiver, Store, TlsFiles};
use reqsync::reqcheck::client::ClientOptions;
use reqsync::reqcheck::{Credentials, ReqCheckClient, Secret};
use reqsync::seed::{SeedOptions, SeedReport, seed_sqlite};
use reqsync::source::{self, SourceUrl};
use reqsync::transform::{SandboxLimits, TransformEngine};
use serde_json::Value;

pub const USER: &str = "e2e";
pub const PASSWORD: &str = "e2e-password";

/// A project folder with a seeded clinic database and a receiver listening on loopback.
pub struct World {
    pub dir: tempfile::TempDir,
    pub receiver: RunningReceiver,
    pub seeded: SeedReport,
}

impl World {
    pub async fn new(seed: SeedOptions) -> World {
        Self::build(seed, None).await
    }

    /// A world whose receiver serves HTTPS with the test certificate (see `tls_ca`).
    pub async fn with_tls(seed: SeedOptions) -> World {
        let dir = testdata();
        Self::build(
            seed,
            Some(TlsFiles {
                cert: dir.join("server.pem"),
                key: dir.join("server.key"),
            }),
        )
        .await
    }

    async fn build(seed: SeedOptions, tls: Option<TlsFiles>) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let seeded = seed_sqlite(&dir.path().join("clinic.db"), &seed).expect("seed");
        let receiver = receiver::start(ReceiverConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            db_path: dir.path().join("receiver.db"),
            username: USER.into(),
            password: PASSWORD.into(),
            tls,
        })
        .await
        .expect("receiver starts");
        reqsync::project::write_project(
            dir.path(),
            "sqlite://clinic.db",
            &receiver.base_url(),
            false,
        )
        .expect("project");
        World {
            dir,
            receiver,
            seeded,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn clinic(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("clinic.db")).expect("clinic db")
    }

    pub fn config(&self) -> Config {
        let mut config = Config::load(&self.path("reqsync.toml")).expect("config");
        // Compiled modules are shared by every test of the run: compiling is the slow part.
        config.cache_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("module-cache");
        config
    }

    /// Edits the project's config file (e.g. a batch size) before a run.
    pub fn edit_config(&self, from: &str, to: &str) {
        let path = self.path("reqsync.toml");
        let text = std::fs::read_to_string(&path).expect("read config");
        assert!(text.contains(from), "config has no `{from}`");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write config");
    }

    pub async fn run(&self, options: RunOptions) -> Result<RunReport, RunError> {
        run_with(self.config(), options).await
    }

    pub fn dump(&self) -> Dump {
        Store::open_read_only(self.path("receiver.db"))
            .expect("open receiver db")
            .dump()
            .expect("dump")
    }
}

/// The receiver's test TLS material: a throwaway CA and a localhost certificate it signed.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/receiver/testdata")
}

pub async fn run_with(config: Config, options: RunOptions) -> Result<RunReport, RunError> {
    let url = SourceUrl::parse(&config.source_url, Some(config.base_dir())).expect("source url");
    let source = source::open(&url).expect("source");
    let engine = TransformEngine::new(SandboxLimits::default(), Some(config.cache_dir.clone()))
        .expect("engine");
    let credentials = Credentials {
        username: USER.into(),
        password: Secret::new(PASSWORD),
    };
    let client_options = ClientOptions {
        ca_file: config.reqcheck.ca_file.clone(),
        ..ClientOptions::default()
    };
    let client =
        ReqCheckClient::new(&config.reqcheck.url, credentials, &client_options).expect("client");
    Pipeline {
        config,
        source,
        engine,
        delivery: Delivery::ReqCheck(client),
    }
    .run(&options, &Progress::hidden())
    .await
}

/// Patients in the receiver by number.
pub fn patients(dump: &Dump) -> BTreeMap<i64, Value> {
    dump.patients
        .iter()
        .map(|p| {
            (
                p["patient_number"].as_i64().expect("patient_number"),
                p.clone(),
            )
        })
        .collect()
}

/// Doses in the receiver grouped by patient number.
pub fn doses(dump: &Dump) -> BTreeMap<i64, Vec<Value>> {
    let mut out: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for d in &dump.vaccine_doses {
        out.entry(d["patient_number"].as_i64().expect("patient_number"))
            .or_default()
            .push(d.clone());
    }
    out
}

/// Reads a corpus CSV from the repository's data folder.
pub fn corpus_csv(rel: &str) -> Vec<BTreeMap<String, String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
        .join(rel);
    let mut reader = csv::Reader::from_path(&path).expect("corpus csv");
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

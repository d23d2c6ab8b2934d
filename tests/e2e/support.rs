//! Shared fixtures: a seeded clinic database (SQLite, or a schema of its own on the PostgreSQL
//! test server), a running receiver, a project folder; `guests`: the Python and JavaScript
//! modules held to the Rust ones.

pub mod guests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use reqsync_receiver::{Dump, ReceiverConfig, RunningReceiver, Store, TlsFiles};
use reqsync_runtime::config::Config;
use reqsync_runtime::ledger::{Ledger, RequestRecord, RunRecord};
use reqsync_runtime::pipeline::{
    Delivery, JobReport, Pipeline, Progress, RunError, RunOptions, RunReport,
};
use reqsync_runtime::reqcheck::client::ClientOptions;
use reqsync_runtime::reqcheck::{Credentials, CredentialsSources, ReqCheckClient, Secret};
use reqsync_runtime::source::{self, PostgresSource, PostgresUrl, SourceUrl};
use reqsync_runtime::transform::{ModuleCache, SandboxLimits, TransformEngine};
use reqsync_seeder::{SeedOptions, SeedReport, seed_postgres, seed_sqlite};
use serde_json::Value;

pub const USER: &str = "e2e";
pub const PASSWORD: &str = "e2e-password";

/// The engine a world's clinic database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `clinic.db` in the world's folder.
    Sqlite,
    /// A schema of its own on the PostgreSQL test server ([`PostgresSchema`]).
    Postgres,
}

/// A project folder with a seeded clinic database and a receiver listening on loopback.
pub struct World {
    pub dir: tempfile::TempDir,
    pub receiver: RunningReceiver,
    pub seeded: SeedReport,
    /// The `[source] url` of the project's config.
    pub source_url: String,
    /// The PostgreSQL schema, for [`Engine::Postgres`] worlds; dropped with the world.
    pub postgres: Option<PostgresSchema>,
}

impl World {
    pub async fn new(seed: SeedOptions) -> World {
        Self::build(Engine::Sqlite, seed, None).await
    }

    /// A world whose clinic database runs on `engine`, seeded alike on every engine.
    pub async fn on(engine: Engine, seed: SeedOptions) -> World {
        Self::build(engine, seed, None).await
    }

    /// A world whose receiver serves HTTPS with the test certificate (see `tls_ca`).
    pub async fn with_tls(seed: SeedOptions) -> World {
        let dir = testdata();
        Self::build(
            Engine::Sqlite,
            seed,
            Some(TlsFiles {
                cert: dir.join("server.pem"),
                key: dir.join("server.key"),
            }),
        )
        .await
    }

    async fn build(engine: Engine, seed: SeedOptions, tls: Option<TlsFiles>) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let (source_url, seeded, postgres) = match engine {
            Engine::Sqlite => {
                let seeded = seed_sqlite(&dir.path().join("clinic.db"), &seed).expect("seed");
                ("sqlite://clinic.db".to_string(), seeded, None)
            }
            Engine::Postgres => {
                let schema = PostgresSchema::create("world").await;
                let seeded = seed_postgres(&schema.source(), &seed)
                    .await
                    .expect("seed PostgreSQL");
                (schema.url.clone(), seeded, Some(schema))
            }
        };
        let receiver = reqsync_receiver::start(ReceiverConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            db_path: dir.path().join("receiver.db"),
            username: USER.into(),
            password: PASSWORD.into(),
            tls,
            faults: reqsync_receiver::Faults::default(),
        })
        .await
        .expect("receiver starts");
        reqsync_project::write_project(dir.path(), &source_url, &receiver.base_url(), false)
            .expect("project");
        share_cache_key(&dir.path().join(".reqsync").join("state"));
        World {
            dir,
            receiver,
            seeded,
            source_url,
            postgres,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn clinic(&self) -> rusqlite::Connection {
        assert!(self.postgres.is_none(), "clinic() is the SQLite database");
        rusqlite::Connection::open(self.path("clinic.db")).expect("clinic db")
    }

    /// A session on a PostgreSQL world's schema.
    pub async fn clinic_postgres(&self) -> tokio_postgres::Client {
        self.postgres
            .as_ref()
            .expect("a PostgreSQL world")
            .client()
            .await
    }

    pub fn config(&self) -> Config {
        let mut config = Config::load(&self.path("reqsync.toml")).expect("config");
        // Compiled modules are shared by every test of the run: compiling is the slow part.
        config.cache_dir = module_cache_dir();
        config
    }

    /// A project over the real KCMO corpus whose config (what a spawned `reqsync` reads)
    /// uses the suite's shared module cache: what most command-line tests start from.
    pub async fn kcmo() -> World {
        let world = World::new(SeedOptions {
            kcmo: true,
            ..SeedOptions::default()
        })
        .await;
        world.share_module_cache();
        world
    }

    /// Points the project's config file (what a spawned `reqsync` reads) at the shared
    /// module cache.
    pub fn share_module_cache(&self) {
        self.edit_config(
            "look_back = \"1d\"",
            &format!(
                "look_back = \"1d\"\ncache_dir = \"{}\"",
                module_cache_dir().display()
            ),
        );
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

/// `reqsync ARGS…` in the world's folder with the test credentials and the default log level,
/// as a user (or cron) runs it.
pub fn reqsync(world: &World, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_reqsync"));
    command.args(args);
    as_the_user(&mut command, world)
        .output()
        .expect("run reqsync")
}

/// `command` run as [`reqsync`] runs the binary: in the world's folder, with the test
/// credentials and the default log level.
pub fn as_the_user<'a>(
    command: &'a mut std::process::Command,
    world: &World,
) -> &'a mut std::process::Command {
    command
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env_remove("REQSYNC_LOG")
}

/// The compiled-module cache folder every test of the run shares: compiling is the slow part.
pub fn module_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("module-cache")
}

/// `XDG_STATE_HOME` for spawned `reqsync transform` commands: where they find the shared
/// cache's key ([`module_cache_key`]).
pub fn xdg_state_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-state")
}

/// The key the shared cache's entries are tagged with (made by the first test that asks).
pub fn module_cache_key() -> PathBuf {
    xdg_state_home().join("reqsync").join("module-cache.key")
}

/// The shared cache, opened with its key.
pub fn module_cache() -> ModuleCache {
    ModuleCache::open(&module_cache_dir(), &module_cache_key()).expect("shared module cache")
}

/// Gives a project with state folder `state_dir` the shared cache's key, so that its runs use
/// (and add to) the entries the other tests compiled instead of compiling every module again.
pub fn share_cache_key(state_dir: &Path) {
    drop(module_cache());
    reqsync_private_fs::create_dir_all(state_dir).expect("state folder");
    // `copy` keeps the key's owner-only permissions.
    std::fs::copy(module_cache_key(), state_dir.join("module-cache.key")).expect("cache key");
}

/// The receiver's test TLS material: a throwaway CA and a localhost certificate it signed.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../receiver/src/testdata")
}

pub async fn run_with(config: Config, options: RunOptions) -> Result<RunReport, RunError> {
    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(config.module_cache().expect("module cache")),
    )
    .expect("engine");
    run_on(config, engine, None, options).await
}

/// A run on a given engine, with hot-swappable modules when `modules` is given (the service).
pub async fn run_on(
    config: Config,
    engine: TransformEngine,
    modules: Option<std::sync::Arc<reqsync_runtime::transform::ModuleRegistry>>,
    options: RunOptions,
) -> Result<RunReport, RunError> {
    let url = SourceUrl::parse(&config.source_url, Some(config.base_dir())).expect("source url");
    let source = source::open(&url, config.clinic_tz).expect("source");
    let credentials = Credentials {
        username: USER.into(),
        password: Secret::new(PASSWORD),
        origin: None,
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
        modules,
    }
    .run(&options, &Progress::hidden())
    .await
}

/// A job's rejected rows as (key, finding tags), in order, read back the way the report is.
pub fn rejected(job: &JobReport) -> Vec<(String, Vec<String>)> {
    let mut rows = Vec::new();
    job.rejected_rows
        .try_for_each(|r| {
            rows.push((
                r.key.to_string(),
                r.findings.iter().map(str::to_string).collect(),
            ));
            Ok::<_, std::io::Error>(())
        })
        .expect("rejected rows read back");
    rows
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

// ---- PostgreSQL ---------------------------------------------------------------------------

/// The clinic time zone of the default project config.
pub const CLINIC_TZ: chrono_tz::Tz = chrono_tz::America::Chicago;

/// The PostgreSQL test server's URL. The PostgreSQL tests need a real server and fail, never
/// skip, without one.
pub fn postgres_url() -> String {
    std::env::var("REQSYNC_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "REQSYNC_TEST_POSTGRES_URL is not set: the PostgreSQL source tests need a real \
             server. Run ./scripts/test (it starts one), or `eval \"$(./scripts/test-postgres)\"` \
             before `cargo test`"
        )
    })
}

/// [`postgres_url`], parsed.
pub fn postgres_base() -> PostgresUrl {
    PostgresUrl::parse(&postgres_url(), None).expect("REQSYNC_TEST_POSTGRES_URL parses")
}

/// A schema of its own in the test database, so tests running in parallel never see each
/// other's tables. Dropped (with everything in it) when the value is.
pub struct PostgresSchema {
    pub name: String,
    /// The test server URL with `search_path` set to this schema.
    pub url: String,
}

impl PostgresSchema {
    /// A fresh, empty schema named after the process, a counter and `tag` (lower-case).
    pub async fn create(tag: &str) -> PostgresSchema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}_{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let base = postgres_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let schema = PostgresSchema {
            url: format!("{base}{separator}search_path={name}"),
            name,
        };
        // A leftover of a crashed run with the same process id must not leak rows in.
        schema
            .client()
            .await
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}",
                schema.name
            ))
            .await
            .expect("create the test schema");
        schema
    }

    pub fn parsed_url(&self) -> PostgresUrl {
        PostgresUrl::parse(&self.url, None).expect("schema URL")
    }

    pub fn source(&self) -> PostgresSource {
        PostgresSource::open(&self.parsed_url(), CLINIC_TZ).expect("open the PostgreSQL source")
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        self.source()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the PostgreSQL test server: {e}"))
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be the current thread: a thread of its
        // own with its own runtime removes the schema. Best effort: a failure leaves a schema
        // that the next run with the same name drops.
        let opened =
            PostgresUrl::parse(&self.url, None).and_then(|u| PostgresSource::open(&u, CLINIC_TZ));
        let Ok(source) = opened else {
            return;
        };
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(client) = source.connect().await {
                    let _ = client.batch_execute(&statement).await;
                }
            });
        })
        .join();
    }
}

// ---- Delivery faults (tests/e2e/delivery_faults.rs) ---------------------------------------

impl World {
    /// A world whose receiver fails requests on purpose, as `reqsync receiver --fault SPEC`
    /// does for each of `specs`. The receiver that `World::new` started is replaced by one
    /// with the fault plan on the same database, and the project's config points at it.
    pub async fn with_faults(seed: SeedOptions, specs: &[&str]) -> World {
        let mut world = World::new(seed).await;
        let faulty = reqsync_receiver::start(ReceiverConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            db_path: world.path("receiver.db"),
            username: USER.into(),
            password: PASSWORD.into(),
            tls: None,
            faults: reqsync_receiver::Faults::parse(specs).expect("fault specs"),
        })
        .await
        .expect("receiver with faults starts");
        let plain = std::mem::replace(&mut world.receiver, faulty);
        world.edit_config(
            &format!("url = \"{}\"", plain.base_url()),
            &format!("url = \"{}\"", world.receiver.base_url()),
        );
        plain.shutdown().await.expect("plain receiver stops");
        world
    }
}

/// The client `reqsync run` builds from `config` (retry policy, `allow_insecure_http` and
/// proxy included), with the test user and the given password.
pub fn client_for(
    config: &Config,
    password: &str,
) -> Result<ReqCheckClient, reqsync_runtime::reqcheck::ClientError> {
    let credentials = Credentials {
        username: USER.into(),
        password: Secret::new(password),
        origin: Some(CredentialsSources {
            username: config.reqcheck.username.clone(),
            password: config.reqcheck.password.clone(),
        }),
    };
    let options = ClientOptions {
        timeout: config.reqcheck.timeout,
        ca_file: config.reqcheck.ca_file.clone(),
        retry: config.reqcheck.retry.clone(),
        allow_insecure_http: config.reqcheck.allow_insecure_http,
        proxy: config.reqcheck.proxy.clone(),
        proxy_credentials: config
            .reqcheck
            .proxy_credentials
            .as_ref()
            .map(|sources| Credentials::load_proxy(sources).expect("the proxy's credentials")),
    };
    ReqCheckClient::new(&config.reqcheck.url, credentials, &options)
}

/// A run like [`run_with`], delivering through `client`.
pub async fn run_through(
    config: Config,
    client: ReqCheckClient,
    options: RunOptions,
) -> Result<RunReport, RunError> {
    let url = SourceUrl::parse(&config.source_url, Some(config.base_dir())).expect("source url");
    let source = source::open(&url, config.clinic_tz).expect("source");
    let engine = TransformEngine::new(
        SandboxLimits::default(),
        Some(config.module_cache().expect("module cache")),
    )
    .expect("engine");
    Pipeline {
        config,
        source,
        engine,
        delivery: Delivery::ReqCheck(client),
        modules: None,
    }
    .run(&options, &Progress::hidden())
    .await
}

/// The newest run in the world's run ledger, with its requests.
pub fn last_run(world: &World) -> RunRecord {
    let ledger = Ledger::open(&world.config().state_dir).expect("ledger");
    let runs = ledger.recent_runs(1, true).expect("runs");
    runs.into_iter().next().expect("a run")
}

/// The requests the ledger holds for `job` in `run`.
pub fn requests<'a>(run: &'a RunRecord, job: &str) -> &'a [RequestRecord] {
    &run.jobs
        .iter()
        .find(|j| j.job == job)
        .unwrap_or_else(|| panic!("job {job} in the ledger"))
        .requests
}

//! The SQL Server source, driving the real tiberius driver over TCP (and TLS) against the TDS
//! test double: the KCMO sync end to end, every column type, the window boundary, faults,
//! login and TLS failures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use reqsync_receiver::{ReceiverConfig, RunningReceiver};
use reqsync_runtime::pipeline::{RunError, RunOptions};
use reqsync_runtime::source::sqlserver::SqlServerUrl;
use reqsync_runtime::source::{ColumnInfo, Query, Source, SourceError, SqlServerSource, Value};

use crate::support::{PASSWORD, USER, run_with, testdata};
use crate::sync::assert_receiver_equals_corpus;
use crate::tds_double::clinic::ClinicTables;
use crate::tds_double::{
    Cell, Col, DoubleConfig, Fault, Handler, ParamValue, Reply, Request, ResultSet, SqlType,
    TdsDouble, TlsIdentity,
};

pub(crate) const SQL_USER: &str = "reqsync_reader";
pub(crate) const SQL_PASSWORD: &str = "double-password";

pub(crate) fn ca_signed() -> TlsIdentity {
    TlsIdentity {
        cert: testdata().join("server.pem"),
        key: testdata().join("server.key"),
    }
}

fn self_signed() -> TlsIdentity {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/tds_double/testdata");
    TlsIdentity {
        cert: dir.join("pinned.pem"),
        key: dir.join("pinned.key"),
    }
}

pub(crate) async fn double(handler: Arc<dyn Handler>, tls: Option<TlsIdentity>) -> TdsDouble {
    TdsDouble::start(double_config(handler, tls)).await
}

fn double_config(handler: Arc<dyn Handler>, tls: Option<TlsIdentity>) -> DoubleConfig {
    DoubleConfig {
        user: SQL_USER.into(),
        password: SQL_PASSWORD.into(),
        windows_accounts: Vec::new(),
        databases: vec!["clinic".into()],
        missing_database_error: 4060,
        tls,
        handler,
    }
}

/// A project folder whose source is the double, and a receiver.
pub(crate) struct SqlWorld {
    dir: tempfile::TempDir,
    receiver: RunningReceiver,
}

impl SqlWorld {
    pub(crate) async fn new(source_url: impl FnOnce(&std::path::Path) -> String) -> SqlWorld {
        let dir = tempfile::tempdir().expect("temp dir");
        reqsync_private_fs::write_atomically(
            &dir.path().join("sql-password"),
            format!("{SQL_PASSWORD}\n").as_bytes(),
        )
        .expect("password file");
        let receiver = reqsync_receiver::start(ReceiverConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            db_path: dir.path().join("receiver.db"),
            username: USER.into(),
            password: PASSWORD.into(),
            tls: None,
            faults: reqsync_receiver::Faults::default(),
        })
        .await
        .expect("receiver starts");
        let url = source_url(dir.path());
        reqsync_project::write_project(dir.path(), &url, &receiver.base_url(), false)
            .expect("project");
        crate::support::share_cache_key(&dir.path().join(".reqsync").join("state"));
        SqlWorld { dir, receiver }
    }

    /// The project folder.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub(crate) fn config(&self) -> reqsync_runtime::config::Config {
        let mut config =
            reqsync_runtime::config::Config::load(&self.dir.path().join("reqsync.toml"))
                .expect("config");
        config.cache_dir = crate::support::module_cache_dir();
        config
    }

    pub(crate) fn dump(&self) -> reqsync_receiver::Dump {
        reqsync_receiver::Store::open_read_only(self.dir.path().join("receiver.db"))
            .expect("receiver db")
            .dump()
            .expect("dump")
    }
}

/// `sqlserver://` URL of a double, with the password in a file (tests run in parallel; the
/// environment is shared).
pub(crate) fn url_for(double: &TdsDouble, options: &str) -> String {
    format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?password_file=sql-password{options}",
        double.port()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn kcmo_full_sync_over_tls_receiver_holds_exactly_the_source() {
    let tables = Arc::new(ClinicTables::kcmo());
    let double = double(tables, Some(ca_signed())).await;
    let ca = testdata().join("ca.pem");
    let world = SqlWorld::new(|_| {
        url_for(
            &double,
            &format!("&trust_ca_file={}&connect_timeout=10s", ca.display()),
        )
    })
    .await;
    assert!(world.receiver.base_url().starts_with("http://"));
    let report = run_with(world.config(), RunOptions::default())
        .await
        .expect("sync from the SQL Server double");
    let [patients_job, doses_job] = &report.jobs[..] else {
        panic!("two jobs")
    };
    assert_eq!(
        (patients_job.counts.read, patients_job.counts.emitted),
        (21, 21)
    );
    assert_eq!(
        (doses_job.counts.read, doses_job.counts.emitted),
        (177, 177)
    );
    let dump = world.dump();
    assert_eq!((dump.patients.len(), dump.vaccine_doses.len()), (21, 177));
    assert_receiver_equals_corpus(&dump, "kcmo");
    assert!(
        double
            .app_names
            .lock()
            .expect("apps")
            .iter()
            .all(|a| a == "reqsync"),
        "the server sees the application name"
    );

    // Both queries went through sp_executesql with the window start as a typed parameter, after
    // asking the server which type the column compared with has. The dose query runs twice:
    // once, before any request, to check its columns against its module, then for the rows.
    let served = double.served();
    let describes = served
        .iter()
        .filter(|r| r.sql.starts_with("EXEC sp_describe_undeclared_parameters"))
        .count();
    assert_eq!(describes, 3, "one type question per query execution");
    let queries: Vec<&Request> = served
        .iter()
        .filter(|r| r.sql.contains("FROM mpfile") || r.sql.contains("FROM imfile"))
        .collect();
    assert_eq!(queries.len(), 3);
    for q in queries {
        assert!(q.rpc, "parameterized through sp_executesql");
        assert!(!q.sql.contains(">= ?"), "every ? became a parameter");
        assert!(q.sql.contains(">= @P1"));
        assert_eq!(
            q.param("@P1").map(ParamValue::type_name).as_deref(),
            Some("datetime2(7)")
        );
        // The dose query's second `?` is a parameter of its own.
        if q.sql.contains("FROM imfile") {
            assert!(q.sql.contains(">= @P2"), "{}", q.sql);
            assert_eq!(q.param("@P2"), q.param("@P1"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kcmo_sync_without_tls_when_encryption_is_turned_off() {
    let double = double(Arc::new(ClinicTables::kcmo()), None).await;
    let world = SqlWorld::new(|_| url_for(&double, "&encrypt=false")).await;
    run_with(world.config(), RunOptions::default())
        .await
        .expect("plain-text sync");
    let dump = world.dump();
    assert_eq!((dump.patients.len(), dump.vaccine_doses.len()), (21, 177));
    assert_receiver_equals_corpus(&dump, "kcmo");
}

/// The KCMO clinic on a server whose `sp_describe_undeclared_parameters` describes nothing.
struct Undescribed(Arc<ClinicTables>);

impl Handler for Undescribed {
    fn execute(&self, request: &Request) -> Reply {
        self.0.execute(request)
    }
    fn describe_window_parameter(&self, _sql: &str) -> Result<Option<String>, (u32, String)> {
        Ok(None)
    }
    fn transaction(&self, event: crate::tds_double::Transaction) {
        self.0.transaction(event)
    }
}

/// A server that describes nothing for the window parameter gets it as `datetime2(7)`, as when
/// it cannot describe it, and the same warning naming the query (CONFIG.md promises one); the
/// sync goes on.
#[tokio::test(flavor = "multi_thread")]
async fn an_undescribed_window_parameter_is_bound_as_datetime2_with_a_warning() {
    let double = double(Arc::new(Undescribed(Arc::new(ClinicTables::kcmo()))), None).await;
    let world = SqlWorld::new(|_| url_for(&double, "&encrypt=false")).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["run"])
        .current_dir(world.dir())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", PASSWORD)
        .env_remove("REQSYNC_LOG")
        .output()
        .expect("reqsync run");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    for query in ["patients.sql", "vaccine_doses.sql"] {
        assert!(
            log.lines().any(|l| l.contains("WARN")
                && l.contains("did not describe the window parameter")
                && l.contains(query)),
            "{query}: {log}"
        );
    }
    let bound: Vec<String> = double
        .served()
        .iter()
        .filter_map(|r| r.param("@P1").map(ParamValue::type_name))
        .filter(|t| t != "nvarchar")
        .collect();
    assert!(
        !bound.is_empty() && bound.iter().all(|t| t == "datetime2(7)"),
        "{bound:?}"
    );
    assert_eq!(world.dump().patients.len(), 21);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_broken_mid_result_fails_the_run_and_sends_nothing_of_that_job() {
    let tables = Arc::new(ClinicTables::kcmo());
    // The dose query's first execution is the run's column check before any request (it reads
    // no rows); the second is the read that breaks.
    tables.inject_after("doses", 1, Fault::DropAfterRows(60));
    let double = double(tables, None).await;
    let world = SqlWorld::new(|_| url_for(&double, "&encrypt=false")).await;
    let err = run_with(world.config(), RunOptions::default())
        .await
        .expect_err("a broken connection must fail the run");
    assert!(matches!(err, RunError::Source(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("vaccine_doses.sql"), "{msg}");
    assert!(msg.contains("connection"), "{msg}");
    let dump = world.dump();
    assert_eq!(dump.patients.len(), 21, "the patients job finished before");
    assert!(
        dump.vaccine_doses.is_empty(),
        "no dose of a half-read result was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_a_login_failure_naming_the_login_not_the_password() {
    let double = double(Arc::new(ClinicTables::kcmo()), None).await;
    let world = SqlWorld::new(|dir| {
        reqsync_private_fs::write_atomically(&dir.join("wrong-password"), b"not-it").expect("file");
        format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?password_file=wrong-password&encrypt=false",
            double.port()
        )
    })
    .await;
    let err = run_with(world.config(), RunOptions::default())
        .await
        .expect_err("login must fail");
    let msg = err.to_string();
    assert!(matches!(err, RunError::Source(_)), "{msg}");
    assert!(msg.contains("login failed"), "{msg}");
    assert!(msg.contains(SQL_USER), "{msg}");
    assert!(!msg.contains("not-it"), "{msg}");
    assert!(world.dump().data_imports.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_database_is_named() {
    let double = double(Arc::new(ClinicTables::kcmo()), None).await;
    let url = format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinc?encrypt=false",
        double.port()
    );
    let err = stream_error(&url, "SELECT 1").await;
    assert!(err.contains("`clinc` does not exist"), "{err}");
    assert!(err.contains("error 4060"), "{err}");
}

/// Babelfish for PostgreSQL answers a login to a missing database with error 911 alone, not
/// SQL Server's 4060: reported the same way, not as a bare server message.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_database_answered_with_911_is_named_as_4060_is() {
    let double = TdsDouble::start(DoubleConfig {
        missing_database_error: 911,
        ..double_config(Arc::new(ClinicTables::kcmo()), None)
    })
    .await;
    let url = format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinc?encrypt=false",
        double.port()
    );
    let err = stream_error(&url, "SELECT 1").await;
    assert!(err.contains("`clinc` does not exist"), "{err}");
    assert!(err.contains("error 911"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_host_says_so() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("sqlserver://{SQL_USER}@127.0.0.1:{port}/clinic?encrypt=false");
    let err = stream_error(&url, "SELECT 1").await;
    assert!(err.contains("host unreachable"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

/// A handler answering every query with one fixed reply.
struct Fixed(Reply, Option<String>);

impl Handler for Fixed {
    fn execute(&self, _: &Request) -> Reply {
        self.0.clone()
    }
    fn describe_window_parameter(&self, _sql: &str) -> Result<Option<String>, (u32, String)> {
        Ok(Some(
            self.1.clone().unwrap_or_else(|| "datetime2(7)".into()),
        ))
    }
}

fn source(url: &str) -> SqlServerSource {
    // A folder per call: tests run in parallel, and a shared file being rewritten by one test
    // read as empty by another (the password is read when the source opens).
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path().to_path_buf();
    reqsync_private_fs::write_atomically(&dir.join("sql-password"), SQL_PASSWORD.as_bytes())
        .expect("password file");
    let url = if url.contains("password_file") {
        url.to_string()
    } else {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}password_file=sql-password")
    };
    let parsed = SqlServerUrl::parse(&url, Some(&dir)).expect("url");
    SqlServerSource::open(&parsed, chrono_tz::America::Chicago).expect("open")
}

fn start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2016, 9, 28)
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .expect("start")
}

async fn collect(
    src: &SqlServerSource,
    name: &str,
    sql: &str,
    start: NaiveDateTime,
) -> Result<(Vec<ColumnInfo>, Vec<Vec<Value>>), SourceError> {
    let query = Query {
        name: name.into(),
        sql: sql.into(),
    };
    let mut stream = src.stream(&query, start, 3).await?;
    let mut rows = Vec::new();
    while let Some(batch) = stream.next_batch().await {
        let batch = batch?;
        assert!(batch.len() <= 3, "batches hold at most batch_rows rows");
        rows.extend(batch.to_rows());
    }
    Ok((stream.columns.clone(), rows))
}

async fn stream_error(url: &str, sql: &str) -> String {
    let src = source(url);
    collect(&src, "q.sql", sql, start())
        .await
        .expect_err("must fail")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_clinic_column_type_maps_exactly_and_nulls_everywhere() {
    use SqlType::*;
    let columns = vec![
        Col::new("tiny", TinyInt),
        Col::new("small", SmallInt),
        Col::new("i", Int),
        Col::new("big", BigInt),
        Col::new("flag", Bit),
        Col::new("dec", Decimal(9, 2)),
        Col::new("num", Numeric(18, 0)),
        Col::new("cash", Money),
        Col::new("petty", SmallMoney),
        Col::new("r", Real),
        Col::new("f", Float),
        Col::new("c", Char(3)),
        Col::new("vc", VarChar(20)),
        Col::new("vcmax", VarCharMax),
        Col::new("nc", NChar(2)),
        Col::new("nvc", NVarChar(40)),
        Col::new("nvcmax", NVarCharMax),
        Col::new("t", Text),
        Col::new("nt", NText),
        Col::new("d", Date),
        Col::new("tm", Time(7)),
        Col::new("dt", DateTime),
        Col::new("sdt", SmallDateTime),
        Col::new("dt2", DateTime2(7)),
        Col::new("dto", DateTimeOffset(7)),
        Col::new("guid", UniqueIdentifier),
    ];
    let day = NaiveDate::from_ymd_opt(2016, 9, 28).expect("day");
    let at = |h, m, s, n| day.and_time(NaiveTime::from_hms_nano_opt(h, m, s, n).expect("time"));
    let guid = uuid::Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").expect("uuid");
    let long = "x".repeat(9000);
    let values = vec![
        Cell::Int(255),
        Cell::Int(-32768),
        Cell::Int(2_147_483_647),
        Cell::Int(9_007_199_254_740_993),
        Cell::Bool(true),
        Cell::Unscaled(-1234),
        Cell::Unscaled(123_456_789_012_345_678),
        Cell::Unscaled(123_456_789), // 12345.6789
        Cell::Unscaled(-5),          // -0.0005
        Cell::Float(0.1),
        Cell::Float(1.0e300),
        Cell::Text("AB ".into()),
        Cell::Text("Café".into()),
        Cell::Text(long.clone()),
        Cell::Text("Zo".into()),
        Cell::Text("Zoë 😀".into()),
        Cell::Text("ünïcode ".repeat(700)),
        Cell::Text("old text".into()),
        Cell::Text("old ntext ✓".into()),
        Cell::Date(day),
        Cell::Time(NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_900).expect("t")),
        Cell::Timestamp(at(12, 0, 0, 6_666_667)), // stored as 2/300 s
        Cell::Timestamp(at(12, 1, 0, 0)),
        Cell::Timestamp(at(12, 0, 0, 123_456_700)),
        Cell::Offset(at(17, 0, 0, 100), -300),
        Cell::Guid(guid),
    ];
    let nulls = vec![Cell::Null; columns.len()];
    let handler = Fixed(
        Reply::rows(ResultSet {
            columns,
            rows: vec![values, nulls],
        }),
        None,
    );
    let double = double(Arc::new(handler), None).await;
    let src = source(&format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false",
        double.port()
    ));
    let (cols, rows) = collect(&src, "types.sql", "SELECT * FROM everything", start())
        .await
        .expect("types");
    let declared: Vec<&str> = cols.iter().map(|c| c.declared_type.as_str()).collect();
    assert_eq!(
        declared,
        vec![
            "TINYINT",
            "SMALLINT",
            "INT",
            "BIGINT",
            "BIT",
            "DECIMAL",
            "NUMERIC",
            "MONEY",
            "MONEY",
            "REAL",
            "FLOAT",
            "CHAR",
            "VARCHAR",
            "VARCHAR",
            "NCHAR",
            "NVARCHAR",
            "NVARCHAR",
            "TEXT",
            "NTEXT",
            "DATE",
            "TIME",
            "DATETIME",
            "DATETIME",
            "DATETIME2",
            "DATETIMEOFFSET",
            "UNIQUEIDENTIFIER"
        ]
    );
    let text = |s: &str| Value::Text(s.into());
    let expected = vec![
        Value::Int(255),
        Value::Int(-32768),
        Value::Int(2_147_483_647),
        Value::Int(9_007_199_254_740_993),
        Value::Bool(true),
        text("-12.34"),
        Value::Int(123_456_789_012_345_678),
        text("12345.6789"),
        text("-0.0005"),
        Value::Float(0.1),
        Value::Float(1.0e300),
        text("AB "),
        text("Café"),
        text(&long),
        text("Zo"),
        text("Zoë 😀"),
        text(&"ünïcode ".repeat(700)),
        text("old text"),
        text("old ntext ✓"),
        Value::Date(day),
        Value::Time(NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_900).expect("t")),
        // datetime: 2/300 s, rounded down to the nanosecond.
        Value::Timestamp(at(12, 0, 0, 6_666_666)),
        Value::Timestamp(at(12, 1, 0, 0)),
        // datetime2 keeps every 100 ns tick.
        Value::Timestamp(at(12, 0, 0, 123_456_700)),
        // datetimeoffset: the instant (17:00 UTC) in clinic time (Chicago, -05:00).
        Value::Timestamp(at(12, 0, 0, 100)),
        text("6F9619FF-8B86-D011-B42D-00C04FC964FF"),
    ];
    assert_eq!(rows.len(), 2);
    for (i, (got, want)) in rows[0].iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "column {}", cols[i].name);
    }
    assert!(
        rows[1].iter().all(|v| *v == Value::Null),
        "NULL in every type"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_column_is_an_error_naming_it() {
    let handler = Fixed(
        Reply::rows(ResultSet {
            columns: vec![
                Col::new("patno", SqlType::Int),
                Col::new("photo", SqlType::VarBinary(100)),
                Col::new("thumb", SqlType::Binary(3)),
            ],
            rows: vec![vec![
                Cell::Int(1),
                Cell::Bytes(vec![1, 2, 3]),
                Cell::Bytes(vec![4, 5, 6]),
            ]],
        }),
        None,
    );
    let double = double(Arc::new(handler), None).await;
    let err = stream_error(
        &format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false",
            double.port()
        ),
        "SELECT patno, photo FROM mpfile",
    )
    .await;
    assert!(err.contains("`photo`"), "{err}");
    assert!(err.contains("binary"), "{err}");
    assert!(err.contains("q.sql"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_syntax_error_shows_the_server_message_and_the_query_file_without_the_sql_it_quotes() {
    let handler = Fixed(
        Reply::Error {
            number: 102,
            class: 15,
            message: "Incorrect syntax near 'FORM'.".into(),
        },
        None,
    );
    let double = double(Arc::new(handler), None).await;
    let err = stream_error(
        &format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false",
            double.port()
        ),
        "SELECT patno FORM mpfile WHERE updated_at >= ?",
    )
    .await;
    assert!(err.contains("q.sql"), "{err}");
    // The fragment of SQL the server quotes is left out (a file named as the query by mistake
    // could be a secret); the line says where to look.
    assert!(err.contains("Incorrect syntax near '…'"), "{err}");
    assert!(err.contains("at line 1") && !err.contains("FORM"), "{err}");
    assert!(err.contains("102"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_message_that_may_quote_a_value_is_withheld() {
    let handler = Fixed(
        Reply::Error {
            number: 245,
            class: 16,
            message: "Conversion failed when converting the varchar value 'Jane' to data type int."
                .into(),
        },
        None,
    );
    let double = double(Arc::new(handler), None).await;
    let err = stream_error(
        &format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false",
            double.port()
        ),
        "SELECT CAST(lname AS int) FROM mpfile",
    )
    .await;
    assert!(err.contains("245"), "{err}");
    assert!(!err.contains("Jane"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_times_out_with_a_clear_error() {
    let rows = (0..5).map(|i| vec![Cell::Int(i)]).collect();
    let handler = Fixed(
        Reply::Rows(
            ResultSet {
                columns: vec![Col::new("id", SqlType::Int)],
                rows,
            },
            Some(Fault::StallAfterRows(2, Duration::from_secs(5))),
        ),
        None,
    );
    let double = double(Arc::new(handler), None).await;
    let err = stream_error(
        &format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false&query_timeout=1s",
            double.port()
        ),
        "SELECT id FROM t",
    )
    .await;
    assert!(err.contains("query_timeout"), "{err}");
    assert!(err.contains("q.sql"), "{err}");
}

/// A table `t(id, at)` whose `at` column has the given type; `at >= @P1` evaluated exactly as
/// SQL Server compares values of that type.
struct Timeline {
    ty: SqlType,
    rows: Vec<(i64, NaiveDateTime)>,
}

impl Handler for Timeline {
    fn execute(&self, request: &Request) -> Reply {
        let start = request
            .param("@P1")
            .and_then(ParamValue::exact)
            .expect("a date/time @P1");
        let stored = |t: NaiveDateTime| match self.ty {
            SqlType::DateTime => {
                let (days, fragments) = crate::tds_double::tokens::datetime_parts(t);
                ParamValue::DateTime { days, fragments }
                    .exact()
                    .expect("datetime")
            }
            _ => crate::tds_double::request::exact_of(t),
        };
        Reply::rows(ResultSet {
            columns: vec![Col::new("id", SqlType::Int), Col::new("at", self.ty)],
            rows: self
                .rows
                .iter()
                .filter(|(_, t)| stored(*t) >= start)
                .map(|(id, t)| vec![Cell::Int(*id), Cell::Timestamp(*t)])
                .collect(),
        })
    }

    fn describe_window_parameter(&self, _sql: &str) -> Result<Option<String>, (u32, String)> {
        Ok(Some(self.ty.sql_name()))
    }
}

async fn ids_since(double: &TdsDouble, start: NaiveDateTime) -> Vec<i64> {
    let src = source(&format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false",
        double.port()
    ));
    let (_, rows) = collect(
        &src,
        "window.sql",
        "SELECT id, at FROM t WHERE at >= ?",
        start,
    )
    .await
    .expect("window query");
    rows.iter()
        .map(|r| match r[0] {
            Value::Int(i) => i,
            _ => panic!("id"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn window_start_against_a_datetime_column_neither_loses_nor_repeats_boundary_rows() {
    let noon = start();
    let ms = |n: i64| noon + chrono::Duration::milliseconds(n);
    // Stored as ticks 0, 1 (3.33 ms) and 2 (6.67 ms) after noon.
    let double = double(
        Arc::new(Timeline {
            ty: SqlType::DateTime,
            rows: vec![(0, ms(0)), (1, ms(3)), (2, ms(7))],
        }),
        None,
    )
    .await;
    // A start between ticks 0 and 1: the row at tick 0 is before it. Rounding the start to the
    // nearest tick would select it again (sent twice across two runs).
    assert_eq!(ids_since(&double, ms(1)).await, vec![1, 2]);
    // A start equal to a row's value as the source reads it back selects that row again.
    let ns = |n: i64| noon + chrono::Duration::nanoseconds(n);
    assert_eq!(ids_since(&double, ns(3_333_333)).await, vec![1, 2]);
    assert_eq!(ids_since(&double, ns(6_666_666)).await, vec![2]);
    // Just after tick 2: nothing.
    assert_eq!(ids_since(&double, ns(6_666_667)).await, Vec::<i64>::new());
    let served = double.served();
    let last = served.last().expect("served");
    assert_eq!(
        last.param("@P1").map(ParamValue::type_name).as_deref(),
        Some("datetime"),
        "the window start is bound as the column's own type"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn window_start_against_a_datetime2_column_keeps_100ns_precision() {
    let noon = start();
    let ns = |n: i64| noon + chrono::Duration::nanoseconds(n);
    let double = double(
        Arc::new(Timeline {
            ty: SqlType::DateTime2(7),
            rows: vec![
                (0, ns(123_456_600)),
                (1, ns(123_456_700)),
                (2, ns(123_456_800)),
            ],
        }),
        None,
    )
    .await;
    assert_eq!(ids_since(&double, ns(123_456_700)).await, vec![1, 2]);
    // A start finer than 100 ns rounds up, never down onto the row before it.
    assert_eq!(ids_since(&double, ns(123_456_701)).await, vec![2]);
    let served = double.served();
    assert_eq!(
        served
            .last()
            .and_then(|r| r.param("@P1"))
            .map(ParamValue::type_name)
            .as_deref(),
        Some("datetime2(7)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_trusted_ca_succeeds_and_an_unknown_issuer_is_refused() {
    let rows = vec![vec![Cell::Int(1)]];
    let handler = Arc::new(Fixed(
        Reply::rows(ResultSet {
            columns: vec![Col::new("id", SqlType::Int)],
            rows,
        }),
        None,
    ));
    let double = double(handler, Some(ca_signed())).await;
    let base = format!("sqlserver://{SQL_USER}@127.0.0.1:{}/clinic", double.port());
    let trusted = source(&format!(
        "{base}?trust_ca_file={}",
        testdata().join("ca.pem").display()
    ));
    let (_, rows) = collect(&trusted, "q.sql", "SELECT 1 AS id", start())
        .await
        .expect("TLS with the clinic CA");
    assert_eq!(rows, vec![vec![Value::Int(1)]]);

    // Default: the system trust store, which does not know the test CA.
    let err = stream_error(&base, "SELECT 1 AS id").await;
    assert!(err.contains("TLS"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(err.contains("trust_ca_file"), "{err}");
    assert!(
        !err.contains("Config::"),
        "the driver's API advice is not for operators: {err}"
    );

    // The right CA but the wrong name.
    let err = stream_error(
        &format!(
            "{base}?trust_ca_file={}&hostname_in_certificate=sql01.clinic.example",
            testdata().join("ca.pem").display()
        ),
        "SELECT 1 AS id",
    )
    .await;
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_self_signed_certificate_is_trusted_and_only_it() {
    let handler = Arc::new(Fixed(
        Reply::rows(ResultSet {
            columns: vec![Col::new("id", SqlType::Int)],
            rows: vec![vec![Cell::Int(1)]],
        }),
        None,
    ));
    let pinned_double = double(handler.clone(), Some(self_signed())).await;
    let pinned = self_signed().cert;
    let src = source(&format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?trust_server_certificate={}",
        pinned_double.port(),
        pinned.display()
    ));
    collect(&src, "q.sql", "SELECT 1 AS id", start())
        .await
        .expect("the pinned certificate is trusted");

    // The same pin against a server presenting another certificate fails.
    let other = double(handler, Some(ca_signed())).await;
    let err = stream_error(
        &format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?trust_server_certificate={}",
            other.port(),
            pinned.display()
        ),
        "SELECT 1 AS id",
    )
    .await;
    assert!(err.contains("TLS"), "{err}");
}

/// A self-signed certificate that is also marked as a CA (`basicConstraints CA:TRUE`, what
/// `openssl req -x509` writes by default) cannot be pinned: the driver checks a pinned
/// certificate as a trust anchor with rustls' WebPKI verifier, which refuses a CA certificate as
/// the server's own (`CaUsedAsEndEntity`), and tiberius offers no way to plug in a verifier
/// that compares the certificate itself. The error says so and what works instead (CONFIG.md).
#[tokio::test(flavor = "multi_thread")]
async fn pinning_a_self_signed_certificate_marked_as_a_ca_fails_saying_why_and_what_works() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/tds_double/testdata");
    let identity = TlsIdentity {
        cert: dir.join("pinned-ca.pem"),
        key: dir.join("pinned-ca.key"),
    };
    let handler = Arc::new(Fixed(
        Reply::rows(ResultSet {
            columns: vec![Col::new("id", SqlType::Int)],
            rows: vec![vec![Cell::Int(1)]],
        }),
        None,
    ));
    let double = double(handler, Some(identity.clone())).await;
    let err = stream_error(
        &format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?trust_server_certificate={}",
            double.port(),
            identity.cert.display()
        ),
        "SELECT 1 AS id",
    )
    .await;
    assert!(err.contains("TLS"), "{err}");
    assert!(err.contains("CA:TRUE"), "{err}");
    assert!(err.contains("trust_ca_file"), "{err}");
    assert!(!err.contains("Config::"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_encryption_is_refused_by_default() {
    let double = double(Arc::new(ClinicTables::kcmo()), None).await;
    let err = stream_error(
        &format!("sqlserver://{SQL_USER}@127.0.0.1:{}/clinic", double.port()),
        "SELECT 1",
    )
    .await;
    assert!(err.contains("does not offer encryption"), "{err}");
    assert!(err.contains("encrypt=false"), "{err}");
}

/// `queries/vaccine_doses.sql` compares the window start twice (`imfile.updated_at >= ?` and
/// `mpfile.updated_at >= ?`). SQL Server's `sp_describe_undeclared_parameters` refuses to
/// describe a parameter used more than once (error 11508, which the double answers too), so
/// each `?` is its own parameter, `@P1` and `@P2`: both are described and bound as the column's
/// type (`datetime` here, not the `datetime2(7)` fallback), and the real query file selects the
/// full history of exactly the patients changed since the window start, by either table.
#[tokio::test(flavor = "multi_thread")]
async fn the_dose_query_binds_and_describes_each_window_placeholder_as_its_own_parameter() {
    let noon = start();
    let old = NaiveDate::from_ymd_opt(2016, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("old");
    let mut tables = crate::tds_double::clinic::Tables::default();
    tables.created.extend(["mpfile", "imfile"]);
    let corpus = reqsync_seeder::Corpus::Kcmo;
    for mut p in corpus.patients().expect("patients") {
        // Patient 101 changed since the window start in `mpfile` only.
        p.updated_at = if p.patno == 101 { noon } else { old };
        tables.patients.insert(p.patno, p);
    }
    let mut doses = corpus.doses().expect("doses");
    for d in &mut doses {
        d.updated_at = old;
    }
    // One dose of patient 102 changed in `imfile` only.
    let changed = doses
        .iter_mut()
        .find(|d| d.patno == 102)
        .expect("a dose of patient 102");
    changed.updated_at = noon + chrono::Duration::milliseconds(10);
    tables
        .doses
        .extend(doses.iter().map(|d| (d.im_id, d.clone())));
    let mut clinic = ClinicTables::with(tables);
    clinic.updated_at = SqlType::DateTime;
    let double = double(Arc::new(clinic), None).await;

    let sql = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../queries/vaccine_doses.sql"),
    )
    .expect("the default dose query");
    let src = source(&format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false",
        double.port()
    ));
    let (columns, rows) = collect(&src, "vaccine_doses.sql", &sql, noon)
        .await
        .expect("the dose query");
    assert_eq!(columns[0].name, "im_id");
    let got: Vec<i64> = rows
        .iter()
        .map(|r| match r[0] {
            Value::Int(i) => i,
            _ => panic!("im_id"),
        })
        .collect();
    let mut expected: Vec<&reqsync_seeder::Dose> = doses
        .iter()
        .filter(|d| d.patno == 101 || d.patno == 102)
        .collect();
    expected.sort_by_key(|d| (d.patno, d.admin_date, d.im_id));
    let expected: Vec<i64> = expected.iter().map(|d| d.im_id).collect();
    assert!(expected.len() > 2, "both patients have doses");
    assert_eq!(got, expected);

    let served = double.served();
    let describe = served
        .iter()
        .find(|r| r.sql.starts_with("EXEC sp_describe_undeclared_parameters"))
        .expect("the type question");
    let tsql = match describe.param("@P1") {
        Some(ParamValue::Text(t)) => t,
        other => panic!("@tsql: {other:?}"),
    };
    assert_eq!(tsql.matches("@P1").count(), 1, "{tsql}");
    assert_eq!(tsql.matches("@P2").count(), 1, "{tsql}");
    let query = served
        .iter()
        .find(|r| r.sql.contains("FROM imfile"))
        .expect("the dose query");
    assert_eq!(query.params.len(), 2, "one value per placeholder");
    for name in ["@P1", "@P2"] {
        assert_eq!(
            query.param(name).map(ParamValue::type_name).as_deref(),
            Some("datetime"),
            "{name} is bound as the column's own type"
        );
    }
}

//! The PostgreSQL source against a real PostgreSQL server (`scripts/test-postgres` starts one
//! and exports `REQSYNC_TEST_POSTGRES_URL`; without it these tests fail, they never skip):
//! seeding, the KCMO and CDSi syncs end to end with the default queries, streaming with
//! backpressure, every mapped type, the window start against every column type, and the errors
//! an operator meets (unreachable host, timeout, TLS, login, missing database, bad query).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use reqsync_runtime::pipeline::RunOptions;
use reqsync_runtime::source::postgres::{PasswordSource, TlsMode};
use reqsync_runtime::source::{
    ColumnInfo, ConnectFailure, PostgresSource, PostgresUrl, Query, RowBatch, Source, SourceError,
    SqliteSource, Value,
};
use reqsync_seeder::model::{sqlite_date, sqlite_datetime};
use reqsync_seeder::{
    InvalidKind, SeedOptions, SourceTable, SyntheticOptions, seed_postgres, seed_sqlite,
};

use crate::support::{CLINIC_TZ, Engine, PostgresSchema, World, postgres_base, rejected};
use crate::sync::assert_receiver_equals_corpus;

fn window_start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2016, 9, 28)
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .expect("date")
}

fn query(name: &str, sql: &str) -> Query {
    Query {
        name: name.into(),
        sql: sql.into(),
    }
}

/// Every row of a query, with its columns.
async fn read_all(
    source: &impl Source,
    sql: &str,
    batch_rows: usize,
) -> Result<(Vec<ColumnInfo>, Vec<RowBatch>), SourceError> {
    let mut stream = source
        .stream(&query("queries/test.sql", sql), window_start(), batch_rows)
        .await?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next_batch().await {
        batches.push(batch?);
    }
    Ok((stream.columns.clone(), batches))
}

async fn rows(source: &impl Source, sql: &str) -> Vec<Vec<Value>> {
    let (_, batches) = read_all(source, sql, 100).await.expect("query");
    batches.iter().flat_map(RowBatch::to_rows).collect()
}

/// A value spelled out, for assertions on test data (`Value`'s `Debug` hides values on purpose).
/// Dates and timestamps in the SQLite text convention, so both engines spell them alike.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Text(s) => format!("text {s:?}"),
        Value::Bool(b) => format!("bool {b}"),
        Value::Date(d) => format!("date {}", sqlite_date(*d)),
        Value::Time(t) => format!("time {t}"),
        Value::Timestamp(t) => format!("timestamp {}", sqlite_datetime(*t)),
        Value::Bytes(b) => format!("bytes {b:?}"),
    }
}

fn shown(rows: &[Vec<Value>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(show).collect()).collect()
}

async fn schema_with(tag: &str, sql: &str) -> PostgresSchema {
    let schema = PostgresSchema::create(tag).await;
    schema
        .client()
        .await
        .batch_execute(sql)
        .await
        .expect("test table");
    schema
}

fn connect_failure(e: &SourceError) -> ConnectFailure {
    match e {
        SourceError::Connect { kind, .. } => *kind,
        other => panic!("expected a connection error, got: {other}"),
    }
}

// ---- seeding and the sync end to end -------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn kcmo_seeded_by_the_cli_syncs_and_the_receiver_equals_the_source() {
    let world = World::on(Engine::Postgres, SeedOptions::default()).await;
    // The path: `reqsync seed --db postgres://…` loads the clinic schema and KCMO data.
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["seed", "--db", &world.source_url, "--kcmo"])
        .output()
        .expect("run reqsync seed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("seeded 21 patients and 177 doses"),
        "{stdout}"
    );

    let report = world.run(RunOptions::default()).await.expect("sync");
    let [patients_job, doses_job] = &report.jobs[..] else {
        panic!("two jobs")
    };
    let counts = |c: &reqsync_runtime::pipeline::JobReport| {
        (c.counts.read, c.counts.emitted, c.counts.rejected)
    };
    assert_eq!(counts(patients_job), (21, 21, 0));
    assert_eq!(counts(doses_job), (177, 177, 0));
    assert_eq!(patients_job.records_acknowledged(), 21);
    assert_eq!(doses_job.records_acknowledged(), 177);
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

#[tokio::test(flavor = "multi_thread")]
async fn cdsi_full_sync_from_postgres_receiver_holds_exactly_the_source() {
    let world = World::on(
        Engine::Postgres,
        SeedOptions {
            cdsi: true,
            ..SeedOptions::default()
        },
    )
    .await;
    let report = world.run(RunOptions::default()).await.expect("sync");
    assert_eq!(report.jobs[0].counts.emitted, 928);
    assert_eq!(report.jobs[1].counts.emitted, 2142);
    assert_receiver_equals_corpus(&world.dump(), "cdsi");
}

#[tokio::test(flavor = "multi_thread")]
async fn synthetic_invalid_rows_from_postgres_are_rejected_exactly_as_the_manifest_says() {
    let world = World::on(
        Engine::Postgres,
        SeedOptions {
            synthetic: Some(SyntheticOptions::new(300, 11)),
            ..SeedOptions::default()
        },
    )
    .await;
    let manifest = world
        .seeded
        .synthetic
        .as_ref()
        .expect("synthetic report")
        .invalid
        .clone();
    let report = world.run(RunOptions::default()).await.expect("sync");
    let keys = |job: &reqsync_runtime::pipeline::JobReport| -> BTreeSet<String> {
        rejected(job).into_iter().map(|(key, _)| key).collect()
    };
    let expected_patients: BTreeSet<String> = manifest
        .iter()
        .filter(|r| r.table == SourceTable::Mpfile)
        .map(|r| r.key.to_string())
        .collect();
    // Includes the out-of-range patient numbers, which only a `bigint` column can hold.
    assert_eq!(keys(&report.jobs[0]), expected_patients);
    let rejected_doses = keys(&report.jobs[1]);
    for row in manifest.iter().filter(|r| r.table == SourceTable::Imfile) {
        let held_back = matches!(
            row.kind,
            InvalidKind::OrphanDose | InvalidKind::DoseOfInvalidPatient
        );
        assert_eq!(
            rejected_doses.contains(&row.key.to_string()),
            !held_back,
            "dose {} ({})",
            row.key,
            row.kind
        );
    }
    assert!(world.dump().data_import_errors.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_run_binds_the_window_start_to_timestamp_columns() {
    let world = World::on(
        Engine::Postgres,
        SeedOptions {
            kcmo: true,
            ..SeedOptions::default()
        },
    )
    .await;
    world.run(RunOptions::default()).await.expect("first sync");
    let now = chrono::Utc::now().with_timezone(&CLINIC_TZ).naive_local();
    let db = world.clinic_postgres().await;
    db.execute(
        "UPDATE mpfile SET fname = 'Zoë-Ann', updated_at = $1 WHERE patno = 101",
        &[&now],
    )
    .await
    .expect("rename");
    let report = world
        .run(RunOptions::default())
        .await
        .expect("incremental sync");
    assert_eq!(
        report.jobs[0].counts.read, 1,
        "only the renamed patient is in the window"
    );
    let dose_rows: i64 = db
        .query_one("SELECT count(*) FROM imfile WHERE patno = 101", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(report.jobs[1].counts.read as i64, dose_rows);
    let received = crate::support::patients(&world.dump());
    assert_eq!(received[&101]["first_name"], "Zoë-Ann");
}

#[tokio::test(flavor = "multi_thread")]
async fn seeding_postgres_writes_the_same_rows_as_sqlite_and_is_idempotent() {
    let options = SeedOptions {
        kcmo: true,
        cdsi: false,
        // Includes patient numbers above 2 147 483 647 (the out-of-range kind): `bigint`.
        synthetic: Some(SyntheticOptions::new(400, 7)),
    };
    let schema = PostgresSchema::create("seed").await;
    let pg = schema.source();
    let first = seed_postgres(&pg, &options).await.expect("seed");
    let again = seed_postgres(&pg, &options).await.expect("re-seed");
    assert_eq!(first, again);

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("clinic.db");
    let sqlite_report = seed_sqlite(&path, &options).expect("seed sqlite");
    assert_eq!(first, sqlite_report);
    let sqlite = SqliteSource::open(&path).expect("sqlite source");

    for sql in [
        "SELECT * FROM mpfile ORDER BY patno",
        "SELECT * FROM imfile ORDER BY im_id",
    ] {
        let from_pg = shown(&rows(&pg, sql).await);
        let from_sqlite = shown(&rows(&sqlite, sql).await);
        assert_eq!(from_pg.len(), from_sqlite.len(), "{sql}");
        for (a, b) in from_pg.iter().zip(&from_sqlite) {
            // SQLite stores dates and timestamps as text in the documented convention.
            let b: Vec<String> = b
                .iter()
                .zip(a)
                .map(
                    |(b, a)| match (b.strip_prefix("text "), a.split_once(' ')) {
                        (Some(text), Some((kind @ ("date" | "timestamp"), _))) => {
                            format!("{kind} {}", text.trim_matches('"'))
                        }
                        _ => b.clone(),
                    },
                )
                .collect();
            assert_eq!(*a, b, "{sql}");
        }
    }
    let big: i64 = schema
        .client()
        .await
        .query_one("SELECT max(patno) FROM mpfile", &[])
        .await
        .expect("max")
        .get(0);
    assert!(
        big > 2_147_483_647,
        "out-of-range patient numbers are stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seeding_creates_the_documented_postgres_types() {
    let schema = PostgresSchema::create("types").await;
    seed_postgres(&schema.source(), &SeedOptions::default())
        .await
        .expect("schema only");
    let (columns, _) = read_all(&schema.source(), "SELECT * FROM mpfile", 10)
        .await
        .expect("read");
    let types: BTreeMap<&str, &str> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.declared_type.as_str()))
        .collect();
    assert_eq!(types["patno"], "INT8");
    assert_eq!(types["family_no"], "INT4");
    assert_eq!(types["lname"], "VARCHAR");
    assert_eq!(types["sex"], "BPCHAR");
    assert_eq!(types["birth_date"], "DATE");
    assert_eq!(types["updated_at"], "TIMESTAMP");
}

// ---- streaming -----------------------------------------------------------------------------

async fn server_session(
    monitor: &tokio_postgres::Client,
    application_name: &str,
) -> Option<(Option<String>, Option<String>)> {
    monitor
        .query_opt(
            "SELECT state, wait_event FROM pg_stat_activity WHERE application_name = $1",
            &[&application_name],
        )
        .await
        .expect("pg_stat_activity")
        .map(|r| (r.get(0), r.get(1)))
}

/// 200 000 rows of 400 bytes (80 MB), far more than socket buffers hold.
const BIG_QUERY: &str =
    "SELECT g AS id, repeat('x', 400) AS pad FROM generate_series(1, 200000) AS g";

fn unique_application_name(tag: &str) -> String {
    format!(
        "reqsync_{tag}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    )
}

const BUFFERED: &str = "the server went on sending while the pipeline held one batch of 500 \
                        rows: the reader buffers the result";

#[tokio::test(flavor = "multi_thread")]
async fn a_big_result_streams_with_backpressure_instead_of_being_buffered() {
    let schema = PostgresSchema::create("stream").await;
    let mut url = schema.parsed_url();
    url.application_name = unique_application_name("stream");
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let mut stream = source
        .stream(&query("queries/big.sql", BIG_QUERY), window_start(), 500)
        .await
        .expect("stream");
    let first = stream.next_batch().await.expect("a batch").expect("rows");
    assert_eq!(first.len(), 500);

    // The pipeline holds one batch and takes no more. With backpressure the server then stays
    // blocked writing to us (`ClientWrite`) for as long as we wait; a reader that buffered the
    // result would let it finish sending (80 MB, far beyond socket buffers) and go idle. The
    // samples check that the server makes no headway while we hold the batch; nothing here
    // asserts how long anything takes.
    let monitor = schema.client().await;
    let mut blocked_in_a_row = 0;
    for _ in 0..600 {
        // No session, or an idle one, means the query ended: everything was sent.
        let (state, wait_event) = server_session(&monitor, &url.application_name)
            .await
            .unwrap_or_default();
        assert_eq!(state.as_deref(), Some("active"), "{BUFFERED}");
        // While buffers fill up the server may still move on between samples; once they are
        // full it must stay blocked.
        if wait_event.as_deref() == Some("ClientWrite") {
            blocked_in_a_row += 1;
        } else {
            blocked_in_a_row = 0;
        }
        if blocked_in_a_row == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        blocked_in_a_row, 40,
        "the server never stayed blocked writing to the client"
    );

    // Taking the batches lets every row through, in order, in batches of at most 500.
    let mut next_id = 501;
    while let Some(batch) = stream.next_batch().await {
        let batch = batch.expect("rows");
        assert!(!batch.is_empty() && batch.len() <= 500);
        for row in batch.to_rows() {
            assert_eq!(row[0], Value::Int(next_id));
            next_id += 1;
        }
    }
    assert_eq!(next_id - 1, 200_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_stream_ends_the_server_session() {
    let schema = PostgresSchema::create("drop").await;
    let mut url = schema.parsed_url();
    url.application_name = unique_application_name("drop");
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let mut stream = source
        .stream(&query("queries/big.sql", BIG_QUERY), window_start(), 500)
        .await
        .expect("stream");
    stream.next_batch().await.expect("a batch").expect("rows");
    drop(stream);
    let monitor = schema.client().await;
    let mut gone = false;
    for _ in 0..600 {
        if server_session(&monitor, &url.application_name)
            .await
            .is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the session of an abandoned stream never ended");
}

// ---- types ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn every_listed_type_maps_to_its_value_and_nulls_stay_null() {
    let schema = schema_with(
        "map",
        "CREATE TABLE types (
            id integer PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric,
            n0 numeric(12, 0), f4 real, f8 double precision, t text, vc varchar(10), ch char(3),
            b boolean, d date, tm time, ts timestamp, tz timestamptz, u uuid, by bytea
         );
         INSERT INTO types VALUES
           (1, -32768, 2147483647, 9223372036854775807, 12.50, 123456789012, 0.1, 2.25,
            'Zoë', 'varchar', 'ab', true, '2016-09-28', '13:45:30.25', '2016-09-28 12:00:00.5',
            '2016-09-28 17:00:00+00', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\\x00ff'),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL);",
    )
    .await;
    let (columns, batches) = read_all(&schema.source(), "SELECT * FROM types ORDER BY id", 10)
        .await
        .expect("read");
    let declared: Vec<&str> = columns.iter().map(|c| c.declared_type.as_str()).collect();
    assert_eq!(
        declared,
        [
            "INT4",
            "INT2",
            "INT4",
            "INT8",
            "NUMERIC",
            "NUMERIC",
            "FLOAT4",
            "FLOAT8",
            "TEXT",
            "VARCHAR",
            "BPCHAR",
            "BOOL",
            "DATE",
            "TIME",
            "TIMESTAMP",
            "TIMESTAMPTZ",
            "UUID",
            "BYTEA"
        ]
    );
    let rows: Vec<Vec<Value>> = batches.iter().flat_map(RowBatch::to_rows).collect();
    let date = NaiveDate::from_ymd_opt(2016, 9, 28).expect("date");
    let expected = vec![
        Value::Int(1),
        Value::Int(-32768),
        Value::Int(2_147_483_647),
        Value::Int(i64::MAX),
        // Exact decimal text, never a float.
        Value::Text("12.50".into()),
        // numeric(p, 0) is an integer column.
        Value::Int(123_456_789_012),
        // real 0.1 arrives as 0.1, not 0.100000001490116.
        Value::Float(0.1),
        Value::Float(2.25),
        Value::Text("Zoë".into()),
        Value::Text("varchar".into()),
        // char(n) arrives blank-padded, as PostgreSQL stores it.
        Value::Text("ab ".into()),
        Value::Bool(true),
        Value::Date(date),
        Value::Time(NaiveTime::from_hms_milli_opt(13, 45, 30, 250).expect("time")),
        Value::Timestamp(date.and_hms_milli_opt(12, 0, 0, 500).expect("ts")),
        // 17:00 UTC is noon in Kansas City (CDT).
        Value::Timestamp(date.and_hms_opt(12, 0, 0).expect("ts")),
        Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
        Value::Bytes(vec![0x00, 0xff]),
    ];
    assert_eq!(shown(&rows[..1]), shown(&[expected]));
    let nulls: Vec<Value> = std::iter::once(Value::Int(2))
        .chain(std::iter::repeat_n(Value::Null, 17))
        .collect();
    assert_eq!(shown(&rows[1..]), shown(&[nulls]));
}

#[tokio::test(flavor = "multi_thread")]
async fn numeric_values_arrive_exact() {
    let schema = PostgresSchema::create("numeric").await;
    let got = rows(
        &schema.source(),
        "SELECT 123456789012345678901234567890.000000001::numeric,
                -0.000123::numeric, 'NaN'::numeric, 0::numeric(5, 2), 10000::numeric,
                1180591620717411303424::numeric(30, 0), (-42)::numeric(10, 0)",
    )
    .await;
    assert_eq!(
        shown(&got),
        vec![vec![
            "text \"123456789012345678901234567890.000000001\"",
            "text \"-0.000123\"",
            "text \"NaN\"",
            "text \"0.00\"",
            "text \"10000\"",
            // Too big for 64 bits: stays exact as text.
            "text \"1180591620717411303424\"",
            "int -42",
        ]]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_values_and_types_name_the_column_not_the_value() {
    let schema = PostgresSchema::create("unreadable").await;
    let source = schema.source();
    let e = read_all(&source, "SELECT 1 AS id, interval '1 day' AS gap", 10)
        .await
        .expect_err("interval is not mapped");
    let msg = e.to_string();
    assert!(
        msg.contains("`gap`") && msg.contains("interval") && msg.contains("::text"),
        "{msg}"
    );
    let e = read_all(
        &source,
        "SELECT d AS visit FROM (VALUES ('2016-01-01'::date), ('infinity'::date)) AS v(d)",
        10,
    )
    .await
    .expect_err("infinity");
    let msg = e.to_string();
    assert!(
        msg.contains("`visit`") && msg.contains("row 2") && msg.contains("infinite"),
        "{msg}"
    );
}

// ---- the window start ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_window_start_binds_as_the_type_each_comparison_needs() {
    // Row 1 is just before 2016-09-28 12:00 clinic time in every column, rows 2 and 3 at or
    // after it. The timestamptz column holds instants: 16:59:59.999999 UTC is 11:59:59.999999
    // in Kansas City, so a start taken as UTC would wrongly include row 1.
    let schema = schema_with(
        "window",
        "CREATE TABLE w (id integer, ts timestamp, tstz timestamptz, d date, txt text);
         INSERT INTO w VALUES
           (1, '2016-09-28 11:59:59.999999', '2016-09-28 16:59:59.999999+00', '2016-09-27',
               '2016-09-28 11:59:59'),
           (2, '2016-09-28 12:00:00', '2016-09-28 12:00:00-05', '2016-09-28',
               '2016-09-28 12:00:00'),
           (3, '2016-09-29 00:00:00', '2016-09-28 16:00:00-06', '2016-09-29',
               '2016-09-28 12:00:00.5');",
    )
    .await;
    let source = schema.source();
    for condition in [
        "ts >= ?",
        "tstz >= ?",
        // A date column: the start's whole day is read again, never skipped.
        "d >= ?",
        // Text in the SQLite convention compares as text.
        "txt >= ?",
        // Several `?`, one parameter; mixed types agree because the session's TimeZone is the
        // clinic's.
        "ts >= ? AND tstz >= ?",
        "tstz >= ? AND ts >= ?",
    ] {
        let sql = format!("SELECT id FROM w WHERE {condition} ORDER BY id");
        let ids: Vec<String> = rows(&source, &sql)
            .await
            .iter()
            .map(|r| show(&r[0]))
            .collect();
        assert_eq!(ids, ["int 2", "int 3"], "{condition}");
    }

    let e = read_all(&source, "SELECT id FROM w WHERE id >= ?", 10)
        .await
        .expect_err("integer parameter");
    let msg = e.to_string();
    assert!(
        msg.contains("int4") && msg.contains("?::timestamp"),
        "{msg}"
    );
    let e = read_all(&source, "SELECT id FROM w WHERE ts >= ? AND id > $2", 10)
        .await
        .expect_err("two parameters");
    assert!(e.to_string().contains("2 distinct parameters"), "{e}");
}

// ---- errors --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn query_errors_name_the_query_file_and_quote_the_server() {
    let schema = PostgresSchema::create("qerr").await;
    let source = schema.source();
    let e = source
        .stream(
            &query(
                "queries/broken.sql",
                "SELECT patno\nFROM mpfile\nWHER updated_at >= ?",
            ),
            window_start(),
            10,
        )
        .await
        .expect_err("syntax error");
    let msg = e.to_string();
    assert!(
        msg.contains("queries/broken.sql")
            && msg.contains("syntax error")
            && msg.contains("42601")
            && msg.contains("line 3"),
        "{msg}"
    );

    let e = read_all(&source, "SELECT patno FROM no_such_table", 10)
        .await
        .expect_err("missing table");
    assert!(
        e.to_string().contains("\"no_such_table\" does not exist"),
        "{e}"
    );

    // The session is read-only: a query file cannot change the clinic's data.
    schema
        .client()
        .await
        .batch_execute("CREATE TABLE t (id integer); INSERT INTO t VALUES (1)")
        .await
        .expect("table");
    let e = read_all(&source, "DELETE FROM t RETURNING id", 10)
        .await
        .expect_err("read-only");
    assert!(e.to_string().contains("read-only transaction"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_errors_show_the_sqlstate_not_the_message_that_quotes_the_value() {
    let schema = PostgresSchema::create("derr").await;
    let e = read_all(
        &schema.source(),
        "SELECT CAST(name AS integer) FROM (VALUES ('Jane'), ('Ann')) AS v(name)",
        10,
    )
    .await
    .expect_err("not a number");
    let msg = e.to_string();
    assert!(
        msg.contains("22P02") && msg.contains("queries/test.sql"),
        "{msg}"
    );
    assert!(!msg.contains("Jane") && !msg.contains("Ann"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_is_host_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut url = postgres_base();
    url.host = "127.0.0.1".into();
    url.port = port;
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let e = read_all(&source, "SELECT 1", 10)
        .await
        .expect_err("nobody listens");
    assert_eq!(connect_failure(&e), ConnectFailure::Unreachable, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("host unreachable") && msg.contains(&format!("127.0.0.1:{port}")),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections and never says a word: the TLS request is never answered.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut url = postgres_base();
    url.host = "127.0.0.1".into();
    url.port = port;
    url.connect_timeout = Duration::from_secs(1);
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let e = read_all(&source, "SELECT 1", 10)
        .await
        .expect_err("silence");
    assert_eq!(connect_failure(&e), ConnectFailure::Timeout, "{e}");
    assert!(e.to_string().contains("connect_timeout"), "{e}");
    silent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_a_tls_failure_and_no_verify_is_explicit() {
    // The test server's certificate is signed by a throwaway CA that only sslrootcert trusts.
    let mut url = postgres_base();
    url.ca_file = None;
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let e = read_all(&source, "SELECT 1", 10)
        .await
        .expect_err("untrusted");
    assert_eq!(connect_failure(&e), ConnectFailure::Tls, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("certificate") && msg.contains("sslrootcert"),
        "{msg}"
    );

    url.tls = TlsMode::NoVerify;
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let got = rows(&source, "SELECT 1 AS one").await;
    assert_eq!(shown(&got), [["int 1"]]);

    // The URL spelling: no-verify must be asked for by name.
    let base = crate::support::postgres_url();
    assert!(PostgresUrl::parse(&format!("{base}&sslmode=require"), None).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_login_failed_and_never_shown() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("pg-password");
    reqsync_private_fs::write_atomically(&file, b"not-the-password-4711\n").expect("write");
    let mut url = postgres_base();
    url.password = PasswordSource::File(file);
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let e = read_all(&source, "SELECT 1", 10)
        .await
        .expect_err("wrong password");
    assert_eq!(connect_failure(&e), ConnectFailure::LoginFailed, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("login failed") && msg.contains("28P01"),
        "{msg}"
    );
    assert!(!msg.contains("4711"), "{msg}");
    assert!(!format!("{source:?}").contains("4711"));

    url.password = PasswordSource::Env("REQSYNC_TEST_SURELY_UNSET".into());
    let e = PostgresSource::open(&url, CLINIC_TZ).expect_err("unset variable");
    assert!(e.to_string().contains("REQSYNC_TEST_SURELY_UNSET"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_database_says_so_and_how_to_create_it() {
    let mut url = postgres_base();
    url.database = "reqsync_no_such_database".into();
    let source = PostgresSource::open(&url, CLINIC_TZ).expect("open");
    let e = read_all(&source, "SELECT 1", 10)
        .await
        .expect_err("no database");
    assert_eq!(connect_failure(&e), ConnectFailure::DatabaseMissing, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("reqsync_no_such_database") && msg.contains("createdb"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_reports_connection_failures_with_the_source_exit_code_and_no_password() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args([
            "run",
            "--source",
            &format!("postgres://clinic@127.0.0.1:{port}/emr?sslmode=disable"),
        ])
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", crate::support::USER)
        .env("REQCHECK_PASSWORD", crate::support::PASSWORD)
        .env("PGPASSWORD", "pgpass-9731")
        .output()
        .expect("run reqsync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("host unreachable"), "{stderr}");
    assert!(!stderr.contains("pgpass-9731"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args([
            "seed",
            "--db",
            "postgres://clinic:hunter2@localhost/emr",
            "--kcmo",
        ])
        .output()
        .expect("run reqsync seed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("password in the URL is refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(world.dump().data_imports.is_empty());
}

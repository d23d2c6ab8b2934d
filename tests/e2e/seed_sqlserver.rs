//! `reqsync seed --db sqlserver://…` against the TDS test double: the T-SQL schema, every row as
//! typed parameters inside one transaction, a failure that rolls everything back, and `seed`
//! followed by `run` on the same double.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::NaiveDate;
use reqsync_runtime::pipeline::RunOptions;
use reqsync_runtime::source::SqlServerSource;
use reqsync_runtime::source::sqlserver::SqlServerUrl;
use reqsync_seeder::schema::{IMFILE, MPFILE, TableDef};
use reqsync_seeder::{Corpus, SeedOptions, SyntheticOptions, SyntheticRows, seed_sqlserver};
use tokio_util::compat::TokioAsyncWriteCompatExt;

use crate::sources_sqlserver::{SQL_PASSWORD, SQL_USER, SqlWorld, ca_signed, double, url_for};
use crate::support::{run_with, testdata};
use crate::sync::assert_receiver_equals_corpus;
use crate::tds_double::clinic::{ClinicTables, Tables, upsert_nulls};
use crate::tds_double::request::Param;
use crate::tds_double::{ParamValue, Request, TdsDouble};

const BEGIN: &str = "SET XACT_ABORT ON;\nBEGIN TRANSACTION";
const COMMIT: &str = "COMMIT TRANSACTION";
const ROLLBACK: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION";

/// `reqsync seed` against the double over TLS, the password in the default variable.
fn seed_cli(double: &TdsDouble, args: &[&str]) -> Output {
    let url = format!(
        "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?trust_ca_file={}",
        double.port(),
        testdata().join("ca.pem").display()
    );
    Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["seed", "--db", &url])
        .args(args)
        .env("REQSYNC_SQLSERVER_PASSWORD", SQL_PASSWORD)
        .output()
        .expect("run reqsync seed")
}

/// The library entry point against the double, without TLS.
async fn seed_lib(double: &TdsDouble, options: &SeedOptions) -> reqsync_seeder::SeedReport {
    let dir = tempfile::tempdir().expect("dir");
    reqsync_private_fs::write_atomically(&dir.path().join("sql-password"), SQL_PASSWORD.as_bytes())
        .expect("password file");
    let url = SqlServerUrl::parse(
        &format!(
            "sqlserver://{SQL_USER}@127.0.0.1:{}/clinic?encrypt=false&password_file=sql-password",
            double.port()
        ),
        Some(dir.path()),
    )
    .expect("url");
    let source = SqlServerSource::open(&url, chrono_tz::UTC).expect("open");
    seed_sqlserver(&source, options).await.expect("seed")
}

fn upserts<'a>(served: &'a [Request], table: &str) -> Vec<&'a Request> {
    let prefix = format!("DELETE FROM {table} ");
    served
        .iter()
        .filter(|r| r.sql.starts_with(&prefix))
        .collect()
}

/// An upsert's rows, column by column: the parameter bound there, or `None` where the statement
/// holds a typed `CAST(NULL AS …)`.
fn rows_of<'a>(request: &'a Request, table: &TableDef) -> Vec<Vec<Option<&'a Param>>> {
    let nulls = upsert_nulls(request, table).expect("an upsert the seed generates");
    let mut params = request.params.iter();
    let cells: Vec<Option<&Param>> = nulls
        .iter()
        .map(|&null| if null { None } else { params.next() })
        .collect();
    cells
        .chunks(table.columns.len())
        .map(<[_]>::to_vec)
        .collect()
}

fn kcmo_tables() -> Tables {
    let mut tables = Tables::default();
    tables.created.extend(["mpfile", "imfile"]);
    tables.patients = Corpus::Kcmo
        .patients()
        .expect("patients")
        .into_iter()
        .map(|p| (p.patno, p))
        .collect();
    tables.doses = Corpus::Kcmo
        .doses()
        .expect("doses")
        .into_iter()
        .map(|d| (d.im_id, d))
        .collect();
    tables
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_kcmo_creates_the_t_sql_schema_and_writes_every_row_in_one_transaction() {
    let tables = Arc::new(ClinicTables::empty());
    let double = double(tables.clone(), Some(ca_signed())).await;
    let out = seed_cli(&double, &["--kcmo"]);
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

    let served = double.served();
    // One transaction: BEGIN first, COMMIT last, and every request in between carries the
    // descriptor the double handed out for it.
    assert_eq!(served.first().map(|r| r.sql.as_str()), Some(BEGIN));
    assert_eq!(served.last().map(|r| r.sql.as_str()), Some(COMMIT));
    assert_eq!(served.iter().filter(|r| r.sql == BEGIN).count(), 1);
    assert!(!served.iter().any(|r| r.sql.contains("ROLLBACK")));
    let descriptor = served[1].transaction.expect("inside the transaction");
    for r in &served[1..] {
        assert_eq!(r.transaction, Some(descriptor), "{}", r.sql);
    }

    // The DDL: both tables, idempotent, with the documented T-SQL types, and three indexes.
    let ddl: Vec<&str> = served
        .iter()
        .filter(|r| r.sql.starts_with("IF "))
        .map(|r| r.sql.as_str())
        .collect();
    assert_eq!(ddl.len(), 5, "{ddl:#?}");
    let mpfile = ddl[0];
    assert!(
        mpfile.starts_with("IF OBJECT_ID(N'mpfile', N'U') IS NULL\nCREATE TABLE mpfile ("),
        "{mpfile}"
    );
    for column in [
        "patno bigint NOT NULL CONSTRAINT mpfile_pkey PRIMARY KEY",
        "lname nvarchar(60) NOT NULL",
        "fname nvarchar(60) NOT NULL",
        "birth_date date NOT NULL",
        "sex char(1) NULL",
        "addr1 nvarchar(80) NULL",
        "zip varchar(10) NULL",
        "family_no int NULL",
        "notes nvarchar(max) NULL",
        "updated_at datetime2(7) NOT NULL",
    ] {
        assert!(mpfile.contains(column), "{column} in {mpfile}");
    }
    let imfile = ddl
        .iter()
        .find(|s| s.contains("CREATE TABLE imfile"))
        .expect("imfile DDL");
    for column in [
        "im_id bigint NOT NULL CONSTRAINT imfile_pkey PRIMARY KEY",
        "patno bigint NOT NULL",
        "cvx int NOT NULL",
        "admin_date date NOT NULL",
        "history char(1) NOT NULL",
        "given_by nvarchar(40) NULL",
        "comments nvarchar(max) NULL",
        "updated_at datetime2(7) NOT NULL",
    ] {
        assert!(imfile.contains(column), "{column} in {imfile}");
    }
    for index in ["mpfile_updated_at", "imfile_patno", "imfile_updated_at"] {
        assert!(
            ddl.iter()
                .any(|s| s.contains(&format!("CREATE INDEX {index} ON"))),
            "{index}"
        );
    }

    // The rows: typed sp_executesql parameters, 110 rows per statement at most, a NULL typed
    // in the statement instead (see `nulls_are_typed_in_the_statement_never_sent_as_untyped_parameters`).
    let patients = upserts(&served, "mpfile");
    let doses = upserts(&served, "imfile");
    assert_eq!(patients.len(), 1);
    assert_eq!(doses.len(), 2);
    assert!(patients.iter().chain(&doses).all(|r| r.rpc));
    let patient_rows: Vec<Vec<Option<&Param>>> =
        patients.iter().flat_map(|r| rows_of(r, &MPFILE)).collect();
    let dose_rows: Vec<Vec<Option<&Param>>> =
        doses.iter().flat_map(|r| rows_of(r, &IMFILE)).collect();
    assert_eq!(patient_rows.len(), 21);
    assert_eq!(dose_rows.len(), 177);
    assert_eq!(rows_of(doses[0], &IMFILE).len(), 110);
    assert!(
        !patients[0].sql.contains("Patient2"),
        "values never enter the SQL text"
    );
    let value = |cell: Option<&Param>| cell.map(|p| p.value.clone());
    let declared = |cell: Option<&Param>| cell.map(|p| p.declared.clone());
    let first = &patient_rows[0];
    assert_eq!(value(first[0]), Some(ParamValue::Int(101)));
    assert_eq!(declared(first[0]).as_deref(), Some("bigint"));
    assert_eq!(value(first[1]), Some(ParamValue::Text("Patient".into())));
    assert_eq!(declared(first[1]).as_deref(), Some("nvarchar(4000)"));
    assert_eq!(
        value(first[4]),
        Some(ParamValue::Date(
            NaiveDate::from_ymd_opt(2015, 10, 15).expect("date")
        ))
    );
    assert!(first[5].is_none(), "sex is NULL");
    assert_eq!(declared(first[18]).as_deref(), Some("datetime2"));
    let dose = &dose_rows[0];
    assert_eq!(value(dose[0]), Some(ParamValue::Int(1)));
    assert_eq!(value(dose[4]), Some(ParamValue::Int(110)), "cvx");
    assert_eq!(declared(dose[4]).as_deref(), Some("int"), "cvx is an int");
    assert_eq!(value(dose[5]), Some(ParamValue::Text("SKB".into())));
    assert!(dose[6].is_none(), "lot_no is NULL");
    assert_eq!(value(dose[9]), Some(ParamValue::Text("N".into())));

    // What the double committed is the corpus, every column of every row.
    assert_eq!(tables.committed(), kcmo_tables());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_insert_rolls_the_seed_back_and_names_the_table_not_the_values() {
    let tables = Arc::new(ClinicTables::empty());
    // The second imfile statement (rows 111–177) is refused with a message that quotes a key,
    // as SQL Server's 2627 does.
    tables.fail_upsert(
        "imfile",
        2,
        2627,
        "Violation of PRIMARY KEY constraint 'imfile_pkey'. Cannot insert duplicate key in \
         object 'dbo.imfile'. The duplicate key value is (150).",
    );
    let double = double(tables.clone(), Some(ca_signed())).await;
    let out = seed_cli(&double, &["--kcmo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("rows 111–177 of table `imfile`"),
        "{stderr}"
    );
    assert!(stderr.contains("SQL Server error 2627"), "{stderr}");
    assert!(
        !stderr.contains("(150)"),
        "the server's message is withheld: {stderr}"
    );
    assert!(!stderr.contains(SQL_PASSWORD), "{stderr}");

    let served = double.served();
    assert_eq!(served.first().map(|r| r.sql.as_str()), Some(BEGIN));
    assert!(
        !served.iter().any(|r| r.sql.contains("COMMIT")),
        "no COMMIT"
    );
    let failed = served
        .iter()
        .rposition(|r| r.sql.starts_with("DELETE FROM imfile"))
        .expect("the refused statement");
    assert_eq!(
        served.get(failed + 1).map(|r| r.sql.as_str()),
        Some(ROLLBACK),
        "the writer rolls back right after the failure"
    );
    assert_eq!(served.len(), failed + 2, "and sends nothing after it");
    // Nothing of the seed remains, not even the tables.
    assert_eq!(tables.committed(), Tables::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn synthetic_rows_arrive_exactly_accents_and_out_of_range_numbers_included() {
    let tables = Arc::new(ClinicTables::empty());
    let double = double(tables.clone(), Some(ca_signed())).await;
    let out = seed_cli(&double, &["--synthetic", "300", "--seed", "5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let options = SyntheticOptions::new(300, 5);

    // The generator's rows, keyed as the upsert keys them (a later row replaces an earlier one).
    let mut expected = Tables::default();
    expected.created.extend(["mpfile", "imfile"]);
    for slot in SyntheticRows::new(&options).expect("generator") {
        if let Some(p) = slot.patient {
            expected.patients.insert(p.patno, p);
        }
        for d in slot.doses {
            expected.doses.insert(d.im_id, d);
        }
    }
    let committed = tables.committed();
    assert_eq!(committed, expected);
    assert!(
        stdout.contains(&format!("seeded {} patients", expected.patients.len())),
        "{stdout}"
    );

    let accented = committed
        .patients
        .values()
        .find(|p| !p.lname.is_ascii())
        .expect("a synthetic patient with a non-ASCII last name");
    // As sent: UTF-16 nvarchar parameters, so `ễ` survives (a varchar parameter would not).
    let served = double.served();
    let sent = upserts(&served, "mpfile")
        .into_iter()
        .flat_map(|r| rows_of(r, &MPFILE))
        .find(|row| row[0].map(|p| &p.value) == Some(&ParamValue::Int(accented.patno)))
        .expect("the row as sent");
    let lname = sent[1].expect("a last name is never NULL");
    assert_eq!(lname.value, ParamValue::Text(accented.lname.clone()));
    assert!(lname.declared.starts_with("nvarchar"), "{}", lname.declared);
    let big = committed.patients.keys().copied().max().expect("patients");
    assert!(
        big > i64::from(i32::MAX),
        "out-of-range patient numbers fit the bigint column"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_then_run_on_the_double_delivers_exactly_what_the_seed_wrote() {
    let tables = Arc::new(ClinicTables::empty());
    let double = double(tables.clone(), None).await;
    let kcmo = SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    };
    let first = seed_lib(&double, &kcmo).await;
    // Seeding again replaces the rows by key: the same tables, in a second transaction.
    let again = seed_lib(&double, &kcmo).await;
    assert_eq!(first, again);
    let served = double.served();
    assert_eq!(served.iter().filter(|r| r.sql == COMMIT).count(), 2);
    let by_key: BTreeMap<i64, _> = tables.committed().patients;
    assert_eq!(by_key.len(), 21);
    assert_eq!(tables.committed(), kcmo_tables());

    let world = SqlWorld::new(|_| url_for(&double, "&encrypt=false")).await;
    let report = run_with(world.config(), RunOptions::default())
        .await
        .expect("sync from what the seed wrote");
    assert_eq!(
        (report.jobs[0].counts.read, report.jobs[1].counts.read),
        (21, 177)
    );
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

/// A NULL in a text or date column (KCMO's patients have no middle name or sex, its doses no lot
/// number or expiry date) is written as `CAST(NULL AS <column type>)` in the statement, never
/// sent as a parameter: tiberius sends a NULL string or date parameter untyped (TDS NULLTYPE,
/// 0x1F), which Babelfish refuses with error 8009, and so does the double. The rows arrive with
/// their NULLs.
#[tokio::test(flavor = "multi_thread")]
async fn nulls_are_typed_in_the_statement_never_sent_as_untyped_parameters() {
    let tables = Arc::new(ClinicTables::empty());
    let double = double(tables.clone(), None).await;
    let kcmo = SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    };
    seed_lib(&double, &kcmo).await;
    let served = double.served();
    assert!(
        served.iter().all(|r| r.refused.is_none()),
        "no parameter was refused"
    );
    assert!(
        served
            .iter()
            .flat_map(|r| &r.params)
            .all(|p| p.value != ParamValue::Null),
        "no NULL travels as a parameter"
    );
    let patients = upserts(&served, "mpfile");
    let doses = upserts(&served, "imfile");
    for (sql, typed) in [
        (&patients[0].sql, "CAST(NULL AS nvarchar(60))"), // mname
        (&patients[0].sql, "CAST(NULL AS char(1))"),      // sex
        (&patients[0].sql, "CAST(NULL AS int)"),          // family_no
        (&doses[0].sql, "CAST(NULL AS varchar(20))"),     // lot_no
        (&doses[0].sql, "CAST(NULL AS date)"),            // exp_date
    ] {
        assert!(sql.contains(typed), "{typed} in {sql}");
    }
    let committed = tables.committed();
    assert_eq!(committed, kcmo_tables());
    let patient = &committed.patients[&101];
    assert_eq!((&patient.mname, &patient.sex), (&None, &None));
    let dose = &committed.doses[&1];
    assert_eq!((&dose.lot_no, dose.exp_date), (&None, None));
}

/// The double refuses a NULL parameter sent untyped as Babelfish does, with error 8009 naming
/// the parameter by number (counting `sp_executesql`'s `@stmt` and `@params`) and name: what
/// makes the test above fail if the seed ever sends one again.
#[tokio::test(flavor = "multi_thread")]
async fn the_double_refuses_an_untyped_null_parameter_with_8009_as_babelfish_does() {
    let double = double(Arc::new(ClinicTables::empty()), None).await;
    let mut config = tiberius::Config::new();
    config.host("127.0.0.1");
    config.port(double.port());
    config.database("clinic");
    config.authentication(tiberius::AuthMethod::sql_server(SQL_USER, SQL_PASSWORD));
    config.encryption(tiberius::EncryptionLevel::NotSupported);
    let tcp = tokio::net::TcpStream::connect(config.get_addr())
        .await
        .expect("tcp");
    let mut client = tiberius::Client::connect(config, tcp.compat_write())
        .await
        .expect("login");
    let err = client
        .execute(
            "INSERT INTO t (a, b) VALUES (@P1, @P2)",
            &[&1i32, &Option::<&str>::None],
        )
        .await
        .expect_err("an untyped NULL is refused");
    assert_eq!(err.code(), Some(8009), "{err}");
    assert!(
        err.to_string()
            .contains("Parameter 4 (\"@P2\"): Data type 0x1F is unknown."),
        "{err}"
    );
}

/// Error 8009's text names a parameter and a type, never a value: it is shown.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_parameter_type_is_shown_with_the_parameter_it_names() {
    let tables = Arc::new(ClinicTables::empty());
    let text = "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol \
                stream is incorrect. Parameter 9 (\"@P7\"): Data type 0x1F is unknown.";
    tables.fail_upsert("mpfile", 1, 8009, text);
    let double = double(tables.clone(), Some(ca_signed())).await;
    let out = seed_cli(&double, &["--kcmo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("SQL Server error 8009"), "{stderr}");
    assert!(stderr.contains("Parameter 9 (\"@P7\")"), "{stderr}");
    assert_eq!(tables.committed(), Tables::default());
}

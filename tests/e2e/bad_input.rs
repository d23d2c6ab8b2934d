//! Bad input, one case per test, through the `reqsync` binary as a user meets it: each one exits
//! with its class's code (2 usage, 3 config, 4 source, 5 transform, 6 delivery), says on stderr
//! what to fix (the key and line, the file, the column, the job), leaves nothing half-sent, and
//! carries no row value: every world plants distinctive names in a patient row (or the row a test
//! breaks) and every message is checked for them.
//!
//! "Nothing half-sent" means, for a failure found before the first request (everything that
//! loading a job can find: config, query/template/module files, modules, templates), that the
//! receiver holds no import at all. A failure found while rows stream (a value the source cannot
//! read) ends the run at that batch: the requests completed before it stay sent, each one whole
//! (ReqCheck's unit of import; a patient's doses never span two), and nothing of the failing
//! batch or after it is sent (`an_unreadable_value_mid_run_leaves_only_whole_requests`).
//!
//! The PostgreSQL cases need the test server, like `sources_postgres`: without
//! `REQSYNC_TEST_POSTGRES_URL` they fail saying how to start it (`eval "$(./scripts/test-postgres)"`).

use std::process::{Command, Output};

use reqsync_seeder::SeedOptions;

use crate::phi::Phi;
use crate::support::{Engine, PASSWORD, USER, World, testdata};

/// Names planted in patient 101 (the first the patients query returns): no message may carry
/// them, whatever broke.
const FIRST_NAME: &str = "Zenobia";
const LAST_NAME: &str = "Quixbottom";
/// A patient number present in the KCMO data, with doses.
const PATIENT: i64 = 101;

async fn world_on(engine: Engine) -> World {
    let world = World::on(
        engine,
        SeedOptions {
            kcmo: true,
            ..SeedOptions::default()
        },
    )
    .await;
    prepare(world, engine).await
}

/// The shared module cache, one attempt per request, and the planted names.
async fn prepare(world: World, engine: Engine) -> World {
    // Share the compiled-module cache with the rest of the suite.
    world.share_module_cache();
    // One attempt per request: the delivery cases must fail at once, not after backoff.
    world.edit_config("[reqcheck]", "[reqcheck]\nretry_attempts = 1");
    let plant = format!(
        "UPDATE mpfile SET fname = '{FIRST_NAME}', lname = '{LAST_NAME}' WHERE patno = {PATIENT}"
    );
    match engine {
        Engine::Sqlite => {
            world.clinic().execute(&plant, []).expect("plant names");
        }
        Engine::Postgres => {
            world
                .clinic_postgres()
                .await
                .batch_execute(&plant)
                .await
                .expect("plant names");
        }
    }
    world
}

async fn world() -> World {
    world_on(Engine::Sqlite).await
}

/// `reqsync run --config reqsync.toml ARGS…` in the world's folder, as cron would call it.
fn run(world: &World, args: &[&str]) -> Output {
    run_with_password(world, PASSWORD, args)
}

/// Runs at the most verbose log level, and sweeps both streams for every PHI value of the
/// world's clinic database (SQLite worlds; the planted names are checked on every engine).
fn run_with_password(world: &World, password: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_reqsync"))
        .args(["-vv", "run", "--config", "reqsync.toml"])
        .args(args)
        .current_dir(world.dir.path())
        .env("REQCHECK_USERNAME", USER)
        .env("REQCHECK_PASSWORD", password)
        .env_remove("REQSYNC_LOG")
        .output()
        .expect("run reqsync");
    if world.postgres.is_none() {
        let phi = Phi::of(world);
        phi.assert_absent("stderr", &String::from_utf8_lossy(&out.stderr));
        phi.assert_absent("stdout", &String::from_utf8_lossy(&out.stdout));
    }
    out
}

/// Checks the exit code, that stderr names every one of `names`, and that neither stream carries
/// a planted value (or a panic); returns stderr.
fn assert_fails(out: &Output, code: i32, names: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(code), "stderr:\n{stderr}");
    for name in names {
        assert!(
            stderr.contains(name),
            "stderr does not name {name:?}:\n{stderr}"
        );
    }
    assert_no_row_values(&stderr, &stdout);
    stderr
}

fn assert_no_row_values(stderr: &str, stdout: &str) {
    for value in [FIRST_NAME, LAST_NAME] {
        assert!(
            !stderr.contains(value) && !stdout.contains(value),
            "a row value ({value}) reached the output:\n{stderr}\n{stdout}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn assert_nothing_sent(world: &World) {
    let dump = world.dump();
    assert!(
        dump.data_imports.is_empty(),
        "the receiver holds imports: {:?}",
        dump.data_imports
    );
    assert!(dump.patients.is_empty() && dump.vaccine_doses.is_empty());
}

fn write(world: &World, file: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(world.path(file), contents).expect("write project file");
}

/// The 1-based line of the config file holding `text`.
fn config_line(world: &World, text: &str) -> usize {
    let config = std::fs::read_to_string(world.path("reqsync.toml")).expect("config");
    config
        .lines()
        .position(|l| l.contains(text))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("config has no line with {text:?}"))
}

// ---- 1. the config file -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn config_missing_a_required_key_exits_3_naming_it() {
    let world = world().await;
    let url = format!("url = \"{}\"", world.receiver.base_url());
    world.edit_config(&format!("{url}\n"), "");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["reqsync.toml", "missing field `url`", "[reqcheck]"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_unknown_key_exits_3_naming_the_key_and_its_line() {
    let world = world().await;
    world.edit_config("batch_size = 500", "batch_size = 500\nbatchsize = 10");
    let line = config_line(&world, "batchsize = 10");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["unknown field `batchsize`", &format!("line {line}")],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_mistyped_value_exits_3_naming_the_key_and_its_line() {
    let world = world().await;
    world.edit_config("batch_size = 500", "batch_size = \"ten\"");
    let line = config_line(&world, "batch_size = \"ten\"");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["batch_size", "invalid type", &format!("line {line}")],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_in_the_config_exits_3_without_showing_it() {
    let world = world().await;
    world.edit_config(
        "[reqcheck]",
        "[reqcheck]\npassword = \"hunter2-in-the-file\"",
    );
    let out = run(&world, &[]);
    let stderr = assert_fails(&out, 3, &["reqcheck.password", "REQCHECK_PASSWORD"]);
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_nothing_sent(&world);
}

// ---- 2. files the config names ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_query_file_exits_3_naming_it_before_anything_is_sent() {
    let world = world().await;
    // The dose job's: the patients job, which runs first, must not have been sent either.
    std::fs::remove_file(world.path("queries/vaccine_doses.sql")).expect("remove");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["job `vaccine-doses`", "queries/vaccine_doses.sql"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_template_file_exits_3_naming_it_before_anything_is_sent() {
    let world = world().await;
    std::fs::remove_file(world.path("templates/vaccine_dose_data.json.j2")).expect("remove");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["job `vaccine-doses`", "templates/vaccine_dose_data.json.j2"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_module_file_exits_3_naming_it_before_anything_is_sent() {
    let world = world().await;
    std::fs::remove_file(world.path("transforms/vaccine-doses.wasm")).expect("remove");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["job `vaccine-doses`", "transforms/vaccine-doses.wasm"],
    );
    assert_nothing_sent(&world);
}

// ---- 3. queries the server refuses --------------------------------------------------------

const BROKEN_SYNTAX: &str = "SELECT patno, lname, fname\nFROM mpfile\nWHER updated_at >= ?\n";

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_query_syntax_error_exits_4_naming_the_file_and_line() {
    let world = world().await;
    write(&world, "queries/patients.sql", BROKEN_SYNTAX);
    let out = run(&world, &[]);
    let stderr = assert_fails(&out, 4, &["queries/patients.sql", "syntax error", "line 3"]);
    // The SQL text stays in the file; the message points at it.
    assert!(!stderr.contains("FROM mpfile"), "{stderr}");
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_query_on_a_missing_table_exits_4_naming_the_file_and_table() {
    let world = world().await;
    write(
        &world,
        "queries/patients.sql",
        "SELECT patno FROM no_such_table WHERE updated_at >= ?",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        4,
        &["queries/patients.sql", "no such table: no_such_table"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_dose_query_stops_the_run_before_the_patients_are_sent() {
    let world = world().await;
    write(
        &world,
        "queries/vaccine_doses.sql",
        "SELECT patno FROM no_such_table WHERE updated_at >= ?",
    );
    let out = run(&world, &[]);
    assert_fails(&out, 4, &["queries/vaccine_doses.sql", "no_such_table"]);
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_query_syntax_error_exits_4_naming_the_file_line_and_sqlstate() {
    let world = world_on(Engine::Postgres).await;
    write(&world, "queries/patients.sql", BROKEN_SYNTAX);
    let out = run(&world, &[]);
    assert_fails(
        &out,
        4,
        &["queries/patients.sql", "syntax error", "line 3", "42601"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_query_on_a_missing_table_exits_4_naming_the_file_and_table() {
    let world = world_on(Engine::Postgres).await;
    write(
        &world,
        "queries/patients.sql",
        "SELECT patno FROM no_such_table WHERE updated_at >= ?",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        4,
        &[
            "queries/patients.sql",
            "\"no_such_table\" does not exist",
            "42P01",
        ],
    );
    assert_nothing_sent(&world);
}

// ---- 4. query columns that do not fit the module ------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn query_missing_a_required_column_stops_before_sending() {
    let world = world().await;
    write(
        &world,
        "queries/patients.sql",
        "SELECT patno, lname, fname, updated_at FROM mpfile WHERE updated_at >= ? ORDER BY patno",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        5,
        &["job `patients`", "birth_date", "module `patients`"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn dose_query_missing_a_required_column_stops_before_the_patients_are_sent() {
    let world = world().await;
    let query = std::fs::read_to_string(world.path("queries/vaccine_doses.sql")).expect("query");
    write(
        &world,
        "queries/vaccine_doses.sql",
        query.replacen("i.cvx, ", "", 1),
    );
    let out = run(&world, &[]);
    assert_fails(&out, 5, &["job `vaccine-doses`", "cvx"]);
    assert_nothing_sent(&world);
}

// ---- 5. templates -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn template_syntax_error_exits_3_naming_the_file_and_line() {
    let world = world().await;
    write(
        &world,
        "templates/vaccine_dose_data.json.j2",
        "{\"vaccine_dose_data\": [\n{% for r in records %}\n{{ r }\n{% endfor %}]}",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &[
            "templates/vaccine_dose_data.json.j2",
            "syntax error",
            "line 3",
        ],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn template_rendering_invalid_json_stops_before_any_job_is_sent() {
    let world = world().await;
    // Valid JSON for one record, not for two: the records are not separated by commas.
    write(
        &world,
        "templates/vaccine_dose_data.json.j2",
        "{\"vaccine_dose_data\": [{% for r in records %}{{ r }}{% endfor %}]}",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &[
            "job `vaccine-doses`",
            "templates/vaccine_dose_data.json.j2",
            "invalid JSON",
        ],
    );
    // The dose template is checked when it is loaded: the patients were not sent first.
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn template_rendering_an_empty_array_exits_3_before_sending() {
    let world = world().await;
    write(
        &world,
        "templates/patient_data.json.j2",
        "{\"patient_data\": []}",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["templates/patient_data.json.j2", "`patient_data` is empty"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn template_rendering_a_body_under_another_key_exits_3_before_sending() {
    let world = world().await;
    write(
        &world,
        "templates/patient_data.json.j2",
        "{\"patients\": [{% for r in records %}{{ r }}{% if not loop.last %},{% endif %}{% endfor %}]}",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &["templates/patient_data.json.j2", "the key `patient_data`"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn template_adding_a_key_reqcheck_rejects_exits_3_before_sending() {
    let world = world().await;
    // ReqCheck would store every one of these records as an import error
    // ("Extraneous arguments [:source]").
    write(
        &world,
        "templates/patient_data.json.j2",
        "{\"patient_data\": [{% for r in records %}{\"patient_number\": {{ r.patient_number }}, \
         \"first_name\": {{ r.first_name }}, \"last_name\": {{ r.last_name }}, \"dob\": {{ r.dob }}, \
         \"hd_mpfile_updated_at\": {{ r.hd_mpfile_updated_at }}, \"source\": \"reqsync\"}\
         {% if not loop.last %},{% endif %}{% endfor %}]}",
    );
    let out = run(&world, &[]);
    // Counted, not named (a template can write keys from row data); the accepted ones listed.
    assert_fails(
        &out,
        3,
        &[
            "templates/patient_data.json.j2",
            "element 0 has 1 key(s) ReqCheck does not accept",
            "the keys it accepts are patient_number, first_name",
        ],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn template_dropping_a_required_key_exits_3_before_sending() {
    let world = world().await;
    write(
        &world,
        "templates/patient_data.json.j2",
        "{\"patient_data\": [{% for r in records %}{\"patient_number\": {{ r.patient_number }}, \
         \"last_name\": {{ r.last_name }}, \"dob\": {{ r.dob }}, \
         \"hd_mpfile_updated_at\": {{ r.hd_mpfile_updated_at }}}\
         {% if not loop.last %},{% endif %}{% endfor %}]}",
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        3,
        &[
            "templates/patient_data.json.j2",
            "\"first_name\"",
            "requires",
        ],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_is_printed_once() {
    let world = world().await;
    write(
        &world,
        "templates/patient_data.json.j2",
        "{% for r in records %}",
    );
    let out = run(&world, &[]);
    let stderr = assert_fails(&out, 3, &["templates/patient_data.json.j2"]);
    assert_eq!(stderr.matches("syntax error").count(), 1, "{stderr}");
}

// ---- 6. modules ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_module_file_of_random_bytes_exits_5_naming_it() {
    let world = world().await;
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&world, "transforms/vaccine-doses.wasm", bytes);
    let out = run(&world, &[]);
    let stderr = assert_fails(
        &out,
        5,
        &[
            "transforms/vaccine-doses.wasm",
            "not a valid WebAssembly component",
            "WebAssembly header",
        ],
    );
    // Said in words, not as the parser's dump of expected and actual bytes.
    assert!(!stderr.contains("0x61"), "{stderr}");
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_core_wasm_module_exits_5_saying_it_is_not_a_component() {
    let world = world().await;
    // The smallest core module: the header, version 1.
    write(&world, "transforms/patients.wasm", b"\0asm\x01\0\0\0");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        5,
        &[
            "transforms/patients.wasm",
            "core WebAssembly module, not a component",
            "wasm32-wasip2",
        ],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_built_against_wit_1_0_0_exits_5_asking_for_a_rebuild() {
    let world = world().await;
    std::fs::copy(
        reqsync_test_guests::WIT_V1,
        world.path("transforms/vaccine-doses.wasm"),
    )
    .expect("copy module");
    let out = run(&world, &[]);
    assert_fails(
        &out,
        5,
        &[
            "transforms/vaccine-doses.wasm",
            "built against reqsync:transform@1.0.0",
            "reqsync:transform@3.0.0",
            "rebuild it with the guest SDK",
        ],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_that_traps_while_loading_exits_5_naming_it() {
    let world = world().await;
    std::fs::copy(
        reqsync_test_guests::DESCRIBE_PANICS,
        world.path("transforms/vaccine-doses.wasm"),
    )
    .expect("copy module");
    let out = run(&world, &[]);
    let stderr = assert_fails(
        &out,
        5,
        &[
            "transforms/vaccine-doses.wasm",
            "trapped in `describe`",
            "a panic in the module",
        ],
    );
    // The wasm backtrace is for the module's author (the `-v` log), not the operator's message.
    let message = stderr
        .split_once("\nerror: ")
        .map(|(_, m)| m)
        .expect("an error message");
    assert!(!message.contains("wasm backtrace"), "{message}");
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_that_needs_more_memory_than_allowed_to_start_exits_5_naming_the_limit() {
    let world = world().await;
    world.edit_config(
        "batch_size = 500",
        "batch_size = 500\ntransform_memory_mb = 1",
    );
    let out = run(&world, &[]);
    let stderr = assert_fails(
        &out,
        5,
        &[
            "job `patients`",
            "transforms/patients.wasm",
            "transform_memory_mb",
        ],
    );
    // Not blamed on the module's WIT world: it fits the world, it lacks memory.
    assert!(!stderr.contains("must be a component of"), "{stderr}");
    assert_nothing_sent(&world);
}

// ---- 7. delivery --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_receiver_exits_6_naming_the_url() {
    let world = world().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}");
    let out = run(&world, &["--reqcheck-url", &url]);
    assert_fails(&out, 6, &["cannot reach ReqCheck", &url]);
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_exit_6_saying_credentials_without_the_password() {
    let world = world().await;
    let out = run_with_password(&world, "not-the-password-5150", &[]);
    let stderr = assert_fails(&out, 6, &["credentials", "401", "REQCHECK_PASSWORD"]);
    // The whole password, not a fragment of it: four digits can turn up in a log timestamp.
    assert!(!stderr.contains("not-the-password-5150"), "{stderr}");
    assert_nothing_sent(&world);
    // With --full there is no heartbeat: the first data request is the one refused.
    let out = run_with_password(&world, "not-the-password-5150", &["--full"]);
    assert_fails(&out, 6, &["credentials", "401"]);
    assert_nothing_sent(&world);
}

async fn tls_world() -> World {
    let world = World::with_tls(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    prepare(world, Engine::Sqlite).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_receiver_certificate_exits_6_naming_the_certificate() {
    let world = tls_world().await;
    assert!(world.receiver.base_url().starts_with("https://"));
    let out = run(&world, &[]);
    assert_fails(&out, 6, &["TLS with ReqCheck", "certificate", "ca_file"]);
    assert_nothing_sent(&world);
    // The same run trusting the test CA goes through: the refusal was the certificate's.
    world.edit_config(
        "[reqcheck]",
        &format!(
            "[reqcheck]\nca_file = \"{}\"",
            testdata().join("ca.pem").display()
        ),
    );
    let out = run(&world, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- 8. the source database ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_sqlite_file_exits_4_naming_it() {
    let world = world().await;
    let out = run(&world, &["--source", "sqlite://no-such-clinic.db"]);
    assert_fails(
        &out,
        4,
        &["no-such-clinic.db", "no such file", "reqsync seed"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_url_naming_something_else_exits_4_saying_what_it_is() {
    let world = world().await;
    // A CSV export where the database should be: refused when the source opens, not blamed
    // on the first query file.
    write(
        &world,
        "export.csv",
        format!("patno,lname,fname\n{PATIENT},{LAST_NAME},{FIRST_NAME}\n"),
    );
    let out = run(&world, &["--source", "sqlite://export.csv"]);
    let stderr = assert_fails(&out, 4, &["export.csv", "not a SQLite database"]);
    assert!(!stderr.contains("patients.sql"), "{stderr}");
    // A folder.
    std::fs::create_dir(world.path("clinic-folder")).expect("mkdir");
    let out = run(&world, &["--source", "sqlite://clinic-folder"]);
    assert_fails(&out, 4, &["clinic-folder", "directory"]);
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_postgres_server_exits_4_saying_host_unreachable() {
    // Needs no PostgreSQL server: nothing listens on the port.
    let world = world().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("postgres://clinic@127.0.0.1:{port}/emr?sslmode=disable");
    let out = run(&world, &["--source", &url]);
    assert_fails(&out, 4, &["host unreachable", &format!("127.0.0.1:{port}")]);
    assert_nothing_sent(&world);
}

// ---- 9. values the source cannot hand on --------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn postgres_column_of_an_unreadable_type_exits_4_naming_the_column_and_a_cast() {
    let world = world_on(Engine::Postgres).await;
    let query = std::fs::read_to_string(world.path("queries/patients.sql")).expect("query");
    write(
        &world,
        "queries/patients.sql",
        query.replacen("lname,", "point(1, 2) AS lname,", 1),
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        4,
        &["queries/patients.sql", "column `lname`", "`point`", "cast"],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_bytea_column_where_the_module_reads_text_exits_5_before_any_row() {
    let world = world_on(Engine::Postgres).await;
    let query = std::fs::read_to_string(world.path("queries/patients.sql")).expect("query");
    write(
        &world,
        "queries/patients.sql",
        query.replacen("lname,", "convert_to(lname, 'UTF8') AS lname,", 1),
    );
    let out = run(&world, &[]);
    assert_fails(
        &out,
        5,
        &[
            "job `patients`",
            "`lname` is `BYTEA`",
            "as text",
            "convert_from",
        ],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_blob_where_text_is_declared_rejects_that_row_by_key() {
    // A value of the wrong storage class in one row is invalid data in that row, not a broken
    // query: the row (and its patient's doses) is held back and reported by key and code, the
    // rest goes through, and the run succeeds (README, "Rejected rows").
    let world = world().await;
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET lname = CAST(?1 AS BLOB) WHERE patno = ?2",
            rusqlite::params![LAST_NAME.as_bytes(), PATIENT],
        )
        .expect("blob");
    let out = run(&world, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "rejected row {PATIENT}: lname:invalid-source-value"
        )),
        "{stdout}"
    );
    assert_no_row_values(&stderr, &stdout);
    let dump = world.dump();
    assert_eq!(dump.patients.len(), 20);
    assert!(!crate::support::patients(&dump).contains_key(&PATIENT));
    assert!(!crate::support::doses(&dump).contains_key(&PATIENT));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_text_that_is_not_utf8_exits_4_naming_the_column_not_the_text() {
    let world = world().await;
    let mut invalid = LAST_NAME.as_bytes().to_vec();
    invalid.push(0xC3); // a lead byte with nothing after it
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET lname = CAST(?1 AS TEXT) WHERE patno = ?2",
            rusqlite::params![invalid, PATIENT],
        )
        .expect("invalid text");
    let out = run(&world, &[]);
    let stderr = assert_fails(
        &out,
        4,
        &["queries/patients.sql", "column `lname`", "row 1", "UTF-8"],
    );
    assert!(!stderr.contains("Quixbott"), "{stderr}");
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_50_mb_name_exits_4_with_its_size_never_its_text() {
    let world = world().await;
    let giant = LAST_NAME.repeat(50_000_000 / LAST_NAME.len());
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET lname = ?1 WHERE patno = ?2",
            rusqlite::params![giant, PATIENT],
        )
        .expect("giant name");
    drop(giant);
    let out = run(&world, &[]);
    // Refused as the source reads it: it never reaches the transform host or the sandbox,
    // which would take several times its size in memory.
    assert_fails(
        &out,
        4,
        &[
            "queries/patients.sql",
            "column `lname`",
            "row 1",
            "47.7 MiB",
            "16 MiB",
        ],
    );
    assert_nothing_sent(&world);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_value_mid_run_leaves_only_whole_requests() {
    // The guarantee for a failure found while rows stream: requests sent before the failing
    // source batch stay sent, each one whole; the failing batch and everything after it (and
    // the dose job) are not sent.
    let world = world().await;
    world.edit_config(
        "look_back = \"1d\"",
        "look_back = \"1d\"\ntransform_batch_rows = 5",
    );
    world.edit_config("batch_size = 500", "batch_size = 5");
    let last = 121; // the last patient the query returns; rows 1–20 precede it
    world
        .clinic()
        .execute(
            "UPDATE mpfile SET lname = CAST(?1 AS TEXT) WHERE patno = ?2",
            rusqlite::params![b"Quixbott\xC3".to_vec(), last],
        )
        .expect("invalid text");
    let out = run(&world, &[]);
    assert_fails(&out, 4, &["column `lname`", "row 21", "UTF-8"]);
    let dump = world.dump();
    assert!(
        !dump.data_imports.is_empty(),
        "the failure was meant to come mid-run"
    );
    for import in &dump.data_imports {
        assert_eq!(import.kind, "PatientDataImport", "{import:?}");
        assert_eq!(import.updated_patient_numbers.len(), 5, "{import:?}");
    }
    let sent = crate::support::patients(&dump);
    assert_eq!(sent.len(), 5 * dump.data_imports.len());
    assert!(sent.keys().all(|&p| p < last), "{:?}", sent.keys());
    assert!(dump.vaccine_doses.is_empty());
}

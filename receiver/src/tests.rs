//! The receiver over a real socket: each test starts one on 127.0.0.1:0 with its own SQLite
//! file and talks to it with reqwest, then checks the response and what was stored.

use std::path::PathBuf;

use chrono::DateTime;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{ReceiverConfig, ReceiverError, RunningReceiver, Store, TlsFiles, start};

const USER: &str = "test";
const PASSWORD: &str = "test";

struct Harness {
    _dir: TempDir,
    db_path: PathBuf,
    receiver: RunningReceiver,
    client: reqwest::Client,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).expect("JSON response body")
    }
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("receiver.sqlite");
    let receiver = start(config(db_path.clone(), None))
        .await
        .expect("receiver starts");
    Harness {
        _dir: dir,
        db_path,
        receiver,
        client: reqwest::Client::new(),
    }
}

fn config(db_path: PathBuf, tls: Option<TlsFiles>) -> ReceiverConfig {
    ReceiverConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        db_path,
        username: USER.to_owned(),
        password: PASSWORD.to_owned(),
        tls,
        faults: super::Faults::default(),
    }
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Reply {
        status,
        headers,
        text,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.receiver.base_url())
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .basic_auth(USER, Some(PASSWORD))
            .json(body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    async fn heartbeat(&self) -> Value {
        let reply = self.post("/heartbeat", &json!({})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }

    async fn dump(&self) -> super::Dump {
        let path = self.db_path.clone();
        tokio::task::spawn_blocking(move || Store::open_read_only(path)?.dump())
            .await
            .expect("join")
            .expect("dump")
    }

    async fn stop(self) {
        self.receiver.shutdown().await.expect("clean shutdown");
    }
}

fn patient(number: Value, first: &str) -> Value {
    json!({
        "patient_number": number,
        "first_name": first,
        "last_name": "Tester",
        "dob": "2013-11-26",
        "hd_mpfile_updated_at": "2016-10-24T10:00:00-05:00"
    })
}

fn dose(number: Value, date: &str, cvx: &str) -> Value {
    json!({
        "patient_number": number,
        "vaccine_code": "pol",
        "date_administered": date,
        "cvx_code": cvx,
        "hd_imfile_updated_at": "2016-10-24 10:00:00"
    })
}

fn field<'v>(row: &'v Value, key: &str) -> &'v Value {
    row.get(key).unwrap_or(&Value::Null)
}

fn messages(dump: &super::Dump) -> Vec<&str> {
    dump.data_import_errors
        .iter()
        .map(|e| e.error_message.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_missing_credentials_is_401_with_rails_body() {
    let h = harness().await;
    let response = h
        .client
        .post(h.url("/patient_data"))
        .json(&json!({"patient_data": [patient(json!(4), "A")]}))
        .send()
        .await
        .expect("request");
    let reply = read(response).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.text, "HTTP Basic: Access denied.\n");
    assert_eq!(
        reply.headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Basic realm=\"Application\""[..])
    );
    assert!(h.dump().await.data_imports.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_wrong_credentials_is_401_with_rails_body_on_every_endpoint() {
    let h = harness().await;
    for path in ["/heartbeat", "/patient_data", "/vaccine_dose_data"] {
        let response = h
            .client
            .post(h.url(path))
            .basic_auth(USER, Some("wrong"))
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        let reply = read(response).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.text, "HTTP Basic: Access denied.\n", "{path}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_array_missing_or_null_key_is_400_without_import_row() {
    let h = harness().await;
    for body in [
        json!({"patient_data": []}),
        json!({"patient_data": [null]}),
        json!({"patient_data": null}),
        json!({"data": [patient(json!(4), "A")]}),
    ] {
        let reply = h.post("/patient_data", &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.text, r#"{"status":"patient_data key missing"}"#);
    }
    let reply = h
        .post("/vaccine_dose_data", &json!({"vaccine_dose_data": []}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text, r#"{"status":"vaccine_dose_data key missing"}"#);
    assert!(h.dump().await.data_imports.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_import_success_stores_rows_with_rails_casts() {
    let h = harness().await;
    let mut first = patient(json!(4), "Test1");
    first["gender"] = json!("F");
    first["family_number"] = json!("12");
    let mut second = patient(json!("6"), "Test3");
    second["dob"] = json!("11/26/2011");
    second["hd_mpfile_updated_at"] = json!("10/24/2016 10:00:00");
    second["zip_code"] = json!(3406);
    let reply = h
        .post("/patient_data", &json!({"patient_data": [first, second]}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.text, r#"{"status":"success","data_import_id":1}"#);
    assert!(
        reply
            .headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    );

    let dump = h.dump().await;
    assert_eq!(dump.patients.len(), 2);
    let p4 = &dump.patients[0];
    assert_eq!(field(p4, "patient_number"), &json!(4));
    assert_eq!(field(p4, "dob"), &json!("2013-11-26"));
    assert_eq!(field(p4, "family_number"), &json!(12));
    assert_eq!(
        field(p4, "hd_mpfile_updated_at"),
        &json!("2016-10-24T15:00:00Z")
    );
    let p6 = &dump.patients[1];
    assert_eq!(field(p6, "patient_number"), &json!(6));
    assert_eq!(field(p6, "dob"), &json!("2011-11-26"));
    assert_eq!(field(p6, "zip_code"), &json!("3406"));
    // No offset: read as Central (CDT in October).
    assert_eq!(
        field(p6, "hd_mpfile_updated_at"),
        &json!("2016-10-24T15:00:00Z")
    );
    assert_eq!(dump.data_imports.len(), 1);
    assert_eq!(dump.data_imports[0].kind, "PatientDataImport");
    assert_eq!(dump.data_imports[0].updated_patient_numbers, ["4", "6"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gender_is_always_stored_null_like_reqcheck_bug() {
    let h = harness().await;
    let mut p = patient(json!(4), "A");
    p["gender"] = json!("M");
    h.post("/patient_data", &json!({"patient_data": [p]})).await;
    let dump = h.dump().await;
    assert_eq!(field(&dump.patients[0], "gender"), &Value::Null);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failure_lists_error_ids_and_processing_continues() {
    let h = harness().await;
    let mut no_stamp = patient(json!(2), "B");
    no_stamp["hd_mpfile_updated_at"] = Value::Null;
    let missing = json!({"patient_number": 3, "last_name": "C",
                         "hd_mpfile_updated_at": "2016-10-24"});
    let mut extra = patient(json!(5), "D");
    extra["random_attr"] = json!("x");
    extra["another"] = json!(1);
    let negative = patient(json!(-14), "E");
    let mut blank = patient(json!(7), " ");
    blank["dob"] = json!("not a date");
    let out_of_range = patient(json!(2_147_483_648_i64), "F");
    let body = json!({"patient_data": [
        patient(json!(1), "A"), no_stamp, missing, extra, negative, blank,
        patient(json!(8), "G"), out_of_range
    ]});
    let reply = h.post("/patient_data", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.text,
        r#"{"status":"partial_failure","data_import_id":1,"error_objects_ids":[1,2,3,4,5,6]}"#
    );

    let dump = h.dump().await;
    let numbers: Vec<&Value> = dump
        .patients
        .iter()
        .map(|p| field(p, "patient_number"))
        .collect();
    assert_eq!(numbers, [&json!(1), &json!(8)]);
    assert_eq!(
        messages(&dump),
        [
            r#"Missing arguments ["hd_mpfile_updated_at"] for Patient"#,
            r#"Missing arguments ["dob", "first_name"] for Patient"#,
            // `json!` sorts keys, so they go out (and are listed) alphabetically.
            "Extraneous arguments [:another, :random_attr] for Patient",
            "Patient number must be greater than 0",
            "First name can't be blank",
            "patient_number is out of range for ActiveRecord::Type::Integer with limit 4",
        ]
    );
    let first_error = &dump.data_import_errors[0];
    assert_eq!(first_error.object_class_name, "Patient");
    assert_eq!(first_error.data_import_id, Some(1));
    assert_eq!(field(&first_error.raw_hash, "patient_number"), &json!(2));
    assert_eq!(
        field(&first_error.raw_hash, "hd_mpfile_updated_at"),
        &Value::Null
    );
    assert_eq!(
        dump.data_imports[0].updated_patient_numbers,
        ["1", "2", "3", "5", "-14", "7", "8", "2147483648"]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_records_failing_is_still_201_partial_failure() {
    let h = harness().await;
    let reply = h
        .post(
            "/patient_data",
            &json!({"patient_data": [{"patient_number": 1}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["status"], "partial_failure");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_update_is_partial_and_null_clears_a_column() {
    let h = harness().await;
    let mut p = patient(json!(4), "Test1");
    p["email"] = json!("old@example.com");
    p["city"] = json!("Kansas City");
    p["notes"] = json!("keep me");
    h.post("/patient_data", &json!({"patient_data": [p]})).await;
    let before = h.dump().await.patients[0].clone();

    let mut update = patient(json!("4"), "Renamed");
    update["email"] = json!("new@example.com");
    update["city"] = Value::Null;
    let reply = h
        .post("/patient_data", &json!({"patient_data": [update]}))
        .await;
    assert_eq!(reply.json()["status"], "success");

    let dump = h.dump().await;
    assert_eq!(dump.patients.len(), 1, "same patient, updated in place");
    let after = &dump.patients[0];
    assert_eq!(field(after, "id"), field(&before, "id"));
    assert_eq!(field(after, "first_name"), &json!("Renamed"));
    assert_eq!(field(after, "email"), &json!("new@example.com"));
    assert_eq!(field(after, "city"), &Value::Null);
    assert_eq!(field(after, "notes"), &json!("keep me"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dose_import_replaces_each_included_patients_whole_history() {
    let h = harness().await;
    let patients = json!({"patient_data": [patient(json!(4), "A"), patient(json!(5), "B")]});
    h.post("/patient_data", &patients).await;
    let first = json!({"vaccine_dose_data": [
        dose(json!(4), "2014-03-08", "10"),
        dose(json!(4), "2015-02-04", "10"),
        dose(json!(5), "2013-03-12", "20"),
    ]});
    assert_eq!(
        h.post("/vaccine_dose_data", &first).await.json()["status"],
        "success"
    );
    let second = json!({"vaccine_dose_data": [dose(json!(4), "2016-01-01", "20")]});
    let reply = h.post("/vaccine_dose_data", &second).await;
    assert_eq!(reply.text, r#"{"status":"success","data_import_id":3}"#);

    let dump = h.dump().await;
    let doses: Vec<(&Value, &Value)> = dump
        .vaccine_doses
        .iter()
        .map(|d| (field(d, "patient_number"), field(d, "date_administered")))
        .collect();
    assert_eq!(
        doses,
        [
            (&json!(4), &json!("2016-01-01")),
            (&json!(5), &json!("2013-03-12")),
        ]
    );
    let d = &dump.vaccine_doses[0];
    assert_eq!(field(d, "vaccine_code"), &json!("POL"));
    assert_eq!(field(d, "cvx_code"), &json!(20));
    assert_eq!(field(d, "history_flag"), &json!(false));
    assert_eq!(field(d, "expiration_date"), &json!("2999-12-31"));
    assert_eq!(
        field(d, "hd_imfile_updated_at"),
        &json!("2016-10-24 10:00:00")
    );
    assert_eq!(dump.data_imports[1].kind, "VaccineDoseDataImport");
    assert_eq!(dump.data_imports[1].updated_patient_numbers, ["4", "5"]);
    // Every dose is stamped with its import's time, created and updated alike (one `now` bound
    // per multi-row INSERT).
    for d in &dump.vaccine_doses {
        let created = field(d, "created_at").as_str().expect("created_at");
        let at = chrono::DateTime::parse_from_rfc3339(created).expect("a timestamp");
        let age = chrono::Utc::now().signed_duration_since(at);
        assert!(
            age >= chrono::Duration::zero() && age < chrono::Duration::minutes(5),
            "{created}"
        );
        assert_eq!(field(d, "updated_at"), field(d, "created_at"));
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_patient_gets_placeholder_and_an_error_per_saved_dose() {
    let h = harness().await;
    let body = json!({"vaccine_dose_data": [
        dose(json!("77"), "2014-03-08", "10"),
        dose(json!("77"), "2015-02-04", "10"),
    ]});
    let reply = h.post("/vaccine_dose_data", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.text,
        r#"{"status":"partial_failure","data_import_id":1,"error_objects_ids":[1,2]}"#
    );
    let dump = h.dump().await;
    assert_eq!(dump.patients.len(), 1);
    let placeholder = &dump.patients[0];
    assert_eq!(field(placeholder, "patient_number"), &json!(77));
    assert_eq!(field(placeholder, "first_name"), &json!("Not Found"));
    assert_eq!(field(placeholder, "last_name"), &json!("Not Found"));
    assert_eq!(field(placeholder, "dob"), &json!("1900-01-01"));
    assert_eq!(dump.vaccine_doses.len(), 2, "doses are saved anyway");
    assert_eq!(
        messages(&dump),
        [
            "Patient with patient_number 77 could not be found",
            "Patient with patient_number 77 could not be found",
        ]
    );
    let error = &dump.data_import_errors[0];
    assert_eq!(error.object_class_name, "Vaccine");
    assert_eq!(field(&error.raw_hash, "patient_number"), &json!("77"));
    assert_eq!(field(&error.raw_hash, "cvx_code"), &json!("10"));

    // A later patient import fills in the placeholder in place.
    h.post(
        "/patient_data",
        &json!({"patient_data": [patient(json!(77), "Real")]}),
    )
    .await;
    let dump = h.dump().await;
    assert_eq!(dump.patients.len(), 1);
    assert_eq!(field(&dump.patients[0], "first_name"), &json!("Real"));
    assert_eq!(field(&dump.patients[0], "id"), field(placeholder, "id"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doses_group_by_raw_patient_number_so_4_and_string_4_clobber() {
    let h = harness().await;
    h.post(
        "/patient_data",
        &json!({"patient_data": [patient(json!(4), "A")]}),
    )
    .await;
    let body = json!({"vaccine_dose_data": [
        dose(json!(4), "2014-03-08", "10"),
        dose(json!("4"), "2015-02-04", "10"),
        dose(json!(4), "2016-05-06", "10"),
    ]});
    let reply = h.post("/vaccine_dose_data", &body).await;
    assert_eq!(reply.json()["status"], "success");
    let dump = h.dump().await;
    // Group 4 (two doses) is written, then group "4" deletes them and writes its one dose.
    let dates: Vec<&Value> = dump
        .vaccine_doses
        .iter()
        .map(|d| field(d, "date_administered"))
        .collect();
    assert_eq!(dates, [&json!("2015-02-04")]);
    assert_eq!(dump.data_imports[1].updated_patient_numbers, ["4", "4"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dose_record_checks_follow_reqcheck_order_and_messages() {
    let h = harness().await;
    h.post(
        "/patient_data",
        &json!({"patient_data": [patient(json!(4), "A")]}),
    )
    .await;
    let mut no_stamp = dose(json!(4), "2014-01-01", "10");
    no_stamp
        .as_object_mut()
        .expect("object")
        .remove("hd_imfile_updated_at");
    let mut no_cvx_date = dose(json!(4), "2014-01-01", "10");
    no_cvx_date["cvx_code"] = Value::Null;
    no_cvx_date["date_administered"] = Value::Null;
    let mut trade_name = dose(json!(4), "2014-01-01", "10");
    trade_name["trade_name"] = json!("IPOL");
    let mut patient_id = dose(json!(4), "2014-01-01", "10");
    patient_id["patient_id"] = json!(4);
    let mut null_flag = dose(json!(4), "2014-01-01", "10");
    null_flag["history_flag"] = Value::Null;
    let mut bad_date = dose(json!(4), "2014-01-01", "10");
    bad_date["date_administered"] = json!("sometime");
    let mut good = dose(json!(4), "03/08/2014", "10");
    good["history_flag"] = json!(true);
    good["expiration_date"] = json!("2017-01-01");
    let body = json!({"vaccine_dose_data": [
        no_stamp, no_cvx_date, trade_name, patient_id, null_flag, bad_date, good,
        {"vaccine_code": "MMR", "cvx_code": 3, "date_administered": "2014-01-01",
         "hd_imfile_updated_at": "x"}
    ]});
    let reply = h.post("/vaccine_dose_data", &body).await;
    assert_eq!(
        reply.json()["error_objects_ids"],
        json!([1, 2, 3, 4, 5, 6, 7])
    );
    let dump = h.dump().await;
    assert_eq!(
        messages(&dump),
        [
            r#"Missing arguments ["hd_imfile_updated_at"] for VaccineDose"#,
            r#"Missing arguments ["cvx_code", "date_administered"] for VaccineDose"#,
            "Extraneous arguments [:trade_name] for VaccineDose",
            "unknown attribute 'patient_id' for VaccineDose.",
            r#"PG::NotNullViolation: ERROR:  null value in column "history_flag" violates not-null constraint"#,
            r#"PG::NotNullViolation: ERROR:  null value in column "date_administered" violates not-null constraint"#,
            r#"Missing arguments ["patient_number"] for VaccineDose"#,
        ]
    );
    assert!(
        dump.data_import_errors
            .iter()
            .all(|e| e.object_class_name == "Vaccine")
    );
    // The null group's record has no patient_number put back; the others do.
    assert_eq!(
        field(&dump.data_import_errors[0].raw_hash, "patient_number"),
        &json!(4)
    );
    assert!(
        dump.data_import_errors[6]
            .raw_hash
            .get("patient_number")
            .is_none()
    );

    assert_eq!(dump.vaccine_doses.len(), 1);
    let saved = &dump.vaccine_doses[0];
    assert_eq!(field(saved, "date_administered"), &json!("2014-03-08"));
    assert_eq!(field(saved, "history_flag"), &json!(true));
    assert_eq!(field(saved, "expiration_date"), &json!("2017-01-01"));
    assert_eq!(dump.data_imports[1].updated_patient_numbers, ["4", "0"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_patient_number_in_dose_import_is_500_and_earlier_groups_stay() {
    let h = harness().await;
    h.post(
        "/patient_data",
        &json!({"patient_data": [patient(json!(4), "A")]}),
    )
    .await;
    let body = json!({"vaccine_dose_data": [
        dose(json!(4), "2014-03-08", "10"),
        dose(json!(-3), "2014-03-08", "10"),
        dose(json!(9), "2014-03-08", "10"),
    ]});
    let reply = h.post("/vaccine_dose_data", &body).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);

    let dump = h.dump().await;
    assert_eq!(
        dump.data_imports.len(),
        2,
        "the import row was already written"
    );
    assert_eq!(dump.vaccine_doses.len(), 1, "group 4 stays committed");
    assert_eq!(field(&dump.vaccine_doses[0], "patient_number"), &json!(4));
    assert_eq!(dump.patients.len(), 1, "no placeholder for -3 or 9");

    for bad in [json!(0), json!("abc"), json!(2_147_483_648_i64)] {
        let body = json!({"vaccine_dose_data": [dose(bad.clone(), "2014-03-08", "10")]});
        let reply = h.post("/vaccine_dose_data", &body).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{bad}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_is_null_before_any_import() {
    let h = harness().await;
    assert_eq!(
        h.heartbeat().await,
        json!({"last_update_date": null, "last_update_date_timestamp": null})
    );
    // The body is ignored, even an empty one.
    let response = h
        .client
        .post(h.url("/heartbeat"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("request");
    let reply = read(response).await;
    assert_eq!(
        reply.text,
        r#"{"last_update_date":null,"last_update_date_timestamp":null}"#
    );
    h.stop().await;
}

/// Checks the Rails form `2016-10-24T14:05:12.345-05:00` and returns the epoch seconds.
fn assert_central_millis(value: &Value) -> i64 {
    let text = value.as_str().expect("string date");
    assert_eq!(text.len(), 29, "{text}");
    assert_eq!(&text[10..11], "T", "{text}");
    assert_eq!(&text[19..20], ".", "{text}");
    assert!(text[20..23].bytes().all(|b| b.is_ascii_digit()), "{text}");
    assert!(
        text.ends_with("-05:00") || text.ends_with("-06:00"),
        "{text}"
    );
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_with_one_kind_returns_that_import() {
    let h = harness().await;
    // A failed import counts too: the row is written before any record is processed.
    h.post(
        "/patient_data",
        &json!({"patient_data": [{"patient_number": 1}]}),
    )
    .await;
    let beat = h.heartbeat().await;
    let epoch = assert_central_millis(&beat["last_update_date"]);
    assert_eq!(beat["last_update_date_timestamp"], json!(epoch));
    let created = &h.dump().await.data_imports[0].created_at;
    let created = DateTime::parse_from_rfc3339(created).expect("created_at");
    assert_eq!(created.timestamp(), epoch);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_returns_older_of_the_two_newest_imports() {
    let h = harness().await;
    let patients = json!({"patient_data": [patient(json!(4), "A")]});
    let doses = json!({"vaccine_dose_data": [dose(json!(4), "2014-03-08", "10")]});
    h.post("/patient_data", &patients).await; // import 1
    h.post("/vaccine_dose_data", &doses).await; // import 2
    h.post("/patient_data", &patients).await; // import 3

    let beat = h.heartbeat().await;
    let date = beat["last_update_date"].as_str().expect("date").to_owned();
    assert_central_millis(&beat["last_update_date"]);
    // Newest patient import is 3, newest dose import is 2: the older of those is 2.
    let dump = h.dump().await;
    let import2 = DateTime::parse_from_rfc3339(&dump.data_imports[1].created_at).expect("t");
    let reported = DateTime::parse_from_rfc3339(&date).expect("t");
    assert_eq!(
        reported.timestamp_millis(),
        import2.timestamp_millis(),
        "{date} vs {}",
        dump.data_imports[1].created_at
    );
    assert_eq!(
        beat["last_update_date_timestamp"],
        json!(import2.timestamp())
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_before_auth() {
    let h = harness().await;
    let response = h
        .client
        .post(h.url("/patient_data"))
        .header("content-type", "application/json")
        .body("{\"patient_data\": [")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(h.dump().await.data_imports.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_without_json_content_type_is_not_parsed_so_key_is_missing() {
    let h = harness().await;
    let body = json!({"patient_data": [patient(json!(4), "A")]}).to_string();
    let response = h
        .client
        .post(h.url("/patient_data"))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .expect("request");
    let reply = read(response).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text, r#"{"status":"patient_data key missing"}"#);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_heartbeat_and_unknown_paths_are_404() {
    let h = harness().await;
    let get = h
        .client
        .get(h.url("/heartbeat"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("request");
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
    let comport_style = h
        .post("/data/patients", &json!({"data": [patient(json!(4), "A")]}))
        .await;
    assert_eq!(comport_style.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_array_or_non_object_elements_are_500_without_import_row() {
    let h = harness().await;
    for body in [
        json!({"patient_data": {"patient_number": 4}}),
        json!({"patient_data": "4"}),
        json!({"patient_data": [4]}),
        json!({"patient_data": [{"patient_number": true}]}),
    ] {
        let reply = h.post("/patient_data", &body).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    }
    assert!(h.dump().await.data_imports.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_summary_shows_counts_and_ids_but_no_row_values() {
    let h = harness().await;
    let mut p = patient(json!(4242), "Zebulon");
    p["home_phone"] = json!("555-555-1212");
    h.post("/patient_data", &json!({"patient_data": [p]})).await;
    h.post(
        "/vaccine_dose_data",
        &json!({"vaccine_dose_data": [dose(json!(4343), "2014-03-08", "10")]}),
    )
    .await;
    let summary = h.dump().await.summary();
    assert!(summary.contains("2 patients"), "{summary}");
    assert!(
        summary.contains("import 2 VaccineDoseDataImport"),
        "{summary}"
    );
    assert!(summary.contains("ids 1"), "{summary}");
    for secret in ["Zebulon", "555-555-1212", "4242", "4343", "2013-11-26"] {
        assert!(
            !summary.contains(secret),
            "summary leaks {secret}: {summary}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reports_an_address_in_use() {
    let h = harness().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut taken = config(dir.path().join("other.sqlite"), None);
    taken.listen = h.receiver.local_addr();
    assert!(matches!(
        start(taken).await,
        Err(ReceiverError::Bind { .. })
    ));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_receiver_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, include_str!("testdata/server.pem")).expect("write cert");
    std::fs::write(&key, include_str!("testdata/server.key")).expect("write key");
    let receiver = start(config(
        dir.path().join("receiver.sqlite"),
        Some(TlsFiles { cert, key }),
    ))
    .await
    .expect("TLS receiver starts");
    assert!(receiver.base_url().starts_with("https://127.0.0.1:"));

    let ca = reqwest::Certificate::from_pem(include_bytes!("testdata/ca.pem")).expect("CA");
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client");
    let response = client
        .post(format!("{}/heartbeat", receiver.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(response.status(), StatusCode::OK);

    // A client that does not trust the test CA must fail the handshake.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .expect("client");
    assert!(
        untrusting
            .post(format!("{}/heartbeat", receiver.base_url()))
            .send()
            .await
            .is_err()
    );
    receiver.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_missing_files_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    };
    assert!(matches!(
        start(config(dir.path().join("r.sqlite"), Some(files))).await,
        Err(ReceiverError::TlsCert { .. })
    ));
}

// ---- fault injection ----------------------------------------------------------------------

/// A receiver with a fault plan from `--fault` specs.
async fn faulty(specs: &[&str]) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("receiver.sqlite");
    let mut config = config(db_path.clone(), None);
    config.faults = super::Faults::parse(specs).expect("fault plan");
    let receiver = start(config).await.expect("receiver starts");
    Harness {
        _dir: dir,
        db_path,
        receiver,
        client: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_faults_answer_without_storing_and_count_only_admitted_requests() {
    let h = faulty(&["patient_data:2=503+retry-after=7", "heartbeat:1..=429"]).await;
    // Refused by auth: neither counted nor given the fault.
    let refused = h
        .client
        .post(h.url("/patient_data"))
        .basic_auth(USER, Some("wrong"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body = json!({"patient_data": [patient(json!(4), "A")]});
    let first = h.post("/patient_data", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = h.post("/patient_data", &body).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        second.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
    assert_eq!(
        second.json(),
        json!({"status": "503", "error": "Service Unavailable"})
    );
    let third = h.post("/patient_data", &body).await;
    assert_eq!(
        third.status,
        StatusCode::CREATED,
        "only the 2nd request fails"
    );
    for _ in 0..2 {
        let beat = h.post("/heartbeat", &json!({})).await;
        assert_eq!(beat.status, StatusCode::TOO_MANY_REQUESTS, "N.. holds on");
        assert!(beat.headers.get("retry-after").is_none());
    }
    assert_eq!(
        h.dump().await.data_imports.len(),
        2,
        "the 503 stored nothing"
    );
    assert_eq!(
        h.receiver.requests(),
        super::RequestCounts {
            heartbeat: 2,
            patient_data: 3,
            vaccine_dose_data: 0,
            unauthorized: 1,
        }
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_date_is_an_http_date_in_the_future() {
    let h = faulty(&["heartbeat:1=503+retry-after-date=30"]).await;
    let reply = h.post("/heartbeat", &json!({})).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let value = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .expect("Retry-After");
    let at = httpdate::parse_http_date(value).expect("an HTTP-date");
    let ahead = at
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(ahead.as_secs() >= 28 && ahead.as_secs() <= 30, "{ahead:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_drops_the_connection_without_an_answer_and_the_server_lives_on() {
    let h = faulty(&["patient_data:1=reset"]).await;
    let body = json!({"patient_data": [patient(json!(4), "A")]});
    let error = h
        .client
        .post(h.url("/patient_data"))
        .basic_auth(USER, Some(PASSWORD))
        .json(&body)
        .send()
        .await
        .expect_err("no answer at all");
    assert!(error.is_request() && !error.is_connect(), "{error:?}");
    assert!(h.dump().await.data_imports.is_empty(), "nothing stored");
    let again = h.post("/patient_data", &body).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(h.receiver.requests().patient_data, 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_then_500_keeps_the_import_and_answers_500() {
    let h = faulty(&["patient_data:1=store-then-500"]).await;
    let reply = h
        .post(
            "/patient_data",
            &json!({"patient_data": [patient(json!(4), "A"), patient(json!(5), "B")]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let dump = h.dump().await;
    assert_eq!(dump.patients.len(), 2, "stored before the 500");
    assert_eq!(dump.data_imports.len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_waits_then_answers_normally() {
    let h = faulty(&["heartbeat:1=delay=400ms"]).await;
    let started = std::time::Instant::now();
    let reply = h.post("/heartbeat", &json!({})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    let started = std::time::Instant::now();
    h.post("/heartbeat", &json!({})).await;
    assert!(started.elapsed() < std::time::Duration::from_millis(400));
    h.stop().await;
}

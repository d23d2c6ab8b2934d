//! A full sync of real corpora ends with the receiver holding exactly the source, mapped.

use std::collections::BTreeMap;

use reqsync_receiver::Dump;
use reqsync_runtime::pipeline::RunOptions;
use reqsync_seeder::SeedOptions;
use serde_json::Value;

use crate::support::{World, corpus_csv, doses, patients};

/// One dose as ReqCheck stores it, in a comparable form.
fn dose_key(
    cvx: i64,
    date: &str,
    history: bool,
    vaccine_code: Option<String>,
    mvx: Option<String>,
) -> String {
    format!(
        "{cvx}|{date}|{history}|{}|{}",
        vaccine_code.unwrap_or_default(),
        mvx.unwrap_or_default()
    )
}

fn non_blank(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Checks the receiver's contents against a corpus in the clinic schema, field by field.
pub(crate) fn assert_receiver_equals_corpus(dump: &Dump, corpus: &str) {
    assert!(
        dump.data_import_errors.is_empty(),
        "record errors: {:?}",
        dump.data_import_errors.len()
    );
    let received = patients(dump);
    let mpfile = corpus_csv(&format!("{corpus}/mpfile.csv"));
    assert_eq!(received.len(), mpfile.len(), "patients");
    for row in &mpfile {
        let patno: i64 = row["patno"].parse().expect("patno");
        let p = &received[&patno];
        assert_eq!(
            p["first_name"],
            Value::from(row["fname"].trim()),
            "first_name of {patno}"
        );
        assert_eq!(
            p["last_name"],
            Value::from(row["lname"].trim()),
            "last_name of {patno}"
        );
        assert_eq!(
            p["dob"],
            Value::from(row["birth_date"].as_str()),
            "dob of {patno}"
        );
        assert!(
            p["hd_mpfile_updated_at"].is_string(),
            "hd_mpfile_updated_at of {patno}"
        );
    }
    let mut expected: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for row in corpus_csv(&format!("{corpus}/imfile.csv")) {
        expected
            .entry(row["patno"].parse().expect("patno"))
            .or_default()
            .push(dose_key(
                row["cvx"].parse().expect("cvx"),
                &row["admin_date"],
                row["history"] == "Y",
                non_blank(&row["vac_code"]).map(|c| c.to_uppercase()),
                non_blank(&row["mvx"]).map(|c| c.to_uppercase()),
            ));
    }
    let mut got: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (patno, list) in doses(dump) {
        for d in list {
            got.entry(patno).or_default().push(dose_key(
                d["cvx_code"].as_i64().expect("cvx_code"),
                d["date_administered"].as_str().expect("date_administered"),
                d["history_flag"].as_bool().expect("history_flag"),
                d["vaccine_code"].as_str().map(str::to_string),
                d["mvx_code"].as_str().map(str::to_string),
            ));
        }
    }
    for list in expected.values_mut().chain(got.values_mut()) {
        list.sort();
    }
    assert_eq!(got, expected, "doses per patient");
}

#[tokio::test(flavor = "multi_thread")]
async fn kcmo_full_sync_receiver_holds_exactly_the_source() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    let report = world.run(RunOptions::default()).await.expect("sync");
    let [patients_job, doses_job] = &report.jobs[..] else {
        panic!("two jobs")
    };
    assert_eq!(
        (
            patients_job.counts.read,
            patients_job.counts.emitted,
            patients_job.counts.rejected
        ),
        (21, 21, 0)
    );
    assert_eq!(
        (
            doses_job.counts.read,
            doses_job.counts.emitted,
            doses_job.counts.rejected
        ),
        (177, 177, 0)
    );
    assert_eq!(patients_job.records_acknowledged(), 21);
    assert_eq!(doses_job.records_acknowledged(), 177);
    let dump = world.dump();
    assert_eq!((dump.patients.len(), dump.vaccine_doses.len()), (21, 177));
    assert_receiver_equals_corpus(&world.dump(), "kcmo");
}

#[tokio::test(flavor = "multi_thread")]
async fn cdsi_full_sync_receiver_holds_exactly_the_source() {
    let world = World::new(SeedOptions {
        cdsi: true,
        ..SeedOptions::default()
    })
    .await;
    let report = world.run(RunOptions::default()).await.expect("sync");
    assert_eq!(report.jobs[0].counts.emitted, 928);
    assert_eq!(report.jobs[1].counts.emitted, 2142);
    let dump = world.dump();
    assert_eq!((dump.patients.len(), dump.vaccine_doses.len()), (928, 2142));
    assert_receiver_equals_corpus(&world.dump(), "cdsi");
}

#[tokio::test(flavor = "multi_thread")]
async fn patients_are_sent_before_doses_whatever_the_config_order() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    // Put the dose job first in the file.
    let path = world.path("reqsync.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let (head, jobs) = text.split_once("[[jobs]]").expect("jobs");
    let (patients_job, doses_job) = jobs.split_once("[[jobs]]").expect("two jobs");
    std::fs::write(
        &path,
        format!("{head}[[jobs]]{doses_job}\n[[jobs]]{patients_job}"),
    )
    .expect("write");
    let report = world.run(RunOptions::default()).await.expect("sync");
    assert_eq!(report.jobs[0].job, "patients");
    let dump = world.dump();
    assert!(dump.data_import_errors.is_empty());
    assert!(dump.patients.iter().all(|p| p["first_name"] != "Not Found"));
}

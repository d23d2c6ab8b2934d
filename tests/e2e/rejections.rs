//! Rows the rules reject are held back and reported; valid rows all arrive.

use std::collections::{BTreeSet, HashSet};

use reqsync_runtime::ledger::Ledger;
use reqsync_runtime::pipeline::RunOptions;
use reqsync_seeder::{InvalidKind, SeedOptions, SourceTable, SyntheticOptions};

use crate::support::{World, doses, patients, rejected};

#[tokio::test(flavor = "multi_thread")]
async fn rejected_patient_and_orphan_dose_never_reach_the_receiver() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    let db = world.clinic();
    db.execute_batch(
        "INSERT INTO mpfile (patno, lname, fname, birth_date, updated_at) VALUES (900001, '   ', 'Ann', '2010-01-01', '2016-09-28 12:00:00');
         INSERT INTO imfile (im_id, patno, cvx, admin_date, history, updated_at) VALUES
            (990001, 900001, 20, '2011-01-01', 'N', '2016-09-28 12:00:00'),
            (990002, 900001, 10, '2011-03-01', 'N', '2016-09-28 12:00:00'),
            (990003, 900002, 20, '2011-01-01', 'N', '2016-09-28 12:00:00');",
    )
    .expect("insert");
    let report = world.run(RunOptions::default()).await.expect("sync");
    let patients_job = &report.jobs[0];
    assert_eq!(patients_job.counts.rejected, 1);
    let rejected_patients = rejected(patients_job);
    assert_eq!(rejected_patients[0].0, "900001");
    assert!(
        rejected_patients[0]
            .1
            .iter()
            .any(|f| f.starts_with("last_name:")),
        "{rejected_patients:?}"
    );
    let doses_job = &report.jobs[1];
    assert_eq!(
        doses_job.counts.skipped.get("patient-not-sent"),
        Some(&2),
        "{:?}",
        doses_job.counts
    );
    assert_eq!(
        doses_job.counts.skipped.get("patient-not-found"),
        Some(&1),
        "{:?}",
        doses_job.counts
    );

    let dump = world.dump();
    assert!(
        dump.data_import_errors.is_empty(),
        "ReqCheck recorded errors"
    );
    let received = patients(&dump);
    assert!(!received.contains_key(&900001) && !received.contains_key(&900002));
    assert!(
        dump.patients.iter().all(|p| p["first_name"] != "Not Found"),
        "placeholder patient created"
    );
    assert_eq!(dump.vaccine_doses.len(), 177);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_synthetic_rows_are_rejected_with_their_codes_and_valid_ones_all_arrive() {
    let world = World::new(SeedOptions {
        synthetic: Some(SyntheticOptions::new(600, 7)),
        ..SeedOptions::default()
    })
    .await;
    let manifest = world
        .seeded
        .synthetic
        .as_ref()
        .expect("synthetic report")
        .invalid
        .clone();
    let report = world.run(RunOptions::default()).await.expect("sync");
    let (patients_job, doses_job) = (&report.jobs[0], &report.jobs[1]);

    // Every invalid patient row is rejected, and nothing else is.
    let invalid_patients: BTreeSet<String> = manifest
        .iter()
        .filter(|r| r.table == SourceTable::Mpfile)
        .map(|r| r.key.to_string())
        .collect();
    let rejected_patients: BTreeSet<String> = rejected(patients_job)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(rejected_patients, invalid_patients);

    // Every invalid dose row is rejected (orphans and doses of invalid patients are held back).
    let rejected_doses: HashSet<String> = rejected(doses_job)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for row in manifest.iter().filter(|r| r.table == SourceTable::Imfile) {
        let key = row.key.to_string();
        match row.kind {
            InvalidKind::OrphanDose | InvalidKind::DoseOfInvalidPatient => {
                assert!(
                    !rejected_doses.contains(&key),
                    "{key} should be held back, not rejected"
                )
            }
            _ => assert!(
                rejected_doses.contains(&key),
                "{key} ({:?}) not rejected",
                row.kind
            ),
        }
    }
    assert!(
        doses_job
            .counts
            .skipped
            .get("patient-not-found")
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert!(
        doses_job
            .counts
            .skipped
            .get("patient-not-sent")
            .copied()
            .unwrap_or(0)
            > 0
    );

    // The receiver holds every valid patient, and every dose of every patient whose doses are
    // all valid; no record errors, no placeholders.
    let dump = world.dump();
    assert!(dump.data_import_errors.is_empty());
    let db = world.clinic();
    let all_patients: Vec<i64> = db
        .prepare("SELECT patno FROM mpfile ORDER BY patno")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("patients");
    let received = patients(&dump);
    let invalid: HashSet<i64> = invalid_patients
        .iter()
        .map(|k| k.parse().expect("key"))
        .collect();
    for patno in &all_patients {
        assert_eq!(
            received.contains_key(patno),
            !invalid.contains(patno),
            "patient {patno}"
        );
    }
    let received_doses = doses(&dump);
    let mut held_patients = HashSet::new();
    for key in &rejected_doses {
        let patno: i64 = db
            .query_row(
                "SELECT patno FROM imfile WHERE im_id = ?1",
                [key.parse::<i64>().expect("key")],
                |r| r.get(0),
            )
            .expect("dose");
        held_patients.insert(patno);
    }
    for patno in all_patients.iter().filter(|p| !invalid.contains(p)) {
        let source_count: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM imfile WHERE patno = ?1",
                [patno],
                |r| r.get(0),
            )
            .expect("count");
        let got = received_doses.get(patno).map_or(0, Vec::len) as i64;
        if held_patients.contains(patno) {
            assert_eq!(
                got, 0,
                "patient {patno} has a rejected dose: the group is held back"
            );
        } else {
            assert_eq!(got, source_count, "doses of patient {patno}");
        }
    }
}

/// Rejected rows beyond one chunk wait in a temporary file (memory stays flat however many are
/// rejected); every one of them must still reach the report, its file and the quarantine.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_rejecting_every_row_keeps_them_all_in_the_report_and_the_quarantine() {
    let world = World::new(SeedOptions {
        synthetic: Some(SyntheticOptions::new(4_000, 11)),
        ..SeedOptions::default()
    })
    .await;
    let clinic = world.clinic();
    // A blank last name is a finding of the default patients module: every patient is rejected.
    clinic
        .execute("UPDATE mpfile SET lname = ''", [])
        .expect("blank names");
    let mut patients: Vec<String> = clinic
        .prepare("SELECT patno FROM mpfile")
        .unwrap()
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|n| n.unwrap().to_string())
        .collect();
    patients.sort();
    assert!(patients.len() > 3_000);

    let report = world.run(RunOptions::default()).await.expect("sync");
    let job = &report.jobs[0];
    assert_eq!(job.counts.rejected, patients.len() as u64);
    assert!(
        job.rejected_rows.spilled_chunks() > 0,
        "the rows must cross into the temporary file for this test: {:?}",
        job.rejected_rows
    );
    let rows = rejected(job);
    assert!(
        rows.iter()
            .all(|(_, findings)| findings.iter().any(|f| f.starts_with("last_name:")))
    );
    let mut keys: Vec<String> = rows.into_iter().map(|(key, _)| key).collect();
    keys.sort();
    assert_eq!(keys, patients, "the report's rejected rows");

    let state_dir = world.config().state_dir;
    let file: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state_dir.join("runs/run-000001.json")).expect("report file"),
    )
    .expect("report json");
    let mut in_file: Vec<String> = file["jobs"][0]["rejected_rows"]
        .as_array()
        .expect("rejected_rows")
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    in_file.sort();
    assert_eq!(in_file, patients, "the report file's rejected rows");

    let ledger = Ledger::open_existing(&state_dir).unwrap().expect("ledger");
    let mut quarantined: Vec<String> = ledger
        .open_quarantine_keys("patients")
        .unwrap()
        .into_iter()
        .collect();
    quarantined.sort();
    assert_eq!(quarantined, patients, "the quarantine");
    assert!(world.dump().patients.is_empty());
}

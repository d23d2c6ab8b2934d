//! Rows the rules reject are held back and reported; valid rows all arrive.

use std::collections::{BTreeSet, HashSet};

use reqsync::pipeline::RunOptions;
use reqsync::seed::{InvalidKind, SeedOptions, SourceTable, SyntheticOptions};

use crate::support::{World, doses, patients};

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
    assert_eq!(patients_job.rejected_rows.get(0).unwrap().key, "900001");
    assert!(
        patients_job
            .rejected_rows
            .get(0)
            .unwrap()
            .findings
            .iter()
            .any(|f| f.starts_with("last_name:")),
        "{:?}",
        patients_job.rejected_rows
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
    let rejected_patients: BTreeSet<String> = patients_job
        .rejected_rows
        .iter()
        .map(|r| r.key.to_string())
        .collect();
    assert_eq!(rejected_patients, invalid_patients);

    // Every invalid dose row is rejected (orphans and doses of invalid patients are held back).
    let rejected_doses: HashSet<String> = doses_job
        .rejected_rows
        .iter()
        .map(|r| r.key.to_string())
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

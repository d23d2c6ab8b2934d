//! An incremental run sends only the patients whose rows changed, each with its whole dose
//! history, and leaves the receiver equal to the source.

use reqsync_runtime::pipeline::RunOptions;
use reqsync_seeder::SeedOptions;
use serde_json::Value;

use crate::support::{World, doses, patients};

fn clinic_now() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Chicago)
        .naive_local()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_rows_resend_only_their_patients_with_full_history() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.run(RunOptions::default()).await.expect("first sync");
    let before = world.dump();
    let doses_of_103 = doses(&before)[&103].len();

    let now = clinic_now();
    let db = world.clinic();
    db.execute(
        "UPDATE mpfile SET fname = 'Zoë-Ann', updated_at = ?1 WHERE patno = 101",
        [&now],
    )
    .expect("rename");
    db.execute(
        "INSERT INTO imfile (im_id, patno, vac_code, vac_desc, cvx, mvx, admin_date, history, updated_at)
         VALUES (5000, 102, 'FLUZ', 'Flu, Preservative Free', 140, 'UNK', '2016-10-01', 'N', ?1)",
        [&now],
    )
    .expect("new dose");
    db.execute(
        "UPDATE imfile SET cvx = 20, updated_at = ?1 WHERE im_id = (SELECT MIN(im_id) FROM imfile WHERE patno = 103)",
        [&now],
    )
    .expect("corrected dose");

    let report = world
        .run(RunOptions::default())
        .await
        .expect("incremental sync");
    let (patients_job, doses_job) = (&report.jobs[0], &report.jobs[1]);
    assert_eq!(patients_job.counts.read, 1, "only the renamed patient");
    let source_doses: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM imfile WHERE patno IN (101, 102, 103)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(
        doses_job.counts.read as i64, source_doses,
        "the whole history of the three patients"
    );

    let after = world.dump();
    // The last dose import mentioned exactly the three changed patients.
    let last_dose_import = after
        .data_imports
        .iter()
        .rev()
        .find(|i| i.kind == "VaccineDoseDataImport")
        .expect("dose import");
    let mut mentioned = last_dose_import.updated_patient_numbers.clone();
    mentioned.sort();
    assert_eq!(mentioned, vec!["101", "102", "103"]);

    let received = patients(&after);
    assert_eq!(received[&101]["first_name"], Value::from("Zoë-Ann"));
    let by_patient = doses(&after);
    assert_eq!(by_patient[&102].len(), doses(&before)[&102].len() + 1);
    assert_eq!(
        by_patient[&103].len(),
        doses_of_103,
        "corrected, not duplicated"
    );
    assert!(by_patient[&103].iter().any(|d| d["cvx_code"] == 20));
    assert_eq!(after.vaccine_doses.len(), 178);
    assert!(after.data_import_errors.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_without_changes_sends_nothing() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.run(RunOptions::default()).await.expect("first sync");
    let report = world.run(RunOptions::default()).await.expect("second sync");
    assert!(
        report
            .jobs
            .iter()
            .all(|j| j.requests.is_empty() && j.counts.read == 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_resends_everything_and_changes_nothing() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.run(RunOptions::default()).await.expect("first sync");
    let before = world.dump();
    let report = world
        .run(RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .expect("full sync");
    assert_eq!(report.jobs[1].counts.read, 177);
    let after = world.dump();
    assert_eq!(before.patients, after.patients);
    assert_eq!(
        after.vaccine_doses.len(),
        177,
        "doses replaced, not duplicated"
    );
}

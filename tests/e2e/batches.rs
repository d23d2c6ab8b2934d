//! Request boundaries respect ReqCheck's dose-replacement rule.

use std::collections::HashMap;

use reqsync_runtime::pipeline::RunOptions;
use reqsync_seeder::SeedOptions;

use crate::support::{World, doses};

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_whose_doses_outnumber_the_batch_size_is_sent_in_one_request() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.edit_config(
        "batch_size = 500\ngroup_by_column",
        "batch_size = 3\ngroup_by_column",
    );
    let report = world.run(RunOptions::default()).await.expect("sync");
    let doses_job = &report.jobs[1];
    assert!(
        doses_job.requests.iter().any(|r| r.records > 3),
        "some patient has more than 3 doses"
    );

    let dump = world.dump();
    // Each patient is mentioned by exactly one dose import: never split across requests.
    let mut mentions: HashMap<String, usize> = HashMap::new();
    for import in dump
        .data_imports
        .iter()
        .filter(|i| i.kind == "VaccineDoseDataImport")
    {
        for n in &import.updated_patient_numbers {
            *mentions.entry(n.clone()).or_default() += 1;
        }
    }
    assert!(!mentions.is_empty());
    assert!(mentions.values().all(|&n| n == 1), "{mentions:?}");
    let db = world.clinic();
    for (patno, list) in doses(&dump) {
        let n: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM imfile WHERE patno = ?1",
                [patno],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(list.len() as i64, n, "doses of {patno}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn patients_go_batch_size_at_a_time() {
    let world = World::new(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    world.edit_config("batch_size = 500\n\n[[jobs]]", "batch_size = 5\n\n[[jobs]]");
    let report = world.run(RunOptions::default()).await.expect("sync");
    let sizes: Vec<usize> = report.jobs[0].requests.iter().map(|r| r.records).collect();
    assert_eq!(sizes, vec![5, 5, 5, 5, 1]);
    assert_eq!(world.dump().patients.len(), 21);
}

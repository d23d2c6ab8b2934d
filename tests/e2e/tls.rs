//! ReqCheck over HTTPS: certificates are verified by default; a configured CA is trusted.

use reqsync_runtime::pipeline::{RunError, RunOptions};
use reqsync_seeder::SeedOptions;

use crate::support::{World, run_with, testdata};

#[tokio::test(flavor = "multi_thread")]
async fn sync_over_https_trusts_the_configured_ca() {
    let world = World::with_tls(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    assert!(world.receiver.base_url().starts_with("https://"));
    let mut config = world.config();
    config.reqcheck.ca_file = Some(testdata().join("ca.pem"));
    run_with(config, RunOptions::default())
        .await
        .expect("sync over https");
    assert_eq!(world.dump().vaccine_doses.len(), 177);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_refused_by_default() {
    let world = World::with_tls(SeedOptions {
        kcmo: true,
        ..SeedOptions::default()
    })
    .await;
    let err = world
        .run(RunOptions::default())
        .await
        .expect_err("must refuse the certificate");
    assert!(matches!(err, RunError::Delivery(_)), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(world.dump().data_imports.is_empty());
}

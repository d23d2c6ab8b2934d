//! Asking the project's running service (`reqsync daemon`) what it runs, through its
//! `/healthz`: `transform list` and `status` show the module in use beside the file on disk.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqsync_runtime::transform::registry::ModuleStatus;

/// How long to wait for the running service's `/healthz`: it answers from memory.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Each job's module as the project's running service reports it on `/healthz`; the error
/// says why no service answered (nothing listening is the common case, not a failure).
pub async fn running_modules(listen: SocketAddr) -> Result<BTreeMap<String, ModuleStatus>, String> {
    let addr = reachable(listen);
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .timeout(HEALTH_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(&url).send().await.map_err(|e| {
        if e.is_connect() {
            format!("nothing listens on {addr}")
        } else {
            format!("{addr}: {e}")
        }
    })?;
    if !response.status().is_success() {
        return Err(format!("{addr} answered {}", response.status()));
    }
    let health = response
        .json::<serde_json::Value>()
        .await
        .map_err(|e| format!("{addr} did not answer as reqsync's /healthz: {e}"))?;
    let jobs = health["jobs"]
        .as_object()
        .ok_or_else(|| format!("{addr} did not answer as reqsync's /healthz"))?;
    Ok(jobs
        .iter()
        .filter_map(|(job, h)| {
            let status = serde_json::from_value::<ModuleStatus>(h["module"].clone()).ok()?;
            Some((job.clone(), status))
        })
        .collect())
}

/// The address to connect to for a listen address: a wildcard one is reached on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

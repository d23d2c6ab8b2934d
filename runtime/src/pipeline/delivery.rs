//! Where rendered bodies go: ReqCheck, or files / stdout for a dry run.

use std::io::Write;

use tokio_util::sync::CancellationToken;

use super::RunError;
use super::dry_run_dir::DryRunDir;
use crate::reqcheck::{ImportResponse, ReqCheckClient};

#[derive(Debug, Clone)]
pub enum DryRunOutput {
    Stdout,
    /// One file per request: `NNNN-<job>.json`.
    Dir(DryRunDir),
}

#[derive(Debug)]
pub enum Delivery {
    ReqCheck(ReqCheckClient),
    /// Render exactly what would be sent, without sending. The client, when there is one, is
    /// asked only for the heartbeat so the window is the one a real run would use.
    DryRun {
        output: DryRunOutput,
        client: Option<ReqCheckClient>,
    },
}

impl Delivery {
    pub(crate) async fn deliver(
        &self,
        job: &str,
        endpoint: &str,
        body: Vec<u8>,
        index: usize,
        cancel: Option<&CancellationToken>,
    ) -> Result<Option<ImportResponse>, RunError> {
        match self {
            Delivery::ReqCheck(client) => Ok(Some(
                client
                    .import_unless_cancelled(endpoint, body, cancel)
                    .await?,
            )),
            Delivery::DryRun {
                output: DryRunOutput::Stdout,
                ..
            } => {
                let mut out = std::io::stdout().lock();
                let written = writeln!(out, "POST {endpoint}")
                    .and_then(|_| out.write_all(&body))
                    .and_then(|_| writeln!(out));
                written.map_err(|e| RunError::DryRunOutput(e.to_string()))?;
                Ok(None)
            }
            Delivery::DryRun {
                output: DryRunOutput::Dir(dir),
                ..
            } => {
                dir.write(index, job, &body)
                    .map_err(|e| RunError::DryRunOutput(e.to_string()))?;
                Ok(None)
            }
        }
    }
}

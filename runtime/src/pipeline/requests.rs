//! A job's requests: rendered on one side, sent in order on the other, so that the next
//! request renders (and the transform keeps going) while ReqCheck stores the previous one.
//!
//! ReqCheck's contract still holds: requests go out one at a time, in the order they were
//! rendered, and each is recorded in the ledger as `sending` right before it leaves — so at
//! most one request is ever in an unknown state after a crash, as before. Rendering runs at
//! most [`RENDERED_AHEAD`] requests ahead of the one in flight.

use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::recorder::Recorder;
use super::report::RequestReport;
use super::{Delivery, RunError, check_cancel};
use crate::render::BodyTemplate;
use crate::transform::Record;

/// Requests rendered and waiting while one is in flight. One is enough to hide rendering
/// behind the round trip; more would only hold more bodies in memory.
pub(super) const RENDERED_AHEAD: usize = 1;

/// A request body ready to send.
pub(super) struct RenderedRequest {
    records: usize,
    body: Vec<u8>,
}

/// Renders one request's records through the job's template.
pub(super) fn render(
    job: &str,
    template: &BodyTemplate,
    records: &[Record],
) -> Result<RenderedRequest, RunError> {
    let body = template
        .render(records)
        .map_err(|error| RunError::Template {
            job: job.to_string(),
            error,
        })?;
    Ok(RenderedRequest {
        records: records.len(),
        body,
    })
}

/// The queue between the rendering side and [`Sender::send_all`].
pub(super) fn queue() -> (
    mpsc::Sender<RenderedRequest>,
    mpsc::Receiver<RenderedRequest>,
) {
    mpsc::channel(RENDERED_AHEAD)
}

/// Sends one job's rendered requests, in order, one at a time.
pub(super) struct Sender<'a> {
    pub delivery: &'a Delivery,
    pub recorder: &'a Recorder,
    pub job: &'a str,
    pub endpoint: &'a str,
    pub cancel: Option<&'a CancellationToken>,
    /// Records sent so far, for the progress line.
    pub records_sent: &'a AtomicUsize,
}

impl Sender<'_> {
    /// Sends everything the queue delivers until the rendering side closes it. Every answered
    /// request is appended to `requests`, also when a later one fails; on a failure the queue
    /// is closed, which stops the rendering side.
    pub async fn send_all(
        &self,
        mut queue: mpsc::Receiver<RenderedRequest>,
        requests: &mut Vec<RequestReport>,
    ) -> Result<(), RunError> {
        while let Some(request) = queue.recv().await {
            let result = match check_cancel(self.cancel, self.job) {
                Ok(()) => self.send(request, requests.len() + 1).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(report) => {
                    self.records_sent
                        .fetch_add(report.records, Ordering::Relaxed);
                    requests.push(report);
                }
                Err(e) => {
                    queue.close();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn send(&self, request: RenderedRequest, seq: usize) -> Result<RequestReport, RunError> {
        let RenderedRequest { records, body } = request;
        let (job, endpoint) = (self.job, self.endpoint);
        let bytes = body.len();
        let body_sha256 = hex::encode(Sha256::digest(&body));
        self.recorder
            .sending(job, seq, endpoint, records, bytes, &body_sha256)?;
        tracing::debug!(job, endpoint, seq, records, bytes, "sending request");
        let result = self.delivery.deliver(job, endpoint, body, seq - 1).await;
        let answer = match &result {
            Ok(Some(r)) => Some(Ok(r)),
            Err(RunError::Delivery(e)) => Some(Err(e)),
            _ => None,
        };
        if let Some(answer) = answer {
            self.recorder
                .answered(job, seq, endpoint, records, bytes, &body_sha256, answer)?;
        }
        let response = result?;
        if let Some(r) = &response {
            tracing::info!(
                job,
                endpoint,
                records,
                data_import_id = r.data_import_id,
                record_errors = r.error_ids.len(),
                "request accepted"
            );
        }
        Ok(RequestReport {
            records,
            bytes,
            body_sha256,
            response,
        })
    }
}

//! A job's requests: rendered on one side, sent in order on the other, so that the next
//! request renders (and the transform keeps going) while ReqCheck stores the previous one.
//!
//! ReqCheck's contract still holds: requests leave in the order they were rendered, each
//! recorded in the ledger as `sending` right before it leaves, so after a crash at most
//! [`Sender::in_flight`] requests are in an unknown state (the next run re-sends them with the
//! rest of the window). ReqCheck may store requests in flight in either order, so only
//! requests that share no patient overlap: a grouped job's never do (each patient's doses are
//! in exactly one request), and a request the batcher marks as repeating an earlier key waits
//! until every earlier one is answered. Rendering runs at most [`RENDERED_AHEAD`] requests
//! ahead of those in flight.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::batcher::Request;
use super::recorder::Recorder;
use super::report::RequestReport;
use super::{Delivery, RunError, check_cancel};
use crate::audit::RequestFields;
use crate::render::BodyTemplate;
use crate::reqcheck::ClientError;

/// Requests rendered and waiting while those in flight await their answers. One is enough to
/// hide rendering behind the round trip; more would only hold more bodies in memory.
pub(super) const RENDERED_AHEAD: usize = 1;

/// A request body ready to send.
pub(super) struct RenderedRequest {
    records: usize,
    /// Must not overtake an earlier request (see [`super::batcher::Request::repeats_a_key`]).
    after_earlier: bool,
    body: Vec<u8>,
    /// Hashed here, on the rendering side: between one answer and the next request the
    /// receiver waits, and hashing a 150 KB body there was most of that wait (about 100 µs a
    /// request, 0.2 s of a million-dose sync).
    body_sha256: String,
}

/// Renders one request's records through the job's template.
pub(super) fn render(
    job: &str,
    template: &BodyTemplate,
    request: &Request,
) -> Result<RenderedRequest, RunError> {
    let records = &request.records;
    let body = template
        .render(records)
        .map_err(|error| RunError::Template {
            job: job.to_string(),
            error,
        })?;
    let body_sha256 = hex::encode(Sha256::digest(&body));
    Ok(RenderedRequest {
        records: records.len(),
        after_earlier: request.repeats_a_key,
        body,
        body_sha256,
    })
}

/// The queue between the rendering side and [`Sender::send_all`].
pub(super) fn queue() -> (
    mpsc::Sender<RenderedRequest>,
    mpsc::Receiver<RenderedRequest>,
) {
    mpsc::channel(RENDERED_AHEAD)
}

/// Sends one job's rendered requests, in order, up to `in_flight` at a time.
pub(super) struct Sender<'a> {
    pub delivery: &'a Delivery,
    pub recorder: &'a Recorder,
    pub job: &'a str,
    pub endpoint: &'a str,
    pub cancel: Option<&'a CancellationToken>,
    /// Records sent so far, for the progress line.
    pub records_sent: &'a AtomicUsize,
    /// Requests that may await their answer at once (at least 1).
    pub in_flight: usize,
}

impl Sender<'_> {
    /// Sends everything the queue delivers until the rendering side closes it. Every answered
    /// request is appended to `requests` in the order sent, also when another one fails; on a
    /// failure (or a cancellation) no new request leaves, the queue is closed, which stops the
    /// rendering side, and the requests already in flight are waited for, so that their
    /// answers reach the ledger and the report. The first failure in sending order is returned.
    pub(crate) async fn send_all(
        &self,
        mut queue: mpsc::Receiver<RenderedRequest>,
        requests: &mut Vec<RequestReport>,
    ) -> Result<(), RunError> {
        let mut flying = FuturesOrdered::new();
        let mut sent = requests.len();
        let mut rendering = true;
        let mut failure = None;
        // The request taken from the queue, until it may leave.
        let mut next: Option<RenderedRequest> = None;
        loop {
            // At once, or, for a request that must not overtake an earlier one, once every
            // earlier one is answered.
            if failure.is_none()
                && let Some(request) = next.take_if(|r| !r.after_earlier || flying.is_empty())
            {
                match check_cancel(self.cancel, self.job) {
                    Ok(()) => {
                        sent += 1;
                        flying.push_back(self.send(request, sent));
                    }
                    Err(e) => {
                        queue.close();
                        failure = Some(e);
                    }
                }
            }
            tokio::select! {
                // Answers first: each frees a place for the next request.
                biased;
                Some(result) = flying.next(), if !flying.is_empty() => match result {
                    Ok::<RequestReport, _>(report) => {
                        self.records_sent.fetch_add(report.records, Ordering::Relaxed);
                        requests.push(report);
                    }
                    Err(e) => {
                        queue.close();
                        failure = failure.or(Some(e));
                    }
                },
                request = queue.recv(),
                    if rendering
                        && next.is_none()
                        && failure.is_none()
                        && flying.len() < self.in_flight.max(1) =>
                {
                    match request {
                        Some(request) => next = Some(request),
                        None => rendering = false,
                    }
                }
                else => break,
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn send(&self, request: RenderedRequest, seq: usize) -> Result<RequestReport, RunError> {
        let RenderedRequest {
            records,
            body,
            body_sha256,
            after_earlier: _,
        } = request;
        let (job, endpoint) = (self.job, self.endpoint);
        let bytes = body.len();
        let audited = RequestFields {
            run_id: self.recorder.run_id(),
            job,
            seq,
            url: self.recorder.reqcheck_url(),
            endpoint,
            records,
            bytes,
            body_sha256: &body_sha256,
        };
        self.recorder.sending(&audited)?;
        tracing::debug!(job, endpoint, seq, records, bytes, "sending request");
        let result = self
            .delivery
            .deliver(job, endpoint, body, seq - 1, self.cancel)
            .await;
        let answer = match &result {
            Ok(Some(r)) => Some(Ok(r)),
            Err(RunError::Delivery(e)) => Some(Err(e)),
            _ => None,
        };
        if let Some(answer) = answer {
            self.recorder.answered(&audited, answer)?;
        }
        // Recorded above as failed (the window holds it for the next run); the run itself
        // stops because it was asked to, not because ReqCheck failed.
        let response = result.map_err(|e| match e {
            RunError::Delivery(ClientError::RetryCancelled { .. }) => RunError::Abandoned {
                job: job.to_string(),
            },
            other => other,
        })?;
        // One line per request is too many at the default level (a 20,000-patient run printed
        // hundreds around its summary); the ledger, the audit trail and the run report have
        // every request anyway.
        if let Some(r) = &response {
            tracing::debug!(
                job,
                endpoint,
                records,
                data_import_id = r.data_import_id,
                record_errors = r.error_ids.len(),
                "request accepted"
            );
        }
        Ok(RequestReport {
            seq,
            records,
            bytes,
            body_sha256,
            response,
        })
    }
}

//! The receiver's log lines, one function per event.
//!
//! Each takes only counts, ids, status codes and fixed texts, so no request value (names,
//! dates of birth, patient numbers) can reach a log line, however a caller is written.

use std::net::SocketAddr;

use super::faults::{FaultAction, Faults};
use super::store::ImportKind;

pub(crate) fn listening(addr: SocketAddr, tls: bool) {
    tracing::info!(
        target: "reqsync::receiver",
        event = "receiver_listening",
        %addr,
        tls,
        "ReqCheck-compatible receiver listening"
    );
}

/// The fault plan, at start: a run against a misbehaving receiver must say so in its log.
pub(crate) fn faults_planned(faults: &Faults) {
    tracing::warn!(
        target: "reqsync::receiver",
        event = "faults_planned",
        plan = %faults,
        "fault injection plan: these requests will fail on purpose"
    );
}

/// A planned fault applied to the `n`th admitted request to `endpoint`.
pub(crate) fn fault_injected(endpoint: &'static str, n: u32, action: &FaultAction) {
    tracing::warn!(
        target: "reqsync::receiver",
        event = "fault_injected",
        endpoint,
        request = n,
        action = %action,
        "planned fault"
    );
}

pub(crate) fn stopped() {
    tracing::info!(target: "reqsync::receiver", event = "receiver_stopped", "receiver stopped");
}

pub(crate) fn request_done(endpoint: &'static str, status: u16) {
    tracing::info!(
        target: "reqsync::receiver",
        event = "request_done",
        endpoint,
        status,
        "request answered"
    );
}

/// A request refused before routing or auth: malformed JSON (400) or no such route (404).
pub(crate) fn request_rejected(status: u16) {
    tracing::info!(
        target: "reqsync::receiver",
        event = "request_rejected",
        status,
        "request refused before reaching an action"
    );
}

pub(crate) fn auth_rejected(endpoint: &'static str) {
    tracing::warn!(
        target: "reqsync::receiver",
        event = "auth_rejected",
        endpoint,
        "HTTP Basic credentials missing or wrong"
    );
}

pub(crate) fn import_done(kind: ImportKind, data_import_id: i64, records: usize, failed: usize) {
    tracing::info!(
        target: "reqsync::receiver",
        event = "import_done",
        kind = kind.type_name(),
        data_import_id,
        records,
        failed,
        "import processed"
    );
}

pub(crate) fn import_aborted(
    kind: ImportKind,
    data_import_id: Option<i64>,
    reason: &'static str,
    db_error: Option<&rusqlite::Error>,
) {
    tracing::warn!(
        target: "reqsync::receiver",
        event = "import_aborted",
        kind = kind.type_name(),
        data_import_id,
        reason,
        // SQLite's messages name tables and columns; values are bound, never in the text.
        db_error = db_error.map(tracing::field::display),
        "import aborted with 500; earlier writes are kept, as in ReqCheck"
    );
}

pub(crate) fn internal_error(context: &'static str, error: &dyn std::fmt::Display) {
    tracing::error!(
        target: "reqsync::receiver",
        event = "internal_error",
        context,
        %error,
        "receiver request failed"
    );
}

//! The HTTP layer: Rails' order of work for each request, then the three actions.
//!
//! Rails handles a request in this order, and so does [`dispatch`]: the JSON body is parsed
//! (400 on malformed JSON, on any path), the route is matched (404 for any other method or
//! path), HTTP Basic auth is checked (401), and only then does the action run. A fault plan
//! ([`super::faults`]), if any, steps in between auth and the action.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;

use super::auth::Credentials;
use super::faults::{Counters, DropConnection, FaultAction, Faults};
use super::heartbeat::heartbeat;
use super::import::{self, Aborted, Outcome};
use super::params::{self, Object};
use super::store::{Db, ImportKind, Store};
use super::{events, respond};

/// ReqCheck sets no size limit. This cap only keeps a runaway client from exhausting memory;
/// it is far above any batch an extractor sends (a patient record is well under 1 KiB).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// What every request handler can reach.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) credentials: Credentials,
    pub(crate) faults: Faults,
    pub(crate) counts: Arc<Counters>,
}

/// The receiver's router: one fallback that routes by hand, to follow Rails' order of work.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The three routes of ReqCheck's API (`config/routes.rb`), all POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Heartbeat,
    PatientData,
    VaccineDoseData,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Heartbeat => "heartbeat",
            Endpoint::PatientData => "patient_data",
            Endpoint::VaccineDoseData => "vaccine_dose_data",
        }
    }
}

/// Rails' route match for `post 'heartbeat'` etc.: the path is normalised (repeated and
/// trailing slashes dropped) and may carry a format suffix (`/heartbeat.json`).
fn route(method: &Method, path: &str) -> Option<Endpoint> {
    if method != Method::POST {
        return None;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let [segment] = segments.as_slice() else {
        return None;
    };
    let name = match segment.split_once('.') {
        Some((name, format)) if !format.is_empty() && !format.contains('.') => name,
        Some(_) => return None,
        None => segment,
    };
    match name {
        "heartbeat" => Some(Endpoint::Heartbeat),
        "patient_data" => Some(Endpoint::PatientData),
        "vaccine_dose_data" => Some(Endpoint::VaccineDoseData),
        _ => None,
    }
}

async fn dispatch(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Ok(params) = params::from_body(content_type, &body) else {
        events::request_rejected(StatusCode::BAD_REQUEST.as_u16());
        return respond::error_page(StatusCode::BAD_REQUEST);
    };
    let Some(endpoint) = route(&method, uri.path()) else {
        events::request_rejected(StatusCode::NOT_FOUND.as_u16());
        return respond::error_page(StatusCode::NOT_FOUND);
    };
    if !state.credentials.admit(&headers) {
        state.counts.refuse();
        events::auth_rejected(endpoint.name());
        return respond::unauthorized();
    }
    // Counted only past auth: a request the action could never have seen uses up no rule.
    let n = state.counts.admit(endpoint.name());
    let fault = state.faults.action_for(endpoint.name(), n);
    if let Some(action) = fault {
        events::fault_injected(endpoint.name(), n, action);
    }
    let response = match fault {
        None | Some(FaultAction::StoreThen500) => run_action(&state, endpoint, params).await,
        Some(FaultAction::Delay(wait)) => {
            tokio::time::sleep(*wait).await;
            run_action(&state, endpoint, params).await
        }
        Some(FaultAction::Status {
            status,
            retry_after,
        }) => respond::fault_status(*status, *retry_after),
        Some(FaultAction::Reset) => {
            let mut response = Response::default();
            response.extensions_mut().insert(DropConnection);
            return response;
        }
    };
    // After the action: whatever it stored stays stored, as when ReqCheck fails late.
    let response = if matches!(fault, Some(FaultAction::StoreThen500)) {
        respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        response
    };
    events::request_done(endpoint.name(), response.status().as_u16());
    response
}

async fn run_action(state: &Arc<AppState>, endpoint: Endpoint, params: Object) -> Response {
    match endpoint {
        Endpoint::Heartbeat => heartbeat_action(state).await,
        Endpoint::PatientData => {
            import_action(state, ImportKind::Patient, "patient_data", params).await
        }
        Endpoint::VaccineDoseData => {
            import_action(state, ImportKind::VaccineDose, "vaccine_dose_data", params).await
        }
    }
}

async fn heartbeat_action(state: &Arc<AppState>) -> Response {
    match blocking(state, heartbeat).await {
        Ok(Ok(body)) => respond::json(StatusCode::OK, &body),
        Ok(Err(e)) => {
            events::internal_error("heartbeat", &e);
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(e) => {
            events::internal_error("heartbeat", &e);
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

async fn import_action(
    state: &Arc<AppState>,
    kind: ImportKind,
    key: &'static str,
    params: Object,
) -> Response {
    let store = Arc::clone(&state.store);
    let result = tokio::task::spawn_blocking(move || {
        let result = store.with_request(|db| match kind {
            ImportKind::Patient => import::import_patients(db, &params),
            ImportKind::VaccineDose => import::import_vaccine_doses(db, &params),
        });
        // Freeing a parsed body of thousands of records takes a few percent of an import:
        // done on another thread, while the answer goes out.
        drop_elsewhere(params);
        result
    })
    .await;
    match result {
        Ok(Ok(Ok(outcome))) => {
            if let Outcome::Imported {
                data_import_id,
                records,
                error_ids,
            } = &outcome
            {
                events::import_done(kind, *data_import_id, *records, error_ids.len());
            }
            respond::import_outcome(key, &outcome)
        }
        Ok(Ok(Err(Aborted {
            data_import_id,
            reason,
            db_error,
        }))) => {
            events::import_aborted(kind, data_import_id, reason, db_error.as_ref());
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
        // The transaction could not be opened or committed (SQLite's messages carry no values).
        Ok(Err(e)) => {
            events::internal_error("import", &e);
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(e) => {
            events::internal_error("import", &e);
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Drops `value` on the blocking pool instead of the calling thread.
fn drop_elsewhere<T: Send + 'static>(value: T) {
    drop(tokio::task::spawn_blocking(move || drop(value)));
}

/// Runs database work on the blocking pool, holding the store's lock for the whole request
/// (imports are serialised, as behind a single Rails worker). Imports use
/// [`Store::with_request`] instead, which also wraps the request in one transaction.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&Db<'_>) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || store.with_db(work)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_rails_normalisation() {
        let post = Method::POST;
        assert_eq!(route(&post, "/heartbeat"), Some(Endpoint::Heartbeat));
        assert_eq!(route(&post, "/heartbeat/"), Some(Endpoint::Heartbeat));
        assert_eq!(route(&post, "/heartbeat.json"), Some(Endpoint::Heartbeat));
        assert_eq!(route(&post, "//patient_data"), Some(Endpoint::PatientData));
        assert_eq!(
            route(&post, "/vaccine_dose_data"),
            Some(Endpoint::VaccineDoseData)
        );
        assert_eq!(route(&Method::GET, "/heartbeat"), None);
        assert_eq!(route(&Method::HEAD, "/heartbeat"), None);
        assert_eq!(route(&post, "/api/heartbeat"), None);
        assert_eq!(route(&post, "/heartbeat."), None);
        assert_eq!(route(&post, "/data/patients"), None);
        assert_eq!(route(&post, "/"), None);
    }
}

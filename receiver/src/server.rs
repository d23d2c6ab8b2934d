//! The HTTP layer: Rails' order of work for each request, then the three actions.
//!
//! Rails handles a request in this order, and so does [`admit_and_act`]: the JSON body is parsed
//! (400 on malformed JSON, on any path), the route is matched (404 for any other method or
//! path), HTTP Basic auth is checked (401), and only then does the action run. A fault plan
//! ([`super::faults`]), if any, steps in between auth and the action.

use std::sync::Arc;
use std::time::Duration;

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
use super::store::{ImportKind, Store};
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

/// One request as it arrived, shared between the two halves of a delayed request.
struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    /// Rails' `ParamsParser`: the params borrow the body's text.
    fn params(&self) -> Result<Object<'_>, params::Malformed> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        params::from_body(content_type, &self.body)
    }
}

/// How far [`admit_and_act`] got.
enum Step {
    Answered(Response),
    /// The fault plan delays the action: wait, then [`act_after_delay`].
    Delayed {
        endpoint: Endpoint,
        wait: Duration,
    },
}

async fn dispatch(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Everything after reading the body runs on the blocking pool: the parsed params borrow
    // the body, so they are made, used and dropped on one thread, and the action holds the
    // store's lock for the whole request anyway.
    let request = Arc::new(Request {
        method,
        uri,
        headers,
        body,
    });
    let step = {
        let (state, request) = (Arc::clone(&state), Arc::clone(&request));
        on_blocking_pool(move || admit_and_act(&state, &request)).await
    };
    match step {
        Ok(Step::Answered(response)) => response,
        // The wait is a timer, not a sleeping thread: a test's runtime can shut down while a
        // request is held.
        Ok(Step::Delayed { endpoint, wait }) => {
            tokio::time::sleep(wait).await;
            on_blocking_pool(move || act_after_delay(&state, &request, endpoint))
                .await
                .unwrap_or_else(panicked)
        }
        Err(e) => panicked(e),
    }
}

/// Rails' order of work (parse, route, auth), the fault plan, then the action.
fn admit_and_act(state: &AppState, request: &Request) -> Step {
    let Ok(params) = request.params() else {
        events::request_rejected(StatusCode::BAD_REQUEST.as_u16());
        return Step::Answered(respond::error_page(StatusCode::BAD_REQUEST));
    };
    let Some(endpoint) = route(&request.method, request.uri.path()) else {
        events::request_rejected(StatusCode::NOT_FOUND.as_u16());
        return Step::Answered(respond::error_page(StatusCode::NOT_FOUND));
    };
    if !state.credentials.admit(&request.headers) {
        state.counts.refuse();
        events::auth_rejected(endpoint.name());
        return Step::Answered(respond::unauthorized());
    }
    // Counted only past auth: a request the action could never have seen uses up no rule.
    let n = state.counts.admit(endpoint.name());
    let fault = state.faults.action_for(endpoint.name(), n);
    if let Some(action) = fault {
        events::fault_injected(endpoint.name(), n, action);
    }
    let response = match fault {
        None => run_action(state, endpoint, &params),
        Some(FaultAction::Delay(wait)) => {
            return Step::Delayed {
                endpoint,
                wait: *wait,
            };
        }
        Some(FaultAction::Status {
            status,
            retry_after,
        }) => respond::fault_status(*status, *retry_after),
        Some(FaultAction::Reset) => {
            let mut response = Response::default();
            response.extensions_mut().insert(DropConnection);
            return Step::Answered(response);
        }
        // After the action: whatever it stored stays stored, as when ReqCheck fails late.
        Some(FaultAction::StoreThen500) => {
            drop(run_action(state, endpoint, &params));
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    events::request_done(endpoint.name(), response.status().as_u16());
    Step::Answered(response)
}

/// The action of a request [`admit_and_act`] delayed: its body parsed again (it parsed
/// before, so it does again), no second count or fault.
fn act_after_delay(state: &AppState, request: &Request, endpoint: Endpoint) -> Response {
    let Ok(params) = request.params() else {
        events::request_rejected(StatusCode::BAD_REQUEST.as_u16());
        return respond::error_page(StatusCode::BAD_REQUEST);
    };
    let response = run_action(state, endpoint, &params);
    events::request_done(endpoint.name(), response.status().as_u16());
    response
}

fn run_action(state: &AppState, endpoint: Endpoint, params: &Object<'_>) -> Response {
    match endpoint {
        Endpoint::Heartbeat => heartbeat_action(state),
        Endpoint::PatientData => import_action(state, ImportKind::Patient, "patient_data", params),
        Endpoint::VaccineDoseData => {
            import_action(state, ImportKind::VaccineDose, "vaccine_dose_data", params)
        }
    }
}

fn heartbeat_action(state: &AppState) -> Response {
    match state.store.with_db(heartbeat) {
        Ok(body) => respond::json(StatusCode::OK, &body),
        Err(e) => {
            events::internal_error("heartbeat", &e);
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Runs an import in one transaction, holding the store's lock for the whole request
/// (imports are serialised, as behind a single Rails worker).
fn import_action(
    state: &AppState,
    kind: ImportKind,
    key: &'static str,
    params: &Object<'_>,
) -> Response {
    let result = state.store.with_request(|db| match kind {
        ImportKind::Patient => import::import_patients(db, params),
        ImportKind::VaccineDose => import::import_vaccine_doses(db, params),
    });
    match result {
        Ok(Ok(outcome)) => {
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
        Ok(Err(Aborted {
            data_import_id,
            reason,
            db_error,
        })) => {
            events::import_aborted(kind, data_import_id, reason, db_error.as_ref());
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
        // The transaction could not be opened or committed (SQLite's messages carry no values).
        Err(e) => {
            events::internal_error("import", &e);
            respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(work).await
}

/// A request whose handling panicked: a 500, as Rails answers an unhandled exception.
fn panicked(e: tokio::task::JoinError) -> Response {
    events::internal_error("request", &e);
    respond::error_page(StatusCode::INTERNAL_SERVER_ERROR)
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

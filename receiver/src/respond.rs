//! Responses shaped like the ones Rails 4.2 sends, byte for byte where an extractor can see it.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::faults::RetryAfter;
use super::import::Outcome;

const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// `render json: ..., status: ...`. Struct fields serialise in declaration order, which keeps
/// the key order Rails produces.
pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => with_type(status, JSON, bytes),
        Err(_) => error_page(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// `request_http_basic_authentication`: 401, the realm header and this exact body.
pub(crate) fn unauthorized() -> Response {
    let mut response = with_type(
        StatusCode::UNAUTHORIZED,
        HTML,
        b"HTTP Basic: Access denied.\n".to_vec(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Application\""),
    );
    response
}

/// What `ActionDispatch::PublicExceptions` renders for a JSON client: 400 for a body that is
/// not JSON, 404 for an unknown route or method, 500 for an exception in the action.
pub(crate) fn error_page(status: StatusCode) -> Response {
    #[derive(Serialize)]
    struct ErrorPage<'a> {
        status: String,
        error: &'a str,
    }
    let page = ErrorPage {
        status: status.as_u16().to_string(),
        error: status.canonical_reason().unwrap_or("Error"),
    };
    let bytes = serde_json::to_vec(&page).unwrap_or_default();
    with_type(status, JSON, bytes)
}

/// A status fault: the error page a proxy or Rails would send for that status, with the
/// plan's `Retry-After` if it has one.
pub(crate) fn fault_status(status: u16, retry_after: Option<RetryAfter>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error_page(status);
    let value = match retry_after {
        None => return response,
        Some(RetryAfter::Seconds(s)) => s.to_string(),
        Some(RetryAfter::DateIn(s)) => httpdate::fmt_http_date(
            std::time::SystemTime::now() + std::time::Duration::from_secs(s),
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The import actions' answers (400 key missing, or 201 with the import id).
pub(crate) fn import_outcome(key: &str, outcome: &Outcome) -> Response {
    #[derive(Serialize)]
    struct KeyMissing {
        status: String,
    }
    #[derive(Serialize)]
    struct Success {
        status: &'static str,
        data_import_id: i64,
    }
    #[derive(Serialize)]
    struct PartialFailure<'a> {
        status: &'static str,
        data_import_id: i64,
        /// Spelled this way in ReqCheck.
        error_objects_ids: &'a [i64],
    }
    match outcome {
        Outcome::KeyMissing => json(
            StatusCode::BAD_REQUEST,
            &KeyMissing {
                status: format!("{key} key missing"),
            },
        ),
        Outcome::Imported {
            data_import_id,
            error_ids,
            ..
        } if error_ids.is_empty() => json(
            StatusCode::CREATED,
            &Success {
                status: "success",
                data_import_id: *data_import_id,
            },
        ),
        Outcome::Imported {
            data_import_id,
            error_ids,
            ..
        } => json(
            StatusCode::CREATED,
            &PartialFailure {
                status: "partial_failure",
                data_import_id: *data_import_id,
                error_objects_ids: error_ids,
            },
        ),
    }
}

fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

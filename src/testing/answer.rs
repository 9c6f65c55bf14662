//! How the stand-in answers when no fault is scripted: like GenLogs. The gateway checks
//! `x-api-key`, `POST /auth/token/refresh` rotates, and one protected endpoint checks
//! `Access-Token`. Bodies are the ones the real service and its gateway send.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde_json::{json, Value};

use super::fault::ExpiresFormat;
use super::mock::Shared;
use super::request::RecordedRequest;
use super::tokens::{Issued, RefreshOutcome};

/// The refresh endpoint's path (the base URL's `/auth` included).
pub const REFRESH_PATH: &str = "/auth/token/refresh";
/// The protected endpoint's path: answers `200` with a small JSON document for a valid
/// `Access-Token` and `x-api-key`.
pub const PROTECTED_PATH: &str = "/carriers/recommendations";

/// A complete answer: status, header lines, body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
        }
    }
}

/// FastAPI's 422 body for a request without `refresh_token`.
pub(crate) fn missing_refresh_token_body() -> Value {
    json!({ "detail": [{
        "type": "missing",
        "loc": ["query", "refresh_token"],
        "msg": "Field required",
        "input": null
    }] })
}

/// The JSON body GenLogs returns for a token pair (`POST /auth/token` and the refresh).
pub(crate) fn token_body(
    issued: &Issued,
    user_id: &str,
    company_id: i64,
    format: ExpiresFormat,
) -> Value {
    json!({
        "access_token_data": { "token": issued.access, "expires": format.format(issued.access_expires) },
        "refresh_token_data": { "token": issued.refresh, "expires": format.format(issued.refresh_expires) },
        "user_id": user_id,
        "company_id": company_id
    })
}

/// Answers one request as GenLogs would, writing `expires` in `format`.
pub(crate) fn genlogs(shared: &Shared, request: &RecordedRequest, format: ExpiresFormat) -> Answer {
    // The gateway answers before the service sees anything.
    if request.header_values("x-api-key") != [shared.api_key.as_str()] {
        return Answer::json(403, &json!({ "message": "Forbidden" }));
    }
    match (request.method(), request.path()) {
        ("POST", REFRESH_PATH) => refresh(shared, request, format),
        ("GET", PROTECTED_PATH) => protected(shared, request),
        _ => Answer::json(404, &json!({ "detail": "Not Found" })),
    }
}

fn refresh(shared: &Shared, request: &RecordedRequest, format: ExpiresFormat) -> Answer {
    let Some(token) = request.query("refresh_token") else {
        return Answer::json(422, &missing_refresh_token_body());
    };
    let outcome = shared.book().refresh(&token, shared.now());
    match outcome {
        RefreshOutcome::Rotated(issued) => {
            shared.refreshes.fetch_add(1, Ordering::SeqCst);
            let mut answer = Answer::json(
                200,
                &token_body(&issued, &shared.user_id, shared.company_id, format),
            );
            // Server time, which the manager uses to measure lifetimes despite local skew.
            let date = shared
                .date()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            answer.headers.push(("date".into(), date));
            answer
        }
        RefreshOutcome::Reused => {
            shared.reuses.fetch_add(1, Ordering::SeqCst);
            Answer::json(401, &json!({ "detail": "Invalid refresh token" }))
        }
        RefreshOutcome::Rejected => {
            Answer::json(401, &json!({ "detail": "Invalid refresh token" }))
        }
    }
}

fn protected(shared: &Shared, request: &RecordedRequest) -> Answer {
    let valid = match request.header_values("access-token").as_slice() {
        [token] => shared.book().is_valid_access(token, shared.now()),
        _ => false,
    };
    if valid {
        Answer::json(
            200,
            &json!({ "carriers": [{ "name": "ACME Freight", "score": 0.93 }] }),
        )
    } else {
        Answer::json(
            401,
            &json!({ "detail": "Missing or incorrect Access-Token" }),
        )
    }
}

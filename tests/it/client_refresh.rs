//! `refresh()` against a loopback server: what goes on the wire, and what comes back.

use crate::support::{answering, editing_answers};
use chrono::{TimeZone, Utc};
use genlogs_auth::testing::{Fault, MockGenLogs};
use genlogs_auth::{AuthClient, RefreshToken};
use serde_json::json;

const API_KEY: &str = "test-api-key-0123";

fn token_response(expires: &str) -> Fault {
    Fault::json(
        200,
        json!({
            "access_token_data": { "token": "new-access", "expires": expires },
            "refresh_token_data": { "token": "new-refresh", "expires": expires },
            "user_id": "user-1",
            "company_id": 12
        }),
    )
}

fn client(genlogs: &MockGenLogs) -> AuthClient {
    AuthClient::builder(API_KEY)
        .with_base_url(genlogs.base_url())
        .build()
        .expect("valid configuration")
}

#[tokio::test]
async fn success_decodes_every_datetime_form_the_service_emits() {
    let expected = Utc.with_ymd_and_hms(2026, 11, 26, 6, 8, 25).unwrap()
        + chrono::Duration::microseconds(69_078);
    for form in [
        "2026-11-26T06:08:25.069078Z",
        "2026-11-26T06:08:25.069078+00:00",
        "2026-11-26T06:08:25.069078",
        "2026-11-26 06:08:25.069078+00:00",
        "2026-11-26 06:08:25.069078",
    ] {
        let genlogs = answering(token_response(form)).await;
        let session = client(&genlogs)
            .refresh(&RefreshToken::new("old-refresh"))
            .await
            .unwrap();
        assert_eq!(session.access_expires, expected, "{form}");
        assert_eq!(session.refresh_expires, expected, "{form}");
        assert_eq!(session.access_token.expose_secret(), "new-access");
        assert_eq!(session.refresh_token.expose_secret(), "new-refresh");
        assert_eq!(session.response().user_id, "user-1");
        assert_eq!(session.response().company_id, 12);
    }
}

#[tokio::test]
async fn the_request_on_the_wire_is_the_documented_one() {
    let genlogs = answering(token_response("2026-11-26T06:08:25Z")).await;
    client(&genlogs)
        .refresh(&RefreshToken::new("old refresh/+token"))
        .await
        .unwrap();

    let requests = genlogs.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method(), "POST");
    assert_eq!(request.path(), "/auth/token/refresh");
    assert_eq!(
        request.query("refresh_token").as_deref(),
        Some("old refresh/+token")
    );
    assert_eq!(request.header_values("accept"), ["application/json"]);
    assert_eq!(request.header_values("x-api-key"), [API_KEY]);
    assert!(
        request.header_values("api-version").is_empty(),
        "progenitor's api-version header is stripped"
    );
    assert!(request.header_values("referer").is_empty());
    assert!(request.body().is_empty());
}

#[tokio::test]
async fn the_session_carries_the_server_date_and_debug_shows_no_token() {
    let genlogs = answering(
        token_response("2026-11-26T06:08:25Z").with_header("date", "Thu, 26 Nov 2026 05:00:00 GMT"),
    )
    .await;
    let session = client(&genlogs)
        .refresh(&RefreshToken::new("old-refresh"))
        .await
        .unwrap();
    assert_eq!(
        session.server_date,
        Some(Utc.with_ymd_and_hms(2026, 11, 26, 5, 0, 0).unwrap())
    );
    let debug = format!("{session:?}");
    crate::support::leak::assert_no_leak(&debug, &["new-access", "new-refresh"]);
    assert!(debug.contains("user-1"), "{debug}");
}

#[tokio::test]
async fn rotation_against_the_stand_in_invalidates_the_old_token() {
    let genlogs = MockGenLogs::builder().with_api_key(API_KEY).start().await;
    let first = genlogs.issue_tokens().into_refresh_token();
    let client = client(&genlogs);

    let session = client.refresh(&first).await.unwrap();
    assert_ne!(session.refresh_token.expose_secret(), first.expose_secret());
    let reused = client.refresh(&first).await.unwrap_err();
    assert!(
        matches!(reused, genlogs_auth::Error::RefreshTokenRejected { .. }),
        "{reused}"
    );
    assert_eq!(genlogs.reuses(), 1);
    // Reuse revoked the whole family, the rotated token included (RFC 9700 §4.14).
    let revoked = client.refresh(&session.refresh_token).await.unwrap_err();
    assert!(revoked.is_token_rejected(), "{revoked}");
    assert_eq!(genlogs.refreshes(), 1);
}

#[tokio::test]
async fn a_callers_own_reqwest_client_still_gets_the_api_key_and_the_timeout() {
    // The caller's builder has no timeout of its own.
    let build = |genlogs: &MockGenLogs| {
        AuthClient::builder(API_KEY)
            .with_base_url(genlogs.base_url())
            .with_http_client_builder(genlogs_auth::reqwest::Client::builder())
            .with_timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let genlogs = answering(token_response("2026-11-26T06:08:25Z")).await;
    build(&genlogs)
        .refresh(&RefreshToken::new("old"))
        .await
        .unwrap();
    assert_eq!(genlogs.requests()[0].header_values("x-api-key"), [API_KEY]);

    let stalled = answering(Fault::Stall).await;
    let started = std::time::Instant::now();
    let error = build(&stalled)
        .refresh(&RefreshToken::new("old"))
        .await
        .unwrap_err();
    assert_eq!(
        error.unknown_outcome(),
        Some(&genlogs_auth::client::UnknownOutcome::TimedOut),
        "{error:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn the_generated_client_is_reachable_and_sends_the_same_request() {
    let genlogs = answering(token_response("2026-11-26T06:08:25Z")).await;
    let client = client(&genlogs);
    let response = client.raw().refresh_tokens("raw-token").await.unwrap();
    let body: genlogs_auth::raw::types::AuthenticationResponse = response.into_inner();
    assert_eq!(body.refresh_token_data.token.expose_secret(), "new-refresh");
    assert_eq!(genlogs.requests()[0].header_values("x-api-key"), [API_KEY]);
    assert_eq!(
        genlogs.requests()[0].header_values("accept"),
        ["application/json"]
    );
}

#[tokio::test]
async fn the_clients_debug_shows_no_api_key() {
    let genlogs = answering(token_response("2026-11-26T06:08:25Z")).await;
    let debug = format!("{:?} {:#?}", client(&genlogs), client(&genlogs));
    crate::support::leak::assert_no_leak(&debug, &[API_KEY]);
    assert!(
        debug.contains("Sensitive") && debug.contains("ApiKey([REDACTED])"),
        "{debug}"
    );
}

/// The token response's fields the crate's own `openapi.json` declares as an `enum`, as the spec
/// pipeline leaves them (open strings, the listed values kept aside), with their values.
fn enum_fields_of_the_token_response() -> Vec<(String, serde_json::Value)> {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let text = std::fs::read_to_string(spec).unwrap();
    let normalized = genlogs_auth_codegen::normalize(&text).unwrap();
    let properties = normalized
        .document
        .pointer("/components/schemas/AuthenticationResponse/properties")
        .and_then(serde_json::Value::as_object)
        .expect("the token response has properties");
    properties
        .iter()
        .filter_map(|(name, property)| {
            let values = genlogs_auth_codegen::quirks::generator::keyword(property, "enum")?;
            Some((name.clone(), values.clone()))
        })
        .collect()
}

/// Servers add enum values before their documents list them. With the committed document (no
/// enum in the token response) this proves unknown fields are ignored; `.ci/variants.sh` runs it
/// again on the `response-enum-field` variant, where `token_type` is an `enum` of `bearer`.
#[tokio::test]
async fn a_value_the_document_does_not_list_decodes_and_every_refresh_succeeds() {
    const UNLISTED: &str = "DPoP-not-in-the-document";
    let fields = enum_fields_of_the_token_response();
    for (name, listed) in &fields {
        assert!(
            !listed.as_array().unwrap().contains(&json!(UNLISTED)),
            "{name}"
        );
    }
    let genlogs = MockGenLogs::start().await;
    let names: Vec<String> = fields.iter().map(|(name, _)| name.clone()).collect();
    editing_answers(&genlogs, move |answer| {
        for name in &names {
            answer[name] = json!(UNLISTED);
        }
        answer["grant_kind"] = json!(UNLISTED);
        answer["access_token_data"]["scope"] = json!({ "kind": UNLISTED });
    });
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();
    let mut refresh_token = genlogs.issue_tokens().into_refresh_token();
    for round in 0..3 {
        let session = client.refresh(&refresh_token).await.unwrap();
        assert!(
            genlogs.is_valid_refresh_token(session.refresh_token.expose_secret()),
            "round {round}: the rotated token is the stand-in's newest"
        );
        let seen = serde_json::to_value(session.response()).unwrap();
        for (name, _) in &fields {
            assert_eq!(
                seen[name], UNLISTED,
                "round {round}: `{name}` kept as it came"
            );
        }
        assert!(
            seen.get("grant_kind").is_none(),
            "an unknown field is ignored"
        );
        refresh_token = session.refresh_token;
    }
    assert_eq!(genlogs.refreshes(), 3);
    genlogs.clear_faults();
}

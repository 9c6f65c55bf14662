//! Every error class against a loopback server, and on every path: no credential in `{}`, `{:#}`,
//! `{:?}` or any `source()`.

use std::time::{Duration, Instant};

use crate::support::defaults::{MAX_MESSAGE_CHARS, MAX_RETRY_AFTER};
use crate::support::leak::assert_no_leak;
use crate::support::{answering, redirect_target};
use genlogs_auth::client::{AuthClientBuilder, UnknownOutcome};
use genlogs_auth::testing::{Fault, MockGenLogs};
use genlogs_auth::{AuthClient, ConfigError, Error, RefreshToken};
use reqwest::StatusCode;
use serde_json::json;

const API_KEY: &str = "key-SECRET-7a1";
/// Short on purpose: too short for the token-shape heuristic, so only the known-secret
/// scrubbing can keep it out of messages.
const SENT: &str = "rt-SENT-5f2b";
const RECEIVED_ACCESS: &str = "at-RECEIVED-91c";
const RECEIVED_REFRESH: &str = "rt-RECEIVED-3d4";
const SECRETS: &[&str] = &[API_KEY, SENT, RECEIVED_ACCESS, RECEIVED_REFRESH];

fn client_for(genlogs: &MockGenLogs) -> AuthClient {
    AuthClient::builder(API_KEY)
        .with_base_url(genlogs.base_url())
        .with_timeout(Duration::from_millis(500))
        .with_max_response_bytes(16 * 1024)
        .build()
        .unwrap()
}

/// Refreshes once against a server that gives `reply`, checks that the error leaks nothing.
async fn refresh_error(reply: Fault) -> Error {
    let genlogs = answering(reply).await;
    let error = client_for(&genlogs)
        .refresh(&RefreshToken::new(SENT))
        .await
        .unwrap_err();
    assert_no_leak(&error, SECRETS);
    error
}

#[tokio::test]
async fn status_401_means_the_refresh_token_was_rejected() {
    let error = refresh_error(Fault::json(
        401,
        json!({ "detail": "Invalid refresh token" }),
    ))
    .await;
    let Error::RefreshTokenRejected { message } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(message.as_deref(), Some("Invalid refresh token"));
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(!error.is_retryable());
    assert!(error.is_token_rejected());
    assert!(!error.may_have_spent_token());
    let text = error.to_string();
    assert!(
        text.contains("invalid, expired or already used") && text.contains("create new tokens"),
        "{text}"
    );
}

#[tokio::test]
async fn status_403_from_the_gateway_means_the_api_key_was_refused() {
    let error = refresh_error(Fault::json(403, json!({ "message": "Forbidden" }))).await;
    assert!(
        matches!(&error, Error::Forbidden { message } if message.as_deref() == Some("Forbidden")),
        "{error:?}"
    );
    assert!(error.to_string().contains("api key"));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn status_422_lists_fastapis_problems_and_tolerates_extra_keys() {
    let body = json!({ "detail": [
        { "type": "missing", "loc": ["query", "refresh_token"], "msg": "Field required", "input": null, "url": "https://errors.pydantic.dev/2/v/missing" },
        { "type": "string_too_short", "loc": ["query", "refresh_token", 0], "msg": "String should have at least 1 character", "input": SENT, "ctx": { "min_length": 1 } }
    ]});
    let error = refresh_error(Fault::json(422, body)).await;
    let Error::Validation { problems } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].location, "query.refresh_token");
    assert_eq!(problems[0].kind, "missing");
    assert_eq!(problems[0].message, "Field required");
    assert_eq!(problems[1].location, "query.refresh_token.0");
    assert!(
        error
            .to_string()
            .contains("query.refresh_token (missing): Field required"),
        "{error}"
    );
}

#[tokio::test]
async fn status_429_is_retryable_after_the_gateways_delay() {
    let error = refresh_error(
        Fault::json(429, json!({ "message": "Too Many Requests" }))
            .with_header("retry-after", "12"),
    )
    .await;
    let Error::RateLimited {
        retry_after,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(12)));
    assert_eq!(message.as_deref(), Some("Too Many Requests"));
    assert!(error.is_retryable());
    assert!(error.to_string().contains("retry after 12s"));
}

/// The `Retry-After` a 429 or a 503 carrying `value` (and `Date`, if given) comes back with.
async fn retry_after_for(status: u16, value: &str, date: Option<&str>) -> Option<Duration> {
    let mut reply =
        Fault::json(status, json!({ "message": "slow down" })).with_header("retry-after", value);
    if let Some(date) = date {
        reply = reply.with_header("date", date);
    }
    let error = refresh_error(reply).await;
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
    let wait = error.retry_after();
    if let Some(wait) = wait {
        assert!(
            error
                .to_string()
                .contains(&format!("retry after {}s", wait.as_secs())),
            "{error}"
        );
    }
    wait
}

#[tokio::test]
async fn hostile_retry_after_values_are_capped_or_ignored_never_overflowing() {
    let date = Some("Thu, 26 Nov 2026 10:00:00 GMT");
    for status in [429, 503] {
        let read = |value: &'static str, date| retry_after_for(status, value, date);
        assert_eq!(
            read("18446744073709551615", None).await,
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            read("1000000000000000000000000", None).await,
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(read("30", None).await, Some(Duration::from_secs(30)));
        assert_eq!(
            read("Thu, 26 Nov 2026 10:01:00 GMT", date).await,
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            read("Fri, 31 Dec 9999 23:59:59 GMT", date).await,
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            read("Thu, 01 Jan 1970 00:00:00 GMT", None).await,
            Some(Duration::ZERO)
        );
        assert_eq!(read("tomorrow-ish", None).await, None);
        assert_eq!(read("-1", None).await, None);
    }
    assert_eq!(MAX_RETRY_AFTER, Duration::from_secs(15 * 60));
}

#[tokio::test]
async fn status_500_in_plain_text_or_json_is_a_server_error() {
    let error = refresh_error(Fault::text(500, "Internal Server Error")).await;
    assert!(
        matches!(&error, Error::Server { status, message, .. } if *status == 500 && message.as_deref() == Some("Internal Server Error")),
        "{error:?}"
    );
    assert!(
        !error.is_retryable(),
        "after a 500 the refresh may have happened"
    );

    let error = refresh_error(Fault::json(
        500,
        json!({ "detail": "token store unavailable" }),
    ))
    .await;
    assert!(
        matches!(&error, Error::Server { message, .. } if message.as_deref() == Some("token store unavailable")),
        "{error:?}"
    );
}

#[tokio::test]
async fn only_503_among_server_errors_is_retryable() {
    let unavailable = refresh_error(Fault::text(503, "Service Unavailable")).await;
    assert!(unavailable.is_retryable());
    let gateway_timeout = refresh_error(Fault::json(
        504,
        json!({ "message": "Endpoint request timed out" }),
    ))
    .await;
    assert!(matches!(gateway_timeout, Error::Server { status, .. } if status == 504));
    assert!(!gateway_timeout.is_retryable());
    // After a 504 (or 500, 502) GenLogs may have done the work: the manager retries the same
    // token later rather than asking for new tokens.
    assert!(gateway_timeout.may_have_spent_token() && !gateway_timeout.is_token_rejected());
    assert!(!unavailable.may_have_spent_token());
}

#[tokio::test]
async fn any_other_status_comes_back_with_its_message() {
    let error = refresh_error(Fault::json(404, json!({ "detail": "Not Found" }))).await;
    assert!(
        matches!(&error, Error::UnexpectedStatus { status, message } if *status == 404 && message.as_deref() == Some("Not Found")),
        "{error:?}"
    );
}

#[tokio::test]
async fn hostile_error_bodies_never_echo_credentials() {
    let echo = format!("refresh token {SENT} with key {API_KEY} and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U");
    for reply in [
        Fault::json(401, json!({ "detail": echo })),
        Fault::json(403, json!({ "message": echo })),
        Fault::text(500, &echo),
        Fault::json(
            422,
            json!({ "detail": [{ "type": echo, "loc": [echo], "msg": echo }] }),
        ),
        Fault::json(418, json!({ "detail": echo })),
    ] {
        let error = refresh_error(reply).await;
        let text = format!("{error}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains("eyJhbGciOiJIUzI1NiJ9"), "{text}");
    }
}

#[tokio::test]
async fn a_cut_json_error_body_is_not_echoed() {
    let cut = format!(
        r#"{{"refresh_token_data": {{"token": "{}"#,
        &RECEIVED_REFRESH[..6]
    );
    let error = refresh_error(Fault::json(500, cut)).await;
    assert!(
        matches!(&error, Error::Server { message: Some(m), .. } if m == "(a JSON body that does not parse)"),
        "{error:?}"
    );
}

#[tokio::test]
async fn long_error_messages_are_truncated() {
    let message = server_message(&"word ".repeat(2_000)).await;
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS + 1,
        "{}",
        message.len()
    );
}

#[tokio::test]
async fn a_garbage_200_is_an_unknown_outcome_saying_what_is_wrong() {
    let error = refresh_error(Fault::text(200, "<html>maintenance</html>")).await;
    let Error::OutcomeUnknown {
        reason: UnknownOutcome::Undecodable { status, problem },
        recovered: None,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*status, StatusCode::OK);
    assert!(problem.starts_with("not valid JSON"), "{problem}");
    assert!(error.may_have_spent_token() && !error.is_token_rejected());
    assert!(
        error
            .to_string()
            .contains("may already have rotated the refresh token"),
        "{error}"
    );
}

#[tokio::test]
async fn a_200_with_a_broken_access_token_hands_back_the_rotated_refresh_token() {
    let body = json!({
        "access_token_data": { "token": RECEIVED_ACCESS, "expires": 1764137305 },
        "refresh_token_data": { "token": RECEIVED_REFRESH, "expires": "2026-12-03T06:08:25.069078" },
        "user_id": "u", "company_id": 1
    });
    let error = refresh_error(Fault::json(200, body)).await;
    let problem = undecodable(&error);
    assert_eq!(
        problem,
        "`access_token_data.expires`: invalid type: integer, expected a datetime string"
    );
    assert_hands_back(&error, "2026-12-03T06:08:25.069078Z");
}

/// The message kept from a 500 whose body is `body` (the error must be a server error with one).
async fn server_message(body: &str) -> String {
    let error = refresh_error(Fault::text(500, body)).await;
    let Error::Server {
        message: Some(message),
        ..
    } = error
    else {
        panic!("{error:?}")
    };
    message
}

/// What is wrong with the success answer `error` could not decode (it must be one).
#[track_caller]
fn undecodable(error: &Error) -> &str {
    let Some(UnknownOutcome::Undecodable { problem, .. }) = error.unknown_outcome() else {
        panic!("{error:?}")
    };
    problem
}

/// `error` hands back the refresh token GenLogs sent, expiring at `expires`, and does not count
/// as a spent or rejected token.
fn assert_hands_back(error: &Error, expires: &str) {
    let recovered = error
        .recovered_refresh_token()
        .expect("the refresh token is readable");
    assert_eq!(recovered.token.expose_secret(), RECEIVED_REFRESH);
    assert_eq!(
        recovered.expires.map(|e| e.to_string()).as_deref(),
        Some(expires)
    );
    assert!(!error.may_have_spent_token() && !error.is_token_rejected());
}

fn token_response(access: &str, refresh: &str) -> Fault {
    Fault::json(
        200,
        json!({
            "access_token_data": { "token": access, "expires": "2026-12-03T06:08:25" },
            "refresh_token_data": { "token": refresh, "expires": "2026-12-10T06:08:25" },
            "user_id": "u", "company_id": 1
        }),
    )
}

#[tokio::test]
async fn a_200_with_a_blank_access_token_is_undecodable_and_hands_back_the_refresh_token() {
    for blank in ["", "   ", "\t\n"] {
        let error = refresh_error(token_response(blank, RECEIVED_REFRESH)).await;
        let problem = undecodable(&error);
        assert_eq!(
            problem,
            "`access_token_data.token`: the token is empty or white space only"
        );
        assert_hands_back(&error, "2026-12-10T06:08:25Z");
    }
}

#[tokio::test]
async fn a_200_with_a_blank_refresh_token_is_undecodable_and_recovers_nothing() {
    for blank in ["", " \t "] {
        let error = refresh_error(token_response(RECEIVED_ACCESS, blank)).await;
        let problem = undecodable(&error);
        assert!(
            problem.starts_with("`refresh_token_data.token`"),
            "{problem}"
        );
        assert!(error.recovered_refresh_token().is_none());
        assert!(error.may_have_spent_token());
    }
    // Also when something else is what makes the body undecodable.
    let body = json!({
        "access_token_data": { "token": RECEIVED_ACCESS, "expires": 1764137305 },
        "refresh_token_data": { "token": "  ", "expires": "2026-12-03T06:08:25" },
        "user_id": "u", "company_id": 1
    });
    let error = refresh_error(Fault::json(200, body)).await;
    assert!(error.unknown_outcome().is_some(), "{error:?}");
    assert!(error.recovered_refresh_token().is_none());
}

#[tokio::test]
async fn encoded_echoes_of_the_sent_token_and_the_api_key_are_redacted() {
    let sent = "rt/SENT+5f 2b";
    let form_encoded = "rt%2FSENT%2B5f+2b";
    let percent_encoded = "rt%2fSENT%2b5f%202b";
    let api_key_base64 = "a2V5LVNFQ1JFVC03YTE="; // base64("key-SECRET-7a1")
    let echo = format!("token {form_encoded} or {percent_encoded} with key {api_key_base64}");
    let genlogs = answering(Fault::json(401, json!({ "detail": echo }))).await;
    let error = client_for(&genlogs)
        .refresh(&RefreshToken::new(sent))
        .await
        .unwrap_err();
    assert_no_leak(
        &error,
        &[
            sent,
            form_encoded,
            percent_encoded,
            "a2V5LVNFQ1JFVC03YTE",
            API_KEY,
        ],
    );
    let Error::RefreshTokenRejected { message } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        message.as_deref(),
        Some("token [REDACTED] or [REDACTED] with key [REDACTED]")
    );
}

#[tokio::test]
async fn a_200_whose_token_is_the_wrong_type_does_not_quote_it() {
    let body = json!({
        "access_token_data": RECEIVED_ACCESS,
        "refresh_token_data": { "token": RECEIVED_REFRESH, "expires": "2026-12-03T06:08:25" },
        "user_id": "u", "company_id": "seven"
    });
    let error = refresh_error(Fault::json(200, body)).await;
    let problem = undecodable(&error);
    assert!(
        problem.starts_with("`access_token_data`: invalid type: string, expected"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_200_over_the_size_cap_is_an_unknown_outcome() {
    let padding = "x".repeat(20 * 1024);
    let error = refresh_error(Fault::json(
        200,
        json!({ "padding": padding, "refresh_token_data": { "token": RECEIVED_REFRESH } }),
    ))
    .await;
    assert_eq!(
        error.unknown_outcome(),
        Some(&UnknownOutcome::BodyTooLarge { limit: 16384 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn deeply_nested_json_is_refused_before_any_parser_recurses() {
    let nested = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let error = refresh_error(Fault::json(200, &nested)).await;
    assert_eq!(
        error.unknown_outcome(),
        Some(&UnknownOutcome::BodyTooDeep { limit: 32 }),
        "{error:?}"
    );
    let error = refresh_error(Fault::json(500, &nested)).await;
    assert!(
        matches!(&error, Error::Server { message: Some(m), .. } if m.contains("nests deeper than 32 levels")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_error_status_over_the_cap_keeps_its_class() {
    let message = server_message(&"e".repeat(20 * 1024)).await;
    assert!(
        message.contains("exceeds the 16384-byte limit"),
        "{message}"
    );
}

#[tokio::test]
async fn a_stalled_server_times_out_as_an_unknown_outcome() {
    let started = Instant::now();
    let error = refresh_error(Fault::Stall).await;
    assert_eq!(
        error.unknown_outcome(),
        Some(&UnknownOutcome::TimedOut),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!error.is_retryable());
    assert!(
        std::error::Error::source(&error).is_some(),
        "the transport cause is kept"
    );
}

#[tokio::test]
async fn a_dropped_connection_after_sending_is_an_unknown_outcome() {
    let error = refresh_error(Fault::Drop { rotate: false }).await;
    assert_eq!(
        error.unknown_outcome(),
        Some(&UnknownOutcome::ConnectionLost),
        "{error:?}"
    );
    assert!(error.may_have_spent_token() && !error.is_token_rejected());
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = AuthClient::builder(API_KEY)
        .with_base_url(format!("http://127.0.0.1:{port}/auth"))
        .build()
        .unwrap();
    let error = client.refresh(&RefreshToken::new(SENT)).await.unwrap_err();
    assert_no_leak(&error, SECRETS);
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(!error.may_have_spent_token() && !error.is_token_rejected());
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_its_target_receives_nothing() {
    let (target, redirect) = redirect_target(SENT).await;
    let error = refresh_error(redirect).await;
    assert!(
        matches!(&error, Error::UnexpectedStatus { status, .. } if *status == 307),
        "{error:?}"
    );
    assert!(error.to_string().contains("redirects are not followed"));
    assert!(
        target.requests().is_empty(),
        "the redirect target was contacted"
    );
}

/// The error `builder` fails to build with (it must fail).
fn config_error(builder: AuthClientBuilder) -> Error {
    builder.build().map_err(Error::from).unwrap_err()
}

#[test]
fn configuration_errors_are_typed_and_quote_nothing() {
    let insecure =
        config_error(AuthClient::builder(API_KEY).with_base_url("http://api.genlogs.io/auth"));
    assert!(
        matches!(insecure, Error::InvalidConfig(ConfigError::InsecureBaseUrl)),
        "{insecure:?}"
    );

    let bad_key = config_error(AuthClient::builder("key-SECRET-7a1\nInjected: header"));
    assert!(
        matches!(bad_key, Error::InvalidConfig(ConfigError::ApiKey)),
        "{bad_key:?}"
    );
    assert_no_leak(&bad_key, &["key-SECRET-7a1", "Injected"]);

    let with_credentials = config_error(
        AuthClient::builder(API_KEY)
            .with_base_url(format!("https://user:{SENT}@api.genlogs.io/auth")),
    );
    assert!(
        matches!(
            with_credentials,
            Error::InvalidConfig(ConfigError::BaseUrl(_))
        ),
        "{with_credentials:?}"
    );
    assert_no_leak(&with_credentials, SECRETS);

    let zero_timeout = config_error(AuthClient::builder(API_KEY).with_timeout(Duration::ZERO));
    assert!(
        matches!(zero_timeout, Error::InvalidConfig(ConfigError::Timeout(_))),
        "{zero_timeout:?}"
    );
    assert_no_leak(&zero_timeout, SECRETS);
}

#[test]
fn a_configuration_error_says_what_is_wrong_once() {
    let error =
        config_error(AuthClient::builder(API_KEY).with_base_url("http://api.genlogs.io/auth"));
    let Error::InvalidConfig(cause) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(error.to_string(), cause.to_string());
    assert!(error
        .to_string()
        .starts_with("invalid genlogs-auth configuration: "));
    // Walking the chain (as anyhow's `{:#}` does) never repeats a message.
    let mut messages = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        messages.push(cause.to_string());
        source = cause.source();
    }
    for pair in messages.windows(2) {
        assert!(!pair[0].contains(&pair[1]), "printed twice: {messages:?}");
    }
}

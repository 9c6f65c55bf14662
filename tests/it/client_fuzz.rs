//! Property-based fuzzing of the whole response path: status, headers and body go out of a real
//! loopback server, through reqwest, the hooks, the generated code and the error mapping, and a
//! result comes back. Arbitrary bytes, truncated JSON, wrong types, huge numbers, deep nesting,
//! invalid UTF-8 and every datetime shape.
//!
//! Properties: no panic; a success only for a 200 with a token body; otherwise the error's class
//! matches the status and its text says what was wrong; no token from the body, the refresh token
//! sent, or the api key appears in `{}`, `{:#}`, `{:?}` or any `source()`.
//!
//! Cases: `GENLOGS_FUZZ_CASES` (default 1,000, as CI runs it). `AuthClient`'s documentation
//! ("Robustness") records a run of a million:
//! `GENLOGS_FUZZ_CASES=1000000 cargo test --release --test fuzz_responses`.

use crate::support::defaults::MAX_RETRY_AFTER;
use std::sync::OnceLock;

use genlogs_auth::testing::{Fault, MockGenLogs};
use genlogs_auth::{client::UnknownOutcome, AuthClient, Error, RefreshToken};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

const API_KEY: &str = "fuzz-api-key-42";
const SENT: &str = "rt-sent-7";
/// `API_KEY` in base64, as a server may echo it (e.g. from a `Basic` header it built).
const API_KEY_BASE64: &str = "ZnV6ei1hcGkta2V5LTQy";

struct Harness {
    runtime: tokio::runtime::Runtime,
    genlogs: MockGenLogs,
    client: AuthClient,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let genlogs = runtime.block_on(MockGenLogs::builder().with_api_key(API_KEY).start());
        let client = AuthClient::builder(API_KEY)
            .with_base_url(genlogs.base_url())
            .with_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap();
        Harness {
            runtime,
            genlogs,
            client,
        }
    })
}

/// A token as GenLogs issues them: a long JWT-like string.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{30,60}".prop_map(|body| format!("eyJ{body}9"))
}

fn datetime_shape() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("2026-11-26T06:08:25.069078Z")),
        Just(json!("2026-11-26T06:08:25.069078+00:00")),
        Just(json!("2026-11-26T06:08:25.069078")),
        Just(json!("2026-11-26 06:08:25.069078+00:00")),
        Just(json!("2026-11-26 06:08:25")),
        Just(json!("2026-11-26T06:08:25.123456789-05:30")),
        "[0-9T:. +Z-]{0,32}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!(["2026-11-26T06:08:25Z"])),
    ]
}

/// A JSON value of some wrong shape.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ]
}

fn token_data(secrets: Vec<String>) -> impl Strategy<Value = Value> {
    let token = secrets[0].clone();
    prop_oneof![
        4 => datetime_shape().prop_map(move |expires| json!({ "token": token.clone(), "expires": expires })),
        1 => Just(Value::from(secrets[0].clone())),
        1 => odd_value(),
        1 => Just(json!({ "expires": "2026-11-26T06:08:25Z" })),
    ]
}

/// A body: token responses with mutations, error bodies echoing tokens, deep nesting, raw bytes.
/// Returns the bytes and the tokens placed in them.
fn body() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    // Now and then a blank token, which must never make a session.
    let maybe_blank = || prop_oneof![9 => token(), 1 => "[ \t]{0,3}"];
    let token_response = (maybe_blank(), maybe_blank())
        .prop_flat_map(|(access, refresh)| {
            (
                token_data(vec![access.clone()]),
                token_data(vec![refresh.clone()]),
                prop_oneof![Just(json!("user-1")), odd_value()],
                prop_oneof![Just(json!(7)), Just(json!(1e300)), odd_value()],
                Just(vec![access, refresh]),
            )
        })
        .prop_map(|(access, refresh, user_id, company_id, tokens)| {
            let body = json!({ "access_token_data": access, "refresh_token_data": refresh, "user_id": user_id, "company_id": company_id });
            (body.to_string().into_bytes(), tokens)
        });
    let huge_number = token().prop_map(|t| {
        let body = format!(r#"{{"access_token_data":{{"token":"{t}","expires":"2026-11-26T06:08:25Z"}},"refresh_token_data":{{"token":"{t}","expires":"2026-11-26T06:08:25Z"}},"user_id":"u","company_id":{}}}"#, "9".repeat(400));
        (body.into_bytes(), vec![t])
    });
    let error_body =
        (token(), prop_oneof![Just("detail"), Just("message")]).prop_map(|(t, key)| {
            (
                json!({ key: format!("token {t} rejected for key {API_KEY} ({API_KEY_BASE64}) and {SENT}") })
                    .to_string()
                    .into_bytes(),
                vec![t],
            )
        });
    let validation = token().prop_map(|t| {
        let body = json!({ "detail": [{ "type": t, "loc": ["query", t, 0], "msg": format!("bad {t}"), "input": t, "ctx": { "t": t } }] });
        (body.to_string().into_bytes(), vec![t])
    });
    let nested = (1usize..2_000, any::<bool>()).prop_map(|(depth, arrays)| {
        let (open, close) = if arrays {
            ("[", "]")
        } else {
            (r#"{"a":"#, "}")
        };
        let mut text = open.repeat(depth);
        text.push('1');
        text.push_str(&close.repeat(depth));
        (text.into_bytes(), Vec::new())
    });
    let raw = prop::collection::vec(any::<u8>(), 0..400).prop_map(|bytes| (bytes, Vec::new()));
    prop_oneof![4 => token_response, 1 => huge_number, 2 => error_body, 1 => validation, 1 => nested, 2 => raw]
        .prop_flat_map(|(bytes, tokens)| {
            let len = bytes.len();
            // Cut it short, or break its UTF-8, or leave it.
            (Just(bytes), Just(tokens), 0..=len, prop_oneof![3 => Just(0u8), 1 => Just(1), 1 => Just(2)])
        })
        .prop_map(|(mut bytes, tokens, cut, damage)| {
            match damage {
                1 => bytes.truncate(cut),
                2 => bytes.insert(cut, 0xff),
                _ => {}
            }
            (bytes, tokens)
        })
}

fn status() -> impl Strategy<Value = u16> {
    // Not 1xx, 204, 205 or 304: HTTP gives them no body, so the scripted bytes would be read as
    // the next response on the kept-alive connection.
    let any_status =
        (200u16..600).prop_filter("statuses with a body", |s| ![204, 205, 304].contains(s));
    prop_oneof![
        4 => Just(200u16),
        1 => Just(401),
        1 => Just(403),
        1 => Just(422),
        1 => Just(429),
        1 => Just(500),
        1 => Just(503),
        1 => Just(307),
        2 => any_status,
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let content_type = prop_oneof![
        Just("application/json"),
        Just("text/plain; charset=utf-8"),
        Just("text/html"),
        Just("application/octet-stream"),
    ];
    let retry_after = prop_oneof![
        "[0-9]{1,6}",
        "[0-9]{7,40}",
        "(Mon|Fri), [0-3][0-9] (Jan|Dec) [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-5][0-9] GMT",
        Just("Wed, 21 Oct 2015 07:28:00 GMT".to_string()),
        "[a-zA-Z ]{0,12}",
    ];
    let date = prop_oneof![
        Just("Thu, 26 Nov 2026 05:00:00 GMT".to_string()),
        "[a-zA-Z0-9 ,:]{0,30}"
    ];
    (
        content_type,
        prop::option::of(retry_after),
        prop::option::of(date),
    )
        .prop_map(|(content_type, retry, date)| {
            let mut headers = vec![("content-type".to_string(), content_type.to_string())];
            headers.extend(retry.map(|v| ("retry-after".to_string(), v)));
            headers.extend(date.map(|v| ("date".to_string(), v)));
            headers
        })
}

fn check(
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    tokens: Vec<String>,
) -> Result<(), TestCaseError> {
    let harness = harness();
    harness.genlogs.fail_always(Fault::Respond {
        status,
        headers,
        body,
    });
    let result = harness
        .runtime
        .block_on(harness.client.refresh(&RefreshToken::new(SENT)));
    let error = match result {
        Ok(session) => {
            prop_assert_eq!(status, 200, "only a 200 succeeds");
            prop_assert!(
                !session.access_token.expose_secret().trim().is_empty()
                    && !session.refresh_token.expose_secret().trim().is_empty(),
                "a blank token made a session"
            );
            return Ok(());
        }
        Err(error) => error,
    };
    let mut secrets: Vec<&str> = vec![API_KEY, API_KEY_BASE64, SENT];
    secrets.extend(
        tokens
            .iter()
            .map(String::as_str)
            .filter(|t| !t.trim().is_empty()),
    );
    crate::support::leak::assert_no_leak(&error, &secrets);
    prop_assert!(
        error
            .retry_after()
            .is_none_or(|wait| wait <= MAX_RETRY_AFTER),
        "{:?}",
        error.retry_after()
    );
    if error.retry_after().is_some() {
        prop_assert!([429, 503].contains(&status), "{}", status);
    }
    let text = error.to_string();
    match status {
        200..=299 => {
            match &error {
                Error::OutcomeUnknown {
                    reason:
                        UnknownOutcome::Undecodable {
                            status: got,
                            problem,
                        },
                    ..
                } => {
                    prop_assert_eq!(got.as_u16(), status);
                    prop_assert!(
                        !problem.is_empty() && text.contains("is not a token response"),
                        "{}",
                        text
                    );
                }
                Error::OutcomeUnknown {
                    reason: UnknownOutcome::BodyTooDeep { .. },
                    ..
                } => {
                    prop_assert!(text.contains("nests deeper"), "{}", text);
                }
                other => return Err(TestCaseError::fail(format!("{status}: {other:?}"))),
            }
            prop_assert!(text.contains("outcome is unknown"), "{}", text);
        }
        _ => {
            prop_assert_eq!(error.status().map(|s| s.as_u16()), Some(status), "{}", text);
            prop_assert!(
                text.contains(&status.to_string()) || text.contains("GenLogs"),
                "{}",
                text
            );
        }
    }
    Ok(())
}

#[test]
fn the_response_path_never_panics_misclassifies_or_leaks() {
    let cases = std::env::var("GENLOGS_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    // proptest builds its strategy trees recursively; in a debug build they outgrow the 2 MiB
    // test thread (the crate itself is not involved: it refuses deep bodies before parsing).
    let fuzz = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            let started = std::time::Instant::now();
            let result = runner.run(
                &(status(), headers(), body()),
                |(status, headers, (body, tokens))| check(status, headers, body, tokens),
            );
            eprintln!("fuzzed {cases} responses in {:.1?}", started.elapsed());
            result
        });
    fuzz.unwrap().join().unwrap().unwrap();
}

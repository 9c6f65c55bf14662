//! Shared by the integration tests: loopback servers, fixtures and the secret-leak check.

#![allow(dead_code)] // also included by the examples, the benches and the two single-purpose test binaries

pub mod capture;
pub mod child;
pub mod defaults;
pub mod fixture;
pub mod leak;
pub mod partition;
pub mod redis;
pub mod sentinel;
pub mod store;

use genlogs_auth::testing::{Fault, MockGenLogs, DEFAULT_ACCESS_LIFETIME};

/// How long the stand-in's access tokens live.
pub const ACCESS_LIFETIME: chrono::Duration =
    match chrono::Duration::from_std(DEFAULT_ACCESS_LIFETIME) {
        Ok(lifetime) => lifetime,
        Err(_) => panic!("30 minutes fit"),
    };

/// A stand-in that answers every request with `fault`.
pub async fn answering(fault: Fault) -> MockGenLogs {
    let genlogs = MockGenLogs::start().await;
    genlogs.fail_always(fault);
    genlogs
}

/// A stand-in that answers 200 to anything (a redirect's target), and a 307 to it whose
/// `location` carries `refresh` in its query: what a client must never follow.
pub async fn redirect_target(refresh: &str) -> (MockGenLogs, Fault) {
    let target = answering(Fault::json(200, serde_json::json!({}))).await;
    let location = format!(
        "{}/token/refresh?refresh_token={refresh}",
        target.base_url()
    );
    let redirect = Fault::Respond {
        status: 307,
        headers: vec![("location".into(), location)],
        body: Vec::new(),
    };
    (target, redirect)
}

/// Makes `genlogs` answer as GenLogs would (a refresh rotates the token), with `edit` applied to
/// each JSON answer body first. The responder holds a handle: call `clear_faults` at the end.
pub fn editing_answers(
    genlogs: &MockGenLogs,
    edit: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
) {
    let handle = genlogs.clone();
    genlogs.fail_with(move |request| {
        let Fault::Respond {
            status,
            headers,
            body,
        } = handle.process(request)
        else {
            unreachable!("the stand-in answers in full")
        };
        let mut answer: serde_json::Value = serde_json::from_slice(&body).ok()?;
        edit(&mut answer);
        Some(Fault::Respond {
            status,
            headers,
            body: answer.to_string().into_bytes(),
        })
    });
}

/// Polls `probe` every 5 ms until it answers (a background refresh runs on a task of its own);
/// panics after 5 s.
pub async fn eventually<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1_000 {
        if let Some(value) = probe() {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the condition never held");
}

/// The HTTP status of the refresh behind a manager's `error`, if one was answered.
pub fn refresh_status(error: &genlogs_auth::TokenError) -> Option<u16> {
    error
        .refresh_error()
        .and_then(|e| e.status())
        .map(|s| s.as_u16())
}

/// A new empty directory, removed when the value is dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("genlogs-auth-test-")
        .tempdir()
        .unwrap()
}

//! The request span (`genlogs_request`) covers the request's own events and nothing else: while
//! the request waits on the network, other tasks on the same thread log outside it. (A span
//! entered with `span.enter()` and held across an `.await` would stay current on the thread and
//! claim their events.)
//!
//! It reads what this thread logs ([`capture`]): the runtime is a current-thread one, so the
//! other task logs on the same thread.

use std::time::Duration;

use crate::support::answering;
use crate::support::capture::capture;
use genlogs_auth::testing::Fault;
use genlogs_auth::{AuthClient, RefreshToken};
use serde_json::json;

#[tokio::test]
async fn the_request_span_does_not_leak_into_other_tasks_while_waiting() {
    let (captured, _capture) = capture(tracing::Level::DEBUG);

    let body = json!({
        "access_token_data": { "token": "at-span-test", "expires": "2026-11-26T06:08:25Z" },
        "refresh_token_data": { "token": "rt-span-test", "expires": "2026-11-26T06:08:25Z" },
        "user_id": "u", "company_id": 1
    });
    let genlogs = answering(Fault::delayed(
        Duration::from_millis(300),
        Fault::json(200, body),
    ))
    .await;
    let client = AuthClient::builder("span-test-key")
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();

    // The other task logs while the refresh is parked on the server's pause (same thread).
    let other = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tracing::info!("unrelated work");
    });
    client.refresh(&RefreshToken::new("rt-sent")).await.unwrap();
    other.await.unwrap();

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = |needle: &str| {
        output
            .lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {output}"))
            .to_string()
    };
    assert!(
        line("response headers received").contains("genlogs_request"),
        "the request's own event is in its span: {output}"
    );
    assert!(
        !line("unrelated work").contains("genlogs_request"),
        "another task's event was put in the request span: {output}"
    );
}

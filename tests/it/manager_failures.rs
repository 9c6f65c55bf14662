//! The manager when GenLogs fails or a refresh dies: hostile `Retry-After`, lost runtime, cooldown.

use std::sync::Arc;
use std::time::Duration;

use crate::support::defaults::{MAX_COOLDOWN, RETRY_COOLDOWN};
use crate::support::fixture::Fixture;
use genlogs_auth::testing::Fault;
use genlogs_auth::{MemoryStore, TokenError, TokenStore};
use serde_json::json;

#[tokio::test]
async fn a_hostile_retry_after_neither_panics_nor_wedges_refreshing() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    fx.genlogs.fail_always(
        Fault::json(429, json!({ "message": "Too Many Requests" }))
            .with_header("retry-after", "18446744073709551615"),
    );
    let error = manager.access_token().await.unwrap_err();
    assert_eq!(
        error
            .refresh_error()
            .and_then(|e| e.status())
            .map(|s| s.as_u16()),
        Some(429),
        "{error:?}"
    );
    assert_eq!(fx.refresh_requests(), 1);

    // The wait is capped: after 15 minutes the manager tries again.
    fx.genlogs.clear_faults();
    fx.clock.advance(MAX_COOLDOWN);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2);

    // And new tokens are taken at once, whatever the cooldown.
    let fresh = Fixture::new().await;
    let manager = fresh.manager(MemoryStore::new(fresh.valid_tokens()));
    fresh.genlogs.fail_always(
        Fault::json(429, json!({ "message": "Too Many Requests" }))
            .with_header("retry-after", "18446744073709551615"),
    );
    assert!(manager.access_token().await.is_err());
    fresh.genlogs.clear_faults();
    manager.replace_tokens(fresh.valid_tokens()).await.unwrap();
    manager.access_token().await.unwrap();
    assert_eq!(fresh.refresh_requests(), 2);
}

#[test]
fn a_runtime_shut_down_mid_refresh_does_not_wedge_the_manager() {
    // The stand-in runs on a runtime of its own, which lives through the test.
    let server = tokio::runtime::Runtime::new().unwrap();
    let (fx, manager) = server.block_on(async {
        let fx = Fixture::new().await;
        let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
        (fx, manager)
    });
    // The server holds the request unanswered; the runtime running the refresh goes away.
    fx.genlogs.fail_always(Fault::Stall);
    let doomed = tokio::runtime::Runtime::new().unwrap();
    let pending = manager.clone();
    doomed.spawn(async move { pending.access_token().await });
    while fx.refresh_requests() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    doomed.shutdown_background();

    fx.genlogs.clear_faults();
    let later = tokio::runtime::Runtime::new().unwrap();
    later.block_on(async {
        // The request may have been processed: the attempt was marked before it was sent, so
        // the token is possibly rotated and is retried after the cooldown, not at once.
        let error = tokio::time::timeout(Duration::from_secs(10), manager.access_token())
            .await
            .expect("a later call does not hang")
            .unwrap_err();
        assert!(
            matches!(error, TokenError::OutcomeUnknown { .. }),
            "{error:?}"
        );
        fx.clock.advance(RETRY_COOLDOWN);
        let token = tokio::time::timeout(Duration::from_secs(10), manager.access_token())
            .await
            .expect("a later call does not hang")
            .expect("after the cooldown it refreshes");
        assert!(!token.expose_secret().is_empty());
    });
    assert_eq!(fx.refresh_requests(), 2);
    drop(fx);
    drop(server);
}

#[tokio::test]
async fn tokens_saved_by_another_process_are_used_during_a_cooldown() {
    let fx = Fixture::new().await;
    let store = Arc::new(MemoryStore::new(fx.valid_tokens()));
    let manager = fx.manager(store.clone());
    fx.genlogs.fail_always(
        Fault::json(429, json!({ "message": "Too Many Requests" }))
            .with_header("retry-after", "600"),
    );
    assert!(manager.access_token().await.is_err());
    fx.genlogs.clear_faults();
    // An operator (or another process) saves new tokens while this one is cooling down.
    store.replace(&fx.valid_tokens()).await.unwrap();
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2, "the new tokens were used at once");
}

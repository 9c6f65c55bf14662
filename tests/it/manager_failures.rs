//! The manager when GenLogs fails or a refresh dies: a 503 and the cached token, unknown outcomes
//! (retried once, after the cooldown, with the same token), hostile `Retry-After`, lost runtime.

use std::time::Duration;

use crate::support::defaults::{MAX_COOLDOWN, RETRY_COOLDOWN};
use crate::support::fixture::{Fixture, MARGIN};
use crate::support::{eventually, refresh_status, ACCESS_LIFETIME};
use genlogs_auth::testing::Fault;
use genlogs_auth::{store::NewTokensReason, store::TokenState, TokenError, TokenStore};
use serde_json::json;

/// A 429 whose `Retry-After` is `retry_after`.
fn too_many_requests(retry_after: &str) -> Fault {
    Fault::json(429, json!({ "message": "Too Many Requests" }))
        .with_header("retry-after", retry_after)
}

#[tokio::test]
async fn a_503_keeps_serving_the_cached_token_until_it_expires() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    let cached = manager.access_token().await.unwrap();
    fx.genlogs
        .fail_always(Fault::text(503, "Service Unavailable"));

    let lifetime = ACCESS_LIFETIME.to_std().unwrap();
    fx.clock.advance(lifetime - MARGIN / 2);
    assert_eq!(
        manager.access_token().await.unwrap().expose_secret(),
        cached.expose_secret()
    );
    eventually(|| (fx.refresh_requests() == 2).then_some(())).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        manager.access_token().await.unwrap().expose_secret(),
        cached.expose_secret()
    );
    assert_eq!(
        fx.refresh_requests(),
        2,
        "no new attempt during the cooldown"
    );

    fx.clock.advance(MARGIN);
    let error = manager.access_token().await.unwrap_err();
    let TokenError::Refresh(cause) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(cause.status().map(|s| s.as_u16()), Some(503));
    assert!(!error.needs_new_tokens());
}

/// Asserts that the token in `store` is possibly rotated, after one attempt.
async fn assert_possibly_rotated_once(store: &impl TokenStore, why: &str) {
    let stored = store.load().await.unwrap().unwrap();
    assert!(
        matches!(
            stored.state(),
            TokenState::PossiblyRotated { attempts: 1, .. }
        ),
        "{why}: {:?}",
        stored.state()
    );
}

#[tokio::test]
async fn an_unknown_outcome_is_retried_once_with_the_same_token_after_the_cooldown() {
    // The server never processed the first request: the retry succeeds.
    let fx = Fixture::new().await;
    let (store, manager) = fx.manager_on_a_shared_store();
    fx.genlogs
        .fail_always(Fault::text(200, "<html>oops</html>"));
    let error = manager.access_token().await.unwrap_err();
    assert!(matches!(error, TokenError::Refresh(_)), "{error:?}");
    assert!(!error.needs_new_tokens());
    assert_possibly_rotated_once(&store, "the doubt is shared through the store").await;
    // No second request during the cooldown.
    assert!(manager.access_token().await.is_err());
    assert_eq!(fx.refresh_requests(), 1);

    fx.genlogs.clear_faults();
    fx.clock.advance(RETRY_COOLDOWN);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2, "one retry, with the same token");
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(stored.state(), TokenState::Usable);
}

#[tokio::test]
async fn a_401_after_an_unknown_outcome_says_the_grant_was_lost_and_stops() {
    for first in [
        Fault::Drop { rotate: false },
        Fault::text(500, "Internal Server Error"),
    ] {
        let (fx, manager) = Fixture::with_seeded_manager().await;
        // GenLogs rotates the token, and the answer is lost (or is a 500).
        fx.genlogs.fail_always(Fault::after_processing(first));
        assert!(manager.access_token().await.is_err());
        fx.genlogs.clear_faults();
        fx.clock.advance(RETRY_COOLDOWN);
        for _ in 0..3 {
            let error = manager.access_token().await.unwrap_err();
            assert_eq!(
                error.new_tokens_reason(),
                Some(NewTokensReason::RejectedAfterUnknownOutcome),
                "{error:?}"
            );
            assert!(error.to_string().contains("outcome was unknown"), "{error}");
        }
        assert_eq!(
            fx.refresh_requests(),
            2,
            "the retry, and nothing after its 401"
        );
    }
}

#[tokio::test]
async fn a_522_keeps_the_token_possibly_rotated_for_every_manager_on_the_store() {
    let fx = Fixture::new().await;
    let (store, first) = fx.manager_on_a_shared_store();
    let second = fx.manager(store.clone());
    // The origin rotated the token; the gateway in front of it gave up waiting (522).
    fx.genlogs.fail_next(
        1,
        Fault::after_processing(Fault::json(
            522,
            json!({ "message": "Connection timed out" }),
        )),
    );
    let error = first.access_token().await.unwrap_err();
    assert_eq!(refresh_status(&error), Some(522), "{error:?}");
    assert_possibly_rotated_once(&store, "the doubt stays in the store").await;
    // Another manager on the same store does not send it while the first request may commit.
    let error = second.access_token().await.unwrap_err();
    assert!(
        matches!(error, TokenError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    fx.clock.advance(Duration::from_secs(3));
    assert!(second.access_token().await.is_err());
    assert_eq!(fx.refresh_requests(), 1, "nothing sent during the wait");
    assert_eq!(fx.genlogs.reuses(), 0);
    // After the wait, one retry: its 401 says the first attempt did rotate the token.
    fx.clock.advance(Duration::from_secs(2));
    let error = second.access_token().await.unwrap_err();
    assert_eq!(
        error.new_tokens_reason(),
        Some(NewTokensReason::RejectedAfterUnknownOutcome),
        "{error:?}"
    );
    assert_eq!(fx.refresh_requests(), 2);
}

#[tokio::test]
async fn a_hostile_retry_after_neither_panics_nor_wedges_refreshing() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    fx.genlogs
        .fail_always(too_many_requests("18446744073709551615"));
    let error = manager.access_token().await.unwrap_err();
    assert_eq!(refresh_status(&error), Some(429), "{error:?}");
    assert_eq!(fx.refresh_requests(), 1);

    // The wait is capped: after 15 minutes the manager tries again.
    fx.genlogs.clear_faults();
    fx.clock.advance(MAX_COOLDOWN);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2);

    // And new tokens are taken at once, whatever the cooldown.
    let (fresh, manager) = Fixture::with_seeded_manager().await;
    fresh
        .genlogs
        .fail_always(too_many_requests("18446744073709551615"));
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
    let (fx, manager) = server.block_on(Fixture::with_seeded_manager());
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
    let (store, manager) = fx.manager_on_a_shared_store();
    fx.genlogs.fail_always(too_many_requests("600"));
    assert!(manager.access_token().await.is_err());
    fx.genlogs.clear_faults();
    // An operator (or another process) saves new tokens while this one is cooling down.
    store.replace(&fx.valid_tokens()).await.unwrap();
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2, "the new tokens were used at once");
}

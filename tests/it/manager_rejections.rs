//! The manager when GenLogs rejects a token: a refresh token's 401 needs new tokens (and sends
//! nothing more until they come); an access token reported rejected costs one refresh per report,
//! backed off, then reset.

use std::time::Duration;

use crate::support::fixture::Fixture;
use chrono::Utc;
use genlogs_auth::{
    store::NewTokensReason, MemoryStore, RefreshToken, StoredTokens, TokenError, TokenManager,
    TokenStore,
};

/// A memory store holding a refresh token GenLogs does not know (it answers 401).
fn unknown_to_the_service(refresh: &str) -> MemoryStore {
    MemoryStore::new(StoredTokens::from_refresh_token(RefreshToken::new(refresh)))
}

#[tokio::test]
async fn a_401_needs_new_tokens_and_sends_nothing_more_until_they_come() {
    let fx = Fixture::new().await;
    let manager = fx.manager(unknown_to_the_service("rt-unknown-to-the-service"));
    for _ in 0..3 {
        let error = manager.access_token().await.unwrap_err();
        assert!(
            matches!(
                error,
                TokenError::NewTokensRequired {
                    reason: NewTokensReason::RefreshTokenRejected,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("new GenLogs tokens must be created"),
            "{error}"
        );
    }
    assert_eq!(fx.refresh_requests(), 1, "no retry with a dead token");

    manager.replace_tokens(fx.valid_tokens()).await.unwrap();
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2);
}

#[tokio::test]
async fn new_tokens_written_to_the_store_revive_a_dead_manager() {
    let fx = Fixture::new().await;
    let store = std::sync::Arc::new(unknown_to_the_service("rt-unknown"));
    let manager = fx.manager(store.clone());
    assert!(manager.access_token().await.unwrap_err().needs_new_tokens());
    assert!(manager.access_token().await.unwrap_err().needs_new_tokens());
    assert_eq!(fx.refresh_requests(), 1);

    // Another process (or an operator's tool) saves new tokens in the shared store.
    store.replace(&fx.valid_tokens()).await.unwrap();
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2, "one request, with the new token");
}

#[tokio::test]
async fn an_invalidated_access_token_is_never_handed_out_again_when_the_store_brings_it_back() {
    let fx = Fixture::new().await;
    let (store, manager) = fx.manager_on_a_shared_store();
    let rejected = manager.access_token().await.unwrap();
    manager.invalidate(&rejected);
    // The same document comes back newer (an operator's tool rewrites it, a peer re-marks it):
    // the rejected access token with it.
    let document = store.load().await.unwrap().unwrap();
    assert_eq!(
        document.access_token().as_ref().map(|t| t.expose_secret()),
        Some(rejected.expose_secret())
    );
    store.replace(&document).await.unwrap();
    fx.clock.advance(Duration::from_secs(5));
    let served = manager.access_token().await.unwrap();
    assert_ne!(served.expose_secret(), rejected.expose_secret());
    assert_eq!(fx.refresh_requests(), 2, "a new one was fetched instead");
}

#[tokio::test]
async fn invalidate_refreshes_once_however_many_callers_report_it() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    let rejected = manager.access_token().await.unwrap();
    fx.clock.advance(Duration::from_secs(10));
    for _ in 0..50 {
        manager.invalidate(&rejected);
    }
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token().await.unwrap() })
        })
        .collect();
    for caller in callers {
        assert_ne!(
            caller.await.unwrap().expose_secret(),
            rejected.expose_secret()
        );
    }
    assert_eq!(fx.refresh_requests(), 2);
    // Late reports of the old token change nothing.
    manager.invalidate(&rejected);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2);
}

/// Asks for a token every simulated second for `over`, and reports every token it gets rejected,
/// as a service would whose endpoint answers 401 to every token. Returns the last
/// `AccessRejected` error's count and retry time, if any.
async fn rejecting_every_token(
    fx: &Fixture,
    manager: &TokenManager,
    over: Duration,
) -> Option<(u32, chrono::DateTime<Utc>)> {
    let mut last = None;
    for _ in 0..over.as_secs() {
        // A call waiting out the minimum interval is left to its refresh task (the clock moves
        // below), as a real caller's timeout would.
        match tokio::time::timeout(Duration::from_millis(20), manager.access_token()).await {
            Ok(Ok(token)) => manager.invalidate(&token),
            Ok(Err(TokenError::AccessRejected {
                consecutive,
                retry_at,
            })) => last = Some((consecutive, retry_at)),
            Ok(Err(other)) => panic!("{other:?}"),
            Err(_) => {}
        }
        fx.pass(Duration::from_secs(1)).await;
    }
    last
}

#[tokio::test]
async fn an_endpoint_rejecting_every_fresh_token_gets_backed_off_refreshes_not_a_storm() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    let (consecutive, retry_at) = rejecting_every_token(&fx, &manager, Duration::from_secs(3600))
        .await
        .expect("callers were told");
    // One refresh per 5 s would be 720 in the hour. Backing off from the second rejection
    // (10 s, 20 s, … 640 s, then 15 min): the first refresh, then rejections at about 0, 5, 15,
    // 35, 75, 155, 315, 635, 1275, 2175 and 3075 s.
    let refreshes = fx.refresh_requests();
    assert!((10..=13).contains(&refreshes), "{refreshes} refreshes");
    assert!(consecutive >= 10, "{consecutive} in a row");
    let now = genlogs_auth::clock::Clock::utc_now(&*fx.clock);
    assert!(retry_at > now, "{retry_at} is not ahead of {now}");
    assert!(
        retry_at <= now + chrono::Duration::minutes(15),
        "{retry_at}: the backoff is capped at 15 min"
    );
}

#[tokio::test]
async fn a_success_ends_the_backoff_of_rejected_tokens() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    rejecting_every_token(&fx, &manager, Duration::from_secs(60)).await;
    let backing_off = fx.refresh_requests();
    // The endpoint works again: the token fetched after the backoff is accepted.
    fx.clock.advance(Duration::from_secs(15 * 60));
    let accepted = manager.access_token().await.unwrap();
    manager.confirm(&accepted);
    assert_eq!(fx.refresh_requests(), backing_off + 1);
    // It breaks again: the first rejection of a new run waits only the minimum interval, and
    // the second in that run backs off again.
    manager.invalidate(&accepted);
    fx.clock.advance(Duration::from_secs(5));
    let next = manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), backing_off + 2);
    manager.invalidate(&next);
    match manager.access_token().await {
        Err(TokenError::AccessRejected { consecutive: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    // Reporting an accepted token while none is rejected costs a read, and changes nothing.
    let (_fx, manager) = Fixture::with_seeded_manager().await;
    let token = manager.access_token().await.unwrap();
    manager.confirm(&token);
    assert_eq!(
        manager.cached_access_token().unwrap().expose_secret(),
        token.expose_secret()
    );
}

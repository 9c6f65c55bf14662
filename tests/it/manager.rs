//! The token manager's callers, against the loopback stand-in for GenLogs with a manual clock:
//! the cached token, one refresh however many ask, a cancelled caller, `refresh_now` and
//! `auth_headers`. The other `manager_*` modules take one topic each.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fixture::{stored_refresh, Fixture, MARGIN};
use crate::support::{eventually, ACCESS_LIFETIME};
use genlogs_auth::{MemoryStore, RefreshToken, StoredTokens};
use serde_json::json;

#[tokio::test]
async fn inside_the_margin_callers_get_the_cached_token_while_one_background_refresh_runs() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    let first = manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1);

    let lifetime = ACCESS_LIFETIME.to_std().unwrap();
    fx.clock.advance(lifetime - MARGIN - Duration::from_secs(1));
    let same = manager.access_token().await.unwrap();
    assert_eq!(same.expose_secret(), first.expose_secret());
    tokio::task::yield_now().await;
    assert_eq!(
        fx.refresh_requests(),
        1,
        "one second before the margin: cached, nothing started"
    );

    fx.clock.advance(Duration::from_secs(2));
    // Inside the margin: every caller gets the cached token at once; one refresh starts.
    for _ in 0..100 {
        let token = manager.access_token().await.unwrap();
        assert_eq!(token.expose_secret(), first.expose_secret());
    }
    let next = eventually(|| {
        manager
            .cached_access_token()
            .filter(|t| t.expose_secret() != first.expose_secret())
    })
    .await;
    assert_eq!(fx.refresh_requests(), 2, "one background refresh");
    assert_eq!(
        manager.access_token().await.unwrap().expose_secret(),
        next.expose_secret()
    );
}

#[tokio::test]
async fn a_token_future_does_its_work_when_polled_not_when_built() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    let first = manager.access_token().await.unwrap();
    let lifetime = ACCESS_LIFETIME.to_std().unwrap();
    fx.clock.advance(lifetime - MARGIN + Duration::from_secs(1));
    // Inside the margin, a future built and dropped unpolled starts nothing.
    drop(manager.access_token());
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        fx.refresh_requests(),
        1,
        "an unpolled future started a refresh"
    );
    // Polled, it serves the cached token and starts the one background refresh.
    let token = manager.access_token().await.unwrap();
    assert_eq!(token.expose_secret(), first.expose_secret());
    eventually(|| (fx.refresh_requests() == 2).then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_refresh() {
    let fx = Fixture::new().await;
    // Slow enough that every caller arrives while the refresh is in flight.
    fx.genlogs.set_latency(Some(Duration::from_millis(200)));
    let manager = fx.seeded_manager();
    let callers: Vec<_> = (0..1_000)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move {
                manager
                    .access_token()
                    .await
                    .map(|t| t.expose_secret().to_string())
            })
        })
        .collect();
    let mut tokens = std::collections::BTreeSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap().unwrap());
    }
    assert_eq!(fx.refresh_requests(), 1);
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
}

#[tokio::test]
async fn a_cancelled_caller_does_not_abort_the_refresh() {
    let fx = Fixture::new().await;
    let (store, manager) = fx.manager_on_a_shared_store();
    let before = stored_refresh(&store).await;
    // The service answers after 300 ms; the caller gives up after 100 ms, once the request is out.
    fx.genlogs.set_latency(Some(Duration::from_millis(300)));

    // Poll the caller until the server holds its request, then drop it.
    let mut call = Box::pin(manager.access_token());
    while fx.refresh_requests() == 0 {
        tokio::select! {
            _ = &mut call => panic!("the call finished before it could be cancelled"),
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    drop(call);
    assert_eq!(fx.refresh_requests(), 1, "the request had been sent");
    // The service answers about 300 ms later; the refresh must still land in the store.
    for _ in 0..500 {
        if stored_refresh(&store).await != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let after = stored_refresh(&store).await;
    assert_ne!(after, before, "the rotated token was persisted");
    assert!(fx.genlogs.is_valid_refresh_token(&after));
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1, "no second request");
}

#[tokio::test]
async fn auth_headers_call_another_genlogs_endpoint() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    let headers = manager.auth_headers().await.unwrap();
    assert!(headers["access-token"].is_sensitive() && headers["x-api-key"].is_sensitive());
    let response = reqwest::Client::new()
        .get(format!(
            "http://{}/carriers/recommendations",
            fx.genlogs.addr()
        ))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["carriers"][0]["name"], json!("ACME Freight"));
}

#[tokio::test]
async fn refresh_now_rotates_a_fresh_token_once_and_saves_it() {
    let fx = Fixture::new().await;
    let (store, manager) = fx.manager_on_a_shared_store();
    let first = manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1);

    fx.clock.advance(Duration::from_secs(60));
    let before = stored_refresh(&*store).await;
    let forced = manager.refresh_now().await.unwrap();
    assert_ne!(forced.expose_secret(), first.expose_secret());
    assert_eq!(fx.refresh_requests(), 2, "one refresh, though none was due");
    let after = stored_refresh(&*store).await;
    assert_ne!(after, before);
    assert!(fx.genlogs.is_valid_refresh_token(&after));

    // A manager that has read nothing yet, over a store without an access token: the first
    // read refreshes, and that is the one refresh.
    let bare = Arc::new(MemoryStore::new(StoredTokens::from_refresh_token(
        RefreshToken::new(after),
    )));
    let fresh = fx.manager(bare.clone());
    fresh.refresh_now().await.unwrap();
    assert_eq!(fx.refresh_requests(), 3);
}

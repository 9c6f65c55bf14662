//! The manager when access tokens are rejected: one refresh per report, backed off, then reset.

use std::time::Duration;

use crate::support::fixture::Fixture;
use chrono::Utc;
use genlogs_auth::{MemoryStore, TokenError, TokenManager};

#[tokio::test]
async fn invalidate_refreshes_once_however_many_callers_report_it() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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
        fx.clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    last
}

#[tokio::test]
async fn an_endpoint_rejecting_every_fresh_token_gets_backed_off_refreshes_not_a_storm() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    let token = manager.access_token().await.unwrap();
    manager.confirm(&token);
    assert_eq!(
        manager.cached_access_token().unwrap().expose_secret(),
        token.expose_secret()
    );
}

//! Keeping an idle grant alive (issue 15: a service idle for longer than the refresh token lives
//! lost the grant silently): `keep_alive` and `renew_grant_if_due`, with the stand-in and the
//! managers on one manual clock.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fixture::Fixture;
use genlogs_auth::{clock::Clock, manager::GrantRenewal, MemoryStore, StoredTokens, TokenStore};

/// A stand-in on the fixture's clock whose refresh tokens live `lifetime`.
async fn refresh_tokens_living(lifetime: Duration) -> Fixture {
    Fixture::on_one_clock(|genlogs| genlogs.with_refresh_lifetime(lifetime)).await
}

/// A fresh token pair, refreshed now (by the fixture's clock).
fn refreshed_now(fx: &Fixture) -> StoredTokens {
    fx.genlogs
        .issue_tokens()
        .with_refreshed_at(Some(fx.clock.utc_now()))
}

/// A week of idleness on a manual clock (server and manager on the same clock): nobody asks for
/// an access token, 1-day refresh tokens, renewed when a quarter of their lifetime is left.
#[tokio::test]
async fn keep_alive_renews_an_idle_grant_once_per_period_for_a_week() {
    let fx = refresh_tokens_living(Duration::from_secs(24 * 3600)).await;
    let (genlogs, clock) = (&fx.genlogs, &fx.clock);
    let store = Arc::new(MemoryStore::new(refreshed_now(&fx)));
    let manager = fx.manager(store.clone());

    let asleep = || async {
        let started = std::time::Instant::now();
        while clock.sleepers() != 1 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the keep-alive task never slept"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let keep_alive = manager.keep_alive();
    asleep().await;
    let hour = Duration::from_secs(3600);
    let started = std::time::Instant::now();
    for _ in 0..7 * 24 {
        clock.advance(hour);
        asleep().await;
    }
    let elapsed = started.elapsed();
    // Renewed at 18 h into each 24 h lifetime: at 18, 36, …, 162 h.
    assert_eq!(genlogs.refreshes(), 9, "one renewal per 18 h over 168 h");
    assert_eq!(genlogs.reuses(), 0);
    let stored = store.load().await.unwrap().unwrap();
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
    assert_eq!(stored.state(), genlogs_auth::store::TokenState::Usable);
    println!("a week of keep-alive on a manual clock: {elapsed:?}");

    // Dropped: nothing more is renewed, however long the service stays idle.
    drop(keep_alive);
    for _ in 0..48 {
        clock.advance(hour);
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(genlogs.refreshes(), 9);
    assert_eq!(clock.sleepers(), 0);
}

#[tokio::test]
async fn one_keep_alive_check_renews_only_inside_the_margin() {
    let fx = refresh_tokens_living(Duration::from_secs(4 * 24 * 3600)).await;
    let (genlogs, clock) = (&fx.genlogs, &fx.clock);
    let manager = fx.manager(MemoryStore::new(refreshed_now(&fx)));
    let due = clock.utc_now() + chrono::Duration::days(3);
    assert_eq!(
        manager.renew_grant_if_due().await.unwrap(),
        GrantRenewal::NotDue { renew_at: due }
    );
    clock.advance(Duration::from_secs(3 * 24 * 3600 - 1));
    assert!(matches!(
        manager.renew_grant_if_due().await.unwrap(),
        GrantRenewal::NotDue { .. }
    ));
    assert_eq!(genlogs.refreshes(), 0);
    clock.advance(Duration::from_secs(1));
    let GrantRenewal::Renewed { refresh_expires } = manager.renew_grant_if_due().await.unwrap()
    else {
        panic!("due at three quarters of the lifetime");
    };
    assert_eq!(genlogs.refreshes(), 1);
    assert!(refresh_expires.unwrap() > clock.utc_now() + chrono::Duration::days(3));
}

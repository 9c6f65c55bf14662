//! The token manager against the loopback stand-in for GenLogs, with a manual clock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::fixture::{stored_refresh, Fixture, FlakyStore, MARGIN};
use crate::support::ACCESS_LIFETIME;
use genlogs_auth::testing::Fault;
use genlogs_auth::{
    store::NewTokensReason, store::TokenState, MemoryStore, RefreshToken, StoredTokens, TokenError,
    TokenStore,
};
use serde_json::json;

#[tokio::test]
async fn inside_the_margin_callers_get_the_cached_token_while_one_background_refresh_runs() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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

/// Polls `probe` until it answers (the background refresh runs on its own task).
async fn eventually<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1_000 {
        if let Some(value) = probe() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the condition never held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_refresh() {
    let fx = Fixture::new().await;
    // Slow enough that every caller arrives while the refresh is in flight.
    fx.genlogs.set_latency(Some(Duration::from_millis(200)));
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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
    let store = Arc::new(MemoryStore::new(fx.valid_tokens()));
    let before = stored_refresh(&store).await;
    let manager = fx.manager(store.clone());
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
async fn a_failed_save_surfaces_keeps_the_new_tokens_and_never_writes_back_the_old() {
    let fx = Fixture::new().await;
    let initial = fx.valid_tokens();
    let old = initial.refresh_token().expose_secret().to_string();
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(initial),
        ..Default::default()
    });
    store.failing.store(true, Ordering::SeqCst);
    let manager = fx.manager(store.clone());

    let error = manager.access_token().await.unwrap_err();
    assert!(matches!(error, TokenError::Store(_)), "{error:?}");
    let error = manager.access_token().await.unwrap_err();
    assert!(
        matches!(error, TokenError::Store(_)),
        "the unsaved token is not handed out: {error:?}"
    );
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the save is retried, not the refresh"
    );

    store.failing.store(false, Ordering::SeqCst);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1);
    let saved = store.saves.lock().unwrap().clone();
    assert_eq!(saved.len(), 1);
    assert_ne!(saved[0], old, "the old token was never written back");
    assert!(
        fx.genlogs.is_valid_refresh_token(&saved[0]),
        "what was saved is the rotated token"
    );
}

#[tokio::test]
async fn a_401_needs_new_tokens_and_sends_nothing_more_until_they_come() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(StoredTokens::from_refresh_token(
        RefreshToken::new("rt-unknown-to-the-service"),
    )));
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
    let store = Arc::new(MemoryStore::new(StoredTokens::from_refresh_token(
        RefreshToken::new("rt-unknown"),
    )));
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
async fn an_unknown_outcome_is_retried_once_with_the_same_token_after_the_cooldown() {
    // The server never processed the first request: the retry succeeds.
    let fx = Fixture::new().await;
    let store = Arc::new(MemoryStore::new(fx.valid_tokens()));
    let manager = fx.manager(store.clone());
    fx.genlogs
        .fail_always(Fault::text(200, "<html>oops</html>"));
    let error = manager.access_token().await.unwrap_err();
    assert!(matches!(error, TokenError::Refresh(_)), "{error:?}");
    assert!(!error.needs_new_tokens());
    let stored = store.load().await.unwrap().unwrap();
    assert!(
        matches!(
            stored.state(),
            TokenState::PossiblyRotated { attempts: 1, .. }
        ),
        "the doubt is shared through the store: {:?}",
        stored.state()
    );
    // No second request during the cooldown.
    assert!(manager.access_token().await.is_err());
    assert_eq!(fx.refresh_requests(), 1);

    fx.genlogs.clear_faults();
    fx.clock.advance(Duration::from_secs(5));
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
        let fx = Fixture::new().await;
        let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
        // GenLogs rotates the token, and the answer is lost (or is a 500).
        fx.genlogs.fail_always(Fault::after_processing(first));
        assert!(manager.access_token().await.is_err());
        fx.genlogs.clear_faults();
        fx.clock.advance(Duration::from_secs(5));
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
    let store = Arc::new(MemoryStore::new(fx.valid_tokens()));
    let (first, second) = (fx.manager(store.clone()), fx.manager(store.clone()));
    // The origin rotated the token; the gateway in front of it gave up waiting (522).
    fx.genlogs.fail_next(
        1,
        Fault::after_processing(Fault::json(
            522,
            json!({ "message": "Connection timed out" }),
        )),
    );
    let error = first.access_token().await.unwrap_err();
    assert_eq!(
        error
            .refresh_error()
            .and_then(|e| e.status())
            .map(|s| s.as_u16()),
        Some(522),
        "{error:?}"
    );
    let stored = store.load().await.unwrap().unwrap();
    assert!(
        matches!(
            stored.state(),
            TokenState::PossiblyRotated { attempts: 1, .. }
        ),
        "the doubt stays in the store: {:?}",
        stored.state()
    );
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
async fn a_503_keeps_serving_the_cached_token_until_it_expires() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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

#[tokio::test]
async fn expiries_are_read_on_the_servers_clock() {
    let fx = Fixture::new().await;
    // The local clock is 25 minutes ahead of the server: by local time, every token GenLogs
    // issues lives 5 minutes, not 30. The response's Date header corrects for that.
    fx.clock.advance(Duration::from_secs(25 * 60));
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    let first = manager.access_token().await.unwrap();
    fx.clock.advance(Duration::from_secs(10 * 60));
    let later = manager.access_token().await.unwrap();
    assert_eq!(later.expose_secret(), first.expose_secret());
    tokio::task::yield_now().await;
    assert_eq!(fx.refresh_requests(), 1);
}

#[tokio::test]
async fn auth_headers_call_another_genlogs_endpoint() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
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
async fn a_rotation_whose_save_failed_is_shown_by_unsaved_tokens_and_saved_by_flush() {
    let fx = Fixture::new().await;
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(fx.valid_tokens()),
        ..Default::default()
    });
    store.failing.store(true, Ordering::SeqCst);
    let manager = fx.manager(store.clone());
    assert!(manager.unsaved_tokens().is_none());
    assert!(manager.flush().await.is_ok(), "nothing pending");

    manager.access_token().await.unwrap_err();
    let unsaved = manager.unsaved_tokens().expect("the rotated tokens");
    assert!(fx
        .genlogs
        .is_valid_refresh_token(unsaved.refresh_token().expose_secret()));
    assert!(matches!(manager.flush().await, Err(TokenError::Store(_))));
    assert!(manager.unsaved_tokens().is_some(), "still kept");

    store.failing.store(false, Ordering::SeqCst);
    manager.flush().await.unwrap();
    assert!(manager.unsaved_tokens().is_none());
    assert_eq!(
        stored_refresh(&*store).await,
        unsaved.refresh_token().expose_secret()
    );
    assert_eq!(fx.refresh_requests(), 1, "flush never sends");
}

#[tokio::test]
async fn refresh_now_rotates_a_fresh_token_once_and_saves_it() {
    let fx = Fixture::new().await;
    let store = Arc::new(MemoryStore::new(fx.valid_tokens()));
    let manager = fx.manager(store.clone());
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

/// Issue 15: a service idle for longer than the refresh token lives lost the grant silently.
/// A week of idleness on a manual clock (server and manager on the same clock): nobody asks for
/// an access token, 1-day refresh tokens, renewed when a quarter of their lifetime is left.
#[tokio::test]
async fn keep_alive_renews_an_idle_grant_once_per_period_for_a_week() {
    use genlogs_auth::testing::MockGenLogs;
    use genlogs_auth::{clock::Clock, clock::ManualClock, AuthClient, TokenManager};

    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let day = Duration::from_secs(24 * 3600);
    let genlogs = MockGenLogs::builder()
        .with_clock(clock.clone())
        .with_refresh_lifetime(day)
        .start()
        .await;
    let seeded = genlogs
        .issue_tokens()
        .with_refreshed_at(Some(clock.utc_now()));
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new(seeded));
    let manager = TokenManager::builder(client, store.clone())
        .with_clock(clock.clone())
        .with_refresh_jitter(0.0)
        .build();

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
    assert_eq!(stored.state(), TokenState::Usable);
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
    use genlogs_auth::testing::MockGenLogs;
    use genlogs_auth::{
        clock::Clock, clock::ManualClock, manager::GrantRenewal, AuthClient, TokenManager,
    };

    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let genlogs = MockGenLogs::builder()
        .with_clock(clock.clone())
        .with_refresh_lifetime(Duration::from_secs(4 * 24 * 3600))
        .start()
        .await;
    let seeded = genlogs
        .issue_tokens()
        .with_refreshed_at(Some(clock.utc_now()));
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();
    let manager = TokenManager::builder(client, MemoryStore::new(seeded))
        .with_clock(clock.clone())
        .with_refresh_jitter(0.0)
        .build();
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

/// A store whose locks are leases of `lease` (a network store's behaviour, in memory), counting
/// the extensions the manager asks for.
#[derive(Debug)]
struct Leased {
    inner: MemoryStore,
    lease: Duration,
    extends: std::sync::atomic::AtomicUsize,
}

struct LeaseLock {
    inner: genlogs_auth::store::MemoryLock,
    lease: Duration,
}

impl genlogs_auth::store::StoreLock for LeaseLock {
    fn lease(&self) -> Option<Duration> {
        Some(self.lease)
    }
}

impl TokenStore for Leased {
    type Lock = LeaseLock;

    async fn load(&self) -> Result<Option<StoredTokens>, genlogs_auth::StoreError> {
        self.inner.load().await
    }

    async fn lock(&self) -> Result<LeaseLock, genlogs_auth::StoreError> {
        Ok(LeaseLock {
            inner: self.inner.lock().await?,
            lease: self.lease,
        })
    }

    async fn save(
        &self,
        tokens: &StoredTokens,
        lock: &LeaseLock,
    ) -> Result<u64, genlogs_auth::StoreError> {
        self.inner.save(tokens, &lock.inner).await
    }

    async fn extend(
        &self,
        lock: &mut LeaseLock,
        by: Duration,
    ) -> Result<(), genlogs_auth::StoreError> {
        self.extends.fetch_add(1, Ordering::SeqCst);
        lock.lease = by;
        Ok(())
    }
}

/// Issue 16, item 4: one clock. A week of callers asking every minute, a daily 503 with its
/// cooldown, the minimum interval's wait, and a lease too short to send under (extended before
/// every send), all on a `ManualClock` shared with the server: no real sleeping.
#[tokio::test]
async fn a_manual_clock_drives_a_week_of_refreshes_cooldowns_waits_and_lease_extensions() {
    use genlogs_auth::clock::ManualClock;
    use genlogs_auth::testing::{Fault, MockGenLogs};
    use genlogs_auth::{AuthClient, TokenManager};

    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let genlogs = MockGenLogs::builder()
        .with_clock(clock.clone())
        .start()
        .await;
    let store = Arc::new(Leased {
        inner: MemoryStore::new(genlogs.issue_tokens()),
        // Less than the 2 s request timeout plus the manager's margins: extended every time.
        lease: Duration::from_secs(3),
        extends: Default::default(),
    });
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .with_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let manager = TokenManager::builder(client, store.clone())
        .with_clock(clock.clone())
        .with_refresh_jitter(0.0)
        .build();

    let started = std::time::Instant::now();
    let (mut served, mut failed) = (0, 0);
    for minute in 0..7 * 24 * 60 {
        if minute % (24 * 60) == 12 * 60 {
            genlogs.fail_next(1, Fault::unavailable());
        }
        match manager.access_token().await {
            Ok(token) => {
                assert!(genlogs.is_valid_access_token(token.expose_secret()));
                served += 1;
            }
            Err(_) => failed += 1,
        }
        clock.advance(Duration::from_secs(60));
    }
    let week = started.elapsed();
    let refreshes = genlogs.refreshes();
    // 30-minute access tokens renewed a minute before expiry, asked for once a minute: one
    // refresh per 29 to 30 minutes (336 at most); after each daily 503 the next minute's call
    // refreshes (its 5 s cooldown long over).
    assert!((330..=350).contains(&refreshes), "{refreshes} refreshes");
    assert_eq!(served + failed, 7 * 24 * 60);
    assert!(failed <= 7, "{failed} calls failed");
    assert_eq!(genlogs.reuses(), 0);

    // The cooldown after a failure, on the manual clock: nothing is sent before it has passed.
    genlogs.fail_next(1, Fault::unavailable());
    let requests = genlogs.refresh_requests();
    manager.refresh_now().await.unwrap_err();
    manager.refresh_now().await.unwrap_err();
    assert_eq!(genlogs.refresh_requests(), requests + 1, "cooling down");
    clock.advance(Duration::from_secs(5));
    manager.refresh_now().await.unwrap();
    assert_eq!(genlogs.refresh_requests(), requests + 2);

    // The minimum interval since the last refresh: a `Wait` step that sleeps on the clock and
    // ends when the clock passes it.
    let waiting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.refresh_now().await }
    });
    let asked = std::time::Instant::now();
    while clock.sleepers() == 0 {
        assert!(asked.elapsed() < Duration::from_secs(10), "never waited");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(!waiting.is_finished());
    assert_eq!(genlogs.refresh_requests(), requests + 2);
    clock.advance(Duration::from_secs(5));
    let token = waiting.await.unwrap().unwrap();
    assert!(genlogs.is_valid_access_token(token.expose_secret()));
    assert_eq!(genlogs.refresh_requests(), requests + 3);

    // Every refresh sent was sent under a lease extended for it.
    assert_eq!(
        store.extends.load(Ordering::SeqCst) as u64,
        genlogs.refresh_requests() as u64
    );
    let stored = store.load().await.unwrap().unwrap();
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
    assert_eq!(stored.state(), TokenState::Usable);
    println!(
        "a week on a manual clock: {refreshes} refreshes, {served} calls served, {failed} failed, \
         in {week:?}"
    );
}

/// A store whose locks are leases but that does not implement `extend`.
#[derive(Debug)]
struct Unextendable(Leased);

impl TokenStore for Unextendable {
    type Lock = LeaseLock;

    async fn load(&self) -> Result<Option<StoredTokens>, genlogs_auth::StoreError> {
        self.0.load().await
    }

    async fn lock(&self) -> Result<LeaseLock, genlogs_auth::StoreError> {
        self.0.lock().await
    }

    async fn save(
        &self,
        tokens: &StoredTokens,
        lock: &LeaseLock,
    ) -> Result<u64, genlogs_auth::StoreError> {
        self.0.save(tokens, lock).await
    }
}

/// A lease too short to send under, in a store that cannot extend it: nothing is sent (the
/// default `extend` fails for a lease instead of pretending it extended it).
#[tokio::test]
async fn a_lease_the_store_cannot_extend_is_never_sent_under() {
    let fx = Fixture::new().await;
    let store = Unextendable(Leased {
        inner: MemoryStore::new(fx.valid_tokens()),
        lease: Duration::from_secs(3),
        extends: Default::default(),
    });
    let manager = fx.manager(store);
    let error = manager.access_token().await.unwrap_err();
    let cause = error.store_error().expect("a store error").to_string();
    assert!(cause.contains("does not extend them"), "{cause}");
    assert_eq!(fx.refresh_requests(), 0);
}

#[tokio::test]
async fn an_invalidated_access_token_is_never_handed_out_again_when_the_store_brings_it_back() {
    let fx = Fixture::new().await;
    let store = Arc::new(MemoryStore::new(fx.valid_tokens()));
    let manager = fx.manager(store.clone());
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
async fn hosts_with_different_api_keys_recognise_each_others_rotated_tokens() {
    // An api key rotation across the fleet: one host already has the new key (GenLogs would
    // accept both; the stand-in only the old one, so this host must never send anything).
    let fx = Fixture::new().await;
    let seed = fx.valid_tokens();
    let store = Arc::new(MemoryStore::new(seed.clone()));
    let old_key = fx.manager(store.clone());
    let new_key = fx.manager_with_api_key(store.clone(), "the-next-api-key");
    old_key.access_token().await.unwrap();
    let rotated = store.load().await.unwrap().unwrap();
    assert_ne!(
        rotated.refresh_token().expose_secret(),
        seed.refresh_token().expose_secret()
    );
    // The other host reads the store (and the fingerprint of the rotated-away seed in it).
    new_key.access_token().await.unwrap();
    // A stale writer puts the rotated-away seed back, numbered as if newer (nothing but the
    // fingerprint tells it is old).
    let mut stale = serde_json::to_value(&rotated).unwrap();
    stale["refresh_token"] = serde_json::to_value(seed.refresh_token()).unwrap();
    stale["access_token"] = serde_json::Value::Null;
    stale["access_expires"] = serde_json::Value::Null;
    let sequence = stale["lineage"]["sequence"].as_u64().unwrap();
    stale["lineage"]["sequence"] = (sequence + 10).into();
    stale["lineage"]["rotated"] = serde_json::json!([]);
    let stale: StoredTokens = serde_json::from_value(stale).unwrap();
    let lock = store.lock().await.unwrap();
    store.save(&stale, &lock).await.unwrap();
    store.release(lock).await;

    // The host with the other api key reads it (as its store watch does), recognises it, and
    // writes the newer tokens back; it sends nothing.
    new_key.renew_grant_if_due().await.unwrap();
    new_key.flush().await.unwrap();
    new_key.access_token().await.unwrap();
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the rotated-away seed was not sent"
    );
    assert_eq!(fx.genlogs.reuses(), 0);
    let now = store.load().await.unwrap().unwrap();
    assert_eq!(
        now.refresh_token().expose_secret(),
        rotated.refresh_token().expose_secret(),
        "the newer tokens were written back"
    );
}

//! The manager where the real world differs from the happy path: hostile headers and times,
//! refresh tasks that die, other processes sharing the store, a store that fails or is locked.
//! Each test reproduces one defect of the first manager (issue 8).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::defaults::{MAX_COOLDOWN, RETRY_COOLDOWN};
use crate::support::fixture::{Fixture, FlakyStore, MARGIN};
use chrono::Utc;
use genlogs_auth::testing::Fault;
use genlogs_auth::{
    store::NewTokensReason, store::TokenState, FileStore, MemoryStore, RefreshToken, StoreError,
    StoredTokens, TokenError, TokenManager, TokenStore,
};
use serde_json::json;

/// A 200 whose access token lives `lifetime` from `now` and whose `Date` says `date`.
fn token_reply_at(
    now: chrono::DateTime<Utc>,
    lifetime: chrono::Duration,
    date: Option<chrono::DateTime<Utc>>,
) -> Fault {
    let expires = (now + lifetime).format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let reply = Fault::json(
        200,
        json!({
            "access_token_data": { "token": "at-fixed-0123456789", "expires": expires },
            "refresh_token_data": { "token": "rt-fixed-0123456789", "expires": "2099-01-01T00:00:00" },
            "user_id": "user-42",
            "company_id": 7
        }),
    );
    match date {
        Some(date) => reply.with_header(
            "date",
            &date.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ),
        None => reply,
    }
}

/// A 200 whose access token lives `lifetime` from now, and whose `Date` says `date`.
fn token_reply(lifetime: chrono::Duration, date: Option<chrono::DateTime<Utc>>) -> Fault {
    token_reply_at(Utc::now(), lifetime, date)
}

/// Answers every refresh with tokens living `lifetime` from the fixture's (manual) clock.
fn short_lived(fx: &Fixture, lifetime: chrono::Duration) {
    let clock = fx.clock.clone();
    fx.genlogs.fail_with(move |_| {
        Some(token_reply_at(
            genlogs_auth::clock::Clock::utc_now(&*clock),
            lifetime,
            None,
        ))
    });
}

/// Calls the manager `calls` times, advancing the clock evenly over `over`; returns the errors.
async fn call_over(fx: &Fixture, manager: &TokenManager, calls: u32, over: Duration) -> usize {
    let mut errors = 0;
    for _ in 0..calls {
        if manager.access_token().await.is_err() {
            errors += 1;
        }
        fx.clock.advance(over / calls);
        // Real time for a background refresh to make progress, as a real caller's work gives.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Let a background refresh started by the last calls finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    errors
}

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
async fn a_lifetime_shorter_than_the_margin_does_not_refresh_on_every_call() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    // 30 s tokens against a 60 s margin: renewed at half their lifetime, not on every call.
    short_lived(&fx, chrono::Duration::seconds(30));
    assert!(MARGIN > Duration::from_secs(30));
    let errors = call_over(&fx, &manager, 200, Duration::from_secs(5)).await;
    assert_eq!(errors, 0);
    assert_eq!(
        fx.refresh_requests(),
        1,
        "200 callers over 5 s: one refresh"
    );
    // Over the next 60 s: about one refresh per 15 s, never a storm.
    call_over(&fx, &manager, 600, Duration::from_secs(60)).await;
    let refreshes = fx.refresh_requests();
    assert!(
        (4..=6).contains(&refreshes),
        "{refreshes} refreshes in 65 s"
    );
}

#[tokio::test]
async fn tokens_that_expire_on_arrival_are_refreshed_once_per_minimum_interval() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    short_lived(&fx, chrono::Duration::seconds(-60));
    call_over(&fx, &manager, 500, Duration::from_secs(50)).await;
    let refreshes = fx.refresh_requests();
    assert!(
        (9..=11).contains(&refreshes),
        "{refreshes} refreshes in 50 s"
    );
}

#[tokio::test]
async fn a_date_far_off_is_not_believed() {
    for date in [
        chrono::DateTime::UNIX_EPOCH,
        Utc::now() + chrono::Duration::days(365 * 100),
    ] {
        let fx = Fixture::new().await;
        let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
        fx.genlogs
            .fail_always(token_reply(chrono::Duration::minutes(30), Some(date)));
        call_over(&fx, &manager, 200, Duration::from_secs(5)).await;
        assert_eq!(fx.refresh_requests(), 1, "no storm with Date {date}");
        // Renewed by the local clock: within the last minute of its 30.
        fx.clock.advance(Duration::from_secs(29 * 60));
        call_over(&fx, &manager, 10, Duration::from_secs(1)).await;
        assert_eq!(fx.refresh_requests(), 2, "renewed on time with Date {date}");
    }
}

#[tokio::test]
async fn an_expiry_in_year_9999_is_renewed_within_a_day() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    fx.genlogs.fail_always(token_reply(
        chrono::DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z")
            .unwrap()
            .to_utc()
            - Utc::now(),
        None,
    ));
    manager.access_token().await.unwrap();
    fx.clock.advance(Duration::from_secs(24 * 3600 - 30));
    call_over(&fx, &manager, 10, Duration::from_secs(1)).await;
    assert_eq!(fx.refresh_requests(), 2);
}

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

fn file_manager(fx: &Fixture, path: &std::path::Path) -> TokenManager {
    fx.manager(FileStore::new(path).with_lock_wait(Duration::from_millis(300)))
}

#[tokio::test]
async fn a_401_in_one_process_stops_every_process_sharing_the_store() {
    let fx = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    FileStore::new(&path)
        .replace(&StoredTokens::from_refresh_token(RefreshToken::new(
            "rt-revoked-by-genlogs",
        )))
        .await
        .unwrap();
    let first = file_manager(&fx, &path);
    let error = first.access_token().await.unwrap_err();
    assert_eq!(
        error.new_tokens_reason(),
        Some(NewTokensReason::RefreshTokenRejected)
    );
    assert_eq!(fx.refresh_requests(), 1);

    // Another process on the same file, and this one after a restart: neither sends it again.
    for _ in 0..2 {
        let other = file_manager(&fx, &path);
        let error = other.access_token().await.unwrap_err();
        assert_eq!(
            error.new_tokens_reason(),
            Some(NewTokensReason::RefreshTokenRejected),
            "{error}"
        );
    }
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the dead token was never sent twice"
    );
    let stored = FileStore::new(&path).load().await.unwrap().unwrap();
    assert!(matches!(stored.state, TokenState::Dead { .. }));
}

#[tokio::test]
async fn a_failed_save_keeps_the_store_locked_until_it_succeeds() {
    let fx = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    FileStore::new(&path)
        .replace(&fx.valid_tokens())
        .await
        .unwrap();
    let flaky = Arc::new(FlakyStore::wrapping(
        FileStore::new(&path).with_lock_wait(Duration::from_millis(300)),
    ));
    flaky.failing.store(true, Ordering::SeqCst);
    let first = fx.manager(flaky.clone());
    assert!(matches!(
        first.access_token().await.unwrap_err(),
        TokenError::Store(_)
    ));

    // The file still holds the rotated-away token; another process must not read and send it.
    let second = file_manager(&fx, &path);
    let error = second.access_token().await.unwrap_err();
    assert!(
        matches!(error.store_error(), Some(StoreError::Busy { .. })),
        "{error:?}"
    );
    assert_eq!(fx.refresh_requests(), 1);

    flaky.failing.store(false, Ordering::SeqCst);
    let token = first.access_token().await.unwrap();
    let adopted = second.access_token().await.unwrap();
    assert_eq!(
        adopted.expose_secret(),
        token.expose_secret(),
        "the other process adopts it"
    );
    assert_eq!(fx.refresh_requests(), 1);
}

#[tokio::test]
async fn a_recovered_token_that_cannot_be_saved_keeps_the_store_locked_too() {
    let fx = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    FileStore::new(&path)
        .replace(&fx.valid_tokens())
        .await
        .unwrap();
    // GenLogs rotates, but the answer's access token is blank: only the refresh token is usable.
    let genlogs = fx.genlogs.clone();
    fx.genlogs.fail_with(move |request| {
        let Fault::Respond {
            status,
            headers,
            body,
        } = genlogs.process(request)
        else {
            unreachable!("the stand-in answers in full")
        };
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        json["access_token_data"]["token"] = json!("  ");
        Some(Fault::Respond {
            status,
            headers,
            body: json.to_string().into_bytes(),
        })
    });
    let flaky = Arc::new(FlakyStore::wrapping(
        FileStore::new(&path).with_lock_wait(Duration::from_millis(300)),
    ));
    flaky.failing.store(true, Ordering::SeqCst);
    let first = fx.manager(flaky.clone());
    assert!(first.access_token().await.is_err());
    assert_eq!(fx.refresh_requests(), 1);

    // The file still shows the sent token as usable; the recovered one is only in memory.
    let second = file_manager(&fx, &path);
    let error = second.access_token().await.unwrap_err();
    assert!(
        matches!(error.store_error(), Some(StoreError::Busy { .. })),
        "{error:?}"
    );
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the rotated-away token was not sent again"
    );
}

#[tokio::test]
async fn a_stopped_process_holding_the_lock_does_not_hang_callers() {
    let fx = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    FileStore::new(&path)
        .replace(&fx.valid_tokens())
        .await
        .unwrap();
    let manager = file_manager(&fx, &path);
    let token = manager.access_token().await.unwrap();

    // Another process takes the lock and stops.
    let holder = FileStore::new(&path).lock().await.unwrap();
    let lifetime = crate::support::ACCESS_LIFETIME.to_std().unwrap();
    fx.clock.advance(lifetime - MARGIN / 2);
    for _ in 0..10 {
        let cached = tokio::time::timeout(Duration::from_secs(5), manager.access_token())
            .await
            .expect("a caller with a valid token never waits for the lock")
            .unwrap();
        assert_eq!(cached.expose_secret(), token.expose_secret());
    }
    fx.clock.advance(MARGIN);
    let error = tokio::time::timeout(Duration::from_secs(5), manager.access_token())
        .await
        .expect("the wait for the lock is bounded")
        .unwrap_err();
    assert!(
        matches!(error.store_error(), Some(StoreError::Busy { .. })),
        "{error:?}"
    );
    assert_eq!(fx.refresh_requests(), 1);

    drop(holder);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2);
}

#[tokio::test]
async fn a_token_file_from_before_the_token_state_reads_as_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    std::fs::write(
        &path,
        r#"{"refresh_token":"rt-old","refresh_expires":null,"access_token":null,"access_expires":null}"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let stored = FileStore::new(&path).load().await.unwrap().unwrap();
    assert_eq!(stored.state, TokenState::Usable);
    assert_eq!(stored.version, 0);
}

/// Issue 15: a token handed out with milliseconds left reached GenLogs expired. The server's
/// `Date` here runs a second behind its clock, on top of its one-second resolution, and every
/// refresh after the first fails, so the first access token is served to the very end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_never_handed_out_so_late_that_genlogs_rejects_it_as_expired() {
    use genlogs_auth::testing::{Fault, MockGenLogs};
    use genlogs_auth::AuthClient;

    let genlogs = MockGenLogs::builder()
        .with_access_lifetime(Duration::from_secs(3))
        .with_date_lag(Duration::from_secs(1))
        .start()
        .await;
    let seeded = StoredTokens {
        access_token: None,
        access_expires: None,
        ..genlogs.issue_tokens()
    };
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();
    let manager = TokenManager::builder(client, MemoryStore::new(seeded))
        .with_min_refresh_interval(Duration::from_millis(100))
        .build();
    manager.access_token().await.unwrap();
    genlogs.fail_with(|request| request.is_refresh().then(Fault::unavailable));

    let http = genlogs_auth::reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let (mut accepted, mut expired, mut refused) = (0, 0, 0);
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        match manager.auth_headers().await {
            Ok(headers) => {
                let status = http
                    .get(genlogs.protected_url())
                    .headers(headers)
                    .send()
                    .await
                    .unwrap()
                    .status();
                match status.as_u16() {
                    200 => accepted += 1,
                    401 => expired += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
            Err(_) => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        expired, 0,
        "a token reached GenLogs expired ({accepted} accepted)"
    );
    assert!(accepted > 0, "the token was served while it had time left");
    assert!(refused > 0, "and refused once too little was left");
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

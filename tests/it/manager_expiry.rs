//! The manager and token lifetimes: short, expired on arrival, far off, read on the server's clock
//! or dated by a bad `Date`.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::support::defaults::REQUEST_TIMEOUT;
use crate::support::fixture::{Fixture, MARGIN};
use chrono::Utc;
use genlogs_auth::testing::Fault;
use genlogs_auth::{MemoryStore, TokenManager};
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
        fx.pass(over / calls).await;
    }
    // Let a background refresh started by the last calls finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    errors
}

/// Asserts that the stand-in saw a number of refreshes in `expected` over `over`.
#[track_caller]
fn assert_refreshes(fx: &Fixture, expected: RangeInclusive<usize>, over: &str) {
    let refreshes = fx.refresh_requests();
    assert!(
        expected.contains(&refreshes),
        "{refreshes} refreshes in {over}"
    );
}

#[tokio::test]
async fn expiries_are_read_on_the_servers_clock() {
    let fx = Fixture::new().await;
    // The local clock is 25 minutes ahead of the server: by local time, every token GenLogs
    // issues lives 5 minutes, not 30. The response's Date header corrects for that.
    fx.clock.advance(Duration::from_secs(25 * 60));
    let manager = fx.seeded_manager();
    let first = manager.access_token().await.unwrap();
    fx.clock.advance(Duration::from_secs(10 * 60));
    let later = manager.access_token().await.unwrap();
    assert_eq!(later.expose_secret(), first.expose_secret());
    tokio::task::yield_now().await;
    assert_eq!(fx.refresh_requests(), 1);
}

#[tokio::test]
async fn a_lifetime_shorter_than_the_margin_does_not_refresh_on_every_call() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
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
    assert_refreshes(&fx, 4..=6, "65 s");
}

#[tokio::test]
async fn tokens_that_expire_on_arrival_are_refreshed_once_per_minimum_interval() {
    let (fx, manager) = Fixture::with_seeded_manager().await;
    short_lived(&fx, chrono::Duration::seconds(-60));
    call_over(&fx, &manager, 500, Duration::from_secs(50)).await;
    assert_refreshes(&fx, 9..=11, "50 s");
}

#[tokio::test]
async fn a_date_far_off_is_not_believed() {
    for date in [
        chrono::DateTime::UNIX_EPOCH,
        Utc::now() + chrono::Duration::days(365 * 100),
    ] {
        let (fx, manager) = Fixture::with_seeded_manager().await;
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
    let (fx, manager) = Fixture::with_seeded_manager().await;
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

/// Issue 15: a token handed out with milliseconds left reached GenLogs expired. The server's
/// `Date` here runs a second behind its clock, on top of its one-second resolution, and every
/// refresh after the first fails, so the first access token is served to the very end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_never_handed_out_so_late_that_genlogs_rejects_it_as_expired() {
    let fx = Fixture::with_stand_in(|genlogs| {
        genlogs
            .with_access_lifetime(Duration::from_secs(3))
            .with_date_lag(Duration::from_secs(1))
    })
    .await;
    let genlogs = &fx.genlogs;
    // On the real clock, with the crate's defaults but for the minimum interval.
    let store = MemoryStore::new(fx.valid_tokens());
    let manager = TokenManager::builder(fx.client(REQUEST_TIMEOUT), store)
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

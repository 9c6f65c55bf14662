//! What hosts without a valid access token see while their Redis does not answer (paused with
//! `SIGSTOP`, or killed): a store error within twice the store's timeout, not after the outage;
//! and how soon they refresh once Redis answers again. A real `redis-server`, real managers over
//! separate `RedisStore`s (two hosts), the crate's GenLogs stand-in.
//!
//! The bounds asserted are generous guards against regressions; the latencies measured are
//! printed (`--nocapture`).

use std::time::{Duration, Instant};

use crate::support::defaults::{REDIS_TIMEOUT, RESTORE_GRACE};
use crate::support::fixture::{Fixture, API_KEY};
use crate::support::redis::RedisServer;
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{AuthClient, RedisStore, StoreError, TokenManager};

const GRANT: &str = "outage";
/// How long the outage lasts: longer than the store's timeout, as in the reported incident.
const OUTAGE: Duration = Duration::from_secs(6);
/// A call may take twice the store's timeout (a connection attempt and a command) and a
/// second of scheduling on a busy machine.
const ERROR_BOUND: Duration = REDIS_TIMEOUT
    .saturating_mul(2)
    .saturating_add(Duration::from_secs(1));
/// Once Redis answers again, the next refresh is due within 0.5 s; 2 s guards against a
/// regression without failing on a loaded machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(2);

/// The refresh request's total timeout: shorter than the default 30 s, since tokens written
/// back into an emptied store are not refreshed from before it has passed (plus 2 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The tests of this file run one at a time: their latencies are the point.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A stand-in with 2 s access tokens, the grant seeded in Redis, and two hosts (managers over
/// their own stores with the default timeouts, lease and lock wait) that hold a token.
async fn fleet(redis: &RedisServer) -> (MockGenLogs, Vec<TokenManager>) {
    let fixture =
        Fixture::with_stand_in(|genlogs| genlogs.with_access_lifetime(Duration::from_secs(2)))
            .await;
    fixture
        .seed(&RedisStore::new(&redis.url(), GRANT).unwrap())
        .await;
    let genlogs = fixture.genlogs;
    let hosts: Vec<TokenManager> = (0..2)
        .map(|_| {
            let client = AuthClient::builder(API_KEY)
                .with_base_url(genlogs.base_url())
                .with_timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap();
            TokenManager::builder(client, RedisStore::new(&redis.url(), GRANT).unwrap())
                .with_min_refresh_interval(Duration::from_millis(200))
                .build()
        })
        .collect();
    for host in &hosts {
        host.access_token().await.unwrap();
    }
    (genlogs, hosts)
}

/// Waits until no host has a valid access token left.
async fn until_expired(hosts: &[TokenManager]) {
    while hosts
        .iter()
        .any(|host| host.cached_access_token().is_some())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every host asks for a token until `outage_end` (measured from `since`); every call must fail
/// with a store error within [`ERROR_BOUND`]. Returns the slowest call.
async fn calls_during_outage(hosts: &[TokenManager], since: Instant) -> Duration {
    let mut slowest = Duration::ZERO;
    while since.elapsed() < OUTAGE {
        let calls = hosts.iter().map(|host| async move {
            let started = Instant::now();
            let result = tokio::time::timeout(Duration::from_secs(60), host.access_token())
                .await
                .expect("a call hung during the outage");
            (started.elapsed(), result)
        });
        for (took, result) in futures_util::future::join_all(calls).await {
            let error = result.expect_err("no token can be had during the outage");
            assert!(
                matches!(error.store_error(), Some(StoreError::Unreachable(_))),
                "{error:?}"
            );
            assert!(
                took <= ERROR_BOUND,
                "a caller waited {took:?} for its error"
            );
            slowest = slowest.max(took);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    slowest
}

/// Every host asks every 50 ms until one refresh has been made; returns how long after `since`.
async fn until_refreshed(
    genlogs: &MockGenLogs,
    hosts: &[TokenManager],
    since: Instant,
) -> Duration {
    let before = genlogs.refreshes();
    while genlogs.refreshes() == before {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "no refresh within a minute of Redis answering again"
        );
        for host in hosts {
            let _ = tokio::time::timeout(Duration::from_secs(10), host.access_token()).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    since.elapsed()
}

/// How a test takes Redis away and brings it back, and how soon a refresh must follow.
struct Outage {
    /// What the printed figures call it.
    name: &'static str,
    stop: fn(&mut RedisServer),
    /// What brings it back, and what the figures call that.
    back: (fn(&mut RedisServer), &'static str),
    /// How long after it is back the first refresh may take.
    recovery_bound: Duration,
}

/// A fleet holding tokens, then `outage`: every call fails fast while it lasts and until the
/// tokens expire, a refresh follows within its bound once Redis is back, every host is served
/// again and no refresh token was reused.
async fn fails_fast_and_recovers(outage: Outage) {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start();
    let (genlogs, hosts) = fleet(&redis).await;
    (outage.stop)(&mut redis);
    let stopped_at = Instant::now();
    until_expired(&hosts).await;
    let slowest = calls_during_outage(&hosts, stopped_at).await;

    let (back, after) = outage.back;
    back(&mut redis);
    let recovered = until_refreshed(&genlogs, &hosts, Instant::now()).await;
    eprintln!(
        "{} {OUTAGE:?}: slowest store error {slowest:?}; first refresh {recovered:?} after {after}",
        outage.name
    );
    assert!(
        recovered <= outage.recovery_bound,
        "refreshed {recovered:?} after {after}"
    );
    for host in &hosts {
        host.access_token().await.unwrap();
    }
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_fails_callers_fast_and_refreshes_right_after_it_resumes() {
    // Every `SET NX` sent during the pause runs on resume: leases no caller is waiting for.
    fails_fast_and_recovers(Outage {
        name: "SIGSTOP",
        stop: RedisServer::pause,
        back: (RedisServer::resume, "SIGCONT"),
        recovery_bound: RECOVERY_BOUND,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_fails_callers_fast_and_a_restarted_one_is_reseeded_at_once() {
    // A new, empty Redis: the hosts write back the tokens they hold. Nobody refreshes from
    // tokens written back into an empty store for the restore grace (at least the request
    // timeout + 2 s: a refresh in flight when the store lost its mark may still rotate), which
    // gives every host the chance to write back newer ones.
    let grace = RESTORE_GRACE.max(REQUEST_TIMEOUT + Duration::from_secs(2));
    fails_fast_and_recovers(Outage {
        name: "killed",
        stop: RedisServer::kill,
        back: (RedisServer::restart, "the restart"),
        recovery_bound: grace + RECOVERY_BOUND,
    })
    .await;
}

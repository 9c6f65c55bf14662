//! `RedisStore::sentinel` against real processes: a primary, one replica and three sentinels
//! (`redis-server --sentinel`) on loopback. The store saves and loads through the primary the
//! sentinels name, follows a `SENTINEL FAILOVER` and the death of the primary without being
//! rebuilt, and managers over it refresh without ever presenting a rotated token twice.
//!
//! The latencies measured are printed (`--nocapture`); the bounds asserted are generous guards.
//! Skipped, saying so, only where `redis-server` has no sentinel mode (`.ci/run` installs it).

mod support;

use std::time::{Duration, Instant};

use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{
    AuthClient, RedisStore, RefreshToken, StoreError, StoredTokens, TokenManager, TokenStore,
};
use support::sentinel::{SentinelSet, SERVICE};

const API_KEY: &str = "sentinel-test-key";
const GRANT: &str = "sentinel-grant";
/// The store's timeout: a dead primary costs a call at most twice this.
const TIMEOUT: Duration = Duration::from_secs(1);

/// The tests of this file run one at a time: each starts five Redis processes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The sentinels, or `None` (and a message) where sentinel mode is missing; under CI (`CI` set,
/// as `.ci/run` runs, which installs it) a missing sentinel mode fails instead of skipping.
fn sentinels() -> Option<SentinelSet> {
    if let Some(why) = SentinelSet::unavailable() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{why}: .ci/run installs Debian's `redis-sentinel` package"
        );
        eprintln!("SKIPPED: {why}; install Debian's `redis-sentinel` package (see .ci/run)");
        return None;
    }
    Some(SentinelSet::start())
}

fn store(set: &SentinelSet) -> RedisStore {
    let urls = set.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisStore::sentinel(&urls, SERVICE, GRANT)
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_lease(Duration::from_secs(10))
        .with_lock_wait(Duration::from_secs(10))
}

fn tokens(refresh: &str) -> StoredTokens {
    StoredTokens::from_refresh_token(RefreshToken::new(refresh))
}

/// A stand-in whose access tokens live `lifetime`, the grant seeded through `seed_store`.
async fn genlogs(lifetime: Duration, seed_store: &RedisStore) -> MockGenLogs {
    let genlogs = MockGenLogs::builder()
        .api_key(API_KEY)
        .access_lifetime(lifetime)
        .start()
        .await;
    seed_store
        .replace(&StoredTokens::from_refresh_token(
            genlogs.issue_tokens().refresh_token,
        ))
        .await
        .unwrap();
    genlogs
}

fn manager(genlogs: &MockGenLogs, store: RedisStore) -> TokenManager {
    let client = AuthClient::builder(API_KEY)
        .with_base_url(genlogs.base_url())
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    TokenManager::builder(client, store)
        .with_refresh_margin(Duration::from_secs(1))
        .with_refresh_jitter(0.0)
        .with_min_validity(Duration::from_millis(500))
        .with_min_refresh_interval(Duration::from_millis(200))
        .with_retry_cooldown(Duration::from_millis(200))
        .build()
}

/// Every host asks for a token every 50 ms until `genlogs` has made one more refresh than
/// `before` and every host holds a token; returns the time since `since`.
async fn until_refreshed(
    genlogs: &MockGenLogs,
    hosts: &[TokenManager],
    before: u64,
    since: Instant,
) -> Duration {
    loop {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "no refresh within a minute"
        );
        let mut served = 0;
        for host in hosts {
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_secs(10), host.access_token()).await
            {
                served += 1;
            }
        }
        if genlogs.refreshes() > before && served == hosts.len() {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_through_sentinel_saves_and_loads_on_the_primary() {
    let _serial = SERIAL.lock().await;
    let Some(set) = sentinels() else { return };
    let store = store(&set);
    let lock = store.lock().await.unwrap();
    assert_eq!(store.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
    store.release(lock).await;
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.refresh_token.expose_secret(), "rt-1");
    assert_eq!(loaded.version, 1);
    // Written on the primary the sentinels name, not somewhere else.
    assert_eq!(set.primary_port(), set.nodes[0].port());
    let on_primary: Option<String> = ::redis::cmd("HGET")
        .arg(store.tokens_key())
        .arg("version")
        .query_async(
            &mut ::redis::Client::open(set.nodes[0].url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(on_primary.as_deref(), Some("1"));
    let debug = format!("{store:?}");
    assert!(debug.contains(SERVICE), "{debug}");

    // An unknown service is an error that names neither URL nor anything secret.
    let urls = set.urls();
    let unknown = RedisStore::sentinel(&[urls[0].as_str()], "no-such-service", GRANT)
        .unwrap()
        .with_timeout(TIMEOUT);
    let error = unknown.load().await.unwrap_err();
    support::redis::assert_shows_none_of(&error, &[&urls[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sentinel_failover_the_same_store_and_manager_carry_on_with_zero_reuse() {
    let _serial = SERIAL.lock().await;
    let Some(set) = sentinels() else { return };
    let store = store(&set);
    let genlogs = genlogs(Duration::from_secs(6), &store).await;
    let host = manager(&genlogs, store);
    host.access_token().await.unwrap();
    // A second store instance, to probe the store's own latency across the failover.
    let probe = store_for_probe(&set);
    let lock = probe.lock().await.unwrap();
    probe.save(&tokens("probe-0"), &lock).await.unwrap();
    probe.release(lock).await;

    let (old, new) = (set.nodes[0].port(), set.nodes[1].port());
    let refreshes = genlogs.refreshes();
    let started = Instant::now();
    set.failover();
    // Meanwhile the same probe instance writes every 20 ms: its connection goes to the old
    // primary until that is demoted (closing its connections, or answering `READONLY` to a
    // write); then the store finds the new primary. The first write found on the new primary,
    // as primary, is when the store works again.
    let new_url = set.nodes[1].url();
    let probing = async {
        let new_node = ::redis::Client::open(new_url).unwrap();
        let mut version = 1;
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no write on the new primary"
            );
            let attempt = async {
                let lock = probe.lock().await?;
                let saved = probe
                    .save(
                        &StoredTokens {
                            version,
                            ..tokens("probe-n")
                        },
                        &lock,
                    )
                    .await;
                probe.release(lock).await;
                saved
            };
            match attempt.await {
                Ok(saved) => {
                    version = saved;
                    // A node being promoted closes its clients' connections: a new one each time.
                    let (primary, on_new) = match new_node.get_multiplexed_async_connection().await
                    {
                        Ok(mut raw) => {
                            let role: Vec<::redis::Value> = ::redis::cmd("ROLE")
                                .query_async(&mut raw)
                                .await
                                .unwrap_or_default();
                            let on_new: Option<String> = ::redis::cmd("HGET")
                                .arg(probe.tokens_key())
                                .arg("version")
                                .query_async(&mut raw)
                                .await
                                .unwrap_or_default();
                            let primary = matches!(role.first(),
                                Some(::redis::Value::BulkString(r)) if r == b"master");
                            (primary, on_new)
                        }
                        Err(_) => (false, None),
                    };
                    if primary && on_new == Some(saved.to_string()) {
                        return started.elapsed();
                    }
                }
                Err(StoreError::Conflict { found, .. }) => version = found,
                Err(error) => eprintln!("probe write during the failover: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let written = probing.await;
    let _set = tokio::task::spawn_blocking(move || {
        set.until_primary_is(new);
        set.until_replica(old);
        set
    })
    .await
    .unwrap();
    let failed_over = started.elapsed();
    let refreshed =
        until_refreshed(&genlogs, std::slice::from_ref(&host), refreshes, started).await;
    eprintln!(
        "SENTINEL FAILOVER: first write through the same store on the new primary \
         {written:?}; sentinels and both nodes agree {failed_over:?}; first refresh \
         {refreshed:?} (all from the command)"
    );
    assert_eq!(genlogs.reuses(), 0, "no refresh token presented twice");
    // The grant lives on the new primary, usable.
    let stored = probe
        .load_grant()
        .await
        .expect("the grant on the new primary");
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token.expose_secret()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_and_every_host_is_served_again_without_restart() {
    let _serial = SERIAL.lock().await;
    let Some(mut set) = sentinels() else { return };
    let seed = store(&set);
    let genlogs = genlogs(Duration::from_secs(4), &seed).await;
    let hosts: Vec<TokenManager> = (0..3).map(|_| manager(&genlogs, store(&set))).collect();
    for host in &hosts {
        host.access_token().await.unwrap();
    }
    // Right after a rotation was saved: wait for the next refresh, then kill the primary.
    let before = genlogs.refreshes();
    until_refreshed(&genlogs, &hosts, before, Instant::now()).await;
    let rotated = genlogs.refreshes();
    let killed = Instant::now();
    set.nodes[0].kill();

    let refreshed = until_refreshed(&genlogs, &hosts, rotated, killed).await;
    let promoted = set.primary_port();
    eprintln!(
        "primary killed: first refresh {refreshed:?} after the kill (new primary on port \
         {promoted}); refreshes {}, reuses {}",
        genlogs.refreshes(),
        genlogs.reuses()
    );
    assert_eq!(promoted, set.nodes[1].port(), "the replica was promoted");
    assert!(refreshed < Duration::from_secs(30), "{refreshed:?}");
    assert_eq!(genlogs.reuses(), 0, "no refresh token presented twice");
    let stored = support::redis::until_ok(|| seed.load())
        .await
        .expect("the grant on the new primary");
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token.expose_secret()));
}

/// A store on a grant of its own, for probing.
fn store_for_probe(set: &SentinelSet) -> ProbeStore {
    let urls = set.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    ProbeStore {
        probe: RedisStore::sentinel(&urls, SERVICE, "probe")
            .unwrap()
            .with_timeout(TIMEOUT),
        grant: RedisStore::sentinel(&urls, SERVICE, GRANT)
            .unwrap()
            .with_timeout(TIMEOUT),
    }
}

/// The probe's store, and a way to read the grant's.
struct ProbeStore {
    probe: RedisStore,
    grant: RedisStore,
}

impl ProbeStore {
    async fn load_grant(&self) -> Option<StoredTokens> {
        self.grant.load().await.unwrap()
    }
}

impl std::ops::Deref for ProbeStore {
    type Target = RedisStore;

    fn deref(&self) -> &RedisStore {
        &self.probe
    }
}

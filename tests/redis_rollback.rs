//! A Redis that goes back in time while the fleet holds newer tokens: restored from a snapshot
//! one or two rotations old (what a failover to a replica that missed the last writes looks
//! like), or restarted empty. Four hosts (managers over their own `RedisStore`s, each running the
//! keep-alive task, whose store watch writes newer tokens back), a real `redis-server`, and the
//! crate's GenLogs stand-in, which revokes the whole grant when a rotated refresh token comes
//! back (RFC 9700 §4.14) and counts it in `reuses()`.
//!
//! Figures are printed (`--nocapture`); the asserts are the guarantees: 0 reuse, every host
//! served again without a restart.

mod support;

use std::time::{Duration, Instant};

use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{
    AuthClient, KeepAlive, RedisStore, StoredTokens, TokenManager, TokenStore, STORE_WATCH_INTERVAL,
};
use support::redis::{redis_cli, RedisServer};

const API_KEY: &str = "rollback-test-key";
const GRANT: &str = "rollback";
const KEY: &str = "{genlogs:rollback}:tokens";
const HOSTS: usize = 4;

/// The tests of this file run one at a time: they measure time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Fleet {
    genlogs: MockGenLogs,
    hosts: Vec<TokenManager>,
    _keep_alive: Vec<KeepAlive>,
}

fn host(genlogs: &MockGenLogs, redis: &RedisServer) -> TokenManager {
    let client = AuthClient::builder(API_KEY)
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();
    TokenManager::builder(client, RedisStore::new(&redis.url(), GRANT).unwrap())
        .with_min_refresh_interval(Duration::from_millis(100))
        .build()
}

/// The grant seeded by an operator, every host holding its first refresh's tokens, each host
/// running its keep-alive task (and so the store watch).
async fn fleet(redis: &RedisServer) -> Fleet {
    let genlogs = MockGenLogs::builder().api_key(API_KEY).start().await;
    RedisStore::new(&redis.url(), GRANT)
        .unwrap()
        .replace(&StoredTokens::from_refresh_token(
            genlogs.issue_tokens().refresh_token,
        ))
        .await
        .unwrap();
    let hosts: Vec<TokenManager> = (0..HOSTS).map(|_| host(&genlogs, redis)).collect();
    for host in &hosts {
        host.access_token().await.unwrap();
    }
    let keep_alive = hosts.iter().map(TokenManager::keep_alive).collect();
    Fleet {
        genlogs,
        hosts,
        _keep_alive: keep_alive,
    }
}

/// The stored hash as Redis has it (`version`, `doc`): what a snapshot keeps.
fn snapshot(redis: &RedisServer) -> (String, String) {
    let field = |name: &str| {
        let out = redis_cli(&["-p", &redis.port().to_string(), "--raw", "HGET", KEY, name]);
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    };
    (field("version"), field("doc"))
}

/// Puts a snapshot back, as a restore or a failover to a replica that missed writes does.
fn restore(redis: &RedisServer, (version, doc): &(String, String)) {
    let port = redis.port().to_string();
    let out = redis_cli(&["-p", &port, "HSET", KEY, "version", version, "doc", doc]);
    assert!(out.status.success(), "{out:?}");
}

/// The refresh token the store holds (empty when it holds nothing).
async fn stored_refresh_token(redis: &RedisServer) -> String {
    let tokens = RedisStore::new(&redis.url(), GRANT)
        .unwrap()
        .load()
        .await
        .unwrap();
    tokens.map_or_else(String::new, |t| t.refresh_token.expose_secret().to_string())
}

/// Every host hands out an access token GenLogs accepts.
async fn every_host_is_served(fleet: &Fleet) {
    for host in &fleet.hosts {
        let token = host.access_token().await.unwrap();
        assert!(fleet.genlogs.is_valid_access_token(token.expose_secret()));
    }
}

/// Waits until the store holds `token` again; how long that took.
async fn until_stored(redis: &RedisServer, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    while stored_refresh_token(redis).await != token {
        assert!(
            started.elapsed() < limit,
            "no host wrote the newer tokens back within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_restored_one_or_two_rotations_back_gets_the_newest_tokens_and_nobody_reuses() {
    let _serial = SERIAL.lock().await;
    for back in [1, 2] {
        let redis = RedisServer::start();
        let fleet = fleet(&redis).await;
        let old = snapshot(&redis);
        for _ in 0..back {
            fleet.hosts[0].refresh_now().await.unwrap();
        }
        // Every host reads the newest document within a watch interval.
        tokio::time::sleep(STORE_WATCH_INTERVAL + Duration::from_millis(500)).await;
        let newest = stored_refresh_token(&redis).await;

        restore(&redis, &old);
        assert_ne!(stored_refresh_token(&redis).await, newest);
        let written_back = until_stored(&redis, &newest, STORE_WATCH_INTERVAL * 3).await;

        // Every host asks for a new token afterwards, one after the other: the first sends the
        // newest refresh token (after the restore grace), the others adopt what it saved.
        for host in &fleet.hosts {
            host.refresh_now().await.unwrap();
        }
        every_host_is_served(&fleet).await;
        println!(
            "restored {back} rotation(s) back: newest tokens written back after {written_back:?}; \
             reuses {}; refreshes {}",
            fleet.genlogs.reuses(),
            fleet.genlogs.refreshes()
        );
        assert_eq!(fleet.genlogs.reuses(), 0, "{back} rotation(s) back");
        assert!(
            fleet.genlogs.refreshes() > 1 + back,
            "a refresh after the restore"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_gets_the_tokens_back_and_nobody_reuses() {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start();
    let fleet = fleet(&redis).await;
    fleet.hosts[1].refresh_now().await.unwrap();
    tokio::time::sleep(STORE_WATCH_INTERVAL + Duration::from_millis(500)).await;
    let newest = stored_refresh_token(&redis).await;

    redis.kill();
    redis.restart();
    let written_back = until_stored(&redis, &newest, STORE_WATCH_INTERVAL * 3).await;
    for host in &fleet.hosts {
        host.refresh_now().await.unwrap();
    }
    every_host_is_served(&fleet).await;
    println!(
        "restarted empty: tokens written back after {written_back:?}; reuses {}",
        fleet.genlogs.reuses()
    );
    assert_eq!(fleet.genlogs.reuses(), 0);
}

/// What protects a host started right after a restore, which knows nothing newer: the watch of
/// the hosts that do writes the newer tokens back within an interval. A new host that refreshes
/// before that sends the restored (rotated-away) token; `with_min_replicas` (`WAIT`) keeps the
/// store from going back in the first place. Measured here for a new host refreshing at once
/// and after the watch interval; only the latter is a guarantee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_started_after_a_restore_is_safe_once_the_watch_wrote_the_newer_tokens_back() {
    let _serial = SERIAL.lock().await;
    let mut burned_at_once = 0;
    let trials = 3;
    for delay in [
        Duration::ZERO,
        STORE_WATCH_INTERVAL + Duration::from_secs(1),
    ] {
        for _ in 0..trials {
            let redis = RedisServer::start();
            let fleet = fleet(&redis).await;
            let old = snapshot(&redis);
            fleet.hosts[0].refresh_now().await.unwrap();
            tokio::time::sleep(STORE_WATCH_INTERVAL + Duration::from_millis(500)).await;
            restore(&redis, &old);
            tokio::time::sleep(delay).await;
            let newcomer = host(&fleet.genlogs, &redis);
            let _ = newcomer.refresh_now().await;
            if delay.is_zero() {
                burned_at_once += fleet.genlogs.reuses().min(1);
            } else {
                assert_eq!(
                    fleet.genlogs.reuses(),
                    0,
                    "a new host {delay:?} after the restore"
                );
            }
        }
    }
    println!(
        "a new host refreshing at once after a restore burned the grant in {burned_at_once} of \
         {trials} trials; after {:?}: 0 of {trials}",
        STORE_WATCH_INTERVAL + Duration::from_secs(1)
    );
}

//! A Redis that goes back in time while the fleet holds newer tokens: restarted from a snapshot
//! (an RDB file) one or two rotations old (what a restored backup, or a failover to a replica
//! that missed the last writes, looks like), or restarted empty. Four hosts (managers over their own `RedisStore`s, each running the
//! keep-alive task, whose store watch writes newer tokens back), a real `redis-server`, and the
//! crate's GenLogs stand-in, which revokes the whole grant when a rotated refresh token comes
//! back (RFC 9700 §4.14) and counts it in `reuses()`.
//!
//! Two of the hosts have wall clocks an hour ahead and an hour behind. Figures are printed
//! (`--nocapture`); the asserts are the guarantees: 0 reuse, every host served again without a
//! restart, and an operator's re-seed followed.

use std::time::{Duration, Instant};

use crate::support::defaults::STORE_WATCH_INTERVAL;
use crate::support::fixture::{Fixture, API_KEY};
use crate::support::redis::{redis_cli, RedisServer};
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{manager::KeepAlive, AuthClient, RedisStore, TokenManager, TokenStore};

const GRANT: &str = "rollback";
const KEY: &str = "{genlogs:rollback}:tokens";
const HOSTS: usize = 4;

/// The tests of this file run one at a time: they measure time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Fleet {
    genlogs: MockGenLogs,
    hosts: Vec<TokenManager>,
    keep_alive: Vec<KeepAlive>,
}

/// The system clock moved by a fixed offset: a host whose wall clock is wrong.
#[derive(Debug)]
struct Skewed {
    system: genlogs_auth::clock::SystemClock,
    offset: chrono::Duration,
}

impl genlogs_auth::clock::Clock for Skewed {
    fn monotonic(&self) -> Duration {
        self.system.monotonic()
    }

    fn utc_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.system.utc_now() + self.offset
    }
}

/// Host `index`: hosts 1 and 2 have wall clocks an hour ahead and behind.
fn host(genlogs: &MockGenLogs, redis: &RedisServer, index: usize) -> TokenManager {
    // A 3 s request timeout: written-back tokens are not refreshed from for 5 s (the request
    // timeout + 2 s), rather than 32 s with the default timeout.
    let client = AuthClient::builder(API_KEY)
        .with_base_url(genlogs.base_url())
        .with_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let hours = [0, 1, -1, 0][index % 4];
    TokenManager::builder(client, RedisStore::new(&redis.url(), GRANT).unwrap())
        .with_min_refresh_interval(Duration::from_millis(100))
        .with_clock(std::sync::Arc::new(Skewed {
            system: genlogs_auth::clock::SystemClock::new(),
            offset: chrono::Duration::hours(hours),
        }))
        .build()
}

/// The grant seeded by an operator, every host holding its first refresh's tokens, each host
/// running its keep-alive task (and so the store watch).
async fn fleet(redis: &RedisServer) -> Fleet {
    let fixture = Fixture::new().await;
    fixture
        .seed(&RedisStore::new(&redis.url(), GRANT).unwrap())
        .await;
    let genlogs = fixture.genlogs;
    let hosts: Vec<TokenManager> = (0..HOSTS).map(|i| host(&genlogs, redis, i)).collect();
    for host in &hosts {
        host.access_token().await.unwrap();
    }
    let keep_alive = hosts.iter().map(TokenManager::keep_alive).collect();
    Fleet {
        genlogs,
        hosts,
        keep_alive,
    }
}

/// The stored hash's `version` and `doc`, to put back into the running server by hand.
fn hash_fields(redis: &RedisServer) -> (String, String) {
    let field = |name: &str| {
        let out = redis_cli(&["-p", &redis.port().to_string(), "--raw", "HGET", KEY, name]);
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    };
    (field("version"), field("doc"))
}

/// Puts older fields back into the running server (the same instance: nothing says the store
/// went back but the document itself).
fn overwrite_in_place(redis: &RedisServer, (version, doc): &(String, String)) {
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
    tokens.map_or_else(String::new, |t| {
        t.refresh_token().expose_secret().to_string()
    })
}

/// Every host hands out an access token GenLogs accepts.
async fn every_host_is_served(fleet: &Fleet) {
    for host in &fleet.hosts {
        let token = host.access_token().await.unwrap();
        assert!(fleet.genlogs.is_valid_access_token(token.expose_secret()));
    }
}

/// Waits a watch interval, within which every host reads the newest document; returns the
/// refresh token stored then.
async fn newest_once_read(redis: &RedisServer) -> String {
    tokio::time::sleep(STORE_WATCH_INTERVAL + Duration::from_millis(500)).await;
    stored_refresh_token(redis).await
}

/// Waits until the store holds `newest` again (a host wrote it back, within three watch
/// intervals); then every host asks for a new token, one after the other (the first sends the
/// newest refresh token after the restore grace, the others adopt what it saved), and is
/// served. Returns how long the write-back took.
async fn written_back_and_served(redis: &RedisServer, fleet: &Fleet, newest: &str) -> Duration {
    let started = Instant::now();
    let limit = STORE_WATCH_INTERVAL * 3;
    while stored_refresh_token(redis).await != newest {
        assert!(
            started.elapsed() < limit,
            "no host wrote the newer tokens back within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written_back = started.elapsed();
    for host in &fleet.hosts {
        host.refresh_now().await.unwrap();
    }
    every_host_is_served(fleet).await;
    written_back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_restored_one_or_two_rotations_back_gets_the_newest_tokens_and_nobody_reuses() {
    let _serial = SERIAL.lock().await;
    for back in [1, 2] {
        let mut redis = RedisServer::start_with(&[]);
        let fleet = fleet(&redis).await;
        let old = redis.snapshot();
        for _ in 0..back {
            fleet.hosts[0].refresh_now().await.unwrap();
        }
        let newest = newest_once_read(&redis).await;

        redis.restart_from(&old);
        let written_back = written_back_and_served(&redis, &fleet, &newest).await;
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
        operator_reseeds(&redis, &fleet).await;
        assert_eq!(fleet.genlogs.reuses(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_gets_the_tokens_back_and_nobody_reuses() {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start();
    let fleet = fleet(&redis).await;
    fleet.hosts[1].refresh_now().await.unwrap();
    let newest = newest_once_read(&redis).await;

    redis.kill();
    redis.restart();
    let written_back = written_back_and_served(&redis, &fleet, &newest).await;
    println!(
        "restarted empty: tokens written back after {written_back:?}; reuses {}",
        fleet.genlogs.reuses()
    );
    assert_eq!(fleet.genlogs.reuses(), 0);
}

/// What protects a host started right after a restore, which knows nothing newer than the
/// restored document: the store answers from another server instance than the one that saved
/// the document (Redis's `run_id`), so the host writes it back with the restore grace instead of
/// refreshing, while the hosts holding the newer tokens write them back within a watch interval.
/// Fields put back by hand into the running server (the same instance) give no such sign: there
/// only the watch protects, and a new host refreshing at once may burn the grant (measured, not
/// a guarantee). `with_min_replicas` keeps a failover from going back in the first place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_started_right_after_a_restore_never_sends_the_restored_token() {
    let _serial = SERIAL.lock().await;
    let trials = 3;
    for _ in 0..trials {
        let mut redis = RedisServer::start_with(&[]);
        let fleet = fleet(&redis).await;
        let old = redis.snapshot();
        fleet.hosts[0].refresh_now().await.unwrap();
        tokio::time::sleep(STORE_WATCH_INTERVAL + Duration::from_millis(500)).await;
        redis.restart_from(&old);
        let newcomer = host(&fleet.genlogs, &redis, 0);
        let refreshed = newcomer.refresh_now().await;
        assert_eq!(
            fleet.genlogs.reuses(),
            0,
            "a new host at once after a restart from a backup"
        );
        assert!(refreshed.is_ok(), "{refreshed:?}");
    }
    let mut burned_at_once = 0;
    for delay in [
        Duration::ZERO,
        STORE_WATCH_INTERVAL + Duration::from_secs(1),
    ] {
        for _ in 0..trials {
            let redis = RedisServer::start();
            let fleet = fleet(&redis).await;
            let old = hash_fields(&redis);
            fleet.hosts[0].refresh_now().await.unwrap();
            tokio::time::sleep(STORE_WATCH_INTERVAL + Duration::from_millis(500)).await;
            overwrite_in_place(&redis, &old);
            tokio::time::sleep(delay).await;
            let newcomer = host(&fleet.genlogs, &redis, 0);
            let _ = newcomer.refresh_now().await;
            if delay.is_zero() {
                burned_at_once += fleet.genlogs.reuses().min(1);
            } else {
                assert_eq!(
                    fleet.genlogs.reuses(),
                    0,
                    "a new host {delay:?} after the fields were put back"
                );
            }
        }
    }
    println!(
        "a new host refreshing at once after a restart from a backup burned the grant in 0 of \
         {trials} trials; after fields put back by hand into the running server: {burned_at_once} \
         of {trials} at once, 0 of {trials} after {:?}",
        STORE_WATCH_INTERVAL + Duration::from_secs(1)
    );
}

/// An operator seeds new tokens (`genlogs-auth init --force` does `replace`): every host
/// follows them, whatever it held, and is served from them.
async fn operator_reseeds(redis: &RedisServer, fleet: &Fleet) {
    let seeded = fleet.genlogs.issue_tokens();
    RedisStore::new(&redis.url(), GRANT)
        .unwrap()
        .replace(&seeded)
        .await
        .unwrap();
    let started = Instant::now();
    for host in &fleet.hosts {
        // Within a watch interval every host reads the operator's generation.
        loop {
            let _ = host.refresh_now().await;
            if host
                .access_token()
                .await
                .is_ok_and(|token| fleet.genlogs.is_valid_access_token(token.expose_secret()))
            {
                break;
            }
            assert!(
                started.elapsed() < STORE_WATCH_INTERVAL * 5,
                "a host did not follow the operator"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_while_hosts_hold_different_versions_gets_the_newest() {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start();
    let mut fleet = fleet(&redis).await;
    // Host 3 stops watching and falls behind: it holds the first tokens only.
    drop(fleet.keep_alive.pop());
    for _ in 0..2 {
        fleet.hosts[0].refresh_now().await.unwrap();
    }
    let newest = newest_once_read(&redis).await;

    redis.kill();
    redis.restart();
    // The stale host writes back first (it needs a refresh at once); the newest still wins.
    let _ = fleet.hosts[3].refresh_now().await;
    let written_back = written_back_and_served(&redis, &fleet, &newest).await;
    println!(
        "restarted empty, hosts two rotations apart: the newest written back after \
         {written_back:?}; reuses {}",
        fleet.genlogs.reuses()
    );
    assert_eq!(fleet.genlogs.reuses(), 0);
    operator_reseeds(&redis, &fleet).await;
    assert_eq!(fleet.genlogs.reuses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_dead_document_does_not_stop_a_fleet_holding_live_tokens() {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start_with(&[]);
    let fleet = fleet(&redis).await;
    // The first grant dies: GenLogs revokes it, a host's 401 marks it dead for everyone.
    fleet.genlogs.revoke_all();
    // (A first call may adopt a rotation another host made meanwhile: the host whose clock runs
    // an hour ahead finds every adopted access token expired and refreshes.)
    let mut died = None;
    for _ in 0..5 {
        if let Err(error) = fleet.hosts[0].refresh_now().await {
            died = Some(error);
            break;
        }
    }
    assert!(died.expect("the revoked grant dies").needs_new_tokens());
    tokio::time::sleep(STORE_WATCH_INTERVAL + Duration::from_millis(500)).await;
    let dead = redis.snapshot();
    // An operator re-seeds; the fleet follows and refreshes once.
    operator_reseeds(&redis, &fleet).await;
    fleet.hosts[1].refresh_now().await.unwrap();
    let newest = newest_once_read(&redis).await;

    // The store goes back to the dead document of the older generation.
    redis.restart_from(&dead);
    let written_back = written_back_and_served(&redis, &fleet, &newest).await;
    println!(
        "rolled back to a dead document: live tokens written back after {written_back:?}; \
         reuses {}",
        fleet.genlogs.reuses()
    );
    assert_eq!(fleet.genlogs.reuses(), 0);
}

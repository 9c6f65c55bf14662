//! `RedisStore::sentinel` against real processes: a primary, one replica and three sentinels
//! (`redis-server --sentinel`) on loopback. The store saves and loads through the primary the
//! sentinels name, follows a `SENTINEL FAILOVER` and the death of the primary without being
//! rebuilt, and managers over it refresh without ever presenting a rotated token twice.
//!
//! The last two tests run 4 host processes (this test binary, re-run on its ignored `child`
//! test) sharing the grant through the sentinels, one killing the primary right after a
//! rotation was saved, one asking the sentinels for a failover.
//!
//! The latencies measured are printed (`--nocapture`); the bounds asserted are generous guards.
//! Skipped, saying so, only where `redis-server` has no sentinel mode (`.ci/run` installs it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::child::spawn_child;
use crate::support::fixture::{Fixture, API_KEY};
use crate::support::sentinel::{SentinelSet, SERVICE};
use crate::support::store::tokens;
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{AuthClient, RedisStore, StoreError, StoredTokens, TokenManager, TokenStore};

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

/// A stand-in whose access tokens live `lifetime`, the grant seeded through `seed_store`.
async fn genlogs(lifetime: Duration, seed_store: &RedisStore) -> MockGenLogs {
    let fixture = Fixture::with_stand_in(|genlogs| genlogs.with_access_lifetime(lifetime)).await;
    fixture.seed(seed_store).await;
    fixture.genlogs
}

fn manager(genlogs: &MockGenLogs, store: RedisStore) -> TokenManager {
    manager_at(&genlogs.base_url(), store)
}

fn manager_at(base_url: &str, store: RedisStore) -> TokenManager {
    let client = AuthClient::builder(API_KEY)
        .with_base_url(base_url)
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
    assert_eq!(loaded.refresh_token().expose_secret(), "rt-1");
    assert_eq!(loaded.version(), 1);
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
    crate::support::leak::assert_no_leak(&error, &[&urls[0]]);
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
                    .save(&tokens("probe-n").with_version(version), &lock)
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
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
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

/// How many host processes the fleet tests run.
const HOSTS: usize = 4;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Host processes sharing the grant through the sentinels, each asking for a token every
/// 100 ms and reporting on stdout (`SERVED <unix ms>`, `FAILED <unix ms>`).
struct Fleet {
    children: Vec<std::process::Child>,
    /// When each host was last served, in ms since 1970.
    served: Arc<Mutex<Vec<u64>>>,
    stop: PathBuf,
}

impl Fleet {
    fn start(set: &SentinelSet, genlogs: &MockGenLogs, name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sentinel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stop = dir.join("stop");
        let env = [
            ("GENLOGS_TEST_BASE_URL", genlogs.base_url()),
            ("GENLOGS_TEST_SENTINELS", set.urls().join(",")),
            ("GENLOGS_TEST_STOP", stop.display().to_string()),
        ];
        let served = Arc::new(Mutex::new(vec![0; HOSTS]));
        let children = (0..HOSTS)
            .map(|host| {
                let mut child = spawn_child(module_path!(), "host", &env);
                let stdout = child.stdout.take().unwrap();
                let served = Arc::clone(&served);
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if let Some((_, at)) = line.split_once("SERVED ") {
                            served.lock().unwrap()[host] = at.trim().parse().unwrap();
                        }
                    }
                });
                child
            })
            .collect();
        Fleet {
            children,
            served,
            stop,
        }
    }

    /// Waits until every host was served after `since` (ms since 1970).
    async fn until_all_served_after(&self, since: u64) {
        let started = Instant::now();
        while self.served.lock().unwrap().iter().any(|&at| at <= since) {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "a host was not served again: {:?} (since {since})",
                self.served.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every host; each must exit cleanly.
    fn stop(self) {
        std::fs::write(&self.stop, b"stop").unwrap();
        for mut child in self.children {
            assert!(child.wait().unwrap().success(), "a host process failed");
        }
    }
}

/// Waits for `genlogs` to rotate past `before` refreshes and for the rotation to be saved in
/// the store (acknowledged); returns the refresh count then.
async fn until_rotation_saved(genlogs: &MockGenLogs, store: &RedisStore, before: u64) -> u64 {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(60), "no rotation");
        let refreshes = genlogs.refreshes();
        if refreshes > before {
            if let Ok(Some(stored)) = store.load().await {
                if genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()) {
                    return refreshes;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The first refresh after `rotated` refreshes, in ms since 1970.
async fn until_next_refresh(genlogs: &MockGenLogs, rotated: u64) -> u64 {
    let started = Instant::now();
    while genlogs.refreshes() <= rotated {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no refresh after the failover"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    unix_ms()
}

/// Runs `fault` on a fleet of [`HOSTS`] processes right after a rotation was saved, then checks
/// that every host is served again, with no refresh token ever presented twice.
async fn fleet_survives(name: &str, fault: impl FnOnce(&mut SentinelSet)) {
    let Some(mut set) = sentinels() else { return };
    let seed = store(&set);
    let genlogs = genlogs(Duration::from_secs(4), &seed).await;
    let fleet = Fleet::start(&set, &genlogs, name);
    fleet.until_all_served_after(0).await;
    let rotated = until_rotation_saved(&genlogs, &seed, genlogs.refreshes()).await;
    let faulted_at = unix_ms();
    let faulted = Instant::now();
    fault(&mut set);
    let refreshed_at = until_next_refresh(&genlogs, rotated).await;
    fleet.until_all_served_after(refreshed_at).await;
    let all_served = faulted.elapsed();
    eprintln!(
        "{name}, {HOSTS} host processes: next successful refresh {:?} after the fault, every \
         host served again {all_served:?} after it; refreshes {}, reuses {}",
        Duration::from_millis(refreshed_at - faulted_at),
        genlogs.refreshes(),
        genlogs.reuses()
    );
    fleet.stop();
    assert_eq!(genlogs.reuses(), 0, "no refresh token presented twice");
    let stored = crate::support::redis::until_ok(|| seed.load())
        .await
        .expect("the grant on the new primary");
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_host_processes_survive_the_primary_killed_right_after_a_rotation() {
    let _serial = SERIAL.lock().await;
    fleet_survives("primary killed", |set| set.nodes[0].kill()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_host_processes_survive_a_sentinel_failover_right_after_a_rotation() {
    let _serial = SERIAL.lock().await;
    fleet_survives("SENTINEL FAILOVER", |set| set.failover()).await;
}

/// A host process of [`Fleet`] (run by `spawn_child`).
#[test]
#[ignore = "run by the fleet tests as a child process"]
fn child() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let urls = var("GENLOGS_TEST_SENTINELS");
        let urls: Vec<&str> = urls.split(',').collect();
        let store = RedisStore::sentinel(&urls, SERVICE, GRANT)
            .unwrap()
            .with_timeout(TIMEOUT)
            .with_lease(Duration::from_secs(10))
            .with_lock_wait(Duration::from_secs(10));
        let manager = manager_at(&var("GENLOGS_TEST_BASE_URL"), store);
        let stop = PathBuf::from(var("GENLOGS_TEST_STOP"));
        while !stop.exists() {
            match tokio::time::timeout(Duration::from_secs(10), manager.access_token()).await {
                Ok(Ok(_)) => println!("SERVED {}", unix_ms()),
                Ok(Err(error)) => println!("FAILED {} {error}", unix_ms()),
                Err(_) => println!("FAILED {} timed out", unix_ms()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

//! `RedisStore::with_min_replicas` against a real primary and replica (`redis-server
//! --replicaof`): a save counts only once the replica acknowledged it; a paused or killed replica
//! makes it `StoreError::NotDurable` within about the timeout, and a `TokenManager` over such a
//! store sends no refresh, keeps serving, and saves once the replica is back.

use std::time::{Duration, Instant};

use crate::support::fixture::Fixture;
use crate::support::redis::{assert_not_durable, redis_cli, signal, RedisServer};
use crate::support::store::tokens;
use genlogs_auth::testing::{MockGenLogs, REFRESH_PATH};
use genlogs_auth::{
    AuthClient, RedisStore, StoreError, StoredTokens, TokenError, TokenManager, TokenStore,
};

/// How long a save waits for the replica: long enough that a replica starved of CPU on a
/// loaded machine still acknowledges in time (at 300 ms, a run with 8 test threads saw saves fail
/// as not durable with the replica up and in sync).
const WAIT: Duration = Duration::from_secs(2);

/// The tests of this file run one at a time: each starts two servers, and the timing assertions
/// are about the WAIT, not about a machine busy with another test's servers.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn durable_store(primary: &RedisServer, replicas: usize) -> RedisStore {
    RedisStore::new(&primary.url(), "grant-1")
        .unwrap()
        .with_lock_wait(Duration::from_secs(10))
        .with_min_replicas(replicas, WAIT)
}

/// The version and refresh token `server` holds (a replica answers reads).
async fn held_by(server: &RedisServer, store: &RedisStore) -> (Option<String>, Option<String>) {
    let (version, document): (Option<String>, Option<String>) = server
        .query(
            ::redis::cmd("HMGET")
                .arg(store.tokens_key())
                .arg("version")
                .arg("doc"),
        )
        .await;
    let refresh = document.map(|document| {
        let value: serde_json::Value = serde_json::from_str(&document).unwrap();
        value["refresh_token"].as_str().unwrap().to_string()
    });
    (version, refresh)
}

/// Saves `refresh` over whatever the store holds now, under a fresh lease.
async fn save_over(store: &RedisStore, refresh: &str) -> Result<u64, StoreError> {
    crate::support::store::save_over(store, &tokens(refresh)).await
}

#[tokio::test]
async fn a_save_waits_for_the_replica_and_fails_as_not_durable_without_it() {
    let _serial = SERIAL.lock().await;
    let primary = RedisServer::start();
    let mut replica = RedisServer::start_replica_of(&primary, &[]);
    let store = durable_store(&primary, 1);

    // Acknowledged: the replica holds it the moment the save returns.
    assert_eq!(save_over(&store, "rt-1").await.unwrap(), 1);
    assert_eq!(
        held_by(&replica, &store).await,
        (Some("1".into()), Some("rt-1".into()))
    );

    // What the wait costs on loopback with the replica up (printed, not asserted: a shared
    // machine's timings are noise), on a grant of its own: lock, load, save, release per round.
    let plain = RedisStore::new(&primary.url(), "grant-bench").unwrap();
    let durable = RedisStore::new(&primary.url(), "grant-bench")
        .unwrap()
        .with_min_replicas(1, WAIT);
    for (label, store) in [
        ("plain", &plain),
        ("min_replicas(1)", &durable),
        ("plain", &plain),
    ] {
        let rounds = 200;
        let started = Instant::now();
        for _ in 0..rounds {
            save_over(store, "rt-bench").await.unwrap();
        }
        eprintln!(
            "{label}: {:?} per lock+load+save+release",
            started.elapsed() / rounds
        );
    }

    // Paused: the primary takes the write, the replica never acknowledges it.
    replica.pause();
    let started = Instant::now();
    let error = save_over(&store, "rt-2").await.unwrap_err();
    let took = started.elapsed();
    assert_not_durable(&error, 0, 1);
    // Not before the WAIT, and not after anything longer (the lock wait is 10 s).
    assert!(
        took >= WAIT && took < WAIT + Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        error.to_string(),
        "the tokens were written but only 0 of the 1 replicas required acknowledged them in \
         time; the save counts as failed (a failover could lose it)"
    );
    eprintln!("a save with the replica paused failed after {took:?} (WAIT timeout {WAIT:?})");

    // Back: a save over what the primary holds (its own unacknowledged write) succeeds, and the
    // replica has everything.
    replica.resume();
    replica.wait_in_sync();
    assert_eq!(save_over(&store, "rt-3").await.unwrap(), 3);
    assert_eq!(
        held_by(&replica, &store).await,
        (Some("3".into()), Some("rt-3".into()))
    );

    // Killed: the same, until a new replica has synced.
    replica.kill();
    assert_not_durable(&save_over(&store, "rt-4").await.unwrap_err(), 0, 1);
    replica.restart();
    replica.wait_in_sync();
    assert_eq!(save_over(&store, "rt-5").await.unwrap(), 5);

    // More replicas required than there are: one acknowledgement is not enough.
    let two = durable_store(&primary, 2);
    assert_not_durable(&save_over(&two, "rt-6").await.unwrap_err(), 1, 2);
    // `replace` is a save too.
    assert!(matches!(
        two.replace(&tokens("rt-7")).await,
        Err(StoreError::NotDurable { .. })
    ));
    assert_eq!(store.replace(&tokens("rt-8")).await.unwrap(), 8);
}

#[tokio::test]
async fn an_fsync_requirement_uses_waitaof_where_known_and_wait_alone_before_redis_7_2() {
    let _serial = SERIAL.lock().await;
    let primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(
        &primary,
        &["--appendonly", "yes", "--appendfsync", "always"],
    );
    let store = durable_store(&primary, 1).with_replica_fsync();
    // Redis 7.2 or later: WAITAOF counts the replica's fsync. Older: it answers "unknown
    // command", once; both saves then count on WAIT.
    for (refresh, version) in [("rt-1", 1), ("rt-2", 2), ("rt-3", 3)] {
        assert_eq!(save_over(&store, refresh).await.unwrap(), version);
    }
    assert_eq!(held_by(&replica, &store).await.0.as_deref(), Some("3"));
}

fn manager(genlogs: &MockGenLogs, store: RedisStore) -> TokenManager {
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    TokenManager::builder(client, store)
        .with_refresh_jitter(0.0)
        .with_retry_cooldown(Duration::from_millis(100))
        .with_min_refresh_interval(Duration::from_millis(100))
        .build()
}

/// The stand-in and its first tokens (an access token included), saved on `primary` through a
/// durable store (returned, to read them back), and a manager over a durable store of its own.
async fn seeded(primary: &RedisServer) -> (MockGenLogs, StoredTokens, RedisStore, TokenManager) {
    let genlogs = Fixture::new().await.genlogs;
    let seeded = genlogs.issue_tokens();
    let store = durable_store(primary, 1);
    store.replace(&seeded).await.unwrap();
    let manager = manager(&genlogs, durable_store(primary, 1));
    (genlogs, seeded, store, manager)
}

/// Makes `genlogs` stop `replica` (`SIGSTOP`) when a refresh request arrives, and process the
/// request as usual; returns the replica's pid.
fn stop_on_refresh(genlogs: &MockGenLogs, replica: &RedisServer) -> u32 {
    let replica_pid = replica.pid();
    genlogs.fail_with(move |request| {
        if request.path() == REFRESH_PATH {
            signal(replica_pid, "-STOP");
        }
        None
    });
    replica_pid
}

/// Calls `refresh_now` until it succeeds (a cooldown after the failure may still run).
async fn refreshed(manager: &TokenManager) -> genlogs_auth::AccessToken {
    let started = Instant::now();
    loop {
        match manager.refresh_now().await {
            Ok(token) => return (*token).clone(),
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "never refreshed: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_manager_sends_nothing_while_its_mark_is_not_durable_and_recovers() {
    let _serial = SERIAL.lock().await;
    let primary = RedisServer::start();
    let mut replica = RedisServer::start_replica_of(&primary, &[]);
    let (genlogs, seeded, store, manager) = seeded(&primary).await;
    let served = manager.access_token().await.unwrap();
    assert_eq!(
        Some(served.expose_secret()),
        seeded.access_token().as_ref().map(|t| t.expose_secret())
    );

    replica.pause();
    let error = manager.refresh_now().await.unwrap_err();
    match &error {
        TokenError::Store(cause) => {
            assert!(
                matches!(**cause, StoreError::NotDurable { .. }),
                "{cause:?}"
            );
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    // The mark before the send was not durable: nothing was sent, and the cached token is
    // still served.
    assert_eq!(genlogs.refresh_requests(), 0);
    assert_eq!(
        manager.access_token().await.unwrap().expose_secret(),
        served.expose_secret()
    );
    assert!(manager.unsaved_tokens().is_none());

    replica.resume();
    replica.wait_in_sync();
    let fresh = refreshed(&manager).await;
    assert_ne!(fresh.expose_secret(), served.expose_secret());
    assert_eq!(genlogs.refresh_requests(), 1);
    assert_eq!(genlogs.reuses(), 0);
    let (_, on_replica) = held_by(&replica, &store).await;
    assert!(genlogs.is_valid_refresh_token(&on_replica.unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_save_is_not_durable_is_kept_and_saved_once_the_replica_is_back() {
    let _serial = SERIAL.lock().await;
    let primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(&primary, &[]);
    let (genlogs, _, store, manager) = seeded(&primary).await;
    let served = manager.access_token().await.unwrap();

    // The replica stops while GenLogs rotates: the mark before the send was acknowledged, the
    // rotation after it cannot be.
    let replica_pid = stop_on_refresh(&genlogs, &replica);
    // The renewal happened (GenLogs rotated) but is not saved: `refresh_now` says why.
    let answered = manager.refresh_now().await;
    genlogs.clear_faults();
    assert!(
        matches!(
            answered.as_ref().map_err(|e| e.store_error()),
            Err(Some(StoreError::NotDurable { .. }))
        ),
        "{answered:?}"
    );
    assert_eq!(genlogs.refresh_requests(), 1);
    let unsaved = manager
        .unsaved_tokens()
        .expect("the rotated tokens, kept in memory");
    assert!(genlogs.is_valid_refresh_token(unsaved.refresh_token().expose_secret()));
    // Until they are durable, the token from before the rotation is served.
    assert_eq!(
        manager.access_token().await.unwrap().expose_secret(),
        served.expose_secret()
    );

    // The primary took the write that was not acknowledged: the retry's compare-and-set reads
    // it back (the same tokens, so they are ours) and saves over it.
    let (written, on_primary) = held_by(&primary, &store).await;
    assert_eq!(
        on_primary.as_deref(),
        Some(unsaved.refresh_token().expose_secret())
    );

    signal(replica_pid, "-CONT");
    replica.wait_in_sync();
    // The retry saves over the primary's unacknowledged copy of the same tokens.
    manager.flush().await.unwrap();
    assert!(manager.unsaved_tokens().is_none());
    assert_eq!(genlogs.refresh_requests(), 1);
    let (saved, on_replica) = held_by(&replica, &store).await;
    assert_eq!(
        on_replica.as_deref(),
        Some(unsaved.refresh_token().expose_secret())
    );
    let number = |version: Option<String>| version.unwrap().parse::<u64>().unwrap();
    assert_eq!(number(saved), number(written) + 1);
}

/// Issue 14: a lease ran out while its holder held the only valid tokens after a failed save.
/// The holder now extends its lease in the background and retries the save until it succeeds;
/// meanwhile no other host gets the lease or sends anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_outlives_a_pending_save_and_the_save_is_retried_in_the_background() {
    let _serial = SERIAL.lock().await;
    let primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(&primary, &[]);
    let genlogs = Fixture::new().await.genlogs;
    let store = durable_store(&primary, 1);
    store.replace(&genlogs.issue_tokens()).await.unwrap();
    // A 1 s request timeout: the lease the manager keeps before a send is 1 s + 2 s + 2 s.
    let host = |lock_wait: Duration| {
        let client = AuthClient::builder(genlogs.api_key())
            .with_base_url(genlogs.base_url())
            .with_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let store = durable_store(&primary, 1)
            .with_lease(Duration::from_secs(3))
            .with_lock_wait(lock_wait);
        TokenManager::builder(client, store)
            .with_min_refresh_interval(Duration::from_millis(100))
            .build()
    };
    let holder = host(Duration::from_secs(10));
    let other = host(Duration::from_millis(500));
    holder.access_token().await.unwrap();
    other.access_token().await.unwrap();

    let replica_pid = stop_on_refresh(&genlogs, &replica);
    let refreshed_now = holder.refresh_now().await;
    assert!(
        refreshed_now.is_err(),
        "the rotation is not durable: {refreshed_now:?}"
    );
    genlogs.clear_faults();
    assert!(holder.unsaved_tokens().is_some());

    // Well past any lease the holder took: it still holds it, and the other host can neither
    // take it nor send anything.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let ttl = redis_cli(&[
        "-p",
        &primary.port().to_string(),
        "PTTL",
        "{genlogs:grant-1}:lock",
    ]);
    let ttl: i64 = String::from_utf8(ttl.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        ttl > 0,
        "the lease is kept while the rotation is unsaved ({ttl} ms)"
    );
    assert!(other.refresh_now().await.is_err());
    assert_eq!(genlogs.refresh_requests(), 1);

    // The replica is back: the holder's background retry saves without being asked, and the
    // other host is served the newest tokens.
    signal(replica_pid, "-CONT");
    replica.wait_in_sync();
    let started = Instant::now();
    while holder.unsaved_tokens().is_some() {
        assert!(started.elapsed() < Duration::from_secs(10), "never saved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("saved {:?} after the replica came back", started.elapsed());
    // (It adopts the holder's saved rotation: that counts as its refresh.)
    let token = refreshed(&other).await;
    assert!(genlogs.is_valid_access_token(token.expose_secret()));
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test]
async fn a_host_waiting_for_the_lease_learns_at_once_that_no_save_can_be_durable() {
    let _serial = SERIAL.lock().await;
    // A failover left no replica: the lease holder keeps its unsaved rotation and retries; the
    // others would wait the whole lock wait for `Busy` ("another process holds it").
    let primary = RedisServer::start();
    let holder = durable_store(&primary, 1);
    let _lease = holder.lock().await.unwrap();
    let other = durable_store(&primary, 1).with_lock_wait(Duration::from_secs(30));
    assert_not_durable(&other.lock().await.unwrap_err(), 0, 1);
    // Enough replicas: the wait goes on as before (here until the lock wait, kept short).
    let replica = RedisServer::start_replica_of(&primary, &[]);
    replica.wait_in_sync();
    let waiting = durable_store(&primary, 1).with_lock_wait(Duration::from_millis(300));
    let error = waiting.lock().await.unwrap_err();
    assert!(matches!(error, StoreError::Busy { .. }), "{error:?}");
}

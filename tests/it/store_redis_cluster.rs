//! `RedisStore::cluster` against a real three-node Redis Cluster started by each test: the
//! lease, the compare-and-set, a manager's refresh through it, a grant whose slot lives on
//! another node than the one named, a slot moved (resharded) after the store connected, a paused
//! node, a wrong password, and a cluster that cannot be reached.

use std::time::Duration;

use crate::support::fixture::stored_refresh;
use crate::support::leak::assert_no_leak;
use crate::support::redis::{
    assert_not_durable, assert_unreachable_and_silent, until_ok, RedisCluster,
};
use crate::support::store::{assert_holds, first_save, tokens};
use genlogs_auth::store::StoreLock;
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{AuthClient, RedisStore, StoreError, StoredTokens, TokenManager, TokenStore};

/// A store for `name` on `cluster`, knowing all of its nodes.
fn store(cluster: &RedisCluster, name: &str) -> RedisStore {
    let urls = cluster.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisStore::cluster(&urls, name)
        .unwrap()
        .with_lock_wait(Duration::from_secs(10))
}

/// A plain (not cluster-aware) connection to one node, to see what that node itself answers.
async fn raw_node(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lease_on_a_cluster_excludes_a_second_owner_until_released() {
    let cluster = RedisCluster::start();
    let first = store(&cluster, "grant-1");
    let second = store(&cluster, "grant-1").with_lock_wait(Duration::from_millis(200));
    let lock = first.lock().await.unwrap();
    assert!(lock.lease().is_some_and(|lease| lease > Duration::ZERO));
    assert!(matches!(second.lock().await, Err(StoreError::Busy { .. })));
    // Another grant's lease is independent.
    let other_grant = store(&cluster, "grant-2");
    drop(other_grant.lock().await.unwrap());

    drop(lock); // released by a task on this runtime
    let second = second.with_lock_wait(Duration::from_secs(10));
    let lock = second.lock().await.unwrap();
    assert_eq!(second.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
}

#[tokio::test]
async fn save_on_a_cluster_compares_and_sets_and_refuses_a_stale_version() {
    let cluster = RedisCluster::start();
    let store = store(&cluster, "grant-1");
    let lock = first_save(&store, "rt-1").await;
    let newer = tokens("rt-2").with_version(1);
    assert_eq!(store.save(&newer, &lock).await.unwrap(), 2);
    match store.save(&tokens("rt-stale"), &lock).await {
        Err(StoreError::Conflict { expected, found }) => assert_eq!((expected, found), (0, 2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    store.release(lock).await;

    // A lease that ran out (its holder paused) writes nothing, before or after the next owner
    // takes it. The next owner's `lock` returns only once the old lease has expired.
    let paused_host = store.with_lease(Duration::from_millis(300));
    let stale = paused_host.lock().await.unwrap();
    let next_owner = RedisStore::cluster(&[&cluster.urls()[1]], "grant-1")
        .unwrap()
        .with_lock_wait(Duration::from_secs(10));
    let held = next_owner.lock().await.unwrap();
    let current = tokens("rt-late").with_version(2);
    assert!(matches!(
        paused_host.save(&current, &stale).await,
        Err(StoreError::LeaseLost)
    ));
    next_owner.release(held).await;
    assert_holds(&next_owner, 2, "rt-2").await;
}

#[tokio::test]
async fn a_manager_refreshes_through_a_cluster_store() {
    let cluster = RedisCluster::start();
    let genlogs = MockGenLogs::start().await;
    let seed = genlogs.issue_tokens().into_refresh_token();
    let store = store(&cluster, "fleet-grant");
    store
        .replace(&StoredTokens::from_refresh_token(seed.clone()))
        .await
        .unwrap();
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();
    let manager = TokenManager::builder(client, self::store(&cluster, "fleet-grant")).build();

    let access = manager.access_token().await.unwrap();
    assert!(genlogs.is_valid_access_token(access.expose_secret()));
    assert_eq!(genlogs.refreshes(), 1);
    // The rotated refresh token is in the cluster, where another host would find it.
    let stored = store.load().await.unwrap().unwrap();
    assert_ne!(stored.refresh_token().expose_secret(), seed.expose_secret());
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
    // Saved by the manager after the seed (version 1).
    assert!(stored.version() > 1, "{}", stored.version());
}

#[tokio::test]
async fn a_grant_on_a_slot_of_another_node_than_the_one_named_works() {
    let cluster = RedisCluster::start();
    let named = cluster.urls()[0].clone();
    let mut first_node = raw_node(&named).await;
    // A grant whose keys the named node does not own: it answers MOVED to a plain client.
    let mut name = None;
    for candidate in (0..64).map(|i| format!("grant-{i}")) {
        let probe = RedisStore::cluster(&[&named], &candidate).unwrap();
        let answer = ::redis::cmd("GET")
            .arg(probe.lock_key())
            .query_async::<Option<String>>(&mut first_node)
            .await;
        if let Some(owner) = moved_to(answer) {
            assert_ne!(
                owner,
                named.trim_start_matches("redis://").trim_end_matches('/')
            );
            name = Some(candidate);
            break;
        }
    }
    let name = name.expect("a grant whose slot is on another node (each node owns a third)");

    let store = RedisStore::cluster(&[&named], &name)
        .unwrap()
        .with_lock_wait(Duration::from_secs(10));
    let mut lock = first_save(&store, "rt-1").await;
    store
        .extend(&mut lock, Duration::from_secs(20))
        .await
        .unwrap();
    store.release(lock).await;
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(stored.refresh_token().expose_secret(), "rt-1");
    // The named node still holds none of it: the data lives on the slot's owner.
    let on_first = ::redis::cmd("HGET")
        .arg(store.tokens_key())
        .arg("version")
        .query_async::<Option<String>>(&mut first_node)
        .await;
    assert!(moved_to(on_first).is_some());
}

#[tokio::test]
async fn a_slot_moved_to_another_node_after_connecting_is_followed() {
    let cluster = RedisCluster::start();
    let store = store(&cluster, "grant-moving");
    // Connected, with the slot map read and the scripts loaded on the slot's owner.
    let lock = first_save(&store, "rt-1").await;
    store.release(lock).await;

    let (owner, slot) = cluster.owner_of(store.tokens_key());
    let to = (owner + 1) % cluster.nodes().len();
    cluster.move_slot(slot, owner, to);
    assert_eq!(cluster.owner_of(store.tokens_key()), (to, slot));
    // The old owner now redirects a plain client; the store's cached map still names it.
    let old_owner = cluster.nodes()[owner].url();
    let answer = ::redis::cmd("GET")
        .arg(store.lock_key())
        .query_async::<Option<String>>(&mut raw_node(&old_owner).await)
        .await;
    let new_owner = format!("127.0.0.1:{}", cluster.nodes()[to].port());
    assert_eq!(moved_to(answer), Some(new_owner));

    // Reads, the lease, the scripts (not yet loaded on the new owner) and the compare-and-set
    // all follow the slot.
    assert_eq!(stored_refresh(&store).await, "rt-1");
    let mut lock = store.lock().await.unwrap();
    store
        .extend(&mut lock, Duration::from_secs(20))
        .await
        .unwrap();
    let current = tokens("rt-2").with_version(1);
    assert_eq!(store.save(&current, &lock).await.unwrap(), 2);
    assert!(matches!(
        store.save(&tokens("rt-stale"), &lock).await,
        Err(StoreError::Conflict { .. })
    ));
    store.release(lock).await;
    assert_holds(&store, 2, "rt-2").await;
}

#[tokio::test]
async fn a_paused_slot_owner_fails_calls_as_unreachable_and_serves_again_when_resumed() {
    let mut cluster = RedisCluster::start();
    let store = store(&cluster, "grant-paused").with_timeout(Duration::from_millis(500));
    let lock = first_save(&store, "rt-1").await;
    store.release(lock).await;

    let (owner, _slot) = cluster.owner_of(store.tokens_key());
    cluster.node_mut(owner).pause();
    for error in [
        store.load().await.unwrap_err(),
        store.lock().await.unwrap_err(),
    ] {
        assert!(matches!(error, StoreError::Unreachable(_)), "{error:?}");
    }
    cluster.node_mut(owner).resume();
    let stored = until_ok(|| store.load()).await.unwrap();
    assert_eq!(stored.refresh_token().expose_secret(), "rt-1");
}

#[tokio::test]
async fn a_wrong_cluster_password_is_an_error_that_does_not_show_it() {
    let cluster = RedisCluster::start();
    let urls: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|node| format!("redis://:wrong-pw-77@127.0.0.1:{}/", node.port()))
        .collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = RedisStore::cluster(&refs, "grant-1").unwrap();
    let error = store.load().await.unwrap_err();
    let mut secrets = vec!["wrong-pw-77"];
    secrets.extend(&refs);
    assert_no_leak(&error, &secrets);
}

/// The node a MOVED answer points to (`host:port`), if the answer is one.
fn moved_to(answer: ::redis::RedisResult<Option<String>>) -> Option<String> {
    let error = answer.err()?;
    error.redirect_node().map(|(node, _slot)| node.to_string())
}

#[tokio::test]
async fn an_unreachable_cluster_is_unreachable_and_never_shows_the_urls_or_password() {
    // Ports 1 and 2 on loopback: nothing listens there.
    let urls = [
        "redis://:hunter2-pw@127.0.0.1:1/",
        "redis://:hunter2-pw@127.0.0.1:2/",
    ];
    let store = RedisStore::cluster(&urls, "grant-1")
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    assert_unreachable_and_silent(&store, "127.0.0.1:1,127.0.0.1:2", &urls).await;
    let mixed = RedisStore::cluster(&[urls[0], "rediss://:hunter2-pw@127.0.0.1:2/"], "g");
    assert_no_leak(&mixed.unwrap_err(), &["hunter2"]);
}

#[tokio::test]
async fn a_durable_save_on_a_cluster_goes_to_the_slot_owner_and_counts_its_replicas() {
    // The script and WAIT travel in one pipeline, routed by the script's keys to the slot's
    // owner: these nodes have no replicas, so the save is written there and is not durable.
    let cluster = RedisCluster::start();
    let store = store(&cluster, "grant-1").with_min_replicas(1, Duration::from_millis(200));
    let lock = store.lock().await.unwrap();
    let error = store.save(&tokens("rt-1"), &lock).await.unwrap_err();
    assert_not_durable(&error, 0, 1);
    assert_holds(&store, 1, "rt-1").await;
    // Without the requirement the same store saves over it.
    let plain = self::store(&cluster, "grant-1");
    assert_eq!(
        plain
            .save(&tokens("rt-2").with_version(1), &lock)
            .await
            .unwrap(),
        2
    );
}

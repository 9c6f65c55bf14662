//! `RedisStore` against real `redis-server` processes: the lease, the owner checks, the
//! compare-and-set, encryption at rest, and what an unreachable, paused or restarted Redis does.

use std::time::Duration;

use crate::support::fixture::{stored_refresh, Fixture};
use crate::support::leak::assert_no_leak;
use crate::support::redis::{assert_unreachable_and_silent, until_ok, RedisServer};
use crate::support::store::{assert_holds, first_save, tokens};
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{
    store::redis::EncryptionKey, store::StoreLock, store::TokenState, store::UnreadableReason,
    RedisStore, StoreError, StoredTokens, TokenStore,
};

const SHORT_LEASE: Duration = Duration::from_millis(300);

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::new(&server.url(), "grant-1")
        .unwrap()
        .with_lock_wait(Duration::from_secs(10))
}

/// A store with the [`SHORT_LEASE`], holding the lease.
async fn leased(server: &RedisServer) -> (RedisStore, genlogs_auth::store::redis::RedisLock) {
    let store = store(server).with_lease(SHORT_LEASE);
    let lock = store.lock().await.unwrap();
    (store, lock)
}

async fn lock_owner(server: &RedisServer, store: &RedisStore) -> Option<String> {
    server
        .query(::redis::cmd("GET").arg(store.lock_key()))
        .await
}

/// The lease's time to live in Redis, in milliseconds.
async fn pttl(server: &RedisServer, store: &RedisStore) -> i64 {
    server
        .query(::redis::cmd("PTTL").arg(store.lock_key()))
        .await
}

/// Sets the stored document's fields (`HSET` on the tokens key) by hand.
async fn set_fields(server: &RedisServer, store: &RedisStore, fields: &[(&str, &[u8])]) {
    let mut command = ::redis::cmd("HSET");
    command.arg(store.tokens_key());
    for (name, value) in fields {
        command.arg(*name).arg(*value);
    }
    server.query::<()>(&command).await
}

/// The stored document's field `name` (`HGET` on the tokens key).
async fn field<T: ::redis::FromRedisValue>(
    server: &RedisServer,
    store: &RedisStore,
    name: &str,
) -> T {
    server
        .query(::redis::cmd("HGET").arg(store.tokens_key()).arg(name))
        .await
}

/// Waits until the lease key is gone (run out or released).
async fn until_lease_gone(server: &RedisServer, store: &RedisStore) {
    while lock_owner(server, store).await.is_some() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn both_keys_of_a_grant_share_one_hash_slot() {
    let store = RedisStore::new("redis://127.0.0.1:6379/", "user-42").unwrap();
    assert_eq!(store.tokens_key(), "{genlogs:user-42}:tokens");
    assert_eq!(store.lock_key(), "{genlogs:user-42}:lock");
    for bad in ["", "a{b", "a}b", "a b"] {
        assert!(
            RedisStore::new("redis://127.0.0.1:6379/", bad).is_err(),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_lease_excludes_a_second_owner_until_released() {
    let server = RedisServer::start();
    let first = store(&server);
    let second = store(&server).with_lock_wait(Duration::from_millis(200));
    let lock = first.lock().await.unwrap();
    assert!(lock.lease().is_some_and(|lease| lease > Duration::ZERO));
    assert!(matches!(second.lock().await, Err(StoreError::Busy { .. })));
    drop(lock); // released by a task on this runtime
    let second = second.with_lock_wait(Duration::from_secs(10));
    let lock = second.lock().await.unwrap();
    assert!(second.save(&tokens("rt-1"), &lock).await.is_ok());
}

#[tokio::test]
async fn an_expired_lease_lets_another_owner_in() {
    let server = RedisServer::start();
    // A holder that never releases (a crashed host): only the lease's expiry frees it.
    let (_crashed, lock) = leased(&server).await;
    std::mem::forget(lock);
    let next = store(&server);
    let lock = next.lock().await.unwrap();
    assert_eq!(next.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
}

#[tokio::test]
async fn release_and_extend_of_a_lost_lease_leave_the_new_owner_alone() {
    let server = RedisServer::start();
    let (slow, mut stale) = leased(&server).await;
    until_lease_gone(&server, &slow).await;
    let next = store(&server);
    let lock = next.lock().await.unwrap();
    let owner = lock_owner(&server, &next).await.expect("the new lease");

    assert!(matches!(
        slow.extend(&mut stale, Duration::from_secs(30)).await,
        Err(StoreError::LeaseLost)
    ));
    drop(stale);
    // The stale holder's release ran (or failed); either way the new owner still holds it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        lock_owner(&server, &next).await.as_deref(),
        Some(owner.as_str())
    );
    assert_eq!(next.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
}

#[tokio::test]
async fn extend_keeps_the_lease_and_moves_its_deadline() {
    let server = RedisServer::start();
    let (store, mut lock) = leased(&server).await;
    store
        .extend(&mut lock, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(lock.lease().unwrap() > Duration::from_secs(30));
    let ttl = pttl(&server, &store).await;
    assert!(ttl > 30_000, "PTTL {ttl}");
    // Longer than the original lease: the extension is what keeps it.
    tokio::time::sleep(SHORT_LEASE * 2).await;
    assert_eq!(store.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
}

#[tokio::test]
async fn extend_never_shortens_a_lease() {
    let server = RedisServer::start();
    let store = store(&server).with_lease(Duration::from_secs(60));
    let mut lock = store.lock().await.unwrap();
    // Asking for less than is left (1 s of 60 s) keeps what is left, in Redis and in the local
    // deadline; asking for more (120 s) extends it.
    for (asked, left) in [(1, 50), (120, 110)] {
        store
            .extend(&mut lock, Duration::from_secs(asked))
            .await
            .unwrap();
        let ttl = pttl(&server, &store).await;
        assert!(ttl > left * 1_000, "PTTL {ttl}");
        assert!(lock.lease().unwrap() > Duration::from_secs(left as u64));
    }
    store
        .extend(&mut lock, Duration::from_millis(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
}

#[tokio::test]
async fn versions_compare_exactly_beyond_2_to_the_53_and_never_wrap() {
    let server = RedisServer::start();
    let store = store(&server);
    let lock = store.lock().await.unwrap();
    let at = |version: u64| tokens("rt-big").with_version(version);
    // 2^53 + 1 and 2^53 are one double: compared as numbers they would be equal.
    set_fields(&server, &store, &[("version", b"9007199254740993")]).await;
    assert!(matches!(
        store.save(&at(9_007_199_254_740_992), &lock).await,
        Err(StoreError::Conflict {
            expected: 9_007_199_254_740_992,
            found: 9_007_199_254_740_993
        })
    ));
    assert_eq!(
        store.save(&at(9_007_199_254_740_993), &lock).await.unwrap(),
        9_007_199_254_740_994
    );
    // At the largest version nothing can be saved over it: refused before Redis is asked.
    set_fields(&server, &store, &[("version", b"18446744073709551615")]).await;
    let error = store.save(&at(u64::MAX), &lock).await.unwrap_err();
    assert!(error.to_string().contains("maximum"), "{error}");
    let stored: String = field(&server, &store, "version").await;
    assert_eq!(stored, "18446744073709551615");
}

#[tokio::test]
async fn plain_redis_to_a_remote_host_is_refused_unless_opted_in() {
    let url = "redis://:pw-remote-1@cache.internal:6379/";
    let refused = RedisStore::new(url, "grant-1").unwrap_err();
    assert!(refused.to_string().contains("rediss://"), "{refused}");
    assert_no_leak(&refused, &["pw-remote-1", url]);
    let refused = RedisStore::cluster(&[url], "grant-1").unwrap_err();
    assert!(
        refused.to_string().contains("cluster_allowing_plaintext"),
        "{refused}"
    );
    assert!(RedisStore::new_allowing_plaintext(url, "grant-1").is_ok());
    assert!(RedisStore::cluster_allowing_plaintext(&[url], "grant-1").is_ok());
    assert!(RedisStore::new("rediss://:pw-remote-1@cache.internal:6380/", "grant-1").is_ok());
}

#[tokio::test]
async fn a_unix_socket_password_never_shows() {
    // No socket there: the connection fails, and the message must not carry the password.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for parameter in ["pass", "password"] {
        let url = format!(
            "unix://{}/no-such-redis.sock?{parameter}=pw-unix-7",
            dir.display()
        );
        let store = RedisStore::new(&url, "grant-1")
            .unwrap()
            .with_timeout(Duration::from_millis(500));
        assert!(!format!("{store:?}").contains("pw-unix-7"));
        let error = store.load().await.unwrap_err();
        assert_no_leak(&error, &["pw-unix-7", &url]);
        let error = store.replace(&tokens("rt-secret-3")).await.unwrap_err();
        assert_no_leak(&error, &["pw-unix-7", &url, "rt-secret-3"]);
    }
}

#[tokio::test]
async fn save_refuses_a_stale_version_and_writes_nothing() {
    let server = RedisServer::start();
    let store = store(&server);
    let lock = store.lock().await.unwrap();
    assert_eq!(store.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
    let newer = tokens("rt-2").with_version(1);
    assert_eq!(store.save(&newer, &lock).await.unwrap(), 2);

    // Derived from version 0 or 1: both stale.
    for stale_version in [0, 1] {
        let stale = tokens("rt-stale").with_version(stale_version);
        match store.save(&stale, &lock).await {
            Err(StoreError::Conflict { expected, found }) => {
                assert_eq!((expected, found), (stale_version, 2));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_holds(&store, 2, "rt-2").await;
}

#[tokio::test]
async fn save_refuses_a_lost_lease_and_writes_nothing() {
    let server = RedisServer::start();
    let (paused_host, stale) = leased(&server).await;
    until_lease_gone(&server, &paused_host).await;

    // No one holds it now, and later someone else does: both refuse the stale holder.
    assert!(matches!(
        paused_host.save(&tokens("rt-late"), &stale).await,
        Err(StoreError::LeaseLost)
    ));
    let other = store(&server);
    let lock = other.lock().await.unwrap();
    assert!(matches!(
        paused_host.save(&tokens("rt-late"), &stale).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(other.load().await.unwrap().is_none());
    assert_eq!(other.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
}

#[tokio::test]
async fn a_lock_from_another_grant_or_store_kind_is_refused() {
    let server = RedisServer::start();
    let store = store(&server);
    let other_grant = RedisStore::new(&server.url(), "grant-2").unwrap();
    let foreign = other_grant.lock().await.unwrap();
    assert!(matches!(
        store.save(&tokens("rt-1"), &foreign).await,
        Err(StoreError::Other(_))
    ));
    // Another kind of store's lock does not type-check; boxed, it is refused when used.
    let boxed = genlogs_auth::store::BoxedStore::new(self::store(&server));
    let memory = genlogs_auth::store::BoxedStore::new(genlogs_auth::MemoryStore::default());
    let memory_lock = memory.lock().await.unwrap();
    assert!(boxed.save(&tokens("rt-1"), &memory_lock).await.is_err());
    assert!(store.load().await.unwrap().is_none());
}

#[tokio::test]
async fn the_whole_document_round_trips_with_its_shared_state() {
    let server = RedisServer::start();
    let store = store(&server);
    let lock = store.lock().await.unwrap();
    let now = chrono::Utc::now();
    let saved = tokens("rt-1")
        .with_access_token(genlogs_auth::AccessToken::new("at-1"), Some(now))
        .with_refresh_expires(Some(now))
        .with_refreshed_at(Some(now))
        .with_state(genlogs_auth::store::TokenState::Dead {
            reason: genlogs_auth::store::NewTokensReason::RefreshTokenRejected,
            since: now,
        });
    store.save(&saved, &lock).await.unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.version(), 1);
    assert_eq!(loaded.state(), saved.state());
    assert_eq!(loaded.access_token().unwrap().expose_secret(), "at-1");
    assert_eq!(loaded.access_expires(), saved.access_expires());
    assert_eq!(loaded.refreshed_at(), saved.refreshed_at());
}

#[tokio::test]
async fn encrypted_tokens_round_trip_and_redis_never_sees_them() {
    let server = RedisServer::start();
    let key = || EncryptionKey::from_bytes([7; 32]);
    let store = store(&server).with_encryption_key(key());
    let lock = store.lock().await.unwrap();
    let saved = tokens("rt-secret-1")
        .with_access_token(genlogs_auth::AccessToken::new("at-secret-1"), None);
    store.save(&saved, &lock).await.unwrap();
    drop(lock);

    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.refresh_token().expose_secret(), "rt-secret-1");
    assert_eq!(
        loaded.access_token().unwrap().expose_secret(),
        "at-secret-1"
    );

    let everything: Vec<Vec<u8>> = server
        .query(::redis::cmd("HGETALL").arg(store.tokens_key()))
        .await;
    for value in &everything {
        assert!(!value.windows(6).any(|w| w == b"secret"));
        assert!(!value.windows(13).any(|w| w == b"refresh_token"));
    }
    assert!(!format!("{store:?}").contains("[7, 7"));
}

#[tokio::test]
async fn a_wrong_key_a_missing_key_or_an_altered_document_is_a_named_error() {
    let server = RedisServer::start();
    let store = store(&server).with_encryption_key(EncryptionKey::from_bytes([7; 32]));
    let lock = store.lock().await.unwrap();
    store.save(&tokens("rt-secret-1"), &lock).await.unwrap();
    drop(lock);

    let reason = |result: Result<Option<StoredTokens>, StoreError>| match result {
        Err(error @ StoreError::Unreadable { .. }) => {
            assert_no_leak(&error, &["rt-secret-1", &store_url(&server)]);
            match error {
                StoreError::Unreadable { reason, .. } => reason,
                _ => unreachable!(),
            }
        }
        other => panic!("expected Unreadable, got {other:?}"),
    };
    let wrong_key = self::store(&server).with_encryption_key(EncryptionKey::from_bytes([8; 32]));
    assert_eq!(
        reason(wrong_key.load().await),
        UnreadableReason::WrongKeyOrAltered
    );
    let no_key = self::store(&server);
    assert_eq!(
        reason(no_key.load().await),
        UnreadableReason::EncryptedWithoutKey
    );

    // An attacker with write access flips one byte, or writes the document back as another
    // version (a replay): both refused.
    let mut document: Vec<u8> = field(&server, &store, "doc").await;
    set_fields(&server, &store, &[("version", b"5")]).await;
    assert_eq!(
        reason(store.load().await),
        UnreadableReason::WrongKeyOrAltered
    );
    let last = document.len() - 1;
    document[last] ^= 1;
    set_fields(&server, &store, &[("version", b"1"), ("doc", &document)]).await;
    assert_eq!(
        reason(store.load().await),
        UnreadableReason::WrongKeyOrAltered
    );

    // A plain document where a key is configured is refused, not trusted.
    let planted = br#"{"refresh_token":"rt-planted"}"#;
    set_fields(&server, &store, &[("version", b"1"), ("doc", planted)]).await;
    assert_eq!(reason(store.load().await), UnreadableReason::NotEncrypted);
    assert_eq!(stored_refresh(&no_key).await, "rt-planted");

    // An operator's replacement overwrites what cannot be read (here: after a key change).
    let rekeyed = self::store(&server).with_encryption_key(EncryptionKey::from_bytes([9; 32]));
    assert_eq!(rekeyed.replace(&tokens("rt-new")).await.unwrap(), 2);
    assert_eq!(stored_refresh(&rekeyed).await, "rt-new");
}

fn store_url(server: &RedisServer) -> String {
    server.url()
}

#[tokio::test]
async fn a_dead_redis_is_unreachable_and_never_shows_the_url_or_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "redis://:hunter2-pw@127.0.0.1:1/";
    let store = RedisStore::new(url, "grant-1")
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    // Load, lock and replace.
    for error in assert_unreachable_and_silent(&store, "127.0.0.1:1", &[url]).await {
        assert_eq!(error.to_string(), "the token store is unreachable");
    }

    let invalid = RedisStore::new("redis//:hunter2-pw@127.0.0.1:1/", "g").unwrap_err();
    assert_no_leak(&invalid, &["hunter2"]);
    // TLS: the same, with no panic on the way (rustls' provider is chosen by the crate).
    let tls = RedisStore::new("rediss://:hunter2-pw@127.0.0.1:1/", "grant-1")
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let error = tls.load().await.unwrap_err();
    assert!(matches!(error, StoreError::Unreachable(_)), "{error:?}");
    assert_no_leak(&error, &["hunter2"]);
}

#[tokio::test]
async fn a_wrong_password_is_an_error_that_does_not_show_it() {
    let server = RedisServer::start();
    let url = format!("redis://:wrong-pw-77@127.0.0.1:{}/", server.port());
    let store = RedisStore::new(&url, "grant-1").unwrap();
    let error = store.load().await.unwrap_err();
    assert_no_leak(&error, &["wrong-pw-77", &url]);
}

#[tokio::test]
async fn a_paused_redis_fails_calls_within_the_timeout_and_serves_again_when_resumed() {
    let mut server = RedisServer::start();
    let store = store(&server).with_timeout(Duration::from_millis(300));
    let lock = first_save(&store, "rt-1").await;
    drop(lock);

    server.pause();
    // Bounded: each call ends by itself (twice the timeout at most); the outer timeout only
    // turns a hang into a failure instead of a stuck test.
    let hang = Duration::from_secs(30);
    for error in [
        tokio::time::timeout(hang, store.load())
            .await
            .expect("load hung")
            .unwrap_err(),
        tokio::time::timeout(hang, store.lock())
            .await
            .expect("lock hung")
            .unwrap_err(),
    ] {
        assert_eq!(
            error.to_string(),
            "the token store is unreachable",
            "{error:?}"
        );
    }
    server.resume();
    let loaded = until_ok(|| store.load()).await.unwrap();
    assert_eq!(loaded.refresh_token().expose_secret(), "rt-1");
}

#[tokio::test]
async fn a_restarted_redis_is_reconnected_to_and_starts_empty() {
    let mut server = RedisServer::start();
    let store = store(&server).with_timeout(Duration::from_millis(500));
    let lock = first_save(&store, "rt-1").await;

    server.kill();
    let error = store.load().await.unwrap_err();
    assert_eq!(error.to_string(), "the token store is unreachable");
    // The lease died with Redis: a save under it is refused once Redis is back.
    server.restart();
    assert!(until_ok(|| store.load()).await.is_none());
    assert!(matches!(
        store.save(&tokens("rt-1"), &lock).await,
        Err(StoreError::LeaseLost)
    ));
    let lock = store.lock().await.unwrap();
    assert_eq!(store.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
}

#[tokio::test]
async fn rediss_connects_with_tls_to_a_server_signed_by_a_trusted_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let ca_params = {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
    };
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert, server_cert.pem()).unwrap();
    std::fs::write(&key, server_key.serialize_pem()).unwrap();
    let server = RedisServer::start_tls(cert.to_str().unwrap(), key.to_str().unwrap());

    let store = RedisStore::new(&server.tls_url(), "grant-1")
        .unwrap()
        .with_root_certificate(ca.pem())
        .unwrap();
    let lock = store.lock().await.unwrap();
    assert_eq!(store.save(&tokens("rt-1"), &lock).await.unwrap(), 1);
    drop(lock);
    // What went over TLS is in the server (read here over its plain port).
    let version: String = field(&server, &store, "version").await;
    assert_eq!(version, "1");

    // Without the private CA, the system's roots do not trust it: unreachable, no panic.
    let untrusted = RedisStore::new(&server.tls_url(), "grant-1")
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    assert!(matches!(
        untrusted.load().await,
        Err(StoreError::Unreachable(_) | StoreError::Other(_))
    ));
}

/// A Redis store that records the calls the manager makes (each one round trip to Redis when
/// the lease is free; a pipeline, `WAIT` included, is one) and, when `pause_after_mark` is set,
/// stops that long once, right after saving the possibly-rotated mark: its host is paused (GC,
/// `SIGSTOP`) between the mark and the send.
#[derive(Debug)]
struct Observed {
    inner: RedisStore,
    calls: std::sync::Mutex<Vec<&'static str>>,
    pause_after_mark: std::sync::Mutex<Option<Duration>>,
}

impl Observed {
    fn new(inner: RedisStore, pause_after_mark: Option<Duration>) -> Self {
        Self {
            inner,
            calls: Default::default(),
            pause_after_mark: std::sync::Mutex::new(pause_after_mark),
        }
    }

    fn note(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl TokenStore for Observed {
    type Lock = genlogs_auth::store::redis::RedisLock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.note("load");
        self.inner.load().await
    }
    async fn lock(&self) -> Result<Self::Lock, StoreError> {
        self.note("lock");
        self.inner.lock().await
    }
    async fn save(&self, tokens: &StoredTokens, lock: &Self::Lock) -> Result<u64, StoreError> {
        self.note("save");
        let saved = self.inner.save(tokens, lock).await;
        if matches!(tokens.state(), TokenState::PossiblyRotated { .. }) {
            let pause = self.pause_after_mark.lock().unwrap().take();
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
        }
        saved
    }
    async fn extend(&self, lock: &mut Self::Lock, by: Duration) -> Result<(), StoreError> {
        self.note("extend");
        self.inner.extend(lock, by).await
    }
    async fn release(&self, lock: Self::Lock) {
        self.note("release");
        self.inner.release(lock).await
    }
}

/// The stand-in, with its first tokens (an access token included) stored under `grant`.
async fn seeded_stand_in(redis: &RedisServer, grant: &str) -> MockGenLogs {
    let genlogs = Fixture::new().await.genlogs;
    RedisStore::new(&redis.url(), grant)
        .unwrap()
        .replace(&genlogs.issue_tokens())
        .await
        .unwrap();
    genlogs
}

/// A client of `genlogs`, its settings still to be changed.
fn client_of(genlogs: &MockGenLogs) -> genlogs_auth::client::AuthClientBuilder {
    genlogs_auth::AuthClient::builder(genlogs.api_key()).with_base_url(genlogs.base_url())
}

/// Issue 14, item 7: the store calls (each one round trip to Redis) of one refresh. Printed,
/// and guarded against growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_takes_a_known_number_of_redis_round_trips() {
    let redis = RedisServer::start();
    let genlogs = seeded_stand_in(&redis, "round-trips").await;
    let client = client_of(&genlogs).build().unwrap();
    let store = std::sync::Arc::new(Observed::new(
        RedisStore::new(&redis.url(), "round-trips").unwrap(),
        None,
    ));
    let manager = genlogs_auth::TokenManager::builder(client, store.clone()).build();
    manager.access_token().await.unwrap();
    store.take();
    // An access token that has expired: the refresh a caller waits for.
    manager.invalidate(&manager.access_token().await.unwrap());
    tokio::time::sleep(Duration::from_secs(5)).await; // the minimum interval since the first
    manager.access_token().await.unwrap();
    let calls = store.take();
    println!("round trips of one refresh: {} ({calls:?})", calls.len());
    assert_eq!(genlogs.refreshes(), 1);
    // Take the lease, read, save the mark, (send), save the rotation, release.
    assert_eq!(calls, ["lock", "load", "save", "save", "release"]);
}

/// Issue 14: a holder paused between saving its possibly-rotated mark and sending, past its
/// lease, while another host takes the lease, waits out the mark and refreshes: on resume the
/// holder finds its lease gone and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_between_the_mark_and_the_send_sends_nothing_once_its_lease_is_gone() {
    let redis = RedisServer::start();
    let genlogs = seeded_stand_in(&redis, "paused-holder").await;
    let manager = |store: genlogs_auth::store::BoxedStore| {
        let client = client_of(&genlogs)
            .with_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        genlogs_auth::TokenManager::builder(client, store)
            .with_retry_cooldown(Duration::from_millis(500))
            .with_min_refresh_interval(Duration::from_millis(100))
            .build()
    };
    let leased = || {
        RedisStore::new(&redis.url(), "paused-holder")
            .unwrap()
            .with_lease(Duration::from_secs(3))
            .with_lock_wait(Duration::from_millis(500))
    };
    let holder = manager(genlogs_auth::store::BoxedStore::new(Observed::new(
        leased(),
        Some(Duration::from_secs(8)),
    )));
    let other = manager(genlogs_auth::store::BoxedStore::new(leased()));
    holder.access_token().await.unwrap();
    other.access_token().await.unwrap();

    let paused = tokio::spawn({
        let holder = holder.clone();
        async move { holder.refresh_now().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The other host waits for the lease to run out and for the mark's wait, then refreshes.
    let started = std::time::Instant::now();
    loop {
        if other.refresh_now().await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(genlogs.refresh_requests(), 1, "the other host's refresh");
    // The holder resumes: its lease is gone, so it sends nothing.
    let resumed = paused.await.unwrap();
    assert!(resumed.is_err(), "{resumed:?}");
    assert_eq!(genlogs.refresh_requests(), 1);
    assert_eq!(genlogs.reuses(), 0);
    // And it is served the other host's tokens.
    let token = holder.access_token().await.unwrap();
    assert!(genlogs.is_valid_access_token(token.expose_secret()));
}

#[tokio::test]
async fn a_document_read_from_another_server_instance_than_the_one_that_saved_it_is_flagged() {
    let mut server = RedisServer::start_with(&[]);
    let store = store(&server);
    let lock = store.lock().await.unwrap();
    store.save(&tokens("rt-1"), &lock).await.unwrap();
    store.release(lock).await;
    let same = store.load().await.unwrap().unwrap();
    assert!(!same.is_from_another_instance(), "read where it was saved");

    // Restored from a backup: another instance (a new `run_id`) answers.
    let backup = server.snapshot();
    server.restart_from(&backup);
    let moved = until_ok(|| store.load()).await.unwrap();
    assert_eq!(moved.refresh_token().expose_secret(), "rt-1");
    assert!(
        moved.is_from_another_instance(),
        "read from another instance"
    );

    // Saved again on this instance, it is current.
    let lock = until_ok(|| store.lock()).await;
    store
        .save(&tokens("rt-2").with_version(moved.version()), &lock)
        .await
        .unwrap();
    store.release(lock).await;
    assert!(!store
        .load()
        .await
        .unwrap()
        .unwrap()
        .is_from_another_instance());
}

/// A version left without its document (written by hand, half deleted) is not an empty store:
/// `load` names the version, and a replacement saves over it.
#[tokio::test]
async fn a_version_without_a_document_is_unreadable_and_replaced() {
    let server = RedisServer::start();
    let store = store(&server);
    set_fields(&server, &store, &[("version", b"5")]).await;
    let error = store.load().await.unwrap_err();
    assert!(
        matches!(error, StoreError::Unreadable { version: 5, .. }),
        "{error:?}"
    );
    assert_eq!(error.overwrite_version(), Some(5));
    assert_eq!(store.replace(&tokens("rt-new")).await.unwrap(), 6);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.refresh_token().expose_secret(), "rt-new");
}

/// Issue 16, item 2: `TokenManager::replace_tokens` over a document this host cannot decrypt (the
/// key was changed) saves over its version; before, it read it as an empty store, conflicted
/// with the stored version until it gave up ("the stored tokens kept changing").
#[tokio::test]
async fn a_manager_replaces_tokens_it_cannot_decrypt() {
    let server = RedisServer::start();
    let genlogs = Fixture::new().await.genlogs;
    let old_key = store(&server).with_encryption_key(EncryptionKey::from_bytes([1; 32]));
    old_key.replace(&genlogs.issue_tokens()).await.unwrap();
    old_key.replace(&genlogs.issue_tokens()).await.unwrap();
    let new_key = || store(&server).with_encryption_key(EncryptionKey::from_bytes([2; 32]));
    assert!(matches!(
        new_key().load().await,
        Err(StoreError::Unreadable { version: 2, .. })
    ));
    let client = client_of(&genlogs).build().unwrap();
    let manager = genlogs_auth::TokenManager::builder(client, new_key()).build();
    let seeded = genlogs.issue_tokens();
    manager.replace_tokens(seeded.clone()).await.unwrap();
    let stored = new_key().load().await.unwrap().unwrap();
    assert!(stored.same_refresh_token(&seeded));
    assert_eq!(stored.version(), 3);
    let token = manager.access_token().await.unwrap();
    assert!(genlogs.is_valid_access_token(token.expose_secret()));
}

/// The `INFO` refusal: warnings written while `read` runs, and (with the `metrics` feature) the
/// rollback-detection gauge it leaves.
fn reads_with_info(redis: &RedisServer, allowed: &[bool]) -> (String, Option<f64>) {
    let (captured, _capture) = crate::support::capture::capture(tracing::Level::INFO);
    let port = redis.port().to_string();
    let acl = |allowed: bool| {
        let rule = if allowed { "+info" } else { "-info" };
        let set =
            crate::support::redis::redis_cli(&["-p", &port, "ACL", "SETUSER", "default", rule]);
        assert!(set.status.success(), "{set:?}");
    };
    let reads = async {
        acl(true);
        let store = store(redis);
        store.replace(&tokens("rt-info-0123456789")).await.unwrap();
        for &allowed in allowed {
            acl(allowed);
            store
                .load()
                .await
                .unwrap()
                .expect("the document is read either way");
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    #[cfg(feature = "metrics")]
    let gauge = {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || runtime.block_on(reads));
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find_map(|(key, _, _, value)| match value {
                DebugValue::Gauge(value)
                    if key.key().name() == "genlogs_auth_store_rollback_detection" =>
                {
                    Some(value.into_inner())
                }
                _ => None,
            })
    };
    #[cfg(not(feature = "metrics"))]
    let gauge = {
        runtime.block_on(reads);
        None
    };
    (captured.text(), gauge)
}

#[test]
fn a_redis_that_refuses_info_is_warned_about_once_and_reported() {
    let redis = RedisServer::start();
    let (log, gauge) = reads_with_info(&redis, &[false, false, false]);
    assert_eq!(log.matches("Redis refuses INFO").count(), 1, "{log}");
    assert!(log.contains("+info") && log.contains("WARN"), "{log}");
    if cfg!(feature = "metrics") {
        assert_eq!(gauge, Some(0.0), "detection off");
    }

    // Allowed again, then refused again: back on, and warned again.
    let (log, gauge) = reads_with_info(&redis, &[true, false, true]);
    assert_eq!(log.matches("Redis refuses INFO").count(), 1, "{log}");
    if cfg!(feature = "metrics") {
        assert_eq!(gauge, Some(1.0), "detection on");
    }
}

//! The manager on a store whose locks are leases (a network store's behaviour, in memory): a lease
//! too short to send under is extended before every send, or, if the store cannot extend it,
//! nothing is sent.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::fixture::Fixture;
use genlogs_auth::testing::Fault;
use genlogs_auth::{store::TokenState, MemoryStore, StoredTokens, TokenStore};

/// A store whose locks are leases of `lease` (a network store's behaviour, in memory), counting
/// the extensions the manager asks for.
#[derive(Debug)]
struct Leased {
    inner: MemoryStore,
    lease: Duration,
    extends: std::sync::atomic::AtomicUsize,
}

impl Leased {
    /// Leases of 3 s, too short to send a refresh under: extended before every send.
    fn new(inner: MemoryStore) -> Self {
        Self {
            inner,
            lease: Duration::from_secs(3),
            extends: Default::default(),
        }
    }
}

struct LeaseLock {
    inner: genlogs_auth::store::MemoryLock,
    lease: Duration,
}

impl genlogs_auth::store::StoreLock for LeaseLock {
    fn lease(&self) -> Option<Duration> {
        Some(self.lease)
    }
}

impl TokenStore for Leased {
    type Lock = LeaseLock;

    async fn load(&self) -> Result<Option<StoredTokens>, genlogs_auth::StoreError> {
        self.inner.load().await
    }

    async fn lock(&self) -> Result<LeaseLock, genlogs_auth::StoreError> {
        Ok(LeaseLock {
            inner: self.inner.lock().await?,
            lease: self.lease,
        })
    }

    async fn save(
        &self,
        tokens: &StoredTokens,
        lock: &LeaseLock,
    ) -> Result<u64, genlogs_auth::StoreError> {
        self.inner.save(tokens, &lock.inner).await
    }

    async fn extend(
        &self,
        lock: &mut LeaseLock,
        by: Duration,
    ) -> Result<(), genlogs_auth::StoreError> {
        self.extends.fetch_add(1, Ordering::SeqCst);
        lock.lease = by;
        Ok(())
    }
}

/// Issue 16, item 4: one clock. A week of callers asking every minute, a daily 503 with its
/// cooldown, the minimum interval's wait, and a lease too short to send under (extended before
/// every send), all on a `ManualClock` shared with the server: no real sleeping.
#[tokio::test]
async fn a_manual_clock_drives_a_week_of_refreshes_cooldowns_waits_and_lease_extensions() {
    let fx = Fixture::on_one_clock(|genlogs| genlogs).await;
    let (genlogs, clock) = (&fx.genlogs, &fx.clock);
    // Less than the fixture's request timeout (2 s) plus the manager's margins: extended every
    // time.
    let store = Arc::new(Leased::new(MemoryStore::new(genlogs.issue_tokens())));
    let manager = fx.manager(store.clone());

    let started = std::time::Instant::now();
    let (mut served, mut failed) = (0, 0);
    for minute in 0..7 * 24 * 60 {
        if minute % (24 * 60) == 12 * 60 {
            genlogs.fail_next(1, Fault::unavailable());
        }
        match manager.access_token().await {
            Ok(token) => {
                assert!(genlogs.is_valid_access_token(token.expose_secret()));
                served += 1;
            }
            Err(_) => failed += 1,
        }
        clock.advance(Duration::from_secs(60));
    }
    let week = started.elapsed();
    let refreshes = genlogs.refreshes();
    // 30-minute access tokens renewed a minute before expiry, asked for once a minute: one
    // refresh per 29 to 30 minutes (336 at most); after each daily 503 the next minute's call
    // refreshes (its 5 s cooldown long over).
    assert!((330..=350).contains(&refreshes), "{refreshes} refreshes");
    assert_eq!(served + failed, 7 * 24 * 60);
    assert!(failed <= 7, "{failed} calls failed");
    assert_eq!(genlogs.reuses(), 0);

    // The cooldown after a failure, on the manual clock: nothing is sent before it has passed.
    genlogs.fail_next(1, Fault::unavailable());
    let requests = genlogs.refresh_requests();
    manager.refresh_now().await.unwrap_err();
    manager.refresh_now().await.unwrap_err();
    assert_eq!(genlogs.refresh_requests(), requests + 1, "cooling down");
    clock.advance(Duration::from_secs(5));
    manager.refresh_now().await.unwrap();
    assert_eq!(genlogs.refresh_requests(), requests + 2);

    // The minimum interval since the last refresh: a `Wait` step that sleeps on the clock and
    // ends when the clock passes it.
    let waiting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.refresh_now().await }
    });
    let asked = std::time::Instant::now();
    while clock.sleepers() == 0 {
        assert!(asked.elapsed() < Duration::from_secs(10), "never waited");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(!waiting.is_finished());
    assert_eq!(genlogs.refresh_requests(), requests + 2);
    clock.advance(Duration::from_secs(5));
    let token = waiting.await.unwrap().unwrap();
    assert!(genlogs.is_valid_access_token(token.expose_secret()));
    assert_eq!(genlogs.refresh_requests(), requests + 3);

    // Every refresh sent was sent under a lease extended for it.
    assert_eq!(
        store.extends.load(Ordering::SeqCst) as u64,
        genlogs.refresh_requests() as u64
    );
    let stored = store.load().await.unwrap().unwrap();
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
    assert_eq!(stored.state(), TokenState::Usable);
    println!(
        "a week on a manual clock: {refreshes} refreshes, {served} calls served, {failed} failed, \
         in {week:?}"
    );
}

/// A store whose locks are leases but that does not implement `extend`.
#[derive(Debug)]
struct Unextendable(Leased);

impl TokenStore for Unextendable {
    type Lock = LeaseLock;

    async fn load(&self) -> Result<Option<StoredTokens>, genlogs_auth::StoreError> {
        self.0.load().await
    }

    async fn lock(&self) -> Result<LeaseLock, genlogs_auth::StoreError> {
        self.0.lock().await
    }

    async fn save(
        &self,
        tokens: &StoredTokens,
        lock: &LeaseLock,
    ) -> Result<u64, genlogs_auth::StoreError> {
        self.0.save(tokens, lock).await
    }
}

/// A lease too short to send under, in a store that cannot extend it: nothing is sent (the
/// default `extend` fails for a lease instead of pretending it extended it).
#[tokio::test]
async fn a_lease_the_store_cannot_extend_is_never_sent_under() {
    let fx = Fixture::new().await;
    let store = Unextendable(Leased::new(MemoryStore::new(fx.valid_tokens())));
    let manager = fx.manager(store);
    let error = manager.access_token().await.unwrap_err();
    let cause = error.store_error().expect("a store error").to_string();
    assert!(cause.contains("does not extend them"), "{cause}");
    assert_eq!(fx.refresh_requests(), 0);
}

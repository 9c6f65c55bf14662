#![allow(dead_code)]

//! A token manager wired to the loopback stand-in for GenLogs, with a manual clock and a store
//! whose saves can be made to fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use genlogs_auth::manager::TokenManagerBuilder;
use genlogs_auth::testing::{MockGenLogs, MockGenLogsBuilder};
use genlogs_auth::{
    clock::ManualClock, store::TokenState, AuthClient, MemoryStore, StoreError, StoredTokens,
    TokenManager, TokenStore,
};

pub const API_KEY: &str = "manager-test-key";
pub const MARGIN: Duration = Duration::from_secs(60);
/// The request timeout of the fixture's managers' clients.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The stand-in (script its answers with its `Fault`s) and a manual clock for the managers: the
/// one way the tests get a stand-in to talk to.
pub struct Fixture {
    pub genlogs: MockGenLogs,
    pub clock: Arc<ManualClock>,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_stand_in(|genlogs| genlogs).await
    }

    /// A stand-in configured by `configure` (from a builder with [`API_KEY`] set); the manual
    /// clock is the managers' alone.
    pub async fn with_stand_in(
        configure: impl FnOnce(MockGenLogsBuilder) -> MockGenLogsBuilder,
    ) -> Self {
        Self::starting(configure(MockGenLogs::builder().with_api_key(API_KEY))).await
    }

    /// A stand-in configured by `configure` that runs on the manual clock too (its expiries and
    /// its `Date`): managers and server share one clock, and nothing sleeps for real.
    pub async fn on_one_clock(
        configure: impl FnOnce(MockGenLogsBuilder) -> MockGenLogsBuilder,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let genlogs = MockGenLogs::builder()
            .with_api_key(API_KEY)
            .with_clock(clock.clone());
        Self {
            genlogs: configure(genlogs).start().await,
            clock,
        }
    }

    async fn starting(genlogs: MockGenLogsBuilder) -> Self {
        Self {
            genlogs: genlogs.start().await,
            clock: Arc::new(ManualClock::new(Utc::now())),
        }
    }

    /// A refresh token the service accepts, as from `POST /auth/token`.
    pub fn valid_tokens(&self) -> StoredTokens {
        StoredTokens::from_refresh_token(self.genlogs.issue_tokens().into_refresh_token())
    }

    /// A client of the stand-in, with its api key, whose requests time out after `timeout`.
    pub fn client(&self, timeout: Duration) -> AuthClient {
        client_with_api_key(&self.genlogs, self.genlogs.api_key(), timeout)
    }

    /// A manager's configuration with the fixture's client ([`TIMEOUT`]), manual clock,
    /// [`MARGIN`] and no jitter, for a test to add to.
    pub fn manager_builder(&self, store: impl TokenStore) -> TokenManagerBuilder {
        self.configured(self.client(TIMEOUT), store)
    }

    pub fn manager(&self, store: impl TokenStore) -> TokenManager {
        self.manager_builder(store).build()
    }

    /// A manager sending `api_key` (the stand-in refuses any but its own with 403).
    pub fn manager_with_api_key(&self, store: impl TokenStore, api_key: &str) -> TokenManager {
        let client = client_with_api_key(&self.genlogs, api_key, TIMEOUT);
        self.configured(client, store).build()
    }

    fn configured(&self, client: AuthClient, store: impl TokenStore) -> TokenManagerBuilder {
        TokenManager::builder(client, store)
            .with_refresh_margin(MARGIN)
            .with_refresh_jitter(0.0)
            .with_clock(self.clock.clone())
    }

    /// A manager of its own memory store, seeded with [`valid_tokens`](Self::valid_tokens).
    pub fn seeded_manager(&self) -> TokenManager {
        self.manager(MemoryStore::new(self.valid_tokens()))
    }

    /// A new fixture and a [`seeded_manager`](Self::seeded_manager) of it.
    pub async fn with_seeded_manager() -> (Self, TokenManager) {
        let fx = Self::new().await;
        let manager = fx.seeded_manager();
        (fx, manager)
    }

    /// A memory store seeded with [`valid_tokens`](Self::valid_tokens) and a manager on it.
    pub fn manager_on_a_shared_store(&self) -> (Arc<MemoryStore>, TokenManager) {
        let store = Arc::new(MemoryStore::new(self.valid_tokens()));
        (store.clone(), self.manager(store))
    }

    pub fn refresh_requests(&self) -> usize {
        self.genlogs.refresh_requests()
    }

    /// Advances the manual clock by `by`, then lets a real millisecond pass: the time a
    /// background refresh needs to make progress, as a real caller's work gives it.
    pub async fn pass(&self, by: Duration) {
        self.clock.advance(by);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn client_with_api_key(genlogs: &MockGenLogs, api_key: &str, timeout: Duration) -> AuthClient {
    AuthClient::builder(api_key)
        .with_base_url(genlogs.base_url())
        .with_timeout(timeout)
        .build()
        .unwrap()
}

#[cfg(feature = "middleware")]
impl Fixture {
    /// A manager seeded with a fresh token pair, the middleware for the stand-in's origin, and
    /// `middleware::client` with it.
    pub fn middleware(
        &self,
    ) -> (
        TokenManager,
        genlogs_auth::middleware::GenLogsAuth,
        genlogs_auth::middleware::reqwest_middleware::ClientWithMiddleware,
    ) {
        let manager = self.manager(MemoryStore::new(self.genlogs.issue_tokens()));
        let auth = genlogs_auth::middleware::GenLogsAuth::new(manager.clone())
            .with_api_origin(&self.genlogs.url(""))
            .unwrap();
        let client = genlogs_auth::middleware::client(auth.clone());
        (manager, auth, client)
    }
}

/// A store whose saves fail while `failing` is set.
#[derive(Debug, Default)]
pub struct FlakyStore<S = MemoryStore> {
    pub inner: S,
    pub failing: AtomicBool,
    pub saves: Mutex<Vec<String>>,
}

impl<S> FlakyStore<S> {
    pub fn wrapping(inner: S) -> Self {
        Self {
            inner,
            failing: AtomicBool::new(false),
            saves: Mutex::default(),
        }
    }
}

impl<S: TokenStore> TokenStore for FlakyStore<S> {
    type Lock = S::Lock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.inner.load().await
    }

    async fn lock(&self) -> Result<S::Lock, StoreError> {
        self.inner.lock().await
    }

    /// While `failing`, every save fails but the manager's mark of an attempt (so that the
    /// refresh is sent and its result's save fails); `saves` records the others.
    async fn save(&self, tokens: &StoredTokens, lock: &S::Lock) -> Result<u64, StoreError> {
        if matches!(tokens.state(), TokenState::PossiblyRotated { .. }) {
            return self.inner.save(tokens, lock).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Other("disk full".into()));
        }
        self.saves
            .lock()
            .unwrap()
            .push(tokens.refresh_token().expose_secret().to_string());
        self.inner.save(tokens, lock).await
    }

    async fn extend(&self, lock: &mut S::Lock, by: Duration) -> Result<(), StoreError> {
        self.inner.extend(lock, by).await
    }

    async fn release(&self, lock: S::Lock) {
        self.inner.release(lock).await
    }
}

pub async fn stored_refresh(store: &impl TokenStore) -> String {
    store
        .load()
        .await
        .unwrap()
        .unwrap()
        .refresh_token()
        .expose_secret()
        .to_string()
}

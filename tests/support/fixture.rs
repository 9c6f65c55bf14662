#![allow(dead_code)]

//! A token manager wired to the loopback stand-in for GenLogs, with a manual clock and a store
//! whose saves can be made to fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::genlogs::FakeGenlogs;
use super::server::{Reply, Request, Server};
use chrono::Utc;
use genlogs_auth::testing::{Fault, MockGenLogs};
use genlogs_auth::{
    manager::ManualClock, store::StoreLock, store::TokenState, AuthClient, MemoryStore, StoreError,
    StoredTokens, TokenManager, TokenStore,
};

pub const API_KEY: &str = "manager-test-key";
pub const MARGIN: Duration = Duration::from_secs(60);

/// What the stand-in does: behave like GenLogs, or answer a fixed reply.
#[derive(Clone)]
pub enum Mode {
    Genlogs,
    /// Like GenLogs, after a pause.
    SlowGenlogs(Duration),
    Fixed(Reply),
    /// GenLogs processes the request (rotating the token), but answers this instead.
    ProcessThen(Reply),
    /// Whatever this makes of each request.
    Script(Arc<dyn Fn(&Request) -> Reply + Send + Sync>),
}

pub struct Fixture {
    pub genlogs: FakeGenlogs,
    pub server: Server,
    pub clock: Arc<ManualClock>,
}

impl Fixture {
    pub async fn new() -> Self {
        let genlogs = FakeGenlogs::start(API_KEY).await;
        Self {
            server: Server::over(genlogs.0.clone()),
            genlogs,
            clock: Arc::new(ManualClock::new(Utc::now())),
        }
    }

    /// The stand-in itself.
    pub fn mock(&self) -> &MockGenLogs {
        &self.genlogs.0
    }

    pub fn answer(&self, mode: Mode) {
        let genlogs = self.mock();
        genlogs.clear_faults();
        genlogs.set_latency(None);
        match mode {
            Mode::Genlogs => {}
            Mode::SlowGenlogs(pause) => genlogs.set_latency(Some(pause)),
            Mode::Fixed(reply) => genlogs.fail_always(reply.into()),
            Mode::ProcessThen(reply) => genlogs.fail_always(Fault::after_processing(reply.into())),
            Mode::Script(script) => genlogs.fail_with(move |request| Some(script(request).into())),
        }
    }

    /// A refresh token the service accepts, as from `POST /auth/token`.
    pub fn valid_tokens(&self) -> StoredTokens {
        StoredTokens::from_refresh_token(self.mock().issue_tokens().refresh_token)
    }

    pub fn manager(&self, store: impl TokenStore) -> TokenManager {
        let client = AuthClient::builder(API_KEY)
            .with_base_url(self.server.base_url())
            .with_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        TokenManager::builder(client, store)
            .with_refresh_margin(MARGIN)
            .with_refresh_jitter(0.0)
            .with_clock(self.clock.clone())
            .build()
    }

    pub fn refresh_requests(&self) -> usize {
        self.mock().refresh_requests()
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

#[async_trait::async_trait]
impl<S: TokenStore> TokenStore for FlakyStore<S> {
    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.inner.load().await
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        self.inner.lock().await
    }

    /// While `failing`, every save fails but the manager's mark of an attempt (so that the
    /// refresh is sent and its result's save fails); `saves` records the others.
    async fn save(&self, tokens: &StoredTokens, lock: &StoreLock) -> Result<u64, StoreError> {
        if matches!(tokens.state, TokenState::PossiblyRotated { .. }) {
            return self.inner.save(tokens, lock).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Other("disk full".into()));
        }
        self.saves
            .lock()
            .unwrap()
            .push(tokens.refresh_token.expose_secret().to_string());
        self.inner.save(tokens, lock).await
    }
}

pub async fn stored_refresh(store: &impl TokenStore) -> String {
    store
        .load()
        .await
        .unwrap()
        .unwrap()
        .refresh_token
        .expose_secret()
        .to_string()
}

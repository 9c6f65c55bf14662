#![allow(dead_code)]

//! A token manager wired to the loopback stand-in for GenLogs, with a manual clock and a store
//! whose saves can be made to fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::genlogs::FakeGenlogs;
use super::server::{Reply, Request, Server};
use chrono::Utc;
use genlogs_auth::{
    AuthClient, ManualClock, MemoryStore, RefreshToken, StoreError, StoreLock, StoredTokens,
    TokenManager, TokenState, TokenStore,
};

pub const API_KEY: &str = "manager-test-key";
pub const MARGIN: Duration = Duration::from_secs(60);

/// What the loopback server does: behave like GenLogs, or answer a fixed reply.
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
    pub genlogs: Arc<FakeGenlogs>,
    pub mode: Arc<Mutex<Mode>>,
    pub server: Server,
    pub clock: Arc<ManualClock>,
}

impl Fixture {
    pub async fn new() -> Self {
        let genlogs = Arc::new(FakeGenlogs::new(API_KEY));
        let mode = Arc::new(Mutex::new(Mode::Genlogs));
        let (service, current) = (genlogs.clone(), mode.clone());
        let server =
            Server::start(
                move |request: &Request| match current.lock().unwrap().clone() {
                    Mode::Genlogs => service.handle(request),
                    Mode::SlowGenlogs(pause) => {
                        Reply::Delayed(pause, Box::new(service.handle(request)))
                    }
                    Mode::Fixed(reply) => reply,
                    Mode::Script(script) => script(request),
                    Mode::ProcessThen(reply) => {
                        service.handle(request);
                        reply
                    }
                },
            )
            .await;
        Self {
            genlogs,
            mode,
            server,
            clock: Arc::new(ManualClock::new(Utc::now())),
        }
    }

    pub fn answer(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// A refresh token the service accepts, as from `POST /auth/token`.
    pub fn valid_tokens(&self) -> StoredTokens {
        let (_, refresh) = self.genlogs.create_tokens();
        StoredTokens::from_refresh_token(RefreshToken::new(refresh))
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
        self.server
            .requests()
            .iter()
            .filter(|r| r.path() == "/auth/token/refresh")
            .count()
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

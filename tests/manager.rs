//! The token manager against the loopback stand-in for GenLogs, with a manual clock.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use genlogs_auth::{
    AuthClient, ManualClock, MemoryStore, NewTokensReason, RefreshToken, StoreError, StoredTokens,
    TokenError, TokenManager, TokenStore,
};
use serde_json::json;
use support::genlogs::{FakeGenlogs, ACCESS_LIFETIME};
use support::server::{Reply, Request, Server};

const API_KEY: &str = "manager-test-key";
const MARGIN: Duration = Duration::from_secs(60);

/// What the loopback server does: behave like GenLogs, or answer a fixed reply.
#[derive(Clone)]
enum Mode {
    Genlogs,
    /// Like GenLogs, after a pause.
    SlowGenlogs(Duration),
    Fixed(Reply),
}

struct Fixture {
    genlogs: Arc<FakeGenlogs>,
    mode: Arc<Mutex<Mode>>,
    server: Server,
    clock: Arc<ManualClock>,
}

impl Fixture {
    async fn new() -> Self {
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

    fn answer(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// A refresh token the service accepts, as from `POST /auth/token`.
    fn valid_tokens(&self) -> StoredTokens {
        let (_, refresh) = self.genlogs.create_tokens();
        StoredTokens::from_refresh_token(RefreshToken::new(refresh))
    }

    fn manager(&self, store: impl TokenStore) -> TokenManager {
        let client = AuthClient::builder(API_KEY)
            .with_base_url(self.server.base_url())
            .with_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        TokenManager::builder(client, store)
            .with_refresh_margin(MARGIN)
            .with_clock(self.clock.clone())
            .build()
    }

    fn refresh_requests(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path() == "/auth/token/refresh")
            .count()
    }
}

/// A store whose saves fail while `failing` is set.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    failing: AtomicBool,
    saves: Mutex<Vec<String>>,
}

impl TokenStore for FlakyStore {
    fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.inner.load()
    }

    fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Other("disk full".into()));
        }
        self.saves
            .lock()
            .unwrap()
            .push(tokens.refresh_token.expose_secret().to_string());
        self.inner.save(tokens)
    }
}

fn stored_refresh(store: &impl TokenStore) -> String {
    store
        .load()
        .unwrap()
        .unwrap()
        .refresh_token
        .expose_secret()
        .to_string()
}

#[tokio::test]
async fn no_refresh_just_before_the_margin_and_one_just_inside_it() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    let first = manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1);

    let lifetime = ACCESS_LIFETIME.to_std().unwrap();
    fx.clock.advance(lifetime - MARGIN - Duration::from_secs(1));
    let same = manager.access_token().await.unwrap();
    assert_eq!(same.expose_secret(), first.expose_secret());
    assert_eq!(
        fx.refresh_requests(),
        1,
        "one second before the margin: cached"
    );

    fx.clock.advance(Duration::from_secs(2));
    let next = manager.access_token().await.unwrap();
    assert_ne!(next.expose_secret(), first.expose_secret());
    assert_eq!(
        fx.refresh_requests(),
        2,
        "one second inside the margin: refreshed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_refresh() {
    let fx = Fixture::new().await;
    // Slow enough that every caller arrives while the refresh is in flight.
    fx.answer(Mode::SlowGenlogs(Duration::from_millis(200)));
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    let callers: Vec<_> = (0..1_000)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move {
                manager
                    .access_token()
                    .await
                    .map(|t| t.expose_secret().to_string())
            })
        })
        .collect();
    let mut tokens = std::collections::BTreeSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap().unwrap());
    }
    assert_eq!(fx.refresh_requests(), 1);
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
}

#[tokio::test]
async fn a_cancelled_caller_does_not_abort_the_refresh() {
    let fx = Fixture::new().await;
    let store = Arc::new(MemoryStore::new(fx.valid_tokens()));
    let before = stored_refresh(&store);
    let manager = fx.manager(store.clone());
    // The service answers after 300 ms; the caller gives up after 100 ms, once the request is out.
    fx.answer(Mode::SlowGenlogs(Duration::from_millis(300)));

    let cancelled = tokio::time::timeout(Duration::from_millis(100), manager.access_token()).await;
    assert!(cancelled.is_err(), "the caller was cancelled");
    assert_eq!(fx.refresh_requests(), 1, "the request had been sent");
    tokio::time::sleep(Duration::from_millis(600)).await;

    let after = stored_refresh(&store);
    assert_ne!(after, before, "the rotated token was persisted");
    assert!(fx.genlogs.is_valid_refresh_token(&after));
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1, "no second request");
}

#[tokio::test]
async fn a_failed_save_surfaces_keeps_the_new_tokens_and_never_writes_back_the_old() {
    let fx = Fixture::new().await;
    let initial = fx.valid_tokens();
    let old = initial.refresh_token.expose_secret().to_string();
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(initial),
        ..Default::default()
    });
    store.failing.store(true, Ordering::SeqCst);
    let manager = fx.manager(store.clone());

    let error = manager.access_token().await.unwrap_err();
    assert!(matches!(error, TokenError::Store(_)), "{error:?}");
    let error = manager.access_token().await.unwrap_err();
    assert!(
        matches!(error, TokenError::Store(_)),
        "the unsaved token is not handed out: {error:?}"
    );
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the save is retried, not the refresh"
    );

    store.failing.store(false, Ordering::SeqCst);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1);
    let saved = store.saves.lock().unwrap().clone();
    assert_eq!(saved.len(), 1);
    assert_ne!(saved[0], old, "the old token was never written back");
    assert!(
        fx.genlogs.is_valid_refresh_token(&saved[0]),
        "what was saved is the rotated token"
    );
}

#[tokio::test]
async fn a_401_needs_new_tokens_and_sends_nothing_more_until_they_come() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(StoredTokens::from_refresh_token(
        RefreshToken::new("rt-unknown-to-the-service"),
    )));
    for _ in 0..3 {
        let error = manager.access_token().await.unwrap_err();
        assert!(
            matches!(
                error,
                TokenError::NewTokensRequired {
                    reason: NewTokensReason::RefreshTokenRejected,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("new GenLogs tokens must be created"),
            "{error}"
        );
    }
    assert_eq!(fx.refresh_requests(), 1, "no retry with a dead token");

    manager.replace_tokens(fx.valid_tokens()).await.unwrap();
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2);
}

#[tokio::test]
async fn an_unknown_outcome_needs_new_tokens_without_retrying() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    fx.answer(Mode::Fixed(Reply::text(200, "<html>oops</html>")));
    for _ in 0..3 {
        let error = manager.access_token().await.unwrap_err();
        assert!(
            matches!(
                error,
                TokenError::NewTokensRequired {
                    reason: NewTokensReason::OutcomeUnknown,
                    ..
                }
            ),
            "{error:?}"
        );
    }
    assert_eq!(fx.refresh_requests(), 1);
}

#[tokio::test]
async fn a_503_keeps_serving_the_cached_token_until_it_expires() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    let cached = manager.access_token().await.unwrap();
    fx.answer(Mode::Fixed(Reply::text(503, "Service Unavailable")));

    let lifetime = ACCESS_LIFETIME.to_std().unwrap();
    fx.clock.advance(lifetime - MARGIN / 2);
    assert_eq!(
        manager.access_token().await.unwrap().expose_secret(),
        cached.expose_secret()
    );
    assert_eq!(fx.refresh_requests(), 2, "one failed attempt");
    assert_eq!(
        manager.access_token().await.unwrap().expose_secret(),
        cached.expose_secret()
    );
    assert_eq!(
        fx.refresh_requests(),
        2,
        "no new attempt during the cooldown"
    );

    fx.clock.advance(MARGIN);
    let error = manager.access_token().await.unwrap_err();
    let TokenError::Refresh(cause) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(cause.status().map(|s| s.as_u16()), Some(503));
    assert!(!error.needs_new_tokens());
}

#[tokio::test]
async fn expiries_are_read_on_the_servers_clock() {
    let fx = Fixture::new().await;
    // The local clock is an hour ahead of the server: by local time, every token GenLogs issues
    // expired half an hour ago. The response's Date header corrects for that.
    fx.clock.advance(Duration::from_secs(3600));
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    manager.access_token().await.unwrap();
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 1);
}

#[tokio::test]
async fn auth_headers_call_another_genlogs_endpoint() {
    let fx = Fixture::new().await;
    let manager = fx.manager(MemoryStore::new(fx.valid_tokens()));
    let headers = manager.auth_headers().await.unwrap();
    assert!(headers["access-token"].is_sensitive() && headers["x-api-key"].is_sensitive());
    let response = reqwest::Client::new()
        .get(format!(
            "http://{}/carriers/recommendations",
            fx.server.addr
        ))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["carriers"][0]["name"], json!("ACME Freight"));
}

/// Collects everything a `tracing` subscriber at TRACE writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_reaches_any_trace_event_or_span() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let fx = Fixture::new().await;
    let dead = "rt-dead-token-0123456789";
    // Success, a refresh inside the margin, a failed save, a 503, an unknown outcome, a 401.
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(fx.valid_tokens()),
        ..Default::default()
    });
    let manager = fx.manager(store.clone());
    manager.access_token().await.unwrap();
    manager.auth_headers().await.unwrap();
    let past_expiry = ACCESS_LIFETIME.to_std().unwrap() + Duration::from_secs(10);
    fx.clock.advance(past_expiry);
    store.failing.store(true, Ordering::SeqCst);
    manager.access_token().await.unwrap_err();
    store.failing.store(false, Ordering::SeqCst);
    manager.access_token().await.unwrap();
    fx.clock.advance(past_expiry);
    fx.answer(Mode::Fixed(Reply::text(503, "Service Unavailable")));
    manager.access_token().await.unwrap_err();
    fx.answer(Mode::Fixed(Reply::text(200, "garbage")));
    fx.clock.advance(Duration::from_secs(3600));
    manager.access_token().await.unwrap_err();
    fx.answer(Mode::Genlogs);
    let rejected = fx.manager(MemoryStore::new(StoredTokens::from_refresh_token(
        RefreshToken::new(dead),
    )));
    rejected.access_token().await.unwrap_err();

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        output.contains("genlogs_token_refresh")
            && output.contains("genlogs token refresh finished"),
        "{output}"
    );
    assert!(
        output.contains("status=503"),
        "refresh outcomes carry the status: {output}"
    );
    let mut secrets = fx.genlogs.issued_tokens();
    secrets.extend([API_KEY.to_string(), dead.to_string()]);
    for secret in secrets {
        assert!(
            !output.contains(&secret),
            "a secret reached the trace output"
        );
    }
}

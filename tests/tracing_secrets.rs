//! A capturing `tracing` subscriber at TRACE, installed as the global default in a binary of its
//! own (so no other test shares its callsites), sees the manager's spans and events, and no secret.

#[path = "it/support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use genlogs_auth::testing::Fault;
use genlogs_auth::{MemoryStore, RefreshToken, StoredTokens};
use support::capture::Captured;
use support::fixture::{Fixture, FlakyStore, API_KEY};
use support::ACCESS_LIFETIME;

#[tokio::test]
async fn no_secret_reaches_any_trace_event_or_span() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

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
    fx.genlogs
        .fail_always(Fault::text(503, "Service Unavailable"));
    manager.access_token().await.unwrap_err();
    fx.genlogs.fail_always(Fault::text(200, "garbage"));
    fx.clock.advance(Duration::from_secs(3600));
    manager.access_token().await.unwrap_err();
    fx.genlogs.clear_faults();
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
    support::leak::assert_no_leak(&output, &secrets);
}

//! The manager and its store: failed saves (kept, surfaced, flushed), a store shared by processes
//! (dead tokens, held locks, old files) and by hosts with different api keys.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::editing_answers;
use crate::support::fixture::{stored_refresh, Fixture, FlakyStore, MARGIN};
use genlogs_auth::{
    store::NewTokensReason, store::TokenState, FileStore, MemoryStore, RefreshToken, StoreError,
    StoredTokens, TokenError, TokenManager, TokenStore,
};
use serde_json::json;

fn file_manager(fx: &Fixture, path: &std::path::Path) -> TokenManager {
    fx.manager(FileStore::new(path).with_lock_wait(Duration::from_millis(300)))
}

/// A token file in a directory of its own (removed with the guard) holding `tokens`.
async fn token_file(tokens: &StoredTokens) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    FileStore::new(&path).replace(tokens).await.unwrap();
    (dir, path)
}

#[tokio::test]
async fn a_401_in_one_process_stops_every_process_sharing_the_store() {
    let fx = Fixture::new().await;
    let (_dir, path) = token_file(&StoredTokens::from_refresh_token(RefreshToken::new(
        "rt-revoked-by-genlogs",
    )))
    .await;
    let first = file_manager(&fx, &path);
    let error = first.access_token().await.unwrap_err();
    assert_eq!(
        error.new_tokens_reason(),
        Some(NewTokensReason::RefreshTokenRejected)
    );
    assert_eq!(fx.refresh_requests(), 1);

    // Another process on the same file, and this one after a restart: neither sends it again.
    for _ in 0..2 {
        let other = file_manager(&fx, &path);
        let error = other.access_token().await.unwrap_err();
        assert_eq!(
            error.new_tokens_reason(),
            Some(NewTokensReason::RefreshTokenRejected),
            "{error}"
        );
    }
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the dead token was never sent twice"
    );
    let stored = FileStore::new(&path).load().await.unwrap().unwrap();
    assert!(matches!(stored.state(), TokenState::Dead { .. }));
}

#[tokio::test]
async fn a_failed_save_keeps_the_store_locked_until_it_succeeds() {
    let fx = Fixture::new().await;
    let (_dir, path) = token_file(&fx.valid_tokens()).await;
    let flaky = Arc::new(FlakyStore::wrapping(
        FileStore::new(&path).with_lock_wait(Duration::from_millis(300)),
    ));
    flaky.failing.store(true, Ordering::SeqCst);
    let first = fx.manager(flaky.clone());
    assert!(matches!(
        first.access_token().await.unwrap_err(),
        TokenError::Store(_)
    ));

    // The file still holds the rotated-away token; another process must not read and send it.
    let second = file_manager(&fx, &path);
    let error = second.access_token().await.unwrap_err();
    assert!(
        matches!(error.store_error(), Some(StoreError::Busy { .. })),
        "{error:?}"
    );
    assert_eq!(fx.refresh_requests(), 1);

    flaky.failing.store(false, Ordering::SeqCst);
    let token = first.access_token().await.unwrap();
    let adopted = second.access_token().await.unwrap();
    assert_eq!(
        adopted.expose_secret(),
        token.expose_secret(),
        "the other process adopts it"
    );
    assert_eq!(fx.refresh_requests(), 1);
}

#[tokio::test]
async fn a_recovered_token_that_cannot_be_saved_keeps_the_store_locked_too() {
    let fx = Fixture::new().await;
    let (_dir, path) = token_file(&fx.valid_tokens()).await;
    // GenLogs rotates, but the answer's access token is blank: only the refresh token is usable.
    editing_answers(&fx.genlogs, |answer| {
        answer["access_token_data"]["token"] = json!("  ");
    });
    let flaky = Arc::new(FlakyStore::wrapping(
        FileStore::new(&path).with_lock_wait(Duration::from_millis(300)),
    ));
    flaky.failing.store(true, Ordering::SeqCst);
    let first = fx.manager(flaky.clone());
    assert!(first.access_token().await.is_err());
    assert_eq!(fx.refresh_requests(), 1);

    // The file still shows the sent token as usable; the recovered one is only in memory.
    let second = file_manager(&fx, &path);
    let error = second.access_token().await.unwrap_err();
    assert!(
        matches!(error.store_error(), Some(StoreError::Busy { .. })),
        "{error:?}"
    );
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the rotated-away token was not sent again"
    );
    fx.genlogs.clear_faults();
}

#[tokio::test]
async fn a_stopped_process_holding_the_lock_does_not_hang_callers() {
    let fx = Fixture::new().await;
    let (_dir, path) = token_file(&fx.valid_tokens()).await;
    let manager = file_manager(&fx, &path);
    let token = manager.access_token().await.unwrap();

    // Another process takes the lock and stops.
    let holder = FileStore::new(&path).lock().await.unwrap();
    let lifetime = crate::support::ACCESS_LIFETIME.to_std().unwrap();
    fx.clock.advance(lifetime - MARGIN / 2);
    for _ in 0..10 {
        let cached = tokio::time::timeout(Duration::from_secs(5), manager.access_token())
            .await
            .expect("a caller with a valid token never waits for the lock")
            .unwrap();
        assert_eq!(cached.expose_secret(), token.expose_secret());
    }
    fx.clock.advance(MARGIN);
    let error = tokio::time::timeout(Duration::from_secs(5), manager.access_token())
        .await
        .expect("the wait for the lock is bounded")
        .unwrap_err();
    assert!(
        matches!(error.store_error(), Some(StoreError::Busy { .. })),
        "{error:?}"
    );
    assert_eq!(fx.refresh_requests(), 1);

    drop(holder);
    manager.access_token().await.unwrap();
    assert_eq!(fx.refresh_requests(), 2);
}

#[tokio::test]
async fn a_token_file_from_before_the_token_state_reads_as_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    std::fs::write(
        &path,
        r#"{"refresh_token":"rt-old","refresh_expires":null,"access_token":null,"access_expires":null}"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let stored = FileStore::new(&path).load().await.unwrap().unwrap();
    assert_eq!(stored.state(), TokenState::Usable);
    assert_eq!(stored.version(), 0);
}

/// A memory store whose saves fail, as of now, but the manager's mark of an attempt.
fn failing_saves(tokens: StoredTokens) -> Arc<FlakyStore> {
    let store = Arc::new(FlakyStore::wrapping(MemoryStore::new(tokens)));
    store.failing.store(true, Ordering::SeqCst);
    store
}

#[tokio::test]
async fn a_failed_save_surfaces_keeps_the_new_tokens_and_never_writes_back_the_old() {
    let fx = Fixture::new().await;
    let initial = fx.valid_tokens();
    let old = initial.refresh_token().expose_secret().to_string();
    let store = failing_saves(initial);
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
async fn a_rotation_whose_save_failed_is_shown_by_unsaved_tokens_and_saved_by_flush() {
    let fx = Fixture::new().await;
    let store = failing_saves(fx.valid_tokens());
    let manager = fx.manager(store.clone());
    assert!(manager.unsaved_tokens().is_none());
    assert!(manager.flush().await.is_ok(), "nothing pending");

    manager.access_token().await.unwrap_err();
    let unsaved = manager.unsaved_tokens().expect("the rotated tokens");
    assert!(fx
        .genlogs
        .is_valid_refresh_token(unsaved.refresh_token().expose_secret()));
    assert!(matches!(manager.flush().await, Err(TokenError::Store(_))));
    assert!(manager.unsaved_tokens().is_some(), "still kept");

    store.failing.store(false, Ordering::SeqCst);
    manager.flush().await.unwrap();
    assert!(manager.unsaved_tokens().is_none());
    assert_eq!(
        stored_refresh(&*store).await,
        unsaved.refresh_token().expose_secret()
    );
    assert_eq!(fx.refresh_requests(), 1, "flush never sends");
}

#[tokio::test]
async fn hosts_with_different_api_keys_recognise_each_others_rotated_tokens() {
    // An api key rotation across the fleet: one host already has the new key (GenLogs would
    // accept both; the stand-in only the old one, so this host must never send anything).
    let fx = Fixture::new().await;
    let seed = fx.valid_tokens();
    let store = Arc::new(MemoryStore::new(seed.clone()));
    let old_key = fx.manager(store.clone());
    let new_key = fx.manager_with_api_key(store.clone(), "the-next-api-key");
    old_key.access_token().await.unwrap();
    let rotated = store.load().await.unwrap().unwrap();
    assert_ne!(
        rotated.refresh_token().expose_secret(),
        seed.refresh_token().expose_secret()
    );
    // The other host reads the store (and the fingerprint of the rotated-away seed in it).
    new_key.access_token().await.unwrap();
    // A stale writer puts the rotated-away seed back, numbered as if newer (nothing but the
    // fingerprint tells it is old).
    let mut stale = serde_json::to_value(&rotated).unwrap();
    stale["refresh_token"] = serde_json::to_value(seed.refresh_token()).unwrap();
    stale["access_token"] = serde_json::Value::Null;
    stale["access_expires"] = serde_json::Value::Null;
    let sequence = stale["lineage"]["sequence"].as_u64().unwrap();
    stale["lineage"]["sequence"] = (sequence + 10).into();
    stale["lineage"]["rotated"] = serde_json::json!([]);
    let stale: StoredTokens = serde_json::from_value(stale).unwrap();
    let lock = store.lock().await.unwrap();
    store.save(&stale, &lock).await.unwrap();
    store.release(lock).await;

    // The host with the other api key reads it (as its store watch does), recognises it, and
    // writes the newer tokens back; it sends nothing.
    new_key.renew_grant_if_due().await.unwrap();
    new_key.flush().await.unwrap();
    new_key.access_token().await.unwrap();
    assert_eq!(
        fx.refresh_requests(),
        1,
        "the rotated-away seed was not sent"
    );
    assert_eq!(fx.genlogs.reuses(), 0);
    let now = store.load().await.unwrap().unwrap();
    assert_eq!(
        now.refresh_token().expose_secret(),
        rotated.refresh_token().expose_secret(),
        "the newer tokens were written back"
    );
}

//! The manager on a store shared by processes: dead tokens, failed saves, held locks, old files.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::fixture::{Fixture, FlakyStore, MARGIN};
use genlogs_auth::testing::Fault;
use genlogs_auth::{
    store::NewTokensReason, store::TokenState, FileStore, RefreshToken, StoreError, StoredTokens,
    TokenError, TokenManager, TokenStore,
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
    let genlogs = fx.genlogs.clone();
    fx.genlogs.fail_with(move |request| {
        let Fault::Respond {
            status,
            headers,
            body,
        } = genlogs.process(request)
        else {
            unreachable!("the stand-in answers in full")
        };
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        json["access_token_data"]["token"] = json!("  ");
        Some(Fault::Respond {
            status,
            headers,
            body: json.to_string().into_bytes(),
        })
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

//! Shared by the store tests (and the store bench): token documents, a save over whatever a store
//! holds, seeding a store from the stand-in, and host processes' callers.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use genlogs_auth::{RefreshToken, StoreError, StoredTokens, TokenStore};

use super::fixture::Fixture;

/// A document holding the refresh token `refresh` alone (no access token, version 0).
pub fn tokens(refresh: &str) -> StoredTokens {
    StoredTokens::from_refresh_token(RefreshToken::new(refresh))
}

/// Saves `tokens` over whatever `store` holds now (at its version) under a fresh lease, released
/// after: one lock → load → save → release round.
pub async fn save_over<S: TokenStore>(store: &S, tokens: &StoredTokens) -> Result<u64, StoreError> {
    let lock = store.lock().await.unwrap();
    let version = store
        .load()
        .await
        .unwrap()
        .map_or(0, |stored| stored.version());
    let saved = store
        .save(&tokens.clone().with_version(version), &lock)
        .await;
    store.release(lock).await;
    saved
}

/// Takes the lease of an empty `store` and saves `refresh` there as version 1; returns the lease.
pub async fn first_save<S: TokenStore>(store: &S, refresh: &str) -> S::Lock {
    let lock = store.lock().await.unwrap();
    assert_eq!(store.save(&tokens(refresh), &lock).await.unwrap(), 1);
    lock
}

impl Fixture {
    /// Seeds `store` with [`valid_tokens`](Self::valid_tokens), as an operator does.
    pub async fn seed(&self, store: &impl TokenStore) {
        store.replace(&self.valid_tokens()).await.unwrap();
    }
}

/// Runs `callers` tasks that each run `call` every 25 ms until the file `stop` appears, then
/// waits for them to finish: the callers of a host process.
pub async fn call_until_stopped<F, Fut>(callers: usize, stop: &Path, call: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let stopping = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (call, stopping) = (call.clone(), stopping.clone());
            tokio::spawn(async move {
                while !stopping.load(Ordering::Relaxed) {
                    call().await;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
        })
        .collect();
    while !stop.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stopping.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
}

/// `store` holds `refresh` at `version`.
pub async fn assert_holds(store: &impl TokenStore, version: u64, refresh: &str) {
    let stored = store.load().await.unwrap().expect("a stored document");
    assert_eq!(
        (stored.version(), stored.refresh_token().expose_secret()),
        (version, refresh)
    );
}

/// The refresh tokens a stand-in was presented, and how often each: more than once is a reuse,
/// whether GenLogs processed the first one or not.
#[derive(Debug, Default)]
pub struct Presented(Mutex<HashMap<String, u32>>);

impl Presented {
    /// Counts one presentation of `token`; returns how many there were of it so far.
    pub fn note(&self, token: String) -> u32 {
        let mut presented = self.0.lock().unwrap();
        let count = presented.entry(token).or_default();
        *count += 1;
        *count
    }

    /// How many refresh tokens were presented more than once.
    pub fn reused(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|&&count| count > 1)
            .count()
    }
}

/// The environment variable `name` of a child process, which its parent set.
pub fn child_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}"))
}

/// The runtime of a host child process: two worker threads, as its parent test has.
pub fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

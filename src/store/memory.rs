//! [`MemoryStore`]: tokens kept in this process only, for one process that needs no restarts.

use std::sync::Mutex;

use super::{check_version, next_version, StoreError, StoreLock, StoredTokens, TokenStore};

type Exclusion = std::sync::Arc<tokio::sync::Mutex<()>>;

/// Tokens kept in memory only: lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<Option<StoredTokens>>,
    /// Excludes concurrent refreshes of managers sharing this store in one process.
    lock: Exclusion,
}

/// The lock of a [`MemoryStore`]: excludes the other managers sharing that store, in this
/// process; its `save` takes no other store's.
#[derive(Debug)]
pub struct MemoryLock {
    _held: tokio::sync::OwnedMutexGuard<()>,
    store: Exclusion,
}

impl StoreLock for MemoryLock {}

impl MemoryStore {
    /// A store holding `tokens`.
    pub fn new(tokens: StoredTokens) -> Self {
        Self {
            tokens: Mutex::new(Some(tokens)),
            lock: Default::default(),
        }
    }
}

impl TokenStore for MemoryStore {
    type Lock = MemoryLock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        Ok(self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    async fn lock(&self) -> Result<MemoryLock, StoreError> {
        Ok(MemoryLock {
            _held: self.lock.clone().lock_owned().await,
            store: self.lock.clone(),
        })
    }

    async fn save(&self, tokens: &StoredTokens, lock: &MemoryLock) -> Result<u64, StoreError> {
        if !std::sync::Arc::ptr_eq(&lock.store, &self.lock) {
            return Err(super::foreign_lock());
        }
        let mut stored = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        check_version(tokens.version, stored.as_ref().map(|s| s.version))?;
        let version = next_version(tokens.version)?;
        *stored = Some(StoredTokens {
            version,
            ..tokens.clone()
        });
        Ok(version)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

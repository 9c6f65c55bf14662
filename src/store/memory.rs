//! [`MemoryStore`]: tokens kept in this process only, for one process that needs no restarts.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{check_version, next_version, StoreError, StoreLock, StoredTokens, TokenStore};

/// Tokens kept in memory only: lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<Option<StoredTokens>>,
    /// Excludes concurrent refreshes of managers sharing this store in one process.
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl MemoryStore {
    /// A store holding `tokens`.
    pub fn new(tokens: StoredTokens) -> Self {
        Self {
            tokens: Mutex::new(Some(tokens)),
            lock: Default::default(),
        }
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        Ok(self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock::new(self.lock.clone().lock_owned().await))
    }

    async fn save(&self, tokens: &StoredTokens, _lock: &StoreLock) -> Result<u64, StoreError> {
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

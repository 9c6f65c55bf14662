//! Where the manager keeps tokens between refreshes and across restarts: the [`TokenStore`]
//! trait, the persisted document, and an in-memory store.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::{AccessToken, RefreshToken};
use crate::session::Session;

/// The tokens a store keeps. `Debug` is redacted; serializing writes the real values (that is
/// what a store is for).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    /// The newest refresh token: the only one that is valid.
    pub refresh_token: RefreshToken,
    /// Its expiry, when known.
    pub refresh_expires: Option<DateTime<Utc>>,
    /// The newest access token, when there is one.
    pub access_token: Option<AccessToken>,
    /// Its expiry (server time).
    pub access_expires: Option<DateTime<Utc>>,
}

impl StoredTokens {
    /// Only a refresh token, e.g. from `POST /auth/token`: the first call refreshes.
    pub fn from_refresh_token(refresh_token: RefreshToken) -> Self {
        Self {
            refresh_token,
            refresh_expires: None,
            access_token: None,
            access_expires: None,
        }
    }

    /// Both tokens of a session.
    pub fn from_session(session: &Session) -> Self {
        Self {
            refresh_token: session.refresh_token.clone(),
            refresh_expires: Some(session.refresh_expires),
            access_token: Some(session.access_token.clone()),
            access_expires: Some(session.access_expires),
        }
    }

    /// Whether both documents hold the same refresh token (another process may have rotated it).
    pub(crate) fn same_refresh_token(&self, other: &StoredTokens) -> bool {
        self.refresh_token.expose_secret() == other.refresh_token.expose_secret()
    }
}

/// A store the manager could not use. Never shows the tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading, writing, syncing or locking failed.
    #[error("token store {}: could not {operation}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The token file can be read by group or others: refused rather than trusted.
    #[error(
        "token store {}: mode {mode:o} lets group or others read the tokens; refusing to use it \
         (chmod 600 it, and consider the tokens in it exposed)",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a token document.
    #[error("token store {}: not a token document: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where and what is wrong (never a value).
        problem: String,
    },
    /// Any other store's failure.
    #[error("token store: {0}")]
    Other(String),
}

/// Held while a refresh reads, refreshes and writes, so that processes sharing a store refresh
/// once between them. Released on drop.
#[must_use]
pub struct StoreLock(#[allow(dead_code)] Option<Box<dyn Send + Sync>>);

impl StoreLock {
    /// A lock that excludes nothing: for stores used by one process.
    pub fn none() -> Self {
        Self(None)
    }

    /// Wraps whatever releases the lock when dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Some(Box::new(guard)))
    }
}

impl Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StoreLock(held)"
        } else {
            "StoreLock(none)"
        })
    }
}

/// Persistence for the manager. Calls are blocking; the manager makes them on tokio's blocking
/// pool.
pub trait TokenStore: Send + Sync + Debug + 'static {
    /// The stored tokens; `None` when nothing was ever stored.
    fn load(&self) -> Result<Option<StoredTokens>, StoreError>;
    /// Replaces the stored tokens, atomically: a crash leaves the old or the new document.
    fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError>;
    /// Excludes other users of the same store until the lock is dropped. The default excludes
    /// nothing, which is right for a store only one process uses.
    fn lock(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock::none())
    }
}

impl<T: TokenStore + ?Sized> TokenStore for std::sync::Arc<T> {
    fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        (**self).load()
    }

    fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        (**self).save(tokens)
    }

    fn lock(&self) -> Result<StoreLock, StoreError> {
        (**self).lock()
    }
}

/// Tokens kept in memory only: lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<Option<StoredTokens>>,
}

impl MemoryStore {
    /// A store holding `tokens`.
    pub fn new(tokens: StoredTokens) -> Self {
        Self {
            tokens: Mutex::new(Some(tokens)),
        }
    }
}

impl TokenStore for MemoryStore {
    fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        Ok(self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        *self.tokens.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens.clone());
        Ok(())
    }
}

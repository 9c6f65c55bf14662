//! [`BoxedStore`]: any store behind one type, for code that chooses its store at run time (the
//! manager keeps one; the command line opens one from a URL).

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{foreign_lock, StoreError, StoreLock, StoredTokens, TokenStore};

/// Any [`TokenStore`], boxed, so that code can hold a store whose type is chosen at run time.
/// Cloning shares the store. Its lock is a [`BoxedLock`].
///
/// ```
/// use genlogs_auth::store::{BoxedStore, FileStore, MemoryStore};
///
/// let in_memory = std::env::var_os("TOKENS").is_none();
/// let store = if in_memory {
///     BoxedStore::new(MemoryStore::default())
/// } else {
///     BoxedStore::new(FileStore::new("tokens.json"))
/// };
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct BoxedStore(Arc<dyn Erased>);

impl BoxedStore {
    /// Boxes `store`.
    pub fn new(store: impl TokenStore) -> Self {
        Self(Arc::new(store))
    }
}

impl fmt::Debug for BoxedStore {
    /// The boxed store's own `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The lock of a [`BoxedStore`]: the boxed store's own lock, which only that store accepts.
pub struct BoxedLock(Box<dyn StoreLock>);

impl StoreLock for BoxedLock {
    fn lease(&self) -> Option<Duration> {
        self.0.lease()
    }
}

impl fmt::Debug for BoxedLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.lease() {
            Some(lease) => write!(f, "BoxedLock(lease of {lease:?})"),
            None => f.write_str("BoxedLock(held)"),
        }
    }
}

/// [`TokenStore`] with its lock type erased: what `dyn` needs.
#[async_trait]
trait Erased: Send + Sync + fmt::Debug + 'static {
    async fn dyn_load(&self) -> Result<Option<StoredTokens>, StoreError>;
    async fn dyn_lock(&self) -> Result<BoxedLock, StoreError>;
    async fn dyn_save(&self, tokens: &StoredTokens, lock: &BoxedLock) -> Result<u64, StoreError>;
    async fn dyn_extend(&self, lock: &mut BoxedLock, by: Duration) -> Result<(), StoreError>;
    async fn dyn_release(&self, lock: BoxedLock);
    fn dyn_kind(&self) -> &'static str;
    fn dyn_call_bound(&self) -> Duration;
}

#[async_trait]
impl<S: TokenStore> Erased for S {
    async fn dyn_load(&self) -> Result<Option<StoredTokens>, StoreError> {
        TokenStore::load(self).await
    }

    async fn dyn_lock(&self) -> Result<BoxedLock, StoreError> {
        let lock = TokenStore::lock(self).await?;
        Ok(BoxedLock(Box::new(lock)))
    }

    async fn dyn_save(&self, tokens: &StoredTokens, lock: &BoxedLock) -> Result<u64, StoreError> {
        let lock = (&*lock.0 as &dyn Any)
            .downcast_ref::<S::Lock>()
            .ok_or_else(foreign_lock)?;
        TokenStore::save(self, tokens, lock).await
    }

    async fn dyn_extend(&self, lock: &mut BoxedLock, by: Duration) -> Result<(), StoreError> {
        let lock = (&mut *lock.0 as &mut dyn Any)
            .downcast_mut::<S::Lock>()
            .ok_or_else(foreign_lock)?;
        TokenStore::extend(self, lock, by).await
    }

    async fn dyn_release(&self, lock: BoxedLock) {
        let lock = (lock.0 as Box<dyn Any + Send + Sync>).downcast::<S::Lock>();
        if let Ok(lock) = lock {
            TokenStore::release(self, *lock).await;
        }
    }

    fn dyn_call_bound(&self) -> Duration {
        self.call_bound()
    }

    fn dyn_kind(&self) -> &'static str {
        TokenStore::kind(self)
    }
}

#[async_trait]
impl TokenStore for BoxedStore {
    type Lock = BoxedLock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.0.dyn_load().await
    }

    async fn lock(&self) -> Result<BoxedLock, StoreError> {
        self.0.dyn_lock().await
    }

    async fn save(&self, tokens: &StoredTokens, lock: &BoxedLock) -> Result<u64, StoreError> {
        self.0.dyn_save(tokens, lock).await
    }

    async fn extend(&self, lock: &mut BoxedLock, by: Duration) -> Result<(), StoreError> {
        self.0.dyn_extend(lock, by).await
    }

    async fn release(&self, lock: BoxedLock) {
        self.0.dyn_release(lock).await
    }

    fn kind(&self) -> &'static str {
        self.0.dyn_kind()
    }

    fn call_bound(&self) -> Duration {
        self.0.dyn_call_bound()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FileStore, MemoryStore, NoLock};
    use crate::RefreshToken;

    #[tokio::test]
    async fn a_boxed_store_refuses_a_lock_of_another_store_type() {
        let memory = BoxedStore::new(MemoryStore::default());
        let dir = tempfile::tempdir().unwrap();
        let file = BoxedStore::new(FileStore::new(dir.path().join("tokens.json")));
        let lock = file.lock().await.unwrap();
        let tokens = StoredTokens::from_refresh_token(RefreshToken::new("rt"));
        let error = memory.save(&tokens, &lock).await.unwrap_err();
        assert!(
            error.to_string().contains("not taken from this store"),
            "{error}"
        );
        assert_eq!(memory.load().await.unwrap().map(|t| t.version), None);
        // Its own lock works.
        let own = memory.lock().await.unwrap();
        assert_eq!(memory.save(&tokens, &own).await.unwrap(), 1);
        assert!(own.lease().is_none() && NoLock.lease().is_none());
    }
}

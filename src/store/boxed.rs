//! [`BoxedStore`]: any store behind one type, for code that chooses its store at run time (the
//! manager keeps one; the command line opens one from a URL).

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

/// The lock of a [`BoxedStore`]: the boxed store's own lock, held together with that store, so
/// that it goes back to its own store without being cast back to its type. Only the
/// [`BoxedStore`] it came from (or a clone of it) accepts it.
pub struct BoxedLock(Box<dyn Held>);

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

/// A store's own lock with the store that made it: every call on the lock is a call on that
/// store, with both types known (tower's `BoxService` erases the same way: the boxed value is
/// never handed back and cast).
struct HeldBy<S: TokenStore> {
    store: Arc<S>,
    lock: S::Lock,
}

/// [`HeldBy`] with the store's type erased.
#[async_trait]
trait Held: Send + Sync {
    /// The address of the store that made the lock, to tell its [`BoxedStore`] from another.
    fn store(&self) -> *const ();
    fn lease(&self) -> Option<Duration>;
    async fn save(&self, tokens: &StoredTokens) -> Result<u64, StoreError>;
    async fn extend(&mut self, by: Duration) -> Result<(), StoreError>;
    async fn release(self: Box<Self>);
}

#[async_trait]
impl<S: TokenStore> Held for HeldBy<S> {
    fn store(&self) -> *const () {
        Arc::as_ptr(&self.store).cast()
    }

    fn lease(&self) -> Option<Duration> {
        self.lock.lease()
    }

    async fn save(&self, tokens: &StoredTokens) -> Result<u64, StoreError> {
        self.store.save(tokens, &self.lock).await
    }

    async fn extend(&mut self, by: Duration) -> Result<(), StoreError> {
        self.store.extend(&mut self.lock, by).await
    }

    async fn release(self: Box<Self>) {
        let HeldBy { store, lock } = *self;
        store.release(lock).await;
    }
}

/// [`TokenStore`] with its lock type erased: what `dyn` needs. Only taking a lock needs the
/// store's type; the lock does the rest ([`Held`]).
#[async_trait]
trait Erased: Send + Sync + fmt::Debug + 'static {
    async fn dyn_load(&self) -> Result<Option<StoredTokens>, StoreError>;
    async fn dyn_lock(self: Arc<Self>) -> Result<BoxedLock, StoreError>;
    fn dyn_kind(&self) -> &'static str;
    fn dyn_call_bound(&self) -> Duration;
}

#[async_trait]
impl<S: TokenStore> Erased for S {
    async fn dyn_load(&self) -> Result<Option<StoredTokens>, StoreError> {
        TokenStore::load(self).await
    }

    async fn dyn_lock(self: Arc<Self>) -> Result<BoxedLock, StoreError> {
        let lock = TokenStore::lock(&*self).await?;
        Ok(BoxedLock(Box::new(HeldBy { store: self, lock })))
    }

    fn dyn_call_bound(&self) -> Duration {
        self.call_bound()
    }

    fn dyn_kind(&self) -> &'static str {
        TokenStore::kind(self)
    }
}

impl BoxedStore {
    /// Whether `lock` was taken from this store (or a clone of it).
    fn made(&self, lock: &BoxedLock) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.0).cast::<()>(), lock.0.store())
    }
}

impl TokenStore for BoxedStore {
    type Lock = BoxedLock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.0.dyn_load().await
    }

    async fn lock(&self) -> Result<BoxedLock, StoreError> {
        Arc::clone(&self.0).dyn_lock().await
    }

    async fn save(&self, tokens: &StoredTokens, lock: &BoxedLock) -> Result<u64, StoreError> {
        if !self.made(lock) {
            return Err(foreign_lock());
        }
        lock.0.save(tokens).await
    }

    async fn extend(&self, lock: &mut BoxedLock, by: Duration) -> Result<(), StoreError> {
        if !self.made(lock) {
            return Err(foreign_lock());
        }
        lock.0.extend(by).await
    }

    /// Releases `lock` in the store that made it (a lock of another store is released there
    /// too: it is of no use to anyone else).
    async fn release(&self, lock: BoxedLock) {
        lock.0.release().await
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
        // Its own lock works, also through a clone of the store.
        let own = memory.lock().await.unwrap();
        assert_eq!(memory.clone().save(&tokens, &own).await.unwrap(), 1);
        assert!(own.lease().is_none() && NoLock.lease().is_none());
    }

    #[tokio::test]
    async fn a_boxed_store_refuses_a_lock_of_another_store_of_the_same_type() {
        // Two token files: the same store type, two stores. A lock on one must never write
        // (or extend a lease on) the other.
        let dir = tempfile::tempdir().unwrap();
        let first = BoxedStore::new(FileStore::new(dir.path().join("first.json")));
        let second = BoxedStore::new(FileStore::new(dir.path().join("second.json")));
        let tokens = StoredTokens::from_refresh_token(RefreshToken::new("rt"));
        let mut lock = first.lock().await.unwrap();
        let refused = second.save(&tokens, &lock).await.unwrap_err();
        assert!(refused.to_string().contains("not taken from this store"));
        let refused = second.extend(&mut lock, Duration::from_secs(1)).await;
        assert!(refused.is_err());
        assert!(second.load().await.unwrap().is_none());
        assert!(first.load().await.unwrap().is_none());
        assert_eq!(first.save(&tokens, &lock).await.unwrap(), 1);
        first.release(lock).await;
        // Released: the second store's lock is free, the first's is free again.
        drop(second.lock().await.unwrap());
        drop(first.lock().await.unwrap());
    }
}

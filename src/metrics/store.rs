//! The manager's store, timed and counted (feature `metrics`): the manager is built with its store
//! wrapped in [`Metered`], so every store call it makes is measured in one place and no call site
//! in the manager changes.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use ::metrics::{counter, histogram};

use super::labels;
use super::{STORE_DURATION_SECONDS, STORE_ERRORS_TOTAL};
use crate::store::{BoxedStore, StoreError, StoredTokens, TokenStore};

/// `store`, with each call timed and each failure counted.
pub(crate) fn instrument(store: impl TokenStore) -> BoxedStore {
    BoxedStore::new(Metered {
        kind: store.kind(),
        inner: store,
    })
}

struct Metered<S> {
    inner: S,
    /// Asked once: it is the `store` label of every error.
    kind: &'static str,
}

impl<S: TokenStore> Metered<S> {
    async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        histogram!(STORE_DURATION_SECONDS, "op" => op).record(started.elapsed());
        if let Err(error) = &result {
            let kind = labels::store_error_kind(error);
            counter!(STORE_ERRORS_TOTAL, "store" => self.kind, "kind" => kind).increment(1);
        }
        result
    }
}

/// The wrapped store's own `Debug`: the manager's `Debug` output does not change with the feature.
impl<S: TokenStore> fmt::Debug for Metered<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<S: TokenStore> TokenStore for Metered<S> {
    type Lock = S::Lock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.timed("load", self.inner.load()).await
    }

    async fn lock(&self) -> Result<S::Lock, StoreError> {
        self.timed("lock", self.inner.lock()).await
    }

    async fn save(&self, tokens: &StoredTokens, lock: &S::Lock) -> Result<u64, StoreError> {
        self.timed("save", self.inner.save(tokens, lock)).await
    }

    async fn extend(&self, lock: &mut S::Lock, by: Duration) -> Result<(), StoreError> {
        self.timed("extend", self.inner.extend(lock, by)).await
    }

    async fn release(&self, lock: S::Lock) {
        let started = Instant::now();
        self.inner.release(lock).await;
        histogram!(STORE_DURATION_SECONDS, "op" => "release").record(started.elapsed());
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn call_bound(&self) -> Duration {
        self.inner.call_bound()
    }
}

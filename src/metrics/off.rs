//! The hooks without the `metrics` feature: the same signatures as the recording ones, doing
//! nothing, so the manager's call sites need no `#[cfg]` and compile to nothing.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::manager::state::State;
use crate::store::{BoxedStore, TokenStore};

/// The store as it is, boxed.
#[inline]
pub(crate) fn instrument(store: impl TokenStore) -> BoxedStore {
    BoxedStore::new(store)
}

/// The request as it is.
#[inline]
pub(crate) fn refresh<F, T>(request: F) -> impl Future<Output = Result<T, Error>>
where
    F: Future<Output = Result<T, Error>>,
{
    request
}

/// Nothing.
#[inline]
pub(crate) fn observe(_state: &State, _now: Duration, _utc_now: DateTime<Utc>) {}

/// Nothing.
#[inline]
pub(crate) fn invalidated() {}

/// Nothing.
#[inline]
#[cfg(feature = "redis")]
pub(crate) fn rollback_detection(_grant: &str, _on: bool) {}

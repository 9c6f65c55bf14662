//! The lease a [`RedisStore`](super::RedisStore) lock holds: `SET <lock key> <owner> NX PX`, with
//! an owner id drawn at random for every lease, so that only its holder can release, extend or
//! save under it.

use std::time::Duration;

use tokio::sync::Notify;

use super::connection::Connection;
use crate::store::StoreLock;

use super::scripts;

/// Signalled after any lease of this process is released, so that a `lock()` waiting in this
/// process (another manager, or the next task) tries again at once instead of at its next poll.
pub(super) static RELEASED: Notify = Notify::const_new();

/// The lock of a [`RedisStore`](super::RedisStore): a lease on the grant's lock key, owned by a
/// random id drawn for it, released when dropped (in a task) or by
/// [`TokenStore::release`](crate::store::TokenStore::release) (awaited). Its store's `save`
/// and `extend` take only a lease on their own key, and Redis checks the owner.
pub struct RedisLock {
    /// The lock key this lease is on (a guard from another grant's store is not this lease).
    pub(super) lock_key: String,
    /// The random value stored in the lock key while this lease holds it.
    pub(super) owner: String,
    /// The tokens key, passed to the release script with the lock key (same hash slot).
    tokens_key: String,
    connection: Connection,
    /// How long the lease lasts from when the request that took or last extended it was sent.
    pub(super) lease: Duration,
}

impl RedisLock {
    pub(super) fn new(
        tokens_key: String,
        lock_key: String,
        owner: String,
        connection: Connection,
        lease: Duration,
    ) -> Self {
        Self {
            lock_key,
            owner,
            tokens_key,
            connection,
            lease,
        }
    }
}

impl StoreLock for RedisLock {
    fn lease(&self) -> Option<Duration> {
        Some(self.lease)
    }
}

/// The lease's length only: the owner id is the lease's capability.
impl std::fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLock")
            .field("lock_key", &self.lock_key)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RedisLock {
    /// Releases the lease now and waits for Redis's answer (`TokenStore::release`): what a
    /// process about to exit needs, where a task spawned on drop would never run.
    pub(super) async fn release(mut self) {
        let owner = std::mem::take(&mut self.owner);
        release(self.connection.clone(), self.keys(), owner).await;
    }

    fn keys(&self) -> [String; 2] {
        [self.tokens_key.clone(), self.lock_key.clone()]
    }
}

/// Runs the owner-checked release script; a failure leaves the lease to run out.
async fn release(mut connection: Connection, keys: [String; 2], owner: String) {
    let released: Result<i64, _> = scripts::RELEASE
        .key(&keys[0])
        .key(&keys[1])
        .arg(owner)
        .invoke_async(&mut connection)
        .await;
    if released.is_err() {
        tracing::debug!("the token store's lease was not released; it will run out");
    }
    RELEASED.notify_waiters();
}

impl Drop for RedisLock {
    /// Releases the lease in a task on the current Tokio runtime, unless it was released
    /// explicitly. Outside a runtime (or if the release fails) the lease simply runs out: the
    /// next holder waits for it, nothing breaks.
    fn drop(&mut self) {
        if self.owner.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let owner = std::mem::take(&mut self.owner);
        runtime.spawn(release(self.connection.clone(), self.keys(), owner));
    }
}

/// A new owner id: 128 random bits, in hexadecimal.
pub(super) fn new_owner() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_random_and_hexadecimal() {
        let (a, b) = (new_owner().unwrap(), new_owner().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|byte| byte.is_ascii_hexdigit()));
    }
}

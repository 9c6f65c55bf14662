//! Where the manager keeps tokens between refreshes and across restarts: the [`TokenStore`]
//! trait and the persisted document here; the stores in their own files ([`MemoryStore`] in
//! `memory.rs`, [`FileStore`] in `file.rs`, `RedisStore` under `redis/`).

mod boxed;
mod file;
mod lineage;
mod memory;
#[cfg(feature = "redis")]
pub mod redis;

pub use boxed::{BoxedLock, BoxedStore};
pub(crate) use file::readable_by_others;
#[cfg(any(test, feature = "redis"))]
pub(crate) use file::DEFAULT_LOCK_WAIT;
pub use file::{FileLock, FileStore};
pub(crate) use lineage::RESTORE_GRACE;
pub(crate) use lineage::{Fingerprint, Lineage};
pub(crate) use lineage::{FingerprintKey, DOCUMENT_FINGERPRINTS};
pub use memory::{MemoryLock, MemoryStore};

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::{AccessToken, RefreshToken};
use crate::session::Session;

/// The tokens a store keeps, and what every process sharing them must know about them.
/// `Debug` is redacted; serializing writes the real values (that is what a store is for).
///
/// Fields added after the first release are optional in the document: an older file reads as a
/// usable token at version 0.
///
/// Made with [`from_refresh_token`](Self::from_refresh_token) or
/// [`from_session`](Self::from_session) and the `with_…` methods, and read with methods of the
/// same names as its parts ([`refresh_token`](Self::refresh_token),
/// [`version`](Self::version), …). Where the document stands in the grant's history (operator
/// generation, write sequence, fingerprints of rotated-away refresh tokens) is serialized with
/// it and kept by the manager alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    pub(crate) refresh_token: RefreshToken,
    pub(crate) refresh_expires: Option<DateTime<Utc>>,
    pub(crate) access_token: Option<AccessToken>,
    pub(crate) access_expires: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) state: TokenState,
    #[serde(default)]
    pub(crate) refreshed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) version: u64,
    /// Operator generation, write sequence, fingerprints of rotated-away refresh tokens (never
    /// the tokens), and whether it was written back into a store that went back: see `Lineage`.
    #[serde(default, skip_serializing_if = "Lineage::is_empty")]
    pub(crate) lineage: Lineage,
    /// Set by the store that read the document, never stored: see
    /// [`read_from_another_instance`](Self::read_from_another_instance).
    #[serde(skip)]
    pub(crate) instance_changed: bool,
}

impl StoredTokens {
    /// Only a refresh token, e.g. from `POST /auth/token`: the first call refreshes.
    pub fn from_refresh_token(refresh_token: RefreshToken) -> Self {
        Self {
            refresh_token,
            refresh_expires: None,
            access_token: None,
            access_expires: None,
            state: TokenState::Usable,
            refreshed_at: None,
            version: 0,
            lineage: Lineage::default(),
            instance_changed: false,
        }
    }

    /// With this access token, expiring at `expires` (server time).
    #[must_use]
    pub fn with_access_token(mut self, token: AccessToken, expires: Option<DateTime<Utc>>) -> Self {
        self.access_token = Some(token);
        self.access_expires = expires;
        self
    }

    crate::setters! {
        /// With the refresh token expiring at `expires`.
        #[must_use]
        with_refresh_expires(expires: Option<DateTime<Utc>>) => refresh_expires = expires;

        /// With this [`state`](Self::state) (whether the refresh token may be sent).
        #[must_use]
        with_state(state: TokenState) => state = state;

        /// Obtained by a refresh at `at` (the keep-alive measures the refresh token's lifetime from
        /// it).
        #[must_use]
        with_refreshed_at(at: Option<DateTime<Utc>>) => refreshed_at = at;

        /// As [`version`](Self::version) `version` of the document (what a store's
        /// [`load`](TokenStore::load) sets when it keeps the version apart from the document).
        #[must_use]
        with_version(version: u64) => version = version;
    }

    /// The newest refresh token: the only one that is valid.
    pub fn refresh_token(&self) -> &RefreshToken {
        &self.refresh_token
    }

    /// The refresh token, taking it out of the document.
    pub fn into_refresh_token(self) -> RefreshToken {
        self.refresh_token
    }

    /// The refresh token's expiry, when known.
    pub fn refresh_expires(&self) -> Option<DateTime<Utc>> {
        self.refresh_expires
    }

    /// The newest access token, when there is one.
    pub fn access_token(&self) -> Option<&AccessToken> {
        self.access_token.as_ref()
    }

    /// The access token's expiry (server time).
    pub fn access_expires(&self) -> Option<DateTime<Utc>> {
        self.access_expires
    }

    /// Whether the refresh token may be sent: shared, so that one process's 401 or lost response
    /// stops every process from sending it.
    pub fn state(&self) -> TokenState {
        self.state
    }

    /// When these tokens were last obtained by a refresh (local clock), if ever.
    pub fn refreshed_at(&self) -> Option<DateTime<Utc>> {
        self.refreshed_at
    }

    /// The document's version, bumped by every save: a save succeeds only over the version it
    /// was derived from (compare-and-set), so a stale writer never overwrites newer tokens.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Without the access token (and its expiry), keeping everything else: for an access token
    /// that must not be handed out, so that the first call refreshes.
    #[must_use]
    pub fn without_access_token(mut self) -> Self {
        self.access_token = None;
        self.access_expires = None;
        self
    }

    /// As read from another server instance than the one that saved it (a restart, a failover,
    /// a restored backup; for Redis, another `run_id`): what a store's
    /// [`load`](TokenStore::load) says when it can tell. Such a store may have lost later writes
    /// that only running hosts hold, so the manager writes the document back and waits a grace
    /// before anyone refreshes from it. Never stored; a store that cannot tell does not call it.
    #[must_use]
    pub fn read_from_another_instance(mut self) -> Self {
        self.instance_changed = true;
        self
    }

    /// Whether the store said it read these tokens from another server instance than the one
    /// that saved them ([`read_from_another_instance`](Self::read_from_another_instance)).
    pub fn is_from_another_instance(&self) -> bool {
        self.instance_changed
    }

    /// Both tokens of a session.
    pub fn from_session(session: &Session) -> Self {
        Self {
            refresh_token: session.refresh_token.clone(),
            refresh_expires: Some(session.refresh_expires),
            access_token: Some(session.access_token.clone()),
            access_expires: Some(session.access_expires),
            state: TokenState::Usable,
            refreshed_at: None,
            version: 0,
            lineage: Lineage::default(),
            instance_changed: false,
        }
    }

    /// Whether both documents hold the same refresh token (another process may have rotated it).
    pub fn same_refresh_token(&self, other: &StoredTokens) -> bool {
        self.refresh_token.expose_secret() == other.refresh_token.expose_secret()
    }

    /// What these tokens are good for at `now`, by the rules [`TokenManager`](crate::TokenManager)
    /// applies before it sends anything: see [`TokenHealth::of`].
    pub fn health(&self, now: DateTime<Utc>) -> TokenHealth {
        TokenHealth::of(Some(self), now)
    }
}

/// What a store's tokens are good for at a given time, read from the document alone (no request,
/// no process-local state such as a cooldown after this process's own failure).
///
/// The manager decides with it whether stored tokens may be refreshed at all; `genlogs-auth
/// status` and `init` use it too, so the command and the library never disagree. It says what
/// the tokens are good for; the document says the rest: when and how often a refresh went
/// unanswered, or since when a token is dead, is its [`state`](StoredTokens::state), and when
/// the refresh token expires its [`refresh_expires`](StoredTokens::refresh_expires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenHealth {
    /// The refresh token may be sent and the stored access token is valid.
    Usable,
    /// The refresh token may be sent; no stored access token is valid (none was stored, or it
    /// has expired), so the next call refreshes.
    Refreshable,
    /// A refresh's outcome is unknown (the state is [`TokenState::PossiblyRotated`]): the token
    /// is sent again once the cooldown after its last attempt has passed, and a 401 then means
    /// new tokens.
    PossiblyRotated,
    /// New tokens are required, for this reason: the store is empty, the refresh token is
    /// marked dead (the state is [`TokenState::Dead`], with this reason), or it has expired.
    NewTokensRequired(NewTokensReason),
}

impl TokenHealth {
    /// The health of `stored` (`None`: an empty store) at `now`. First match wins: no tokens;
    /// marked dead; refresh token expired; possibly rotated; a valid access token (usable);
    /// otherwise refreshable.
    pub fn of(stored: Option<&StoredTokens>, now: DateTime<Utc>) -> Self {
        let Some(tokens) = stored else {
            return TokenHealth::NewTokensRequired(NewTokensReason::NoTokens);
        };
        if let TokenState::Dead { reason, .. } = tokens.state {
            return TokenHealth::NewTokensRequired(reason);
        }
        if tokens.refresh_expires.is_some_and(|at| at <= now) {
            return TokenHealth::NewTokensRequired(NewTokensReason::RefreshTokenExpired);
        }
        if let TokenState::PossiblyRotated { .. } = tokens.state {
            return TokenHealth::PossiblyRotated;
        }
        let access_valid = tokens.access_token.is_some()
            && tokens.access_expires.is_some_and(|expires| expires > now);
        if access_valid {
            TokenHealth::Usable
        } else {
            TokenHealth::Refreshable
        }
    }

    /// Why new tokens are required, when they are (dead, expired, none).
    pub fn new_tokens_reason(&self) -> Option<NewTokensReason> {
        match self {
            TokenHealth::NewTokensRequired(reason) => Some(*reason),
            _ => None,
        }
    }

    /// Whether the refresh token may still be in use (usable, refreshable or possibly rotated):
    /// replacing it abandons a grant that may work.
    pub fn is_live(&self) -> bool {
        self.new_tokens_reason().is_none()
    }
}

/// Whether a stored refresh token may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenState {
    /// Nothing is known against it.
    #[default]
    Usable,
    /// A refresh with it was sent and no answer says what became of it (in flight, timed out,
    /// connection dropped, a 408 or a 5xx but 501 and 503): GenLogs may have rotated it. The manager marks this in
    /// the store before every refresh it sends, so a crash mid-request leaves the doubt behind.
    /// Sending it again is safe (if it was rotated, the grant is lost whatever happens), but not
    /// before the cooldown after `last_attempt` (doubling per attempt), so that processes sharing
    /// the store do not all retry at once. A 401 then means the grant was lost.
    PossiblyRotated {
        /// When the first unanswered refresh was sent.
        since: DateTime<Utc>,
        /// Refreshes sent with it since then.
        attempts: u32,
        /// When the last one was sent.
        last_attempt: DateTime<Utc>,
        /// When the last one times out: its send time plus the sender's own request timeout,
        /// on the sender's clock. Other hosts wait that long (`deadline - last_attempt`, at most
        /// 15 min), on their own clocks, whatever their own timeout: hosts with different
        /// settings agree on when the attempt is over. `None` in documents written before 0.3.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<DateTime<Utc>>,
    },
    /// It must never be sent again: new tokens are needed.
    Dead {
        /// Why.
        reason: NewTokensReason,
        /// When it was found dead.
        since: DateTime<Utc>,
    },
}

/// Why new tokens are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NewTokensReason {
    /// The store holds no tokens.
    NoTokens,
    /// GenLogs answered 401: the refresh token is invalid, expired or already used.
    RefreshTokenRejected,
    /// GenLogs answered 401 to the retry of a refresh whose first outcome was unknown: the first
    /// request most likely rotated the token and its answer was lost, so the grant is lost.
    RejectedAfterUnknownOutcome,
    /// The refresh token's own expiry has passed.
    RefreshTokenExpired,
}

impl std::fmt::Display for NewTokensReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NewTokensReason::NoTokens => "the token store is empty",
            NewTokensReason::RefreshTokenRejected => {
                "GenLogs rejected the refresh token (invalid, expired or already used)"
            }
            NewTokensReason::RejectedAfterUnknownOutcome => {
                "GenLogs rejected the refresh token after an earlier refresh's outcome was \
                 unknown: that refresh most likely rotated it and its answer was lost"
            }
            NewTokensReason::RefreshTokenExpired => "the refresh token has expired",
        })
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
    /// The store's lock was not free within the wait allowed (another process holds it).
    #[error("the token store's lock was not free within {waited:?} (another process holds it)")]
    Busy {
        /// How long the call waited.
        waited: Duration,
    },
    /// The stored document changed since it was read (another process saved newer tokens):
    /// nothing was written. Read the store again.
    #[error(
        "the stored tokens changed since they were read (version {found}, expected {expected}); \
         nothing was written"
    )]
    Conflict {
        /// The version the writer had read.
        expected: u64,
        /// The version found in the store.
        found: u64,
    },
    /// The lock's lease ran out (the holder was paused or slow): another process may hold it now,
    /// so nothing was written.
    #[error("the token store's lease was lost before the write; nothing was written")]
    LeaseLost,
    /// The tokens were written, but fewer replicas than required acknowledged the write in time
    /// (a Redis store with `RedisStore::with_min_replicas`): a failover
    /// could lose it, so the save counts as failed. The manager then sends nothing and keeps the
    /// tokens (and the lock) and saves again; a new save over the written document succeeds once
    /// the replicas are back.
    #[error(
        "the tokens were written but only {acknowledged} of the {required} replicas required \
         acknowledged them in time; the save counts as failed (a failover could lose it)"
    )]
    #[non_exhaustive]
    NotDurable {
        /// How many replicas acknowledged the write (for an fsync requirement, fsynced it).
        acknowledged: usize,
        /// How many were required.
        required: usize,
    },
    /// The store could not be reached (a network store): nothing is known about what it holds.
    #[error("the token store is unreachable")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A network store holds a value that is not a token document this store can read (see
    /// [`UnreadableReason`]); nothing about it is shown. Replacing the tokens overwrites it.
    #[error("token store {store}: {reason}")]
    Unreadable {
        /// Which store and key (never a URL or a credential).
        store: String,
        /// What is wrong with it.
        reason: UnreadableReason,
        /// The stored version (kept in clear beside the document): what a save that replaces
        /// the document names.
        version: u64,
    },
    /// Any other store's failure.
    #[error("token store: {0}")]
    Other(String),
}

impl StoreError {
    /// For a document that exists but cannot be read as tokens (corrupt, too widely readable,
    /// encrypted with another key): the version a save must name to overwrite it, as
    /// [`TokenStore::replace`] does. `None` for every other error.
    pub fn overwrite_version(&self) -> Option<u64> {
        match self {
            StoreError::Unreadable { version, .. } => Some(*version),
            // A file store's save treats such a file as no document.
            StoreError::Corrupt { .. } | StoreError::InsecurePermissions { .. } => Some(0),
            _ => None,
        }
    }
}

/// Why a stored value could not be read as tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnreadableReason {
    /// It does not decrypt with the configured key: a different key, or the value was altered
    /// (or copied from another grant or an older version).
    #[error("the stored tokens do not decrypt with the configured key (a different key, or the stored value was altered)")]
    WrongKeyOrAltered,
    /// It is encrypted and this store has no key.
    #[error("the stored tokens are encrypted and no encryption key is configured")]
    EncryptedWithoutKey,
    /// It is not encrypted but this store has a key: refused rather than trusted.
    #[error("the stored tokens are not encrypted but an encryption key is configured; replace the tokens to encrypt them")]
    NotEncrypted,
    /// It decrypted (or needed no decryption) but is not a token document.
    #[error("not a token document: {problem}")]
    NotATokenDocument {
        /// Where and what is wrong (never a value).
        problem: String,
    },
}

/// A store's lock, held while a refresh reads, refreshes and writes, so that processes sharing
/// a store refresh once between them. Released on drop, or by [`TokenStore::release`].
///
/// Every store defines its own ([`TokenStore::Lock`]), with private fields: only the store
/// creates one, only the store extends it, and its [`save`](TokenStore::save) takes only its own
/// type (and checks that the lock is on the same document). Code outside the store can read how
/// long a lease lasts, and nothing else.
pub trait StoreLock: Send + Sync + 'static {
    /// For a lease (a lock that runs out by itself, so that a crashed holder cannot block the
    /// others forever): how long it lasts, counted from when the request that took it or last
    /// extended it was sent. The manager counts it from when it called
    /// [`lock`](TokenStore::lock) or [`extend`](TokenStore::extend), earlier still, so its
    /// deadline never overstates the lease. `None` (the default): the lock does not run out.
    fn lease(&self) -> Option<Duration> {
        None
    }
}

/// The lock of a store used by one process only, where nothing else can take it: excludes
/// nothing, never runs out. (A store's own type would do as well; this one is for stores
/// written in a few lines, such as test doubles.)
#[derive(Debug)]
#[non_exhaustive]
pub struct NoLock;

impl NoLock {
    /// The lock (for a store's [`lock`](TokenStore::lock)).
    pub fn new() -> Self {
        NoLock
    }
}

impl Default for NoLock {
    fn default() -> Self {
        NoLock
    }
}

impl StoreLock for NoLock {}

/// Persistence for the manager, shared by every process that uses the same tokens.
///
/// Every write happens under [`lock`](Self::lock) and is a compare-and-set on
/// [`StoredTokens::version`]: that is what keeps two processes from both spending one
/// single-use refresh token, and a stale process from overwriting newer tokens.
///
/// The calls: [`lock()`](Self::lock) (a bounded wait), [`load()`](Self::load), and
/// [`save(tokens, &lock)`](Self::save), which writes only over the version the tokens were
/// derived from; [`replace()`](Self::replace) is an operator's overwrite, written once here for
/// every store. A lock may be a lease that runs out by itself ([`StoreLock::lease`]): the manager
/// sends a refresh only while the lease outlasts the request's total timeout, extending it first
/// if needed.
///
/// [`MemoryStore`] serves one process; [`FileStore`] serves restarts and several processes on one
/// host; `RedisStore` (feature `redis`) serves a fleet of hosts sharing one grant. To choose a
/// store at run time, box it: [`BoxedStore`].
///
/// A store of your own implements the methods with plain `async fn` (no attribute); the futures
/// must be `Send`, so that the manager can run them on any task:
///
/// ```
/// use genlogs_auth::store::{NoLock, StoreError, StoredTokens, TokenStore};
/// use std::sync::Mutex;
///
/// /// One process's tokens in a mutex (what `MemoryStore` does).
/// #[derive(Debug, Default)]
/// struct Tokens(Mutex<Option<StoredTokens>>);
///
/// impl TokenStore for Tokens {
///     type Lock = NoLock;
///
///     async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
///         Ok(self.0.lock().unwrap().clone())
///     }
///
///     async fn lock(&self) -> Result<NoLock, StoreError> {
///         Ok(NoLock::new())
///     }
///
///     async fn save(&self, tokens: &StoredTokens, _: &NoLock) -> Result<u64, StoreError> {
///         let mut stored = self.0.lock().unwrap();
///         let found = stored.as_ref().map_or(0, |stored| stored.version());
///         if found != tokens.version() {
///             return Err(StoreError::Conflict { expected: tokens.version(), found });
///         }
///         let version = found + 1;
///         *stored = Some(tokens.clone().with_version(version));
///         Ok(version)
///     }
/// }
/// ```
pub trait TokenStore: Send + Sync + Debug + 'static {
    /// This store's lock: a type only the store can create.
    type Lock: StoreLock;

    /// The stored tokens; `None` when nothing was ever stored. A document that exists but cannot
    /// be read fails with an error whose [`StoreError::overwrite_version`] is the version a save
    /// must name to replace it.
    fn load(&self) -> impl Future<Output = Result<Option<StoredTokens>, StoreError>> + Send;

    /// Excludes other users of the same store until the lock is dropped. Waits a bounded time,
    /// then fails with [`StoreError::Busy`].
    fn lock(&self) -> impl Future<Output = Result<Self::Lock, StoreError>> + Send;

    /// Writes `tokens` under `lock`, atomically (a crash leaves the old or the new document), if
    /// the stored document's version is still `tokens.version()` (no document counts as version
    /// 0); it is written as version `tokens.version() + 1`, which is returned. Otherwise nothing is
    /// written: [`StoreError::Conflict`], or [`StoreError::LeaseLost`] when the lock ran out.
    fn save(
        &self,
        tokens: &StoredTokens,
        lock: &Self::Lock,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Extends a lease to at least `by` from now, if `lock` still holds it
    /// ([`StoreError::LeaseLost`] otherwise); afterwards `lock.lease()` is how long it lasts,
    /// counted from this call. A store whose locks are leases must implement it: the default
    /// accepts only locks that do not run out, and fails for a lease rather than let the caller
    /// believe it was extended.
    fn extend(
        &self,
        lock: &mut Self::Lock,
        by: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = by;
        let extended = match lock.lease() {
            None => Ok(()),
            Some(_) => Err(StoreError::Other(
                "this store's locks are leases, and it does not extend them".into(),
            )),
        };
        std::future::ready(extended)
    }

    /// Releases `lock` now, and waits until it is released. The default drops it, which is
    /// enough for locks released by dropping; a store whose release is a network call (a lease)
    /// does it here, so that a process about to exit (a command-line tool) leaves nothing held.
    fn release(&self, lock: Self::Lock) -> impl Future<Output = ()> + Send {
        drop(lock);
        std::future::ready(())
    }

    /// Replaces whatever is stored with `tokens` (an operator's new tokens): takes the lock, reads
    /// the version (also of a document that cannot be read: replacing is for that too), and saves
    /// over it with a new operator generation (a document's lineage), so that every host follows
    /// it.
    /// Returns the new version. Stores do not override it.
    fn replace(
        &self,
        tokens: &StoredTokens,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move {
            let lock = self.lock().await?;
            let saved = async {
                let (stored, version) = match self.load().await {
                    Ok(stored) => {
                        let version = stored.as_ref().map_or(0, |stored| stored.version());
                        (stored, version)
                    }
                    Err(error) => match error.overwrite_version() {
                        Some(version) => (None, version),
                        None => return Err(error),
                    },
                };
                let tokens = operator_write(tokens, stored.as_ref(), version);
                self.save(&tokens, &lock).await
            }
            .await;
            self.release(lock).await;
            saved
        }
    }

    /// What kind of store this is, as one short lowercase word: `memory`, `file`, `redis`. It is
    /// the `store` label of the crate's metrics (`genlogs_auth::metrics`, feature `metrics`), so
    /// it must be a fixed word, never a path, a URL or a key. The default is `other`.
    fn kind(&self) -> &'static str {
        "other"
    }

    /// The longest one call of this store (a read, a save, an extension) may take to answer or
    /// fail: its own timeouts, plus any wait for replicas. After the store did not answer, a
    /// host waits about twice this (and the retry interval of an unsaved rotation) before it
    /// sends a possibly-rotated token again, so that a holder of an unsaved rotation, whose
    /// call may still be hanging when the store answers again, saves it first. The default,
    /// 1 s, suits a local store; a networked one returns its bound.
    fn call_bound(&self) -> Duration {
        DEFAULT_CALL_BOUND
    }
}

/// [`TokenStore::call_bound`]'s default: a store on this host.
const DEFAULT_CALL_BOUND: Duration = Duration::from_secs(1);

impl<T: TokenStore> TokenStore for std::sync::Arc<T> {
    type Lock = T::Lock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        (**self).load().await
    }

    async fn lock(&self) -> Result<T::Lock, StoreError> {
        (**self).lock().await
    }

    async fn save(&self, tokens: &StoredTokens, lock: &T::Lock) -> Result<u64, StoreError> {
        (**self).save(tokens, lock).await
    }

    async fn extend(&self, lock: &mut T::Lock, by: Duration) -> Result<(), StoreError> {
        (**self).extend(lock, by).await
    }

    async fn release(&self, lock: T::Lock) {
        (**self).release(lock).await
    }

    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn call_bound(&self) -> Duration {
        (**self).call_bound()
    }
}

/// `tokens` as an operator writes them over `stored` (at `version`): a generation newer than
/// anything before, which every host follows, while a store that merely went back is not.
pub(crate) fn operator_write(
    tokens: &StoredTokens,
    stored: Option<&StoredTokens>,
    version: u64,
) -> StoredTokens {
    let previous = stored.map_or(0, |stored| stored.lineage.generation);
    StoredTokens {
        version,
        lineage: Lineage {
            generation: Lineage::operator_generation(
                previous.max(tokens.lineage.generation),
                Utc::now(),
            ),
            sequence: 0,
            rotated: tokens.lineage.rotated.clone(),
            restored_at: None,
        },
        instance_changed: false,
        ..tokens.clone()
    }
}

/// The two setters of a store whose [`lock`](TokenStore::lock) waits for another holder (a
/// process, or another host's lease): how long, and on which clock. The store has the fields
/// `lock_wait: Duration` and `clock: Arc<dyn Clock>`; extra lines document the clock setter.
macro_rules! lock_wait_setters {
    ($(#[doc = $clock_doc:literal])*) => {
        crate::setters! {
            /// How long [`lock`](crate::store::TokenStore::lock) waits for another holder before
            /// failing with [`StoreError::Busy`](crate::store::StoreError::Busy). Default: 35 s.
            #[must_use]
            with_lock_wait(wait: std::time::Duration) => lock_wait = wait;

            /// The clock that [`lock`](crate::store::TokenStore::lock)'s wait for another holder
            /// is measured and slept on (give the [`ManualClock`](crate::clock::ManualClock) to
            /// drive it in a test). Default: [`SystemClock`](crate::clock::SystemClock).
            $(#[doc = $clock_doc])*
            #[must_use]
            with_clock(clock: std::sync::Arc<dyn crate::clock::Clock>) => clock = clock;
        }
    };
}
pub(crate) use lock_wait_setters;

/// What a store's `save` or `extend` answers to a lock another store (of the same kind, or
/// boxed, of another kind) handed out: nothing is written.
pub(crate) fn foreign_lock() -> StoreError {
    StoreError::Other("the lock was not taken from this store; nothing was written".into())
}

/// Compare-and-set check shared by stores: may a document derived from version `expected` replace
/// what is stored (`found`, `None` when nothing is)?
pub(crate) fn check_version(expected: u64, found: Option<u64>) -> Result<(), StoreError> {
    let found = found.unwrap_or(0);
    if found == expected {
        Ok(())
    } else {
        Err(StoreError::Conflict { expected, found })
    }
}

/// The version a save writes after `read`; a document at the largest version cannot be saved over.
pub(crate) fn next_version(read: u64) -> Result<u64, StoreError> {
    read.checked_add(1)
        .ok_or_else(|| StoreError::Other("the stored document's version is at its maximum".into()))
}

/// Decodes a stored token document, describing a failure by JSON path and kind of problem, never
/// by value.
pub(crate) fn decode_document(bytes: &[u8]) -> Result<StoredTokens, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let at = e.path().to_string();
        format!("`{at}`: {}", crate::redact::safe_serde_message(e.inner()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn tokens() -> StoredTokens {
        StoredTokens {
            refresh_expires: Some(at("2026-12-03T10:00:00Z")),
            access_token: Some(AccessToken::new("at")),
            access_expires: Some(at("2026-11-26T10:30:00Z")),
            ..StoredTokens::from_refresh_token(RefreshToken::new("rt"))
        }
    }

    const NOW: &str = "2026-11-26T10:00:00Z";

    #[test]
    fn no_tokens_need_new_ones() {
        let health = TokenHealth::of(None, at(NOW));
        assert_eq!(
            health,
            TokenHealth::NewTokensRequired(NewTokensReason::NoTokens)
        );
        assert_eq!(health.new_tokens_reason(), Some(NewTokensReason::NoTokens));
        assert!(!health.is_live());
    }

    #[test]
    fn a_valid_access_token_is_usable_and_an_expired_or_missing_one_refreshable() {
        assert_eq!(tokens().health(at(NOW)), TokenHealth::Usable);
        let expired = tokens().health(at("2026-11-26T10:30:00Z"));
        assert_eq!(expired, TokenHealth::Refreshable, "expiry is exclusive");
        let bare = StoredTokens::from_refresh_token(RefreshToken::new("rt"));
        assert_eq!(bare.health(at(NOW)), TokenHealth::Refreshable);
        let no_expiry = StoredTokens {
            access_expires: None,
            ..tokens()
        };
        assert_eq!(no_expiry.health(at(NOW)), TokenHealth::Refreshable);
        assert!(TokenHealth::Usable.is_live() && TokenHealth::Refreshable.is_live());
    }

    #[test]
    fn a_possibly_rotated_token_is_live_until_a_401() {
        let state = TokenState::PossiblyRotated {
            since: at("2026-11-26T09:58:00Z"),
            attempts: 2,
            last_attempt: at("2026-11-26T09:59:00Z"),
            deadline: None,
        };
        let health = StoredTokens { state, ..tokens() }.health(at(NOW));
        assert_eq!(health, TokenHealth::PossiblyRotated);
        assert!(health.is_live() && health.new_tokens_reason().is_none());
    }

    #[test]
    fn an_expired_refresh_token_needs_new_ones_even_when_possibly_rotated() {
        let state = TokenState::PossiblyRotated {
            since: at(NOW),
            attempts: 1,
            last_attempt: at(NOW),
            deadline: None,
        };
        let expires = at("2026-11-26T10:00:00Z");
        let tokens = StoredTokens {
            state,
            refresh_expires: Some(expires),
            ..tokens()
        };
        let health = tokens.health(at(NOW));
        assert_eq!(
            health,
            TokenHealth::NewTokensRequired(NewTokensReason::RefreshTokenExpired)
        );
        assert_eq!(
            health.new_tokens_reason(),
            Some(NewTokensReason::RefreshTokenExpired)
        );
    }

    #[test]
    fn a_dead_mark_wins_over_everything_else() {
        let since = at("2026-11-26T09:00:00Z");
        let tokens = StoredTokens {
            state: TokenState::Dead {
                reason: NewTokensReason::RejectedAfterUnknownOutcome,
                since,
            },
            refresh_expires: Some(at("2026-11-01T00:00:00Z")),
            ..tokens()
        };
        let health = tokens.health(at(NOW));
        assert_eq!(
            health,
            TokenHealth::NewTokensRequired(NewTokensReason::RejectedAfterUnknownOutcome)
        );
        assert!(!health.is_live());
    }
}

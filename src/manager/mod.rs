//! [`TokenManager`]: always hands out a valid access token, refreshing ahead of expiry in one
//! background task however many callers there are, persisting the rotated refresh token before
//! anyone sees the new access token, and sharing through the store everything another process
//! must know (a dead token, a possibly rotated one).
//!
//! The decisions are pure functions in `state/`, and the protocol around them (lock, read,
//! decide, mark, send, save, release, wait) is a sans-IO state machine in `driver.rs`; this
//! module only performs the effects the driver asks for.

mod actor;
mod driver;
mod error;
mod keep_alive;
#[cfg(test)]
mod simulation;
pub(crate) mod state;

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::FutureExt;
use reqwest::header::HeaderMap;

use crate::secret::{AccessToken, RefreshToken};
use crate::store::{BoxedStore, StoredTokens, TokenStore};
use crate::AuthClient;

use crate::clock::{Clock, SystemClock};
pub use error::TokenError;
pub use keep_alive::{GrantRenewal, KeepAlive};
pub(crate) use keep_alive::{DEFAULT_KEEP_ALIVE_MARGIN, STORE_WATCH_INTERVAL};
pub(crate) use state::MAX_COOLDOWN;

use driver::{Driver, Job};
use state::{apply, LoadNote, Outcome, Policy, State};

/// Renew the access token when less than this is left (or half its lifetime, when that is
/// shorter), and at the latest when it stops being handed out (10 s by default).
/// Callers keep getting the cached token meanwhile; only a caller holding no valid token waits
/// for a refresh.
pub(crate) const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// An access token is handed out only while at least this much of it is left, so that it does
/// not expire on its way to GenLogs: the server's `Date`, which lifetimes are measured on, has
/// one-second resolution and may lag its clock, and requests take time. Tokens that live less
/// than twice this are handed out for the first half of their lifetime. (smithy-rs' identity
/// cache keeps the same 10 s buffer.) It is never handed out for less than the minimum refresh
/// interval, since no new one may be fetched sooner.
pub(crate) const DEFAULT_MIN_VALIDITY: Duration = Duration::from_secs(10);

/// Up to this fraction of the margin is added, at random, to when the background refresh starts,
/// so that a fleet started together does not refresh in step (as AWS's identity cache does).
pub(crate) const DEFAULT_REFRESH_JITTER: f64 = 0.5;

/// After a failed refresh (connect failure, 429, 5xx, unknown outcome), wait this long before
/// trying again, doubling with each failure in a row, or the server's `Retry-After` if longer;
/// never more than 15 min. The cached access token is served meanwhile.
pub(crate) const DEFAULT_RETRY_COOLDOWN: Duration = Duration::from_secs(5);

/// Never two refreshes closer together than this, whatever the tokens' lifetimes or
/// [`TokenManager::invalidate`] say: a server that issues already-expired tokens gets one
/// refresh per interval, not a storm. A token is considered valid for at least this long.
pub(crate) const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The response's `Date` corrects local clock skew only when it is within this of the local
/// clock; a `Date` further off (1970, the far future) is not believed and the local clock is used.
pub(crate) const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);

/// An access token is considered valid for at most this long, whatever its `expires` says
/// (year 9999 included): it is renewed at least this often.
pub(crate) const MAX_ACCESS_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// While a rotation is unsaved, its save is tried again (and the lease extended) this often.
pub(crate) const PENDING_RETRY: Duration = Duration::from_secs(1);

/// Configuration for a [`TokenManager`].
///
/// | setting | default |
/// |---|---|
/// | [`with_refresh_margin`](Self::with_refresh_margin) | 60 s before expiry, or half the lifetime if shorter |
/// | [`with_refresh_jitter`](Self::with_refresh_jitter) | up to 0.5 × the margin earlier, at random |
/// | [`with_retry_cooldown`](Self::with_retry_cooldown) | 5 s, doubling per failure in a row, or `Retry-After`; at most 15 min |
/// | [`with_min_refresh_interval`](Self::with_min_refresh_interval) | 5 s |
/// | [`with_max_clock_skew`](Self::with_max_clock_skew) | 1 h |
/// | [`with_min_validity`](Self::with_min_validity) | 10 s, or half the lifetime if shorter |
/// | [`with_keep_alive_margin`](Self::with_keep_alive_margin) | renew the grant when a quarter of the refresh token's lifetime is left (used by [`keep_alive`](TokenManager::keep_alive)) |
/// | [`with_fleet_request_timeout`](Self::with_fleet_request_timeout) | this client's request timeout (set the longest of the fleet when hosts differ) |
/// | [`with_clock`](Self::with_clock) | [`SystemClock`] |
/// | the client's timeouts | connect 5 s, total 30 s (set on the [`AuthClient`]) |
#[derive(Debug)]
#[must_use]
pub struct TokenManagerBuilder {
    client: AuthClient,
    store: BoxedStore,
    clock: ManagerClock,
    policy: Policy,
    keep_alive_margin: f64,
}

/// The manager's clock: the system's, called directly on the hot path (no virtual call), or an
/// injected one.
#[derive(Debug, Clone)]
enum ManagerClock {
    System(SystemClock),
    Injected(Arc<dyn Clock>),
}

impl ManagerClock {
    #[inline]
    fn monotonic(&self) -> Duration {
        match self {
            ManagerClock::System(clock) => clock.monotonic(),
            ManagerClock::Injected(clock) => clock.monotonic(),
        }
    }

    fn utc_now(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            ManagerClock::System(clock) => clock.utc_now(),
            ManagerClock::Injected(clock) => clock.utc_now(),
        }
    }

    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        match self {
            ManagerClock::System(clock) => clock.sleep(duration),
            ManagerClock::Injected(clock) => clock.sleep(duration),
        }
    }
}

impl TokenManagerBuilder {
    /// Renew when less than `margin` is left. Default: 60 s.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.policy.margin = margin;
        self
    }

    /// The random share of the margin added to when a refresh starts, between 0 and 1.
    /// Default: 0.5.
    pub fn with_refresh_jitter(mut self, fraction: f64) -> Self {
        self.policy.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    crate::setters! {
        /// The first wait after a failed refresh. Default: 5 s.
        with_retry_cooldown(cooldown: Duration) => policy.cooldown = cooldown.min(MAX_COOLDOWN);

        /// The shortest time between two refreshes. Default: 5 s.
        with_min_refresh_interval(interval: Duration)
            => policy.min_interval = interval.min(MAX_COOLDOWN);

        /// How far the server's `Date` may be from the local clock and still be believed. Default:
        /// 1 h.
        with_max_clock_skew(skew: Duration) => policy.max_clock_skew = skew;

        /// The longest request timeout of any host sharing this grant (the client's
        /// [`with_timeout`](crate::client::AuthClientBuilder::with_timeout) there). Default: this
        /// host's own. When a store goes back (a failover that lost writes, a restore, an empty
        /// restart) it may lose the possibly-rotated mark of a request still in flight; nobody
        /// refreshes from the tokens written back then before this + 2 s has passed, so that
        /// request's answer is saved first. A fleet whose hosts use different request timeouts sets
        /// the longest on every host.
        with_fleet_request_timeout(timeout: Duration)
            => policy.fleet_request_timeout = timeout.min(MAX_COOLDOWN);

        /// Hand out an access token only while at least `validity` of it is left (half its lifetime
        /// for tokens living less than twice that); it is renewed before then. Default: 10 s.
        with_min_validity(validity: Duration) => policy.min_validity = validity;
    }

    /// [`keep_alive`](TokenManager::keep_alive) renews the grant when less than this share of
    /// the refresh token's lifetime is left (between 0 and 1; moved earlier at random by up to
    /// the [refresh jitter](Self::with_refresh_jitter) of it, so a fleet does not renew in step).
    /// Default: 0.25.
    pub fn with_keep_alive_margin(mut self, share: f64) -> Self {
        self.keep_alive_margin = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            DEFAULT_KEEP_ALIVE_MARGIN
        };
        self
    }

    /// The clock: every decision, wait, cooldown and lease deadline of the manager runs on it.
    /// Default: [`SystemClock`]. A [`ManualClock`](crate::clock::ManualClock) drives a whole refresh cycle in a test without
    /// real waiting; with a store whose leases run out in real time (Redis), the manager then
    /// measures them on the manual clock too, so advance it at least as fast as real time passes
    /// (or test with a store whose leases are on the same clock). Network timeouts stay real time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = ManagerClock::Injected(clock);
        self
    }

    /// Builds the manager. Nothing is read until the first call.
    pub fn build(self) -> TokenManager {
        TokenManager {
            shared: Arc::new(Shared {
                client: self.client,
                store: self.store,
                clock: self.clock,
                policy: self.policy,
                keep_alive_margin: self.keep_alive_margin,
                current: RwLock::new(Arc::new(State::default())),
                mailbox: std::sync::Mutex::new(actor::Mailbox::new(Driver::new(
                    self.policy.request_timeout,
                ))),
                background: std::sync::atomic::AtomicBool::new(false),
                keeping_pending: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }
}

/// Hands out valid access tokens for a long-running process; cheap to clone.
///
/// Needs a tokio runtime: one task per manager, its actor, performs every store call and refresh
/// in order, so a caller that is cancelled never aborts a refresh halfway (which would lose the
/// rotated token). Callers send it requests only when they hold no valid token; the cached path
/// reads the published state and never waits for it.
///
/// A process that runs for weeks does not want one refresh call; it wants a valid `Access-Token`
/// for every other GenLogs request. The manager hands one out, refreshing when it is about to
/// expire, and keeps the rotated refresh token safe:
///
/// ```no_run
/// use genlogs_auth::{AuthClient, FileStore, TokenManager};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = AuthClient::builder(std::env::var("GENLOGS_API_KEY")?).build()?;
/// // Seed the file once with `StoredTokens::from_refresh_token(…)` (from `POST /auth/token`).
/// let manager = TokenManager::builder(client, FileStore::new("/var/lib/myapp/genlogs-tokens.json")).build();
///
/// let token = manager.access_token().await?; // valid, refreshed ahead of expiry
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// To call other GenLogs endpoints with it, let the middleware (`genlogs_auth::middleware`,
/// feature `middleware`) set the headers, or send [`auth_headers`](Self::auth_headers).
/// `cargo run --example token_manager` runs this against the local stand-in. The settings and
/// their defaults are on [`TokenManagerBuilder`]; the errors, and what each means for the
/// operator, on [`TokenError`]; the stores on [`TokenStore`].
///
/// # Behaviour
///
/// - **Cheap when cached, never waiting while valid.** [`access_token()`](Self::access_token)
///   returns a ready future while the cached token is valid
///   ([`cached_access_token()`](Self::cached_access_token) is the synchronous form). Once a token
///   is inside the refresh margin, callers still get it at once and **one background refresh**
///   starts; only a caller holding no valid token waits. The start of that refresh is moved
///   earlier by a random share of the margin (up to half,
///   [`with_refresh_jitter`](TokenManagerBuilder::with_refresh_jitter)), so a fleet started
///   together does not refresh in step.
/// - **One refresh, whoever asks.** Any number of concurrent callers cause one refresh and all get
///   its result. The refresh runs in its own task: a caller whose future is dropped (a timeout, a
///   `select!`) never aborts it halfway, which would lose the rotated token. A refresh task that
///   dies (a panic, a runtime shut down under it) is never joined again: the next call starts
///   another.
/// - **Rotation is saved first.** The new refresh token is written to the store before any caller
///   receives the new access token. If the write fails, callers get [`TokenError::Store`], the new
///   tokens stay in memory, **the store stays locked** (no other process can read and send the
///   rotated-away token; the same holds for a recovered token and a dead or possibly-rotated
///   mark), and the next call retries the save (not the refresh). Saves are a compare-and-set on
///   the document's version, so tokens another process saved later are never overwritten.
/// - **Shared state lives in the store.** Whether the refresh token is dead (a 401) or possibly
///   rotated (a refresh whose answer was lost) is written to the store
///   ([`StoredTokens::state`]), so every process sharing it, and this one after a restart, knows.
///   Tokens saved in the store by another process or an operator are read before anything else
///   is decided, also during a cooldown, and revive a manager whose token died.
/// - **Failures.** A connect failure, 429 or 503 keeps serving the cached access token while it is
///   valid, and retries after a cooldown (5 s, doubling with each failure in a row, or
///   `Retry-After` when longer, never more than 15 min); after expiry callers
///   get [`TokenError::Refresh`].
/// - **An unknown outcome is retried, not declared dead.** Before every refresh it sends, the
///   manager marks the token *possibly rotated* in the store (so a crash mid-request, a timeout, a
///   dropped connection, a 408 or any 5xx but 501 and 503 leaves that doubt where every
///   process sees it; [`Error::may_have_spent_token`](crate::Error::may_have_spent_token)). After the
///   cooldown since the last attempt (doubling per attempt, on the wall clock all processes share)
///   the same token is sent again: if GenLogs never processed the first request, that succeeds; if
///   it had rotated the token, its answer is lost whatever the client does, and the retry's 401
///   costs nothing more. That 401 gives [`TokenError::NewTokensRequired`] with the reason
///   `RejectedAfterUnknownOutcome`; meanwhile callers without a valid token get
///   [`TokenError::OutcomeUnknown`] with the time of the next attempt. A request that was
///   certainly not processed (connect failure, 429, 501, 503, another 4xx) takes the mark back. A plain 401 or an
///   expired refresh token give `NewTokensRequired` too: nothing more is sent with that token
///   until new tokens arrive ([`replace_tokens`](Self::replace_tokens), or saved in the store by
///   another process or tool).
/// - **A store that went back.** If the store returns to the very tokens this process rotated away
///   (a failover lost a write, a backup was restored), the newer tokens are written back instead
///   of the old token being sent again; tokens anyone else wrote are adopted.
/// - **Time you cannot trust.** Expiries are server time. When the response's `Date` is within an
///   hour of the local clock ([`with_max_clock_skew`](TokenManagerBuilder::with_max_clock_skew)),
///   the token's lifetime is measured on the server's clock (less a second: `Date` has one-second
///   resolution), so a skewed local clock changes nothing; a `Date` further off (1970, the far
///   future) is not believed. Lifetimes are clamped to `[5 s, 24 h]`
///   (5 s, 24 h): an `expires` in year 9999 is
///   renewed within a day, and a server issuing already-expired tokens gets one refresh per 5 s,
///   not a storm. A token whose lifetime is shorter than the margin is renewed at half its
///   lifetime. Durations saturate; nothing a server sends can overflow them.
/// - **Never a token about to expire.** An access token is handed out only while at least 10 s of
///   it are left ([`with_min_validity`](TokenManagerBuilder::with_min_validity),
///   10 s; half its lifetime for tokens living less than 20 s): the server's
///   `Date` may lag its clock, and the request to GenLogs takes time. While refreshing fails,
///   callers get the cached token until then, then an error, never a token GenLogs will answer
///   `401 expired` to. (Tested against a stand-in whose `Date` runs a second behind: 0 expired
///   tokens reached it; without the buffer, every run sent some.)
/// - **Never a stale connection.** Each refresh opens a new connection: a pooled one may have been
///   closed by the server as idle (uvicorn after 5 s, gateways after a minute) just as the refresh
///   is written to it, and the single-use token would then be in doubt for a request GenLogs never
///   saw. A refresh happens once per access token lifetime; the handshake is paid that rarely.
/// - **Another endpoint said 401.** [`manager.invalidate(&token)`](Self::invalidate) drops that
///   access token if it is still the current one: the next call refreshes, once however many
///   callers report it, and never sooner than the minimum interval after the last refresh. It is
///   never handed out again, also when a document holding it is read again (a peer's mark, an
///   operator's rewrite): the manager remembers the last 8 rejected (their fingerprints, in
///   memory). The middleware does this for you.
/// - **An endpoint that rejects every token.** A 401 to a fresh access token that a new one
///   does not fix (the api key lacks a permission) would otherwise rotate the grant once per
///   minimum interval, forever, on every host. From the second fresh token rejected in a row,
///   refreshes back off: 10 s, 20 s, 40 s, … at most 15 min, and callers
///   without a valid token get [`TokenError::AccessRejected`] (how many in a row, and when the
///   next refresh may go). The first success reported ([`confirm`](Self::confirm); the
///   middleware reports them) or a token kept until its refresh point ends it. The metric
///   `genlogs_auth_access_rejections_in_a_row` shows the run.
/// - **A process about to exit.** [`manager.refresh_now()`](Self::refresh_now) rotates on demand
///   and saves under the store's lock. After a save that failed ([`TokenError::Store`]),
///   [`manager.unsaved_tokens()`](Self::unsaved_tokens) holds the only copy of the new refresh
///   token and [`manager.flush()`](Self::flush) tries the save again; keep them somewhere safe
///   before exiting (the command writes a rescue file).
///   [`StoredTokens::health(now)`](StoredTokens::health) reads a stored document by the
///   manager's own rules (usable, refreshable, possibly rotated, dead, expired, empty).
/// - **Tracing.** A `genlogs_token_refresh` span with start and outcome events (status,
///   duration); never a token, a key or a URL.
///
/// The decisions are a pure function of the manager's state (`src/manager/state/`, its decision
/// table in that module's documentation, each row a unit test with fixed times); the protocol
/// around them is a sans-IO state machine (`src/manager/driver.rs`) whose effects (store calls,
/// the refresh, waits) this type performs.
///
/// # Keeping a grant alive
///
/// The refresh token expires too (GenLogs' live days). A service that asks for no access token
/// for longer than that, a weekend batch job or a standby replica, would find its grant dead on
/// the next call. [`keep_alive()`](Self::keep_alive) starts a background task that renews the
/// grant when less than a quarter of the refresh token's lifetime is left, whether or not anyone
/// asks for a token:
///
/// ```no_run
/// # use genlogs_auth::TokenManager;
/// # fn run(manager: TokenManager) {
/// let keep_alive = manager.keep_alive(); // renews while this handle lives
/// // … the service runs, busy or idle …
/// drop(keep_alive); // stops the task; a renewal under way still finishes and is saved
/// # }
/// ```
///
/// - The share is [`with_keep_alive_margin`](TokenManagerBuilder::with_keep_alive_margin)
///   (default 0.25); the lifetime runs from when the refresh token was issued
///   ([`StoredTokens::refreshed_at`]) to its expiry. A token seeded by hand, whose issue time is
///   unknown, is renewed at the first check, which records it.
/// - Each host moves its renewal earlier at random by up to the refresh jitter of that share, so a
///   fleet does not renew in step; the renewal reads the store first, so a grant another host
///   renewed is adopted, never renewed twice. The task looks again at least hourly.
/// - It waits on the manager's clock ([`Clock::sleep`]): with a
///   [`ManualClock`](crate::clock::ManualClock) a test runs a week of idleness in well under a second
///   (`tests/it/manager.rs`: 1-day refresh tokens, 168 hours, 9 renewals, 0 reuse).
/// - [`renew_grant_if_due()`](Self::renew_grant_if_due) is one such check. From cron, without a
///   long-running process:
///
/// ```text
/// 0 * * * *  GENLOGS_STORE=/var/lib/myapp/genlogs-tokens.json genlogs-auth keep-alive
/// ```
///
/// `genlogs-auth keep-alive` renews only inside the margin (`--margin`), prints what it did (never
/// a token) and exits as `status` does: 0 alive, 2 new tokens required, 1 failure (try again
/// later).
#[derive(Debug, Clone)]
pub struct TokenManager {
    shared: Arc<Shared>,
}

struct Shared {
    client: AuthClient,
    store: BoxedStore,
    clock: ManagerClock,
    policy: Policy,
    /// The share of the refresh token's lifetime left when the keep-alive renews it.
    keep_alive_margin: f64,
    /// What callers read; replaced whole (lock-free reads on the hot path).
    current: RwLock<Arc<State>>,
    /// The actor's requests, and the protocol's state machine while no actor runs: one job (a
    /// refresh, a replacement, a read) at a time. The driver holds the store's lock between
    /// jobs while rotated tokens could not be saved, so no other process reads the
    /// rotated-away token.
    mailbox: std::sync::Mutex<actor::Mailbox>,
    /// A background refresh of a due token is queued (one request, however many callers).
    background: std::sync::atomic::AtomicBool,
    /// Whether `keep_pending_safe` runs.
    keeping_pending: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("store", &self.store)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn current(&self) -> Arc<State> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Folds `outcome` into the current state (read-modify-write, so a concurrent
    /// [`TokenManager::invalidate`] is never lost).
    fn apply(&self, outcome: Outcome) -> Arc<State> {
        let (now, utc_now) = (self.clock.monotonic(), self.clock.utc_now());
        let read = matches!(outcome, Outcome::Loaded(_) | Outcome::Unreadable(_));
        let next = {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            let next = Arc::new(apply(
                (**current).clone(),
                outcome,
                &self.policy,
                now,
                utc_now,
            ));
            *current = next.clone();
            next
        };
        if read {
            log_note(next.note);
        }
        crate::metrics::observe(&next, now, utc_now);
        next
    }
}

/// Logs what a store read did (the pure core returns it; the actor does the I/O).
fn log_note(note: Option<LoadNote>) {
    match note {
        None => {}
        Some(LoadNote::OperatorFollowed) => {
            tracing::warn!("an operator replaced the genlogs tokens in the store; following them");
        }
        Some(LoadNote::WroteBack { known_rotated }) => tracing::warn!(
            known_rotated,
            "the token store went back to older tokens; writing the newer ones back"
        ),
        Some(LoadNote::Adopted) => tracing::info!("adopted genlogs tokens from the store"),
        Some(LoadNote::AdoptedOverUnsaved) => tracing::warn!(
            "the token store holds tokens written by someone else; adopting them and dropping \
             the unsaved ones"
        ),
    }
}

impl TokenManager {
    /// Starts a configuration: the client to refresh with, and where the tokens live.
    pub fn builder(client: AuthClient, store: impl TokenStore) -> TokenManagerBuilder {
        let request_timeout = client.request_timeout();
        let outage_settle = state::outage_settle(store.call_bound());
        let fingerprints = crate::store::FingerprintKey::from_api_key(client.api_key());
        TokenManagerBuilder {
            client,
            store: crate::metrics::instrument(store),
            clock: ManagerClock::System(SystemClock::new()),
            policy: Policy {
                margin: DEFAULT_REFRESH_MARGIN,
                jitter: DEFAULT_REFRESH_JITTER,
                cooldown: DEFAULT_RETRY_COOLDOWN,
                min_interval: DEFAULT_MIN_REFRESH_INTERVAL,
                max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
                max_lifetime: MAX_ACCESS_LIFETIME,
                min_validity: DEFAULT_MIN_VALIDITY,
                request_timeout,
                fleet_request_timeout: request_timeout,
                outage_settle,
                fingerprints,
            },
            keep_alive_margin: DEFAULT_KEEP_ALIVE_MARGIN,
        }
    }

    /// A valid access token. While the cached one is valid it is returned at once; once it is
    /// within the refresh margin, one background refresh starts (however many callers ask).
    /// Only a caller holding no valid token waits for a refresh. If refreshing fails for a
    /// reason that may pass, the cached token is served for as long as it is valid.
    ///
    /// Nothing happens until the future is polled (a future built and dropped unpolled reads
    /// no clock and starts no refresh); the cached path then completes on its first poll without
    /// touching the refresh machinery.
    pub async fn access_token(&self) -> Result<Arc<AccessToken>, TokenError> {
        let now = self.shared.clock.monotonic();
        let cached = {
            let state = self
                .shared
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner());
            state
                .servable()
                .filter(|access| !access.serve_until.passed(now))
                .map(|access| {
                    let due = access.refresh_at.passed(now)
                        && state.quiet_until.is_none_or(|until| until.passed(now));
                    (access.token.clone(), due)
                })
        };
        match cached {
            Some((token, due)) => {
                if due {
                    self.refresh_in_background();
                }
                Ok(token)
            }
            // Boxed: the refresh's state stays out of every caller's future.
            None => self.refreshed_access_token().boxed().await,
        }
    }

    /// The cached access token if it is valid; never waits or refreshes.
    pub fn cached_access_token(&self) -> Option<Arc<AccessToken>> {
        let now = self.shared.clock.monotonic();
        self.shared.current().valid(now).cloned()
    }

    /// Reports that another GenLogs endpoint answered 401 to `rejected`: if it is still the
    /// current access token, it is dropped and the next call refreshes (once, however many
    /// callers report it, and never sooner than the minimum refresh interval after the last
    /// refresh). Whichever it is, it is never handed out again, whatever document brings it back.
    ///
    /// An endpoint that keeps answering 401 to fresh tokens (a permission or api-key problem,
    /// which new tokens do not fix) is not answered with a refresh per minimum interval: from
    /// the second fresh token rejected in a row, refreshes back off (the minimum interval
    /// doubling per rejection, at most 15 min) and callers without a valid token get
    /// [`TokenError::AccessRejected`] meanwhile. [`confirm`](Self::confirm) ends the backoff.
    pub fn invalidate(&self, rejected: &AccessToken) {
        crate::metrics::invalidated();
        self.shared
            .apply(Outcome::AccessRejected(Arc::new(rejected.clone())));
    }

    /// Reports that another GenLogs endpoint accepted `accepted` (it answered with a success):
    /// a backoff after access tokens rejected in a row ([`TokenError::AccessRejected`]) ends.
    /// Cheap when there is none (a read of the cached state); the middleware calls it after
    /// every success. A token reported rejected before changes nothing.
    pub fn confirm(&self, accepted: &AccessToken) {
        let backing_off = self
            .shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .rejections
            .is_some();
        if backing_off {
            self.shared
                .apply(Outcome::AccessAccepted(Arc::new(accepted.clone())));
        }
    }

    async fn refreshed_access_token(&self) -> Result<Arc<AccessToken>, TokenError> {
        let mut result = Err(TokenError::Interrupted);
        // A task that died under this caller (its runtime shut down) is finished by the time its
        // result says so: the second join starts a new task.
        for _ in 0..2 {
            result = self.shared.job(Job::Answer, None).await;
            if !matches!(result, Err(TokenError::Interrupted)) {
                break;
            }
        }
        let now = self.shared.clock.monotonic();
        let state = self.shared.current();
        match (result, state.valid(now)) {
            (_, Some(token)) => Ok(token.clone()),
            (Err(error), None) => Err(error),
            (Ok(()), None) => Err(TokenError::Interrupted),
        }
    }

    fn refresh_in_background(&self) {
        // One request however many callers find the token due; the next after the actor took it.
        if !self
            .shared
            .background
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.shared
                .request(actor::Request::new(Job::Answer, None, None));
        }
    }

    /// The client the manager refreshes with: it also builds the headers for a given token
    /// (the middleware needs to know which token it sent, to invalidate that one after a 401).
    #[cfg(feature = "middleware")]
    pub(crate) fn client(&self) -> &AuthClient {
        &self.shared.client
    }

    /// `Access-Token` and `x-api-key`, both marked sensitive, for calling any other GenLogs
    /// endpoint with a valid access token.
    pub async fn auth_headers(&self) -> Result<HeaderMap, TokenError> {
        let token = self.access_token().await?;
        self.shared
            .client
            .auth_headers(&token)
            .map_err(|_| TokenError::InvalidAccessToken)
    }

    /// Refreshes now, whatever the cached access token's expiry, saves the rotated tokens, and
    /// returns the new access token: for a command that rotates on demand (`genlogs-auth refresh
    /// --store`) or a caller that knows the tokens were exposed.
    ///
    /// The same rules as any refresh apply: it joins a refresh already in progress, waits out
    /// the minimum interval since this manager's last refresh, and fails without sending while
    /// the tokens are dead or cooling down. A refresh written to the store by another process
    /// since this manager last read it counts as done. Callers keep getting the current access
    /// token while it is valid, also if this refresh fails.
    pub async fn refresh_now(&self) -> Result<Arc<AccessToken>, TokenError> {
        let known = match self.shared.current().tokens.as_ref() {
            Some(tokens) => tokens.refresh_token.clone(),
            None => self.sync().await?,
        };
        self.renew(known).await?;
        self.access_token().await
    }

    /// Reads the store (without its lock: nothing is decided here) and folds in what it holds,
    /// without refreshing anything; returns the refresh token now held.
    async fn sync(&self) -> Result<RefreshToken, TokenError> {
        // A job of the actor: no refresh runs meanwhile, so its reads and decisions stay in order.
        self.shared.job(Job::Read, None).await?;
        self.shared
            .current()
            .tokens
            .as_ref()
            .map(|tokens| tokens.refresh_token.clone())
            .ok_or(TokenError::NewTokensRequired {
                reason: crate::store::NewTokensReason::NoTokens,
                cause: None,
            })
    }

    /// Reads the store and, if it went back or came back empty (this host then holds newer
    /// tokens, which `sync` marks for writing back), writes them back now.
    async fn watch_store(&self) -> Result<(), TokenError> {
        if self.shared.current().tokens.is_none() {
            return Ok(()); // nothing to write back, and nothing to learn before someone asks
        }
        self.sync().await?;
        if self.shared.current().pending.is_some() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Renews the grant whose refresh token is `known` (unless it has changed already): one
    /// refresh task, whose error is returned when the grant did not change. `Ok(true)` when it
    /// changed.
    async fn renew(&self, known: RefreshToken) -> Result<bool, TokenError> {
        self.shared.apply(Outcome::RenewalRequested(known));
        // A task already under way may have started before the request: then one more.
        for _ in 0..2 {
            let result = self.shared.job(Job::Answer, None).await;
            let state = self.shared.current();
            if !state.renewal_pending() {
                if state.unsaved_refresh_token().is_some() {
                    // Renewed, but not saved yet: say why (the store's error).
                    result?;
                }
                return Ok(true);
            }
            result?;
        }
        Ok(false)
    }

    /// Keeps the grant alive while the service is idle: a background task renews the refresh
    /// token when less than [a share](TokenManagerBuilder::with_keep_alive_margin) of its
    /// lifetime is left, whether or not anyone asks for an access token, so a service idle for
    /// longer than the refresh token lives does not lose the grant. The same task reads the
    /// store every 2 s and, if it went back (a failover that lost writes,
    /// a restored snapshot) or came back empty, writes this host's newer tokens back at once;
    /// every host of a fleet should run it. It looks again at least
    /// hourly (tokens another process renewed are adopted, never renewed twice) and waits on the
    /// manager's [`Clock`]. Dropping the returned handle stops it; a renewal under way finishes.
    ///
    /// Needs a tokio runtime. One task per manager is enough (clones share it).
    pub fn keep_alive(&self) -> KeepAlive {
        KeepAlive::start(self.clone())
    }

    /// One keep-alive check (what the task of [`keep_alive`](Self::keep_alive) does each time,
    /// and `genlogs-auth keep-alive` from cron): renews the grant if its refresh token is inside
    /// the margin, else says when it will be. A refresh token whose issue time is unknown
    /// (seeded by hand) is renewed at once, which records it.
    pub async fn renew_grant_if_due(&self) -> Result<GrantRenewal, TokenError> {
        keep_alive::renew_if_due(self).await
    }

    /// The tokens this manager holds and its store does not: rotated tokens whose save failed
    /// ([`TokenError::Store`]), or a replacement not saved yet. They hold the only copy of the
    /// valid refresh token. The manager keeps retrying the save (on its next refresh task, or
    /// [`flush`](Self::flush)); a process about to exit should keep them somewhere else as safe
    /// as the store (the `genlogs-auth` command writes them to a rescue file). `None` when the
    /// store has everything.
    pub fn unsaved_tokens(&self) -> Option<StoredTokens> {
        self.shared.current().unsaved_refresh_token().cloned()
    }

    /// Saves what this manager holds that its store does not have yet (see
    /// [`unsaved_tokens`](Self::unsaved_tokens)), under the store's lock, without sending
    /// anything to GenLogs; `Ok` at once when nothing is pending. If the store holds tokens
    /// someone else wrote meanwhile, those are adopted and the unsaved ones dropped, as on any
    /// refresh.
    pub async fn flush(&self) -> Result<(), TokenError> {
        self.shared.job(Job::Save, None).await
    }

    /// Replaces the tokens, e.g. with new ones from `POST /auth/token` after
    /// [`TokenError::NewTokensRequired`], saves them over whatever the store holds, and carries
    /// on with them. If the save fails they are kept in memory and saved by the next refresh task.
    pub async fn replace_tokens(&self, tokens: StoredTokens) -> Result<(), TokenError> {
        let result = self
            .shared
            .job(Job::Save, Some(Outcome::Replaced(tokens)))
            .await;
        tracing::info!(persisted = result.is_ok(), "genlogs tokens replaced");
        result
    }
}

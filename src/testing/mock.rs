//! [`MockGenLogs`]: the handle a test holds, its builder, and the state it shares with the
//! server task.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::fault::{ExpiresFormat, Fault};
use super::request::RecordedRequest;
use super::tokens::{Policy, TokenBook};
use crate::clock::{Clock, SystemClock};
use crate::secret::{AccessToken, RefreshToken};
use crate::store::StoredTokens;

/// The api key the stand-in accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "mock-genlogs-api-key";
/// How long issued access tokens live unless told otherwise (GenLogs': 30 minutes).
pub const DEFAULT_ACCESS_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How many requests [`MockGenLogs::requests`] keeps (the most recent), so that a stand-in
/// serving a benchmark or a fuzzer does not grow without bound.
pub(crate) const MAX_RECORDED_REQUESTS: usize = 10_000;
/// How long issued refresh tokens live unless told otherwise (7 days).
pub const DEFAULT_REFRESH_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A GenLogs stand-in on a loopback port, running in the caller's tokio runtime.
///
/// Cloning gives another handle to the same server; it stops when the last handle is dropped.
/// `Debug` shows the address and the counters, never a token or the api key.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), genlogs_auth::Error> {
/// use genlogs_auth::testing::{MockGenLogs, DEFAULT_API_KEY};
/// use genlogs_auth::AuthClient;
///
/// let genlogs = MockGenLogs::start().await;
/// let tokens = genlogs.issue_tokens();
/// let client = AuthClient::builder(DEFAULT_API_KEY)
///     .with_base_url(genlogs.base_url())
///     .build()?;
/// let session = client.refresh(tokens.refresh_token()).await?;
/// assert_eq!(genlogs.refreshes(), 1);
/// assert!(genlogs.is_valid_refresh_token(session.refresh_token.expose_secret()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MockGenLogs {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    _server: Arc<super::server::ServerTask>,
}

/// State shared by the handles and the server task.
pub(crate) struct Shared {
    pub(crate) api_key: String,
    pub(crate) user_id: String,
    pub(crate) company_id: i64,
    pub(crate) expires_format: ExpiresFormat,
    /// The server's time: issuing, expiring and its `Date` header.
    clock: Arc<dyn Clock>,
    /// How far its `Date` header runs behind its clock.
    date_lag: Duration,
    book: Mutex<TokenBook>,
    faults: Mutex<Faults>,
    latency: Mutex<Option<Duration>>,
    requests: Mutex<VecDeque<RecordedRequest>>,
    refresh_requests: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) reuses: AtomicU64,
}

/// Decides a fault per request: see [`MockGenLogs::fail_with`].
type Responder = Arc<dyn Fn(&RecordedRequest) -> Option<Fault> + Send + Sync>;

#[derive(Default)]
struct Faults {
    next: VecDeque<Fault>,
    always: Option<Responder>,
}

/// A poisoned lock only means a test panicked while holding it; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The server's time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.utc_now()
    }

    /// What its `Date` header says now (a lagging one included).
    pub(crate) fn date(&self) -> DateTime<Utc> {
        self.now() - chrono::Duration::from_std(self.date_lag).unwrap_or(chrono::Duration::zero())
    }

    pub(crate) fn book(&self) -> MutexGuard<'_, TokenBook> {
        lock(&self.book)
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        if request.is_refresh() {
            self.refresh_requests.fetch_add(1, Ordering::SeqCst);
        }
        let mut requests = lock(&self.requests);
        if requests.len() == MAX_RECORDED_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(request);
    }

    /// The fault for the request being served, if one is scripted.
    pub(crate) fn take_fault(&self, request: &RecordedRequest) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        if let Some(fault) = faults.next.pop_front() {
            return Some(fault);
        }
        // Called outside the lock: a responder may use the handle (issue tokens, read counters).
        let responder = faults.always.clone()?;
        drop(faults);
        responder(request)
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        *lock(&self.latency)
    }
}

/// Configures a [`MockGenLogs`] before it starts. `Debug` hides the api key.
#[derive(Clone)]
pub struct MockGenLogsBuilder {
    api_key: String,
    policy: Policy,
    expires_format: ExpiresFormat,
    port: u16,
    user_id: String,
    company_id: i64,
    clock: Arc<dyn Clock>,
    date_lag: Duration,
}

impl fmt::Debug for MockGenLogsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockGenLogsBuilder")
            .field("api_key", &"[REDACTED]")
            .field("policy", &self.policy)
            .field("expires_format", &self.expires_format)
            .field("port", &self.port)
            .field("user_id", &self.user_id)
            .field("company_id", &self.company_id)
            .field("clock", &self.clock)
            .field("date_lag", &self.date_lag)
            .finish()
    }
}

impl Default for MockGenLogsBuilder {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_string(),
            policy: Policy {
                access_lifetime: DEFAULT_ACCESS_LIFETIME,
                refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
                revoke_family_on_reuse: true,
            },
            expires_format: ExpiresFormat::GENLOGS,
            port: 0,
            user_id: "user-42".to_string(),
            company_id: 7,
            clock: Arc::new(SystemClock::new()),
            date_lag: Duration::ZERO,
        }
    }
}

impl MockGenLogsBuilder {
    crate::setters! {
        /// The `x-api-key` the gateway accepts (default [`DEFAULT_API_KEY`]); any other gets `403
        /// {"message":"Forbidden"}`.
        with_api_key(api_key: impl Into<String>) => api_key = api_key.into();

        /// How long issued access tokens live (default [`DEFAULT_ACCESS_LIFETIME`]). Zero issues
        /// tokens that are already expired.
        with_access_lifetime(lifetime: Duration) => policy.access_lifetime = lifetime;

        /// How long issued refresh tokens live (default [`DEFAULT_REFRESH_LIFETIME`]).
        with_refresh_lifetime(lifetime: Duration) => policy.refresh_lifetime = lifetime;

        /// Whether presenting a rotated refresh token again revokes its whole family, every access
        /// and refresh token descended from the same `issue_tokens()` (default `true`, as RFC 9700
        /// §4.14 recommends). Either way the reuse is answered 401 and counted in
        /// [`MockGenLogs::reuses`].
        with_revoke_family_on_reuse(revoke: bool) => policy.revoke_family_on_reuse = revoke;

        /// The form of `expires` in token responses (default [`ExpiresFormat::GENLOGS`]: naive, six
        /// fractional digits).
        with_expires_format(format: ExpiresFormat) => expires_format = format;

        /// The loopback port to listen on (default 0: a free port).
        with_port(port: u16) => port = port;
    }

    /// The `user_id` and `company_id` in token responses (default `user-42`, 7).
    pub fn with_user(mut self, user_id: impl Into<String>, company_id: i64) -> Self {
        self.user_id = user_id.into();
        self.company_id = company_id;
        self
    }

    crate::setters! {
        /// The server's clock (default [`SystemClock`]): what it issues tokens against, when they
        /// expire, and its `Date` header. Give it the [`ManualClock`](crate::clock::ManualClock)
        /// the manager under test uses to run days of token lifetimes in a test.
        with_clock(clock: Arc<dyn Clock>) => clock = clock;

        /// How far the `Date` header of its token responses runs behind its clock (default zero).
        /// Real servers' `Date` has one-second resolution and may lag their clock further: a client
        /// that measures token lifetimes on the server's `Date` must not overshoot the real expiry.
        with_date_lag(lag: Duration) => date_lag = lag;
    }

    /// Binds `127.0.0.1` and starts serving in the current tokio runtime.
    ///
    /// # Panics
    /// When the port cannot be bound (see [`try_start`](Self::try_start)) or outside a runtime.
    pub async fn start(self) -> MockGenLogs {
        self.try_start()
            .await
            .expect("MockGenLogs could not bind a loopback port")
    }

    /// Like [`start`](Self::start), returning the bind error instead of panicking.
    pub async fn try_start(self) -> std::io::Result<MockGenLogs> {
        let shared = Arc::new(Shared {
            api_key: self.api_key,
            user_id: self.user_id,
            company_id: self.company_id,
            expires_format: self.expires_format,
            clock: self.clock,
            date_lag: self.date_lag,
            book: Mutex::new(TokenBook::new(self.policy)),
            faults: Mutex::default(),
            latency: Mutex::default(),
            requests: Mutex::default(),
            refresh_requests: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            reuses: AtomicU64::new(0),
        });
        let (addr, task) = super::server::spawn(shared.clone(), self.port).await?;
        Ok(MockGenLogs {
            shared,
            addr,
            _server: Arc::new(task),
        })
    }
}

impl MockGenLogs {
    /// Starts a stand-in with the defaults on a free loopback port.
    ///
    /// # Panics
    /// Outside a tokio runtime, or when no loopback port can be bound.
    pub async fn start() -> MockGenLogs {
        Self::builder().start().await
    }

    /// Configures a stand-in (lifetimes, reuse policy, api key, port).
    pub fn builder() -> MockGenLogsBuilder {
        MockGenLogsBuilder::default()
    }

    /// `http://127.0.0.1:PORT/auth`: what to pass to
    /// [`AuthClientBuilder::with_base_url`](crate::client::AuthClientBuilder::with_base_url).
    pub fn base_url(&self) -> String {
        format!("http://{}/auth", self.addr)
    }

    /// `http://127.0.0.1:PORT` followed by `path`, e.g. the protected endpoint's URL
    /// `genlogs.url(PROTECTED_PATH)`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The URL of the protected endpoint ([`PROTECTED_PATH`](super::PROTECTED_PATH)), which
    /// checks `Access-Token` and `x-api-key` like every other GenLogs endpoint.
    pub fn protected_url(&self) -> String {
        self.url(super::answer::PROTECTED_PATH)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The api key the stand-in accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// A new token family, as `POST /auth/token` (email and password) would create it: both
    /// tokens and their expiries, ready to seed a store.
    pub fn issue_tokens(&self) -> StoredTokens {
        let issued = self.shared.book().create(self.shared.now());
        let mut tokens = StoredTokens::from_refresh_token(RefreshToken::new(issued.refresh));
        tokens.refresh_expires = Some(issued.refresh_expires);
        tokens.access_token = Some(AccessToken::new(issued.access));
        tokens.access_expires = Some(issued.access_expires);
        tokens
    }

    /// The JSON body `POST /auth/token` would return for a new token family, expiries in the
    /// configured form: what `genlogs-auth init` reads.
    pub fn issue_token_body(&self) -> serde_json::Value {
        let issued = self.shared.book().create(self.shared.now());
        super::answer::token_body(
            &issued,
            &self.shared.user_id,
            self.shared.company_id,
            self.shared.expires_format,
        )
    }

    /// Scripts `fault` for the next `count` requests (after any already scripted).
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut faults = lock(&self.shared.faults);
        faults.next.extend(std::iter::repeat_n(fault, count));
    }

    /// Scripts `fault` for every request once the scripted ones are used up, until
    /// [`clear_faults`](Self::clear_faults).
    pub fn fail_always(&self, fault: Fault) {
        self.fail_with(move |_| Some(fault.clone()));
    }

    /// Once the scripted faults are used up, asks `responder` about every request: `Some` plays
    /// that fault, `None` answers like GenLogs. Replaces any earlier `fail_always`/`fail_with`
    /// until [`clear_faults`](Self::clear_faults). For faults that depend on the request (only
    /// the refresh endpoint, only a given token) or on time.
    pub fn fail_with(
        &self,
        responder: impl Fn(&RecordedRequest) -> Option<Fault> + Send + Sync + 'static,
    ) {
        lock(&self.shared.faults).always = Some(Arc::new(responder));
    }

    /// Processes `request` as GenLogs would (a refresh rotates the token) and returns the answer
    /// as a [`Fault::Respond`]: for a [`fail_with`](Self::fail_with) responder that alters
    /// GenLogs' own answer (a blank token, an extra header). A responder that holds a handle
    /// keeps the server running until [`clear_faults`](Self::clear_faults).
    pub fn process(&self, request: &RecordedRequest) -> Fault {
        let answer = super::answer::genlogs(&self.shared, request, self.shared.expires_format);
        Fault::Respond {
            status: answer.status,
            headers: answer.headers,
            body: answer.body.to_vec(),
        }
    }

    /// Forgets every scripted fault: the stand-in answers like GenLogs again.
    pub fn clear_faults(&self) {
        *lock(&self.shared.faults) = Faults::default();
    }

    /// Waits this long before answering each request (or stop waiting with `None`).
    pub fn set_latency(&self, latency: Option<Duration>) {
        *lock(&self.shared.latency) = latency;
    }

    /// Revokes every token issued so far: refreshes and the protected endpoint answer 401.
    pub fn revoke_all(&self) {
        self.shared.book().revoke_all();
    }

    /// Revokes one access token before its time, as GenLogs may (a logout elsewhere, an
    /// operator): the protected endpoint answers it 401 from now on. Every other token, its
    /// refresh token included, stays valid. An unknown token is ignored.
    pub fn revoke_access_token(&self, token: &str) {
        self.shared.book().revoke_access(token);
    }

    /// Successful refreshes (rotations), including those whose answer a
    /// [`Fault::Drop`]`{ rotate: true }` lost.
    pub fn refreshes(&self) -> u64 {
        self.shared.refreshes.load(Ordering::SeqCst)
    }

    /// Refreshes that presented an already rotated refresh token.
    pub fn reuses(&self) -> u64 {
        self.shared.reuses.load(Ordering::SeqCst)
    }

    /// Requests to the refresh endpoint received so far, answered or not.
    pub fn refresh_requests(&self) -> usize {
        self.shared.refresh_requests.load(Ordering::SeqCst) as usize
    }

    /// The requests received so far, in arrival order: all of them, or the most recent
    /// 10,000.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).iter().cloned().collect()
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).back().cloned()
    }

    /// Whether a refresh with `token` would succeed now.
    pub fn is_valid_refresh_token(&self, token: &str) -> bool {
        self.shared
            .book()
            .is_valid_refresh(token, self.shared.now())
    }

    /// Whether the protected endpoint would accept `token` now.
    pub fn is_valid_access_token(&self, token: &str) -> bool {
        self.shared.book().is_valid_access(token, self.shared.now())
    }

    /// Every token issued so far (access and refresh), for asserting that none leaked into
    /// logs or errors. These are the real values.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.book().all_issued().to_vec()
    }
}

impl fmt::Debug for MockGenLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockGenLogs")
            .field("addr", &self.addr)
            .field("refreshes", &self.refreshes())
            .field("reuses", &self.reuses())
            .field("requests", &lock(&self.shared.requests).len())
            .finish_non_exhaustive()
    }
}

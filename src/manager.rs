//! [`TokenManager`]: always hands out a valid access token, refreshing once for any number of
//! callers, persisting the rotated refresh token before anyone sees the new access token, and
//! never sending a refresh token that is known to be dead.

use std::sync::{Arc, Mutex};

use std::time::Duration;

use std::future::Future;

use futures_util::future::{self, BoxFuture, Either, FutureExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::secret::AccessToken;
use crate::store::{StoreError, StoredTokens, TokenStore};
use crate::{AuthClient, Session};

/// Refresh when the access token has less than this left. GenLogs' access tokens live for
/// minutes, and a request made with a token must still reach the server before it expires.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// After a failed refresh (connect failure, 429, 5xx), wait this long (or the server's
/// `Retry-After`) before trying again; the cached access token is served meanwhile.
pub const DEFAULT_RETRY_COOLDOWN: Duration = Duration::from_secs(5);

/// Why the manager cannot hand out a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The refresh token is dead or missing: an operator must create new tokens
    /// (`POST /auth/token` with email and password) and pass them to
    /// [`TokenManager::replace_tokens`]. No request is sent until then.
    #[error(
        "new GenLogs tokens must be created (POST /auth/token) and given to \
         TokenManager::replace_tokens: {reason}"
    )]
    NewTokensRequired {
        /// Why.
        reason: NewTokensReason,
        /// The refresh error that made the token dead, if any.
        #[source]
        cause: Option<Arc<Error>>,
    },
    /// A refresh failed for a reason that may pass (connect failure, 429, 5xx) and the cached
    /// access token has expired.
    #[error("refreshing the GenLogs access token failed and the cached one has expired")]
    Refresh(#[source] Arc<Error>),
    /// The store could not be read or written. After a refresh, the rotated tokens are kept in
    /// memory and saving is retried on the next call; the new access token is handed out only
    /// once it is saved.
    #[error("the GenLogs token store failed")]
    Store(#[source] Arc<StoreError>),
    /// GenLogs issued an access token that is not a valid HTTP header value.
    #[error("the access token GenLogs issued is not a valid header value")]
    InvalidAccessToken,
    /// The refresh task ended without a result (it panicked, or the runtime shut down).
    #[error("the token refresh task ended without a result")]
    Interrupted,
}

impl TokenError {
    /// Whether an operator must supply new tokens before anything can succeed.
    pub fn needs_new_tokens(&self) -> bool {
        matches!(self, TokenError::NewTokensRequired { .. })
    }
}

/// Why new tokens are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NewTokensReason {
    /// The store holds no tokens.
    NoTokens,
    /// GenLogs answered 401: the refresh token is invalid, expired or already used.
    RefreshTokenRejected,
    /// A refresh was sent but its outcome is unknown, so the token sent may have been rotated.
    OutcomeUnknown,
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
            NewTokensReason::OutcomeUnknown => {
                "the last refresh's outcome is unknown, so the refresh token may have been rotated"
            }
            NewTokensReason::RefreshTokenExpired => "the refresh token has expired",
        })
    }
}

/// Configuration for a [`TokenManager`].
#[derive(Debug)]
#[must_use]
pub struct TokenManagerBuilder {
    client: AuthClient,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    margin: Duration,
    cooldown: Duration,
}

impl TokenManagerBuilder {
    /// Refresh when less than `margin` is left. Default: [`DEFAULT_REFRESH_MARGIN`].
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Wait after a failed refresh. Default: [`DEFAULT_RETRY_COOLDOWN`] (or `Retry-After`).
    pub fn with_retry_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The clock. Default: [`SystemClock`].
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the manager. Nothing is read until the first call.
    pub fn build(self) -> TokenManager {
        let api_key = self.client.api_key_header();
        TokenManager {
            shared: Arc::new(Shared {
                client: self.client,
                api_key,
                store: self.store,
                clock: self.clock,
                margin: self.margin,
                cooldown: self.cooldown,
                current: std::sync::RwLock::new(Arc::new(Current::default())),
                flight: Mutex::new(None),
                serial: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

/// Hands out valid access tokens for a long-running process; cheap to clone.
///
/// Needs a tokio runtime: refreshes run in spawned tasks, so a caller that is cancelled never
/// aborts a refresh halfway (which would lose the rotated token).
#[derive(Debug, Clone)]
pub struct TokenManager {
    shared: Arc<Shared>,
}

type Flight = future::Shared<BoxFuture<'static, Result<Arc<Current>, TokenError>>>;

struct Shared {
    client: AuthClient,
    api_key: HeaderValue,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    margin: Duration,
    cooldown: Duration,
    /// What callers read; replaced whole (lock-free reads on the hot path).
    current: std::sync::RwLock<Arc<Current>>,
    /// The refresh in progress, which every caller that needs one joins.
    flight: Mutex<Option<Flight>>,
    /// One refresh or replacement at a time.
    serial: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("store", &self.store)
            .field("margin", &self.margin)
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

/// The manager's view of the tokens.
#[derive(Default, Clone)]
struct Current {
    tokens: Option<StoredTokens>,
    /// The access token and, on the monotonic clock, when it expires.
    access: Option<(Arc<AccessToken>, Duration)>,
    /// Whether `tokens` are in the store (false after a failed save).
    persisted: bool,
    /// Set when the refresh token is dead: no request is sent until new tokens arrive.
    dead: Option<(NewTokensReason, Option<Arc<Error>>)>,
    /// The last transient failure and, on the monotonic clock, when retrying is allowed.
    failure: Option<(Arc<Error>, Duration)>,
}

impl Current {
    fn from_tokens(tokens: StoredTokens, persisted: bool, clock: &dyn Clock) -> Self {
        let access =
            tokens
                .access_token
                .clone()
                .zip(tokens.access_expires)
                .map(|(token, expires)| {
                    let left = (expires - clock.utc_now())
                        .to_std()
                        .unwrap_or(Duration::ZERO);
                    (Arc::new(token), clock.monotonic() + left)
                });
        Self {
            tokens: Some(tokens),
            access,
            persisted,
            dead: None,
            failure: None,
        }
    }

    /// A session's tokens, with the access lifetime measured on the server's clock when it sent
    /// a `Date`, so that local clock skew does not matter.
    fn from_session(session: &Session, clock: &dyn Clock) -> Self {
        let server_now = session.server_date.unwrap_or_else(|| clock.utc_now());
        let left = (session.access_expires - server_now)
            .to_std()
            .unwrap_or(Duration::ZERO);
        Self {
            tokens: Some(StoredTokens::from_session(session)),
            access: Some((
                Arc::new(session.access_token.clone()),
                clock.monotonic() + left,
            )),
            persisted: false,
            dead: None,
            failure: None,
        }
    }

    /// The access token, if saved and valid beyond `margin` at `now`.
    fn fresh(&self, now: Duration, margin: Duration) -> Option<&Arc<AccessToken>> {
        self.valid_at(now.saturating_add(margin))
    }

    fn valid_at(&self, at: Duration) -> Option<&Arc<AccessToken>> {
        match &self.access {
            Some((token, expires)) if self.persisted && at < *expires => Some(token),
            _ => None,
        }
    }
}

impl TokenManager {
    /// Starts a configuration: the client to refresh with, and where the tokens live.
    pub fn builder(client: AuthClient, store: impl TokenStore) -> TokenManagerBuilder {
        TokenManagerBuilder {
            client,
            store: Arc::new(store),
            clock: Arc::new(SystemClock::new()),
            margin: DEFAULT_REFRESH_MARGIN,
            cooldown: DEFAULT_RETRY_COOLDOWN,
        }
    }

    /// A valid access token: the cached one while it has more than the margin left, otherwise a
    /// fresh one (one refresh, however many callers ask at once). If refreshing fails for a
    /// reason that may pass, the cached token is served for as long as it is valid.
    ///
    /// The cached path is decided before the future is built, so it completes on first poll
    /// without touching the refresh machinery.
    pub fn access_token(
        &self,
    ) -> impl Future<Output = Result<Arc<AccessToken>, TokenError>> + Send + '_ {
        match self.cached_access_token() {
            Some(token) => Either::Left(future::ready(Ok(token))),
            None => Either::Right(self.refreshed_access_token().boxed()),
        }
    }

    /// The cached access token if it has more than the margin left; never waits or refreshes.
    pub fn cached_access_token(&self) -> Option<Arc<AccessToken>> {
        let now = self.shared.clock.monotonic();
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .fresh(now, self.shared.margin)
            .cloned()
    }

    async fn refreshed_access_token(&self) -> Result<Arc<AccessToken>, TokenError> {
        match self.flight().await {
            Ok(current) => match current.access.as_ref() {
                Some((token, _)) => Ok(token.clone()),
                None => Err(TokenError::Interrupted),
            },
            // A rotated token that could not be saved is never handed out.
            Err(error @ TokenError::Store(_)) => Err(error),
            Err(error) => {
                let now = self.shared.clock.monotonic();
                self.current().valid_at(now).cloned().ok_or(error)
            }
        }
    }

    /// `Access-Token` and `x-api-key`, both marked sensitive, for calling any other GenLogs
    /// endpoint with a valid access token.
    pub async fn auth_headers(&self) -> Result<HeaderMap, TokenError> {
        let token = self.access_token().await?;
        let mut access = HeaderValue::from_str(token.expose_secret())
            .map_err(|_| TokenError::InvalidAccessToken)?;
        access.set_sensitive(true);
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(HeaderName::from_static("access-token"), access);
        headers.insert(
            crate::transport::API_KEY_HEADER,
            self.shared.api_key.clone(),
        );
        Ok(headers)
    }

    /// Replaces the tokens, e.g. with new ones from `POST /auth/token` after
    /// [`TokenError::NewTokensRequired`], saves them, and carries on with them.
    pub async fn replace_tokens(&self, tokens: StoredTokens) -> Result<(), TokenError> {
        let _serial = self.shared.serial.lock().await;
        let store = self.shared.store.clone();
        let to_save = tokens.clone();
        let saved = blocking(move || {
            let _lock = store.lock()?;
            store.save(&to_save)
        })
        .await;
        let persisted = saved.is_ok();
        self.set(Current::from_tokens(tokens, persisted, &*self.shared.clock));
        tracing::info!(persisted, "genlogs tokens replaced");
        saved.map_err(|e| TokenError::Store(Arc::new(e)))
    }

    fn current(&self) -> Arc<Current> {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, current: Current) -> Arc<Current> {
        set(&self.shared, current)
    }

    /// Joins the refresh in progress, or starts one in its own task.
    fn flight(&self) -> Flight {
        let mut slot = self.shared.flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = slot.as_ref() {
            return flight.clone();
        }
        let shared = self.shared.clone();
        let span = tracing::info_span!("genlogs_token_refresh");
        let task = tokio::spawn(
            async move {
                let result = run(&shared).await;
                // The slot is cleared under its lock, after `current` is updated: a caller that
                // misses this flight starts one that finds the token fresh and returns.
                *shared.flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
                result
            }
            .instrument(span),
        );
        let flight = async move { task.await.unwrap_or(Err(TokenError::Interrupted)) }
            .boxed()
            .shared();
        *slot = Some(flight.clone());
        flight
    }
}

fn set(shared: &Shared, current: Current) -> Arc<Current> {
    let current = Arc::new(current);
    *shared.current.write().unwrap_or_else(|e| e.into_inner()) = current.clone();
    current
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| Err(StoreError::Other("the store call panicked".into())))
}

/// One refresh decision, made under `serial`: re-check, save what is unsaved, respect dead
/// tokens and cooldowns, adopt tokens another process rotated, and only then send a request.
async fn run(shared: &Arc<Shared>) -> Result<Arc<Current>, TokenError> {
    let _serial = shared.serial.lock().await;
    let clock = &*shared.clock;
    let current = shared
        .current
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let now = clock.monotonic();
    if current.fresh(now, shared.margin).is_some() {
        return Ok(current);
    }
    if let (Some(tokens), false) = (&current.tokens, current.persisted) {
        save(shared, tokens.clone()).await?;
        let saved = set(
            shared,
            Current {
                persisted: true,
                ..(*current).clone()
            },
        );
        if saved.fresh(now, shared.margin).is_some() {
            return Ok(saved);
        }
    }
    if let Some((error, retry_at)) = &current.failure {
        if now < *retry_at {
            return Err(TokenError::Refresh(error.clone()));
        }
    }

    // Other processes may share the store: hold its lock from reading to writing.
    let store = shared.store.clone();
    let (lock, stored) = blocking(move || {
        let lock = store.lock()?;
        Ok((lock, store.load()?))
    })
    .await
    .map_err(|e| TokenError::Store(Arc::new(e)))?;
    let adopt = match (&stored, &current.tokens) {
        (Some(stored), Some(ours)) => !stored.same_refresh_token(ours),
        (Some(_), None) => true,
        (None, _) => false,
    };
    let current = match stored {
        Some(stored) if adopt => {
            tracing::info!("adopted genlogs tokens from the store");
            let adopted = set(shared, Current::from_tokens(stored, true, clock));
            if adopted.fresh(clock.monotonic(), shared.margin).is_some() {
                return Ok(adopted);
            }
            adopted
        }
        _ => current,
    };
    // Checked after the store: new tokens written there (by another process, or an operator's
    // tool) revive a manager whose refresh token died, without sending anything first.
    if let Some((reason, cause)) = &current.dead {
        return Err(TokenError::NewTokensRequired {
            reason: *reason,
            cause: cause.clone(),
        });
    }
    let Some(tokens) = current.tokens.clone() else {
        return Err(TokenError::NewTokensRequired {
            reason: NewTokensReason::NoTokens,
            cause: None,
        });
    };
    if tokens
        .refresh_expires
        .is_some_and(|expires| expires <= clock.utc_now())
    {
        let reason = NewTokensReason::RefreshTokenExpired;
        set(
            shared,
            Current {
                dead: Some((reason, None)),
                ..(*current).clone()
            },
        );
        return Err(TokenError::NewTokensRequired {
            reason,
            cause: None,
        });
    }

    tracing::info!("genlogs token refresh started");
    let started = clock.monotonic();
    let result = shared.client.refresh(&tokens.refresh_token).await;
    let elapsed_ms = clock.monotonic().saturating_sub(started).as_millis() as u64;
    match result {
        Ok(session) => {
            tracing::info!(
                elapsed_ms,
                outcome = "refreshed",
                "genlogs token refresh finished"
            );
            let fresh = Current::from_session(&session, clock);
            let unsaved = fresh.tokens.clone().expect("a session has tokens");
            // Kept in memory before saving: a failed save loses nothing.
            let fresh = set(shared, fresh);
            save(shared, unsaved).await?;
            drop(lock);
            Ok(set(
                shared,
                Current {
                    persisted: true,
                    ..(*fresh).clone()
                },
            ))
        }
        Err(error) => {
            let status = error.status().map(|s| s.as_u16());
            tracing::warn!(elapsed_ms, status, outcome = "failed", error = %error, "genlogs token refresh finished");
            let recovered = error.recovered_refresh_token().cloned();
            let error = Arc::new(error);
            if let Some(recovered) = recovered {
                // The rotated refresh token survived an undecodable response: keep it, and keep
                // serving the old access token while it lasts.
                let tokens = StoredTokens {
                    refresh_token: recovered.token,
                    refresh_expires: recovered.expires.map(Into::into),
                    ..tokens
                };
                let mut next = Current::from_tokens(tokens.clone(), false, clock);
                next.failure = Some((error.clone(), clock.monotonic() + shared.cooldown));
                let next = set(shared, next);
                save(shared, tokens).await?;
                set(
                    shared,
                    Current {
                        persisted: true,
                        ..(*next).clone()
                    },
                );
                return Err(TokenError::Refresh(error));
            }
            if error.needs_new_tokens() {
                let reason = if matches!(*error, Error::RefreshTokenRejected { .. }) {
                    NewTokensReason::RefreshTokenRejected
                } else {
                    NewTokensReason::OutcomeUnknown
                };
                set(
                    shared,
                    Current {
                        dead: Some((reason, Some(error.clone()))),
                        ..(*current).clone()
                    },
                );
                return Err(TokenError::NewTokensRequired {
                    reason,
                    cause: Some(error),
                });
            }
            let wait = match &*error {
                Error::RateLimited {
                    retry_after: Some(after),
                    ..
                } => (*after).max(shared.cooldown),
                _ => shared.cooldown,
            };
            let failure = Some((error.clone(), clock.monotonic() + wait));
            set(
                shared,
                Current {
                    failure,
                    ..(*current).clone()
                },
            );
            Err(TokenError::Refresh(error))
        }
    }
}

async fn save(shared: &Shared, tokens: StoredTokens) -> Result<(), TokenError> {
    let store = shared.store.clone();
    blocking(move || store.save(&tokens)).await.map_err(|error| {
        tracing::error!(error = %error, "saving the rotated genlogs tokens failed; they are kept in memory");
        TokenError::Store(Arc::new(error))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn with_access(expires_in: Duration, persisted: bool) -> Current {
        Current {
            access: Some((Arc::new(AccessToken::new("at")), expires_in)),
            persisted,
            ..Current::default()
        }
    }

    #[test]
    fn fresh_means_saved_and_valid_beyond_the_margin() {
        let margin = Duration::from_secs(60);
        let current = with_access(Duration::from_secs(1000), true);
        assert!(current.fresh(Duration::from_secs(939), margin).is_some());
        assert!(current.fresh(Duration::from_secs(940), margin).is_none());
        assert!(current.valid_at(Duration::from_secs(999)).is_some());
        assert!(current.valid_at(Duration::from_secs(1000)).is_none());
        let unsaved = with_access(Duration::from_secs(1000), false);
        assert!(
            unsaved.fresh(Duration::ZERO, margin).is_none(),
            "an unsaved token is never handed out"
        );
    }

    #[test]
    fn a_sessions_lifetime_is_measured_on_the_server_clock() {
        let server_now = chrono::Utc::now();
        let session = Session::example(
            server_now + chrono::Duration::minutes(30),
            server_now + chrono::Duration::days(7),
            Some(server_now),
        );
        // The local clock is a day behind; the lifetime is still 30 minutes.
        let clock = ManualClock::new(server_now - chrono::Duration::days(1));
        clock.advance(Duration::from_secs(5));
        let current = Current::from_session(&session, &clock);
        assert_eq!(current.access.unwrap().1, Duration::from_secs(5 + 30 * 60));
    }
}

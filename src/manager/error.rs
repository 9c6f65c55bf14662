//! [`TokenError`]: why the manager cannot hand out a token, and what to do about it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::store::{NewTokensReason, StoreError};

/// Why the manager cannot hand out a token.
///
/// | `TokenError` | what it means for the operator |
/// |---|---|
/// | [`NewTokensRequired`](Self::NewTokensRequired) | create new tokens (`POST /auth/token` with email and password) and call [`replace_tokens`](crate::TokenManager::replace_tokens) or save them in the store; `reason` says why (store empty, 401, 401 after an unknown outcome, refresh token expired) |
/// | [`Refresh`](Self::Refresh) | GenLogs or the network failed and no valid cached token is left; it retries by itself after the cooldown |
/// | [`OutcomeUnknown`](Self::OutcomeUnknown) | a refresh's answer was lost (here or in another process); the same token is retried at `retry_at` |
/// | [`Store`](Self::Store) | the store could not be locked (another process holds it past the wait), read or written; rotated tokens are safe in memory until it can |
/// | [`AccessRejected`](Self::AccessRejected) | other endpoints keep answering 401 to fresh access tokens (a permission or api-key problem): refreshes back off until `retry_at` |
/// | [`InvalidAccessToken`](Self::InvalidAccessToken) | GenLogs issued a token that is not a header value |
/// | [`Interrupted`](Self::Interrupted) | the refresh task died (panic, runtime shutdown); the next call starts a new one |
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The refresh token is dead or missing: an operator must create new tokens
    /// (`POST /auth/token` with email and password) and pass them to
    /// [`TokenManager::replace_tokens`](crate::TokenManager::replace_tokens) or write them to the
    /// store (e.g. `genlogs-auth init`). No request is sent until then.
    #[error(
        "new GenLogs tokens must be created (POST /auth/token) and given to \
         TokenManager::replace_tokens or saved in the token store: {reason}"
    )]
    NewTokensRequired {
        /// Why.
        reason: NewTokensReason,
        /// The refresh error that made the token dead, if any.
        #[source]
        cause: Option<Arc<Error>>,
    },
    /// A refresh failed for a reason that may pass (connect failure, 429, 5xx, an unknown
    /// outcome that is retried after the cooldown) and the cached access token has expired.
    #[error("refreshing the GenLogs access token failed and no valid cached one is left")]
    Refresh(#[source] Arc<Error>),
    /// A refresh's outcome is unknown (it timed out, its connection dropped, the process sending it
    /// crashed; here or in another process sharing the store), so GenLogs may have rotated the
    /// token. The same token is sent again once the cooldown has passed; no valid cached access
    /// token is left meanwhile.
    ///
    /// (When the doubt began is in the store: `StoredTokens::state`.)
    #[error(
        "an earlier GenLogs token refresh's outcome is unknown (GenLogs may have rotated the \
         token); the same token is sent again after {retry_at}"
    )]
    OutcomeUnknown {
        /// When the next attempt may be sent.
        retry_at: DateTime<Utc>,
    },
    /// The store could not be locked, read or written. After a refresh, the rotated tokens are
    /// kept in memory and saving is retried on the next call; the new access token is handed out
    /// only once it is saved. [`TokenManager::unsaved_tokens`](crate::TokenManager::unsaved_tokens)
    /// returns them, for a process that exits before a save succeeds.
    #[error("the GenLogs token store failed")]
    Store(#[source] Arc<StoreError>),
    /// Other GenLogs endpoints answered 401 to `consecutive` fresh access tokens in a row
    /// (reported with [`TokenManager::invalidate`](crate::TokenManager::invalidate); none of
    /// them had expired): new tokens do not fix that, so refreshes back off, the minimum
    /// refresh interval doubling with each rejection from the second, at most
    /// 15 min. Check the api key and the account's
    /// permissions. The first access token another endpoint accepts
    /// ([`TokenManager::confirm`](crate::TokenManager::confirm); the middleware reports every
    /// success) ends the backoff.
    #[error(
        "GenLogs endpoints rejected {consecutive} fresh access tokens in a row (401: a permission \
         or api-key problem, which new tokens do not fix?); the next refresh waits until \
         {retry_at}"
    )]
    AccessRejected {
        /// Fresh access tokens rejected in a row.
        consecutive: u32,
        /// When the next refresh may be sent.
        retry_at: DateTime<Utc>,
    },
    /// GenLogs issued an access token that is not a valid HTTP header value.
    #[error("the access token GenLogs issued is not a valid header value")]
    InvalidAccessToken,
    /// The refresh task ended without a result (it panicked, or the runtime shut down). The next
    /// call starts a new one.
    #[error("the token refresh task ended without a result")]
    Interrupted,
}

impl TokenError {
    /// Whether an operator must supply new tokens before anything can succeed.
    pub fn needs_new_tokens(&self) -> bool {
        matches!(self, TokenError::NewTokensRequired { .. })
    }

    /// Why new tokens are needed, when they are.
    pub fn new_tokens_reason(&self) -> Option<NewTokensReason> {
        match self {
            TokenError::NewTokensRequired { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// The refresh error behind this one, if any.
    pub fn refresh_error(&self) -> Option<&Error> {
        match self {
            TokenError::Refresh(error) => Some(error),
            TokenError::NewTokensRequired { cause, .. } => cause.as_deref(),
            _ => None,
        }
    }

    /// The store error behind this one, if any.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            TokenError::Store(error) => Some(error),
            _ => None,
        }
    }
}

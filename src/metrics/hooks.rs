//! The recording hooks the manager calls (feature `metrics`), one line at each call site.
//! Durations are measured on the real clock, not the manager's (possibly injected) one: they
//! report how long the I/O took, while the gauges report what the manager believes.

use std::future::Future;
use std::time::{Duration, Instant};

use ::metrics::{counter, gauge, histogram};
use chrono::{DateTime, Utc};

use super::labels;
use super::{
    ACCESS_REJECTIONS_IN_A_ROW, ACCESS_TOKEN_EXPIRES_IN_SECONDS, INVALIDATIONS_TOTAL,
    REFRESHES_TOTAL, REFRESH_DURATION_SECONDS, REFRESH_TOKEN_EXPIRES_IN_SECONDS, TOKEN_STATE,
};
use crate::error::Error;
use crate::manager::state::State;
use crate::store::{StoredTokens, TokenState};

/// Times a refresh request and counts its outcome.
// Not an `async fn`: the signature is the one of the no-op in `off.rs`, which hands back the
// request itself (no wrapper future at all without the feature).
#[allow(clippy::manual_async_fn)]
pub(crate) fn refresh<F, T>(request: F) -> impl Future<Output = Result<T, Error>>
where
    F: Future<Output = Result<T, Error>>,
{
    async move {
        let started = Instant::now();
        let result = request.await;
        histogram!(REFRESH_DURATION_SECONDS).record(started.elapsed());
        let outcome = labels::refresh_outcome(result.as_ref().err());
        counter!(REFRESHES_TOTAL, "outcome" => outcome).increment(1);
        result
    }
}

/// Sets the gauges from the manager's state at `now` (its monotonic clock) and `utc_now`.
pub(crate) fn observe(state: &State, now: Duration, utc_now: DateTime<Utc>) {
    gauge!(ACCESS_TOKEN_EXPIRES_IN_SECONDS).set(access_expires_in(state, now));
    gauge!(REFRESH_TOKEN_EXPIRES_IN_SECONDS)
        .set(refresh_expires_in(state.tokens.as_ref(), utc_now));
    gauge!(ACCESS_REJECTIONS_IN_A_ROW)
        .set(state.rejections.map_or(0.0, |r| f64::from(r.consecutive)));
    let current = labels::token_state(state.tokens.as_ref().map(|tokens| &tokens.state));
    for label in labels::TOKEN_STATES {
        gauge!(TOKEN_STATE, "state" => label).set(if label == current { 1.0 } else { 0.0 });
    }
}

/// Whether the Redis store of `grant` can detect a rolled-back Redis.
#[cfg(feature = "redis")]
pub(crate) fn rollback_detection(grant: &str, on: bool) {
    use super::STORE_ROLLBACK_DETECTION;
    gauge!(STORE_ROLLBACK_DETECTION, "grant" => grant.to_string()).set(if on { 1.0 } else { 0.0 });
}

/// Counts a [`TokenManager::invalidate`](crate::TokenManager::invalidate) call.
pub(crate) fn invalidated() {
    counter!(INVALIDATIONS_TOTAL).increment(1);
}

/// Seconds left on the access token callers are given (during an unsaved rotation, the one from
/// before it); 0 when there is none.
fn access_expires_in(state: &State, now: Duration) -> f64 {
    state.servable().map_or(0.0, |access| {
        access.expires.0.saturating_sub(now).as_secs_f64()
    })
}

/// Seconds left on the refresh token: 0 when there is none or it is dead, NaN when its expiry is
/// unknown (a "0" there would look like an expired token to an alert).
fn refresh_expires_in(tokens: Option<&StoredTokens>, utc_now: DateTime<Utc>) -> f64 {
    match tokens {
        None => 0.0,
        Some(tokens) if matches!(tokens.state, TokenState::Dead { .. }) => 0.0,
        Some(tokens) => tokens.refresh_expires.map_or(f64::NAN, |expires| {
            (expires - utc_now)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::state::{Access, Deadline};
    use crate::secret::{AccessToken, RefreshToken};
    use crate::store::NewTokensReason;
    use std::sync::Arc;

    fn tokens(refresh_expires: Option<DateTime<Utc>>, state: TokenState) -> StoredTokens {
        StoredTokens {
            refresh_expires,
            state,
            ..StoredTokens::from_refresh_token(RefreshToken::new("rt"))
        }
    }

    #[test]
    fn the_refresh_token_gauge_is_its_time_left_zero_when_gone_and_nan_when_unknown() {
        let now = Utc::now();
        let in_an_hour = Some(now + chrono::Duration::hours(1));
        let expired = Some(now - chrono::Duration::hours(1));
        let dead = TokenState::Dead {
            reason: NewTokensReason::RefreshTokenRejected,
            since: now,
        };
        let known = tokens(in_an_hour, TokenState::Usable);
        assert_eq!(refresh_expires_in(Some(&known), now), 3600.0);
        let past = tokens(expired, TokenState::Usable);
        assert_eq!(refresh_expires_in(Some(&past), now), 0.0);
        let dead = tokens(in_an_hour, dead);
        assert_eq!(refresh_expires_in(Some(&dead), now), 0.0);
        assert_eq!(refresh_expires_in(None, now), 0.0);
        let unknown = tokens(None, TokenState::Usable);
        assert!(refresh_expires_in(Some(&unknown), now).is_nan());
    }

    #[test]
    fn the_access_token_gauge_is_the_servable_tokens_time_left() {
        let now = Duration::from_secs(100);
        let mut state = State::default();
        assert_eq!(access_expires_in(&state, now), 0.0);
        state.access = Some(Access {
            token: Arc::new(AccessToken::new("at")),
            expires: Deadline(Duration::from_secs(700)),
            serve_until: Deadline(Duration::from_secs(690)),
            refresh_at: Deadline(Duration::from_secs(640)),
        });
        assert_eq!(access_expires_in(&state, now), 600.0);
        assert_eq!(access_expires_in(&state, Duration::from_secs(800)), 0.0);
    }
}

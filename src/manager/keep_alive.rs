//! Keeping a grant alive while nobody asks for a token: the refresh token has an expiry of its
//! own, and a service idle for longer than that would lose the grant silently. The manager's
//! [`keep_alive`](super::TokenManager::keep_alive) task renews it when only a share of its
//! lifetime is left (a quarter by default), whether or not anyone asks for an access token;
//! [`renew_grant_if_due`](super::TokenManager::renew_grant_if_due) is one such check, for a cron
//! job (`genlogs-auth keep-alive`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{TokenError, TokenManager};
use crate::store::{NewTokensReason, StoredTokens};

/// Renew the refresh token when less than this share of its lifetime is left (the lifetime runs
/// from when it was issued, `StoredTokens::refreshed_at`, to its expiry).
pub(crate) const DEFAULT_KEEP_ALIVE_MARGIN: f64 = 0.25;

/// The keep-alive task looks again at least this often: tokens another process renewed, or an
/// operator re-seeded, are noticed by then.
const CHECK_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// How often the keep-alive task reads the store to notice that it went back (and writes the
/// newer tokens back): one cheap read per interval and host.
pub(crate) const STORE_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// After a renewal that failed for a reason that may pass, and after one that succeeded, the task
/// looks again after this.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// What one keep-alive check did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantRenewal {
    /// The refresh token has enough of its lifetime left; nothing was sent.
    NotDue {
        /// When it falls due (this check's jitter included).
        renew_at: DateTime<Utc>,
    },
    /// The grant was renewed (here, or by another process sharing the store since this one
    /// last read it): the refresh token now expires then, when GenLogs said.
    Renewed {
        /// The new refresh token's expiry.
        refresh_expires: Option<DateTime<Utc>>,
    },
    /// The refresh token's expiry is unknown: there is nothing to keep alive by.
    ExpiryUnknown,
}

/// When the grant held in `tokens` should be renewed: `margin` of its lifetime before the refresh
/// token expires, moved earlier by up to `jitter` of that (by `roll`, uniform in `[0, 1)`) so a
/// fleet does not renew in step. A token whose issue time or expiry is unknown (seeded by hand)
/// is due at once: renewing it records both. `None` when even a renewal left the expiry unknown.
pub(crate) fn renew_at(
    tokens: &StoredTokens,
    margin: f64,
    jitter: f64,
    roll: f64,
) -> Option<DateTime<Utc>> {
    let Some(expires) = tokens.refresh_expires else {
        // Seeded with a bare refresh token: one renewal learns its expiry (GenLogs sends it).
        return tokens
            .refreshed_at
            .is_none()
            .then_some(DateTime::<Utc>::MIN_UTC);
    };
    let Some(issued) = tokens.refreshed_at.filter(|issued| *issued < expires) else {
        return Some(DateTime::<Utc>::MIN_UTC);
    };
    let lifetime = (expires - issued).to_std().unwrap_or(Duration::ZERO);
    let share = (margin * (1.0 + jitter * roll.clamp(0.0, 1.0))).clamp(0.0, 1.0);
    let share = if share.is_finite() { share } else { 0.0 };
    let lead = chrono::Duration::from_std(lifetime.mul_f64(share)).unwrap_or(chrono::Duration::MAX);
    Some(expires.checked_sub_signed(lead).unwrap_or(issued))
}

/// Runs the keep-alive task until its [`KeepAlive`] handle is dropped.
#[must_use = "the task stops when the handle is dropped"]
#[derive(Debug)]
pub struct KeepAlive {
    task: tokio::task::JoinHandle<()>,
}

impl KeepAlive {
    pub(super) fn start(manager: TokenManager) -> Self {
        Self {
            task: tokio::spawn(run(manager)),
        }
    }

    /// Stops the task (as dropping the handle does).
    pub fn stop(self) {}
}

impl Drop for KeepAlive {
    /// Stops the task. A renewal already under way finishes, and is saved: it runs in the
    /// manager's own refresh task, which is never cut off.
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(manager: TokenManager) {
    let clock = &manager.shared.clock;
    let mut next_check = clock.monotonic();
    loop {
        // The store watch: a store that went back (a failover that lost writes, a restore, a
        // restart that came back empty) gets this host's newer tokens back within an interval,
        // even while nobody asks for a token, so a host that knows nothing newer finds them.
        if let Err(error) = manager.watch_store().await {
            tracing::debug!(error = %error, "the genlogs token store could not be watched");
        }
        if clock.monotonic() >= next_check {
            let wait = renew(&manager).await;
            next_check = clock.monotonic().saturating_add(wait);
        }
        let until_check = next_check.saturating_sub(clock.monotonic());
        clock.sleep(until_check.min(STORE_WATCH_INTERVAL)).await;
    }
}

/// One keep-alive check; how long until the next.
async fn renew(manager: &TokenManager) -> Duration {
    match manager.renew_grant_if_due().await {
        Ok(GrantRenewal::NotDue { renew_at }) => {
            let left = (renew_at - manager.shared.clock.utc_now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            if left.is_zero() {
                // Due, yet not renewed (the refresh was not needed after all, or changed
                // nothing): look again later, not in a loop.
                CHECK_INTERVAL
            } else {
                left.min(CHECK_INTERVAL)
            }
        }
        Ok(GrantRenewal::Renewed { .. }) => {
            tracing::info!("genlogs grant kept alive: refresh token renewed");
            // Looked at again soon, not at once: a server issuing refresh tokens that are due
            // on arrival gets one renewal a minute, not a storm.
            RETRY_AFTER_FAILURE.max(manager.shared.policy.min_interval)
        }
        Ok(GrantRenewal::ExpiryUnknown) => CHECK_INTERVAL,
        Err(error) if error.needs_new_tokens() => {
            tracing::error!(error = %error, "genlogs grant cannot be kept alive: new tokens are required");
            CHECK_INTERVAL
        }
        Err(error) => {
            tracing::warn!(error = %error, "renewing the genlogs grant failed; trying again later");
            RETRY_AFTER_FAILURE
        }
    }
}

/// One check: renews the grant if its refresh token is inside the margin. The store is read
/// first, without refreshing anything (an expired access token is the normal state of an idle
/// grant, and no reason to rotate); a grant that is dead or expired is reported as such.
pub(super) async fn renew_if_due(manager: &TokenManager) -> Result<GrantRenewal, TokenError> {
    let known = manager.sync().await?;
    let state = manager.shared.current();
    let Some(tokens) = state.tokens.as_ref() else {
        return Err(TokenError::NewTokensRequired {
            reason: NewTokensReason::NoTokens,
            cause: None,
        });
    };
    let now = manager.shared.clock.utc_now();
    if let Some(reason) = tokens.health(now).new_tokens_reason() {
        return Err(TokenError::NewTokensRequired {
            reason,
            cause: None,
        });
    }
    let margin = manager.shared.keep_alive_margin;
    let jitter = manager.shared.policy.jitter;
    let Some(due) = renew_at(tokens, margin, jitter, fastrand::f64()) else {
        return Ok(GrantRenewal::ExpiryUnknown);
    };
    if now < due {
        return Ok(GrantRenewal::NotDue { renew_at: due });
    }
    // Due by what the store holds. The refresh task reads it again under its lock: a grant
    // another process renewed in between is adopted, not renewed twice.
    let renewed = manager.renew(known).await?;
    let state = manager.shared.current();
    let tokens = state.tokens.as_ref();
    if renewed {
        return Ok(GrantRenewal::Renewed {
            refresh_expires: tokens.and_then(|tokens| tokens.refresh_expires),
        });
    }
    let renew_at = tokens
        .and_then(|tokens| self::renew_at(tokens, margin, jitter, 0.0))
        .unwrap_or(due);
    Ok(GrantRenewal::NotDue { renew_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::RefreshToken;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// When [`renew_at`] renews: a time, "at once" or "never".
    fn renews(tokens: &StoredTokens, margin: f64, jitter: f64, roll: f64) -> String {
        match renew_at(tokens, margin, jitter, roll) {
            None => "never".into(),
            Some(at) if at == DateTime::<Utc>::MIN_UTC => "at once".into(),
            Some(at) => at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    fn tokens(issued: Option<&str>, expires: Option<&str>) -> StoredTokens {
        StoredTokens {
            refreshed_at: issued.map(utc),
            refresh_expires: expires.map(utc),
            ..StoredTokens::from_refresh_token(RefreshToken::new("rt"))
        }
    }

    #[test]
    fn a_grant_is_renewed_when_a_quarter_of_its_lifetime_is_left() {
        let week = tokens(Some("2026-11-01T00:00:00Z"), Some("2026-11-08T00:00:00Z"));
        assert_eq!(renews(&week, 0.25, 0.0, 0.7), "2026-11-06T06:00:00Z");
        // Jitter moves it earlier, by at most its share of the margin.
        assert_eq!(renews(&week, 0.25, 0.5, 1.0), "2026-11-05T09:00:00Z");
        assert_eq!(renews(&week, 0.25, 0.5, 0.0), "2026-11-06T06:00:00Z");
    }

    #[test]
    fn an_unknown_issue_time_or_a_bare_token_is_due_at_once_and_an_expiry_unknown_after_renewal_never(
    ) {
        let seeded = tokens(None, Some("2026-11-08T00:00:00Z"));
        assert_eq!(renews(&seeded, 0.25, 0.0, 0.0), "at once");
        let odd = tokens(Some("2026-11-09T00:00:00Z"), Some("2026-11-08T00:00:00Z"));
        assert_eq!(renews(&odd, 0.25, 0.0, 0.0), "at once");
        assert_eq!(
            renews(&tokens(Some("2026-11-01T00:00:00Z"), None), 0.25, 0.0, 0.0),
            "never",
            "renewed, and still no expiry: nothing to go by"
        );
        assert_eq!(
            renews(&tokens(None, None), 0.25, 0.0, 0.0),
            "at once",
            "a bare refresh token: one renewal learns its expiry"
        );
    }

    #[test]
    fn hostile_margins_stay_within_the_lifetime() {
        let week = tokens(Some("2026-11-01T00:00:00Z"), Some("2026-11-08T00:00:00Z"));
        assert_eq!(renews(&week, 7.0, 0.0, 0.0), "2026-11-01T00:00:00Z");
        assert_eq!(renews(&week, -1.0, 0.0, 0.0), "2026-11-08T00:00:00Z");
        assert_eq!(
            renews(&week, f64::NAN, f64::INFINITY, 0.5),
            "2026-11-08T00:00:00Z"
        );
    }
}

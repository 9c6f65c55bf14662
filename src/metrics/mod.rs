//! Metrics (cargo feature `metrics`): what the [`TokenManager`](crate::TokenManager) does,
//! recorded through the [`metrics`](https://docs.rs/metrics) facade into whatever recorder the
//! application installs (Prometheus, StatsD, OpenTelemetry, …). Without a recorder nothing is
//! kept; without the feature the hooks are empty inline functions, so the manager's call sites
//! carry no `#[cfg]` and compile to nothing.
//!
//! The constants below are the metric names, each documented with its type, labels and meaning;
//! [`describe`] registers their descriptions and units with the installed recorder.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `genlogs_auth_refreshes_total` | counter | `outcome` | refresh requests sent: `ok`; `rejected` (401: the refresh token is dead); `unknown` (timeout, lost connection, undecodable success, 408, any 5xx but 501 and 503: GenLogs may have rotated the token; `Error::may_have_spent_token`); `throttled` (429, 503); `failed` (connect failure, 403, 422, 501, any other status) |
//! | `genlogs_auth_store_errors_total` | counter | `store`, `kind` | store calls by the manager that failed; `store` is `TokenStore::kind` (`memory`, `file`, `redis`, `other`); `kind` is `unreachable`, `busy`, `conflict`, `lease_lost`, `not_durable`, `unreadable`, `insecure_permissions`, `io` or `other` |
//! | `genlogs_auth_invalidations_total` | counter | | `TokenManager::invalidate` calls |
//! | `genlogs_auth_refresh_duration_seconds` | histogram | | each refresh request, whatever came back |
//! | `genlogs_auth_store_duration_seconds` | histogram | `op` | each store call by the manager: `lock` (waiting included), `load`, `save`, `release`, `extend` |
//! | `genlogs_auth_access_token_expires_in_seconds` | gauge | | until the access token handed out expires; 0 when there is none |
//! | `genlogs_auth_refresh_token_expires_in_seconds` | gauge | | until the refresh token expires; 0 when there is none or it is dead, NaN while its expiry is unknown |
//! | `genlogs_auth_access_rejections_in_a_row` | gauge | | fresh access tokens other endpoints rejected in a row (`TokenManager::invalidate`); from 2, refreshes back off; 0 after a success |
//! | `genlogs_auth_token_state` | gauge | `state` | 1 for the refresh token's state, 0 for the others: `usable`, `possibly_rotated`, `dead`, `none` |
//!
//! Every label value comes from a small fixed set, derived by asking an error or a state what it
//! is (never from its text); the `store` label is [`TokenStore::kind`](crate::TokenStore::kind).
//! So no token, api key, path or URL can become a label, and the series stay few.
//!
//! The gauges are updated whenever the manager's state changes and at the end of each refresh
//! task: between those, the "expires in" values are as of the last update. They are
//! process-wide: with several managers in one process they show the one that changed last.
//!
//! To serve them to Prometheus with
//! [`metrics-exporter-prometheus`](https://docs.rs/metrics-exporter-prometheus)
//! (`default-features = false` to render text from your own `/metrics` handler; its default
//! features add an HTTP listener and a push gateway):
//!
//! ```no_run
//! # #[cfg(feature = "metrics")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use metrics_exporter_prometheus::PrometheusBuilder;
//!
//! let prometheus = PrometheusBuilder::new().install_recorder()?;
//! genlogs_auth::metrics::describe();
//! // Without the exporter's listener, its upkeep (draining histograms) is yours to run.
//! let upkeep = prometheus.clone();
//! tokio::spawn(async move {
//!     loop {
//!         tokio::time::sleep(std::time::Duration::from_secs(5)).await;
//!         upkeep.run_upkeep();
//!     }
//! });
//! // In the `/metrics` handler:
//! let body: String = prometheus.render();
//! # let _ = body;
//! # Ok(())
//! # }
//! ```
//!
//! `cargo run --example metrics --features metrics` refreshes once against the stand-in and
//! prints what a scrape would get.

#[cfg(feature = "metrics")]
mod hooks;
#[cfg(feature = "metrics")]
mod labels;
#[cfg(not(feature = "metrics"))]
mod off;
#[cfg(feature = "metrics")]
mod store;

#[cfg(all(feature = "metrics", feature = "redis"))]
pub(crate) use hooks::rollback_detection;
#[cfg(feature = "metrics")]
pub(crate) use hooks::{invalidated, observe, refresh};
#[cfg(all(not(feature = "metrics"), feature = "redis"))]
pub(crate) use off::rollback_detection;
#[cfg(not(feature = "metrics"))]
pub(crate) use off::{instrument, invalidated, observe, refresh};
#[cfg(feature = "metrics")]
pub(crate) use store::instrument;

/// Each metric once: its documentation, its kind, its name, and the unit and help text that
/// [`describe`] registers.
macro_rules! metrics {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident $name:ident = $value:literal $(, $unit:ident)?, $help:literal;
    )*) => {
        $(
            $(#[doc = $doc])*
            #[cfg(feature = "metrics")]
            pub const $name: &str = $value;
        )*

        /// Registers the description and unit of every metric above with the installed recorder,
        /// for exporters that show them (Prometheus' `# HELP`). Call it once, after installing
        /// the recorder.
        #[cfg(feature = "metrics")]
        pub fn describe() {
            $(describe!($kind, $name, $(::metrics::Unit::$unit,)? $help);)*
        }
    };
}

/// `describe!(counter, …)`: `metrics`' `describe_counter!(…)`, and so on.
#[cfg(feature = "metrics")]
macro_rules! describe {
    (counter, $($args:tt)*) => { ::metrics::describe_counter!($($args)*) };
    (gauge, $($args:tt)*) => { ::metrics::describe_gauge!($($args)*) };
    (histogram, $($args:tt)*) => { ::metrics::describe_histogram!($($args)*) };
}

metrics! {
    /// Counter, label `outcome`: refresh requests sent, by what came back. `ok`; `rejected` (401:
    /// the refresh token is dead); `unknown` (the outcome is unknown: a timeout, a lost connection,
    /// an undecodable success, a 408 or any 5xx but 501 and 503; GenLogs may have rotated the
    /// token); `throttled` (429 or 503: not processed, retried after the cooldown); `failed`
    /// (anything else: a connect failure, 403, 422, 501, another status).
    counter REFRESHES_TOTAL = "genlogs_auth_refreshes_total", Count,
        "GenLogs token refresh requests sent, by outcome (ok, rejected, unknown, throttled, failed)";

    /// Counter, labels `store` and `kind`: store calls made by the manager that failed. `store` is
    /// the store's [`kind`](crate::TokenStore::kind) (`memory`, `file`, `redis`, `other`); `kind`
    /// is `unreachable`, `busy` (the lock was not free in time), `conflict` (another process saved
    /// first), `lease_lost`, `not_durable` (written, but too few replicas acknowledged it in time),
    /// `unreadable` (not a token document, or not decryptable), `insecure_permissions`, `io` or
    /// `other`. A conflict or a lost lease is handled by the manager (it reads again); the others
    /// reach callers as [`TokenError::Store`](crate::TokenError::Store) when no valid token is
    /// cached.
    counter STORE_ERRORS_TOTAL = "genlogs_auth_store_errors_total", Count,
        "Failed token store calls made by the token manager, by store and error kind";

    /// Counter: calls to [`TokenManager::invalidate`](crate::TokenManager::invalidate) (another
    /// endpoint answered 401 to an access token), whether or not the token was still the current
    /// one.
    counter INVALIDATIONS_TOTAL = "genlogs_auth_invalidations_total", Count,
        "Access tokens reported rejected to the token manager (TokenManager::invalidate)";

    /// Histogram, seconds: how long each refresh request took, whatever came back.
    histogram REFRESH_DURATION_SECONDS = "genlogs_auth_refresh_duration_seconds", Seconds,
        "Duration of each GenLogs token refresh request";

    /// Histogram, seconds, label `op` (`lock`, `load`, `save`, `release`, `extend`): how long each
    /// store call the manager made took, failed or not. `lock` includes waiting for another holder.
    histogram STORE_DURATION_SECONDS = "genlogs_auth_store_duration_seconds", Seconds,
        "Duration of each token store call made by the token manager, by operation";

    /// Gauge, seconds: how long the access token the manager hands out stays valid (on the server's
    /// clock when its `Date` was believable); 0 when it holds none.
    gauge ACCESS_TOKEN_EXPIRES_IN_SECONDS = "genlogs_auth_access_token_expires_in_seconds", Seconds,
        "Seconds until the access token handed out expires (0: none)";

    /// Gauge, seconds: until the refresh token expires; 0 when there is none or it is dead (either
    /// way new tokens are needed), NaN while its expiry is unknown (tokens stored from a refresh
    /// token alone, until their first refresh).
    gauge REFRESH_TOKEN_EXPIRES_IN_SECONDS = "genlogs_auth_refresh_token_expires_in_seconds", Seconds,
        "Seconds until the refresh token expires (0: none or dead; NaN: unknown)";

    /// Gauge: fresh access tokens (not expired) that other endpoints rejected in a row, reported
    /// with [`TokenManager::invalidate`](crate::TokenManager::invalidate). From 2, refreshes back
    /// off ([`TokenError::AccessRejected`](crate::TokenError::AccessRejected)); 0 again after a
    /// success ([`TokenManager::confirm`](crate::TokenManager::confirm)) or a token kept until its
    /// refresh point. A value that keeps climbing is a permission or api-key problem, not an
    /// expiry.
    gauge ACCESS_REJECTIONS_IN_A_ROW = "genlogs_auth_access_rejections_in_a_row", Count,
        "Fresh access tokens other endpoints rejected in a row (from 2, refreshes back off)";

    /// Gauge, label `state`: 1 for the state of the refresh token the manager holds, 0 for the
    /// others. `usable`; `possibly_rotated` (a refresh's outcome is unknown, see
    /// [`TokenState::PossiblyRotated`](crate::store::TokenState::PossiblyRotated)); `dead` (new
    /// tokens are needed); `none` (no tokens known yet, or the store is empty).
    gauge TOKEN_STATE = "genlogs_auth_token_state",
        "1 for the refresh token's state (usable, possibly_rotated, dead, none), 0 for the others";

    /// Gauge, label `grant` (the store's grant name): 1 while a [`RedisStore`](crate::RedisStore)
    /// can tell that Redis answered from another server instance (restarted, failed over, restored
    /// from a backup: the store may have gone back), 0 while it cannot because Redis refuses `INFO`
    /// (an ACL without `+info`). Set at every read of the store; see `RedisStore`'s "Rollback
    /// detection needs `INFO`".
    gauge STORE_ROLLBACK_DETECTION = "genlogs_auth_store_rollback_detection",
        "1 while the Redis store can detect a rolled-back Redis (INFO allowed), 0 while it cannot";
}

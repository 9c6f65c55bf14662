//! Authentication for every other GenLogs endpoint, as a
//! [reqwest-middleware](https://docs.rs/reqwest-middleware) layer (feature `middleware`).
//!
//! Every other GenLogs endpoint wants `Access-Token` and `x-api-key`. [`GenLogsAuth`] adds them
//! (both sensitive) to requests for the GenLogs API origin only, from a
//! [`TokenManager`](crate::TokenManager), and retries once with a new token after a 401. [`client`]
//! wraps it in a ready client whose redirect policy ([`redirect_policy`]) never follows a redirect to
//! another origin, which reqwest's default would do with both headers.
//!
//! ```no_run
//! use genlogs_auth::middleware::{self, GenLogsAuth};
//! # use genlogs_auth::{AuthClient, FileStore, TokenManager};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let client = AuthClient::builder(std::env::var("GENLOGS_API_KEY")?).build()?;
//! # let manager = TokenManager::builder(client, FileStore::new("/var/lib/myapp/genlogs-tokens.json")).build();
//! let client = middleware::client(GenLogsAuth::new(manager));
//! let carriers: serde_json::Value = client
//!     .get("https://api.genlogs.io/carriers/recommendations")
//!     .send()
//!     .await?
//!     .error_for_status()?
//!     .json()
//!     .await?;
//! # let _ = carriers;
//! # Ok(())
//! # }
//! ```
//!
//! - **Only to GenLogs.** The headers (both marked sensitive) go only to requests for the API origin,
//!   `https://api.genlogs.io` ([`DEFAULT_API_ORIGIN`];
//!   [`with_api_origin("http://127.0.0.1:PORT")`](GenLogsAuth::with_api_origin) for the stand-in;
//!   plain http only to loopback). A request to any other origin gets neither.
//! - **A 401 is retried once.** GenLogs answers 401 only for a missing, wrong or expired
//!   `Access-Token`: the middleware invalidates the token it sent
//!   ([`manager.invalidate`](crate::TokenManager::invalidate)) and sends the request once more with
//!   a new one; a second 401, a 403 (the api key) and every other status come back as they are. A
//!   streamed body cannot be sent twice: its 401 is returned. A
//!   [`TokenError`] (new tokens required, …) fails the request before anything
//!   is sent; [`token_error(&error)`](token_error) gets it back.
//! - **No redirect to another origin.** reqwest removes only `Authorization`, `Cookie` and the like
//!   when a redirect changes host; with its default policy `Access-Token` and `x-api-key` would
//!   follow a `Location` anywhere (`tests/it/middleware.rs` shows it does). [`client`] follows
//!   same-origin redirects (up to 10) and returns any other redirect as the
//!   response. Building your own reqwest client (or setting
//!   [`manager.auth_headers()`](crate::TokenManager::auth_headers) by hand), give it
//!   [`redirect_policy()`].
//!
//! With other middleware on your own `reqwest_middleware::ClientBuilder` (retries with
//! [reqwest-retry](https://docs.rs/reqwest-retry), tracing), put `GenLogsAuth` last, nearest the
//! HTTP client, so that every retried attempt gets the current token; give your reqwest client
//! [`redirect_policy`]:
//!
//! ```no_run
//! use genlogs_auth::middleware::{self, reqwest_middleware::ClientBuilder, GenLogsAuth};
//! use reqwest_retry::{policies::ExponentialBackoff, RetryTransientMiddleware};
//!
//! # async fn run(manager: genlogs_auth::TokenManager) -> Result<(), Box<dyn std::error::Error>> {
//! let http = genlogs_auth::reqwest::Client::builder()
//!     .redirect(middleware::redirect_policy()) // never follow a redirect to another origin
//!     .connect_timeout(std::time::Duration::from_secs(5))
//!     .timeout(std::time::Duration::from_secs(30))
//!     .build()?;
//! let client = ClientBuilder::new(http)
//!     // 5xx, 429 and connection failures, with backoff (a 401 is not among them).
//!     .with(RetryTransientMiddleware::new_with_policy(
//!         ExponentialBackoff::builder().build_with_max_retries(3),
//!     ))
//!     .with(GenLogsAuth::new(manager))
//!     .build();
//! let answer = client.get("https://api.genlogs.io/carriers/recommendations").send().await?;
//! # let _ = answer;
//! # Ok(())
//! # }
//! ```

mod auth;
mod origin;
mod redirect;

pub use auth::GenLogsAuth;
pub use origin::{InvalidOrigin, DEFAULT_API_ORIGIN};
pub use redirect::redirect_policy;

/// The reqwest-middleware this crate is built with, to name its types (`ClientBuilder`,
/// `ClientWithMiddleware`, `Error`) without a second, possibly different, version in the
/// dependency tree.
pub use reqwest_middleware;

use reqwest_middleware::ClientWithMiddleware;

use crate::config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
use crate::manager::TokenError;

/// A client that authenticates GenLogs requests with `auth`, over a reqwest client that:
///
/// - follows redirects by [`redirect_policy`] (same origin only, at most 10);
/// - sends no `Referer` (it would repeat a URL; GenLogs needs none);
/// - connects within 5 s and finishes
///   each request, body included, within 30 s (longer
///   for one request with `RequestBuilder::timeout`);
/// - uses no proxy when the API origin is plain http to loopback, so that `HTTP_PROXY` cannot
///   carry credentials off the host in clear (as the auth client does).
///
/// For other settings, build your own reqwest client with [`redirect_policy`] and wrap it:
/// `reqwest_middleware::ClientBuilder::new(http).with(auth).build()`.
///
/// # Panics
/// When the TLS backend cannot be initialized, as `reqwest::Client::new` does.
pub fn client(auth: GenLogsAuth) -> ClientWithMiddleware {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("genlogs-auth/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy())
        .referer(false)
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .timeout(DEFAULT_TIMEOUT);
    let builder = if auth.origin().is_loopback() {
        builder.no_proxy()
    } else {
        builder
    };
    let http = builder
        .build()
        .expect("the HTTP client could not be built (TLS backend)");
    reqwest_middleware::ClientBuilder::new(http)
        .with(auth)
        .build()
}

/// The manager's [`TokenError`] behind a failed request, if that is why it failed (the
/// middleware wraps it in `reqwest_middleware::Error::Middleware`).
///
/// ```no_run
/// # async fn run(client: genlogs_auth::middleware::reqwest_middleware::ClientWithMiddleware) {
/// use genlogs_auth::middleware::token_error;
///
/// match client.get("https://api.genlogs.io/carriers/recommendations").send().await {
///     Err(error) if token_error(&error).is_some_and(|e| e.needs_new_tokens()) => {
///         // An operator must create new tokens (`POST /auth/token`).
///     }
///     other => { let _ = other; }
/// }
/// # }
/// ```
pub fn token_error(error: &reqwest_middleware::Error) -> Option<&TokenError> {
    match error {
        reqwest_middleware::Error::Middleware(error) => error.downcast_ref(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

//! [`AuthClient`]: the generated refresh operation, with typed results and errors.

pub use crate::config::{AuthClientBuilder, DEFAULT_BASE_URL};
pub use crate::error::{
    InvalidAccessToken, RecoveredRefreshToken, UnknownOutcome, ValidationProblem,
};
pub use crate::expiry::{Expiry, ExpiryParseError};
pub use crate::secret::SecretToken;

use progenitor_client::{ClientInfo, Error as RawError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, DATE};

use crate::error::{ConfigError, Error};
use crate::generated;
use crate::redact::Scrubber;
use crate::response::{error_for_status, undecodable_success};
use crate::secret::{AccessToken, ApiKey, RefreshToken};
use crate::session::Session;
use crate::transport::{read_buffered, BodyRejected, API_KEY_HEADER};

/// The header that carries the access token to every other GenLogs endpoint.
const ACCESS_TOKEN_HEADER: HeaderName = HeaderName::from_static("access-token");

/// A client for GenLogs' auth API, configured once with the api key.
///
/// Cheap to clone (the HTTP connection pool is shared).
///
/// GenLogs' `POST /auth/token/refresh` exchanges a refresh token for a new access token and a new
/// refresh token; [`refresh`](Self::refresh) sends it and returns a [`Session`] or
/// an [`Error`] that says what the failure means for you:
///
/// ```no_run
/// use genlogs_auth::{AuthClient, Error, RefreshToken};
///
/// # async fn run() -> Result<(), Error> {
/// let client = AuthClient::builder(std::env::var("GENLOGS_API_KEY").unwrap_or_default()).build()?;
/// let refresh_token = RefreshToken::new(std::env::var("GENLOGS_REFRESH_TOKEN").unwrap_or_default());
///
/// match client.refresh(&refresh_token).await {
///     Ok(session) => {
///         // The refresh token rotated: the one sent is dead, store this one now.
///         let next: &RefreshToken = &session.refresh_token;
///         println!("access token valid until {}", session.access_expires);
///         let header_value: &str = session.access_token.expose_secret(); // explicit, greppable
///         # let _ = (next, header_value);
///     }
///     Err(error) if error.is_retryable() => {
///         // Connect failure, 429 or 503: try again later, after `Retry-After` if the server sent it
///         // (capped at `MAX_RETRY_AFTER`, 15 minutes).
///         let wait = error.retry_after().unwrap_or(std::time::Duration::from_secs(5));
///         # let _ = wait;
///     }
///     Err(error) if error.is_token_rejected() => { /* 401: create new tokens */ }
///     Err(error) if error.may_have_spent_token() => {
///         // Unknown outcome, 408, a 5xx but 501/503: GenLogs may have rotated the token. Send
///         // the same one again later; a 401 then means the first attempt did rotate it.
///     }
///     Err(error) => return Err(error),
/// }
/// # Ok(())
/// # }
/// ```
///
/// The configuration and its defaults are on [`AuthClientBuilder`]. `genlogs_auth::reqwest` is the
/// reqwest this crate uses: `genlogs_auth::reqwest::{StatusCode, header::HeaderMap}` name the
/// HTTP types of the API, so you need no `reqwest` dependency of your own.
/// [`client.auth_headers(&access_token)`](Self::auth_headers) gives the two headers every other
/// GenLogs endpoint wants (`Access-Token`, `x-api-key`, both marked sensitive); rather than setting
/// them by hand, use the middleware (`genlogs_auth::middleware`, feature `middleware`).
///
/// The generated client and types stay reachable for what this layer does not wrap:
/// [`client.raw()`](Self::raw) and `genlogs_auth::raw::{types, Client, …}`.
///
/// # Security
///
/// - **No redirects, no proxy on loopback.** The request carries the refresh token (query) and the
///   api key (header); reqwest would resend custom headers such as `x-api-key` to whatever a
///   `Location` names. A 3xx is an error, and no `Referer` is ever sent, also with a caller's
///   `reqwest::ClientBuilder` (both are forced on it; `tests/it/client_transport.rs`). Plain http is allowed
///   only to loopback, and then no proxy is used, so `HTTP_PROXY` / `ALL_PROXY` cannot carry it off
///   the host in clear (`tests/proxy_env.rs`).
/// - **Credentials stay on the GenLogs origin.** The middleware adds `Access-Token` and `x-api-key`
///   only to requests for the API origin, and its client never follows a redirect to another origin
///   (reqwest would forward both headers there; `tests/it/middleware.rs` shows it does).
/// - **No URLs in errors.** reqwest's `Error` displays the full URL, query included. Every transport
///   error is stripped with `without_url()`, response objects are rebuilt without their URL, and
///   tracing spans name the operation only.
/// - **Nothing echoed.** Text kept from a response (a `detail`, a gateway `message`, a text body) has
///   the refresh token sent and the api key replaced by `[REDACTED]` (also percent-encoded, with
///   `%2B` or `+` for a space, and base64-encoded in either alphabet, padded or not, even inside a
///   longer base64 text), as well as anything token-shaped: 12+ token characters that change
///   character class as often as random base64 does, or hold 24+ JWT characters mixing letters and
///   digits, or a long mixed letters-and-digits or oddly-cased piece (the rule and what ordinary
///   English it leaves alone are in `src/redact.rs`). It is cut to 200 characters
///   (200 characters). A body that does not decode is described by
///   JSON path and kind of problem
///   (`` `access_token_data.expires`: invalid type: integer, expected a datetime string ``), never by
///   value. Tests check `{}`, `{:#}`, `{:?}` and every `source()` of every error path.
/// - **Bounded.** Connect and total timeouts are always set; bodies are capped while streaming; TLS is
///   rustls (no OpenSSL).
/// - progenitor's own error type (from `client.raw()`) prints undecodable bodies in its
///   `Display`; use `refresh()` unless you need the raw client.
///
/// # Robustness
///
/// - **Fuzzing the response path** (`tests/it/client_fuzz.rs`, proptest): status, headers and body
///   go out of a real loopback server, through reqwest, the hooks, the generated code and the error
///   mapping. Inputs: arbitrary bytes, token responses with wrong types, missing fields, huge
///   numbers, every datetime shape, truncated JSON, invalid UTF-8, 2,000-deep nesting, error bodies
///   echoing tokens and the api key. Properties: no panic; a success only for a 200; the error's
///   class matches the status and its text says what was wrong; no token from the body, no refresh
///   token sent and no api key in `{}`, `{:#}`, `{:?}` or any `source()`.
///   A run of a million inputs: 1,000,000 responses in 129 s, no failure (release build, this
///   project's machine, 2026-11-26)
///   (`GENLOGS_FUZZ_CASES=1000000 cargo test --release --test fuzz_responses -- --nocapture`).
///   CI runs 1,000 inputs in every `cargo test` (under a second).
///   cargo-fuzz needs a nightly toolchain, which this project's machines cannot install; proptest
///   over the real path runs on stable.
/// - **What fuzzing and properties found, now fixed:** a body nested a few hundred levels deep
///   overflowed a 2 MiB stack inside serde's recursion in a debug build (serde_json's own limit is
///   128), so the hooks refuse bodies nested deeper than 32 levels
///   (32 levels) before any parser sees them; chrono's parser
///   accepted white space inside numbers (`1970-\t1-01`), so the expiry grammar is checked byte by
///   byte; an error response declared without a body beside raw ones tripped progenitor's
///   assertion, so the quirk pass gives every error response a raw body and the pipeline reports
///   mixed body kinds by JSON path.
/// - **Property tests:** every accepted datetime form round-trips with 0–9 fractional digits and any
///   offset, and nothing outside the grammar parses (`src/expiry.rs`); the quirk pass is idempotent
///   on any mix of upstream's quirks and plausible edits (`tests/codegen/properties.rs`).
/// - **Hostile servers** (`tests/it/client_hostile.rs`): a body trickled at one byte per second ends in a
///   timeout within the configured 2.5 s; a 64 MiB body declared by `Content-Length` is refused
///   without reading it; a 64 MiB chunked body and an endless one are cut at the cap. The process's
///   peak resident size stays under 32 MiB throughout (it would pass 64 MiB if any body were
///   buffered).
#[derive(Debug, Clone)]
pub struct AuthClient {
    raw: generated::Client,
    /// Kept to scrub it out of anything a response says.
    api_key: ApiKey,
}

impl AuthClient {
    /// Starts a configuration with the api key GenLogs issued.
    pub fn builder(api_key: impl Into<ApiKey>) -> AuthClientBuilder {
        AuthClientBuilder::new(api_key.into())
    }

    pub(crate) fn from_parts(raw: generated::Client, api_key: ApiKey) -> Self {
        Self { raw, api_key }
    }

    /// The generated client ([`raw::Client`](crate::raw::Client)), for operations this layer does not wrap. It sends the api key,
    /// applies the timeout and the body cap, and strips URLs from transport errors like
    /// [`refresh`](Self::refresh), but its errors are progenitor's: their `Display` prints an
    /// undecodable body, which may hold tokens. Prefer `refresh`, whose errors never do.
    pub fn raw(&self) -> &generated::Client {
        &self.raw
    }

    /// The headers every other GenLogs endpoint authenticates with: `Access-Token: <access>`
    /// and `x-api-key: <api key>`, both marked sensitive (their `Debug` prints `Sensitive`, and
    /// HTTP/2's HPACK never indexes them).
    ///
    /// Fails only when `access` cannot be a header value (a control character or a line break).
    pub fn auth_headers(&self, access: &AccessToken) -> Result<HeaderMap, InvalidAccessToken> {
        let mut access =
            HeaderValue::from_str(access.expose_secret()).map_err(|_| InvalidAccessToken)?;
        access.set_sensitive(true);
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(ACCESS_TOKEN_HEADER, access);
        // The one sensitive copy of the api key, made when the client was built.
        headers.insert(API_KEY_HEADER, self.raw.inner().api_key().clone());
        Ok(headers)
    }

    /// The api key (the key 0.2 made fingerprints of rotated-away refresh tokens with: the
    /// manager still recognises them in older documents).
    pub(crate) fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// The total time one request may take (the manager keeps a store lease at least this long
    /// before it sends one).
    pub(crate) fn request_timeout(&self) -> std::time::Duration {
        progenitor_client::ClientInfo::inner(&self.raw).timeout()
    }

    /// Exchanges `refresh_token` for a new access token and a new refresh token.
    ///
    /// The token sent is single use: after success only the returned one is valid, and after
    /// [`Error::OutcomeUnknown`] it may already be dead (see
    /// [`Error::may_have_spent_token`]).
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<Session, Error> {
        match self
            .raw
            .refresh_tokens_required(refresh_token.expose_secret())
            .await
        {
            Ok(response) => {
                let status = response.status();
                let server_date = response
                    .headers()
                    .get(DATE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|text| chrono::DateTime::parse_from_rfc2822(text).ok())
                    .map(|date| date.to_utc());
                let session = Session::from_response(response.into_inner(), server_date);
                match blank_token(&session) {
                    None => Ok(session),
                    Some(path) => Err(blank_token_error(status, path, session)),
                }
            }
            // Built only on the error path: it encodes both secrets to search for them.
            Err(error) => Err(classify(
                error,
                &Scrubber::new([refresh_token.expose_secret(), self.api_key.expose_secret()]),
            )),
        }
    }
}

/// The JSON path of an empty or white-space-only token in a decoded response. Such a token
/// cannot authenticate anything: a session holding it would fail every call.
fn blank_token(session: &Session) -> Option<&'static str> {
    let blank = |token: &str| token.trim().is_empty();
    if blank(session.refresh_token.expose_secret()) {
        Some("refresh_token_data.token")
    } else if blank(session.access_token.expose_secret()) {
        Some("access_token_data.token")
    } else {
        None
    }
}

/// A 2xx whose token at `path` is blank: not a token response. The refresh token is handed back
/// when it is the one that is fine, since the one sent is now dead.
fn blank_token_error(status: reqwest::StatusCode, path: &str, session: Session) -> Error {
    let recovered = (path != "refresh_token_data.token").then(|| RecoveredRefreshToken {
        token: session.refresh_token,
        expires: Some(crate::client::Expiry::from(session.refresh_expires)),
    });
    Error::OutcomeUnknown {
        reason: UnknownOutcome::Undecodable {
            status,
            problem: format!("`{path}`: the token is empty or white space only"),
        },
        recovered,
        source: None,
    }
}

/// progenitor's error → the crate's. progenitor's own `Display` prints bodies and URLs, so
/// nothing of it is kept but the transport cause, stripped of its URL.
///
/// Synchronous on purpose: progenitor's `ByteStream` is not `Send`, so it must not live across an
/// `.await`; the hooks already read every body into memory, so nothing here waits.
fn classify(error: RawError<generated::ByteStream>, scrubber: &Scrubber) -> Error {
    match error {
        RawError::ErrorResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_buffered(response.into_inner().into_inner());
            error_for_status(status, &headers, body, scrubber)
        }
        RawError::UnexpectedResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_buffered(Box::pin(response.bytes_stream()));
            match (status.is_success(), body) {
                (true, Ok(body)) => undecodable_success(status, &body),
                (true, Err(Some(error))) => body_failed(error),
                (true, Err(None)) => Error::OutcomeUnknown {
                    reason: UnknownOutcome::ConnectionLost,
                    recovered: None,
                    source: None,
                },
                (false, body) => error_for_status(status, &headers, body, scrubber),
            }
        }
        RawError::InvalidResponsePayload(body, _) => {
            // Only the 200 arm decodes JSON (error bodies are raw streams).
            undecodable_success(reqwest::StatusCode::OK, &body)
        }
        RawError::ResponseBodyError(error) => body_failed(error),
        RawError::CommunicationError(error) => transport_failed(error),
        RawError::InvalidRequest(_) | RawError::Custom(_) => {
            ConfigError::BaseUrl("the request could not be built from it").into()
        }
        RawError::InvalidUpgrade(error) => body_failed(error),
    }
}

/// The request never got a response.
fn transport_failed(error: reqwest::Error) -> Error {
    let error = error.without_url();
    if error.is_builder() {
        ConfigError::BaseUrl("the request could not be built from it").into()
    } else if error.is_connect() {
        // Also a connect *timeout*: reqwest's connector wraps the connection attempt (DNS, TCP,
        // TLS, a proxy's CONNECT) in `connect_timeout`, and hyper-util reports its failure as a
        // connect error, so `is_connect()` and `is_timeout()` are both true. The total timeout
        // instead surfaces as a bare timeout (`is_connect()` false) whatever phase it cuts; the
        // builder keeps the connect timeout below it so that it never cuts a connection attempt.
        Error::Connect { source: error }
    } else {
        // Sent, and then the response never came whole: the same as a body that failed.
        body_failed(error)
    }
}

/// The request was sent but no whole response came back (or a success body did not).
fn body_failed(error: reqwest::Error) -> Error {
    let error = error.without_url();
    let reason = if let Some(BodyRejected::TooLarge { limit }) = BodyRejected::in_chain(&error) {
        UnknownOutcome::BodyTooLarge { limit }
    } else if let Some(BodyRejected::TooDeep { limit }) = BodyRejected::in_chain(&error) {
        UnknownOutcome::BodyTooDeep { limit }
    } else if error.is_timeout() {
        UnknownOutcome::TimedOut
    } else {
        UnknownOutcome::ConnectionLost
    };
    Error::OutcomeUnknown {
        reason,
        recovered: None,
        source: Some(error),
    }
}

//! Building an [`AuthClient`]: the api key, the base URL and the transport limits, each with a
//! documented default.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::client::AuthClient;
use crate::error::ConfigError;
use crate::secret::ApiKey;
use crate::transport::Transport;

/// GenLogs' production auth base URL (the spec's `servers` entry).
pub const DEFAULT_BASE_URL: &str = "https://api.genlogs.io/auth";
/// Time allowed to open the connection (DNS, TCP, TLS, and a proxy's `CONNECT` if any).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request, response body included.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read. A token response is under 2 KiB.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Shortest total timeout accepted: below it the connect timeout cannot be kept safely below the
/// total one on a timer with millisecond resolution.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(10);

/// Configuration for an [`AuthClient`]; start from [`AuthClient::builder`].
///
/// | setter | default | notes |
/// |---|---|---|
/// | [`AuthClient::builder(api_key)`](AuthClient::builder) | required | sent as `x-api-key`, a sensitive header |
/// | [`with_base_url`](Self::with_base_url) | `https://api.genlogs.io/auth` | `https` only, except loopback hosts; no credentials, query or fragment |
/// | [`with_connect_timeout`](Self::with_connect_timeout) | 5 s | DNS + TCP + TLS (+ a proxy's `CONNECT`); never more than ¾ of the total timeout, so a connection that cannot be made is a `Connect` error (nothing sent), never an unknown outcome |
/// | [`with_timeout`](Self::with_timeout) | 30 s | whole request, body included (at least 10 ms); applied per request, also to your own builder |
/// | [`with_max_response_bytes`](Self::with_max_response_bytes) | 64 KiB | counted while streaming, not only from `Content-Length` |
/// | [`with_http_client_builder`](Self::with_http_client_builder) | `reqwest::Client::builder()` | your `reqwest::ClientBuilder` (roots, a proxy for https, pool settings); the crate then **forces** no redirects, no `Referer`, its connect timeout, and no proxy for a loopback base URL |
///
/// `genlogs_auth::reqwest` is the reqwest this crate uses (build your `ClientBuilder` from it),
/// so you need no `reqwest` dependency of your own.
#[derive(Debug)]
#[must_use]
pub struct AuthClientBuilder {
    api_key: ApiKey,
    base_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    http_client: Option<reqwest::ClientBuilder>,
}

impl AuthClientBuilder {
    pub(crate) fn new(api_key: ApiKey) -> Self {
        Self {
            api_key,
            base_url: DEFAULT_BASE_URL.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            http_client: None,
        }
    }

    crate::setters! {
        /// The auth base URL. Default: [`DEFAULT_BASE_URL`]. Must be `https://`, except for
        /// loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`), and must have no credentials,
        /// query or fragment.
        with_base_url(base_url: impl Into<String>) => base_url = base_url.into();

        /// Time allowed to connect (DNS, TCP, TLS, a proxy's `CONNECT`). Default: 5 s, and never
        /// more than three quarters of the total timeout ([`with_timeout`](Self::with_timeout)): a
        /// connection that cannot be made then always fails as
        /// [`Error::Connect`](crate::Error::Connect) (nothing was sent, safe to retry) before the
        /// total timeout could fire and leave the outcome unknown. Also applied to a caller's
        /// [`with_http_client_builder`](Self::with_http_client_builder). Must not be zero.
        with_connect_timeout(timeout: Duration) => connect_timeout = timeout;

        /// Time allowed for a whole request, body included. Default: 30 s; at least 10 ms. Applied
        /// to every request, also with a caller's own HTTP client.
        with_timeout(timeout: Duration) => timeout = timeout;

        /// Largest response body read, counted while streaming. Default: 64 KiB.
        with_max_response_bytes(limit: usize) => max_response_bytes = limit;

        /// Build the HTTP client from the caller's `reqwest::ClientBuilder` (extra root
        /// certificates, a corporate proxy for https, local address, pool settings…). Default: a
        /// plain `reqwest::Client::builder()` with a `genlogs-auth/<version>` user agent.
        ///
        /// Whatever the builder says, [`build`](Self::build) then forces on it what keeps the
        /// request's secrets (the refresh token in the query, the api key in a header) where they
        /// belong:
        ///
        /// - **no redirects** (`redirect::Policy::none()`): reqwest would resend `x-api-key` to
        /// whatever a `Location` names; a 3xx is an
        /// [`Error::UnexpectedStatus`](crate::Error::UnexpectedStatus); - **no `Referer`**
        /// (`referer(false)`): it would carry the URL, query included; - **the connect timeout** of
        /// [`with_connect_timeout`](Self::with_connect_timeout), replacing the builder's own; - **a
        /// new connection for every request** (`pool_max_idle_per_host(0)`): see
        /// [`build`](Self::build); - **no proxy for a loopback base URL** (`no_proxy()`):
        /// `HTTP_PROXY` / `ALL_PROXY` or a proxy set on the builder would otherwise receive the
        /// plain-http request, query and key in clear. Proxies stay in effect for any other (https)
        /// base URL.
        ///
        /// The total timeout is set on every request, so the builder's own `timeout` never applies.
        with_http_client_builder(builder: reqwest::ClientBuilder) => http_client = Some(builder);
    }

    /// Checks the configuration and builds the client.
    ///
    /// The client opens a new connection for every refresh and keeps none idle. A pooled
    /// connection may have been closed by the server or a gateway as idle at the very moment a
    /// refresh is written to it (uvicorn closes idle connections after 5 s, many gateways after
    /// a minute): the request then fails after it was sent, its outcome is unknown, and the
    /// single-use refresh token must be treated as possibly spent. A refresh happens once per
    /// access token lifetime, so the cost of a fresh connection (a TCP and TLS handshake) is
    /// paid rarely; the risk of a stale one is never taken.
    pub fn build(self) -> Result<AuthClient, ConfigError> {
        let base_url = validate_base_url(&self.base_url)?;
        let api_key = HeaderValue::from_str(self.api_key.expose_secret())
            .ok()
            .filter(|value| !value.is_empty())
            .ok_or(ConfigError::ApiKey)?;
        let connect_timeout = effective_connect_timeout(self.connect_timeout, self.timeout)?;
        let builder = self.http_client.unwrap_or_else(|| {
            reqwest::Client::builder()
                .user_agent(concat!("genlogs-auth/", env!("CARGO_PKG_VERSION")))
        });
        let http = enforce_transport_rules(builder, &base_url, connect_timeout)
            .build()
            .map_err(|e| ConfigError::HttpClient(e.without_url()))?;
        let transport = Transport::new(api_key, self.timeout, self.max_response_bytes);
        let base_url = base_url.as_str().trim_end_matches('/');
        Ok(AuthClient::from_parts(
            crate::generated::Client::new_with_client(base_url, http, transport),
            self.api_key,
        ))
    }
}

/// What every HTTP client of this crate must do, set last so that nothing overrides it.
fn enforce_transport_rules(
    builder: reqwest::ClientBuilder,
    base_url: &url::Url,
    connect_timeout: Duration,
) -> reqwest::ClientBuilder {
    // The request carries the refresh token (query) and the api key (header); a redirect would
    // hand both to whatever the Location names, and a Referer would repeat the URL.
    let builder = builder
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .connect_timeout(connect_timeout)
        // No connection is reused (see `build`): a stale pooled connection would turn a refresh
        // the server never saw into an unknown outcome.
        .pool_max_idle_per_host(0);
    if is_loopback(base_url) {
        // Plain http is allowed only to loopback; a proxy would carry it off the host in clear.
        builder.no_proxy()
    } else {
        builder
    }
}

/// The connect timeout used: the one configured, clamped to three quarters of the total.
///
/// reqwest reports a connect timeout as a connect error (`is_connect()`: nothing was sent) but
/// its total timeout as a bare timeout, whatever phase it interrupts. Keeping the connect timeout
/// well below the total one means a connection that cannot be made always ends as the former;
/// the quarter left is room for the timers' millisecond resolution and the request itself.
fn effective_connect_timeout(connect: Duration, total: Duration) -> Result<Duration, ConfigError> {
    if total < MIN_TIMEOUT {
        return Err(ConfigError::Timeout(
            "the total timeout must be at least 10 ms",
        ));
    }
    if connect.is_zero() {
        return Err(ConfigError::Timeout("the connect timeout must not be zero"));
    }
    Ok(connect.min(total - total / 4))
}

/// The base URL, or why it cannot be used.
fn validate_base_url(text: &str) -> Result<url::Url, ConfigError> {
    let url =
        url::Url::parse(text).map_err(|_| ConfigError::BaseUrl("it does not parse as a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::BaseUrl("it must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::BaseUrl("it must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(ConfigError::InsecureBaseUrl),
        _ => return Err(ConfigError::BaseUrl("the scheme must be https")),
    }
    Ok(url)
}

/// Whether `url`'s host is loopback (`localhost`, `127.0.0.0/8`, `[::1]`): the only hosts plain
/// http is allowed to, here and for the middleware's API origin.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_timeout_stays_below_the_total_timeout() {
        let ms = Duration::from_millis;
        assert_eq!(
            effective_connect_timeout(ms(5_000), ms(30_000)).unwrap(),
            ms(5_000)
        );
        assert_eq!(
            effective_connect_timeout(ms(5_000), ms(1_000)).unwrap(),
            ms(750)
        );
        assert_eq!(
            effective_connect_timeout(ms(5_000), ms(10)).unwrap(),
            Duration::from_micros(7_500)
        );
        assert!(matches!(
            effective_connect_timeout(ms(5_000), ms(9)),
            Err(ConfigError::Timeout(_))
        ));
        assert!(matches!(
            effective_connect_timeout(Duration::ZERO, ms(1_000)),
            Err(ConfigError::Timeout(_))
        ));
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        assert_eq!(
            validate_base_url("https://api.genlogs.io/auth/")
                .unwrap()
                .as_str(),
            "https://api.genlogs.io/auth/"
        );
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:1/auth",
            "http://[::1]:9/",
            "http://127.1.2.3",
        ] {
            assert!(validate_base_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn plain_http_elsewhere_and_odd_urls_are_refused() {
        for url in ["http://api.genlogs.io/auth", "http://10.0.0.1"] {
            let refused = validate_base_url(url);
            assert!(
                matches!(refused, Err(ConfigError::InsecureBaseUrl)),
                "{url}"
            );
        }
        for url in [
            "ftp://x",
            "not a url",
            "https://u:p@x.io",
            "https://x.io/?k=v",
        ] {
            let refused = validate_base_url(url);
            assert!(matches!(refused, Err(ConfigError::BaseUrl(_))), "{url}");
        }
    }
}

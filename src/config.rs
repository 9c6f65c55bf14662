//! Building an [`AuthClient`]: the api key, the base URL and the transport limits, each with a
//! documented default.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::client::AuthClient;
use crate::error::{ConfigError, Error};
use crate::secret::ApiKey;
use crate::transport::Transport;

/// GenLogs' production auth base URL (the spec's `servers` entry).
pub const DEFAULT_BASE_URL: &str = "https://api.genlogs.io/auth";
/// Time allowed to open the connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request, response body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read. A token response is under 2 KiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Configuration for an [`AuthClient`]; start from [`AuthClient::builder`].
#[derive(Debug)]
#[must_use]
pub struct AuthClientBuilder {
    api_key: ApiKey,
    base_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    http_client: Option<reqwest::Client>,
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

    /// The auth base URL. Default: [`DEFAULT_BASE_URL`]. Must be `https://`, except for loopback
    /// hosts (`localhost`, `127.0.0.0/8`, `[::1]`), and must have no credentials, query or
    /// fragment.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Time allowed to connect. Default: [`DEFAULT_CONNECT_TIMEOUT`]. Ignored with
    /// [`with_http_client`](Self::with_http_client), whose own setting applies.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request, body included. Default: [`DEFAULT_TIMEOUT`]. Applied to
    /// every request, also with a caller's own client.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body read, counted while streaming. Default:
    /// [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Use the caller's `reqwest::Client` (a shared pool, a proxy, extra roots). It **must not
    /// follow redirects** (`redirect::Policy::none()`): reqwest would resend the `x-api-key`
    /// header to the redirect's target. Default: a client built for the purpose, with no
    /// redirects, no `Referer`, rustls, and the connect timeout above.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<AuthClient, Error> {
        let base_url = validate_base_url(&self.base_url)?;
        let api_key = HeaderValue::from_str(self.api_key.expose_secret())
            .ok()
            .filter(|value| !value.is_empty())
            .ok_or(ConfigError::ApiKey)?;
        let http = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .timeout(self.timeout)
                // The request carries the refresh token (query) and the api key (header); a
                // redirect would hand both to whatever the Location names.
                .redirect(reqwest::redirect::Policy::none())
                .referer(false)
                .user_agent(concat!("genlogs-auth/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ConfigError::HttpClient(e.without_url()))?,
        };
        let transport = Transport::new(api_key, self.timeout, self.max_response_bytes);
        Ok(AuthClient::from_parts(
            crate::generated::Client::new_with_client(&base_url, http, transport),
            self.api_key,
        ))
    }
}

/// The base URL without a trailing slash, or why it cannot be used.
fn validate_base_url(text: &str) -> Result<String, ConfigError> {
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
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn is_loopback(url: &url::Url) -> bool {
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
    fn https_and_loopback_http_are_accepted() {
        assert_eq!(
            validate_base_url("https://api.genlogs.io/auth/").unwrap(),
            "https://api.genlogs.io/auth"
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
        assert!(matches!(
            validate_base_url("http://api.genlogs.io/auth"),
            Err(ConfigError::InsecureBaseUrl)
        ));
        assert!(matches!(
            validate_base_url("http://10.0.0.1"),
            Err(ConfigError::InsecureBaseUrl)
        ));
        assert!(matches!(
            validate_base_url("ftp://x"),
            Err(ConfigError::BaseUrl(_))
        ));
        assert!(matches!(
            validate_base_url("not a url"),
            Err(ConfigError::BaseUrl(_))
        ));
        assert!(matches!(
            validate_base_url("https://u:p@x.io"),
            Err(ConfigError::BaseUrl(_))
        ));
        assert!(matches!(
            validate_base_url("https://x.io/?k=v"),
            Err(ConfigError::BaseUrl(_))
        ));
    }
}

//! The GenLogs API origin (scheme, host, port): the only place the middleware sends credentials
//! to, and the check that a configured origin is one it may send them to.

use std::fmt;

use crate::config::is_loopback;

/// GenLogs' production API origin, where every endpoint other than the auth API lives.
pub const DEFAULT_API_ORIGIN: &str = "https://api.genlogs.io";

/// Why a text cannot be the API origin. The text itself is not part of the message: it could
/// hold credentials (`https://user:password@host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOrigin {
    /// It does not parse, or has parts an origin does not have.
    #[error("the GenLogs API origin is not usable: {0}")]
    Unusable(&'static str),
    /// `http://` to a host that is not loopback: the credentials would cross the network in
    /// clear.
    #[error(
        "the GenLogs API origin must use https (plain http is allowed only for loopback hosts)"
    )]
    Insecure,
}

/// A checked origin: `https://…`, or `http://` to a loopback host.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiOrigin {
    /// Compared with each request's `Url::origin()`, which resolves the scheme's default port
    /// and lower-cases the host, so `https://API.genlogs.io:443/x` matches.
    origin: url::Origin,
    loopback: bool,
}

impl ApiOrigin {
    /// Parses `text` as an origin: a scheme and a host, a port if not the default, and at most a
    /// `/` for a path. Credentials, a longer path, a query or a fragment are refused rather than
    /// dropped, since whoever wrote them meant something the middleware would not do.
    pub(crate) fn parse(text: &str) -> Result<Self, InvalidOrigin> {
        let url = url::Url::parse(text)
            .map_err(|_| InvalidOrigin::Unusable("it does not parse as a URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidOrigin::Unusable("it must not contain credentials"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(InvalidOrigin::Unusable(
                "it must be scheme, host and port only (no path, query or fragment)",
            ));
        }
        let loopback = is_loopback(&url);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(InvalidOrigin::Insecure),
            _ => return Err(InvalidOrigin::Unusable("the scheme must be https")),
        }
        Ok(Self {
            origin: url.origin(),
            loopback,
        })
    }

    /// GenLogs' production API: [`DEFAULT_API_ORIGIN`].
    pub(crate) fn genlogs() -> Self {
        Self::parse(DEFAULT_API_ORIGIN).expect("the default origin is valid")
    }

    /// Whether `url` is on this origin (same scheme, host and port).
    pub(crate) fn matches(&self, url: &url::Url) -> bool {
        url.origin() == self.origin
    }

    /// Whether plain http is in use, to a loopback host: then no proxy may carry it off the host.
    pub(crate) fn is_loopback(&self) -> bool {
        self.loopback
    }
}

/// Shows `https://api.genlogs.io`: an origin holds no credential (they are refused).
impl fmt::Debug for ApiOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin.ascii_serialization())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap()
    }

    #[test]
    fn the_default_origin_matches_its_endpoints_only() {
        let origin = ApiOrigin::genlogs();
        assert!(origin.matches(&url("https://api.genlogs.io/carriers/recommendations?x=1")));
        assert!(origin.matches(&url("https://API.GenLogs.io:443/")));
        assert!(!origin.matches(&url("http://api.genlogs.io/carriers")));
        assert!(!origin.matches(&url("https://api.genlogs.io:8443/carriers")));
        assert!(!origin.matches(&url("https://api.genlogs.io.evil.example/")));
        assert!(!origin.matches(&url("https://genlogs.io/")));
        assert!(!origin.is_loopback());
        assert_eq!(format!("{origin:?}"), "https://api.genlogs.io");
    }

    #[test]
    fn loopback_http_is_accepted_and_matches_its_port_only() {
        let origin = ApiOrigin::parse("http://127.0.0.1:8080").unwrap();
        assert!(origin.is_loopback());
        assert!(origin.matches(&url("http://127.0.0.1:8080/carriers/recommendations")));
        assert!(!origin.matches(&url("http://127.0.0.1:8081/carriers/recommendations")));
        // Same server, another name: another origin, as a browser would see it.
        assert!(!origin.matches(&url("http://localhost:8080/carriers/recommendations")));
        for text in ["http://localhost:1/", "http://[::1]:9", "https://10.0.0.1"] {
            assert!(ApiOrigin::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn plain_http_elsewhere_and_odd_origins_are_refused() {
        assert_eq!(
            ApiOrigin::parse("http://api.genlogs.io"),
            Err(InvalidOrigin::Insecure)
        );
        assert_eq!(
            ApiOrigin::parse("http://10.0.0.1:80"),
            Err(InvalidOrigin::Insecure)
        );
        for text in [
            "not a url",
            "ftp://api.genlogs.io",
            "https://u:p@api.genlogs.io",
            "https://api.genlogs.io/auth",
            "https://api.genlogs.io/?k=v",
            "https://api.genlogs.io/#f",
        ] {
            assert!(
                matches!(ApiOrigin::parse(text), Err(InvalidOrigin::Unusable(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn the_error_never_repeats_the_text() {
        let error = ApiOrigin::parse("https://user:s3cr3t@api.genlogs.io").unwrap_err();
        assert!(!format!("{error} {error:?}").contains("s3cr3t"));
    }
}

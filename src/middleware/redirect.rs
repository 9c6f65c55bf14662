//! The redirect policy for a client that carries GenLogs credentials: same-origin redirects are
//! followed (a bounded number), a redirect to any other origin is not.
//!
//! Why reqwest's default is not enough: on a redirect reqwest 0.13 removes only the headers it
//! knows to be credentials, and only when the host, port or scheme changes
//! (`reqwest-0.13.5/src/redirect.rs`, `remove_sensitive_headers`: `Authorization`, `Cookie`,
//! `Cookie2`, `Proxy-Authorization`, `WWW-Authenticate`), called from `TowerRedirectPolicy::
//! on_request` for every followed hop. `Access-Token` and `x-api-key` are not on that list: with
//! the default policy (`Policy::limited(10)`) they go to whatever host a `Location` names.

use std::fmt;

use reqwest::redirect::Policy;
use url::Url;

/// The most redirects [`redirect_policy`] follows in one chain (reqwest's default too).
pub(crate) const MAX_REDIRECTS: usize = 10;

/// A redirect policy that never follows a redirect to another origin, for any reqwest client
/// that sends GenLogs credentials (`GenLogsAuth`'s, or [`auth_headers`](crate::TokenManager::auth_headers)
/// set by hand).
///
/// - A `Location` on the **same origin** (scheme, host and port) as every URL before it in the
///   chain, the first request's included, is followed, up to 10 in a row; one
///   more is an error (`reqwest::Error::is_redirect`).
/// - A `Location` on **any other origin**, an `https` → `http` downgrade on the same host
///   included, is not followed: the 3xx comes back as the response, `Location` and all, for the
///   caller to look at. Nothing is sent to the other origin, with or without credentials.
///
/// The chain is compared with itself rather than with the GenLogs API origin, so the policy
/// needs no configuration and also holds back any header a caller set on a request elsewhere.
/// The price: a client with this policy does not follow cross-origin redirects for any request.
pub fn redirect_policy() -> Policy {
    Policy::custom(|attempt| match decide(attempt.url(), attempt.previous()) {
        Decision::Follow => attempt.follow(),
        Decision::Stop => attempt.stop(),
        Decision::TooMany => attempt.error(TooManyRedirects),
    })
}

/// What to do with one redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Follow,
    Stop,
    TooMany,
}

/// `next` is the redirect's target; `previous` every URL already requested in the chain, the
/// first request's first (reqwest's `Attempt::previous`).
fn decide(next: &Url, previous: &[Url]) -> Decision {
    let origin = next.origin();
    // A chain can only grow hop by hop on one origin (any other hop stops it), so comparing with
    // the last URL would do; comparing with all says what is meant and costs ten comparisons.
    if previous.is_empty() || previous.iter().any(|url| url.origin() != origin) {
        Decision::Stop
    } else if previous.len() > MAX_REDIRECTS {
        // The first URL is the original request, not a redirect (as in reqwest's own limit).
        Decision::TooMany
    } else {
        Decision::Follow
    }
}

/// The error a chain of more than 10 same-origin redirects ends with.
#[derive(Debug)]
struct TooManyRedirects;

impl fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {MAX_REDIRECTS} redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn same_origin_redirects_are_followed() {
        let chain = [url("https://api.genlogs.io/carriers/old")];
        assert_eq!(
            decide(&url("https://api.genlogs.io/carriers/new?page=2"), &chain),
            Decision::Follow
        );
        assert_eq!(
            decide(&url("https://API.genlogs.io:443/x"), &chain),
            Decision::Follow
        );
    }

    #[test]
    fn any_other_origin_stops_the_chain() {
        let chain = [url("https://api.genlogs.io/carriers/old")];
        for next in [
            "https://evil.example/steal",
            "https://genlogs.io/carriers",
            "https://api.genlogs.io:8443/carriers",
            "http://api.genlogs.io/carriers",
        ] {
            assert_eq!(decide(&url(next), &chain), Decision::Stop, "{next}");
        }
    }

    #[test]
    fn a_chain_that_left_the_origin_never_continues() {
        // Not reachable with this policy alone (it stops at the first other origin), but a
        // policy that wraps this one must not be able to bring a chain back through a third host.
        let chain = [
            url("https://api.genlogs.io/a"),
            url("https://cdn.example/b"),
        ];
        assert_eq!(
            decide(&url("https://api.genlogs.io/c"), &chain),
            Decision::Stop
        );
        assert_eq!(
            decide(&url("https://api.genlogs.io/c"), &[]),
            Decision::Stop
        );
    }

    #[test]
    fn the_eleventh_redirect_is_an_error() {
        let chain: Vec<_> = (0..=MAX_REDIRECTS)
            .map(|i| url(&format!("https://api.genlogs.io/{i}")))
            .collect();
        assert_eq!(
            decide(&url("https://api.genlogs.io/next"), &chain[..MAX_REDIRECTS]),
            Decision::Follow
        );
        assert_eq!(
            decide(&url("https://api.genlogs.io/next"), &chain),
            Decision::TooMany
        );
    }
}

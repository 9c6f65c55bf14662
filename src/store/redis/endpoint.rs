//! Where the Redis server is, described without its credentials: a Redis URL may carry a
//! password (`redis://:password@host/`, `unix:///path?pass=…`), and neither it nor the URL may
//! reach a message; and whether the URL would send them in clear over a network.

use std::fmt;

use crate::store::StoreError;

/// The parts of a Redis URL that are safe to show, and the secrets to scrub from any message.
#[derive(Clone)]
pub(super) struct Endpoint {
    /// `redis`, `rediss` or `unix`.
    scheme: String,
    /// `host:port`, or the socket path; for a cluster, its nodes' `host:port` joined by commas.
    address: String,
    /// Strings that must never be shown: the password, the user name and the whole URL.
    secrets: Vec<String>,
    /// Plain `redis://` to a host that is not loopback: the password and the tokens would cross
    /// a network in clear.
    plaintext_remote: bool,
}

/// Query parameters that carry credentials (`unix:///path?pass=…`, and spellings other clients
/// use): scrubbed like the URL's user-info part.
const CREDENTIAL_PARAMETERS: [&str; 4] = ["pass", "password", "user", "username"];

impl Endpoint {
    /// Parses `url`, failing without showing it.
    pub(super) fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = || {
            StoreError::Other(
                "invalid Redis URL (expected redis://, rediss:// or unix://; the URL is not shown \
                 because it may carry a password)"
                    .into(),
            )
        };
        let parsed = url::Url::parse(url).map_err(|_| invalid())?;
        let address = match parsed.scheme() {
            "redis" | "rediss" => {
                let host = parsed.host_str().ok_or_else(invalid)?;
                format!("{host}:{}", parsed.port().unwrap_or(6379))
            }
            "unix" | "redis+unix" => parsed.path().to_string(),
            _ => return Err(invalid()),
        };
        let mut secrets = vec![url.to_string()];
        for secret in [parsed.password().unwrap_or(""), parsed.username()] {
            if !secret.is_empty() {
                secrets.push(secret.to_string());
                // The URL holds them percent-encoded; a library may print either form.
                if let Ok(decoded) = urlencoding_decode(secret) {
                    secrets.push(decoded);
                }
            }
        }
        if let Some(query) = parsed.query() {
            // The raw query too: a library may print it whole, still percent-encoded.
            secrets.push(query.to_string());
            for (name, value) in parsed.query_pairs() {
                if CREDENTIAL_PARAMETERS.contains(&name.as_ref()) && !value.is_empty() {
                    secrets.push(value.into_owned());
                }
            }
            for pair in query.split('&') {
                if let Some((name, value)) = pair.split_once('=') {
                    if CREDENTIAL_PARAMETERS.contains(&name) && !value.is_empty() {
                        secrets.push(value.to_string());
                    }
                }
            }
        }
        let plaintext_remote = parsed.scheme() == "redis" && !is_loopback(&parsed);
        Ok(Self {
            scheme: parsed.scheme().to_string(),
            address,
            secrets,
            plaintext_remote,
        })
    }

    /// The nodes of a Redis Cluster: `redis://` or `rediss://` URLs, all of the same scheme.
    pub(super) fn parse_cluster(urls: &[&str]) -> Result<Self, StoreError> {
        let refused = |why: &str| {
            StoreError::Other(format!(
                "invalid Redis Cluster node URLs: {why} (the URLs are not shown because they may \
                 carry a password)"
            ))
        };
        let mut nodes = urls.iter().map(|url| Self::parse(url));
        let mut cluster = nodes.next().ok_or_else(|| refused("no node given"))??;
        for node in nodes {
            let node = node?;
            if node.scheme != cluster.scheme {
                return Err(refused("all nodes need the same scheme"));
            }
            cluster.address = format!("{},{}", cluster.address, node.address);
            cluster.secrets.extend(node.secrets);
            cluster.plaintext_remote |= node.plaintext_remote;
        }
        if cluster.scheme != "redis" && cluster.scheme != "rediss" {
            return Err(refused(
                "cluster nodes are reached by redis:// or rediss://",
            ));
        }
        Ok(cluster)
    }

    /// Refuses plain `redis://` to a host that is not loopback, which would send the Redis
    /// password and the tokens unencrypted over the network; `rediss://`, `unix://` and
    /// loopback `redis://` pass. `opt_in` names the constructor that allows it anyway.
    pub(super) fn refuse_plaintext_remote(&self, opt_in: &str) -> Result<(), StoreError> {
        if !self.plaintext_remote {
            return Ok(());
        }
        Err(StoreError::Other(format!(
            "refusing plain redis:// to {}, which is not loopback: the Redis password and the \
             tokens would cross the network unencrypted; use rediss:// (TLS), or opt in with \
             RedisStore::{opt_in}",
            self.address
        )))
    }

    /// Scrubs `secret` too (a password given apart from the URLs).
    pub(super) fn also_scrub(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.secrets.push(secret.to_string());
        }
    }

    /// Is it reached with TLS (`rediss://`)?
    pub(super) fn is_tls(&self) -> bool {
        self.scheme == "rediss"
    }

    /// `text` with every credential of the URL replaced by `[REDACTED]`.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        // Longest first, so the URL goes before the password inside it.
        let mut secrets: Vec<&String> = self.secrets.iter().collect();
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        for secret in secrets {
            text = text.replace(secret.as_str(), "[REDACTED]");
        }
        text
    }
}

/// Whether the URL's host is this machine: `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        // A `redis://` URL is not a "special" URL to the url crate: its IP addresses come as
        // domains, unparsed.
        Some(url::Host::Domain(domain)) => is_loopback_host(domain),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `host` (an IP address, bracketed or not, or a name) is this machine: `localhost`,
/// `127.0.0.0/8` or `::1`. Any other name could resolve anywhere.
pub(super) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            host.eq_ignore_ascii_case("localhost")
                || host.to_ascii_lowercase().ends_with(".localhost")
        }
    }
}

fn urlencoding_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_scheme_and_address_only() {
        let endpoint = Endpoint::parse("rediss://admin:s3cr%40t@cache.internal:6380/2").unwrap();
        assert_eq!(format!("{endpoint:?}"), "rediss://cache.internal:6380");
        let scrubbed = endpoint.scrub("auth failed for admin with s3cr@t and s3cr%40t");
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        assert!(!scrubbed.contains("admin"), "{scrubbed}");
    }

    #[test]
    fn a_cluster_shows_every_node_and_scrubs_every_password() {
        let endpoint = Endpoint::parse_cluster(&[
            "redis://:pw-one@node-a:7000/",
            "redis://:pw-two@node-b:7001/",
        ])
        .unwrap();
        assert_eq!(format!("{endpoint:?}"), "redis://node-a:7000,node-b:7001");
        let scrubbed = endpoint.scrub("pw-one then pw-two");
        assert!(!scrubbed.contains("pw-"), "{scrubbed}");
        for refused in [
            &[][..],
            &["redis://:pw-one@a:1/", "rediss://:pw-two@b:2/"][..],
            &["unix:///tmp/pw-one.sock"][..],
            &["redis://:pw-one@a:1/", "not a url pw-two"][..],
        ] {
            let error = Endpoint::parse_cluster(refused).unwrap_err().to_string();
            assert!(!error.contains("pw-"), "{error}");
        }
    }

    #[test]
    fn a_unix_socket_password_in_the_query_is_scrubbed() {
        for url in [
            "unix:///run/redis.sock?db=1&pass=pw%2Dunix%21",
            "unix:///run/redis.sock?password=pw%2Dunix%21&db=1",
            "redis+unix:///run/redis.sock?user=admin&pass=pw%2Dunix%21",
        ] {
            let endpoint = Endpoint::parse(url).unwrap();
            let debug = format!("{endpoint:?}");
            assert!(
                debug.ends_with("/run/redis.sock") && !debug.contains("pw"),
                "{debug}"
            );
            let scrubbed = endpoint.scrub(&format!(
                "failed: {url} with pw-unix! (pw%2Dunix%21), query {}",
                url.split_once('?').unwrap().1
            ));
            assert!(!scrubbed.contains("pw"), "{scrubbed}");
            if url.contains("user=") {
                assert!(!endpoint.scrub("as admin").contains("admin"));
            }
        }
    }

    #[test]
    fn only_plain_redis_to_a_remote_host_is_plaintext_remote() {
        let refused = |url: &str| Endpoint::parse(url).unwrap().plaintext_remote;
        for remote in [
            "redis://cache.internal:6379/",
            "redis://:pw@10.0.0.5/",
            "redis://[2001:db8::1]:6379/",
            "redis://localhost.example.com/",
            "redis://128.0.0.1/",
        ] {
            assert!(refused(remote), "{remote}");
        }
        for fine in [
            "redis://127.0.0.1:6379/",
            "redis://127.8.9.10/",
            "redis://localhost/",
            "redis://LOCALHOST./",
            "redis://[::1]:7000/",
            "rediss://cache.internal:6380/",
            "unix:///run/redis.sock",
            "redis+unix:///run/redis.sock",
        ] {
            assert!(!refused(fine), "{fine}");
        }
        let error = Endpoint::parse("redis://:pw-9@cache.internal/")
            .unwrap()
            .refuse_plaintext_remote("new_allowing_plaintext")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rediss://") && error.contains("new_allowing_plaintext"),
            "{error}"
        );
        assert!(!error.contains("pw-9"), "{error}");
        let mixed = Endpoint::parse_cluster(&["redis://127.0.0.1:7000/", "redis://node-b:7001/"]);
        assert!(mixed.unwrap().plaintext_remote);
    }

    #[test]
    fn invalid_urls_are_refused_without_echo() {
        for url in [
            "http://:pw-123@host/",
            "not a url pw-123",
            "redis://:pw-123@/",
        ] {
            let error = Endpoint::parse(url).unwrap_err().to_string();
            assert!(!error.contains("pw-123"), "{error}");
        }
    }
}

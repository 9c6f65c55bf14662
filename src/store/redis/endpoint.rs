//! Where the Redis server is, described without its credentials: a Redis URL may carry a
//! password (`redis://:password@host/`), and neither it nor the URL may reach a message.

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
}

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
        Ok(Self {
            scheme: parsed.scheme().to_string(),
            address,
            secrets,
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
        }
        if cluster.scheme != "redis" && cluster.scheme != "rediss" {
            return Err(refused(
                "cluster nodes are reached by redis:// or rediss://",
            ));
        }
        Ok(cluster)
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

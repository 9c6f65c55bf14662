//! Naming a token store by URL: `file:/path` or a plain path, `redis://`/`rediss://` (one
//! server), `redis+sentinel://` (a Sentinel-managed primary) and `redis+cluster://` (a Cluster),
//! each with `rediss+…` for TLS. Opening one is a single match, so a new kind of store is one arm.

use std::path::PathBuf;
#[cfg(feature = "redis")]
use std::time::Duration;

use genlogs_auth::store::BoxedStore;
use genlogs_auth::FileStore;

/// A parsed store URL. `Debug` shows it as [`display`](Self::display) does, without credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A token file.
    File(PathBuf),
    /// A Redis server (`rediss://` is TLS). Kept whole: the store parses it.
    Redis(String),
    /// The primary that Redis Sentinels name for a service:
    /// `redis+sentinel://[[user]:password@]host:port[,host:port…]/SERVICE[/DB]`.
    Sentinel(Nodes),
    /// A Redis Cluster, found from one or more of its nodes:
    /// `redis+cluster://[[user]:password@]host:port[,host:port…]`.
    Cluster(Nodes),
}

/// Several Redis nodes named in one URL, with the credentials, scheme and database they share.
#[derive(Clone, PartialEq, Eq)]
pub struct Nodes {
    /// `redis` or `rediss`.
    scheme: &'static str,
    /// `user:password` or `:password`, when given (never shown).
    credentials: Option<String>,
    /// `host:port` of each node.
    hosts: Vec<String>,
    /// The Sentinel service; empty for a cluster.
    service: String,
    /// The database (Sentinel only; a cluster has only 0).
    database: u32,
}

impl Nodes {
    /// Parses what follows `redis+sentinel://` (`sentinel`) or `redis+cluster://`. Errors never
    /// repeat the text: it may carry a password.
    fn parse(scheme: &'static str, rest: &str, sentinel: bool) -> Result<Self, String> {
        let form = if sentinel {
            "redis+sentinel://[[user]:password@]host:port[,host:port…]/SERVICE[/DB]"
        } else {
            "redis+cluster://[[user]:password@]host:port[,host:port…]"
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials.to_string()), hosts),
            None => (None, authority),
        };
        let hosts: Vec<String> = hosts.split(',').map(str::to_string).collect();
        let has_port = |host: &str| {
            host.rsplit_once(':').is_some_and(|(name, port)| {
                !name.is_empty() && !port.is_empty() && port.parse::<u16>().is_ok()
            })
        };
        if !hosts.iter().all(|host| has_port(host)) {
            return Err(format!("every node needs a host and a port: {form}"));
        }
        let mut parts = path.split('/').filter(|part| !part.is_empty());
        let (service, database) = if sentinel {
            let service = parts
                .next()
                .ok_or_else(|| format!("the Sentinel service name is missing: {form}"))?;
            let database = match parts.next() {
                Some(db) => db
                    .parse()
                    .map_err(|_| format!("the database is not a number: {form}"))?,
                None => 0,
            };
            (service.to_string(), database)
        } else {
            (String::new(), 0)
        };
        if parts.next().is_some() {
            return Err(format!("unexpected path: {form}"));
        }
        Ok(Self {
            scheme,
            credentials,
            hosts,
            service,
            database,
        })
    }

    /// One `redis://` URL per node, with the shared credentials and database.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn urls(&self) -> Vec<String> {
        let credentials = self
            .credentials
            .as_ref()
            .map(|credentials| format!("{credentials}@"))
            .unwrap_or_default();
        self.hosts
            .iter()
            .map(|host| format!("{}://{credentials}{host}/{}", self.scheme, self.database))
            .collect()
    }

    /// The URL without its credentials.
    fn display(&self, kind: &str) -> String {
        let service = if self.service.is_empty() {
            String::new()
        } else {
            format!("/{}", self.service)
        };
        format!("{}+{kind}://{}{service}", self.scheme, self.hosts.join(","))
    }

    /// Whether the credentials carry a password (`:password` or `user:password`).
    fn has_password(&self) -> bool {
        self.credentials.as_ref().is_some_and(|credentials| {
            credentials
                .split_once(':')
                .is_some_and(|(_, p)| !p.is_empty())
        })
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoreUrl").field(&self.display()).finish()
    }
}

impl StoreUrl {
    /// Parses `text`. The error never repeats the URL: it may carry a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("file://") {
            return Ok(StoreUrl::File(PathBuf::from(rest)));
        }
        if let Some(rest) = text.strip_prefix("file:") {
            return Ok(StoreUrl::File(PathBuf::from(rest)));
        }
        if text.starts_with("redis://") || text.starts_with("rediss://") {
            return Ok(StoreUrl::Redis(text.to_string()));
        }
        for (prefix, scheme, sentinel) in [
            ("redis+sentinel://", "redis", true),
            ("rediss+sentinel://", "rediss", true),
            ("redis+cluster://", "redis", false),
            ("rediss+cluster://", "rediss", false),
        ] {
            if let Some(rest) = text.strip_prefix(prefix) {
                let nodes = Nodes::parse(scheme, rest, sentinel)?;
                return Ok(if sentinel {
                    StoreUrl::Sentinel(nodes)
                } else {
                    StoreUrl::Cluster(nodes)
                });
            }
        }
        if let Some((scheme, _)) = text.split_once("://") {
            let scheme = scheme.chars().take(16).collect::<String>();
            return Err(format!(
                "unknown store scheme `{scheme}`: use file:/path, a path, redis://…, \
                 redis+sentinel://… or redis+cluster://…"
            ));
        }
        if text.is_empty() {
            return Err("the store URL is empty".into());
        }
        Ok(StoreUrl::File(PathBuf::from(text)))
    }

    /// How to show the store to people: a Redis URL without its credentials.
    pub fn display(&self) -> String {
        match self {
            StoreUrl::File(path) => format!("file:{}", path.display()),
            StoreUrl::Redis(url) => match url::Url::parse(url) {
                Ok(url) => format!(
                    "{}://{}{}",
                    url.scheme(),
                    url.host_str().unwrap_or_default(),
                    url.port().map(|p| format!(":{p}")).unwrap_or_default()
                ),
                Err(_) => "redis (unparsable URL)".into(),
            },
            StoreUrl::Sentinel(nodes) => nodes.display("sentinel"),
            StoreUrl::Cluster(nodes) => nodes.display("cluster"),
        }
    }

    /// Whether the URL carries a password (`redis://:PASSWORD@…`). A Redis URL that does not
    /// parse but has a user-info part counts: better refused than shown.
    pub fn has_password(&self) -> bool {
        match self {
            StoreUrl::File(_) => false,
            StoreUrl::Redis(text) => match url::Url::parse(text) {
                Ok(url) => url.password().is_some(),
                Err(_) => text.contains('@'),
            },
            StoreUrl::Sentinel(nodes) | StoreUrl::Cluster(nodes) => nodes.has_password(),
        }
    }

    /// Opens the store.
    pub fn open(&self) -> Result<BoxedStore, String> {
        match self {
            StoreUrl::File(path) => Ok(BoxedStore::new(FileStore::new(path))),
            StoreUrl::Redis(_) | StoreUrl::Sentinel(_) | StoreUrl::Cluster(_) => open_redis(self),
        }
    }
}

/// Set to `1` to allow plain `redis://` to a host that is not loopback (the library refuses it:
/// the password and the tokens would cross the network unencrypted).
#[cfg(feature = "redis")]
const ALLOW_PLAINTEXT_VAR: &str = "GENLOGS_STORE_ALLOW_PLAINTEXT";

/// How many replicas must have a save before it counts (`RedisStore::with_min_replicas`).
#[cfg(feature = "redis")]
const MIN_REPLICAS_VAR: &str = "GENLOGS_STORE_MIN_REPLICAS";

/// How long a save waits for them, in milliseconds (default 1000, at most 60000).
#[cfg(feature = "redis")]
const REPLICA_WAIT_VAR: &str = "GENLOGS_STORE_REPLICA_WAIT_MS";

/// A Redis store for the grant named by `GENLOGS_STORE_NAME` (default `default`), encrypted with
/// the 64-hex-digit key in `GENLOGS_STORE_KEY` when it is set, durable on
/// `GENLOGS_STORE_MIN_REPLICAS` replicas when it is set; plain `redis://` to a remote host only
/// with `GENLOGS_STORE_ALLOW_PLAINTEXT=1`: all from the environment, like every secret of this
/// command. Nothing is connected until the first command.
#[cfg(feature = "redis")]
fn open_redis(url: &StoreUrl) -> Result<BoxedStore, String> {
    let name = std::env::var("GENLOGS_STORE_NAME").unwrap_or_else(|_| "default".into());
    let allow_plaintext = std::env::var_os(ALLOW_PLAINTEXT_VAR).is_some_and(|value| value == "1");
    let mut store = redis_store(url, &name, allow_plaintext)?;
    if let Ok(hex) = std::env::var("GENLOGS_STORE_KEY") {
        let key = genlogs_auth::store::redis::EncryptionKey::from_hex(hex.trim())
            .map_err(|e| format!("GENLOGS_STORE_KEY: {e}"))?;
        store = store.with_encryption_key(key);
    }
    if let Some((replicas, wait)) = durability(
        std::env::var(MIN_REPLICAS_VAR).ok().as_deref(),
        std::env::var(REPLICA_WAIT_VAR).ok().as_deref(),
    )? {
        store = store.with_min_replicas(replicas, wait);
    }
    Ok(BoxedStore::new(store))
}

/// The durability setting from the two variables' values: `None` when the first is unset.
#[cfg(feature = "redis")]
fn durability(
    replicas: Option<&str>,
    wait_ms: Option<&str>,
) -> Result<Option<(usize, Duration)>, String> {
    let Some(replicas) = replicas else {
        return Ok(None);
    };
    let replicas = replicas
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("{MIN_REPLICAS_VAR} is not a number of replicas"))?;
    let wait_ms = match wait_ms {
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| (1..=60_000).contains(ms))
            .ok_or_else(|| format!("{REPLICA_WAIT_VAR} is not between 1 and 60000 (ms)"))?,
        None => 1_000,
    };
    Ok(Some((replicas, Duration::from_millis(wait_ms))))
}

/// The store for `url`; a refusal of plain `redis://` to a remote host says how to opt in here.
#[cfg(feature = "redis")]
fn redis_store(
    url: &StoreUrl,
    name: &str,
    allow_plaintext: bool,
) -> Result<genlogs_auth::RedisStore, String> {
    use genlogs_auth::RedisStore;
    let open = |allow_plaintext: bool| match url {
        StoreUrl::Redis(url) if allow_plaintext => RedisStore::new_allowing_plaintext(url, name),
        StoreUrl::Redis(url) => RedisStore::new(url, name),
        StoreUrl::Sentinel(nodes) => {
            let urls = nodes.urls();
            let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
            if allow_plaintext {
                RedisStore::sentinel_allowing_plaintext(&urls, &nodes.service, name)
            } else {
                RedisStore::sentinel(&urls, &nodes.service, name)
            }
        }
        StoreUrl::Cluster(nodes) => {
            let urls = nodes.urls();
            let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
            if allow_plaintext {
                RedisStore::cluster_allowing_plaintext(&urls, name)
            } else {
                RedisStore::cluster(&urls, name)
            }
        }
        StoreUrl::File(_) => Err(genlogs_auth::StoreError::Other(
            "a file is not a Redis store".into(),
        )),
    };
    if allow_plaintext {
        return open(true).map_err(|e| e.to_string());
    }
    open(false).map_err(|refused| {
        if open(true).is_ok() {
            format!("{refused} (here: {ALLOW_PLAINTEXT_VAR}=1)")
        } else {
            refused.to_string()
        }
    })
}

#[cfg(not(feature = "redis"))]
fn open_redis(_url: &StoreUrl) -> Result<BoxedStore, String> {
    Err("this build has no Redis store (cargo feature `redis`); use a file store".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_file_urls_and_redis_urls_parse() {
        assert_eq!(
            StoreUrl::parse("/var/lib/t.json"),
            Ok(StoreUrl::File("/var/lib/t.json".into()))
        );
        assert_eq!(
            StoreUrl::parse("file:/var/lib/t.json"),
            Ok(StoreUrl::File("/var/lib/t.json".into()))
        );
        assert_eq!(
            StoreUrl::parse("file:///var/lib/t.json"),
            Ok(StoreUrl::File("/var/lib/t.json".into()))
        );
        assert!(matches!(
            StoreUrl::parse("rediss://:pw@cache:6380/0"),
            Ok(StoreUrl::Redis(_))
        ));
        let unknown = StoreUrl::parse("s3://user:pw@bucket/key").unwrap_err();
        assert!(
            unknown.contains("`s3`") && !unknown.contains("pw"),
            "{unknown}"
        );
    }

    #[test]
    fn only_a_redis_url_with_a_password_has_one() {
        let has = |text: &str| StoreUrl::parse(text).unwrap().has_password();
        assert!(has("redis://:s3cret@cache:6379/0"));
        assert!(has("rediss://user:s3cret@cache:6380"));
        assert!(!has("redis://cache:6379/0"));
        assert!(!has("redis://user@cache:6379/0"));
        assert!(!has("/var/lib/user:pw@host/tokens.json"));
    }

    #[test]
    fn a_redis_url_shows_without_its_password() {
        let url = StoreUrl::parse("redis://user:s3cret@cache:6379/0").unwrap();
        assert_eq!(url.display(), "redis://cache:6379");
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn without_the_redis_feature_a_redis_url_says_so() {
        let url = StoreUrl::parse("redis://user:s3cret@cache:6379/0").unwrap();
        let error = url.open().unwrap_err();
        assert!(error.contains("feature `redis`") && !error.contains("s3cret"));
    }

    #[cfg(feature = "redis")]
    #[test]
    fn with_the_redis_feature_a_redis_url_opens_a_redis_store_without_connecting() {
        let url = StoreUrl::parse("redis://user:s3cret@127.0.0.1:1/0").unwrap();
        let store = url.open().unwrap();
        assert!(!format!("{store:?}").contains("s3cret"), "{store:?}");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn plain_redis_to_a_remote_host_needs_the_opt_in_and_says_which() {
        let url = StoreUrl::parse("redis://:s3cret@cache.internal:6379/0").unwrap();
        let refused = redis_store(&url, "grant", false).unwrap_err();
        assert!(
            refused.contains("GENLOGS_STORE_ALLOW_PLAINTEXT=1"),
            "{refused}"
        );
        assert!(!refused.contains("s3cret"), "{refused}");
        assert!(redis_store(&url, "grant", true).is_ok());
        // Other refusals get no such hint.
        let bad_name = redis_store(&url, "a b", false).unwrap_err();
        assert!(!bad_name.contains("ALLOW_PLAINTEXT"), "{bad_name}");
        let tls = StoreUrl::parse("rediss://cache.internal:6380/0").unwrap();
        assert!(redis_store(&tls, "grant", false).is_ok());
        // The same for sentinels and cluster nodes.
        for text in [
            "redis+sentinel://:s3cret@sentinel-a:26379,sentinel-b:26379/svc",
            "redis+cluster://:s3cret@node-a:6379,node-b:6379",
        ] {
            let url = StoreUrl::parse(text).unwrap();
            let refused = redis_store(&url, "grant", false).unwrap_err();
            assert!(refused.contains("ALLOW_PLAINTEXT=1") && !refused.contains("s3cret"));
            assert!(redis_store(&url, "grant", true).is_ok());
        }
    }

    #[test]
    fn sentinel_and_cluster_urls_name_every_node_and_show_none_of_the_credentials() {
        let sentinel =
            StoreUrl::parse("rediss+sentinel://user:s3cret@10.0.0.1:26379,[::1]:26380/svc/2")
                .unwrap();
        let StoreUrl::Sentinel(nodes) = &sentinel else {
            panic!("{sentinel:?}")
        };
        assert_eq!(
            nodes.urls(),
            [
                "rediss://user:s3cret@10.0.0.1:26379/2",
                "rediss://user:s3cret@[::1]:26380/2"
            ]
        );
        assert_eq!(nodes.service, "svc");
        assert_eq!(
            sentinel.display(),
            "rediss+sentinel://10.0.0.1:26379,[::1]:26380/svc"
        );
        assert!(sentinel.has_password());
        let shown = format!(
            "{sentinel:?} {:?}",
            StoreUrl::parse("redis://:s3cret@c:1").unwrap()
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("user"),
            "{shown}"
        );

        let cluster = StoreUrl::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap();
        let StoreUrl::Cluster(nodes) = &cluster else {
            panic!("{cluster:?}")
        };
        assert_eq!(
            nodes.urls(),
            ["redis://127.0.0.1:7000/0", "redis://127.0.0.1:7001/0"]
        );
        assert_eq!(
            cluster.display(),
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
        );
        assert!(!cluster.has_password());
        let user_only = StoreUrl::parse("redis+cluster://user@127.0.0.1:7000").unwrap();
        assert!(!user_only.has_password());
    }

    #[test]
    fn a_malformed_sentinel_or_cluster_url_says_what_is_wrong_without_repeating_it() {
        for (text, says) in [
            (
                "redis+sentinel://:s3cret@sentinel-a:26379",
                "service name is missing",
            ),
            ("redis+sentinel://:s3cret@sentinel-a/svc", "host and a port"),
            ("redis+sentinel://:s3cret@a:1,,b:2/svc", "host and a port"),
            (
                "redis+sentinel://:s3cret@a:1/svc/zero",
                "database is not a number",
            ),
            ("redis+cluster://:s3cret@a:1/svc", "unexpected path"),
            ("redis+cluster://:s3cret@a:99999", "host and a port"),
        ] {
            let error = StoreUrl::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn durability_comes_from_the_replica_count_and_an_optional_wait() {
        assert_eq!(durability(None, Some("500")), Ok(None));
        assert_eq!(
            durability(Some("1"), None),
            Ok(Some((1, Duration::from_secs(1))))
        );
        assert_eq!(
            durability(Some(" 2 "), Some("250")),
            Ok(Some((2, Duration::from_millis(250))))
        );
        assert!(durability(Some("one"), None)
            .unwrap_err()
            .contains("GENLOGS_STORE_MIN_REPLICAS"));
        assert!(durability(Some("1"), Some("600000"))
            .unwrap_err()
            .contains("GENLOGS_STORE_REPLICA_WAIT_MS"));
    }
}

//! Naming a token store by URL: `file:/path` or a plain path, `redis://`/`rediss://`.
//! Opening one is a single match, so a new kind of store is one arm.

use std::path::PathBuf;

use genlogs_auth::store::BoxedStore;
use genlogs_auth::FileStore;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A token file.
    File(PathBuf),
    /// A Redis server (`rediss://` is TLS). Kept whole: the store parses it.
    Redis(String),
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
        if let Some((scheme, _)) = text.split_once("://") {
            let scheme = scheme.chars().take(16).collect::<String>();
            return Err(format!(
                "unknown store scheme `{scheme}`: use file:/path, a path, or redis://…"
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
        }
    }

    /// Opens the store.
    pub fn open(&self) -> Result<BoxedStore, String> {
        match self {
            StoreUrl::File(path) => Ok(BoxedStore::new(FileStore::new(path))),
            StoreUrl::Redis(url) => open_redis(url),
        }
    }
}

/// Set to `1` to allow plain `redis://` to a host that is not loopback (the library refuses it:
/// the password and the tokens would cross the network unencrypted).
#[cfg(feature = "redis")]
const ALLOW_PLAINTEXT_VAR: &str = "GENLOGS_STORE_ALLOW_PLAINTEXT";

/// A Redis store for the grant named by `GENLOGS_STORE_NAME` (default `default`), encrypted with
/// the 64-hex-digit key in `GENLOGS_STORE_KEY` when it is set; plain `redis://` to a remote host
/// only with `GENLOGS_STORE_ALLOW_PLAINTEXT=1`: all from the environment, like every secret of
/// this command. Nothing is connected until the first command.
#[cfg(feature = "redis")]
fn open_redis(url: &str) -> Result<BoxedStore, String> {
    let name = std::env::var("GENLOGS_STORE_NAME").unwrap_or_else(|_| "default".into());
    let allow_plaintext = std::env::var_os(ALLOW_PLAINTEXT_VAR).is_some_and(|value| value == "1");
    let mut store = redis_store(url, &name, allow_plaintext)?;
    if let Ok(hex) = std::env::var("GENLOGS_STORE_KEY") {
        let key = genlogs_auth::store::redis::EncryptionKey::from_hex(hex.trim())
            .map_err(|e| format!("GENLOGS_STORE_KEY: {e}"))?;
        store = store.with_encryption_key(key);
    }
    Ok(BoxedStore::new(store))
}

/// The store for `url`; a refusal of plain `redis://` to a remote host says how to opt in here.
#[cfg(feature = "redis")]
fn redis_store(
    url: &str,
    name: &str,
    allow_plaintext: bool,
) -> Result<genlogs_auth::RedisStore, String> {
    use genlogs_auth::RedisStore;
    if allow_plaintext {
        return RedisStore::new_allowing_plaintext(url, name).map_err(|e| e.to_string());
    }
    RedisStore::new(url, name).map_err(|refused| {
        if RedisStore::new_allowing_plaintext(url, name).is_ok() {
            format!("{refused} (here: {ALLOW_PLAINTEXT_VAR}=1)")
        } else {
            refused.to_string()
        }
    })
}

#[cfg(not(feature = "redis"))]
fn open_redis(_url: &str) -> Result<BoxedStore, String> {
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
        let url = "redis://:s3cret@cache.internal:6379/0";
        let refused = redis_store(url, "grant", false).unwrap_err();
        assert!(
            refused.contains("GENLOGS_STORE_ALLOW_PLAINTEXT=1"),
            "{refused}"
        );
        assert!(!refused.contains("s3cret"), "{refused}");
        assert!(redis_store(url, "grant", true).is_ok());
        // Other refusals get no such hint.
        let bad_name = redis_store(url, "a b", false).unwrap_err();
        assert!(!bad_name.contains("ALLOW_PLAINTEXT"), "{bad_name}");
        assert!(redis_store("rediss://cache.internal:6380/0", "grant", false).is_ok());
    }
}

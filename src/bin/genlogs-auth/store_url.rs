//! Naming a token store by URL: `file:/path` or a plain path, `redis://`/`rediss://`.
//! Opening one is a single match, so a new kind of store is one arm.

use std::path::PathBuf;
use std::sync::Arc;

use genlogs_auth::{FileStore, TokenStore};

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

    /// Opens the store.
    pub fn open(&self) -> Result<Arc<dyn TokenStore>, String> {
        match self {
            StoreUrl::File(path) => Ok(Arc::new(FileStore::new(path))),
            StoreUrl::Redis(_) => Err(
                "this build has no Redis store (cargo feature `redis`); use a file store".into(),
            ),
        }
    }
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
    fn a_redis_url_shows_without_its_password_and_is_not_built_in_yet() {
        let url = StoreUrl::parse("redis://user:s3cret@cache:6379/0").unwrap();
        assert_eq!(url.display(), "redis://cache:6379");
        let error = url.open().unwrap_err();
        assert!(error.contains("feature `redis`") && !error.contains("s3cret"));
    }
}

//! Secret strings: the api key and the tokens. Redacted `Debug`, no `Display`; reading the value
//! takes an explicit `expose_secret()` call, and the memory is zeroed on drop.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A credential string as the generated types hold it (`format: password` in the corrected spec).
///
/// Serializing it writes the real value: that is how token stores persist it. Nothing else does.
#[derive(Clone)]
pub struct SecretToken(SecretString);

impl SecretToken {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The credential itself. Every call site is a place where a secret leaves its box.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([REDACTED])")
    }
}

impl Serialize for SecretToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

impl<'de> Deserialize<'de> for SecretToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// Defines a named credential type around [`SecretToken`], so that an access token cannot be passed
/// where a refresh token is expected.
macro_rules! credential {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(SecretToken);

        impl $name {
            /// Wraps the credential.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretToken::new(value))
            }

            /// The credential itself: the only way to read it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl From<SecretToken> for $name {
            fn from(token: SecretToken) -> Self {
                Self(token)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }
    };
}

credential! {
    /// The `x-api-key` that GenLogs issued to the caller.
    ApiKey
}

impl ApiKey {
    /// Reads the api key from the file at `path`, white space around it trimmed. A file that
    /// group or others can read is refused, as [`FileStore`](crate::FileStore) refuses such a
    /// token file: the error says to `chmod 600` it. Errors name the file, never its content.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> std::io::Result<ApiKey> {
        use std::io::{Error, ErrorKind};
        let path = path.as_ref();
        let unreadable = |e: Error| {
            Error::new(
                e.kind(),
                format!("cannot read the api key file {}: {e}", path.display()),
            )
        };
        let file = std::fs::File::open(path).map_err(unreadable)?;
        if let Some(mode) = crate::store::readable_by_others(&file).map_err(unreadable)? {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "api key file {}: mode {mode:o} lets group or others read it; refusing to use \
                     it (chmod 600 it, and consider the key exposed)",
                    path.display()
                ),
            ));
        }
        let text = std::io::read_to_string(file).map_err(unreadable)?;
        let key = text.trim();
        if key.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!("the api key file {} is empty", path.display()),
            ));
        }
        Ok(ApiKey::new(key))
    }
}

credential! {
    /// An access token: sent as `Access-Token` to every other GenLogs endpoint.
    AccessToken
}

credential! {
    /// A refresh token: single use, exchanged by `refresh` for a new pair.
    RefreshToken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let rendered = format!(
            "{:?} {:?} {:?} {:?} {:#?}",
            SecretToken::new("s3cr3t-a"),
            ApiKey::new("s3cr3t-b"),
            AccessToken::new("s3cr3t-c"),
            RefreshToken::new("s3cr3t-d"),
            RefreshToken::new("s3cr3t-e"),
        );
        assert!(!rendered.contains("s3cr3t"), "{rendered}");
        assert!(rendered.contains("RefreshToken([REDACTED])"), "{rendered}");
    }

    #[cfg(unix)]
    #[test]
    fn an_api_key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  key-s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let refused = ApiKey::from_file(&path).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        let message = refused.to_string();
        assert!(
            message.contains("mode 640") && message.contains("chmod 600"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            ApiKey::from_file(&path).unwrap().expose_secret(),
            "key-s3cret"
        );
        std::fs::write(&path, " \n").unwrap();
        assert!(ApiKey::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn serde_round_trips_the_value() {
        let json = serde_json::to_string(&RefreshToken::new("rt-1")).unwrap();
        assert_eq!(json, "\"rt-1\"");
        let back: RefreshToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose_secret(), "rt-1");
    }
}

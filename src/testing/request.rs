//! A request as the stand-in received it, for assertions; its `Debug` hides credentials.

use std::fmt;

/// Header names whose values are credentials.
const SECRET_HEADERS: [&str; 3] = ["x-api-key", "access-token", "authorization"];
/// Query parameters whose values are credentials.
const SECRET_QUERY: [&str; 1] = ["refresh_token"];

/// One request received by [`MockGenLogs`](super::MockGenLogs), faulted ones included.
///
/// The accessors return the real values (a test compares them); `Debug` shows
/// `[REDACTED]` for the api key, the access token and the refresh token.
#[derive(Clone)]
pub struct RecordedRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RecordedRequest {
    /// The method, e.g. `POST`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, without the query (e.g. `/auth/token/refresh`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string, if any.
    pub fn raw_query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The decoded value of one query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_deref()?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// Every value of one header, in order (names are case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The only value of one header: `None` when absent or repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        match self.header_values(name).as_slice() {
            [value] => Some(value),
            _ => None,
        }
    }

    /// Every header line, names lower-cased, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body, as received.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether this is a `POST` to the refresh endpoint.
    pub fn is_refresh(&self) -> bool {
        self.method == "POST" && self.path == super::answer::REFRESH_PATH
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let secret = SECRET_HEADERS.contains(&name.as_str());
                (name.as_str(), if secret { "[REDACTED]" } else { value })
            })
            .collect();
        let query: Vec<(String, String)> = self
            .query
            .as_deref()
            .map(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .map(|(key, value)| {
                        let secret = SECRET_QUERY.contains(&key.as_ref());
                        let shown = if secret {
                            "[REDACTED]".to_string()
                        } else {
                            value.into_owned()
                        };
                        (key.into_owned(), shown)
                    })
                    .collect()
            })
            .unwrap_or_default();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &query)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_credentials_but_accessors_do_not() {
        let request = RecordedRequest {
            method: "POST".into(),
            path: "/auth/token/refresh".into(),
            query: Some("refresh_token=rt-s3cret&x=1".into()),
            headers: vec![
                ("x-api-key".into(), "key-s3cret".into()),
                ("access-token".into(), "at-s3cret".into()),
                ("accept".into(), "application/json".into()),
            ],
            body: Vec::new(),
        };
        let shown = format!("{request:?} {request:#?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("application/json"));
        assert_eq!(request.query("refresh_token").as_deref(), Some("rt-s3cret"));
        assert_eq!(request.header("X-Api-Key"), Some("key-s3cret"));
        assert!(request.is_refresh());
    }
}

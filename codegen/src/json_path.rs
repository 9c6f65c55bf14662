//! JSONPath-style locations (`$.paths['/token/refresh'].post.parameters[0]`) for error messages.

use std::fmt;

use serde_json::Value;

/// A location in a JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonPath(Vec<Segment>);

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

impl JsonPath {
    /// The document itself: `$`.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path, one object key deeper.
    pub fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_string()));
        next
    }

    /// This path, one array element deeper.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// This path followed by `other`.
    pub fn join(&self, other: &JsonPath) -> Self {
        let mut next = self.clone();
        next.0.extend(other.0.iter().cloned());
        next
    }

    /// The value at this path in `doc`, if there is one.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        doc.pointer(&self.pointer())
    }

    /// The value at this path in `doc`, mutably, if there is one.
    pub fn get_mut<'a>(&self, doc: &'a mut Value) -> Option<&'a mut Value> {
        doc.pointer_mut(&self.pointer())
    }

    /// The same location as a JSON pointer (RFC 6901), for `serde_json`'s `pointer`.
    fn pointer(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            out.push('/');
            match segment {
                Segment::Index(i) => out.push_str(&i.to_string()),
                Segment::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            }
        }
        out
    }

    /// Converts the path that `serde_path_to_error` reports.
    pub fn from_serde_path(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let mut out = Self::root();
        for segment in path.iter() {
            out = match segment {
                S::Seq { index } => out.index(*index),
                S::Map { key } => out.key(key),
                S::Enum { variant } => out.key(variant),
                S::Unknown => out.key("?"),
            };
        }
        out
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.0 {
            match segment {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) if is_identifier(k) => write!(f, ".{k}")?,
                Segment::Key(k) => write!(f, "['{}']", k.replace('\'', "\\'"))?,
            }
        }
        Ok(())
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_that_are_not_identifiers_in_brackets() {
        let path = JsonPath::root()
            .key("paths")
            .key("/token/refresh")
            .key("post")
            .key("parameters")
            .index(0);
        assert_eq!(
            path.to_string(),
            "$.paths['/token/refresh'].post.parameters[0]"
        );
    }

    #[test]
    fn a_path_finds_its_value_through_keys_with_slashes_and_tildes() {
        let mut doc = serde_json::json!({ "paths": { "/a~b": { "post": [1, 2] } } });
        let path = JsonPath::root()
            .key("paths")
            .key("/a~b")
            .key("post")
            .index(1);
        assert_eq!(path.get(&doc), Some(&serde_json::json!(2)));
        *path.get_mut(&mut doc).unwrap() = serde_json::json!(3);
        assert_eq!(doc["paths"]["/a~b"]["post"][1], 3);
        assert_eq!(JsonPath::root().key("nope").get(&doc), None);
    }

    #[test]
    fn root_is_a_dollar() {
        assert_eq!(JsonPath::root().to_string(), "$");
    }
}

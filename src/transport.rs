//! What the generated client does on the wire beyond the spec: the hooks that send the api key,
//! bound every request in time and every response body in size, and keep the wire request exactly
//! the documented one.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use http_body_util::BodyExt;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::ResponseBuilderExt;
use tracing::Instrument;

use crate::generated::Client;

/// The header that carries the api key.
pub(crate) const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Per-client settings the generated code carries to the hooks (its "inner" type).
#[derive(Clone, Debug)]
pub struct Transport {
    /// `x-api-key`, marked sensitive so that `Debug` prints `Sensitive`.
    api_key: HeaderValue,
    /// Total time for one request, body included.
    timeout: Duration,
    /// Largest response body read, counted while streaming.
    max_body_bytes: usize,
}

impl Transport {
    pub(crate) fn new(mut api_key: HeaderValue, timeout: Duration, max_body_bytes: usize) -> Self {
        api_key.set_sensitive(true);
        Self {
            api_key,
            timeout,
            max_body_bytes,
        }
    }

    /// The total time one request may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `x-api-key`'s value, marked sensitive: the one copy of the key the requests use.
    pub(crate) fn api_key(&self) -> &HeaderValue {
        &self.api_key
    }
}

/// Deepest JSON nesting read. GenLogs' bodies nest four levels at most; serde's recursion on a
/// deeper hostile body can overflow a 2 MiB thread stack in a debug build before serde_json's own
/// limit (128) stops it.
pub(crate) const MAX_JSON_DEPTH: usize = 32;

/// A response body the hooks refused to hand on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BodyRejected {
    /// Larger than the configured cap; the rest of it was not read.
    #[error("the response body exceeds the {limit}-byte limit")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// JSON nested deeper than [`MAX_JSON_DEPTH`].
    #[error("the response body nests deeper than {limit} levels")]
    TooDeep {
        /// The limit, in levels.
        limit: usize,
    },
}

impl BodyRejected {
    /// Finds a rejection anywhere in an error's chain (it arrives wrapped by reqwest).
    pub(crate) fn in_chain(error: &(dyn std::error::Error + 'static)) -> Option<BodyRejected> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<BodyRejected>() {
                return Some(*found);
            }
            current = error.source();
        }
        None
    }
}

impl ClientHooks<Transport> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let headers = request.headers_mut();
        // progenitor sends `api-version: <info.version>` on every call. GenLogs does not version
        // its API by header and documents no such header; `1.0.0` is the document's version, not
        // a protocol one. The request stays exactly the documented one.
        headers.remove("api-version");
        headers.insert(API_KEY_HEADER, self.inner().api_key.clone());
        // Set per request so that it also holds for a caller-supplied reqwest::Client.
        *request.timeout_mut() = Some(self.inner().timeout);
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        // The span names the operation only: the URL carries the refresh token. It is attached
        // to the future (not entered across an `.await`), so it is current exactly while this
        // request is being polled.
        let span = tracing::debug_span!("genlogs_request", operation = info.operation_id);
        let max_body_bytes = self.inner().max_body_bytes;
        async move {
            let started = Instant::now();
            let result = self.client().execute(request).await;
            match &result {
                Ok(response) => tracing::debug!(
                    status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "response headers received"
                ),
                Err(error) => tracing::debug!(
                    connect = error.is_connect(),
                    timeout = error.is_timeout(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "request failed"
                ),
            }
            let response = result.map_err(reqwest::Error::without_url)?;
            Ok(buffer_body(response, max_body_bytes).await)
        }
        .instrument(span)
        .await
    }
}

/// Reads the whole body now, counting bytes as they stream in and stopping at `limit`, and
/// rebuilds the response around the bytes read (or around a body that fails at once with what
/// went wrong: [`BodyRejected`] or the transport error).
///
/// Reading here rather than in the generated code bounds memory for every status, and leaves the
/// generated code and [`read_buffered`] nothing that can wait on the network. The rebuilt
/// response has no URL (reqwest shows a placeholder), so it cannot leak the query.
async fn buffer_body(response: reqwest::Response, limit: usize) -> reqwest::Response {
    // Taken apart without copying the headers; the URL (with the query) is dropped here.
    let (parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    let body = match read_capped(body, limit).await {
        Ok(bytes) => reqwest::Body::from(bytes),
        Err(error) => {
            reqwest::Body::wrap_stream(futures_util::stream::iter([Err::<Bytes, _>(error)]))
        }
    };
    let mut builder = http::Response::builder()
        .status(parts.status)
        .version(parts.version)
        .url(placeholder_url());
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers;
    }
    builder
        .body(body)
        .expect("status, version and headers come from a valid response")
        .into()
}

/// What the rebuilt response says its URL was: never the real one, which carries the query.
fn placeholder_url() -> url::Url {
    static URL: std::sync::LazyLock<url::Url> = std::sync::LazyLock::new(|| {
        url::Url::parse("http://url-withheld.genlogs-auth.invalid/").expect("a valid URL")
    });
    URL.clone()
}

async fn read_capped(
    mut body: reqwest::Body,
    limit: usize,
) -> Result<Bytes, Box<dyn std::error::Error + Send + Sync>> {
    let declared = http_body::Body::size_hint(&body);
    if declared.lower() > limit as u64 {
        return Err(BodyRejected::TooLarge { limit }.into());
    }
    let mut buffer = Vec::with_capacity(declared.exact().map_or(0, |length| length as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(reqwest::Error::without_url)?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        if buffer.len() + chunk.len() > limit {
            return Err(BodyRejected::TooLarge { limit }.into());
        }
        buffer.extend_from_slice(&chunk);
    }
    if nests_deeper_than(&buffer, MAX_JSON_DEPTH) {
        return Err(BodyRejected::TooDeep {
            limit: MAX_JSON_DEPTH,
        }
        .into());
    }
    Ok(buffer.into())
}

/// Whether JSON in `body` nests deeper than `limit`. A body with no more opening brackets than
/// that cannot, which a fast count settles for every real response (a token response has three).
fn nests_deeper_than(body: &[u8], limit: usize) -> bool {
    let openings = body.iter().filter(|&&b| b == b'[' || b == b'{').count();
    openings > limit && json_depth(body) > limit
}

/// The deepest nesting of `[` and `{` outside JSON strings (any bytes: a body need not be JSON).
fn json_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in body {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            (false, _, _) => {}
        }
    }
    deepest
}

/// A body that [`buffer_body`] already read: its bytes, or why it could not be read (`None`:
/// the body was not in memory, which the hooks never let happen). Never waits.
pub(crate) fn read_buffered<S>(mut stream: S) -> Result<Vec<u8>, Option<reqwest::Error>>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    let mut body = Vec::new();
    loop {
        match stream.next().now_or_never() {
            Some(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            Some(Some(Err(error))) => return Err(Some(error.without_url())),
            Some(None) => return Ok(body),
            None => return Err(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{json_depth, nests_deeper_than};

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(b"plain text"), 0);
        assert_eq!(json_depth(br#"{"a":{"b":[1,2]}}"#), 3);
        assert_eq!(json_depth(br#"{"a":"[[[[{{{\"[["}"#), 1);
        assert_eq!(json_depth(&[b'['; 100]), 100);
        assert_eq!(json_depth(b"]]]]{"), 1);
    }

    #[test]
    fn many_brackets_side_by_side_are_not_deep() {
        let flat = "[1],".repeat(100);
        assert!(!nests_deeper_than(flat.as_bytes(), 32));
        assert!(nests_deeper_than(&[b'{'; 33], 32));
        assert!(!nests_deeper_than(&[b'{'; 32], 32));
    }
}

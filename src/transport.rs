//! What the generated client does on the wire beyond the spec: the hooks that send the api key,
//! bound every request in time and every response body in size, and keep the wire request exactly
//! the documented one.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{HeaderName, HeaderValue};

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
}

/// A response body larger than the configured cap; the rest of it was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response body exceeds the {limit}-byte limit")]
pub struct BodyTooLarge {
    /// The cap, in bytes.
    pub limit: usize,
}

impl BodyTooLarge {
    /// Finds the cap being hit anywhere in an error's chain (it arrives wrapped by reqwest).
    pub(crate) fn in_chain(error: &(dyn std::error::Error + 'static)) -> Option<BodyTooLarge> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<BodyTooLarge>() {
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
        // The span names the operation only: the URL carries the refresh token.
        let span = tracing::debug_span!("genlogs_request", operation = info.operation_id);
        let _entered = span.enter();
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
        Ok(buffer_body(response, self.inner().max_body_bytes).await)
    }
}

/// Reads the whole body now, counting bytes as they stream in and stopping at `limit`, and
/// rebuilds the response around the bytes read (or around a body that fails at once with what
/// went wrong: [`BodyTooLarge`] or the transport error).
///
/// Reading here rather than in the generated code bounds memory for every status, and leaves the
/// generated code and [`read_buffered`] nothing that can wait on the network. The rebuilt
/// response has no URL (reqwest shows a placeholder), so it cannot leak the query.
async fn buffer_body(response: reqwest::Response, limit: usize) -> reqwest::Response {
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = match read_capped(response, limit).await {
        Ok(bytes) => reqwest::Body::from(bytes),
        Err(error) => {
            reqwest::Body::wrap_stream(futures_util::stream::iter([Err::<Bytes, _>(error)]))
        }
    };
    builder
        .body(body)
        .expect("status, version and headers come from a valid response")
        .into()
}

async fn read_capped(
    response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, Box<dyn std::error::Error + Send + Sync>> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyTooLarge { limit }.into());
    }
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(reqwest::Error::without_url)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyTooLarge { limit }.into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
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

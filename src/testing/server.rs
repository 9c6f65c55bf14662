//! The HTTP side of the stand-in, on hyper: accepts connections on loopback, records each
//! request, then answers like GenLogs or plays the scripted fault (a stall, a dropped
//! connection, a streamed or trickled body).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::answer::{self, Answer};
use super::fault::Fault;
use super::mock::Shared;
use super::request::RecordedRequest;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Streamed bodies go out in pieces of this size, from one static buffer: an oversized body is
/// never held in memory, which the crate's memory-bound tests rely on.
const PIECE: usize = 64 * 1024;
static SPACES: [u8; PIECE] = [b' '; PIECE];

/// The accept loop; aborting it drops every connection task with it.
pub(crate) struct ServerTask(JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The service's answer to "drop this connection": hyper closes a connection whose service
/// fails, without writing a response.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted connection drop")
    }
}

impl std::error::Error for DropConnection {}

/// Binds `127.0.0.1:port` and serves `shared` until the returned task is dropped.
pub(crate) async fn spawn(
    shared: Arc<Shared>,
    port: u16,
) -> std::io::Result<(SocketAddr, ServerTask)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, most likely: let connections close before retrying.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            // Head and body go out in separate writes: without this, Nagle's algorithm holds the
            // body back until the client's delayed ACK (40 ms on Linux).
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let shared = shared.clone();
                    async move { handle(&shared, request).await }
                });
                // A scripted answer carries exactly the headers scripted; GenLogs' own answers
                // add their `Date` (the manager reads server time from it).
                let _ = hyper::server::conn::http1::Builder::new()
                    .auto_date_header(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            // Reap finished connections so a long-lived stand-in does not accumulate them.
            while connections.try_join_next().is_some() {}
        }
    });
    Ok((addr, ServerTask(task)))
}

async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes().to_vec())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    shared.record(recorded.clone());
    if let Some(latency) = shared.latency() {
        tokio::time::sleep(latency).await;
    }
    let fault = shared.take_fault(&recorded);
    play(shared, &recorded, fault).await
}

/// Answers `recorded` with `fault`, or like GenLogs when there is none.
async fn play(
    shared: &Shared,
    recorded: &RecordedRequest,
    fault: Option<Fault>,
) -> Result<Response<Body>, DropConnection> {
    let format = shared.expires_format;
    Ok(match fault {
        None => full(answer::genlogs(shared, recorded, format)),
        Some(Fault::Expires(format)) => full(answer::genlogs(shared, recorded, format)),
        Some(Fault::Respond {
            status,
            headers,
            body,
        }) => full(Answer {
            status,
            headers,
            body: Bytes::from(body),
        }),
        Some(Fault::Stall) => std::future::pending().await,
        Some(Fault::Processed(inner)) => {
            let _lost = answer::genlogs(shared, recorded, format);
            return Box::pin(play(shared, recorded, Some(*inner))).await;
        }
        Some(Fault::Delayed(pause, inner)) => {
            tokio::time::sleep(pause).await;
            return Box::pin(play(shared, recorded, Some(*inner))).await;
        }
        Some(Fault::Drop { rotate }) => {
            if rotate {
                let _lost = answer::genlogs(shared, recorded, format);
            }
            return Err(DropConnection);
        }
        Some(Fault::Garbage) => full(Answer {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: Bytes::from_static(b"<html><body>Down for maintenance</body></html>"),
        }),
        Some(Fault::Oversized { bytes, chunked }) => {
            let pieces = stream::iter(pieces(bytes)).map(|piece| Ok(Frame::data(piece)));
            streamed(bytes, chunked, StreamBody::new(pieces).boxed_unsync())
        }
        Some(Fault::Trickle { interval, bytes }) => {
            let trickle = stream::unfold(bytes, move |left| async move {
                if left == 0 {
                    return None;
                }
                tokio::time::sleep(interval).await;
                Some((Ok(Frame::data(Bytes::from_static(b" "))), left - 1))
            });
            streamed(bytes, false, StreamBody::new(trickle).boxed_unsync())
        } // `Fault` is non-exhaustive for users only; every variant is handled above.
    })
}

/// `total` bytes of spaces, in static pieces.
fn pieces(total: usize) -> impl Iterator<Item = Bytes> + Send {
    let mut left = total;
    std::iter::from_fn(move || {
        let n = left.min(PIECE);
        left -= n;
        (n > 0).then(|| Bytes::from_static(&SPACES[..n]))
    })
}

fn full(answer: Answer) -> Response<Body> {
    let mut response = Response::new(Full::new(answer.body).boxed_unsync());
    *response.status_mut() =
        hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::IM_A_TEAPOT);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A `200` JSON response whose body is streamed: declared by `Content-Length`, or chunked.
fn streamed(total: usize, chunked: bool, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if !chunked {
        headers.insert(hyper::header::CONTENT_LENGTH, total.into());
    }
    response
}

//! What the stand-in can be scripted to do instead of answering like GenLogs: the failures a
//! client meets in practice, and every `expires` form the real service emits.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// One scripted misbehaviour, for [`MockGenLogs::fail_next`](super::MockGenLogs::fail_next) or
/// [`fail_always`](super::MockGenLogs::fail_always). A fault applies to whatever request comes
/// next, the refresh endpoint or the protected one.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer this status, headers and body (the request is not processed: no rotation).
    Respond {
        /// The status code (100–999).
        status: u16,
        /// Header lines, in order.
        headers: Vec<(String, String)>,
        /// The body, as sent.
        body: Vec<u8>,
    },
    /// Read the request and never answer; the connection stays open until the client gives up.
    Stall,
    /// Read the request, then close the connection without a response. With `rotate`, a refresh
    /// is processed first (the token rotates and its answer is lost, the case that loses the
    /// grant); without, nothing happened on the server.
    Drop {
        /// Whether the refresh took effect before the connection dropped.
        rotate: bool,
    },
    /// A `200` whose body is not JSON (a proxy's maintenance page).
    Garbage,
    /// A `200` with a body of `bytes` spaces, streamed in 64 KiB pieces (never held whole),
    /// declared by `Content-Length` or sent chunked.
    Oversized {
        /// The body's size.
        bytes: usize,
        /// Chunked instead of `Content-Length`.
        chunked: bool,
    },
    /// A `200` whose body of `bytes` spaces arrives one byte per `interval`.
    Trickle {
        /// The pause before each byte.
        interval: Duration,
        /// The body's size (declared by `Content-Length`).
        bytes: usize,
    },
    /// Answer like GenLogs (rotation included), with both `expires` in this form.
    Expires(ExpiresFormat),
    /// Process the request like GenLogs (a refresh rotates the token), then answer with the
    /// inner fault instead: a 500 or 504 that came after the work was done.
    Processed(Box<Fault>),
    /// Wait this long, then play the inner fault (a slow gateway, an answer near the timeout).
    Delayed(Duration, Box<Fault>),
}

impl Fault {
    /// A JSON response: `body` is a [`serde_json::Value`] or JSON text (sent as written, so it
    /// may be malformed on purpose).
    pub fn json(status: u16, body: impl ToString) -> Self {
        Fault::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: &str) -> Self {
        Fault::Respond {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// FastAPI's `401 {"detail": "Invalid refresh token"}`, as for a dead refresh token.
    pub fn unauthorized() -> Self {
        Self::json(
            401,
            serde_json::json!({ "detail": "Invalid refresh token" }),
        )
    }

    /// The gateway's `403 {"message":"Forbidden"}` (a missing or wrong api key).
    pub fn forbidden() -> Self {
        Self::json(403, serde_json::json!({ "message": "Forbidden" }))
    }

    /// The gateway's `429 {"message":"Too Many Requests"}` with `Retry-After: <seconds>`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::json(429, serde_json::json!({ "message": "Too Many Requests" }))
            .with_header("retry-after", &retry_after_secs.to_string())
    }

    /// FastAPI's unhandled exception: `500` with `text/plain` `Internal Server Error`.
    pub fn server_error() -> Self {
        Self::text(500, "Internal Server Error")
    }

    /// `503 Service Unavailable`, as a load balancer answers while the service restarts.
    pub fn unavailable() -> Self {
        Self::text(503, "Service Unavailable")
    }

    /// The gateway's `504 {"message":"Endpoint request timed out"}`.
    pub fn gateway_timeout() -> Self {
        Self::json(
            504,
            serde_json::json!({ "message": "Endpoint request timed out" }),
        )
    }

    /// FastAPI's 422 list for a missing `refresh_token` (pydantic v2's extra keys included).
    pub fn validation() -> Self {
        Self::json(422, super::answer::missing_refresh_token_body())
    }

    /// `fault`, played after a pause: see [`Fault::Delayed`].
    pub fn delayed(pause: Duration, fault: Fault) -> Self {
        Fault::Delayed(pause, Box::new(fault))
    }

    /// `fault`, played after GenLogs processed the request: see [`Fault::Processed`].
    pub fn after_processing(fault: Fault) -> Self {
        Fault::Processed(Box::new(fault))
    }

    /// Adds a header line to a [`Fault::Respond`] (does nothing to the other faults).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Fault::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

/// Bodies can echo credentials (that is what some tests check), so only their size is shown.
impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Respond {
                status,
                headers,
                body,
            } => f
                .debug_struct("Respond")
                .field("status", status)
                .field(
                    "headers",
                    &headers.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                )
                .field("body_bytes", &body.len())
                .finish(),
            Fault::Stall => f.write_str("Stall"),
            Fault::Drop { rotate } => f.debug_struct("Drop").field("rotate", rotate).finish(),
            Fault::Garbage => f.write_str("Garbage"),
            Fault::Oversized { bytes, chunked } => f
                .debug_struct("Oversized")
                .field("bytes", bytes)
                .field("chunked", chunked)
                .finish(),
            Fault::Trickle { interval, bytes } => f
                .debug_struct("Trickle")
                .field("interval", interval)
                .field("bytes", bytes)
                .finish(),
            Fault::Expires(format) => f.debug_tuple("Expires").field(format).finish(),
            Fault::Processed(inner) => f.debug_tuple("Processed").field(inner).finish(),
            Fault::Delayed(pause, inner) => {
                f.debug_tuple("Delayed").field(pause).field(inner).finish()
            }
        }
    }
}

/// The forms in which Python services (GenLogs among them) write a datetime, with 0 to 6
/// fractional digits: all must be accepted by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresFormat {
    /// Which separator and offset.
    pub style: ExpiresStyle,
    /// Fractional-second digits, 0 to 6 (more are cut to 6).
    pub fraction_digits: u8,
}

/// Separator and offset of an [`ExpiresFormat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiresStyle {
    /// `2026-11-26T06:08:25.069078Z`
    Zulu,
    /// `2026-11-26T06:08:25.069078+00:00`
    Offset,
    /// `2026-11-26T06:08:25.069078` (no offset: GenLogs means UTC). What GenLogs sends.
    Naive,
    /// `2026-11-26 06:08:25.069078+00:00` (Python's `str(datetime)` of an aware value)
    SpaceOffset,
    /// `2026-11-26 06:08:25.069078` (Python's `str(datetime)` of a naive value)
    SpaceNaive,
}

impl ExpiresStyle {
    /// Every style, for tests that try them all.
    pub const ALL: [ExpiresStyle; 5] = [
        ExpiresStyle::Zulu,
        ExpiresStyle::Offset,
        ExpiresStyle::Naive,
        ExpiresStyle::SpaceOffset,
        ExpiresStyle::SpaceNaive,
    ];
}

impl ExpiresFormat {
    /// What GenLogs sends: naive, six fractional digits.
    pub const GENLOGS: ExpiresFormat = ExpiresFormat {
        style: ExpiresStyle::Naive,
        fraction_digits: 6,
    };

    /// Every style with every digit count from 0 to 6.
    pub fn all() -> impl Iterator<Item = ExpiresFormat> {
        ExpiresStyle::ALL.into_iter().flat_map(|style| {
            (0..=6).map(move |fraction_digits| ExpiresFormat {
                style,
                fraction_digits,
            })
        })
    }

    /// `at` written in this form.
    pub fn format(&self, at: DateTime<Utc>) -> String {
        let separator = match self.style {
            ExpiresStyle::Zulu | ExpiresStyle::Offset | ExpiresStyle::Naive => 'T',
            ExpiresStyle::SpaceOffset | ExpiresStyle::SpaceNaive => ' ',
        };
        let offset = match self.style {
            ExpiresStyle::Zulu => "Z",
            ExpiresStyle::Offset | ExpiresStyle::SpaceOffset => "+00:00",
            ExpiresStyle::Naive | ExpiresStyle::SpaceNaive => "",
        };
        let digits = usize::from(self.fraction_digits.min(6));
        let fraction = if digits == 0 {
            String::new()
        } else {
            let micros = format!("{:06}", at.timestamp_subsec_micros());
            format!(".{}", &micros[..digits])
        };
        format!(
            "{}{separator}{}{fraction}{offset}",
            at.format("%Y-%m-%d"),
            at.format("%H:%M:%S")
        )
    }
}

impl Default for ExpiresFormat {
    fn default() -> Self {
        Self::GENLOGS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_one_the_facts_list() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T06:08:25.069078Z")
            .unwrap()
            .with_timezone(&Utc);
        let expected = [
            (ExpiresStyle::Zulu, "2026-11-26T06:08:25.069078Z"),
            (ExpiresStyle::Offset, "2026-11-26T06:08:25.069078+00:00"),
            (ExpiresStyle::Naive, "2026-11-26T06:08:25.069078"),
            (
                ExpiresStyle::SpaceOffset,
                "2026-11-26 06:08:25.069078+00:00",
            ),
            (ExpiresStyle::SpaceNaive, "2026-11-26 06:08:25.069078"),
        ];
        for (style, text) in expected {
            let format = ExpiresFormat {
                style,
                fraction_digits: 6,
            };
            assert_eq!(format.format(at), text);
        }
        let none = ExpiresFormat {
            style: ExpiresStyle::Zulu,
            fraction_digits: 0,
        };
        assert_eq!(none.format(at), "2026-11-26T06:08:25Z");
        assert_eq!(ExpiresFormat::all().count(), 35);
    }

    #[test]
    fn debug_shows_no_body() {
        let fault = Fault::text(401, "echoed rt-secret-value");
        assert!(!format!("{fault:?}").contains("rt-secret"));
    }
}

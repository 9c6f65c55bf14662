//! Turning what the server sent into the crate's errors: error bodies by status, undecodable
//! success bodies, and the scrubbing that keeps credentials out of every message.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, RecoveredRefreshToken, UnknownOutcome, ValidationProblem};
use crate::generated::types;
use crate::secret::RefreshToken;
use crate::transport::BodyRejected;
use crate::Expiry;

/// The longest message kept from a response, in characters.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Shortest run of token-like characters that is redacted even when it is no known credential: a
/// hostile or careless server may echo a token the client never saw.
const TOKEN_LIKE_MIN_CHARS: usize = 24;

const REDACTED: &str = "[REDACTED]";

/// Removes credentials from text taken from a response, and bounds its size.
pub(crate) struct Scrubber<'a> {
    secrets: Vec<&'a str>,
}

impl<'a> Scrubber<'a> {
    /// Scrubs every one of `secrets` (empty ones are ignored) and anything token-like.
    pub(crate) fn new(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
        }
    }

    /// The text with credentials redacted, control characters and runs of white space folded to
    /// one space, cut to [`MAX_MESSAGE_CHARS`]. `None` when nothing is left.
    pub(crate) fn scrub(&self, text: &str) -> Option<String> {
        let mut text = text.to_string();
        for secret in &self.secrets {
            text = text.replace(secret, REDACTED);
        }
        let folded = text
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty());
        let mut out = String::new();
        for word in folded {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&redact_token_like(word));
        }
        if out.is_empty() {
            return None;
        }
        if out.chars().count() > MAX_MESSAGE_CHARS {
            out = out.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
        }
        Some(out)
    }
}

/// Replaces each run of at least [`TOKEN_LIKE_MIN_CHARS`] base64/JWT characters that mixes
/// letters and digits.
fn redact_token_like(word: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-_.+/=".contains(c);
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find(is_token_char) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !is_token_char(c)).unwrap_or(run.len());
        let candidate = &run[..end];
        let mixed = candidate.chars().any(|c| c.is_ascii_alphabetic())
            && candidate.chars().any(|c| c.is_ascii_digit());
        if candidate.len() >= TOKEN_LIKE_MIN_CHARS && mixed {
            out.push_str(REDACTED);
        } else {
            out.push_str(candidate);
        }
        rest = &run[end..];
    }
    out.push_str(rest);
    out
}

/// An error status with its (capped) body → the error class for that status.
pub(crate) fn error_for_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: Result<Vec<u8>, Option<reqwest::Error>>,
    scrubber: &Scrubber<'_>,
) -> Error {
    let body = match body {
        Ok(body) => Body::Read(body),
        Err(error) => Body::Unreadable(error.as_ref().and_then(|e| BodyRejected::in_chain(e))),
    };
    let message = body.message(scrubber);
    match status.as_u16() {
        401 => Error::RefreshTokenRejected { message },
        403 => Error::Forbidden { message },
        422 => Error::Validation {
            problems: body.validation_problems(scrubber),
        },
        429 => Error::RateLimited {
            retry_after: retry_after(headers),
            message,
        },
        500..=599 => Error::Server { status, message },
        300..=399 => Error::UnexpectedStatus {
            status,
            message: Some("redirects are not followed".into()),
        },
        _ => Error::UnexpectedStatus { status, message },
    }
}

enum Body {
    Read(Vec<u8>),
    Unreadable(Option<BodyRejected>),
}

/// The shapes error bodies come in: FastAPI's `{"detail": "…"}` (or a 422 list), the gateway's
/// `{"message": "…"}`.
#[derive(Deserialize)]
struct ErrorBody {
    detail: Option<Value>,
    message: Option<Value>,
}

impl Body {
    fn message(&self, scrubber: &Scrubber<'_>) -> Option<String> {
        let bytes = match self {
            Body::Read(bytes) => bytes,
            Body::Unreadable(Some(too_large)) => {
                return Some(format!("(body not read: {too_large})"))
            }
            Body::Unreadable(None) => return Some("(body could not be read)".into()),
        };
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(ErrorBody {
                detail: Some(Value::String(text)),
                ..
            })
            | Ok(ErrorBody {
                message: Some(Value::String(text)),
                ..
            }) => scrubber.scrub(&text),
            Ok(_) => None,
            // A body that starts like JSON but does not parse may be a token response cut short:
            // say so rather than echo it (a cut token is too short to be recognised).
            Err(_) if looks_like_json(bytes) => Some("(a JSON body that does not parse)".into()),
            Err(_) => scrubber.scrub(&String::from_utf8_lossy(bytes)),
        }
    }

    fn validation_problems(&self, scrubber: &Scrubber<'_>) -> Vec<ValidationProblem> {
        let Body::Read(bytes) = self else {
            return Vec::new();
        };
        let Ok(parsed) = serde_json::from_slice::<types::HttpValidationError>(bytes) else {
            return vec![ValidationProblem {
                location: String::new(),
                message: self.message(scrubber).unwrap_or_default(),
                kind: "unreadable".into(),
            }];
        };
        parsed
            .detail
            .iter()
            .map(|problem| ValidationProblem {
                location: scrubber
                    .scrub(
                        &problem
                            .loc
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("."),
                    )
                    .unwrap_or_default(),
                message: scrubber.scrub(&problem.msg).unwrap_or_default(),
                kind: scrubber.scrub(&problem.type_).unwrap_or_default(),
            })
            .collect()
    }
}

fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.to_utc() - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// A success status whose body is not a token response: say where and what, never a value, and
/// recover the rotated refresh token if it is there.
pub(crate) fn undecodable_success(status: StatusCode, bytes: &[u8]) -> Error {
    Error::OutcomeUnknown {
        reason: UnknownOutcome::Undecodable {
            status,
            problem: describe_decode_failure(bytes),
        },
        recovered: recover_refresh_token(bytes),
        source: None,
    }
}

/// Decodes again with path tracking, to name the JSON path and the kind of problem.
pub(crate) fn describe_decode_failure(bytes: &[u8]) -> String {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<types::AuthenticationResponse, _> =
        serde_path_to_error::deserialize(&mut deserializer);
    let error = match result.map(|_| deserializer.end()) {
        Ok(Ok(())) => return "the body decodes, but not as the generated client expected".into(),
        Ok(Err(trailing)) => {
            return format!(
                "not valid JSON ({}; line {}, column {})",
                safe_serde_message(&trailing),
                trailing.line(),
                trailing.column()
            )
        }
        Err(error) => error,
    };
    let inner = error.inner();
    let position = format!("line {}, column {}", inner.line(), inner.column());
    match inner.classify() {
        serde_json::error::Category::Syntax => {
            format!("not valid JSON ({}; {position})", safe_serde_message(inner))
        }
        serde_json::error::Category::Eof => format!("truncated JSON ({position})"),
        serde_json::error::Category::Io => "the body could not be read".into(),
        serde_json::error::Category::Data => {
            let path = error.path().to_string();
            let at = if path == "." {
                "the body".to_string()
            } else {
                format!("`{path}`")
            };
            format!("{at}: {}", safe_serde_message(inner))
        }
    }
}

/// serde_json's message without anything taken from the input. Its data errors quote the value
/// they met (`invalid type: string "eyJ…", expected …`); keep the kind and what was expected.
pub(crate) fn safe_serde_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(message, _)| message);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let found = rest.split([' ', '`', '"', ',']).next().unwrap_or("value");
            let expected = rest.rsplit_once(", expected ").map_or("", |(_, e)| e);
            return format!("{prefix}{found}, expected {expected}");
        }
    }
    let safe_prefixes = [
        "missing field",
        "duplicate field",
        "invalid length",
        "not a recognised datetime",
        "expected",
        "EOF",
        "trailing",
        "key must be",
        "control character",
        "invalid escape",
        "invalid number",
        "number out of range",
        "invalid unicode",
        "lone leading surrogate",
        "unexpected end",
        "recursion limit exceeded",
    ];
    if safe_prefixes.iter().any(|p| text.starts_with(p)) {
        text.to_string()
    } else {
        "the value does not have the expected type".into()
    }
}

/// The rotated refresh token, if the body still holds a readable one.
pub(crate) fn recover_refresh_token(bytes: &[u8]) -> Option<RecoveredRefreshToken> {
    let body: Value = serde_json::from_slice(bytes).ok()?;
    let data = body.get("refresh_token_data")?;
    let token = data.get("token")?.as_str().filter(|t| !t.is_empty())?;
    Some(RecoveredRefreshToken {
        token: RefreshToken::new(token),
        expires: data
            .get("expires")
            .and_then(Value::as_str)
            .and_then(|text| Expiry::parse(text).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_redacts_known_secrets_and_token_like_runs() {
        let scrubber = Scrubber::new(["rt-short", ""]);
        let text = "bad token rt-short and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123 end";
        let scrubbed = scrubber.scrub(text).unwrap();
        assert_eq!(scrubbed, "bad token [REDACTED] and [REDACTED] end");
    }

    #[test]
    fn scrub_keeps_prose_and_folds_control_characters() {
        let scrubber = Scrubber::new([]);
        assert_eq!(
            scrubber.scrub("Internal\r\nServer\u{0}  Error").as_deref(),
            Some("Internal Server Error")
        );
        assert_eq!(scrubber.scrub(" \n\t"), None);
    }

    #[test]
    fn scrub_truncates_on_a_character_boundary() {
        let scrubbed = Scrubber::new([]).scrub(&"é ".repeat(400)).unwrap();
        assert_eq!(scrubbed.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(scrubbed.ends_with('…'));
    }

    #[test]
    fn safe_serde_message_drops_the_value_met() {
        let error = serde_json::from_str::<u32>("\"eyJsecretvalue\"").unwrap_err();
        let message = safe_serde_message(&error);
        assert_eq!(message, "invalid type: string, expected u32");
    }

    #[test]
    fn describe_decode_failure_names_the_path() {
        let body = br#"{"access_token_data":{"token":"a","expires":"soon"},"refresh_token_data":{"token":"r","expires":"2026-11-26T06:08:25Z"},"user_id":"u","company_id":1}"#;
        let problem = describe_decode_failure(body);
        assert!(
            problem.starts_with("`access_token_data.expires`: not a recognised datetime"),
            "{problem}"
        );
        assert!(!problem.contains("soon"), "{problem}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}

//! Turning what the server sent into the crate's errors: error bodies by status and undecodable
//! success bodies. Text kept from a response goes through the `Scrubber` first.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::client::Expiry;
use crate::error::{Error, RecoveredRefreshToken, UnknownOutcome, ValidationProblem};
use crate::generated::types;
use crate::redact::{safe_serde_message, Scrubber};
use crate::retry_after::retry_after;
use crate::secret::RefreshToken;
use crate::transport::BodyRejected;

/// An error status with its (capped) body → the error class for that status.
pub(crate) fn error_for_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: Result<Vec<u8>, Option<reqwest::Error>>,
    scrubber: &Scrubber,
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
        503 => Error::Server {
            status,
            retry_after: retry_after(headers),
            message,
        },
        500..=599 => Error::Server {
            status,
            retry_after: None,
            message,
        },
        300..=399 => Error::UnexpectedStatus {
            status,
            message: Some("redirects are not followed".into()),
        },
        _ => Error::UnexpectedStatus { status, message },
    }
}

/// The error an answer with `status` and a FastAPI body becomes, for tests that ask an error
/// what a status means.
#[cfg(test)]
pub(crate) fn error_for_status_code(status: u16) -> Error {
    error_for_status(
        StatusCode::from_u16(status).expect("a valid status"),
        &HeaderMap::new(),
        Ok(b"{\"detail\":\"x\"}".to_vec()),
        &Scrubber::new([]),
    )
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
    fn message(&self, scrubber: &Scrubber) -> Option<String> {
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

    fn validation_problems(&self, scrubber: &Scrubber) -> Vec<ValidationProblem> {
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

/// The rotated refresh token, if the body still holds a readable one.
pub(crate) fn recover_refresh_token(bytes: &[u8]) -> Option<RecoveredRefreshToken> {
    let body: Value = serde_json::from_slice(bytes).ok()?;
    let data = body.get("refresh_token_data")?;
    let token = data
        .get("token")?
        .as_str()
        .filter(|t| !t.trim().is_empty())?;
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
    fn describe_decode_failure_names_the_path() {
        let body = br#"{"access_token_data":{"token":"a","expires":"soon"},"refresh_token_data":{"token":"r","expires":"2026-11-26T06:08:25Z"},"user_id":"u","company_id":1}"#;
        let problem = describe_decode_failure(body);
        assert!(
            problem.starts_with("`access_token_data.expires`: not a recognised datetime"),
            "{problem}"
        );
        assert!(!problem.contains("soon"), "{problem}");
    }
}

//! Label values: small fixed sets of words, each derived by asking an error or a state what it is
//! (never from its text), so that no value can carry a token, a key, a path or a URL, and the
//! number of series stays fixed.

use crate::error::Error;
use crate::store::{StoreError, TokenState};

/// Every value of the `state` label of [`TOKEN_STATE`](super::TOKEN_STATE): all are set, the
/// current one to 1, so that a state left behind reads 0 rather than its last value.
pub(super) const TOKEN_STATES: [&str; 4] = ["usable", "possibly_rotated", "dead", "none"];

/// The `outcome` label of a refresh: `None` for a success. Unknown outcomes are told apart by
/// the error's own predicates, the ones the manager decides with, so the counter agrees with
/// what the manager then does with the token.
pub(super) fn refresh_outcome(error: Option<&Error>) -> &'static str {
    let Some(error) = error else {
        return "ok";
    };
    if error.is_token_rejected() {
        "rejected"
    } else if error.unknown_outcome().is_some() || error.may_have_spent_token() {
        "unknown"
    } else if matches!(error.status().map(|s| s.as_u16()), Some(429 | 503)) {
        "throttled"
    } else {
        "failed"
    }
}

/// The `kind` label of a failed store call. No wildcard arm: a new variant must choose its label.
pub(super) fn store_error_kind(error: &StoreError) -> &'static str {
    match error {
        StoreError::Unreachable(_) => "unreachable",
        StoreError::Busy { .. } => "busy",
        StoreError::Conflict { .. } => "conflict",
        StoreError::LeaseLost => "lease_lost",
        StoreError::NotDurable { .. } => "not_durable",
        StoreError::Corrupt { .. } | StoreError::Unreadable { .. } => "unreadable",
        StoreError::InsecurePermissions { .. } => "insecure_permissions",
        StoreError::Io { .. } => "io",
        StoreError::Other(_) => "other",
    }
}

/// The `state` label for the refresh token's state (`None`: no tokens).
pub(super) fn token_state(state: Option<&TokenState>) -> &'static str {
    match state {
        None => "none",
        Some(TokenState::Usable) => "usable",
        Some(TokenState::PossiblyRotated { .. }) => "possibly_rotated",
        Some(TokenState::Dead { .. }) => "dead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UnknownOutcome;
    use crate::store::NewTokensReason;
    use reqwest::StatusCode;
    use std::path::PathBuf;
    use std::time::Duration;

    fn server(status: u16) -> Error {
        Error::Server {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            message: None,
        }
    }

    #[test]
    fn refresh_outcomes_follow_what_the_answer_means_for_the_token() {
        let cases = [
            (None, "ok"),
            (
                Some(Error::RefreshTokenRejected { message: None }),
                "rejected",
            ),
            (
                Some(Error::OutcomeUnknown {
                    reason: UnknownOutcome::TimedOut,
                    recovered: None,
                    source: None,
                }),
                "unknown",
            ),
            (
                // A 200 that could not be read: the status says success, the outcome is unknown.
                Some(Error::OutcomeUnknown {
                    reason: UnknownOutcome::Undecodable {
                        status: StatusCode::OK,
                        problem: "`access_token_data`: missing field".into(),
                    },
                    recovered: None,
                    source: None,
                }),
                "unknown",
            ),
            (Some(server(500)), "unknown"),
            (Some(server(502)), "unknown"),
            (Some(server(504)), "unknown"),
            (Some(server(505)), "unknown"),
            (Some(server(522)), "unknown"),
            (
                Some(Error::UnexpectedStatus {
                    status: StatusCode::REQUEST_TIMEOUT,
                    message: None,
                }),
                "unknown",
            ),
            (Some(server(503)), "throttled"),
            (Some(server(501)), "failed"),
            (
                Some(Error::RateLimited {
                    retry_after: Some(Duration::from_secs(30)),
                    message: None,
                }),
                "throttled",
            ),
            (Some(Error::Forbidden { message: None }), "failed"),
            (Some(Error::Validation { problems: vec![] }), "failed"),
            (
                Some(Error::UnexpectedStatus {
                    status: StatusCode::IM_A_TEAPOT,
                    message: None,
                }),
                "failed",
            ),
        ];
        for (error, label) in cases {
            assert_eq!(refresh_outcome(error.as_ref()), label, "{error:?}");
        }
    }

    #[test]
    fn store_error_kinds_name_the_variant_and_nothing_it_holds() {
        let path = PathBuf::from("/secret/place/tokens.json");
        let cases = [
            (
                StoreError::Unreachable("connection refused".into()),
                "unreachable",
            ),
            (
                StoreError::Busy {
                    waited: Duration::from_secs(35),
                },
                "busy",
            ),
            (
                StoreError::Conflict {
                    expected: 1,
                    found: 2,
                },
                "conflict",
            ),
            (StoreError::LeaseLost, "lease_lost"),
            (
                StoreError::NotDurable {
                    acknowledged: 0,
                    required: 1,
                },
                "not_durable",
            ),
            (
                StoreError::Corrupt {
                    path: path.clone(),
                    problem: "`version`: invalid type".into(),
                },
                "unreadable",
            ),
            (
                StoreError::Unreadable {
                    store: "grant".into(),
                    reason: crate::store::UnreadableReason::WrongKeyOrAltered,
                    version: 3,
                },
                "unreadable",
            ),
            (
                StoreError::InsecurePermissions {
                    path: path.clone(),
                    mode: 0o644,
                },
                "insecure_permissions",
            ),
            (
                StoreError::Io {
                    path,
                    operation: "read",
                    source: std::io::Error::other("disk"),
                },
                "io",
            ),
            (StoreError::Other("disk full".into()), "other"),
        ];
        for (error, label) in cases {
            assert_eq!(store_error_kind(&error), label, "{error:?}");
        }
    }

    #[test]
    fn token_states_map_onto_the_label_set() {
        let now = chrono::Utc::now();
        let cases = [
            (None, "none"),
            (Some(TokenState::Usable), "usable"),
            (
                Some(TokenState::PossiblyRotated {
                    since: now,
                    attempts: 1,
                    last_attempt: now,
                    deadline: None,
                }),
                "possibly_rotated",
            ),
            (
                Some(TokenState::Dead {
                    reason: NewTokensReason::RefreshTokenRejected,
                    since: now,
                }),
                "dead",
            ),
        ];
        for (state, label) in cases {
            assert_eq!(token_state(state.as_ref()), label);
            assert!(TOKEN_STATES.contains(&label));
        }
    }
}

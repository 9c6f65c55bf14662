//! Applying: the state after an outcome (the second table in the module doc of `state`),
//! the store's documents apart.

use super::*;

/// The state after `outcome` (the second table in the module doc). An access token reported
/// rejected is never held afterwards, whatever the outcome brought.
pub(crate) fn apply(
    state: State,
    outcome: Outcome,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let at = At {
        policy,
        now,
        utc_now,
    };
    without_rejected_access(fold(state, outcome, at), &policy.fingerprints)
}

/// Drops the access tokens (current, and the one served while a rotation is saved) that were
/// reported rejected.
pub(super) fn without_rejected_access(mut state: State, key: &FingerprintKey) -> State {
    if state.rejected_access.is_empty() {
        return state;
    }
    let rejected = |access: &Option<Access>| {
        access
            .as_ref()
            .is_some_and(|a| state.rejected_access.contains(&key.access(&a.token)))
    };
    if rejected(&state.access) {
        state.access = None;
    }
    if rejected(&state.previous_access) {
        state.previous_access = None;
    }
    state
}

pub(super) fn fold(state: State, outcome: Outcome, at: At<'_>) -> State {
    match outcome {
        Outcome::Loaded(stored) => read(state, stored, at),
        Outcome::Unreadable(version) => {
            let mut state = read(state, None, at);
            if let Some(tokens) = state.tokens.as_mut() {
                tokens.version = version;
            }
            state
        }
        Outcome::Saved(version) => {
            let mut state = state;
            // What was saved: the document `document_to_save` made of this same state.
            if let Some(saved) = state.document_to_save() {
                state.seen = state.seen.max(saved.lineage.mark());
                state.tokens = Some(StoredTokens { version, ..saved });
            }
            state.pending = None;
            state.previous_access = None;
            state.track_restore(at.now);
            state
        }
        Outcome::Sending => sending(state, at),
        Outcome::Refreshed {
            sent,
            session,
            jitter,
        } => refreshed(state, sent, &session, jitter, at),
        Outcome::Failed { sent, error } => failed(state, sent, error, at),
        Outcome::Replaced(tokens) => {
            // An operator's write: a new generation, which every host follows.
            let mut tokens = tokens;
            tokens.lineage.generation = crate::store::Lineage::operator_generation(
                state.seen.0.max(tokens.lineage.generation),
                at.utc_now,
            );
            tokens.lineage.sequence = 0;
            tokens.lineage.restored_at = None;
            State {
                pending: Some(Pending {
                    overwrites: Overwrites::Anything,
                    rotation: false,
                }),
                rotated: state.rotated,
                rejected_access: state.rejected_access,
                rejections: state.rejections,
                seen: state.seen,
                ..State::from_document(tokens, at)
            }
        }
        Outcome::AccessRejected(rejected) => {
            // Dropped by `apply` (also while a rotation is being saved, when the token handed
            // out is the one from before it), at.now and whenever a document brings it back.
            let mut state = state;
            let fingerprint = at.policy.fingerprints.access(&rejected);
            // Fresh: one this host hands out, not expired (an expiry explains a 401), and not
            // reported before (many callers report the same token once each).
            let fresh = !state.rejected_access.contains(&fingerprint)
                && [&state.access, &state.previous_access]
                    .into_iter()
                    .flatten()
                    .any(|access| {
                        !access.expires.passed(at.now)
                            && at.policy.fingerprints.access(&access.token) == fingerprint
                    });
            if fresh {
                state.rejections = Some(Rejections {
                    consecutive: state
                        .rejections
                        .map_or(1, |r| r.consecutive.saturating_add(1)),
                    last: at.now,
                });
            }
            remember(&mut state.rejected_access, fingerprint, REJECTED_ACCESS);
            state
        }
        Outcome::AccessAccepted(accepted) => {
            let mut state = state;
            if state.rejections.is_some()
                && !state
                    .rejected_access
                    .contains(&at.policy.fingerprints.access(&accepted))
            {
                state.rejections = None;
            }
            state
        }
        Outcome::StoreUnreachable => State {
            store_out: true,
            ..state
        },
        Outcome::RenewalRequested(refresh_token) => State {
            renewal: Some(refresh_token),
            ..state
        },
        Outcome::SendAborted => send_aborted(state),
        Outcome::TaskFailed => State {
            quiet_until: Some(Deadline::after(at.now, at.policy.cooldown)),
            ..state
        },
    }
}

/// [`Outcome::Refreshed`]: the new tokens, pending their save; the sent token remembered as
/// rotated away (unless the server answered with the same one).
pub(super) fn refreshed(
    state: State,
    sent: RefreshToken,
    session: &Session,
    jitter: f64,
    at: At<'_>,
) -> State {
    let version = state.tokens.as_ref().map_or(0, |t| t.version);
    let mut lineage = state
        .tokens
        .as_ref()
        .map(|t| t.lineage.clone())
        .unwrap_or_default();
    lineage.restored_at = None;
    let mut rotated = state.rotated;
    let mut tokens = StoredTokens {
        refreshed_at: Some(at.utc_now),
        version,
        lineage,
        ..StoredTokens::from_session(session)
    };
    // A server that answers with the same refresh token did not rotate it.
    if !same(&sent, &session.refresh_token) {
        let fingerprint = at.policy.fingerprints.fingerprint(&sent);
        remember(&mut rotated, fingerprint, HOST_FINGERPRINTS);
        tokens.lineage.rotated.push(fingerprint);
    }
    // An access token still held when the refresh came was not rejected (its refresh point
    // came, or a renewal was asked for): the run of rejections is over.
    let rejections = state.rejections.filter(|_| state.access.is_none());
    State {
        access: Some(session_access(session, at, jitter)),
        tokens: Some(tokens),
        pending: Some(Pending {
            overwrites: Overwrites::Successor(sent.clone()),
            rotation: true,
        }),
        failure: None,
        last_refresh: Some(at.now),
        quiet_until: None,
        sending_from: None,
        previous_access: state.access,
        renewal: None,
        rotated,
        rejected_access: state.rejected_access,
        seen: state.seen,
        mark_seen: None,
        restore_seen: None,
        undo_send: None,
        note: None,
        store_out: state.store_out,
        store_back: state.store_back,
        rejections,
    }
}

/// [`Outcome::SendAborted`]: what [`Outcome::Sending`] changed is taken back, nothing else.
pub(super) fn send_aborted(state: State) -> State {
    let mut state = state;
    if let Some(undo) = state.undo_send.take() {
        if let Some(tokens) = state.tokens.as_mut() {
            tokens.state = undo.token_state;
            tokens.lineage.restored_at = undo.restored_at;
        }
        state.last_refresh = undo.last_refresh;
        state.mark_seen = undo.mark_seen;
        state.pending = undo.pending;
        state.sending_from = None;
    }
    state
}

/// Marks the stored token possibly rotated before it is sent; the mark is saved first.
pub(super) fn sending(state: State, at: At<'_>) -> State {
    let mut state = state;
    let Some(tokens) = state.tokens.as_mut() else {
        return state;
    };
    let (since, attempts) = match tokens.state {
        TokenState::PossiblyRotated {
            since, attempts, ..
        } => (since, attempts),
        _ => (at.utc_now, 0),
    };
    state.undo_send = Some(Box::new(UndoSend {
        token_state: tokens.state,
        restored_at: tokens.lineage.restored_at,
        last_refresh: state.last_refresh,
        mark_seen: state.mark_seen,
        pending: state.pending.clone(),
    }));
    state.sending_from = Some(tokens.state);
    // This host's own attempt: the request cannot be in flight past its timeout from at.now.
    state.mark_seen = Some((attempts.saturating_add(1), at.utc_now, at.now));
    tokens.lineage.restored_at = None;
    // Others wait this attempt's own timeout, on their clocks: recorded as a deadline on ours.
    let timeout = chrono::Duration::from_std(at.policy.request_timeout.min(MAX_COOLDOWN))
        .unwrap_or(chrono::Duration::zero());
    tokens.state = TokenState::PossiblyRotated {
        since,
        attempts: attempts.saturating_add(1),
        last_attempt: at.utc_now,
        deadline: at.utc_now.checked_add_signed(timeout),
    };
    state.pending = Some(Pending {
        overwrites: Overwrites::Successor(tokens.refresh_token.clone()),
        rotation: false,
    });
    state.last_refresh = Some(at.now);
    state
}

/// The last moment an access token with `lifetime` left at `now` is handed out: the minimum
/// validity before its expiry, or half-way for a token living less than twice that; but never
/// sooner than the minimum refresh interval (while the token lasts that long), since no new one
/// may be fetched before then.
pub(super) fn serve_until(now: Duration, lifetime: Duration, policy: &Policy) -> Deadline {
    let expires = Deadline::after(now, lifetime);
    expires
        .minus(policy.min_validity.min(lifetime / 2))
        .max(Deadline::after(now, policy.min_interval))
        .min(expires)
}

/// The lifetime of a session's access token, measured on the server's clock when its `Date` is
/// believable, bounded, and the point at which to renew it.
pub(super) fn session_access(session: &Session, at: At<'_>, jitter: f64) -> Access {
    let reference = match session.server_date {
        Some(date)
            if (date - at.utc_now)
                .abs()
                .to_std()
                .is_ok_and(|s| s <= at.policy.max_clock_skew) =>
        {
            // `Date` has one-second resolution: the server's "at.now" may be up to a second later.
            date.checked_add_signed(chrono::Duration::seconds(1))
                .unwrap_or(date)
        }
        _ => at.utc_now,
    };
    let lifetime = (session.access_expires - reference)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .clamp(
            at.policy.min_interval,
            at.policy.max_lifetime.max(at.policy.min_interval),
        );
    let lead = at.policy.margin.min(lifetime / 2);
    let lead = lead.mul_f64(1.0 + at.policy.jitter * jitter.clamp(0.0, 1.0));
    let serve = serve_until(at.now, lifetime, at.policy);
    let refresh_at = Deadline::after(at.now, lifetime)
        .minus(lead)
        .max(Deadline::after(at.now, at.policy.min_interval))
        .min(serve);
    Access {
        token: Arc::new(session.access_token.clone()),
        expires: Deadline::after(at.now, lifetime),
        serve_until: serve,
        refresh_at,
    }
}

pub(super) fn failed(state: State, sent: RefreshToken, error: Error, at: At<'_>) -> State {
    let consecutive = state.failure.as_ref().map_or(0, |f| f.consecutive) + 1;
    let wait = backoff(at.policy, consecutive)
        .max(error.retry_after().unwrap_or(Duration::ZERO))
        .min(MAX_COOLDOWN);
    let recovered = error.recovered_refresh_token().cloned();
    let kind = FailureKind::of(&error);
    let mut state = state;
    let before = state.sending_from.take().unwrap_or_default();
    state.last_refresh = Some(at.now);
    state.failure = Some(Failure {
        error: Arc::new(error),
        retry_at: Deadline::after(at.now, wait),
        consecutive,
    });
    let Some(tokens) = state.tokens.as_mut() else {
        return state;
    };
    tokens.state = match (recovered, kind) {
        (Some(recovered), _) => {
            // The rotated refresh token survived an undecodable response: keep it (the old
            // access token stays valid while it lasts).
            if !same(&sent, &recovered.token) {
                let fingerprint = at.policy.fingerprints.fingerprint(&sent);
                remember(&mut state.rotated, fingerprint, HOST_FINGERPRINTS);
                tokens.lineage.rotated.push(fingerprint);
            }
            tokens.refresh_token = recovered.token;
            tokens.refresh_expires = recovered.expires.map(Into::into);
            tokens.refreshed_at = Some(at.utc_now);
            TokenState::Usable
        }
        (None, FailureKind::Rejected) => TokenState::Dead {
            reason: if matches!(before, TokenState::PossiblyRotated { .. }) {
                NewTokensReason::RejectedAfterUnknownOutcome
            } else {
                NewTokensReason::RefreshTokenRejected
            },
            since: at.utc_now,
        },
        // The mark saved before sending says it all.
        (None, FailureKind::MaybeProcessed) => return state,
        // Nothing happened to the token: take the mark back.
        (None, FailureKind::NotProcessed) => before,
    };
    state.pending = Some(Pending {
        overwrites: Overwrites::Successor(sent),
        rotation: false,
    });
    state
}

/// What a failed refresh says about the refresh token that was sent.
pub(super) enum FailureKind {
    /// 401: it is dead.
    Rejected,
    /// The server may have processed it (and rotated the token) without the answer arriving.
    MaybeProcessed,
    /// The server did not act on it.
    NotProcessed,
}

impl FailureKind {
    /// A recovered token is handled before the kind is asked (see `failed`).
    fn of(error: &Error) -> Self {
        if error.is_token_rejected() {
            FailureKind::Rejected
        } else if error.may_have_spent_token() {
            FailureKind::MaybeProcessed
        } else {
            FailureKind::NotProcessed
        }
    }
}

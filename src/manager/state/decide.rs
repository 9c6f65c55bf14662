//! Deciding: the next step for a state (the first table in the module doc of `state`).

use super::*;

/// The wait after `failures` failed attempts in a row: doubling from the cooldown, at most
/// [`MAX_COOLDOWN`].
pub(super) fn backoff(policy: &Policy, failures: u32) -> Duration {
    policy
        .cooldown
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_COOLDOWN)
}

/// The next step (the table in the module doc).
pub(crate) fn decide(
    state: &State,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> Step {
    if state.pending.is_none() && state.fresh(now).is_some() {
        return Step::Serve;
    }
    if state.pending.is_some() {
        if let Some(document) = state.document_to_save() {
            return Step::Save(Box::new(document));
        }
    }
    // Rows 3 to 5 and 7 read the document alone: the rules `genlogs-auth status` shows too.
    let health = TokenHealth::of(state.tokens.as_ref(), utc_now);
    if let Some(reason) = health.new_tokens_reason() {
        // The refresh error that made the token dead, when this process saw it.
        let dead = matches!(
            state.tokens.as_ref().map(|tokens| tokens.state),
            Some(TokenState::Dead { .. })
        );
        let cause = dead
            .then(|| state.failure.as_ref().map(|f| f.error.clone()))
            .flatten();
        return Step::Fail(new_tokens(reason, cause));
    }
    if let Some(tokens) = &state.tokens {
        if state.knows_rotated(&policy.fingerprints, &tokens.refresh_token) {
            return Step::Fail(TokenError::Store(Arc::new(StoreError::Other(
                "the token store holds a refresh token this host saw rotated away, which is \
                 never sent; a host holding the newer tokens writes them back (or an operator \
                 seeds new ones: `genlogs-auth init --force`)"
                    .into(),
            ))));
        }
    }
    if let Some(failure) = &state.failure {
        if !failure.retry_at.passed(now) {
            return Step::Fail(TokenError::Refresh(failure.error.clone()));
        }
    }
    if let Some(TokenState::PossiblyRotated {
        attempts,
        last_attempt,
        deadline,
        ..
    }) = state.tokens.as_ref().map(|tokens| tokens.state)
    {
        let sender_timeout = deadline.and_then(|deadline| (deadline - last_attempt).to_std().ok());
        if let Some(error) = still_in_doubt(
            state,
            policy,
            attempts,
            last_attempt,
            sender_timeout,
            now,
            utc_now,
        ) {
            return Step::Fail(error);
        }
    }
    if let Some(restored) = state.tokens.as_ref().and_then(|t| t.lineage.restored_at) {
        // Written back into a store that went back or came back empty: give every host the
        // grace to write back newer tokens before anyone refreshes from these, and a request
        // that may still be in flight (its mark lost with the store) the time to end: its
        // answer, if GenLogs rotated, is then saved over these (a pending rotation is never
        // dropped). The request may be another host's, with a longer timeout than this host's:
        // the grace covers the longest a fleet is assumed to use. Timed from when this host
        // first saw them, on its own clock, so no writer's clock can stretch it.
        let grace = RESTORE_GRACE.max(
            policy
                .request_timeout
                .max(policy.fleet_request_timeout)
                .saturating_add(Duration::from_secs(2)),
        );
        let until = match state.restore_seen {
            Some((at, seen)) if at == restored => Deadline::after(seen, grace),
            _ => Deadline::after(now, grace),
        };
        if !until.passed(now) {
            return Step::Wait(until);
        }
    }
    if let Some(rejections) = &state.rejections {
        if let Some(until) = rejections.backoff_until(policy) {
            if !until.passed(now) {
                return Step::Fail(TokenError::AccessRejected {
                    consecutive: rejections.consecutive,
                    retry_at: utc_after(utc_now, until.0.saturating_sub(now)),
                });
            }
        }
    }
    if let Some(last) = state.last_refresh {
        let allowed = Deadline::after(last, policy.min_interval);
        if !allowed.passed(now) {
            return Step::Wait(allowed);
        }
    }
    match &state.tokens {
        Some(tokens) => Step::Refresh(tokens.refresh_token.clone()),
        // (Row 3 answered already: a state without tokens never gets here.)
        None => Step::Fail(new_tokens(NewTokensReason::NoTokens, None)),
    }
}

/// Row 8: while a possibly-rotated token (`attempts` so far, the last at `last_attempt`) must
/// not be sent again, the error saying when it may; `None` once it may.
pub(super) fn still_in_doubt(
    state: &State,
    policy: &Policy,
    attempts: u32,
    last_attempt: DateTime<Utc>,
    sender_timeout: Option<Duration>,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> Option<TokenError> {
    // The marking attempt lasts its sender's own timeout (recorded in the mark, as a
    // duration on the sender's clock), or this host's if longer or unknown.
    let attempt_lasts = sender_timeout
        .unwrap_or_default()
        .max(policy.request_timeout)
        .saturating_add(Duration::from_secs(2))
        .min(MAX_COOLDOWN);
    // Not before the marking attempt can no longer be in flight (its lease covers that
    // too), then backing off; a marking host's clock running ahead cannot stretch the wait
    // past MAX_COOLDOWN from when this host first saw the mark.
    let wait = backoff(policy, attempts)
        .max(attempt_lasts)
        .min(MAX_COOLDOWN);
    let retry_at = last_attempt
        .checked_add_signed(chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let seen_at = match state.mark_seen {
        Some((seen_attempts, seen_last, seen_at))
            if seen_attempts == attempts && seen_last == last_attempt =>
        {
            Some(seen_at)
        }
        _ => None,
    };
    let waited_enough = seen_at.is_some_and(|at| Deadline::after(at, MAX_COOLDOWN).passed(now));
    // The marking attempt left after the mark was saved, so after this host first saw it:
    // on this host's own clock, it can no longer be in flight once the request's timeout
    // has passed since then, whatever the wall clocks say (one running ahead of the
    // marking host's would cut the wait short when the store lost the lease).
    // At least the outage settle from then too: a host that made no store call during an
    // outage (started after it, or serving a cached token) cannot tell that the store has
    // only just come back, and the marking host may hold an unsaved rotation.
    let in_flight_until =
        seen_at.map(|at| Deadline::after(at, attempt_lasts.max(policy.outage_settle)));
    // Back from a store outage that may have outlived the marking host's lease: its holder,
    // if GenLogs rotated, had no store to save to; give its retry the time to save before the
    // token goes again.
    let after_outage = state
        .store_back
        .map(|at| Deadline::after(at, policy.outage_settle));
    let in_flight_until = match (in_flight_until, after_outage) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let in_flight = in_flight_until.is_some_and(|until| !until.passed(now));
    let backing_off = utc_now < retry_at && !waited_enough;
    if backing_off || in_flight {
        let after = |left: Duration| utc_after(utc_now, left);
        // When the next attempt may go, by whichever wait is longer.
        let mut at = if backing_off {
            retry_at.min(after(MAX_COOLDOWN))
        } else {
            utc_now
        };
        if let Some(until) = in_flight_until.filter(|_| in_flight) {
            at = at.max(after(until.0.saturating_sub(now)));
        }
        return Some(TokenError::OutcomeUnknown { retry_at: at });
    }
    None
}

/// `utc_now + left`, saturating at the latest representable time.
fn utc_after(utc_now: DateTime<Utc>, left: Duration) -> DateTime<Utc> {
    utc_now
        .checked_add_signed(chrono::Duration::from_std(left).unwrap_or(chrono::Duration::MAX))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(super) fn new_tokens(reason: NewTokensReason, cause: Option<Arc<Error>>) -> TokenError {
    TokenError::NewTokensRequired { reason, cause }
}

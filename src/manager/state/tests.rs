//! One test per row of the module doc's tables, with fixed times.

use super::*;
use crate::error::UnknownOutcome;
use reqwest::StatusCode;

const MIN: Duration = Duration::from_secs(60);

pub(crate) fn policy() -> Policy {
    Policy {
        margin: MIN,
        jitter: 0.0,
        cooldown: Duration::from_secs(5),
        min_interval: Duration::from_secs(5),
        max_clock_skew: Duration::from_secs(3600),
        max_lifetime: Duration::from_secs(24 * 3600),
        min_validity: Duration::ZERO,
        // Below the first cooldown, so the backoff rows read as before.
        request_timeout: Duration::from_secs(1),
        // Another host of the fleet waits up to 3 s for an answer.
        fleet_request_timeout: Duration::from_secs(3),
        // A store whose calls take at most 1 s: 4 s.
        outage_settle: outage_settle(Duration::from_secs(1)),
        fingerprints: FingerprintKey::from_api_key(&crate::secret::ApiKey::new("test-key")),
    }
}

pub(crate) fn utc() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
        .unwrap()
        .to_utc()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Asserts that `step` fails for want of new tokens, for `reason`.
#[track_caller]
fn assert_needs_new_tokens(step: Step, reason: NewTokensReason) {
    assert!(
        matches!(
            &step,
            Step::Fail(TokenError::NewTokensRequired { reason: r, .. }) if *r == reason
        ),
        "{step:?}"
    );
}

/// Asserts that `state` is held (the outcome of an attempt is unknown) at `held` and sends a
/// refresh at `sent`.
#[track_caller]
fn assert_held_then_sent(state: &State, held: Duration, sent: Duration) {
    let step_held = step(state, held);
    assert!(
        matches!(step_held, Step::Fail(TokenError::OutcomeUnknown { .. })),
        "{step_held:?}"
    );
    let step_sent = step(state, sent);
    assert!(matches!(step_sent, Step::Refresh(_)), "{step_sent:?}");
}

/// `tokens` adopted from the store at 0 s (`State::from_document`).
fn adopted_at_zero(tokens: StoredTokens, policy: &Policy) -> State {
    let at = At {
        policy,
        now: Duration::ZERO,
        utc_now: utc(),
    };
    State::from_document(tokens, at)
}

/// `outcome` applied at `now`, with this table's policy and wall clock.
fn applied(state: State, outcome: Outcome, now: Duration) -> State {
    apply(state, outcome, &policy(), now, utc())
}

/// `state` after reading `stored` from the store at `now`.
fn read(state: State, stored: StoredTokens, now: Duration) -> State {
    applied(state, Outcome::Loaded(Some(stored)), now)
}

/// A host that knows nothing yet reads `stored` at 0 s.
fn loaded(stored: StoredTokens) -> State {
    read(State::default(), stored, Duration::ZERO)
}

pub(crate) fn document(refresh: &str, version: u64) -> StoredTokens {
    StoredTokens {
        version,
        ..StoredTokens::from_refresh_token(RefreshToken::new(refresh))
    }
}

/// A document another process wrote (numbered past what this host saw): `refresh` at `version`,
/// with the access token `access` valid for `minutes`.
fn peer_document(refresh: &str, version: u64, access: &str, minutes: i64) -> StoredTokens {
    let mut tokens = StoredTokens {
        access_token: Some(AccessToken::new(access)),
        access_expires: Some(utc() + chrono::Duration::minutes(minutes)),
        ..document(refresh, version)
    };
    tokens.lineage.sequence = 100 + version;
    tokens
}

fn with_access(refresh: &str, expires_in: Duration) -> State {
    let tokens = StoredTokens {
        access_token: Some(AccessToken::new("at")),
        access_expires: Some(utc() + chrono::Duration::from_std(expires_in).unwrap()),
        ..document(refresh, 1)
    };
    adopted_at_zero(tokens, &policy())
}

fn session(lifetime: chrono::Duration, server_date: Option<DateTime<Utc>>) -> Session {
    let mut session = Session::example(
        server_date.unwrap_or(utc()) + lifetime,
        utc() + chrono::Duration::days(7),
        server_date,
    );
    session.access_token = AccessToken::new("at-new");
    session.refresh_token = RefreshToken::new("rt-new");
    // `example` goes through the wire format; keep the exact instant.
    session.access_expires = server_date.unwrap_or(utc()) + lifetime;
    session
}

fn refreshed(state: State, session: Session, now: Duration) -> State {
    applied(
        state,
        Outcome::Refreshed {
            sent: RefreshToken::new("rt"),
            session: Box::new(session),
            jitter: 0.0,
        },
        now,
    )
}

/// A host holding "rt" (its access token good for 10 min) after GenLogs rotated it at `now`
/// (30 min access tokens), the rotation not saved yet.
fn rotated_at(now: Duration) -> State {
    refreshed(
        with_access("rt", secs(600)),
        session(chrono::Duration::minutes(30), None),
        now,
    )
}

/// An attempt as the manager makes it: marked and saved, sent, failed.
fn failed(state: State, error: Error) -> State {
    let marked = saved(applied(state, Outcome::Sending, Duration::ZERO));
    applied(
        marked,
        Outcome::Failed {
            sent: RefreshToken::new("rt"),
            error,
        },
        Duration::ZERO,
    )
}

/// Decides at `now`, with the wall clock moved on by as much.
fn step(state: &State, now: Duration) -> Step {
    decide(
        state,
        &policy(),
        now,
        utc() + chrono::Duration::from_std(now).unwrap(),
    )
}

fn unknown() -> Error {
    Error::OutcomeUnknown {
        reason: UnknownOutcome::TimedOut,
        recovered: None,
        source: None,
    }
}

fn rejected() -> Error {
    Error::RefreshTokenRejected { message: None }
}

fn saved(state: State) -> State {
    applied(state, Outcome::Saved(2), Duration::ZERO)
}

/// Whether a failed attempt with `status` leaves the token marked possibly rotated.
fn keeps_the_mark(status: u16) -> bool {
    let state = failed(
        with_access("rt", secs(2)),
        crate::response::error_for_status_code(status),
    );
    matches!(
        state.tokens.as_ref().unwrap().state,
        TokenState::PossiblyRotated { .. }
    )
}

fn operator_document(refresh: &str, version: u64) -> StoredTokens {
    let mut document = document(refresh, version);
    document.lineage.generation = crate::store::Lineage::operator_generation(0, utc());
    document
}

/// `rt` at version 4, marked possibly rotated by `attempts` attempts, the last now.
fn possibly_rotated(attempts: u32) -> StoredTokens {
    marked(document("rt", 4), attempts)
}

/// `tokens` marked possibly rotated by `attempts` attempts, the last at `utc()`, with no
/// deadline of the sender's.
fn marked(tokens: StoredTokens, attempts: u32) -> StoredTokens {
    StoredTokens {
        state: TokenState::PossiblyRotated {
            since: utc(),
            attempts,
            last_attempt: utc(),
            deadline: None,
        },
        ..tokens
    }
}

/// Two rotations (rt → rt-2 → rt-3), each saved, then the store goes back to the first.
fn rotated_twice() -> State {
    let mut state = with_access("rt", secs(600));
    for (sent, new) in [("rt", "rt-2"), ("rt-2", "rt-3")] {
        let mut session = session(chrono::Duration::minutes(30), None);
        session.refresh_token = RefreshToken::new(new);
        state = saved(applied(
            state,
            Outcome::Refreshed {
                sent: RefreshToken::new(sent),
                session: Box::new(session),
                jitter: 0.0,
            },
            Duration::ZERO,
        ));
    }
    state
}

/// A document as a store reads it from another server instance than the one that saved it.
fn from_another_instance(refresh: &str, version: u64) -> StoredTokens {
    let mut doc = document(refresh, version);
    doc.instance_changed = true;
    doc
}

/// Written back at 1 s: the next refresh waits until the grace has passed (the fleet's
/// longest request timeout + 2 s), then goes.
fn waits_the_grace_from_1_s(state: &State) {
    let grace_over = secs(1) + policy().fleet_request_timeout + secs(2);
    match decide(state, &policy(), secs(2), utc()) {
        Step::Wait(until) => assert_eq!(until, Deadline(grace_over)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decide(
            state,
            &policy(),
            grace_over - Duration::from_millis(1),
            utc()
        ),
        Step::Wait(_)
    ));
    // Past the grace (and the minimum interval since the last refresh).
    assert!(matches!(
        decide(state, &policy(), grace_over, utc()),
        Step::Refresh(_)
    ));
}

// ----- The first table: one decision per row, in row order -----

#[test]
fn row_1_a_saved_token_before_its_refresh_point_is_served() {
    let state = with_access("rt", secs(600));
    assert!(matches!(step(&state, secs(539)), Step::Serve));
    assert!(matches!(step(&state, secs(540)), Step::Refresh(_)));
}

#[test]
fn row_2_anything_pending_is_saved_first() {
    let state = rotated_at(Duration::ZERO);
    assert!(matches!(step(&state, Duration::ZERO), Step::Save(_)));
    assert_eq!(
        state.valid(Duration::ZERO).map(|t| t.expose_secret()),
        Some("at"),
        "the new access token is not handed out before its refresh token is saved; the old one is"
    );
    let state = saved(state);
    assert!(matches!(step(&state, Duration::ZERO), Step::Serve));
    assert_eq!(state.tokens.unwrap().version, 2);
}

#[test]
fn row_3_no_tokens_needs_new_ones() {
    assert_needs_new_tokens(
        step(&State::default(), Duration::ZERO),
        NewTokensReason::NoTokens,
    );
}

#[test]
fn row_4_a_dead_token_is_never_sent() {
    let mut state = State::default();
    let mut tokens = document("rt", 3);
    tokens.state = TokenState::Dead {
        reason: NewTokensReason::RefreshTokenRejected,
        since: utc(),
    };
    state = read(state, tokens, Duration::ZERO);
    assert_needs_new_tokens(
        step(&state, secs(10_000)),
        NewTokensReason::RefreshTokenRejected,
    );
}

#[test]
fn row_5_an_expired_refresh_token_is_not_sent() {
    let mut tokens = document("rt", 1);
    tokens.refresh_expires = Some(utc());
    let state = loaded(tokens);
    assert_needs_new_tokens(
        step(&state, Duration::ZERO),
        NewTokensReason::RefreshTokenExpired,
    );
}

#[test]
fn row_6_a_store_that_went_back_two_rotations_is_recognised_by_fingerprint_and_never_sent_from() {
    let state = rotated_twice();
    let saved_sequence = state.tokens.as_ref().unwrap().lineage.sequence;
    assert_eq!(saved_sequence, 2, "one write per rotation");
    let written = state.document_to_save().unwrap();
    assert_eq!(
        written.lineage.rotated.len(),
        2,
        "the document carries both"
    );
    let shown = serde_json::to_string(&written.lineage).unwrap();
    assert!(
        !shown.contains("rt-2") && !shown.contains("\"rt\""),
        "{shown}"
    );
    // Restored from a snapshot at a *higher* version (the store's counter moved on since):
    // the version cannot tell, the fingerprint does.
    let state = read(state, document("rt", 40), secs(1));
    let tokens = state.tokens.as_ref().unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-3");
    assert_eq!(tokens.version, 40, "written back over what is there");
    assert!(tokens.lineage.restored_at.is_some());
    let to_save = state.document_to_save().unwrap();
    assert!(to_save.lineage.sequence > saved_sequence);
    assert!(matches!(step(&state, secs(1)), Step::Save(_)));
    // A fresh host reading a document whose list names rt-2 never sends rt-2.
    let fresh = read(
        State::default(),
        StoredTokens {
            lineage: written.lineage.clone(),
            ..document("rt-2", 7)
        },
        secs(1),
    );
    assert!(matches!(
        step(&fresh, secs(1)),
        Step::Fail(TokenError::Store(_))
    ));
}

#[test]
fn row_7_no_refresh_during_the_cooldown() {
    let state = failed(
        with_access("rt", secs(2)),
        Error::Server {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: None,
            retry_after: None,
        },
    );
    // Not processed: the mark saved before sending is taken back.
    assert_eq!(state.tokens.as_ref().unwrap().state, TokenState::Usable);
    assert!(matches!(step(&state, Duration::ZERO), Step::Save(_)));
    let state = saved(state);
    assert!(matches!(
        step(&state, secs(4)),
        Step::Fail(TokenError::Refresh(_))
    ));
    assert!(matches!(step(&state, secs(5)), Step::Refresh(_)));
}

#[test]
fn row_7_a_cooldown_never_hides_a_valid_token_another_process_saved() {
    let rate_limited = Error::RateLimited {
        retry_after: Some(MAX_COOLDOWN),
        message: None,
    };
    let state = saved(failed(with_access("rt", secs(2)), rate_limited));
    assert!(matches!(
        step(&state, secs(3)),
        Step::Fail(TokenError::Refresh(_))
    ));
    // Another process saved an access token for the same refresh token (its own mark
    // taken back, a server that did not rotate): served, and the cooldown still holds
    // for sending.
    let peer = peer_document("rt", 5, "at-peer", 10);
    let state = read(state, peer, secs(3));
    assert!(matches!(step(&state, secs(3)), Step::Serve));
    // Past its refresh point, still in the cooldown: not sent, and still handed out.
    assert!(matches!(
        step(&state, secs(3 + 541)),
        Step::Fail(TokenError::Refresh(_))
    ));
    assert_eq!(
        state.valid(secs(3 + 541)).map(|t| t.expose_secret()),
        Some("at-peer")
    );
    // Another process rotated: its tokens are served at once.
    let rotated = peer_document("rt-2", 6, "at-rotated", 10);
    let state = read(state, rotated, secs(4));
    assert!(matches!(step(&state, secs(4)), Step::Serve));
    assert_eq!(
        state.valid(secs(4)).map(|t| t.expose_secret()),
        Some("at-rotated")
    );
}

#[test]
fn row_8_another_process_s_unknown_outcome_holds_everyone_for_the_shared_cooldown() {
    let stored = possibly_rotated(2);
    let state = loaded(stored);
    // Two attempts: 10 s after the last one, on the wall clock every process shares.
    assert_held_then_sent(&state, secs(9), secs(10));
}

#[test]
fn row_8_after_a_store_outage_a_possibly_rotated_token_waits_for_the_holder_to_save() {
    let stored = possibly_rotated(1);
    let state = loaded(stored.clone());
    // Long after the attempt, with no outage: sent again.
    assert!(matches!(step(&state, secs(60)), Step::Refresh(_)));
    // The store stopped answering (longer than the marking host's lease, perhaps), then
    // answered again at 60 s: its holder may have an unsaved rotation to save first.
    let state = applied(state, Outcome::StoreUnreachable, secs(30));
    let state = read(state, stored, secs(60));
    assert_held_then_sent(&state, secs(60), secs(60) + policy().outage_settle);
}

#[test]
fn row_8_a_mark_records_its_sender_s_deadline_and_others_wait_that_not_their_own_timeout() {
    // A sender whose requests may take 120 s marks its attempt with that deadline.
    let sender = Policy {
        request_timeout: secs(120),
        ..policy()
    };
    let state = apply(
        with_access("rt", secs(600)),
        Outcome::Sending,
        &sender,
        secs(5),
        utc(),
    );
    let marked = state.tokens.clone().unwrap();
    let TokenState::PossiblyRotated {
        last_attempt,
        deadline,
        ..
    } = marked.state
    else {
        panic!("{:?}", marked.state)
    };
    assert_eq!(
        deadline,
        Some(last_attempt + chrono::Duration::seconds(120))
    );
    // A host with a 1 s timeout (this table's policy) reads the mark as the sender left.
    let reader = loaded(StoredTokens {
        access_token: None,
        ..marked
    });
    // Its own timeout and the backoff are long over at 60 s; the sender's is not.
    assert_held_then_sent(&reader, secs(60), secs(123));
}

#[test]
fn row_8_a_host_that_first_sees_a_mark_long_after_it_waits_the_outage_settle() {
    // A host that made no store call during an outage (started after it) finds a mark whose
    // attempt is long over: its holder may only now be able to save an unsaved rotation.
    let mut stored = possibly_rotated(1);
    stored.state = TokenState::PossiblyRotated {
        since: utc(),
        attempts: 1,
        last_attempt: utc(),
        deadline: Some(utc() + chrono::Duration::seconds(1)),
    };
    let first_seen = secs(3600);
    let state = apply(
        State::default(),
        Outcome::Loaded(Some(stored)),
        &policy(),
        first_seen,
        utc() + chrono::Duration::seconds(3600),
    );
    assert_held_then_sent(
        &state,
        first_seen + policy().outage_settle - secs(1),
        first_seen + policy().outage_settle,
    );
}

#[test]
fn row_8_a_possibly_rotated_mark_waits_out_the_request_and_a_skewed_clock_at_most_max_cooldown() {
    let policy = Policy {
        request_timeout: secs(30),
        ..policy()
    };
    let marked = |last_attempt: DateTime<Utc>| StoredTokens {
        state: TokenState::PossiblyRotated {
            since: last_attempt,
            attempts: 1,
            last_attempt,
            deadline: None,
        },
        ..document("rt", 3)
    };
    let state = apply(
        State::default(),
        Outcome::Loaded(Some(marked(utc()))),
        &policy,
        secs(0),
        utc(),
    );
    let at = |seconds: i64| utc() + chrono::Duration::seconds(seconds);
    assert!(matches!(
        decide(&state, &policy, secs(31), at(31)),
        Step::Fail(_)
    ));
    assert!(matches!(
        decide(&state, &policy, secs(32), at(32)),
        Step::Refresh(_)
    ));
    // The marking host's clock ran a day ahead: this host waits MAX_COOLDOWN, no more.
    let ahead = apply(
        State::default(),
        Outcome::Loaded(Some(marked(at(24 * 3600)))),
        &policy,
        secs(100),
        utc(),
    );
    let later = |d: Duration| utc() + chrono::Duration::from_std(d).unwrap();
    let just_before = secs(100) + MAX_COOLDOWN - secs(1);
    assert!(matches!(
        decide(&ahead, &policy, just_before, later(just_before)),
        Step::Fail(_)
    ));
    let after = secs(100) + MAX_COOLDOWN;
    assert!(matches!(
        decide(&ahead, &policy, after, later(after)),
        Step::Refresh(_)
    ));
}

#[test]
fn row_8_a_clock_ahead_of_the_marking_host_s_does_not_cut_the_in_flight_wait_short() {
    // Found by the simulation (seed 64): the store lost the lease of a request in flight
    // and a host whose wall clock ran ahead of the marker's sent the same token at once.
    let policy = Policy {
        request_timeout: secs(30),
        ..policy()
    };
    let marked = marked(document("rt", 3), 1);
    let state = apply(
        State::default(),
        Outcome::Loaded(Some(marked)),
        &policy,
        secs(100),
        utc(),
    );
    let hour_ahead = utc() + chrono::Duration::hours(1);
    assert!(matches!(
        decide(&state, &policy, secs(131), hour_ahead),
        Step::Fail(TokenError::OutcomeUnknown { .. })
    ));
    assert!(matches!(
        decide(&state, &policy, secs(132), hour_ahead),
        Step::Refresh(_)
    ));
}

#[test]
fn row_9_a_newcomer_reading_a_store_that_changed_instance_writes_it_back_and_waits_the_grace() {
    // A process started right after a failover or a restore knows nothing newer: the
    // instance change alone holds its refresh until hosts holding newer tokens wrote them
    // back.
    let state = read(State::default(), from_another_instance("rt-5", 5), secs(1));
    assert!(matches!(step(&state, secs(1)), Step::Save(_)));
    let written = state.document_to_save().unwrap();
    assert_eq!(written.lineage.restored_at, Some(utc()));
    assert!(!written.instance_changed);
    let state = applied(state, Outcome::Saved(6), secs(1));
    waits_the_grace_from_1_s(&state);
}

#[test]
fn row_9_a_mark_the_store_lost_under_a_write_back_numbered_as_it_is_written_back_again() {
    // This host saw the mark of a request in flight at sequence 7. The store then lost it,
    // and a host that never saw the mark wrote back its older copy, numbered 7 as well.
    let mut marked = possibly_rotated(1);
    marked.lineage.sequence = 7;
    let state = adopted_at_zero(document("rt", 3), &policy());
    let state = read(state, marked, secs(1));
    let mut written_back = document("rt", 1);
    written_back.lineage.sequence = 7;
    written_back.lineage.restored_at = Some(utc());
    let state = read(state, written_back, secs(2));
    let saved = state.document_to_save().expect("the mark is written back");
    assert!(matches!(
        saved.state,
        TokenState::PossiblyRotated { attempts: 1, .. }
    ));
    // Without the mark (a copy of what this host saw), the same document is simply read.
    let mut same = possibly_rotated(1);
    same.lineage.sequence = 7;
    same.version = 1;
    let state = adopted_at_zero(possibly_rotated(1), &policy());
    let state = read(state, same, secs(2));
    assert!(state.pending.is_none());
}

#[test]
fn row_9_written_back_tokens_are_not_refreshed_from_before_the_restore_grace() {
    let state = applied(rotated_twice(), Outcome::Loaded(None), secs(1));
    assert!(matches!(step(&state, secs(1)), Step::Save(_)));
    let state = applied(state, Outcome::Saved(1), secs(1));
    let state = applied(
        state,
        Outcome::RenewalRequested(RefreshToken::new("rt-3")),
        secs(1),
    );
    waits_the_grace_from_1_s(&state);
}

#[test]
fn row_9_the_grace_of_a_newer_write_back_runs_from_when_this_host_saw_it() {
    let state = applied(rotated_twice(), Outcome::Loaded(None), secs(1));
    let state = applied(state, Outcome::Saved(1), secs(1));
    let mut state = applied(
        state,
        Outcome::RenewalRequested(RefreshToken::new("rt-3")),
        secs(1),
    );
    // Another write-back, made later, that this host has not tracked yet: its grace is counted
    // from now, not from when the first one was seen.
    let later = utc() + chrono::Duration::seconds(100);
    state.tokens.as_mut().unwrap().lineage.restored_at = Some(later);
    let now = secs(100);
    let grace = policy().fleet_request_timeout + secs(2);
    match decide(&state, &policy(), now, later) {
        Step::Wait(until) => assert_eq!(until, Deadline(now + grace)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn row_8_another_attempt_s_mark_is_waited_out_from_when_this_host_saw_it() {
    // Marks written an hour ago by the senders' clocks: by the wall clock, nothing is in doubt.
    let marked = |attempts: u32, sequence: u64| {
        let mut tokens = document("rt", sequence);
        tokens.lineage.sequence = sequence;
        tokens.state = TokenState::PossiblyRotated {
            since: utc() - chrono::Duration::hours(1),
            attempts,
            last_attempt: utc() - chrono::Duration::hours(1)
                + chrono::Duration::seconds(i64::from(attempts)),
            deadline: None,
        };
        tokens
    };
    let state = read(State::default(), marked(1, 1), secs(0));
    // At 100 s another host's second attempt is marked: it may be in flight from then.
    let state = read(state, marked(2, 2), secs(100));
    assert!(matches!(
        decide(&state, &policy(), secs(101), utc()),
        Step::Fail(TokenError::OutcomeUnknown { .. })
    ));
    let settled = secs(100) + policy().outage_settle;
    assert!(matches!(
        decide(&state, &policy(), settled, utc()),
        Step::Refresh(_)
    ));
}

/// A refresh at `now` that brings the access token `access` (30 min), saved.
fn refreshed_to(state: State, access: &str, now: Duration) -> State {
    let mut new = session(chrono::Duration::minutes(30), None);
    new.access_token = AccessToken::new(access);
    saved(refreshed(state, new, now))
}

/// `state` after a caller reported the access token `access` rejected at `now`.
fn reported_rejected(state: State, access: &str, now: Duration) -> State {
    applied(
        state,
        Outcome::AccessRejected(Arc::new(AccessToken::new(access))),
        now,
    )
}

/// `state` after another endpoint rejected its access token at `now`.
fn rejected_at(state: State, now: Duration) -> State {
    let token = state.access.as_ref().unwrap().token.clone();
    applied(state, Outcome::AccessRejected(token), now)
}

/// The rejections in a row, and when the next refresh may go, if `state` fails with
/// `AccessRejected` at `now`.
fn access_rejected(state: &State, now: Duration) -> Option<(u32, DateTime<Utc>)> {
    match step(state, now) {
        Step::Fail(TokenError::AccessRejected {
            consecutive,
            retry_at,
        }) => Some((consecutive, retry_at)),
        _ => None,
    }
}

fn at(now: Duration) -> DateTime<Utc> {
    utc() + chrono::Duration::from_std(now).unwrap()
}

#[test]
fn row_10_fresh_access_tokens_rejected_in_a_row_back_off_the_refreshes() {
    // The first rejection: the minimum interval alone (row 11), as for any invalidation.
    let state = rejected_at(refreshed_to(State::default(), "at-1", secs(100)), secs(101));
    assert_eq!(state.rejections.unwrap().consecutive, 1);
    assert!(matches!(step(&state, secs(101)), Step::Wait(Deadline(d)) if d == secs(105)));
    // From the second in a row: the minimum interval × 2^(n − 1) after the last rejection.
    let state = rejected_at(refreshed_to(state, "at-2", secs(105)), secs(106));
    assert_eq!(access_rejected(&state, secs(106)), Some((2, at(secs(116)))));
    assert_eq!(access_rejected(&state, secs(115)), Some((2, at(secs(116)))));
    assert!(matches!(step(&state, secs(116)), Step::Refresh(_)));
    let state = rejected_at(refreshed_to(state, "at-3", secs(116)), secs(117));
    assert_eq!(access_rejected(&state, secs(117)), Some((3, at(secs(137)))));
    assert!(matches!(step(&state, secs(137)), Step::Refresh(_)));
    // Capped: however many in a row, at most MAX_COOLDOWN.
    let mut state = state;
    let mut now = secs(137);
    for n in 4..=20 {
        state = rejected_at(refreshed_to(state, &format!("at-{n}"), now), now);
        assert_eq!(state.rejections.unwrap().consecutive, n);
        let wait = policy().min_interval * 2u32.pow(n - 1).min(1 << 16);
        let wait = wait.min(MAX_COOLDOWN);
        assert_eq!(
            access_rejected(&state, now),
            Some((n, at(now + wait))),
            "{n}"
        );
        now += wait;
    }
    assert_eq!(access_rejected(&state, now - secs(1)).unwrap().1, at(now));
}

#[test]
fn row_10_a_token_reported_again_an_older_one_or_an_expired_one_does_not_count() {
    let state = rejected_at(refreshed_to(State::default(), "at-1", secs(100)), secs(101));
    let first = Arc::new(AccessToken::new("at-1"));
    // Every caller holding the token reports it: one rejection.
    let again = applied(state, Outcome::AccessRejected(first.clone()), secs(102));
    assert_eq!(again.rejections.unwrap().consecutive, 1);
    // A late report of the previous token, once a new one is held: not a rejection of it.
    let state = refreshed_to(again, "at-2", secs(105));
    let late = applied(state.clone(), Outcome::AccessRejected(first), secs(106));
    assert_eq!(late.rejections.unwrap().consecutive, 1);
    assert!(late.valid(secs(106)).is_some(), "the current token is kept");
    // The current token reported after its expiry: the expiry explains the 401.
    let expired = rejected_at(state, secs(105) + secs(30 * 60));
    assert_eq!(expired.rejections.unwrap().consecutive, 1);
}

#[test]
fn row_10_the_first_token_accepted_ends_the_backoff() {
    let state = rejected_at(refreshed_to(State::default(), "at-1", secs(100)), secs(101));
    let state = rejected_at(refreshed_to(state, "at-2", secs(105)), secs(106));
    assert!(access_rejected(&state, secs(106)).is_some());
    // A success reported for a token rejected before is not one.
    let state = applied(
        state,
        Outcome::AccessAccepted(Arc::new(AccessToken::new("at-2"))),
        secs(107),
    );
    assert!(access_rejected(&state, secs(107)).is_some());
    // Meanwhile another host's tokens are adopted, and served (the backoff holds back only this
    // host's refreshes); they are accepted.
    let peer = peer_document("rt-peer", 9, "at-peer", 30);
    let state = read(state, peer, secs(107));
    assert!(matches!(step(&state, secs(107)), Step::Serve));
    assert_eq!(
        state.rejections.unwrap().consecutive,
        2,
        "adopting is no success"
    );
    let state = applied(
        state,
        Outcome::AccessAccepted(Arc::new(AccessToken::new("at-peer"))),
        secs(108),
    );
    assert_eq!(state.rejections, None);
    // The next rejection is the first of a new run.
    let state = rejected_at(state, secs(109));
    assert_eq!(state.rejections.unwrap().consecutive, 1);
    assert!(access_rejected(&state, secs(109)).is_none());
}

#[test]
fn row_10_a_token_kept_until_its_refresh_point_ends_the_run() {
    let state = rejected_at(refreshed_to(State::default(), "at-1", secs(100)), secs(101));
    let state = refreshed_to(state, "at-2", secs(105));
    assert_eq!(
        state.rejections.unwrap().consecutive,
        1,
        "refreshed after a rejection"
    );
    // at-2 is never reported: its refresh point comes and it is renewed.
    let state = refreshed_to(state, "at-3", secs(105) + secs(29 * 60));
    assert_eq!(state.rejections, None);
}

#[test]
fn row_11_refreshes_keep_the_minimum_interval() {
    let state = saved(rotated_at(secs(100)));
    let token = state.access.as_ref().unwrap().token.clone();
    let state = applied(state, Outcome::AccessRejected(token), secs(101));
    assert!(matches!(step(&state, secs(101)), Step::Wait(Deadline(d)) if d == secs(105)));
    assert!(matches!(step(&state, secs(105)), Step::Refresh(_)));
}

#[test]
fn row_12_otherwise_refresh() {
    let state = loaded(document("rt", 1));
    assert!(matches!(step(&state, Duration::ZERO), Step::Refresh(_)));
}

// ----- The second table (outcomes) and the store's documents -----

#[test]
fn a_408_keeps_the_possibly_rotated_mark() {
    assert!(keeps_the_mark(408));
}

#[test]
fn a_500_502_504_and_every_5xx_but_501_and_503_keep_the_possibly_rotated_mark() {
    for status in [500, 502, 504].into_iter().chain(505..=599) {
        assert!(keeps_the_mark(status), "{status}");
    }
    // A gateway whose origin is still working, or answered late.
    for status in 520..=524 {
        assert!(keeps_the_mark(status), "{status}");
    }
}

#[test]
fn a_501_a_503_and_a_4xx_but_408_and_401_take_the_mark_back() {
    for status in [501, 503]
        .into_iter()
        .chain((400..=499).filter(|s| ![401, 408].contains(s)))
    {
        assert!(!keeps_the_mark(status), "{status}");
    }
    // 401 is its own case: dead.
    let state = failed(
        with_access("rt", secs(2)),
        crate::response::error_for_status_code(401),
    );
    assert!(matches!(
        state.tokens.unwrap().state,
        TokenState::Dead { .. }
    ));
}

#[test]
fn a_document_another_process_wrote_is_adopted() {
    let state = with_access("rt", secs(600));
    let state = read(state, document("rt-sibling", 2), secs(1));
    let tokens = state.tokens.unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-sibling");
    assert_eq!(tokens.version, 2);
    assert!(state.access.is_none());
}

#[test]
fn an_emptied_store_gets_the_known_tokens_back() {
    let state = applied(with_access("rt", secs(600)), Outcome::Loaded(None), secs(1));
    assert!(matches!(step(&state, secs(1)), Step::Save(_)));
    assert_eq!(state.tokens.as_ref().unwrap().version, 0);
    assert!(
        state.valid(secs(1)).is_some(),
        "the access token is still served"
    );
}

#[test]
fn a_pending_rotation_survives_a_state_change_of_its_predecessor() {
    let state = rotated_at(Duration::ZERO);
    let stored = marked(document("rt", 7), 1);
    let state = read(state, stored, Duration::ZERO);
    let tokens = state.tokens.as_ref().unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-new");
    assert_eq!(tokens.version, 7, "saved over the version found");
    assert!(state.pending.is_some());
}

#[test]
fn a_pending_rotation_is_never_dropped_for_another_document_but_an_operator_is_followed() {
    let state = rotated_at(Duration::ZERO);
    // Another host wrote while this one held new tokens: they are the only valid ones if
    // GenLogs rotated for us, so they are kept and saved over it.
    let kept = read(state.clone(), document("rt-other", 9), Duration::ZERO);
    let tokens = kept.tokens.as_ref().unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-new");
    assert_eq!(tokens.version, 9);
    assert!(matches!(step(&kept, Duration::ZERO), Step::Save(_)));
    // An operator's re-seed (a newer generation) is followed.
    let followed = read(state, operator_document("rt-operator", 9), Duration::ZERO);
    assert_eq!(
        followed
            .tokens
            .as_ref()
            .unwrap()
            .refresh_token
            .expose_secret(),
        "rt-operator"
    );
    assert!(followed.pending.is_none());
}

#[test]
fn a_replacement_overwrites_whatever_is_stored() {
    let state = applied(
        State::default(),
        Outcome::Replaced(document("rt-new", 0)),
        Duration::ZERO,
    );
    let state = read(state, document("rt-other", 4), Duration::ZERO);
    assert_eq!(
        state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
        "rt-new"
    );
    assert_eq!(state.tokens.as_ref().unwrap().version, 4);
    assert!(matches!(step(&state, Duration::ZERO), Step::Save(_)));
}

#[test]
fn the_lifetime_is_read_on_the_servers_clock_within_the_skew_bound() {
    // The local clock is 30 minutes behind the server: the token lives 30 minutes from the
    // server's Date (less the Date's one-second resolution), not 60.
    let server = utc() + chrono::Duration::minutes(30);
    let state = refreshed(
        State::default(),
        session(chrono::Duration::minutes(30), Some(server)),
        Duration::ZERO,
    );
    assert_eq!(
        state.access.as_ref().unwrap().expires,
        Deadline(secs(30 * 60 - 1))
    );
    assert_eq!(
        state.access.as_ref().unwrap().refresh_at,
        Deadline(secs(29 * 60 - 1))
    );
}

#[test]
fn a_date_beyond_the_skew_bound_is_not_believed() {
    for server in [
        DateTime::UNIX_EPOCH,
        utc() + chrono::Duration::days(365 * 500),
    ] {
        let mut session = session(chrono::Duration::zero(), Some(server));
        session.access_expires = utc() + chrono::Duration::minutes(30);
        let state = refreshed(State::default(), session, Duration::ZERO);
        assert_eq!(
            state.access.as_ref().unwrap().expires,
            Deadline(secs(30 * 60)),
            "{server}"
        );
    }
}

#[test]
fn lifetimes_are_clamped_between_the_minimum_interval_and_a_day() {
    let expired = refreshed(
        State::default(),
        session(chrono::Duration::minutes(-5), None),
        secs(10),
    );
    let access = expired.access.as_ref().unwrap();
    assert_eq!(access.expires, Deadline(secs(15)));
    assert_eq!(access.refresh_at, Deadline(secs(15)));
    let mut far = session(chrono::Duration::zero(), None);
    far.access_expires = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .unwrap()
        .to_utc();
    let far = refreshed(State::default(), far, Duration::ZERO);
    assert_eq!(
        far.access.as_ref().unwrap().expires,
        Deadline(secs(24 * 3600))
    );
}

#[test]
fn a_lifetime_shorter_than_the_margin_is_renewed_at_half_of_it() {
    let state = refreshed(
        State::default(),
        session(chrono::Duration::seconds(30), None),
        Duration::ZERO,
    );
    assert_eq!(
        state.access.as_ref().unwrap().refresh_at,
        Deadline(secs(15))
    );
    let jittered = apply(
        State::default(),
        Outcome::Refreshed {
            sent: RefreshToken::new("rt"),
            session: Box::new(session(chrono::Duration::minutes(30), None)),
            jitter: 1.0,
        },
        &Policy {
            jitter: 0.5,
            ..policy()
        },
        Duration::ZERO,
        utc(),
    );
    assert_eq!(
        jittered.access.as_ref().unwrap().refresh_at,
        Deadline(secs(30 * 60 - 90)),
        "up to half the margin earlier"
    );
}

#[test]
fn a_token_is_handed_out_only_while_the_minimum_validity_is_left() {
    let policy = Policy {
        min_validity: secs(10),
        ..policy()
    };
    let refreshed = |lifetime: i64, date: Option<DateTime<Utc>>| {
        let mut session = session(chrono::Duration::zero(), date);
        // Expiring `lifetime` after the true time, whatever the `Date` says.
        session.access_expires = utc() + chrono::Duration::seconds(lifetime);
        apply(
            State::default(),
            Outcome::Refreshed {
                sent: RefreshToken::new("rt"),
                session: Box::new(session),
                jitter: 0.0,
            },
            &policy,
            Duration::ZERO,
            utc(),
        )
    };
    // 30 minutes: served until 10 s before its expiry, renewed a margin before its expiry.
    let state = refreshed(30 * 60, None);
    let access = state.access.clone().unwrap();
    assert_eq!(access.serve_until, Deadline(secs(30 * 60 - 10)));
    assert_eq!(access.expires, Deadline(secs(30 * 60)));
    assert_eq!(access.refresh_at, Deadline(secs(30 * 60 - 60)));
    let saved = apply(state, Outcome::Saved(2), &policy, secs(1), utc());
    assert!(saved.valid(secs(30 * 60 - 11)).is_some());
    assert!(saved.valid(secs(30 * 60 - 10)).is_none());
    // A server `Date` one second behind the true time: lifetimes are measured from a second
    // after it, so the token is still never handed out in its last 9 s.
    let lagging = refreshed(30 * 60, Some(utc() - chrono::Duration::seconds(1)));
    assert_eq!(
        lagging.access.as_ref().unwrap().serve_until,
        Deadline(secs(30 * 60 - 10))
    );
    // 12 s: less than twice the minimum validity; half of it is kept instead.
    let short = refreshed(12, None);
    let access = short.access.as_ref().unwrap();
    assert_eq!(access.serve_until, Deadline(secs(6)));
    assert!(access.refresh_at <= access.serve_until);
    // 6 s: never handed out for less than the minimum refresh interval (5 s), as no new
    // token may be fetched sooner.
    let shortest = refreshed(6, None);
    assert_eq!(
        shortest.access.as_ref().unwrap().serve_until,
        Deadline(secs(5))
    );
    // Adopted from the store with 100 s left: served for 90 s.
    let adopted = adopted_at_zero(
        StoredTokens {
            access_token: Some(AccessToken::new("at")),
            access_expires: Some(utc() + chrono::Duration::seconds(100)),
            ..document("rt", 1)
        },
        &policy,
    );
    assert_eq!(
        adopted.access.as_ref().unwrap().serve_until,
        Deadline(secs(90))
    );
    // Adopted with 8 s left: not handed out at all (a refresh may be sent at once); with
    // 15 s left, handed out for 5 s.
    for (left, served) in [(8, None), (15, Some(secs(5)))] {
        let adopted = adopted_at_zero(
            StoredTokens {
                access_token: Some(AccessToken::new("at")),
                access_expires: Some(utc() + chrono::Duration::seconds(left)),
                ..document("rt", 1)
            },
            &policy,
        );
        match served {
            None => assert!(adopted.valid(Duration::ZERO).is_none(), "{left} s left"),
            Some(served) => {
                assert!(adopted.valid(served - Duration::from_millis(1)).is_some());
                assert!(adopted.valid(served).is_none(), "{left} s left");
            }
        }
    }
}

#[test]
fn a_renewal_makes_a_refresh_due_but_keeps_serving_the_token_until_the_grant_changes() {
    let state = with_access("rt", secs(600));
    assert!(matches!(
        decide(&state, &policy(), Duration::ZERO, utc()),
        Step::Serve
    ));
    let asked = applied(
        state,
        Outcome::RenewalRequested(RefreshToken::new("rt")),
        Duration::ZERO,
    );
    assert!(asked.fresh(Duration::ZERO).is_none(), "a refresh is due");
    assert!(
        asked.valid(Duration::ZERO).is_some(),
        "the token is still served"
    );
    assert!(matches!(
        decide(&asked, &policy(), Duration::ZERO, utc()),
        Step::Refresh(_)
    ));
    // Another process renewed meanwhile: the store's newer tokens satisfy the request.
    let adopted = read(
        asked.clone(),
        StoredTokens {
            access_token: Some(AccessToken::new("at-2")),
            access_expires: Some(utc() + chrono::Duration::minutes(30)),
            ..document("rt-2", 2)
        },
        Duration::ZERO,
    );
    assert!(matches!(
        decide(&adopted, &policy(), Duration::ZERO, utc()),
        Step::Serve
    ));
    // A request for an older grant than the one held asks for nothing.
    let stale = applied(
        with_access("rt-2", secs(600)),
        Outcome::RenewalRequested(RefreshToken::new("rt")),
        Duration::ZERO,
    );
    assert!(stale.fresh(Duration::ZERO).is_some());
}

#[test]
fn a_rejected_token_is_dropped_also_while_a_rotation_is_being_saved() {
    let rotated = rotated_at(secs(1));
    assert_eq!(
        rotated
            .valid(secs(1))
            .map(|t| t.expose_secret().to_string()),
        Some("at".to_string()),
        "the pre-rotation token is served until the rotation is saved"
    );
    let rejected = reported_rejected(rotated, "at", secs(1));
    assert!(rejected.valid(secs(1)).is_none());
}

#[test]
fn a_401_marks_the_token_dead_and_after_an_unknown_outcome_says_so() {
    let state = failed(with_access("rt", secs(600)), rejected());
    assert!(matches!(
        state.tokens.as_ref().unwrap().state,
        TokenState::Dead {
            reason: NewTokensReason::RefreshTokenRejected,
            ..
        }
    ));
    assert!(
        matches!(step(&state, Duration::ZERO), Step::Save(_)),
        "the dead mark is shared through the store"
    );

    let state = saved(failed(with_access("rt", secs(600)), unknown()));
    assert!(matches!(
        state.tokens.as_ref().unwrap().state,
        TokenState::PossiblyRotated { attempts: 1, .. }
    ));
    let state = failed(state, rejected());
    assert!(matches!(
        state.tokens.as_ref().unwrap().state,
        TokenState::Dead {
            reason: NewTokensReason::RejectedAfterUnknownOutcome,
            ..
        }
    ));
}

#[test]
fn unknown_outcomes_and_500_502_504_mark_the_token_possibly_rotated_and_cool_down() {
    for error in [
        unknown(),
        Error::Server {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: None,
            retry_after: None,
        },
        Error::Server {
            status: StatusCode::BAD_GATEWAY,
            message: None,
            retry_after: None,
        },
        Error::Server {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: None,
            retry_after: None,
        },
    ] {
        let state = failed(with_access("rt", secs(600)), error);
        assert!(matches!(
            state.tokens.as_ref().unwrap().state,
            TokenState::PossiblyRotated { .. }
        ));
        assert!(
            state.pending.is_none(),
            "the mark saved before sending stays"
        );
        assert!(
            state.valid(secs(4)).is_some(),
            "the cached token is still served"
        );
    }
    // Expired access token: callers learn the refresh failed until the cooldown is over.
    let state = failed(with_access("rt", secs(2)), unknown());
    assert!(matches!(
        step(&state, secs(4)),
        Step::Fail(TokenError::Refresh(_))
    ));
    assert!(
        matches!(step(&state, secs(5)), Step::Refresh(_)),
        "retried once the cooldown is over"
    );
}

#[test]
fn a_recovered_refresh_token_replaces_the_sent_one() {
    let error = Error::OutcomeUnknown {
        reason: UnknownOutcome::Undecodable {
            status: StatusCode::OK,
            problem: "x".into(),
        },
        recovered: Some(crate::error::RecoveredRefreshToken {
            token: RefreshToken::new("rt-recovered"),
            expires: None,
        }),
        source: None,
    };
    let state = failed(with_access("rt", secs(600)), error);
    let tokens = state.tokens.as_ref().unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-recovered");
    assert_eq!(tokens.state, TokenState::Usable);
    assert!(state.pending.is_some() && state.failure.is_some());
    // The sent token was spent: remembered, and listed in the document, as rotated away.
    let sent = RefreshToken::new("rt");
    assert!(state.knows_rotated(&policy().fingerprints, &sent));
    assert!(policy()
        .fingerprints
        .known(&sent, tokens.lineage.rotated.iter()));
}

#[test]
fn a_refresh_keeps_the_document_s_version_and_lineage_and_records_when_it_was_issued() {
    let mut stored = document("rt", 7);
    stored.lineage.generation = 3;
    stored.lineage.sequence = 11;
    let state = loaded(stored);
    let state = refreshed(state, session(chrono::Duration::minutes(30), None), secs(1));
    let tokens = state.tokens.as_ref().unwrap();
    // Saved over the document read (its version), in its generation, listing the sent token.
    assert_eq!(tokens.version, 7);
    assert_eq!(tokens.lineage.generation, 3);
    assert_eq!(tokens.lineage.sequence, 11);
    assert!(policy()
        .fingerprints
        .known(&RefreshToken::new("rt"), tokens.lineage.rotated.iter()));
    assert_eq!(tokens.refreshed_at, Some(utc()));
}

#[test]
fn a_replacement_keeps_what_this_host_remembers() {
    let state = rejected_at(refreshed_to(State::default(), "at-1", secs(100)), secs(101));
    let before = (state.seen, state.rejections);
    let replaced = applied(
        state,
        Outcome::Replaced(document("rt-seeded", 0)),
        secs(102),
    );
    // The token rotated away, the newest position seen, the rejections in a row.
    assert!(replaced.knows_rotated(&policy().fingerprints, &RefreshToken::new("rt")));
    assert!(
        replaced.seen >= before.0 && before.0 != (0, 0),
        "{:?}",
        replaced.seen
    );
    assert_eq!(replaced.rejections, before.1);
}

#[test]
fn cooldowns_back_off_and_respect_a_capped_retry_after() {
    let mut state = with_access("rt", secs(30));
    let connect_like = || Error::Server {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: None,
        retry_after: None,
    };
    let mut waits = Vec::new();
    for _ in 0..4 {
        state = failed(state, connect_like());
        waits.push(state.failure.as_ref().unwrap().retry_at.0);
    }
    assert_eq!(waits, [secs(5), secs(10), secs(20), secs(40)]);
    let state = failed(
        with_access("rt", secs(30)),
        Error::RateLimited {
            retry_after: Some(Duration::MAX),
            message: None,
        },
    );
    assert_eq!(state.failure.as_ref().unwrap().retry_at.0, MAX_COOLDOWN);
    let state = failed(
        with_access("rt", secs(30)),
        Error::RateLimited {
            retry_after: Some(secs(120)),
            message: None,
        },
    );
    assert_eq!(state.failure.as_ref().unwrap().retry_at.0, secs(120));
}

#[test]
fn deadlines_saturate() {
    assert_eq!(
        Deadline::after(Duration::MAX, Duration::MAX),
        Deadline(Duration::MAX)
    );
    assert_eq!(Deadline(secs(1)).minus(secs(5)), Deadline(Duration::ZERO));
}

#[test]
fn only_the_current_access_token_can_be_reported_rejected() {
    let state = with_access("rt", secs(600));
    let state = reported_rejected(state, "an-older-one", secs(1));
    assert!(state.valid(secs(1)).is_some());
    let state = reported_rejected(state, "at", secs(1));
    assert!(state.valid(secs(1)).is_none());
}

#[test]
fn a_rejected_access_token_is_never_held_again_when_a_document_brings_it_back() {
    let state = applied(
        with_access("rt", secs(600)),
        Outcome::AccessRejected(Arc::new(AccessToken::new("at"))),
        secs(1),
    );
    assert!(state.valid(secs(1)).is_none());
    // A peer marks the same tokens possibly rotated: the document, rejected token and all,
    // is read again at a newer version.
    let marked = marked(
        StoredTokens {
            access_token: Some(AccessToken::new("at")),
            access_expires: Some(utc() + chrono::Duration::minutes(10)),
            ..document("rt", 2)
        },
        1,
    );
    let state = read(state, marked.clone(), secs(2));
    assert_eq!(state.tokens.as_ref().unwrap().version, 2, "adopted");
    assert!(
        state.valid(secs(2)).is_none(),
        "the rejected token came back"
    );
    // An operator's write holding it, and another rotation's document, neither.
    let state = applied(
        state,
        Outcome::Replaced(StoredTokens {
            state: TokenState::Usable,
            ..marked.clone()
        }),
        secs(3),
    );
    assert!(state.valid(secs(3)).is_none());
    // A new access token is handed out as usual.
    let state = saved(refreshed(
        state,
        session(chrono::Duration::minutes(30), None),
        secs(4),
    ));
    assert_eq!(
        state.valid(secs(4)).map(|t| t.expose_secret()),
        Some("at-new")
    );
}

#[test]
fn the_outage_settle_covers_a_hanging_call_a_retry_and_the_save() {
    assert_eq!(outage_settle(Duration::from_secs(1)), secs(4));
    // RedisStore's default bound (twice its 2 s timeout), with a 3 s replica wait.
    assert_eq!(outage_settle(secs(7)), secs(16));
}

#[test]
fn an_aborted_send_takes_back_the_mark_and_keeps_an_invalidation_made_meanwhile() {
    let state = with_access("rt", secs(600));
    let served = state
        .fresh(Duration::ZERO)
        .cloned()
        .expect("a served token");
    let marked = applied(state, Outcome::Sending, secs(1));
    assert!(marked.pending.is_some());
    // Another caller reports the access token rejected while the mark is being saved.
    let invalidated = applied(marked, Outcome::AccessRejected(served), secs(1));
    let aborted = applied(invalidated, Outcome::SendAborted, secs(1));
    let tokens = aborted.tokens.as_ref().unwrap();
    assert_eq!(tokens.state, TokenState::Usable, "the mark is taken back");
    assert!(aborted.pending.is_none());
    assert!(aborted.last_refresh.is_none(), "no attempt was made");
    assert!(
        aborted.fresh(secs(1)).is_none(),
        "the invalidation made meanwhile is kept"
    );
}

#[test]
fn a_failed_task_holds_background_refreshes_for_a_cooldown() {
    let state = applied(with_access("rt", secs(600)), Outcome::TaskFailed, secs(3));
    assert_eq!(
        state.quiet_until,
        Some(Deadline(secs(3) + policy().cooldown))
    );
}

#[test]
fn a_store_read_notes_what_it_did_for_the_actor_to_log() {
    let adopted = read(
        with_access("rt", secs(600)),
        document("rt-other", 7),
        secs(1),
    );
    assert_eq!(adopted.note, Some(LoadNote::Adopted));
    let unchanged = adopted.tokens.clone();
    let again = applied(adopted, Outcome::Loaded(unchanged), secs(2));
    assert_eq!(
        again.note, None,
        "nothing to say about an unchanged document"
    );
}

#[test]
fn only_a_pending_new_refresh_token_counts_as_unsaved() {
    let state = with_access("rt", secs(600));
    assert!(state.unsaved_refresh_token().is_none());
    let marked = applied(state, Outcome::Sending, secs(1));
    assert!(
        marked.unsaved_refresh_token().is_none(),
        "a state mark is not a token"
    );
    let rotated = rotated_at(Duration::ZERO);
    let unsaved = rotated.unsaved_refresh_token().unwrap();
    assert_eq!(unsaved.refresh_token.expose_secret(), "rt-new");
    assert!(saved(rotated).unsaved_refresh_token().is_none());
    let replaced = applied(
        State::default(),
        Outcome::Replaced(document("rt-operator", 0)),
        Duration::ZERO,
    );
    assert!(replaced.unsaved_refresh_token().is_some());
}

#[test]
fn every_attempt_is_marked_before_it_is_sent() {
    let state = applied(with_access("rt", secs(30)), Outcome::Sending, secs(20));
    assert!(matches!(
        state.tokens.as_ref().unwrap().state,
        TokenState::PossiblyRotated { attempts: 1, .. }
    ));
    assert!(state.unsaved_news_of_a_sent_token());
    assert!(matches!(step(&state, secs(20)), Step::Save(_)));
}

#[test]
fn a_store_that_went_back_to_the_rotated_away_tokens_gets_the_newer_ones_again() {
    let state = saved(rotated_at(Duration::ZERO));
    assert_eq!(state.tokens.as_ref().unwrap().version, 2);
    // A failover lost the save: the store holds version 1 with the token that was sent.
    let state = read(state, document("rt", 1), secs(1));
    let tokens = state.tokens.as_ref().unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-new");
    assert_eq!(tokens.version, 1);
    assert!(matches!(step(&state, secs(1)), Step::Save(_)));
    // A document from before what this host has seen, with a token it never saw rotated,
    // is not adopted either: the newer tokens go back.
    let state = read(saved(state), document("rt-older", 1), secs(2));
    assert_eq!(
        state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
        "rt-new"
    );
    assert!(matches!(step(&state, secs(2)), Step::Save(_)));
    // An operator's new document at a lower version is adopted: its generation is newer.
    let state = read(saved(state), operator_document("rt-operator", 1), secs(3));
    assert_eq!(
        state.tokens.unwrap().refresh_token.expose_secret(),
        "rt-operator"
    );
}

#[test]
fn a_host_whose_token_was_rotated_away_adopts_its_successor_numbered_below_what_it_saw() {
    // This host saw the grant at sequence 10 (on an instance whose writes were lost) and
    // holds rt. Another host rotated rt to rt-2 and saved it after two instance changes,
    // at sequence 5, with rt's fingerprint among the rotated-away ones.
    let mut state = with_access("rt", secs(600));
    state.seen = (0, 10);
    let mut successor = document("rt-2", 3);
    successor.lineage.sequence = 5;
    successor.lineage.rotated = vec![policy().fingerprints.fingerprint(&RefreshToken::new("rt"))];
    let state = read(state, successor.clone(), secs(1));
    // Not written back over its successor: adopted, and saved again numbered past what this
    // host has seen, with the restore grace.
    let tokens = state.tokens.as_ref().unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-2");
    assert!(tokens.lineage.restored_at.is_some());
    let Step::Save(resaved) = step(&state, secs(1)) else {
        panic!("{:?}", step(&state, secs(1)))
    };
    assert_eq!(resaved.refresh_token.expose_secret(), "rt-2");
    assert!(resaved.lineage.sequence > 10, "{:?}", resaved.lineage);
    let state = saved(state);
    // Read again (the store watch): unchanged, nothing more to write: no war.
    let state = read(
        state,
        StoredTokens {
            version: 4,
            ..*resaved
        },
        secs(3),
    );
    assert!(state.pending.is_none());
    assert!(!matches!(step(&state, secs(3)), Step::Save(_)));

    // The same with a write-back of rt already pending (it read an older document first).
    let mut state = with_access("rt", secs(600));
    state.seen = (0, 10);
    let state = read(state, document("rt-0", 1), secs(1));
    assert!(state.pending.is_some(), "rt-0 is older: rt goes back");
    let state = read(state, successor, secs(2));
    assert_eq!(
        state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
        "rt-2"
    );
    assert!(matches!(
        state.pending,
        Some(Pending {
            rotation: false,
            ..
        })
    ));

    // A rotation of this host's (rt → rt-3) that a peer already spent (rt-3 → rt-4, its
    // fingerprint in the document): the peer's successor wins, not the unsaved rotation.
    let mut state = with_access("rt", secs(600));
    let mut session = session(chrono::Duration::minutes(30), None);
    session.refresh_token = RefreshToken::new("rt-3");
    state = applied(
        state,
        Outcome::Refreshed {
            sent: RefreshToken::new("rt"),
            session: Box::new(session),
            jitter: 0.0,
        },
        secs(1),
    );
    assert!(matches!(
        state.pending,
        Some(Pending { rotation: true, .. })
    ));
    let mut spent = document("rt-4", 5);
    spent.lineage.sequence = 3;
    spent.lineage.rotated = vec![policy()
        .fingerprints
        .fingerprint(&RefreshToken::new("rt-3"))];
    let state = read(state, spent, secs(2));
    assert_eq!(
        state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
        "rt-4"
    );
}

#[test]
fn an_operator_s_document_is_followed_and_never_written_over_even_with_a_token_known_rotated() {
    // With nothing unsaved: a new token is followed, and the actor logs it as the operator's.
    let followed = read(
        saved(with_access("rt", secs(600))),
        operator_document("rt-operator", 5),
        secs(1),
    );
    assert_eq!(followed.note, Some(LoadNote::OperatorFollowed));
    assert!(followed.pending.is_none());
    // An operator re-seeds a token this host knows was rotated away (rt, two rotations ago):
    // followed too, not written over with rt-3, and never sent either.
    let state = read(rotated_twice(), operator_document("rt", 5), secs(1));
    assert_eq!(state.note, Some(LoadNote::OperatorFollowed));
    assert_eq!(
        state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
        "rt"
    );
    assert!(state.pending.is_none(), "nothing written over it");
    assert!(matches!(
        step(&state, secs(1)),
        Step::Fail(TokenError::Store(_))
    ));
}

#[test]
fn a_successor_numbered_at_what_this_host_saw_is_adopted_without_a_write() {
    // As in the test above, but the successor is numbered exactly at the position this host
    // saw, not below it: nothing needs to be saved again past it.
    let mut state = with_access("rt", secs(600));
    state.seen = (0, 10);
    let mut successor = peer_document("rt-2", 3, "at-2", 30);
    successor.lineage.sequence = 10;
    successor.lineage.rotated = vec![policy().fingerprints.fingerprint(&RefreshToken::new("rt"))];
    let state = read(state, successor, secs(1));
    let tokens = state.tokens.as_ref().unwrap();
    assert_eq!(tokens.refresh_token.expose_secret(), "rt-2");
    assert!(tokens.lineage.restored_at.is_none(), "no restore grace");
    assert!(state.pending.is_none(), "no write");
    assert!(matches!(step(&state, secs(1)), Step::Serve));
}

#[test]
fn a_write_back_pending_over_an_older_token_replaces_it_however_it_is_numbered() {
    // This host saw rt at sequence 10; the store went back to rt-old at sequence 5, so rt is
    // to be written back over rt-old.
    let mut state = saved(with_access("rt", secs(600)));
    state.seen = (0, 10);
    let mut older = document("rt-old", 3);
    older.lineage.sequence = 5;
    let state = read(state, older, secs(1));
    assert!(matches!(state.note, Some(LoadNote::WroteBack { .. })));
    // Before that save, another host that never saw rt writes rt-old back, numbered past what
    // this host saw: rt-old is still what rt replaced, so rt still goes over it.
    let mut rewritten = document("rt-old", 4);
    rewritten.lineage.sequence = 12;
    let state = read(state, rewritten, secs(2));
    assert_eq!(
        state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
        "rt"
    );
    let Step::Save(document) = step(&state, secs(2)) else {
        panic!("{:?}", step(&state, secs(2)))
    };
    assert_eq!(document.refresh_token.expose_secret(), "rt");
    assert_eq!(document.version, 4, "saved over the version found");
    assert!(document.lineage.sequence > 12, "{:?}", document.lineage);
}

#[test]
fn a_server_that_answers_with_the_same_refresh_token_did_not_rotate_it() {
    let mut same = session(chrono::Duration::minutes(30), None);
    same.refresh_token = RefreshToken::new("rt");
    let state = saved(applied(
        with_access("rt", secs(600)),
        Outcome::Refreshed {
            sent: RefreshToken::new("rt"),
            session: Box::new(same),
            jitter: 0.0,
        },
        Duration::ZERO,
    ));
    assert!(!state.knows_rotated(&policy().fingerprints, &RefreshToken::new("rt")));
    assert!(state.tokens.as_ref().unwrap().lineage.rotated.is_empty());
}

#[test]
fn the_same_document_read_from_another_instance_is_written_back_with_the_grace() {
    let current = rotated_twice().tokens.unwrap();
    let mut moved = current.clone();
    moved.instance_changed = true;
    let state = read(rotated_twice(), moved, secs(1));
    let written = state.document_to_save().expect("written back");
    assert_eq!(written.refresh_token.expose_secret(), "rt-3");
    assert_eq!(written.lineage.restored_at, Some(utc()));
    // Read from the instance that saved it, it is simply current.
    let state = read(rotated_twice(), current, secs(1));
    assert!(state.pending.is_none());
}

#[test]
fn an_adopted_short_lived_token_is_renewed_at_half_of_what_is_left() {
    let state = with_access("rt", secs(30));
    assert_eq!(
        state.access.as_ref().unwrap().refresh_at,
        Deadline(secs(15))
    );
    let state = with_access("rt", secs(4));
    assert_eq!(
        state.access.as_ref().unwrap().refresh_at,
        Deadline(secs(4)),
        "never sooner than the minimum interval while it lasts"
    );
}

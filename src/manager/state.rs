//! The manager's pure core: what it knows ([`State`]), what to do next ([`decide`]) and what an
//! outcome changes ([`apply`]). No I/O and no clock reads: time comes in as arguments, so every
//! row of the tables below is a unit test with fixed times.
//!
//! `decide` runs inside a refresh task, under the store's lock, after the store was read:
//!
//! | # | what the state says (first match wins)                                  | step      |
//! |---|-------------------------------------------------------------------------|-----------|
//! | 1 | the access token is saved, before its refresh point, and no renewal of its grant is pending | `Serve` |
//! | 2 | something in memory is not in the store yet (rotation, state, restore)  | `Save`    |
//! | 3 | no tokens at all                                                        | `Fail` (new tokens: store empty) |
//! | 4 | the refresh token is marked dead (by any process)                       | `Fail` (new tokens: the reason) |
//! | 5 | the refresh token's own expiry has passed                               | `Fail` (new tokens: expired) |
//! | 6 | the refresh token is one this host knows was rotated away (a fingerprint it remembers) | `Fail` (store: never sent; a host holding newer tokens writes them back) |
//! | 7 | this process's last refresh failed and its cooldown has not passed      | `Fail` (the refresh error) |
//! | 8 | the token is possibly rotated (by any process) and the wait since the last attempt has not passed: the backoff, at least the marking attempt's request timeout (the sender's own, recorded in the mark as its deadline, or this host's if longer; the attempt may still be in flight; also on this host's monotonic clock since it first saw the mark, so a wall clock ahead of the marker's cannot cut it short), at most `MAX_COOLDOWN` from when this host first saw the mark; and not before the outage settle (`outage_settle`: twice the store's call bound, the pending-save retry and 1 s) after this host first saw the mark, nor after the store answered again when this host found it unreachable on any call (the outage may have outlived the marking host's lease while it held an unsaved rotation) | `Fail` (outcome unknown) |
//! | 9 | the tokens were written back into a store that went back or came back empty, less than `RESTORE_GRACE` (at least the fleet's longest request timeout, this host's unless configured longer, + 2 s: a request in flight, of any host, may still rotate) ago, on this host's clock | `Wait` until then |
//! | 10 | the last refresh is more recent than the minimum interval              | `Wait` until it is |
//! | 11 | otherwise                                                               | `Refresh`: mark the attempt in the store, then send |
//!
//! The cooldowns (rows 7 and 8) only hold back sending: the store is read before `decide`, and
//! row 1 serves a valid token another process saved meanwhile, whatever the cooldown (a token
//! past its refresh point but still valid is handed out by the shell while `Fail` stands).
//!
//! `apply` folds in what happened:
//!
//! | outcome | new state |
//! |---------|-----------|
//! | store read (any) | the fingerprints of rotated-away tokens it lists are remembered (at most 64) |
//! | store read, nothing pending, an operator's newer generation | adopt it |
//! | store read, nothing pending, its token known rotated away, or from before what this host has seen (generation, sequence) with another token | the store went back: ours are written back over it (pending save, marked written back) |
//! | store read, nothing pending, document differs otherwise | adopt it (another process wrote it) |
//! | store read, nothing pending, store empty but tokens known | write ours back (pending save over nothing, marked written back) |
//! | store read, a document there that cannot be read, while saving a replacement (or other news over a corrupt file; never over a document another key may have encrypted) | as an empty store, the pending save made over that document's version |
//! | store read, the store answers from another server instance than the one that saved it (restarted, failed over, restored) | as above, then whatever this host now holds (its own, or the document adopted) is written back, marked written back: the restore grace (row 9) holds everyone's next refresh, the newcomer's too |
//! | store read, a save pending, an operator's newer generation | adopt it, drop ours |
//! | store read, a save pending otherwise | keep ours, at the document's version (a pending rotation is never dropped) |
//! | saved as version `v` | nothing pending, version `v`; the document written is numbered past everything seen and lists the most recent 16 rotated-away fingerprints |
//! | about to send | the token is marked possibly rotated (attempts + 1, last attempt now): saved before the request, so a crash or a lost answer leaves the doubt in the store |
//! | refreshed | new tokens, pending save, the sent token's fingerprint remembered; lifetime on the server's clock when its `Date` is within the skew bound, clamped to `[min interval, max lifetime]`; refresh point at `min(margin, lifetime / 2) × (1 + jitter)` before expiry |
//! | 401 | dead (after an unknown outcome: "rejected after an unknown outcome"), pending save |
//! | unknown outcome, 408, or any 5xx but 501 and 503 (`Error::may_have_spent_token`: the request may still commit) | stays possibly rotated; cooldown |
//! | undecodable success with a readable refresh token | the recovered token, usable, pending save, cooldown |
//! | any other failure (connect, 429, 501, 503, 403, another 4xx): not processed | the mark is taken back (pending save); cooldown: `max(cooldown × 2^(failures − 1), Retry-After)`, at most [`MAX_COOLDOWN`] |
//! | replaced by the caller | the new tokens at a new operator generation, pending save that overrides whatever is stored |
//! | access token reported rejected | that access token is dropped, and its fingerprint remembered (the last 8, in memory): it is never held again, whatever document brings it back (a peer's mark re-read, an operator's write, a store gone back) |
//! | the store did not answer | remembered: the next read starts the outage settle of row 8 |
//! | renewal of the grant asked for | no token is fresh until the refresh token differs from the one named (here or by another process); the current access token is still handed out |

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::manager::TokenError;
use crate::secret::{AccessToken, RefreshToken};
use crate::session::Session;
use crate::store::{
    Fingerprint, FingerprintKey, NewTokensReason, StoreError, StoredTokens, TokenHealth,
    TokenState, DOCUMENT_FINGERPRINTS, RESTORE_GRACE,
};

/// How many fingerprints of rotated-away refresh tokens a host remembers (the most recent).
const HOST_FINGERPRINTS: usize = 64;

/// How many access tokens reported rejected a host remembers (the most recent), so that none of
/// them is handed out again when a document holding it is read again.
const REJECTED_ACCESS: usize = 8;

/// How long after the store answers again a holder of an unsaved rotation may take to save
/// it, for a store whose calls take at most `call_bound`: a call of the holder's still
/// hanging on the outage ends, its next retry comes (every [`PENDING_RETRY`]), and that save
/// is answered; plus a second. A possibly-rotated token is not sent again before this long
/// after this host found the store answering again, nor after it first saw the mark.
///
/// [`PENDING_RETRY`]: crate::manager::PENDING_RETRY
pub(crate) fn outage_settle(call_bound: Duration) -> Duration {
    call_bound
        .saturating_mul(2)
        .saturating_add(crate::manager::PENDING_RETRY)
        .saturating_add(Duration::from_secs(1))
        .min(MAX_COOLDOWN)
}

/// The longest wait after failures, whatever `Retry-After` or the backoff says: a hostile or
/// mistaken header cannot stop refreshing for longer than this.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(15 * 60);

/// A point on the manager's monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(pub(crate) Duration);

impl Deadline {
    /// `now + after`, saturating: a huge duration is "never", not a panic.
    pub(crate) fn after(now: Duration, after: Duration) -> Self {
        Deadline(now.saturating_add(after))
    }

    /// `self - before`, or zero.
    fn minus(self, before: Duration) -> Self {
        Deadline(self.0.saturating_sub(before))
    }

    pub(crate) fn passed(self, now: Duration) -> bool {
        now >= self.0
    }
}

/// The tuning the decisions depend on (all from the builder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) margin: Duration,
    pub(crate) jitter: f64,
    pub(crate) cooldown: Duration,
    pub(crate) min_interval: Duration,
    pub(crate) max_clock_skew: Duration,
    pub(crate) max_lifetime: Duration,
    /// An access token is handed out only while at least this much of it is left (half its
    /// lifetime, for tokens living less than twice this).
    pub(crate) min_validity: Duration,
    /// The total timeout of one refresh request: a possibly-rotated token is not sent again
    /// before the attempt that marked it can no longer be in flight.
    pub(crate) request_timeout: Duration,
    /// The longest request timeout of any host sharing the grant (this host's unless
    /// configured): written-back tokens wait for a request whose mark the store lost.
    pub(crate) fleet_request_timeout: Duration,
    /// [`outage_settle`] for this manager's store.
    pub(crate) outage_settle: Duration,
    /// Fingerprints of refresh tokens (the fleet's, and 0.2's under this host's api key) and of
    /// rejected access tokens.
    pub(crate) fingerprints: FingerprintKey,
}

/// The current access token and when, on the monotonic clock, it stops being handed out and
/// should be renewed.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) token: Arc<AccessToken>,
    /// When it expires (as far as the server's clock tells): what the expiry gauge reports.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) expires: Deadline,
    /// The last moment it is handed out: its expiry less the minimum validity, so that a caller
    /// never gets a token that expires on its way to GenLogs.
    pub(crate) serve_until: Deadline,
    pub(crate) refresh_at: Deadline,
}

/// A failed refresh, and when the next one may be sent.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) error: Arc<Error>,
    pub(crate) retry_at: Deadline,
    /// Failures in a row, for the backoff.
    pub(crate) consecutive: u32,
}

/// What a pending save may overwrite in the store.
#[derive(Debug, Clone)]
pub(crate) enum Overwrites {
    /// Only a document holding this refresh token (the one ours came from).
    Successor(RefreshToken),
    /// Whatever is there (the caller's replacement).
    Anything,
}

impl State {
    /// Whether the caller's replacement waits to be saved (it overwrites whatever is stored).
    pub(crate) fn replacing(&self) -> bool {
        matches!(
            self.pending,
            Some(Pending {
                overwrites: Overwrites::Anything,
                ..
            })
        )
    }
}

/// Something in memory that the store does not have yet.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) overwrites: Overwrites,
    /// New tokens from a refresh: their access token is not handed out until they are saved,
    /// since a crash would lose the only valid refresh token.
    pub(crate) rotation: bool,
}

/// Everything the manager knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    /// The newest document known (its `version` is the store's, or the one a save will replace).
    pub(crate) tokens: Option<StoredTokens>,
    pub(crate) access: Option<Access>,
    pub(crate) pending: Option<Pending>,
    pub(crate) failure: Option<Failure>,
    /// When the last refresh was sent (monotonic).
    pub(crate) last_refresh: Option<Duration>,
    /// No background refresh is started before this (set after a refresh task failed).
    pub(crate) quiet_until: Option<Deadline>,
    /// The token state before the attempt in flight was marked (to take the mark back when the
    /// request was not processed, and to tell a plain 401 from one after an unknown outcome).
    pub(crate) sending_from: Option<TokenState>,
    /// The access token before a rotation that is not saved yet: still valid, and served
    /// meanwhile (the new one is not, until its refresh token is safe).
    pub(crate) previous_access: Option<Access>,
    /// A renewal of the grant was asked for while its refresh token was this one: no access
    /// token is fresh (a refresh is due) until the refresh token changes, here or by another
    /// process. The current access token is still handed out meanwhile.
    pub(crate) renewal: Option<RefreshToken>,
    /// Fingerprints of refresh tokens this host knows were rotated away (its own rotations and
    /// every document's list), newest last, at most [`HOST_FINGERPRINTS`]: none of them is ever
    /// sent or adopted.
    pub(crate) rotated: VecDeque<Fingerprint>,
    /// Fingerprints of the access tokens another endpoint rejected ([`Outcome::AccessRejected`]),
    /// newest last, at most [`REJECTED_ACCESS`]: none of them is handed out again, whatever
    /// document brings it back (a peer's mark re-read, an operator's write, a store gone back).
    /// In memory only: a rejection seen by one host is news to that host's callers; the others
    /// learn it from their own 401s.
    pub(crate) rejected_access: VecDeque<Fingerprint>,
    /// The newest position in the grant's history this host has read or written (operator
    /// generation, write sequence): a document from before it means the store went back.
    pub(crate) seen: (u64, u64),
    /// When this host first saw the current possibly-rotated mark (its attempts and time, and the
    /// monotonic time it was first read): a skewed clock on the marking host cannot make the wait
    /// before resending longer than [`MAX_COOLDOWN`].
    pub(crate) mark_seen: Option<(u32, DateTime<Utc>, Duration)>,
    /// When this host first saw the written-back tokens it holds (their `restored_at`, and the
    /// monotonic time): the restore grace runs from then.
    pub(crate) restore_seen: Option<(DateTime<Utc>, Duration)>,
    /// What [`Outcome::Sending`] changed, until the request goes: taken back by
    /// [`Outcome::SendAborted`] when the mark could not be saved (nothing else is undone).
    pub(crate) undo_send: Option<Box<UndoSend>>,
    /// What the last store read did that an operator should hear about (the shell logs it).
    pub(crate) note: Option<LoadNote>,
    /// This host's last store call found the store unreachable.
    pub(crate) store_out: bool,
    /// When this host read the store again after finding it unreachable (monotonic).
    pub(crate) store_back: Option<Duration>,
}

/// The fields [`Outcome::Sending`] changes, as they were before it.
#[derive(Debug, Clone)]
pub(crate) struct UndoSend {
    token_state: TokenState,
    restored_at: Option<DateTime<Utc>>,
    last_refresh: Option<Duration>,
    mark_seen: Option<(u32, DateTime<Utc>, Duration)>,
    pending: Option<Pending>,
}

/// What a store read did, for the shell to log (`state.rs` does no I/O, logging included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadNote {
    /// An operator's newer generation is followed, whatever this host held.
    OperatorFollowed,
    /// The store went back: this host's newer tokens are written back over it.
    WroteBack {
        /// Its token is one this host knows was rotated away.
        known_rotated: bool,
    },
    /// Tokens another process wrote were adopted.
    Adopted,
    /// Tokens another process wrote were adopted, and this host's unsaved ones dropped.
    AdoptedOverUnsaved,
}

/// What a refresh task does next.
#[derive(Debug)]
pub(crate) enum Step {
    /// The cached token is good: hand it out.
    Serve,
    /// Write this document (the pending one) under the lock.
    Save(Box<StoredTokens>),
    /// Mark the attempt in the store ([`Outcome::Sending`]), then send this refresh token (the
    /// stored one).
    Refresh(RefreshToken),
    /// Nothing may be sent before this point; try again then.
    Wait(Deadline),
    /// Give callers this error (those holding a valid token keep using it).
    Fail(TokenError),
}

/// What happened, for [`apply`].
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The store was read.
    Loaded(Option<StoredTokens>),
    /// The store holds a document that cannot be read, at this version: read as an empty store,
    /// except that a save (a replacement) is made over that version.
    Unreadable(u64),
    /// The pending document was saved as this version.
    Saved(u64),
    /// A refresh of the stored token is about to be sent.
    Sending,
    /// A refresh of `sent` returned a session.
    Refreshed {
        sent: RefreshToken,
        session: Box<Session>,
        /// Uniform in `[0, 1)`: how far into the jitter window the next refresh starts.
        jitter: f64,
    },
    /// A refresh of `sent` failed.
    Failed { sent: RefreshToken, error: Error },
    /// The caller replaced the tokens.
    Replaced(StoredTokens),
    /// Another endpoint rejected this access token.
    AccessRejected(Arc<AccessToken>),
    /// The grant whose refresh token is this one should be renewed (keep-alive, `refresh_now`).
    RenewalRequested(RefreshToken),
    /// The store did not answer.
    StoreUnreachable,
    /// The possibly-rotated mark could not be saved, so the request was not sent: what
    /// [`Outcome::Sending`] changed is taken back, and nothing else.
    SendAborted,
    /// A refresh task ended with an error: no background refresh for a cooldown.
    TaskFailed,
}

impl State {
    /// The access token, if it may be handed out at `now` without a refresh first.
    pub(crate) fn fresh(&self, now: Duration) -> Option<&Arc<AccessToken>> {
        self.servable()
            .filter(|access| !access.refresh_at.passed(now) && !self.renewal_pending())
            .map(|access| &access.token)
    }

    /// Starts the restore grace when the tokens held were written back and this host had not
    /// seen them yet.
    fn track_restore(&mut self, now: Duration) {
        self.restore_seen = match self.tokens.as_ref().and_then(|t| t.lineage.restored_at) {
            Some(at) => match self.restore_seen {
                Some((seen_at, seen)) if seen_at == at => Some((seen_at, seen)),
                _ => Some((at, now)),
            },
            None => None,
        };
    }

    /// Whether `token` is known to have been rotated away.
    pub(crate) fn knows_rotated(&self, key: &FingerprintKey, token: &RefreshToken) -> bool {
        key.known(token, self.rotated.iter())
    }

    /// Remembers fingerprints of rotated-away tokens (bounded; the oldest are forgotten first).
    fn learn_rotated(&mut self, fingerprints: &[Fingerprint]) {
        for fingerprint in fingerprints {
            remember(&mut self.rotated, *fingerprint, HOST_FINGERPRINTS);
        }
    }

    /// The document a save writes now: the tokens, numbered past everything this host has seen
    /// in their generation, carrying the most recent fingerprints of rotated-away tokens.
    pub(crate) fn document_to_save(&self) -> Option<StoredTokens> {
        let mut tokens = self.tokens.clone()?;
        let lineage = &mut tokens.lineage;
        let base = if lineage.generation == self.seen.0 {
            lineage.sequence.max(self.seen.1)
        } else {
            lineage.sequence
        };
        lineage.sequence = base.saturating_add(1);
        let skip = self.rotated.len().saturating_sub(DOCUMENT_FINGERPRINTS);
        lineage.rotated = self.rotated.iter().skip(skip).copied().collect();
        Some(tokens)
    }

    /// Whether a renewal was asked for and the refresh token has not changed since.
    pub(crate) fn renewal_pending(&self) -> bool {
        match (&self.renewal, &self.tokens) {
            (Some(asked), Some(tokens)) => same(asked, &tokens.refresh_token),
            _ => false,
        }
    }

    /// The access token, if it may be handed out at `now` at all (refresh due or not).
    pub(crate) fn valid(&self, now: Duration) -> Option<&Arc<AccessToken>> {
        self.servable()
            .filter(|access| !access.serve_until.passed(now))
            .map(|access| &access.token)
    }

    /// The access token that may be handed out: while rotated tokens are not saved yet, the one
    /// from before the rotation.
    pub(crate) fn servable(&self) -> Option<&Access> {
        match &self.pending {
            Some(Pending { rotation: true, .. }) => self.previous_access.as_ref(),
            _ => self.access.as_ref(),
        }
    }

    /// Whether a pending save carries news about a token that was sent (a rotation, a recovered
    /// token, a dead or possibly-rotated mark): until it is saved, no other process may read the
    /// store, which still shows the sent token as usable.
    pub(crate) fn unsaved_news_of_a_sent_token(&self) -> bool {
        matches!(
            self.pending,
            Some(Pending {
                overwrites: Overwrites::Successor(_),
                ..
            })
        )
    }

    /// The pending document, when it holds a refresh token the store does not have (a rotation
    /// or a recovered token whose save failed, a replacement not saved yet): the only copy of it.
    pub(crate) fn unsaved_refresh_token(&self) -> Option<&StoredTokens> {
        let tokens = self.tokens.as_ref()?;
        match &self.pending.as_ref()?.overwrites {
            Overwrites::Anything => Some(tokens),
            Overwrites::Successor(predecessor) if !same(predecessor, &tokens.refresh_token) => {
                Some(tokens)
            }
            Overwrites::Successor(_) => None,
        }
    }

    fn from_document(
        tokens: StoredTokens,
        policy: &Policy,
        now: Duration,
        utc_now: DateTime<Utc>,
    ) -> Self {
        let access =
            tokens
                .access_token
                .clone()
                .zip(tokens.access_expires)
                .map(|(token, expires)| {
                    let left = (expires - utc_now)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(policy.max_lifetime);
                    // Handed out while the minimum validity is left (half the lifetime for a
                    // short-lived token, when the document says when it was issued); with no
                    // floor: no refresh was sent here, so a new token may be fetched at once.
                    let lifetime = tokens
                        .refreshed_at
                        .and_then(|issued| (expires - issued).to_std().ok())
                        .unwrap_or(Duration::MAX);
                    let serve =
                        Deadline::after(now, left).minus(policy.min_validity.min(lifetime / 2));
                    // What is left stands in for the lifetime in the refresh point, so a
                    // short-lived token adopted from another process is not renewed at once by
                    // every process.
                    let refresh_at = Deadline::after(now, left)
                        .minus(policy.margin.min(left / 2))
                        .max(Deadline::after(now, policy.min_interval))
                        .min(serve);
                    Access {
                        token: Arc::new(token),
                        expires: Deadline::after(now, left),
                        serve_until: serve,
                        refresh_at,
                    }
                });
        State {
            tokens: Some(tokens),
            access,
            ..State::default()
        }
    }
}

/// The wait after `failures` failed attempts in a row: doubling from the cooldown, at most
/// [`MAX_COOLDOWN`].
fn backoff(policy: &Policy, failures: u32) -> Duration {
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
        let cause = matches!(health, TokenHealth::Dead { .. })
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
    if let TokenHealth::PossiblyRotated {
        attempts,
        last_attempt,
        ..
    } = health
    {
        let sender_timeout = match state.tokens.as_ref().map(|tokens| tokens.state) {
            Some(TokenState::PossiblyRotated {
                last_attempt,
                deadline: Some(deadline),
                ..
            }) => (deadline - last_attempt).to_std().ok(),
            _ => None,
        };
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
fn still_in_doubt(
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
        let after = |left: Duration| {
            utc_now
                .checked_add_signed(
                    chrono::Duration::from_std(left).unwrap_or(chrono::Duration::MAX),
                )
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
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

fn new_tokens(reason: NewTokensReason, cause: Option<Arc<Error>>) -> TokenError {
    TokenError::NewTokensRequired { reason, cause }
}

/// The state after `outcome` (the second table in the module doc). An access token reported
/// rejected is never held afterwards, whatever the outcome brought.
pub(crate) fn apply(
    state: State,
    outcome: Outcome,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    without_rejected_access(
        fold(state, outcome, policy, now, utc_now),
        &policy.fingerprints,
    )
}

/// Drops the access tokens (current, and the one served while a rotation is saved) that were
/// reported rejected.
fn without_rejected_access(mut state: State, key: &FingerprintKey) -> State {
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

fn fold(
    state: State,
    outcome: Outcome,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    match outcome {
        Outcome::Loaded(stored) => read(state, stored, policy, now, utc_now),
        Outcome::Unreadable(version) => {
            let mut state = read(state, None, policy, now, utc_now);
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
            state.track_restore(now);
            state
        }
        Outcome::Sending => sending(state, policy, now, utc_now),
        Outcome::Refreshed {
            sent,
            session,
            jitter,
        } => refreshed(state, sent, &session, jitter, policy, now, utc_now),
        Outcome::Failed { sent, error } => failed(state, sent, error, policy, now, utc_now),
        Outcome::Replaced(tokens) => {
            // An operator's write: a new generation, which every host follows.
            let mut tokens = tokens;
            tokens.lineage.generation = crate::store::Lineage::operator_generation(
                state.seen.0.max(tokens.lineage.generation),
                utc_now,
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
                seen: state.seen,
                ..State::from_document(tokens, policy, now, utc_now)
            }
        }
        Outcome::AccessRejected(rejected) => {
            // Dropped by `apply` (also while a rotation is being saved, when the token handed
            // out is the one from before it), now and whenever a document brings it back.
            let mut state = state;
            let fingerprint = policy.fingerprints.access(&rejected);
            remember(&mut state.rejected_access, fingerprint, REJECTED_ACCESS);
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
            quiet_until: Some(Deadline::after(now, policy.cooldown)),
            ..state
        },
    }
}

/// [`Outcome::Loaded`]: the document folded in ([`loaded`]), then what this host tracks about
/// it (the store's outage, the mark and the restore it first saw, and when).
fn read(
    state: State,
    stored: Option<StoredTokens>,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let store_back = if state.store_out {
        Some(now)
    } else {
        state.store_back
    };
    let mut state = loaded(
        State {
            note: None,
            ..state
        },
        stored,
        policy,
        now,
        utc_now,
    );
    state.store_out = false;
    state.store_back = store_back;
    state.mark_seen = match state.tokens.as_ref().map(|t| t.state) {
        Some(TokenState::PossiblyRotated {
            attempts,
            last_attempt,
            ..
        }) => match state.mark_seen {
            Some((a, l, at)) if a == attempts && l == last_attempt => Some((a, l, at)),
            _ => Some((attempts, last_attempt, now)),
        },
        _ => None,
    };
    state.track_restore(now);
    state
}

/// [`Outcome::Refreshed`]: the new tokens, pending their save; the sent token remembered as
/// rotated away (unless the server answered with the same one).
fn refreshed(
    state: State,
    sent: RefreshToken,
    session: &Session,
    jitter: f64,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
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
        refreshed_at: Some(utc_now),
        version,
        lineage,
        ..StoredTokens::from_session(session)
    };
    // A server that answers with the same refresh token did not rotate it.
    if !same(&sent, &session.refresh_token) {
        let fingerprint = policy.fingerprints.fingerprint(&sent);
        remember(&mut rotated, fingerprint, HOST_FINGERPRINTS);
        tokens.lineage.rotated.push(fingerprint);
    }
    State {
        access: Some(session_access(session, policy, now, utc_now, jitter)),
        tokens: Some(tokens),
        pending: Some(Pending {
            overwrites: Overwrites::Successor(sent.clone()),
            rotation: true,
        }),
        failure: None,
        last_refresh: Some(now),
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
    }
}

/// [`Outcome::SendAborted`]: what [`Outcome::Sending`] changed is taken back, nothing else.
fn send_aborted(state: State) -> State {
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
fn sending(state: State, policy: &Policy, now: Duration, utc_now: DateTime<Utc>) -> State {
    let mut state = state;
    let Some(tokens) = state.tokens.as_mut() else {
        return state;
    };
    let (since, attempts) = match tokens.state {
        TokenState::PossiblyRotated {
            since, attempts, ..
        } => (since, attempts),
        _ => (utc_now, 0),
    };
    state.undo_send = Some(Box::new(UndoSend {
        token_state: tokens.state,
        restored_at: tokens.lineage.restored_at,
        last_refresh: state.last_refresh,
        mark_seen: state.mark_seen,
        pending: state.pending.clone(),
    }));
    state.sending_from = Some(tokens.state);
    // This host's own attempt: the request cannot be in flight past its timeout from now.
    state.mark_seen = Some((attempts.saturating_add(1), utc_now, now));
    tokens.lineage.restored_at = None;
    // Others wait this attempt's own timeout, on their clocks: recorded as a deadline on ours.
    let timeout = chrono::Duration::from_std(policy.request_timeout.min(MAX_COOLDOWN))
        .unwrap_or(chrono::Duration::zero());
    tokens.state = TokenState::PossiblyRotated {
        since,
        attempts: attempts.saturating_add(1),
        last_attempt: utc_now,
        deadline: utc_now.checked_add_signed(timeout),
    };
    state.pending = Some(Pending {
        overwrites: Overwrites::Successor(tokens.refresh_token.clone()),
        rotation: false,
    });
    state.last_refresh = Some(now);
    state
}

/// [`loaded_document`], then the restore grace when the store now answers from another server
/// instance than the one that saved the document.
fn loaded(
    state: State,
    stored: Option<StoredTokens>,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let moved_from = stored
        .as_ref()
        .filter(|stored| stored.lineage.instance_changed)
        .map(|stored| stored.refresh_token.clone());
    let mut state = loaded_document(state, stored, policy, now, utc_now);
    if let (Some(predecessor), Some(tokens)) = (moved_from, state.tokens.as_mut()) {
        // Restarted, failed over or restored: the store may have lost later writes that only
        // running hosts hold (a newcomer, or a host that last read before them, cannot tell), or
        // the mark of a request still in flight. Write back the newest this host knows with the
        // restore grace, so nobody refreshes before those hosts wrote back theirs and that
        // request ended.
        tokens.lineage.instance_changed = false;
        tokens.lineage.restored_at = Some(utc_now);
        if state.pending.is_none() {
            state.pending = Some(Pending {
                overwrites: Overwrites::Successor(predecessor),
                rotation: false,
            });
        }
    }
    state
}

fn loaded_document(
    state: State,
    stored: Option<StoredTokens>,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let Some(stored) = stored else {
        return emptied(state, utc_now);
    };
    let mut state = state;
    // Fingerprints of rotated-away tokens are facts, whoever wrote them down.
    state.learn_rotated(&stored.lineage.rotated);
    let Some(ours) = &state.tokens else {
        return adopt(state, stored, policy, now, utc_now);
    };
    let stale = state.knows_rotated(&policy.fingerprints, &stored.refresh_token);
    // This host's own token was rotated away (the document may say so itself): it holds
    // nothing newer than a document whose token is not known rotated, whatever its numbering.
    let ours_rotated = state.knows_rotated(&policy.fingerprints, &ours.refresh_token);
    let same_token = stored.same_refresh_token(ours);
    let operator = stored.lineage.generation > state.seen.0.max(ours.lineage.generation);
    // Numbered as the last document this host saw, with the same token, but without a
    // possibly-rotated mark this host saw on it: a host that never saw the mark wrote back an
    // older copy (numbered past what it had seen) after the store lost the mark of a request
    // that may still be in flight. The store went back as surely as if it were numbered below.
    let lost_mark = same_token
        && stored.lineage.mark() == state.seen
        && attempts(ours.state) > attempts(stored.state);
    let went_back = stored.lineage.mark() < state.seen || lost_mark;
    match &state.pending {
        // An operator wrote new tokens: followed, whatever this host holds.
        Some(_)
            if operator
                && !matches!(
                    state.pending,
                    Some(Pending {
                        overwrites: Overwrites::Anything,
                        ..
                    })
                ) =>
        {
            noted(
                adopt(state, stored, policy, now, utc_now),
                LoadNote::OperatorFollowed,
            )
        }
        Some(pending) => {
            let pending = pending.clone();
            with_pending(
                state,
                stored,
                &pending,
                [same_token, stale, went_back, ours_rotated],
                policy,
                now,
                utc_now,
            )
        }
        None if stored.version == ours.version
            && same_token
            && !went_back
            && !stored.lineage.instance_changed =>
        {
            unchanged(state, &stored)
        }
        None if operator => noted(
            adopt(state, stored, policy, now, utc_now),
            LoadNote::OperatorFollowed,
        ),
        // Numbered below what this host has seen (two instance changes while a save was in
        // flight can do that), but holding the successor of this host's rotated-away token:
        // writing that token back would start a war no host can win. Adopted (and saved again
        // past what this host has seen).
        None if ours_rotated && !stale => successor_adopted(state, stored, policy, now, utc_now),
        // (Also with the same token: what this host holds then says more, e.g. a possibly-rotated
        // mark of a request still in flight that the store lost.)
        None if stale || went_back => write_back(state, stored, stale, utc_now),
        None => adopt_keeping_attempts(state, stored, same_token, policy, now, utc_now),
    }
}

/// How many refreshes of a token were attempted (its possibly-rotated mark), 0 if none.
fn attempts(state: TokenState) -> u32 {
    match state {
        TokenState::PossiblyRotated { attempts, .. } => attempts,
        _ => 0,
    }
}

/// An empty store (flushed, restarted without persistence, a file deleted) while we know tokens:
/// write them back, unless someone else writes first; nobody refreshes from them before the
/// others had a chance to write back newer ones.
fn emptied(mut state: State, utc_now: DateTime<Utc>) -> State {
    if let Some(tokens) = state.tokens.as_mut() {
        tokens.version = 0;
        if state.pending.is_none() {
            tokens.lineage.restored_at = Some(utc_now);
            state.pending = Some(Pending {
                overwrites: Overwrites::Successor(tokens.refresh_token.clone()),
                rotation: false,
            });
        }
    }
    state
}

/// The document this host last read or wrote, unchanged apart from what only this process
/// tracks.
fn unchanged(mut state: State, stored: &StoredTokens) -> State {
    if let Some(tokens) = state.tokens.as_mut() {
        tokens.state = stored.state;
        tokens.lineage = stored.lineage.clone();
    }
    state.seen = state.seen.max(stored.lineage.mark());
    state
}

/// The store went back (a failover lost writes, a restart from an old snapshot, a restored
/// backup): sending its token would be a reuse, and adopting it would hide the newer tokens this
/// host holds. Write them back over it, numbered past everything seen; nobody refreshes from them
/// for a short grace, so that a host holding newer ones still can write them back.
fn write_back(
    mut state: State,
    stored: StoredTokens,
    known_rotated: bool,
    utc_now: DateTime<Utc>,
) -> State {
    state.note = Some(LoadNote::WroteBack { known_rotated });
    if let Some(tokens) = state.tokens.as_mut() {
        tokens.version = stored.version;
        tokens.lineage.restored_at = Some(utc_now);
    }
    state.pending = Some(Pending {
        overwrites: Overwrites::Successor(stored.refresh_token),
        rotation: false,
    });
    state
}

/// A document holding what replaced this host's rotated-away token: adopted. Numbered below what
/// this host has seen, it is also saved again, numbered past that, with the restore grace: a
/// host that holds newer tokens (the store may have gone back without a sign) writes them back
/// before anyone refreshes, and no host reads the document as one that went back any more.
fn successor_adopted(
    state: State,
    stored: StoredTokens,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let below = stored.lineage.mark() < state.seen;
    let same_token = stored.refresh_token.clone();
    let mut adopted = adopt(state, stored, policy, now, utc_now);
    if below {
        if let Some(tokens) = adopted.tokens.as_mut() {
            tokens.lineage.restored_at = Some(utc_now);
        }
        adopted.pending = Some(Pending {
            overwrites: Overwrites::Successor(same_token),
            rotation: false,
        });
    }
    noted(adopted, LoadNote::Adopted)
}

/// Another process wrote the document: adopt it. With the same token (another process marked
/// it), what this process knows of its own attempts with it still holds.
fn adopt_keeping_attempts(
    state: State,
    stored: StoredTokens,
    same_token: bool,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let kept = same_token.then(|| {
        (
            state.failure.clone(),
            state.last_refresh,
            state.renewal.clone(),
        )
    });
    let mut adopted = adopt(state, stored, policy, now, utc_now);
    if let Some((failure, last_refresh, renewal)) = kept {
        adopted.failure = failure;
        adopted.last_refresh = last_refresh;
        adopted.renewal = renewal;
    }
    noted(adopted, LoadNote::Adopted)
}

fn noted(state: State, note: LoadNote) -> State {
    State {
        note: Some(note),
        ..state
    }
}

/// A document read while this host has something unsaved (`pending`): ours replaces it when it
/// is newer (the table's "a save pending" rows), or it is adopted. `[same_token, stale,
/// went_back, ours_rotated]` compare it with what this host holds.
fn with_pending(
    state: State,
    stored: StoredTokens,
    pending: &Pending,
    [same_token, stale, went_back, ours_rotated]: [bool; 4],
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let mut state = state;
    // What this host would write holds a token it now knows was rotated away: someone sent it
    // and got its successor, which this document holds. Also for a rotation of this host's:
    // its token can only be known rotated once it reached the store and a peer spent it.
    if ours_rotated && !stale {
        if let Overwrites::Successor(_) = pending.overwrites {
            return successor_adopted(state, stored, policy, now, utc_now);
        }
    }
    let ours_replace_it = match &pending.overwrites {
        Overwrites::Anything => true,
        // What this host holds is newer than a document holding the token ours came
        // from, holding ours, holding a token known rotated away, or from before what
        // this host has seen. A pending rotation is never dropped for another document:
        // its refresh token is the only valid one if GenLogs rotated for us.
        Overwrites::Successor(predecessor) => {
            same(&stored.refresh_token, predecessor)
                || same_token
                || stale
                || went_back
                || pending.rotation
        }
    };
    if ours_replace_it {
        if let Some(tokens) = state.tokens.as_mut() {
            tokens.version = stored.version;
            if matches!(pending.overwrites, Overwrites::Anything) {
                tokens.lineage.generation = tokens
                    .lineage
                    .generation
                    .max(stored.lineage.generation.saturating_add(1));
            }
        }
        state
    } else {
        noted(
            adopt(state, stored, policy, now, utc_now),
            LoadNote::AdoptedOverUnsaved,
        )
    }
}

/// The state after adopting `stored`: its tokens, with this host's memory of rotated-away
/// tokens and of the newest position seen kept.
fn adopt(
    state: State,
    stored: StoredTokens,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let seen = state.seen.max(stored.lineage.mark());
    let mut adopted = State::from_document(stored, policy, now, utc_now);
    adopted.rotated = state.rotated;
    adopted.rejected_access = state.rejected_access;
    adopted.seen = seen;
    adopted
}

/// Adds a fingerprint to a host's bounded memory (of rotated-away refresh tokens, of rejected
/// access tokens): the oldest are forgotten first.
fn remember(known: &mut VecDeque<Fingerprint>, fingerprint: Fingerprint, capacity: usize) {
    if !known.contains(&fingerprint) {
        if known.len() == capacity {
            known.pop_front();
        }
        known.push_back(fingerprint);
    }
}

fn same(a: &RefreshToken, b: &RefreshToken) -> bool {
    a.expose_secret() == b.expose_secret()
}

/// The last moment an access token with `lifetime` left at `now` is handed out: the minimum
/// validity before its expiry, or half-way for a token living less than twice that; but never
/// sooner than the minimum refresh interval (while the token lasts that long), since no new one
/// may be fetched before then.
fn serve_until(now: Duration, lifetime: Duration, policy: &Policy) -> Deadline {
    let expires = Deadline::after(now, lifetime);
    expires
        .minus(policy.min_validity.min(lifetime / 2))
        .max(Deadline::after(now, policy.min_interval))
        .min(expires)
}

/// The lifetime of a session's access token, measured on the server's clock when its `Date` is
/// believable, bounded, and the point at which to renew it.
fn session_access(
    session: &Session,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
    jitter: f64,
) -> Access {
    let reference = match session.server_date {
        Some(date)
            if (date - utc_now)
                .abs()
                .to_std()
                .is_ok_and(|s| s <= policy.max_clock_skew) =>
        {
            // `Date` has one-second resolution: the server's "now" may be up to a second later.
            date.checked_add_signed(chrono::Duration::seconds(1))
                .unwrap_or(date)
        }
        _ => utc_now,
    };
    let lifetime = (session.access_expires - reference)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .clamp(
            policy.min_interval,
            policy.max_lifetime.max(policy.min_interval),
        );
    let lead = policy.margin.min(lifetime / 2);
    let lead = lead.mul_f64(1.0 + policy.jitter * jitter.clamp(0.0, 1.0));
    let serve = serve_until(now, lifetime, policy);
    let refresh_at = Deadline::after(now, lifetime)
        .minus(lead)
        .max(Deadline::after(now, policy.min_interval))
        .min(serve);
    Access {
        token: Arc::new(session.access_token.clone()),
        expires: Deadline::after(now, lifetime),
        serve_until: serve,
        refresh_at,
    }
}

fn failed(
    state: State,
    sent: RefreshToken,
    error: Error,
    policy: &Policy,
    now: Duration,
    utc_now: DateTime<Utc>,
) -> State {
    let consecutive = state.failure.as_ref().map_or(0, |f| f.consecutive) + 1;
    let wait = backoff(policy, consecutive)
        .max(error.retry_after().unwrap_or(Duration::ZERO))
        .min(MAX_COOLDOWN);
    let recovered = error.recovered_refresh_token().cloned();
    let kind = FailureKind::of(&error);
    let mut state = state;
    let before = state.sending_from.take().unwrap_or_default();
    state.last_refresh = Some(now);
    state.failure = Some(Failure {
        error: Arc::new(error),
        retry_at: Deadline::after(now, wait),
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
                let fingerprint = policy.fingerprints.fingerprint(&sent);
                remember(&mut state.rotated, fingerprint, HOST_FINGERPRINTS);
                tokens.lineage.rotated.push(fingerprint);
            }
            tokens.refresh_token = recovered.token;
            tokens.refresh_expires = recovered.expires.map(Into::into);
            tokens.refreshed_at = Some(utc_now);
            TokenState::Usable
        }
        (None, FailureKind::Rejected) => TokenState::Dead {
            reason: if matches!(before, TokenState::PossiblyRotated { .. }) {
                NewTokensReason::RejectedAfterUnknownOutcome
            } else {
                NewTokensReason::RefreshTokenRejected
            },
            since: utc_now,
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
enum FailureKind {
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

#[cfg(test)]
pub(crate) mod tests {
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

    pub(crate) fn document(refresh: &str, version: u64) -> StoredTokens {
        StoredTokens {
            version,
            ..StoredTokens::from_refresh_token(RefreshToken::new(refresh))
        }
    }

    fn with_access(refresh: &str, expires_in: Duration) -> State {
        let tokens = StoredTokens {
            access_token: Some(AccessToken::new("at")),
            access_expires: Some(utc() + chrono::Duration::from_std(expires_in).unwrap()),
            ..document(refresh, 1)
        };
        State::from_document(tokens, &policy(), Duration::ZERO, utc())
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
        apply(
            state,
            Outcome::Refreshed {
                sent: RefreshToken::new("rt"),
                session: Box::new(session),
                jitter: 0.0,
            },
            &policy(),
            now,
            utc(),
        )
    }

    /// An attempt as the manager makes it: marked and saved, sent, failed.
    fn failed(state: State, error: Error) -> State {
        let marked = saved(apply(
            state,
            Outcome::Sending,
            &policy(),
            Duration::ZERO,
            utc(),
        ));
        apply(
            marked,
            Outcome::Failed {
                sent: RefreshToken::new("rt"),
                error,
            },
            &policy(),
            Duration::ZERO,
            utc(),
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
        apply(state, Outcome::Saved(2), &policy(), Duration::ZERO, utc())
    }

    #[test]
    fn row_1_a_saved_token_before_its_refresh_point_is_served() {
        let state = with_access("rt", secs(600));
        assert!(matches!(step(&state, secs(539)), Step::Serve));
        assert!(matches!(step(&state, secs(540)), Step::Refresh(_)));
    }

    #[test]
    fn row_2_anything_pending_is_saved_first() {
        let state = refreshed(
            with_access("rt", secs(600)),
            session(chrono::Duration::minutes(30), None),
            Duration::ZERO,
        );
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
        let step = step(&State::default(), Duration::ZERO);
        assert!(
            matches!(
                step,
                Step::Fail(TokenError::NewTokensRequired {
                    reason: NewTokensReason::NoTokens,
                    ..
                })
            ),
            "{step:?}"
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
        state = apply(
            state,
            Outcome::Loaded(Some(tokens)),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        let step = step(&state, secs(10_000));
        assert!(
            matches!(
                step,
                Step::Fail(TokenError::NewTokensRequired {
                    reason: NewTokensReason::RefreshTokenRejected,
                    ..
                })
            ),
            "{step:?}"
        );
    }

    #[test]
    fn row_5_an_expired_refresh_token_is_not_sent() {
        let mut tokens = document("rt", 1);
        tokens.refresh_expires = Some(utc());
        let state = apply(
            State::default(),
            Outcome::Loaded(Some(tokens)),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        let step = step(&state, Duration::ZERO);
        assert!(
            matches!(
                step,
                Step::Fail(TokenError::NewTokensRequired {
                    reason: NewTokensReason::RefreshTokenExpired,
                    ..
                })
            ),
            "{step:?}"
        );
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
        let mut peer = StoredTokens {
            access_token: Some(AccessToken::new("at-peer")),
            access_expires: Some(utc() + chrono::Duration::minutes(10)),
            ..document("rt", 5)
        };
        peer.lineage.sequence = 100;
        let state = apply(
            state,
            Outcome::Loaded(Some(peer)),
            &policy(),
            secs(3),
            utc(),
        );
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
        let mut rotated = StoredTokens {
            access_token: Some(AccessToken::new("at-rotated")),
            access_expires: Some(utc() + chrono::Duration::minutes(10)),
            ..document("rt-2", 6)
        };
        rotated.lineage.sequence = 101;
        let state = apply(
            state,
            Outcome::Loaded(Some(rotated)),
            &policy(),
            secs(4),
            utc(),
        );
        assert!(matches!(step(&state, secs(4)), Step::Serve));
        assert_eq!(
            state.valid(secs(4)).map(|t| t.expose_secret()),
            Some("at-rotated")
        );
    }

    #[test]
    fn row_10_refreshes_keep_the_minimum_interval() {
        let state = saved(refreshed(
            with_access("rt", secs(600)),
            session(chrono::Duration::minutes(30), None),
            secs(100),
        ));
        let token = state.access.as_ref().unwrap().token.clone();
        let state = apply(
            state,
            Outcome::AccessRejected(token),
            &policy(),
            secs(101),
            utc(),
        );
        assert!(matches!(step(&state, secs(101)), Step::Wait(Deadline(d)) if d == secs(105)));
        assert!(matches!(step(&state, secs(105)), Step::Refresh(_)));
    }

    #[test]
    fn row_11_otherwise_refresh() {
        let state = apply(
            State::default(),
            Outcome::Loaded(Some(document("rt", 1))),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        assert!(matches!(step(&state, Duration::ZERO), Step::Refresh(_)));
    }

    #[test]
    fn a_document_another_process_wrote_is_adopted() {
        let state = with_access("rt", secs(600));
        let state = apply(
            state,
            Outcome::Loaded(Some(document("rt-sibling", 2))),
            &policy(),
            secs(1),
            utc(),
        );
        let tokens = state.tokens.unwrap();
        assert_eq!(tokens.refresh_token.expose_secret(), "rt-sibling");
        assert_eq!(tokens.version, 2);
        assert!(state.access.is_none());
    }

    #[test]
    fn an_emptied_store_gets_the_known_tokens_back() {
        let state = apply(
            with_access("rt", secs(600)),
            Outcome::Loaded(None),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(matches!(step(&state, secs(1)), Step::Save(_)));
        assert_eq!(state.tokens.as_ref().unwrap().version, 0);
        assert!(
            state.valid(secs(1)).is_some(),
            "the access token is still served"
        );
    }

    #[test]
    fn a_pending_rotation_survives_a_state_change_of_its_predecessor() {
        let state = refreshed(
            with_access("rt", secs(600)),
            session(chrono::Duration::minutes(30), None),
            Duration::ZERO,
        );
        let mut stored = document("rt", 7);
        stored.state = TokenState::PossiblyRotated {
            since: utc(),
            attempts: 1,
            last_attempt: utc(),
            deadline: None,
        };
        let state = apply(
            state,
            Outcome::Loaded(Some(stored)),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        let tokens = state.tokens.as_ref().unwrap();
        assert_eq!(tokens.refresh_token.expose_secret(), "rt-new");
        assert_eq!(tokens.version, 7, "saved over the version found");
        assert!(state.pending.is_some());
    }

    fn operator_document(refresh: &str, version: u64) -> StoredTokens {
        let mut document = document(refresh, version);
        document.lineage.generation = crate::store::Lineage::operator_generation(0, utc());
        document
    }

    #[test]
    fn a_pending_rotation_is_never_dropped_for_another_document_but_an_operator_is_followed() {
        let state = refreshed(
            with_access("rt", secs(600)),
            session(chrono::Duration::minutes(30), None),
            Duration::ZERO,
        );
        // Another host wrote while this one held new tokens: they are the only valid ones if
        // GenLogs rotated for us, so they are kept and saved over it.
        let kept = apply(
            state.clone(),
            Outcome::Loaded(Some(document("rt-other", 9))),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        let tokens = kept.tokens.as_ref().unwrap();
        assert_eq!(tokens.refresh_token.expose_secret(), "rt-new");
        assert_eq!(tokens.version, 9);
        assert!(matches!(step(&kept, Duration::ZERO), Step::Save(_)));
        // An operator's re-seed (a newer generation) is followed.
        let followed = apply(
            state,
            Outcome::Loaded(Some(operator_document("rt-operator", 9))),
            &policy(),
            Duration::ZERO,
            utc(),
        );
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
        let state = apply(
            State::default(),
            Outcome::Replaced(document("rt-new", 0)),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        let state = apply(
            state,
            Outcome::Loaded(Some(document("rt-other", 4))),
            &policy(),
            Duration::ZERO,
            utc(),
        );
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
        let adopted = State::from_document(
            StoredTokens {
                access_token: Some(AccessToken::new("at")),
                access_expires: Some(utc() + chrono::Duration::seconds(100)),
                ..document("rt", 1)
            },
            &policy,
            Duration::ZERO,
            utc(),
        );
        assert_eq!(
            adopted.access.as_ref().unwrap().serve_until,
            Deadline(secs(90))
        );
        // Adopted with 8 s left: not handed out at all (a refresh may be sent at once); with
        // 15 s left, handed out for 5 s.
        for (left, served) in [(8, None), (15, Some(secs(5)))] {
            let adopted = State::from_document(
                StoredTokens {
                    access_token: Some(AccessToken::new("at")),
                    access_expires: Some(utc() + chrono::Duration::seconds(left)),
                    ..document("rt", 1)
                },
                &policy,
                Duration::ZERO,
                utc(),
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
        let asked = apply(
            state,
            Outcome::RenewalRequested(RefreshToken::new("rt")),
            &policy(),
            Duration::ZERO,
            utc(),
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
        let adopted = apply(
            asked.clone(),
            Outcome::Loaded(Some(StoredTokens {
                access_token: Some(AccessToken::new("at-2")),
                access_expires: Some(utc() + chrono::Duration::minutes(30)),
                ..document("rt-2", 2)
            })),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        assert!(matches!(
            decide(&adopted, &policy(), Duration::ZERO, utc()),
            Step::Serve
        ));
        // A request for an older grant than the one held asks for nothing.
        let stale = apply(
            with_access("rt-2", secs(600)),
            Outcome::RenewalRequested(RefreshToken::new("rt")),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        assert!(stale.fresh(Duration::ZERO).is_some());
    }

    #[test]
    fn a_rejected_token_is_dropped_also_while_a_rotation_is_being_saved() {
        let rotated = refreshed(
            with_access("rt", secs(600)),
            session(chrono::Duration::minutes(30), None),
            secs(1),
        );
        assert_eq!(
            rotated
                .valid(secs(1))
                .map(|t| t.expose_secret().to_string()),
            Some("at".to_string()),
            "the pre-rotation token is served until the rotation is saved"
        );
        let rejected = apply(
            rotated,
            Outcome::AccessRejected(Arc::new(AccessToken::new("at"))),
            &policy(),
            secs(1),
            utc(),
        );
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
        let state = apply(
            state,
            Outcome::AccessRejected(Arc::new(AccessToken::new("an-older-one"))),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(state.valid(secs(1)).is_some());
        let state = apply(
            state,
            Outcome::AccessRejected(Arc::new(AccessToken::new("at"))),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(state.valid(secs(1)).is_none());
    }

    #[test]
    fn a_rejected_access_token_is_never_held_again_when_a_document_brings_it_back() {
        let state = apply(
            with_access("rt", secs(600)),
            Outcome::AccessRejected(Arc::new(AccessToken::new("at"))),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(state.valid(secs(1)).is_none());
        // A peer marks the same tokens possibly rotated: the document, rejected token and all,
        // is read again at a newer version.
        let marked = StoredTokens {
            access_token: Some(AccessToken::new("at")),
            access_expires: Some(utc() + chrono::Duration::minutes(10)),
            state: TokenState::PossiblyRotated {
                since: utc(),
                attempts: 1,
                last_attempt: utc(),
                deadline: None,
            },
            ..document("rt", 2)
        };
        let state = apply(
            state,
            Outcome::Loaded(Some(marked.clone())),
            &policy(),
            secs(2),
            utc(),
        );
        assert_eq!(state.tokens.as_ref().unwrap().version, 2, "adopted");
        assert!(
            state.valid(secs(2)).is_none(),
            "the rejected token came back"
        );
        // An operator's write holding it, and another rotation's document, neither.
        let state = apply(
            state,
            Outcome::Replaced(StoredTokens {
                state: TokenState::Usable,
                ..marked.clone()
            }),
            &policy(),
            secs(3),
            utc(),
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

    /// `rt` at version 4, marked possibly rotated by `attempts` attempts, the last now.
    fn possibly_rotated(attempts: u32) -> StoredTokens {
        StoredTokens {
            state: TokenState::PossiblyRotated {
                since: utc(),
                attempts,
                last_attempt: utc(),
                deadline: None,
            },
            ..document("rt", 4)
        }
    }

    #[test]
    fn row_8_another_process_s_unknown_outcome_holds_everyone_for_the_shared_cooldown() {
        let stored = possibly_rotated(2);
        let state = apply(
            State::default(),
            Outcome::Loaded(Some(stored)),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        // Two attempts: 10 s after the last one, on the wall clock every process shares.
        assert!(matches!(
            step(&state, secs(9)),
            Step::Fail(TokenError::OutcomeUnknown { .. })
        ));
        assert!(matches!(step(&state, secs(10)), Step::Refresh(_)));
    }

    #[test]
    fn row_8_after_a_store_outage_a_possibly_rotated_token_waits_for_the_holder_to_save() {
        let stored = possibly_rotated(1);
        let state = apply(
            State::default(),
            Outcome::Loaded(Some(stored.clone())),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        // Long after the attempt, with no outage: sent again.
        assert!(matches!(step(&state, secs(60)), Step::Refresh(_)));
        // The store stopped answering (longer than the marking host's lease, perhaps), then
        // answered again at 60 s: its holder may have an unsaved rotation to save first.
        let state = apply(state, Outcome::StoreUnreachable, &policy(), secs(30), utc());
        let state = apply(
            state,
            Outcome::Loaded(Some(stored)),
            &policy(),
            secs(60),
            utc(),
        );
        assert!(matches!(
            step(&state, secs(60)),
            Step::Fail(TokenError::OutcomeUnknown { .. })
        ));
        assert!(matches!(
            step(&state, secs(60) + policy().outage_settle),
            Step::Refresh(_)
        ));
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
        let reader = apply(
            State::default(),
            Outcome::Loaded(Some(StoredTokens {
                access_token: None,
                ..marked
            })),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        // Its own timeout and the backoff are long over at 60 s; the sender's is not.
        assert!(matches!(
            step(&reader, secs(60)),
            Step::Fail(TokenError::OutcomeUnknown { .. })
        ));
        assert!(matches!(step(&reader, secs(123)), Step::Refresh(_)));
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
        assert!(matches!(
            step(&state, first_seen + policy().outage_settle - secs(1)),
            Step::Fail(TokenError::OutcomeUnknown { .. })
        ));
        assert!(matches!(
            step(&state, first_seen + policy().outage_settle),
            Step::Refresh(_)
        ));
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
        let marked = apply(state, Outcome::Sending, &policy(), secs(1), utc());
        assert!(marked.pending.is_some());
        // Another caller reports the access token rejected while the mark is being saved.
        let invalidated = apply(
            marked,
            Outcome::AccessRejected(served),
            &policy(),
            secs(1),
            utc(),
        );
        let aborted = apply(invalidated, Outcome::SendAborted, &policy(), secs(1), utc());
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
        let state = apply(
            with_access("rt", secs(600)),
            Outcome::TaskFailed,
            &policy(),
            secs(3),
            utc(),
        );
        assert_eq!(
            state.quiet_until,
            Some(Deadline(secs(3) + policy().cooldown))
        );
    }

    #[test]
    fn a_store_read_notes_what_it_did_for_the_shell_to_log() {
        let adopted = apply(
            with_access("rt", secs(600)),
            Outcome::Loaded(Some(document("rt-other", 7))),
            &policy(),
            secs(1),
            utc(),
        );
        assert_eq!(adopted.note, Some(LoadNote::Adopted));
        let unchanged = adopted.tokens.clone();
        let again = apply(
            adopted,
            Outcome::Loaded(unchanged),
            &policy(),
            secs(2),
            utc(),
        );
        assert_eq!(
            again.note, None,
            "nothing to say about an unchanged document"
        );
    }

    #[test]
    fn only_a_pending_new_refresh_token_counts_as_unsaved() {
        let state = with_access("rt", secs(600));
        assert!(state.unsaved_refresh_token().is_none());
        let marked = apply(state, Outcome::Sending, &policy(), secs(1), utc());
        assert!(
            marked.unsaved_refresh_token().is_none(),
            "a state mark is not a token"
        );
        let rotated = refreshed(
            with_access("rt", secs(600)),
            session(chrono::Duration::minutes(30), None),
            Duration::ZERO,
        );
        let unsaved = rotated.unsaved_refresh_token().unwrap();
        assert_eq!(unsaved.refresh_token.expose_secret(), "rt-new");
        assert!(saved(rotated).unsaved_refresh_token().is_none());
        let replaced = apply(
            State::default(),
            Outcome::Replaced(document("rt-operator", 0)),
            &policy(),
            Duration::ZERO,
            utc(),
        );
        assert!(replaced.unsaved_refresh_token().is_some());
    }

    #[test]
    fn every_attempt_is_marked_before_it_is_sent() {
        let state = apply(
            with_access("rt", secs(30)),
            Outcome::Sending,
            &policy(),
            secs(20),
            utc(),
        );
        assert!(matches!(
            state.tokens.as_ref().unwrap().state,
            TokenState::PossiblyRotated { attempts: 1, .. }
        ));
        assert!(state.unsaved_news_of_a_sent_token());
        assert!(matches!(step(&state, secs(20)), Step::Save(_)));
    }

    #[test]
    fn a_store_that_went_back_to_the_rotated_away_tokens_gets_the_newer_ones_again() {
        let state = saved(refreshed(
            with_access("rt", secs(600)),
            session(chrono::Duration::minutes(30), None),
            Duration::ZERO,
        ));
        assert_eq!(state.tokens.as_ref().unwrap().version, 2);
        // A failover lost the save: the store holds version 1 with the token that was sent.
        let state = apply(
            state,
            Outcome::Loaded(Some(document("rt", 1))),
            &policy(),
            secs(1),
            utc(),
        );
        let tokens = state.tokens.as_ref().unwrap();
        assert_eq!(tokens.refresh_token.expose_secret(), "rt-new");
        assert_eq!(tokens.version, 1);
        assert!(matches!(step(&state, secs(1)), Step::Save(_)));
        // A document from before what this host has seen, with a token it never saw rotated,
        // is not adopted either: the newer tokens go back.
        let state = apply(
            saved(state),
            Outcome::Loaded(Some(document("rt-older", 1))),
            &policy(),
            secs(2),
            utc(),
        );
        assert_eq!(
            state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
            "rt-new"
        );
        assert!(matches!(step(&state, secs(2)), Step::Save(_)));
        // An operator's new document at a lower version is adopted: its generation is newer.
        let state = apply(
            saved(state),
            Outcome::Loaded(Some(operator_document("rt-operator", 1))),
            &policy(),
            secs(3),
            utc(),
        );
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
        successor.lineage.rotated =
            vec![policy().fingerprints.fingerprint(&RefreshToken::new("rt"))];
        let state = apply(
            state,
            Outcome::Loaded(Some(successor.clone())),
            &policy(),
            secs(1),
            utc(),
        );
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
        let state = apply(
            state,
            Outcome::Loaded(Some(StoredTokens {
                version: 4,
                ..*resaved
            })),
            &policy(),
            secs(3),
            utc(),
        );
        assert!(state.pending.is_none());
        assert!(!matches!(step(&state, secs(3)), Step::Save(_)));

        // The same with a write-back of rt already pending (it read an older document first).
        let mut state = with_access("rt", secs(600));
        state.seen = (0, 10);
        let state = apply(
            state,
            Outcome::Loaded(Some(document("rt-0", 1))),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(state.pending.is_some(), "rt-0 is older: rt goes back");
        let state = apply(
            state,
            Outcome::Loaded(Some(successor)),
            &policy(),
            secs(2),
            utc(),
        );
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
        state = apply(
            state,
            Outcome::Refreshed {
                sent: RefreshToken::new("rt"),
                session: Box::new(session),
                jitter: 0.0,
            },
            &policy(),
            secs(1),
            utc(),
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
        let state = apply(
            state,
            Outcome::Loaded(Some(spent)),
            &policy(),
            secs(2),
            utc(),
        );
        assert_eq!(
            state.tokens.as_ref().unwrap().refresh_token.expose_secret(),
            "rt-4"
        );
    }

    /// Two rotations (rt → rt-2 → rt-3), each saved, then the store goes back to the first.
    fn rotated_twice() -> State {
        let mut state = with_access("rt", secs(600));
        for (sent, new) in [("rt", "rt-2"), ("rt-2", "rt-3")] {
            let mut session = session(chrono::Duration::minutes(30), None);
            session.refresh_token = RefreshToken::new(new);
            state = saved(apply(
                state,
                Outcome::Refreshed {
                    sent: RefreshToken::new(sent),
                    session: Box::new(session),
                    jitter: 0.0,
                },
                &policy(),
                Duration::ZERO,
                utc(),
            ));
        }
        state
    }

    #[test]
    fn row_6_a_store_that_went_back_two_rotations_is_recognised_by_fingerprint_and_never_sent_from()
    {
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
        let state = apply(
            state,
            Outcome::Loaded(Some(document("rt", 40))),
            &policy(),
            secs(1),
            utc(),
        );
        let tokens = state.tokens.as_ref().unwrap();
        assert_eq!(tokens.refresh_token.expose_secret(), "rt-3");
        assert_eq!(tokens.version, 40, "written back over what is there");
        assert!(tokens.lineage.restored_at.is_some());
        let to_save = state.document_to_save().unwrap();
        assert!(to_save.lineage.sequence > saved_sequence);
        assert!(matches!(step(&state, secs(1)), Step::Save(_)));
        // A fresh host reading a document whose list names rt-2 never sends rt-2.
        let fresh = apply(
            State::default(),
            Outcome::Loaded(Some(StoredTokens {
                lineage: written.lineage.clone(),
                ..document("rt-2", 7)
            })),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(matches!(
            step(&fresh, secs(1)),
            Step::Fail(TokenError::Store(_))
        ));
    }

    #[test]
    fn a_server_that_answers_with_the_same_refresh_token_did_not_rotate_it() {
        let mut same = session(chrono::Duration::minutes(30), None);
        same.refresh_token = RefreshToken::new("rt");
        let state = saved(apply(
            with_access("rt", secs(600)),
            Outcome::Refreshed {
                sent: RefreshToken::new("rt"),
                session: Box::new(same),
                jitter: 0.0,
            },
            &policy(),
            Duration::ZERO,
            utc(),
        ));
        assert!(!state.knows_rotated(&policy().fingerprints, &RefreshToken::new("rt")));
        assert!(state.tokens.as_ref().unwrap().lineage.rotated.is_empty());
    }

    /// A document as a store reads it from another server instance than the one that saved it.
    fn from_another_instance(refresh: &str, version: u64) -> StoredTokens {
        let mut doc = document(refresh, version);
        doc.lineage.instance_changed = true;
        doc
    }

    #[test]
    fn row_9_a_newcomer_reading_a_store_that_changed_instance_writes_it_back_and_waits_the_grace() {
        // A process started right after a failover or a restore knows nothing newer: the
        // instance change alone holds its refresh until hosts holding newer tokens wrote them
        // back.
        let state = apply(
            State::default(),
            Outcome::Loaded(Some(from_another_instance("rt-5", 5))),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(matches!(step(&state, secs(1)), Step::Save(_)));
        let written = state.document_to_save().unwrap();
        assert_eq!(written.lineage.restored_at, Some(utc()));
        assert!(!written.lineage.instance_changed);
        let state = apply(state, Outcome::Saved(6), &policy(), secs(1), utc());
        waits_the_grace_from_1_s(&state);
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

    #[test]
    fn row_9_a_mark_the_store_lost_under_a_write_back_numbered_as_it_is_written_back_again() {
        // This host saw the mark of a request in flight at sequence 7. The store then lost it,
        // and a host that never saw the mark wrote back its older copy, numbered 7 as well.
        let mut marked = possibly_rotated(1);
        marked.lineage.sequence = 7;
        let state = State::from_document(document("rt", 3), &policy(), Duration::ZERO, utc());
        let state = apply(
            state,
            Outcome::Loaded(Some(marked)),
            &policy(),
            secs(1),
            utc(),
        );
        let mut written_back = document("rt", 1);
        written_back.lineage.sequence = 7;
        written_back.lineage.restored_at = Some(utc());
        let state = apply(
            state,
            Outcome::Loaded(Some(written_back)),
            &policy(),
            secs(2),
            utc(),
        );
        let saved = state.document_to_save().expect("the mark is written back");
        assert!(matches!(
            saved.state,
            TokenState::PossiblyRotated { attempts: 1, .. }
        ));
        // Without the mark (a copy of what this host saw), the same document is simply read.
        let mut same = possibly_rotated(1);
        same.lineage.sequence = 7;
        same.version = 1;
        let state = State::from_document(possibly_rotated(1), &policy(), Duration::ZERO, utc());
        let state = apply(
            state,
            Outcome::Loaded(Some(same)),
            &policy(),
            secs(2),
            utc(),
        );
        assert!(state.pending.is_none());
    }

    #[test]
    fn the_same_document_read_from_another_instance_is_written_back_with_the_grace() {
        let current = rotated_twice().tokens.unwrap();
        let mut moved = current.clone();
        moved.lineage.instance_changed = true;
        let state = apply(
            rotated_twice(),
            Outcome::Loaded(Some(moved)),
            &policy(),
            secs(1),
            utc(),
        );
        let written = state.document_to_save().expect("written back");
        assert_eq!(written.refresh_token.expose_secret(), "rt-3");
        assert_eq!(written.lineage.restored_at, Some(utc()));
        // Read from the instance that saved it, it is simply current.
        let state = apply(
            rotated_twice(),
            Outcome::Loaded(Some(current)),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(state.pending.is_none());
    }

    #[test]
    fn row_9_written_back_tokens_are_not_refreshed_from_before_the_restore_grace() {
        let state = apply(
            rotated_twice(),
            Outcome::Loaded(None),
            &policy(),
            secs(1),
            utc(),
        );
        assert!(matches!(step(&state, secs(1)), Step::Save(_)));
        let state = apply(state, Outcome::Saved(1), &policy(), secs(1), utc());
        let state = apply(
            state,
            Outcome::RenewalRequested(RefreshToken::new("rt-3")),
            &policy(),
            secs(1),
            utc(),
        );
        waits_the_grace_from_1_s(&state);
    }

    #[test]
    fn row_8_a_possibly_rotated_mark_waits_out_the_request_and_a_skewed_clock_at_most_max_cooldown()
    {
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
        let mut marked = document("rt", 3);
        marked.state = TokenState::PossiblyRotated {
            since: utc(),
            attempts: 1,
            last_attempt: utc(),
            deadline: None,
        };
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
}

//! The manager's pure core: what it knows ([`State`]), what to do next ([`decide`]) and what an
//! outcome changes ([`apply`]). No I/O and no clock reads: time comes in as arguments, so every
//! row of the tables below is a unit test with fixed times.
//!
//! One concept per file: `decide.rs` (the first table), `apply.rs` (the second table, but for
//! documents read from the store), `reconcile.rs` (a document read from the store: adopted,
//! written over, or taken as a sign that the store went back), `tests.rs` (the first table's
//! rows in row order, then the outcomes and the store's documents).
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
//! | 10 | access tokens were reported rejected while fresh `n` ≥ 2 times in a row (another endpoint's 401s that no expiry explains: a permission or api-key problem that new tokens do not fix), and the invalidation backoff since the last report has not passed: the minimum interval × 2^(n − 1), at most [`MAX_COOLDOWN`] | `Fail` (access rejected: how many, and when the next refresh may go) |
//! | 11 | the last refresh is more recent than the minimum interval              | `Wait` until it is |
//! | 12 | otherwise                                                               | `Refresh`: mark the attempt in the store, then send |
//!
//! The cooldowns (rows 7 and 8) only hold back sending: the store is read before `decide`, and
//! row 1 serves a valid token another process saved meanwhile, whatever the cooldown (a token
//! past its refresh point but still valid is handed out by the manager while `Fail` stands).
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
//! | access token reported rejected while fresh (the one handed out, not expired, not reported before) | one more rejection in a row, timed now (row 10's backoff) |
//! | access token reported accepted (not one reported rejected) | no rejections in a row |
//! | refreshed while the access token held was not rejected (its refresh point came) | no rejections in a row |
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

mod apply;
mod decide;
mod reconcile;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use apply::apply;
pub(crate) use decide::decide;
use decide::*;
use reconcile::*;

/// When an outcome is applied, and by which rules: what every step of [`apply`] reads besides
/// the state and the outcome.
#[derive(Clone, Copy)]
struct At<'a> {
    policy: &'a Policy,
    /// The monotonic time, in the driver's clock.
    now: Duration,
    /// The wall-clock time (a document's timestamps).
    utc_now: DateTime<Utc>,
}

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
pub(crate) const MAX_COOLDOWN: Duration = Duration::from_secs(15 * 60);

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
    /// What the last store read did that an operator should hear about (the actor logs it).
    pub(crate) note: Option<LoadNote>,
    /// This host's last store call found the store unreachable.
    pub(crate) store_out: bool,
    /// When this host read the store again after finding it unreachable (monotonic).
    pub(crate) store_back: Option<Duration>,
    /// Access tokens reported rejected in a row while they were fresh (row 10). In memory only,
    /// like the rejections themselves.
    pub(crate) rejections: Option<Rejections>,
}

/// Fresh access tokens reported rejected in a row: another endpoint keeps answering 401 to
/// tokens that no expiry explains, which new tokens do not fix (row 10 backs off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejections {
    /// How many in a row (at least 1).
    pub(crate) consecutive: u32,
    /// When the last was reported (monotonic).
    pub(crate) last: Duration,
}

impl Rejections {
    /// No refresh before this: after two or more in a row, the minimum refresh interval doubling
    /// with each from the second, at most [`MAX_COOLDOWN`]; `None` after one (the minimum
    /// interval alone holds then, row 11).
    pub(crate) fn backoff_until(&self, policy: &Policy) -> Option<Deadline> {
        (self.consecutive >= 2).then(|| {
            let wait = policy
                .min_interval
                .saturating_mul(1 << (self.consecutive - 1).min(16))
                .min(MAX_COOLDOWN);
            Deadline::after(self.last, wait)
        })
    }
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

/// What a store read did, for the actor to log (this module does no I/O, logging included).
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
    /// Another endpoint accepted this access token.
    AccessAccepted(Arc<AccessToken>),
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

    fn from_document(tokens: StoredTokens, at: At<'_>) -> Self {
        let access =
            tokens
                .access_token
                .clone()
                .zip(tokens.access_expires)
                .map(|(token, expires)| {
                    let left = (expires - at.utc_now)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(at.policy.max_lifetime);
                    // Handed out while the minimum validity is left (half the lifetime for a
                    // short-lived token, when the document says when it was issued); with no
                    // floor: no refresh was sent here, so a new token may be fetched at once.
                    let lifetime = tokens
                        .refreshed_at
                        .and_then(|issued| (expires - issued).to_std().ok())
                        .unwrap_or(Duration::MAX);
                    let serve = Deadline::after(at.now, left)
                        .minus(at.policy.min_validity.min(lifetime / 2));
                    // What is left stands in for the lifetime in the refresh point, so a
                    // short-lived token adopted from another process is not renewed at once by
                    // every process.
                    let refresh_at = Deadline::after(at.now, left)
                        .minus(at.policy.margin.min(left / 2))
                        .max(Deadline::after(at.now, at.policy.min_interval))
                        .min(serve);
                    Access {
                        token: Arc::new(token),
                        expires: Deadline::after(at.now, left),
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

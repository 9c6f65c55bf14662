//! Reconciling with the store: folding in a document read from it, whose lineage may say
//! that the store went back, lost a mark, or holds what replaced this host's tokens.

use super::*;

/// [`Outcome::Loaded`]: the document folded in ([`loaded`]), then what this host tracks about
/// it (the store's outage, the mark and the restore it first saw, and when).
pub(super) fn read(state: State, stored: Option<StoredTokens>, at: At<'_>) -> State {
    let store_back = if state.store_out {
        Some(at.now)
    } else {
        state.store_back
    };
    let mut state = loaded(
        State {
            note: None,
            ..state
        },
        stored,
        at,
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
            _ => Some((attempts, last_attempt, at.now)),
        },
        _ => None,
    };
    state.track_restore(at.now);
    state
}

/// [`loaded_document`], then the restore grace when the store now answers from another server
/// instance than the one that saved the document.
pub(super) fn loaded(state: State, stored: Option<StoredTokens>, at: At<'_>) -> State {
    let moved_from = stored
        .as_ref()
        .filter(|stored| stored.instance_changed)
        .map(|stored| stored.refresh_token.clone());
    let mut state = loaded_document(state, stored, at);
    if let (Some(predecessor), Some(tokens)) = (moved_from, state.tokens.as_mut()) {
        // Restarted, failed over or restored: the store may have lost later writes that only
        // running hosts hold (a newcomer, or a host that last read before them, cannot tell), or
        // the mark of a request still in flight. Write back the newest this host knows with the
        // restore grace, so nobody refreshes before those hosts wrote back theirs and that
        // request ended.
        tokens.instance_changed = false;
        tokens.lineage.restored_at = Some(at.utc_now);
        if state.pending.is_none() {
            state.pending = Some(Pending {
                overwrites: Overwrites::Successor(predecessor),
                rotation: false,
            });
        }
    }
    state
}

pub(super) fn loaded_document(state: State, stored: Option<StoredTokens>, at: At<'_>) -> State {
    let Some(stored) = stored else {
        return emptied(state, at.utc_now);
    };
    let mut state = state;
    // Fingerprints of rotated-away tokens are facts, whoever wrote them down.
    state.learn_rotated(&stored.lineage.rotated);
    let Some(ours) = &state.tokens else {
        return adopt(state, stored, at);
    };
    let stale = state.knows_rotated(&at.policy.fingerprints, &stored.refresh_token);
    // This host's own token was rotated away (the document may say so itself): it holds
    // nothing newer than a document whose token is not known rotated, whatever its numbering.
    let ours_rotated = state.knows_rotated(&at.policy.fingerprints, &ours.refresh_token);
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
    let read_at = stored.lineage.mark();
    let mut state = match &state.pending {
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
            noted(adopt(state, stored, at), LoadNote::OperatorFollowed)
        }
        Some(pending) => {
            let pending = pending.clone();
            with_pending(
                state,
                stored,
                &pending,
                [same_token, stale, went_back, ours_rotated],
                at,
            )
        }
        None if stored.version == ours.version
            && same_token
            && !went_back
            && !stored.instance_changed =>
        {
            unchanged(state, &stored)
        }
        None if operator => noted(adopt(state, stored, at), LoadNote::OperatorFollowed),
        // Numbered below what this host has seen (two instance changes while a save was in
        // flight can do that), but holding the successor of this host's rotated-away token:
        // writing that token back would start a war no host can win. Adopted (and saved again
        // past what this host has seen).
        None if ours_rotated && !stale => successor_adopted(state, stored, at),
        // (Also with the same token: what this host holds then says more, e.g. a possibly-rotated
        // mark of a request still in flight that the store lost.)
        None if stale || went_back => write_back(state, stored, stale, at.utc_now),
        None => adopt_keeping_attempts(state, stored, same_token, at),
    };
    // Seen, whatever was done with it: a write over it is numbered past it, or the hosts that
    // read it would take that write for the store going back.
    state.seen = state.seen.max(read_at);
    state
}

/// How many refreshes of a token were attempted (its possibly-rotated mark), 0 if none.
pub(super) fn attempts(state: TokenState) -> u32 {
    match state {
        TokenState::PossiblyRotated { attempts, .. } => attempts,
        _ => 0,
    }
}

/// An empty store (flushed, restarted without persistence, a file deleted) while we know tokens:
/// write them back, unless someone else writes first; nobody refreshes from them before the
/// others had a chance to write back newer ones.
pub(super) fn emptied(mut state: State, utc_now: DateTime<Utc>) -> State {
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
pub(super) fn unchanged(mut state: State, stored: &StoredTokens) -> State {
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
pub(super) fn write_back(
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
pub(super) fn successor_adopted(state: State, stored: StoredTokens, at: At<'_>) -> State {
    let below = stored.lineage.mark() < state.seen;
    let same_token = stored.refresh_token.clone();
    let mut adopted = adopt(state, stored, at);
    if below {
        if let Some(tokens) = adopted.tokens.as_mut() {
            tokens.lineage.restored_at = Some(at.utc_now);
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
pub(super) fn adopt_keeping_attempts(
    state: State,
    stored: StoredTokens,
    same_token: bool,
    at: At<'_>,
) -> State {
    let kept = same_token.then(|| {
        (
            state.failure.clone(),
            state.last_refresh,
            state.renewal.clone(),
        )
    });
    let mut adopted = adopt(state, stored, at);
    if let Some((failure, last_refresh, renewal)) = kept {
        adopted.failure = failure;
        adopted.last_refresh = last_refresh;
        adopted.renewal = renewal;
    }
    noted(adopted, LoadNote::Adopted)
}

pub(super) fn noted(state: State, note: LoadNote) -> State {
    State {
        note: Some(note),
        ..state
    }
}

/// A document read while this host has something unsaved (`pending`): ours replaces it when it
/// is newer (the table's "a save pending" rows), or it is adopted. `[same_token, stale,
/// went_back, ours_rotated]` compare it with what this host holds.
pub(super) fn with_pending(
    state: State,
    stored: StoredTokens,
    pending: &Pending,
    [same_token, stale, went_back, ours_rotated]: [bool; 4],
    at: At<'_>,
) -> State {
    let mut state = state;
    // What this host would write holds a token it at.now knows was rotated away: someone sent it
    // and got its successor, which this document holds. Also for a rotation of this host's:
    // its token can only be known rotated once it reached the store and a peer spent it.
    if ours_rotated && !stale {
        if let Overwrites::Successor(_) = pending.overwrites {
            return successor_adopted(state, stored, at);
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
        noted(adopt(state, stored, at), LoadNote::AdoptedOverUnsaved)
    }
}

/// The state after adopting `stored`: its tokens, with this host's memory of rotated-away
/// tokens and of the newest position seen kept.
pub(super) fn adopt(state: State, stored: StoredTokens, at: At<'_>) -> State {
    let seen = state.seen.max(stored.lineage.mark());
    let mut adopted = State::from_document(stored, at);
    adopted.rotated = state.rotated;
    adopted.rejected_access = state.rejected_access;
    adopted.rejections = state.rejections;
    adopted.seen = seen;
    adopted
}

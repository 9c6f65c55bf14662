//! The fleet protocol as a sans-IO state machine: everything a manager does between a caller's
//! request and its answer (take the store's lock, read, decide, extend the lease, mark the
//! attempt, check the lease again, send, save, release, wait), with no I/O, no clock and no
//! tokio inside. The manager's actor (`actor.rs`) and the simulation (`simulation/`) run the same driver:
//! they start a [`Job`], then repeatedly ask [`Driver::next`] for the next [`Effect`], perform
//! it, and hand back what came of it as an [`Event`].
//!
//! The state the decisions read ([`State`]) stays with the caller, which folds in every
//! [`Effect::Apply`] itself and passes the result back on the next call: callers read it
//! without waiting for the driver (the cached path), and an invalidation folds in at any time.
//!
//! The driver owns the store's lock between jobs: while news of a sent token (a rotation above
//! all) cannot be saved, a job ends without releasing it, so that no other process reads the
//! store (which still shows the sent token as usable) and sends it again.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::state::{decide, Outcome, Policy, State, Step};
use super::TokenError;
use crate::secret::RefreshToken;
use crate::store::{StoreError, StoreLock, StoredTokens};

/// A refresh is sent only while the lease has at least the request's timeout plus this left.
pub(crate) const LEASE_SAFETY: Duration = Duration::from_secs(2);

/// The monotonic clock may lag by up to a tick: a lease's time left is counted one tick short.
const CLOCK_TICK: Duration = Duration::from_millis(10);

/// A wait is slept in slices this long, with a read of the store between them (the store
/// watch's interval).
const WAIT_SLICE: Duration = super::STORE_WATCH_INTERVAL;

/// How many read → decide → act rounds one job may take before it gives up (the stored tokens
/// keep changing under it).
pub(crate) const MAX_STEPS: usize = 12;

/// What a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// Until a valid access token is served or an error says why not (a caller, a renewal).
    Answer,
    /// Until nothing is pending (a replacement, a flush, a write-back): never sends a refresh.
    Save,
    /// The pending-save guard's retry: extend the lease still held, then save what is pending.
    RetryPending,
    /// Read the store (without its lock) and fold in what it holds; nothing else.
    Read,
}

/// What the actor performs next.
#[derive(Debug)]
pub(crate) enum Effect<L> {
    /// `store.lock()`; answer [`Event::Locked`].
    Lock,
    /// `store.load()`; answer [`Event::Loaded`].
    Load,
    /// `store.save(tokens, lock)` with the lock [`Driver::lock`] holds; answer [`Event::Saved`].
    Save(Box<StoredTokens>),
    /// `store.extend(lock, by)` on [`Driver::lock_mut`]; answer [`Event::Extended`].
    Extend(Duration),
    /// `store.release(lock)`; answer [`Event::Released`].
    Release(L),
    /// Sleep this long on the manager's clock; answer [`Event::Woke`].
    Sleep(Duration),
    /// Send a refresh of this token; answer [`Event::Answered`] with the outcome to fold in.
    Send(RefreshToken),
    /// Fold this outcome into the state (and pass the new state to the next call); answer
    /// [`Event::Applied`].
    Apply(Outcome),
    /// Log this (answer [`Event::Applied`]).
    Note(Note),
    /// The job is over. `guard_pending`: news of a sent token is unsaved, so the lock is kept
    /// and the pending-save guard should retry every [`PENDING_RETRY`](super::PENDING_RETRY).
    Done {
        result: Result<(), TokenError>,
        guard_pending: bool,
    },
}

/// What the driver logs (it does no I/O; the actor does).
#[derive(Debug)]
pub(crate) enum Note {
    /// A save over a stored document that cannot be read.
    SavingOverUnreadable(String),
    /// A save failed; the tokens are kept in memory.
    SaveFailed(String),
    /// Extending the lease failed while a rotation is unsaved.
    ExtendFailed(String),
}

/// What came of the last effect.
#[derive(Debug)]
pub(crate) enum Event<L> {
    /// Start a job (the first call of every job).
    Start(Job),
    /// An [`Effect::Apply`] or [`Effect::Note`] was done.
    Applied,
    Locked(Result<L, StoreError>),
    Loaded(Result<Option<StoredTokens>, StoreError>),
    Saved(Result<u64, StoreError>),
    Extended(Result<(), StoreError>),
    Released,
    Woke,
    /// The refresh came back (or failed) as this outcome.
    Answered(Outcome),
}

/// The store's lock as the driver holds it, with the lease's deadline on the manager's
/// monotonic clock, counted from before the call that took or extended it.
#[derive(Debug)]
struct Held<L> {
    lock: L,
    deadline: Option<Duration>,
}

impl<L> Held<L> {
    /// How long the lease is still held (`None`: the lock does not run out by itself), less one
    /// tick of the clock.
    fn time_left(&self, now: Duration) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_sub(now).saturating_sub(CLOCK_TICK))
    }
}

/// Where the lease is checked: before the mark, or after it (right before the send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    BeforeMark,
    AfterMark,
}

/// Where a job is.
#[derive(Debug)]
enum Phase {
    /// At the top of the loop.
    Top,
    /// `lock()` asked at this time.
    Locking { asked: Duration },
    /// `load()` under the lock (or without it, for [`Job::Read`]).
    Loading,
    /// The store was read and folded in: decide.
    Deciding,
    /// The stored document cannot be read (at this version): a save may go over it.
    Unreadable { version: u64, error: StoreError },
    /// The pending document is being saved.
    Saving,
    /// The lease is being extended (asked at this time) for this check.
    Extending { asked: Duration, check: Check },
    /// [`Outcome::Sending`] was applied: save the mark.
    Marking,
    /// The mark is being saved.
    SavingMark,
    /// The request is out.
    Sending,
    /// The lock is being released before a wait until this point (on the manager's clock).
    ReleasingToWait(Duration),
    /// Waiting until this point, one [`WAIT_SLICE`] at a time.
    Sleeping { until: Duration },
    /// A slice of a wait is over: the store is read (without the lock) to see whether the wait
    /// is still wanted.
    Peeking { until: Duration },
    /// What the peek read was folded in: go on waiting, or act on it.
    Peeked { until: Duration },
    /// The pending-save guard extends the lease (asked at this time).
    GuardExtending { asked: Duration },
    /// The job ends with this result: release the lock unless news is unsaved, then done.
    Ending(Result<(), TokenError>),
    /// The lock is being released at the end.
    Releasing(Result<(), TokenError>),
}

/// One manager's protocol state machine (see the module docs).
#[derive(Debug)]
pub(crate) struct Driver<L> {
    held: Option<Held<L>>,
    job: Job,
    phase: Phase,
    steps: usize,
    /// The store holds just what this job last saved under the lock it still holds: the next
    /// round needs no read.
    store_known: bool,
    sent: Option<RefreshToken>,
    queue: VecDeque<Effect<L>>,
    /// How much of the lease must be left to send: the request's timeout and a margin.
    lease_needed: Duration,
}

impl<L: StoreLock> Driver<L> {
    /// A driver for a client whose requests time out after `request_timeout`.
    pub(crate) fn new(request_timeout: Duration) -> Self {
        Self {
            held: None,
            job: Job::Answer,
            phase: Phase::Top,
            steps: 0,
            store_known: false,
            sent: None,
            queue: VecDeque::new(),
            lease_needed: request_timeout.saturating_add(LEASE_SAFETY),
        }
    }

    /// The lock held, for [`Effect::Save`].
    pub(crate) fn lock(&self) -> Option<&L> {
        self.held.as_ref().map(|held| &held.lock)
    }

    /// The lock held, for [`Effect::Extend`].
    pub(crate) fn lock_mut(&mut self) -> Option<&mut L> {
        self.held.as_mut().map(|held| &mut held.lock)
    }

    /// The job was abandoned mid-way (its task cancelled, its runtime shut down): the lock is
    /// dropped (a store releases a dropped lock, or lets it run out) unless news of a sent token
    /// is unsaved.
    pub(crate) fn abandon(&mut self, state: &State) {
        self.queue.clear();
        self.phase = Phase::Top;
        if !state.unsaved_news_of_a_sent_token() {
            self.held = None;
        }
    }

    /// How far a lease is extended: one safety margin more than a send wants left, so that the
    /// check after the mark's round trip passes without a second extension.
    fn lease_extension(&self) -> Duration {
        self.lease_needed.saturating_add(LEASE_SAFETY * 2)
    }

    /// The next effect, given what came of the last one and the state as it is now.
    pub(crate) fn next(
        &mut self,
        event: Event<L>,
        state: &State,
        policy: &Policy,
        now: Duration,
        utc_now: DateTime<Utc>,
    ) -> Effect<L> {
        self.handle(event, now);
        loop {
            if let Some(effect) = self.queue.pop_front() {
                return effect;
            }
            if let Some(effect) = self.advance(state, policy, now, utc_now) {
                return effect;
            }
        }
    }

    /// Folds an event into the phase; effects it causes go into the queue.
    fn handle(&mut self, event: Event<L>, now: Duration) {
        match event {
            Event::Start(job) => {
                self.job = job;
                self.steps = 0;
                self.store_known = false;
                self.sent = None;
                self.queue.clear();
                self.phase = match job {
                    Job::RetryPending => match self.held.as_ref() {
                        Some(Held {
                            deadline: Some(_), ..
                        }) => {
                            self.queue.push_back(Effect::Extend(self.lease_extension()));
                            Phase::GuardExtending { asked: now }
                        }
                        _ => {
                            self.job = Job::Save;
                            Phase::Top
                        }
                    },
                    Job::Read => {
                        self.queue.push_back(Effect::Load);
                        Phase::Loading
                    }
                    Job::Answer | Job::Save => Phase::Top,
                };
            }
            Event::Applied => {}
            Event::Locked(result) => {
                let Phase::Locking { asked } = self.phase else {
                    return;
                };
                match result {
                    Ok(lock) => {
                        self.held = Some(Held {
                            deadline: lock.lease().map(|lease| asked.saturating_add(lease)),
                            lock,
                        });
                        self.queue.push_back(Effect::Load);
                        self.phase = Phase::Loading;
                    }
                    Err(error) => self.store_failed(error),
                }
            }
            Event::Loaded(result) => match (result, &self.phase) {
                // A peek that fails changes nothing: the wait goes on.
                (result, &Phase::Peeking { until }) => {
                    if let Ok(stored) = result {
                        self.queue.push_back(Effect::Apply(Outcome::Loaded(stored)));
                    }
                    self.phase = Phase::Peeked { until };
                }
                (Ok(stored), _) => {
                    self.queue.push_back(Effect::Apply(Outcome::Loaded(stored)));
                    self.phase = if self.job == Job::Read {
                        Phase::Ending(Ok(()))
                    } else {
                        Phase::Deciding
                    };
                }
                (Err(error), _) => match error.overwrite_version() {
                    // Decided in `advance`, which knows whether this is a replacement.
                    Some(version) if self.job == Job::Save => {
                        self.phase = Phase::Unreadable { version, error };
                    }
                    _ => self.store_failed(error),
                },
            },
            Event::Saved(result) => match (&self.phase, result) {
                (Phase::Saving, Ok(version)) => {
                    self.queue.push_back(Effect::Apply(Outcome::Saved(version)));
                    self.store_known = true;
                    self.next_round();
                }
                // Another process wrote first: read again and decide again.
                (Phase::Saving, Err(StoreError::Conflict { .. })) => self.next_round(),
                // The lease ran out (this process was paused): take it again, re-read, decide.
                (Phase::Saving, Err(StoreError::LeaseLost)) => {
                    self.held = None;
                    self.next_round();
                }
                (Phase::Saving, Err(error)) => {
                    self.queue
                        .push_back(Effect::Note(Note::SaveFailed(error.to_string())));
                    self.store_failed(error);
                }
                (Phase::SavingMark, Ok(version)) => {
                    self.queue.push_back(Effect::Apply(Outcome::Saved(version)));
                    // The mark took a round trip (or this process was paused): the lease must
                    // still outlast the request.
                    self.keep_lease(Check::AfterMark, now);
                }
                (Phase::SavingMark, Err(error)) => {
                    // Not sent: take the mark back (and nothing else that changed meanwhile).
                    // A mark that went unanswered may still have been written: the state waits
                    // as after any outage.
                    self.queue.push_back(Effect::Apply(Outcome::SendAborted));
                    self.store_failed(error);
                }
                _ => {}
            },
            Event::Extended(result) => match (&self.phase, result) {
                (&Phase::Extending { asked, check }, Ok(())) => {
                    self.extended(asked);
                    match self.held.as_ref().and_then(|held| held.time_left(now)) {
                        Some(left) if left < self.lease_needed => self.fail(TokenError::Store(
                            std::sync::Arc::new(StoreError::LeaseLost),
                        )),
                        _ => self.lease_kept(check),
                    }
                }
                (Phase::Extending { .. }, Err(error)) => self.store_failed(error),
                (&Phase::GuardExtending { asked }, result) => {
                    match result {
                        Ok(()) => self.extended(asked),
                        Err(error) => self
                            .queue
                            .push_back(Effect::Note(Note::ExtendFailed(error.to_string()))),
                    }
                    self.job = Job::Save;
                    self.phase = Phase::Top;
                }
                _ => {}
            },
            Event::Released => match std::mem::replace(&mut self.phase, Phase::Top) {
                Phase::ReleasingToWait(until) => self.sleep(until, now),
                Phase::Releasing(result) => self.phase = Phase::Ending(result),
                other => self.phase = other,
            },
            Event::Woke => {
                if let Phase::Sleeping { until } = self.phase {
                    if now >= until {
                        self.next_round();
                    } else {
                        self.queue.push_back(Effect::Load);
                        self.phase = Phase::Peeking { until };
                    }
                }
            }
            Event::Answered(outcome) => {
                if matches!(self.phase, Phase::Sending) {
                    self.queue.push_back(Effect::Apply(outcome));
                    self.store_known = true;
                    self.sent = None;
                    self.next_round();
                }
            }
        }
    }

    /// Moves the job on from a phase that needs no event (the state may have changed since).
    fn advance(
        &mut self,
        state: &State,
        policy: &Policy,
        now: Duration,
        utc_now: DateTime<Utc>,
    ) -> Option<Effect<L>> {
        match std::mem::replace(&mut self.phase, Phase::Top) {
            Phase::Top => {
                if self.steps >= MAX_STEPS {
                    self.fail(TokenError::Store(std::sync::Arc::new(StoreError::Other(
                        "the stored tokens kept changing while the manager tried to save".into(),
                    ))));
                    return None;
                }
                if state.pending.is_none()
                    && (self.job != Job::Answer || state.fresh(now).is_some())
                {
                    // Done, or another job already did it.
                    self.phase = Phase::Ending(Ok(()));
                    return None;
                }
                if self.held.is_none() {
                    self.store_known = false;
                    self.phase = Phase::Locking { asked: now };
                    return Some(Effect::Lock);
                }
                if std::mem::take(&mut self.store_known) {
                    self.phase = Phase::Deciding;
                    return None;
                }
                self.phase = Phase::Loading;
                Some(Effect::Load)
            }
            Phase::Unreadable { version, error } => {
                // A replacement overwrites a document that cannot be read (corrupt, encrypted
                // with another key, too widely readable): that is what replacing is for. Other
                // news is saved over a corrupt file, never over a document that another key may
                // have encrypted (an operator's re-seed this host cannot read).
                if state.replacing() || !matches!(error, StoreError::Unreadable { .. }) {
                    self.queue
                        .push_back(Effect::Note(Note::SavingOverUnreadable(error.to_string())));
                    self.queue
                        .push_back(Effect::Apply(Outcome::Unreadable(version)));
                    self.phase = Phase::Deciding;
                } else {
                    self.store_failed(error);
                }
                None
            }
            Phase::Deciding => match decide(state, policy, now, utc_now) {
                Step::Serve => {
                    self.phase = Phase::Ending(Ok(()));
                    None
                }
                Step::Save(tokens) => {
                    self.phase = Phase::Saving;
                    Some(Effect::Save(tokens))
                }
                _ if self.job != Job::Answer => {
                    self.phase = Phase::Ending(Ok(()));
                    None
                }
                Step::Fail(error) => {
                    self.fail(error);
                    None
                }
                Step::Wait(until) => match self.held.take() {
                    Some(held) => {
                        self.phase = Phase::ReleasingToWait(until.0);
                        Some(Effect::Release(held.lock))
                    }
                    None => {
                        self.sleep(until.0, now);
                        None
                    }
                },
                Step::Refresh(sent) => {
                    self.sent = Some(sent);
                    self.keep_lease(Check::BeforeMark, now);
                    None
                }
            },
            Phase::Marking => match state.document_to_save() {
                Some(tokens) => {
                    self.phase = Phase::SavingMark;
                    Some(Effect::Save(Box::new(tokens)))
                }
                None => {
                    // (`decide` answers `Refresh` only with tokens, which `Sending` marks.)
                    self.queue.push_back(Effect::Apply(Outcome::SendAborted));
                    self.fail(TokenError::Store(std::sync::Arc::new(StoreError::Other(
                        "there were no tokens to mark before the send".into(),
                    ))));
                    None
                }
            },
            Phase::Ending(result) => {
                // Released and waited for, not left to a drop: a process that exits right after
                // (a command-line tool) must not leave a lease behind for others to wait out.
                if self.job != Job::Read && !state.unsaved_news_of_a_sent_token() {
                    if let Some(held) = self.held.take() {
                        self.phase = Phase::Releasing(result);
                        return Some(Effect::Release(held.lock));
                    }
                }
                if result.is_err() && self.job == Job::Answer {
                    // No background refresh for a cooldown.
                    self.queue.push_back(Effect::Apply(Outcome::TaskFailed));
                }
                self.queue.push_back(Effect::Done {
                    result,
                    guard_pending: state.unsaved_news_of_a_sent_token(),
                });
                None
            }
            Phase::Peeked { until } => {
                // Act at once when the wait is no longer wanted: there is news to write back
                // (the store went back), or another process served a fresh token.
                let news = state.pending.is_some()
                    || (self.job == Job::Answer && state.fresh(now).is_some());
                if news || now >= until {
                    self.next_round();
                } else {
                    self.sleep(until, now);
                }
                None
            }
            waiting => {
                // Every other phase waits for an event: the caller passed the wrong one.
                debug_assert!(false, "the driver was moved on while waiting: {waiting:?}");
                self.phase = waiting;
                Some(Effect::Done {
                    result: Err(TokenError::Interrupted),
                    guard_pending: state.unsaved_news_of_a_sent_token(),
                })
            }
        }
    }

    /// Waits until `until`, one [`WAIT_SLICE`] at a time: between slices the store is read, so
    /// that a host waiting out a mark or a restore grace still writes back what it knows when
    /// the store goes back meanwhile, and stops waiting once another process has finished.
    fn sleep(&mut self, until: Duration, now: Duration) {
        self.queue
            .push_back(Effect::Sleep(until.saturating_sub(now).min(WAIT_SLICE)));
        self.phase = Phase::Sleeping { until };
    }

    /// The next round of the loop: read (unless the store is known), decide, act.
    fn next_round(&mut self) {
        self.steps += 1;
        self.phase = Phase::Top;
    }

    /// A refresh is sent only while the store's lease (if its locks are leases) is still this
    /// process's and outlasts the request: otherwise another process could take the lease and
    /// send the same token. A lease with too little time left is extended first (never
    /// shortened); in any case the possibly-rotated mark saved right before the send checks the
    /// lease's owner, so a lease lost early (evicted, a failover) is noticed before anything is
    /// sent.
    fn keep_lease(&mut self, check: Check, now: Duration) {
        let Some(held) = self.held.as_ref() else {
            self.fail(TokenError::Store(std::sync::Arc::new(
                StoreError::LeaseLost,
            )));
            return;
        };
        match held.time_left(now) {
            // Not a lease, or one with time enough: the mark's save, an owner-checked
            // compare-and-set, is the round trip that notices a lease lost early.
            None => self.lease_kept(check),
            Some(left) if left >= self.lease_needed.saturating_add(LEASE_SAFETY) => {
                self.lease_kept(check)
            }
            Some(_) => {
                self.queue.push_back(Effect::Extend(self.lease_extension()));
                self.phase = Phase::Extending { asked: now, check };
            }
        }
    }

    /// The lease outlasts the request: mark the attempt, or (after the mark) send.
    fn lease_kept(&mut self, check: Check) {
        match (check, self.sent.take()) {
            (Check::BeforeMark, sent) => {
                self.sent = sent;
                self.queue.push_back(Effect::Apply(Outcome::Sending));
                self.phase = Phase::Marking;
            }
            (Check::AfterMark, Some(sent)) => {
                self.queue.push_back(Effect::Send(sent));
                self.phase = Phase::Sending;
            }
            (Check::AfterMark, None) => self.fail(TokenError::Interrupted),
        }
    }

    /// The lease was extended by a call asked at `asked`: its deadline, counted from then.
    fn extended(&mut self, asked: Duration) {
        if let Some(held) = self.held.as_mut() {
            held.deadline = held.lock.lease().map(|lease| asked.saturating_add(lease));
        }
    }

    /// Ends the job with this error.
    fn fail(&mut self, error: TokenError) {
        self.phase = Phase::Ending(Err(error));
    }

    /// Ends the job with a store's error, noting in the state first when the store did not
    /// answer (row 8 of the decision table then waits for an unsaved rotation to be saved).
    /// Every store call that fails goes through here (read, lock, mark, extension, save).
    fn store_failed(&mut self, error: StoreError) {
        if matches!(error, StoreError::Unreachable(_)) {
            self.queue
                .push_back(Effect::Apply(Outcome::StoreUnreachable));
        }
        self.fail(TokenError::Store(std::sync::Arc::new(error)));
    }
}

#[cfg(test)]
mod tests {
    //! The driver's own checks, event by event (the simulation runs it through whole histories).

    use super::*;
    use crate::manager::state::apply;
    use crate::manager::state::tests::{document, policy, utc};

    /// A lease of `lease` from when it was taken or extended.
    #[derive(Debug)]
    struct Lease(Duration);

    impl StoreLock for Lease {
        fn lease(&self) -> Option<Duration> {
            Some(self.0)
        }
    }

    const LEASE: Duration = Duration::from_secs(10);

    /// A driver and the state it decides on, at `now` on the manager's clock.
    struct Run {
        driver: Driver<Lease>,
        state: State,
        now: Duration,
    }

    impl Run {
        /// A host that has read nothing yet; the store holds tokens with no access token: the
        /// next answer refreshes.
        fn new() -> Self {
            Self {
                driver: Driver::new(policy().request_timeout),
                state: State::default(),
                now: Duration::ZERO,
            }
        }

        /// Hands `event` to the driver; folds in what it applies and logs; returns the first
        /// effect that needs the outside world.
        fn next(&mut self, event: Event<Lease>) -> Effect<Lease> {
            let mut event = event;
            loop {
                let effect = self
                    .driver
                    .next(event, &self.state, &policy(), self.now, utc());
                match effect {
                    Effect::Apply(outcome) => {
                        let state = std::mem::take(&mut self.state);
                        self.state = apply(state, outcome, &policy(), self.now, utc());
                    }
                    Effect::Note(_) => {}
                    other => return other,
                }
                event = Event::Applied;
            }
        }

        /// A run that started an answer, took the lease at 0 s and read the document: the mark
        /// is being saved (not answered yet; the lease outlasts the request: no extension before
        /// it).
        fn at_the_mark() -> Self {
            let mut run = Run::new();
            assert!(matches!(run.next(Event::Start(Job::Answer)), Effect::Lock));
            assert!(matches!(
                run.next(Event::Locked(Ok(Lease(LEASE)))),
                Effect::Load
            ));
            match run.next(Event::Loaded(Ok(Some(document("rt", 1))))) {
                Effect::Save(mark) => assert!(matches!(
                    mark.state,
                    crate::store::TokenState::PossiblyRotated { .. }
                )),
                other => panic!("{other:?}"),
            }
            run
        }
    }

    #[test]
    fn a_lease_that_ran_short_while_the_mark_was_saved_is_extended_before_the_send() {
        let mut run = Run::at_the_mark();
        // The mark's answer comes 9 s later (a pause): 1 s of the lease is left, less than
        // the request's timeout and the margin.
        run.now = Duration::from_secs(9);
        match run.next(Event::Saved(Ok(2))) {
            Effect::Extend(by) => assert!(by >= policy().request_timeout + LEASE_SAFETY),
            other => panic!("sent without checking the lease: {other:?}"),
        }
        assert!(matches!(run.next(Event::Extended(Ok(()))), Effect::Send(_)));
    }

    #[test]
    fn a_lease_lost_after_the_mark_sends_nothing_and_fails_the_answer() {
        let mut run = Run::at_the_mark();
        run.now = Duration::from_secs(9);
        assert!(matches!(run.next(Event::Saved(Ok(2))), Effect::Extend(_)));
        let mut effect = run.next(Event::Extended(Err(StoreError::LeaseLost)));
        // Whatever the driver does next (release, note), it never sends.
        for _ in 0..8 {
            match effect {
                Effect::Send(_) => panic!("sent on a lost lease"),
                Effect::Done { result, .. } => {
                    assert!(result.is_err());
                    return;
                }
                Effect::Release(_) => effect = run.next(Event::Released),
                other => panic!("{other:?}"),
            }
        }
        panic!("the job never ended");
    }

    /// Takes the lease and reads tokens written back into a store that went back: the answer
    /// waits the restore grace, slept in slices; returns after the first slice's wake-up.
    fn waiting_out_a_restore_grace() -> Run {
        let mut run = Run::new();
        let mut written_back = document("rt-1", 3);
        written_back.lineage.sequence = 5;
        written_back.lineage.restored_at = Some(utc());
        assert!(matches!(run.next(Event::Start(Job::Answer)), Effect::Lock));
        run.next(Event::Locked(Ok(Lease(LEASE))));
        assert!(matches!(
            run.next(Event::Loaded(Ok(Some(written_back)))),
            Effect::Release(_)
        ));
        match run.next(Event::Released) {
            Effect::Sleep(slice) => assert_eq!(slice, WAIT_SLICE),
            other => panic!("{other:?}"),
        }
        run.now = WAIT_SLICE;
        // Between slices, the store is read without the lock.
        assert!(matches!(run.next(Event::Woke), Effect::Load));
        run
    }

    #[test]
    fn a_host_waiting_out_a_grace_stops_once_another_host_has_refreshed() {
        let mut run = waiting_out_a_restore_grace();
        let mut refreshed = StoredTokens {
            access_token: Some(crate::secret::AccessToken::new("at-2")),
            access_expires: Some(utc() + chrono::Duration::hours(1)),
            ..document("rt-2", 4)
        };
        refreshed.lineage.sequence = 7;
        match run.next(Event::Loaded(Ok(Some(refreshed)))) {
            Effect::Done { result, .. } => assert!(result.is_ok()),
            other => panic!("went on waiting: {other:?}"),
        }
    }

    #[test]
    fn a_host_waiting_out_a_grace_writes_back_at_once_when_the_store_goes_back_again() {
        let mut run = waiting_out_a_restore_grace();
        // The store went back again, to tokens older than those written back.
        let mut older = document("rt-0", 1);
        older.lineage.sequence = 1;
        assert!(matches!(
            run.next(Event::Loaded(Ok(Some(older)))),
            Effect::Lock
        ));
        assert!(
            run.state.pending.is_some(),
            "the newer tokens are to be written back"
        );
    }

    #[test]
    fn a_lease_that_still_outlasts_the_request_after_the_mark_sends_at_once() {
        let mut run = Run::at_the_mark();
        run.now = Duration::from_millis(50);
        assert!(matches!(run.next(Event::Saved(Ok(2))), Effect::Send(_)));
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Performs an extension as a store does: afterwards the lease lasts `by` from when it was
    /// asked.
    fn extended_by(run: &mut Run, by: Duration) -> Effect<Lease> {
        run.driver.lock_mut().unwrap().0 = by;
        run.next(Event::Extended(Ok(())))
    }

    /// Drives a job on to its end, performing every effect but a send as a store that answers
    /// at once; returns whether it sent or saved anything, and how it ended.
    fn to_the_end(run: &mut Run, first: Effect<Lease>) -> (bool, bool, Result<(), TokenError>) {
        let (mut sent, mut saved) = (false, false);
        let mut effect = first;
        for _ in 0..32 {
            effect = match effect {
                Effect::Done { result, .. } => return (sent, saved, result),
                Effect::Send(_) => {
                    sent = true;
                    return (sent, saved, Ok(()));
                }
                Effect::Save(_) => {
                    saved = true;
                    run.next(Event::Saved(Ok(9)))
                }
                Effect::Release(_) => run.next(Event::Released),
                Effect::Lock => run.next(Event::Locked(Ok(Lease(LEASE)))),
                Effect::Load => run.next(Event::Loaded(Ok(None))),
                Effect::Extend(by) => extended_by(run, by),
                Effect::Sleep(_) => run.next(Event::Woke),
                other => panic!("{other:?}"),
            };
        }
        panic!("the job never ended");
    }

    /// Takes the mark's answer at 9 s (1 s of the 10 s lease left): the lease is extended,
    /// asked at 9 s; its answer comes at `answered`.
    fn extension_answered_at(answered: Duration) -> Effect<Lease> {
        let mut run = Run::at_the_mark();
        run.now = secs(9);
        let Effect::Extend(by) = run.next(Event::Saved(Ok(2))) else {
            panic!("not extended");
        };
        run.now = answered;
        extended_by(&mut run, by)
    }

    #[test]
    fn an_extension_answered_too_late_to_outlast_the_request_sends_nothing() {
        // Extended by the request's timeout (1 s) and three margins (2 s each): 7 s from 9 s.
        // At 14 s, 2 s are left, less than the request and one margin (3 s): no send.
        match extension_answered_at(secs(14)) {
            Effect::Send(_) => panic!("sent on a lease that cannot outlast the request"),
            Effect::Release(_) | Effect::Done { .. } => {}
            other => panic!("{other:?}"),
        }
        // Exactly the request and one margin left (one clock tick counted short): sent.
        let just_enough = secs(16) - LEASE_SAFETY - policy().request_timeout - CLOCK_TICK;
        assert!(matches!(
            extension_answered_at(just_enough),
            Effect::Send(_)
        ));
    }

    #[test]
    fn an_extension_before_the_mark_lasts_through_the_mark_without_a_second_one() {
        let mut run = Run::new();
        assert!(matches!(run.next(Event::Start(Job::Answer)), Effect::Lock));
        // A short lease: 2 s, less than the request and two margins.
        run.next(Event::Locked(Ok(Lease(secs(2)))));
        let Effect::Extend(by) = run.next(Event::Loaded(Ok(Some(document("rt", 1))))) else {
            panic!("not extended before the mark");
        };
        assert!(matches!(extended_by(&mut run, by), Effect::Save(_)));
        // The mark's round trip takes a margin less a moment: no second extension.
        run.now = LEASE_SAFETY - Duration::from_millis(100);
        assert!(matches!(run.next(Event::Saved(Ok(2))), Effect::Send(_)));
    }

    #[test]
    fn an_abandoned_job_drops_its_lock_and_the_next_job_takes_it_again() {
        let mut run = Run::new();
        assert!(matches!(run.next(Event::Start(Job::Answer)), Effect::Lock));
        assert!(matches!(
            run.next(Event::Locked(Ok(Lease(LEASE)))),
            Effect::Load
        ));
        // Nothing unsaved: the lock goes with the job.
        run.driver.abandon(&run.state);
        assert!(run.driver.lock().is_none());
        assert!(matches!(run.next(Event::Start(Job::Answer)), Effect::Lock));
    }

    #[test]
    fn an_abandoned_job_with_an_unsaved_mark_keeps_the_lock_for_the_guard_to_extend() {
        let mut run = Run::at_the_mark();
        // The mark's save is never answered: the store may still show the token as usable.
        run.driver.abandon(&run.state);
        assert!(run.driver.lock().is_some());
        match run.next(Event::Start(Job::RetryPending)) {
            Effect::Extend(by) => assert!(by > policy().request_timeout),
            other => panic!("the guard's retry did not extend the lease: {other:?}"),
        }
        // Then the mark is saved under the same lease: read, and written.
        assert!(matches!(extended_by(&mut run, LEASE), Effect::Load));
        assert!(matches!(
            run.next(Event::Loaded(Ok(Some(document("rt", 1))))),
            Effect::Save(_)
        ));
    }

    #[test]
    fn a_replacement_is_saved_over_an_unreadable_document_and_a_refresh_is_not() {
        let unreadable = || StoreError::Unreadable {
            store: "test".into(),
            reason: crate::store::UnreadableReason::WrongKeyOrAltered,
            version: 7,
        };
        let mut run = Run::new();
        run.state = apply(
            State::default(),
            Outcome::Replaced(document("rt-new", 0)),
            &policy(),
            run.now,
            utc(),
        );
        assert!(matches!(run.next(Event::Start(Job::Save)), Effect::Lock));
        run.next(Event::Locked(Ok(Lease(LEASE))));
        match run.next(Event::Loaded(Err(unreadable()))) {
            Effect::Save(tokens) => assert_eq!(tokens.version, 7),
            other => panic!("the replacement was not saved: {other:?}"),
        }
        // A host holding tokens finds its file corrupt while answering: it fails, and writes
        // nothing over it (an operator's file is not guessed at).
        let mut run = Run::new();
        run.state = apply(
            State::default(),
            Outcome::Loaded(Some(document("rt", 1))),
            &policy(),
            run.now,
            utc(),
        );
        assert!(matches!(run.next(Event::Start(Job::Answer)), Effect::Lock));
        run.next(Event::Locked(Ok(Lease(LEASE))));
        let corrupt = StoreError::Corrupt {
            path: "tokens.json".into(),
            problem: "not JSON".into(),
        };
        let first = run.next(Event::Loaded(Err(corrupt)));
        let (sent, saved, result) = to_the_end(&mut run, first);
        assert!(
            !sent && !saved,
            "wrote over or refreshed from a corrupt file"
        );
        assert!(matches!(result, Err(TokenError::Store(_))), "{result:?}");
    }

    #[test]
    fn a_save_that_lost_a_race_reads_the_store_again() {
        let mut run = Run::at_the_mark();
        assert!(matches!(run.next(Event::Saved(Ok(2))), Effect::Send(_)));
        let answer = Outcome::Failed {
            sent: crate::secret::RefreshToken::new("rt"),
            error: crate::response::error_for_status_code(503),
        };
        // The mark is taken back (a pending save): another process wrote first.
        assert!(matches!(run.next(Event::Answered(answer)), Effect::Save(_)));
        assert!(matches!(
            run.next(Event::Saved(Err(StoreError::Conflict {
                expected: 2,
                found: 3
            }))),
            Effect::Load
        ));
    }

    /// A host that holds `rt`'s rotation, unsaved: the next save job writes it.
    fn holding_an_unsaved_rotation() -> Run {
        let mut run = Run::new();
        let loaded = apply(
            State::default(),
            Outcome::Loaded(Some(document("rt", 1))),
            &policy(),
            run.now,
            utc(),
        );
        let mut session = crate::session::Session::example(
            utc() + chrono::Duration::hours(1),
            utc() + chrono::Duration::days(7),
            None,
        );
        session.access_token = crate::secret::AccessToken::new("at-new");
        session.refresh_token = crate::secret::RefreshToken::new("rt-new");
        run.state = apply(
            loaded,
            Outcome::Refreshed {
                sent: crate::secret::RefreshToken::new("rt"),
                session: Box::new(session),
                jitter: 0.0,
            },
            &policy(),
            run.now,
            utc(),
        );
        assert!(run.state.unsaved_refresh_token().is_some());
        run
    }

    /// Starts a save job on `run` and reads `read` from the store under the lock.
    fn saving_and_reading(
        run: &mut Run,
        read: Result<Option<StoredTokens>, StoreError>,
    ) -> Effect<Lease> {
        assert!(matches!(run.next(Event::Start(Job::Save)), Effect::Lock));
        assert!(matches!(
            run.next(Event::Locked(Ok(Lease(LEASE)))),
            Effect::Load
        ));
        run.next(Event::Loaded(read))
    }

    #[test]
    fn a_rotation_is_saved_over_a_corrupt_file_but_never_over_a_document_another_key_encrypted() {
        let mut run = holding_an_unsaved_rotation();
        let corrupt = StoreError::Corrupt {
            path: "tokens.json".into(),
            problem: "not JSON".into(),
        };
        assert!(matches!(
            saving_and_reading(&mut run, Err(corrupt)),
            Effect::Save(_)
        ));
        let mut run = holding_an_unsaved_rotation();
        let other_key = StoreError::Unreadable {
            store: "test".into(),
            reason: crate::store::UnreadableReason::WrongKeyOrAltered,
            version: 4,
        };
        let first = saving_and_reading(&mut run, Err(other_key));
        let (sent, saved, result) = to_the_end(&mut run, first);
        assert!(
            !sent && !saved,
            "wrote over a document another key may have encrypted"
        );
        assert!(result.is_err());
        assert!(
            run.state.unsaved_refresh_token().is_some(),
            "the rotation is kept"
        );
    }

    #[test]
    fn a_save_job_that_adopts_an_operators_tokens_ends_without_refreshing() {
        let mut run = holding_an_unsaved_rotation();
        // An operator seeded new tokens meanwhile (a newer generation): they are followed, and
        // the save job has nothing left to do; it must not refresh them.
        let mut seeded = document("rt-seeded", 6);
        seeded.lineage.generation = 5;
        let first = saving_and_reading(&mut run, Ok(Some(seeded)));
        let (sent, saved, result) = to_the_end(&mut run, first);
        assert!(!sent && !saved, "a save job marked or sent a refresh");
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn only_a_failed_answer_holds_background_refreshes_for_a_cooldown() {
        // A save job that succeeds: no cooldown.
        let mut run = holding_an_unsaved_rotation();
        let first = saving_and_reading(&mut run, Ok(Some(document("rt", 1))));
        let (_, saved, result) = to_the_end(&mut run, first);
        assert!(saved && result.is_ok());
        assert!(run.state.quiet_until.is_none());
        // An answer that serves a fresh token: no cooldown either.
        let mut run = Run::new();
        let fresh = StoredTokens {
            access_token: Some(crate::secret::AccessToken::new("at")),
            access_expires: Some(utc() + chrono::Duration::hours(1)),
            ..document("rt", 1)
        };
        run.state = apply(
            State::default(),
            Outcome::Loaded(Some(fresh)),
            &policy(),
            run.now,
            utc(),
        );
        let first = run.next(Event::Start(Job::Answer));
        let (sent, _, result) = to_the_end(&mut run, first);
        assert!(!sent && result.is_ok());
        assert!(run.state.quiet_until.is_none());
        // An answer that fails (the store cannot be locked): a cooldown.
        let mut run = Run::new();
        assert!(matches!(run.next(Event::Start(Job::Answer)), Effect::Lock));
        let busy = StoreError::Busy {
            waited: Duration::from_secs(10),
        };
        let first = run.next(Event::Locked(Err(busy)));
        let (_, _, result) = to_the_end(&mut run, first);
        assert!(result.is_err());
        assert!(run.state.quiet_until.is_some());
    }

    #[test]
    fn a_peek_that_finds_nothing_new_sleeps_on_without_the_lock() {
        let mut run = waiting_out_a_restore_grace();
        // The same written-back document: nothing new.
        let mut written_back = document("rt-1", 3);
        written_back.lineage.sequence = 5;
        written_back.lineage.restored_at = Some(utc());
        match run.next(Event::Loaded(Ok(Some(written_back)))) {
            Effect::Sleep(slice) => assert_eq!(slice, WAIT_SLICE),
            other => panic!("did not go on waiting: {other:?}"),
        }
    }

    #[test]
    fn a_store_that_keeps_changing_under_a_save_ends_the_job_after_max_steps() {
        let mut run = holding_an_unsaved_rotation();
        let mut effect = saving_and_reading(&mut run, Ok(Some(document("rt", 1))));
        let mut rounds = 0;
        for _ in 0..3 * MAX_STEPS {
            effect = match effect {
                // Another process wrote first, every time.
                Effect::Save(_) => {
                    rounds += 1;
                    run.next(Event::Saved(Err(StoreError::Conflict {
                        expected: 1,
                        found: 2,
                    })))
                }
                Effect::Load => run.next(Event::Loaded(Ok(Some(document("rt", 1))))),
                Effect::Release(_) => run.next(Event::Released),
                Effect::Done { result, .. } => {
                    assert!(result.is_err(), "{result:?}");
                    assert!(rounds <= MAX_STEPS, "{rounds} rounds");
                    return;
                }
                other => panic!("{other:?}"),
            };
        }
        panic!("the job never gave up");
    }
}

//! The simulated world: hosts that each run the manager's protocol driver, the store they
//! share, GenLogs, and the scheduler that performs the drivers' effects with latency.
//!
//! Each host owns a [`Driver`] and its [`State`], as a manager does; the world performs every
//! [`Effect`] the driver asks for (a store call, a request, a sleep) and hands the result back
//! as an [`Event`] when it arrives. What the manager's actor adds around the driver (a caller's
//! request starting a job, the pending-save guard retrying every second, the keep-alive's store
//! watch) is modelled here as the actor does it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;

use super::faults::{Faults, Mix};
use super::judge::{Loss, Verdict};
use super::Secs;
use super::{FAULTS_END, LIVENESS_BOUND};
use crate::error::{Error, UnknownOutcome};
use crate::manager::driver::{Driver, Effect, Event, Job};
use crate::manager::state::{apply, Outcome, Policy, State};
use crate::manager::{TokenError, PENDING_RETRY, STORE_WATCH_INTERVAL};
use crate::secret::{AccessToken, ApiKey, RefreshToken};
use crate::session::Session;
use crate::store::{
    check_version, next_version, FingerprintKey, StoreError, StoreLock, StoredTokens, TokenState,
};

/// Simulated time, in milliseconds since the history began.
pub(super) type Ms = u64;

/// A history ends here, or at the first reuse, or after this many events.
const HISTORY_END: Ms = FAULTS_END + LIVENESS_BOUND;
const MAX_EVENTS: usize = 100_000;

/// The Redis store's lock wait and how often a waiting `lock()` asks again.
const LOCK_WAIT: Ms = crate::store::DEFAULT_LOCK_WAIT.as_millis() as Ms;
const LOCK_POLL: Ms = 100;
/// The longest a store call takes before it fails as unreachable (the Redis store's call
/// bound, its default).
const CALL_BOUND: Ms = 1_000;

pub(super) fn ms(duration: Duration) -> Ms {
    duration.as_millis() as Ms
}

/// Rounded up: a wait of 0.4 ms is 1 ms, never 0 (which would not move time on).
fn ms_ceil(duration: Duration) -> Ms {
    duration.as_micros().div_ceil(1000) as Ms
}

fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
        .expect("a valid date")
        .to_utc()
}

pub(super) fn rt(index: usize) -> String {
    format!("rt-{index}")
}

fn index_of(token: &RefreshToken) -> usize {
    token
        .expose_secret()
        .strip_prefix("rt-")
        .and_then(|n| n.parse().ok())
        .expect("every refresh token comes from the model of GenLogs")
}

/// The lock a simulated host holds: the lease's owner id, and how long the store said it lasts
/// from the call that took or last extended it.
#[derive(Debug)]
pub(super) struct SimLock {
    owner: u64,
    lease: Duration,
}

impl StoreLock for SimLock {
    fn lease(&self) -> Option<Duration> {
        Some(self.lease)
    }
}

/// What a host's job waits for.
#[derive(Debug)]
enum Next {
    /// This event, due at the host's next step.
    Deliver(Event<SimLock>),
    /// `lock()`, polling since then.
    Lock { since: Ms },
    /// The request leaves (the driver checked the lease at `checked`).
    Leave { sent: RefreshToken, checked: Ms },
    /// The answer of this flight.
    Await(usize),
}

#[derive(Debug)]
pub(super) struct Task {
    pub(super) job: Job,
    next: Option<Next>,
    /// The keep-alive's store watch: flush when the read leaves something pending.
    then_flush: bool,
    /// The state before the attempt was marked: what the request sends.
    before: Option<State>,
}

#[derive(Debug)]
pub(super) struct Host {
    pub(super) alive: bool,
    pub(super) incarnation: u32,
    pub(super) state: State,
    pub(super) driver: Driver<SimLock>,
    pub(super) policy: Policy,
    pub(super) request_timeout: Ms,
    /// The lease its store takes (per host: stores may be configured differently).
    lease: Ms,
    /// Whether it runs `keep_alive()` (the store watch).
    pub(super) keep_alive: bool,
    mono_offset: Ms,
    /// Wall clock offset from the true time, in milliseconds.
    pub(super) skew: i64,
    /// Every pause, `[from, until)`.
    pub(super) pauses: Vec<(Ms, Ms)>,
    /// Every cut from the store, `[from, until)`.
    pub(super) cuts: Vec<(Ms, Ms)>,
    /// Every store call that hung until its bound or whose answer was lost, `[from, until)`:
    /// the host could not hear from the store meanwhile, even once the fault was over.
    pub(super) hangs: Vec<(Ms, Ms)>,
    restart_at: Ms,
    pub(super) task: Option<Task>,
    /// A job waiting for the running one (the actor runs jobs one at a time).
    queued: Option<Job>,
    next_step: Ms,
    next_watch: Ms,
    /// When the pending-save guard tries again.
    pending_retry_at: Option<Ms>,
    /// When a store read of its last succeeded (as the store was then).
    last_read: Option<Ms>,
    /// When a caller last got a valid access token.
    pub(super) last_served: Option<Ms>,
}

impl Host {
    pub(super) fn paused_until(&self) -> Ms {
        self.pauses.last().map_or(0, |p| p.1)
    }

    pub(super) fn paused_at(&self, at: Ms) -> bool {
        self.pauses
            .iter()
            .any(|&(from, until)| from <= at && at < until)
    }

    pub(super) fn cut_at(&self, at: Ms) -> bool {
        self.cuts
            .iter()
            .any(|&(from, until)| from <= at && at < until)
    }

    pub(super) fn active(&self, now: Ms) -> bool {
        self.alive && !self.paused_at(now)
    }

    pub(super) fn holds(&self, token: &str) -> bool {
        self.state
            .tokens
            .as_ref()
            .is_some_and(|t| t.refresh_token.expose_secret() == token)
    }

    /// Whether nothing tells it that the store went back at `went_back`: it does not watch the
    /// store, runs no job, has no pending save to retry, and has not read the store since. To
    /// the fleet, what it holds in memory is as good as gone until a caller needs a refresh.
    pub(super) fn unaware_of(&self, went_back: Ms) -> bool {
        !self.keep_alive
            && self.task.is_none()
            && self.pending_retry_at.is_none()
            && self.last_read.is_none_or(|at| at < went_back)
    }

    /// The owner id of the lock its driver holds.
    pub(super) fn owner(&self) -> Option<u64> {
        self.driver.lock().map(|lock| lock.owner)
    }
}

/// What GenLogs answers to a request (once processed, or at once for a 503).
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    Rotated(usize),
    Rejected,
    Unavailable,
    /// Processed, then a 5xx (500, 502, 504) instead of the answer.
    ServerError(u16),
}

#[derive(Debug)]
pub(super) struct Flight {
    pub(super) host: usize,
    pub(super) incarnation: u32,
    pub(super) token: usize,
    /// When the driver last checked the lease, and when the request left.
    pub(super) checked_at: Ms,
    pub(super) sent_at: Ms,
    pub(super) deadline: Ms,
    /// The sender's lease was its own with at least the request's timeout left when it left.
    pub(super) fenced: bool,
    /// When the sender's lease ran out, as the store had it when the request left.
    pub(super) lease_expires: Option<Ms>,
    /// When GenLogs processes it (`None`: never).
    pub(super) process_at: Option<Ms>,
    processed: bool,
    /// When the answer reaches the host (`None`: lost, the client times out).
    answer_at: Option<Ms>,
    pub(super) answer: Option<Answer>,
    /// GenLogs answers this 5xx after processing it.
    server_error: Option<u16>,
    /// The document it was refreshed from was marked possibly rotated, or written back.
    pub(super) from_marked: bool,
    pub(super) from_written_back: bool,
    /// Another running host held the same token marked possibly rotated when it left.
    pub(super) mark_known_elsewhere: bool,
    pub(super) delivered: bool,
    /// Whether the valid refresh token was reachable nowhere when it left, and since when, why.
    pub(super) unreachable_at_send: Option<(Ms, Loss)>,
    /// When the lease it was sent under was taken.
    pub(super) lease_granted_at: Option<Ms>,
    /// Its host took GenLogs' answer only after the request's deadline (it was paused).
    pub(super) late: bool,
}

#[derive(Debug)]
pub(super) struct Store {
    pub(super) doc: Option<StoredTokens>,
    /// Every document it held, oldest first, for going back.
    pub(super) history: Vec<Option<StoredTokens>>,
    pub(super) lease: Option<(u64, Ms)>,
    pub(super) paused_until: Ms,
    /// Every pause, `[from, until)` (every host is cut off meanwhile).
    pub(super) pauses: Vec<(Ms, Ms)>,
    next_owner: u64,
    /// When each lease was taken (by owner id, from 1).
    granted: Vec<Ms>,
    /// The server instance answering (Redis's `run_id`): a new one after every fault that
    /// goes back or comes back empty (a failover, a restart, a restore), and the one that
    /// saved the current document.
    instance: u64,
    saved_on: u64,
}

/// Why a store call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreFailure {
    Conflict,
    LeaseLost,
    NotDurable,
}

impl Store {
    pub(super) fn lease_of(&self, owner: u64, now: Ms) -> Option<Ms> {
        match self.lease {
            Some((o, expires)) if o == owner && expires > now => Some(expires),
            _ => None,
        }
    }

    /// When the lease of `owner` was taken.
    pub(super) fn granted_at(&self, owner: u64) -> Option<Ms> {
        let index = usize::try_from(owner.checked_sub(1)?).ok()?;
        self.granted.get(index).copied()
    }

    /// `SET lock owner NX PX`.
    fn lock(&mut self, lease: Ms, now: Ms) -> Option<u64> {
        if matches!(self.lease, Some((_, expires)) if expires > now) {
            return None;
        }
        self.next_owner += 1;
        self.granted.push(now);
        self.lease = Some((self.next_owner, now + lease));
        Some(self.next_owner)
    }

    /// The Redis load script: the document, flagged when another instance saved it.
    fn load(&self) -> Option<StoredTokens> {
        self.doc.clone().map(|mut doc| {
            doc.instance_changed = self.saved_on != self.instance;
            doc
        })
    }

    /// A failover, a restart or a restore: another instance answers from now on.
    pub(super) fn new_instance(&mut self) {
        self.instance += 1;
    }

    /// The Redis save script: the lease's owner, then the version.
    fn save(&mut self, doc: &StoredTokens, owner: u64, now: Ms) -> Result<u64, StoreFailure> {
        self.lease_of(owner, now).ok_or(StoreFailure::LeaseLost)?;
        check_version(doc.version, self.doc.as_ref().map(|d| d.version))
            .map_err(|_| StoreFailure::Conflict)?;
        let version = next_version(doc.version).map_err(|_| StoreFailure::Conflict)?;
        let saved = StoredTokens {
            version,
            ..doc.clone()
        };
        self.doc = Some(saved.clone());
        self.history.push(Some(saved));
        self.saved_on = self.instance;
        Ok(version)
    }

    /// Owner-checked, never shortened; returns the lease's expiry.
    fn extend(&mut self, owner: u64, by: Ms, now: Ms) -> Result<Ms, StoreFailure> {
        let expires = self.lease_of(owner, now).ok_or(StoreFailure::LeaseLost)?;
        let expires = expires.max(now + by);
        self.lease = Some((owner, expires));
        Ok(expires)
    }

    fn release(&mut self, owner: u64) {
        if matches!(self.lease, Some((o, _)) if o == owner) {
            self.lease = None;
        }
    }
}

/// GenLogs: one grant, its chain of refresh tokens (`rt-0`, `rt-1`, …).
#[derive(Debug)]
pub(super) struct GenLogs {
    /// The index of the valid refresh token.
    pub(super) current: usize,
    /// Which flight spent each refresh token.
    pub(super) spent_by: Vec<Option<usize>>,
    /// When each refresh token was issued.
    issued_at: Vec<Ms>,
    pub(super) revoked: bool,
    access_lifetime: Ms,
}

/// A write the store took (for the liveness check).
#[derive(Debug, Clone, Copy)]
pub(super) struct Write {
    pub(super) at: Ms,
}

pub(super) struct Sim {
    pub(super) rng: fastrand::Rng,
    pub(super) now: Ms,
    pub(super) mix: Mix,
    pub(super) hosts: Vec<Host>,
    pub(super) store: Store,
    pub(super) genlogs: GenLogs,
    pub(super) flights: Vec<Flight>,
    pub(super) writes: Vec<Write>,
    /// When every live host had served a valid access token after the faults ended.
    pub(super) converged_at: Option<Ms>,
    next_random: Ms,
    /// Since when the valid refresh token has been unreachable, and why.
    pub(super) unreachable: Option<(Ms, Loss)>,
    /// Every time it was held only by isolated (or unaware) hosts, `[from, until)`, and why.
    pub(super) isolations: Vec<(Ms, Ms, Loss)>,
    /// When the store went back or came back empty, and whether it lost the lease then.
    pub(super) store_faults: Vec<(Ms, bool)>,
    /// What the event being run would lose the valid token to.
    pub(super) cause: Option<Loss>,
    pub(super) log: Option<String>,
    pub(super) verdict: Verdict,
}

impl Sim {
    pub(super) fn new(seed: u64, faults: Faults, log: bool) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let key = FingerprintKey::from_api_key(&ApiKey::new("simulation"));
        let mix = Mix::random(&mut rng, faults);
        let access_lifetime = rng.u64(30_000..=180_000);
        let mut hosts = (0..rng.usize(2..=5))
            .map(|_| {
                let skew = match rng.u32(0..10) {
                    0..=3 => 0,
                    4..=5 => rng.i64(-5_000..=5_000),
                    6 => 3_600_000,
                    7 => -3_600_000,
                    _ => rng.i64(-3_600_000..=3_600_000),
                };
                // Hosts configured differently: the request timeout (the default, or shorter,
                // or longer), the store's lease (the default, or one shorter than a request,
                // which the driver must extend), and whether the keep-alive runs.
                let request_timeout = match rng.u32(0..4) {
                    0 => Duration::from_secs(10),
                    1 => Duration::from_secs(45),
                    _ => crate::config::DEFAULT_TIMEOUT,
                };
                let lease = match rng.u32(0..3) {
                    0 => rng.u64(5_000..=20_000),
                    _ => ms(request_timeout) + 15_000,
                };
                let policy = Policy {
                    margin: crate::manager::DEFAULT_REFRESH_MARGIN,
                    jitter: crate::manager::DEFAULT_REFRESH_JITTER,
                    cooldown: crate::manager::DEFAULT_RETRY_COOLDOWN,
                    min_interval: crate::manager::DEFAULT_MIN_REFRESH_INTERVAL,
                    max_clock_skew: crate::manager::DEFAULT_MAX_CLOCK_SKEW,
                    max_lifetime: crate::manager::MAX_ACCESS_LIFETIME,
                    min_validity: crate::manager::DEFAULT_MIN_VALIDITY,
                    request_timeout,
                    // Set below to the fleet's longest, as the builder's docs ask.
                    fleet_request_timeout: request_timeout,
                    outage_settle: crate::manager::state::outage_settle(Duration::from_millis(
                        CALL_BOUND,
                    )),
                    fingerprints: key,
                };
                let start = rng.u64(0..3_000);
                Host {
                    alive: true,
                    incarnation: 0,
                    state: State::default(),
                    driver: Driver::new(request_timeout),
                    policy,
                    request_timeout: ms(request_timeout),
                    lease,
                    keep_alive: rng.u32(0..5) != 0,
                    mono_offset: rng.u64(0..1_000_000_000),
                    skew,
                    pauses: Vec::new(),
                    cuts: Vec::new(),
                    hangs: Vec::new(),
                    restart_at: 0,
                    task: None,
                    queued: None,
                    next_step: start,
                    next_watch: start + rng.u64(0..ms(STORE_WATCH_INTERVAL)),
                    pending_retry_at: None,
                    last_read: None,
                    last_served: None,
                }
            })
            .collect::<Vec<Host>>();
        let longest = hosts
            .iter()
            .map(|host| host.policy.request_timeout)
            .max()
            .unwrap_or_default();
        for host in &mut hosts {
            host.policy.fleet_request_timeout = longest;
        }
        let doc = StoredTokens {
            refresh_token: RefreshToken::new(rt(0)),
            refresh_expires: Some(epoch() + chrono::Duration::days(7)),
            access_token: Some(AccessToken::new("at-0")),
            access_expires: Some(epoch() + chrono::Duration::seconds(20)),
            state: TokenState::Usable,
            refreshed_at: Some(epoch()),
            version: 1,
            lineage: Default::default(),
            instance_changed: false,
        };
        Sim {
            rng,
            now: 0,
            mix,
            hosts,
            store: Store {
                doc: Some(doc.clone()),
                history: vec![Some(doc)],
                lease: None,
                paused_until: 0,
                pauses: Vec::new(),
                next_owner: 0,
                granted: Vec::new(),
                instance: 0,
                saved_on: 0,
            },
            genlogs: GenLogs {
                current: 0,
                spent_by: vec![None],
                issued_at: vec![0],
                revoked: false,
                access_lifetime,
            },
            flights: Vec::new(),
            writes: Vec::new(),
            converged_at: None,
            next_random: 0,
            unreachable: None,
            isolations: Vec::new(),
            store_faults: Vec::new(),
            cause: None,
            log: log.then(String::new),
            verdict: Verdict::Clean,
        }
    }

    fn mono(&self, h: usize) -> Duration {
        Duration::from_millis(self.now + self.hosts[h].mono_offset)
    }

    fn utc(&self, h: usize) -> DateTime<Utc> {
        epoch() + chrono::Duration::milliseconds(self.now as i64 + self.hosts[h].skew)
    }

    pub(super) fn fail(&mut self, class: &'static str, what: String) {
        note!(self, "FAILURE [{class}]: {what}");
        if !matches!(self.verdict, Verdict::Failure(..)) {
            self.verdict = Verdict::Failure(class, what);
        }
    }

    /// A store round trip: usually quick, sometimes slow.
    fn latency(&mut self) -> Ms {
        if self.rng.u32(0..100) < 3 {
            self.rng.u64(200..CALL_BOUND - 100)
        } else {
            self.rng.u64(1..30)
        }
    }

    // ----- the run -----

    pub(super) fn run(mut self) -> (Verdict, Option<String>, usize) {
        note!(
            self,
            "{} hosts (request timeouts {:?} ms, leases {:?} ms, keep-alive {:?}), skews {:?} ms, \
             access tokens live {} s, {:?}",
            self.hosts.len(),
            self.hosts
                .iter()
                .map(|h| h.request_timeout)
                .collect::<Vec<_>>(),
            self.hosts.iter().map(|h| h.lease).collect::<Vec<_>>(),
            self.hosts.iter().map(|h| h.keep_alive).collect::<Vec<_>>(),
            self.hosts.iter().map(|h| h.skew).collect::<Vec<_>>(),
            self.genlogs.access_lifetime / 1000,
            self.mix
        );
        let mut events = 0;
        while self.now < HISTORY_END
            && !self.genlogs.revoked
            && !matches!(self.verdict, Verdict::Failure(..))
            && !self.live_enough()
        {
            if events == MAX_EVENTS {
                self.fail(
                    "the fleet never rests",
                    format!("{MAX_EVENTS} events by {:.3}s", self.now as f64 / 1000.0),
                );
                break;
            }
            events += 1;
            self.event();
            self.track_reachability();
        }
        if !self.genlogs.revoked && !matches!(self.verdict, Verdict::Failure(..)) {
            self.check_liveness();
        }
        (self.verdict, self.log, events)
    }

    /// Runs the next event in time.
    fn event(&mut self) {
        #[derive(Clone, Copy)]
        enum Next {
            Random,
            Process(usize),
            Step(usize),
            Watch(usize),
            RetryPending(usize),
            Restart(usize),
            End,
        }
        let mut next = (self.next_random, Next::Random);
        let mut consider = |at: Ms, what: Next| {
            if at < next.0 {
                next = (at, what);
            }
        };
        consider(HISTORY_END, Next::End);
        for (f, flight) in self.flights.iter().enumerate() {
            if let (Some(at), false) = (flight.process_at, flight.processed) {
                consider(at, Next::Process(f));
            }
        }
        for (h, host) in self.hosts.iter().enumerate() {
            if !host.alive {
                consider(host.restart_at, Next::Restart(h));
                continue;
            }
            let paused = host.paused_until();
            if host.task.is_some() {
                consider(host.next_step.max(paused), Next::Step(h));
            }
            if host.keep_alive {
                consider(host.next_watch.max(paused), Next::Watch(h));
            }
            if let Some(at) = host.pending_retry_at {
                consider(at.max(paused), Next::RetryPending(h));
            }
        }
        self.now = self.now.max(next.0);
        self.cause = match next.1 {
            Next::Random | Next::Restart(_) | Next::End => None,
            Next::Process(_) => Some(Loss::AnswerLost),
            Next::Step(h) | Next::Watch(h) | Next::RetryPending(h) => Some(Loss::HostDropped(h)),
        };
        match next.1 {
            Next::End => {}
            Next::Random => {
                self.next_random = self.now + self.rng.u64(1..2_000);
                self.random_event();
            }
            Next::Process(f) => self.process(f),
            Next::Step(h) => self.step(h),
            Next::Watch(h) => self.watch(h),
            Next::RetryPending(h) => self.retry_pending(h),
            Next::Restart(h) => {
                let host = &mut self.hosts[h];
                host.alive = true;
                host.incarnation += 1;
                host.state = State::default();
                host.driver = Driver::new(Duration::from_millis(host.request_timeout));
                host.next_watch = self.now + ms(STORE_WATCH_INTERVAL);
                note!(self, "h{h} starts again with empty memory");
            }
        }
    }

    /// A host crashes: its memory is gone; its lease stays in the store until it runs out.
    pub(super) fn crash(&mut self, h: usize) {
        let now = self.now;
        let restart = self.rng.u64(0..30_000);
        let host = &mut self.hosts[h];
        host.alive = false;
        host.task = None;
        host.queued = None;
        host.pending_retry_at = None;
        host.driver = Driver::new(Duration::from_millis(host.request_timeout));
        host.state = State::default();
        host.restart_at = now + restart;
    }

    // ----- one host: what the actor does around the driver -----

    /// Folds an outcome into a host's state, checking that a pending rotation is never dropped.
    fn apply(&mut self, h: usize, outcome: Outcome) {
        let (now, utc) = (self.mono(h), self.utc(h));
        let host = &mut self.hosts[h];
        let state = std::mem::take(&mut host.state);
        // A pending rotation (not a write-back, which a newer document may replace).
        let unsaved = state
            .unsaved_refresh_token()
            .filter(|_| state.pending.as_ref().is_some_and(|p| p.rotation))
            .map(|t| t.refresh_token.clone());
        let saved = matches!(outcome, Outcome::Saved(_));
        let next = apply(state, outcome, &host.policy, now, utc);
        host.state = next;
        if let (Some(unsaved), false) = (unsaved, saved) {
            let unsaved_spent = self.genlogs.spent_by[index_of(&unsaved)].is_some();
            let unsaved = unsaved.expose_secret();
            // Dropping it loses nothing once a peer spent it (the store showed its successor).
            if !self.hosts[h].holds(unsaved) && !unsaved_spent {
                self.fail(
                    "pending rotation dropped",
                    format!("h{h} dropped its unsaved {unsaved}"),
                );
            }
        }
    }

    /// A caller asks for a token (`access_token()`), or for a renewal (`refresh_now()`).
    pub(super) fn call(&mut self, h: usize, renew: bool) {
        let now = self.mono(h);
        if renew {
            if let Some(known) = self.hosts[h]
                .state
                .tokens
                .as_ref()
                .map(|t| t.refresh_token.clone())
            {
                note!(self, "h{h}: refresh_now()");
                self.apply(h, Outcome::RenewalRequested(known));
            }
        }
        if self.hosts[h].state.valid(now).is_some() {
            self.hosts[h].last_served = Some(self.now);
        }
        let state = &self.hosts[h].state;
        let cached = state
            .servable()
            .filter(|access| !access.serve_until.passed(now))
            .map(|access| {
                access.refresh_at.passed(now)
                    && state.quiet_until.is_none_or(|until| until.passed(now))
            });
        if matches!(cached, Some(false)) && !renew {
            return;
        }
        match &self.hosts[h].task {
            None => {
                note!(self, "h{h}: a caller starts a refresh task");
                self.start(h, Job::Answer, false);
            }
            Some(task) if task.job != Job::Answer => self.hosts[h].queued = Some(Job::Answer),
            Some(_) => {} // joins the refresh task under way
        }
    }

    fn start(&mut self, h: usize, job: Job, then_flush: bool) {
        let at = self.now + 1;
        let host = &mut self.hosts[h];
        host.task = Some(Task {
            job,
            next: Some(Next::Deliver(Event::Start(job))),
            then_flush,
            before: None,
        });
        host.next_step = at;
    }

    /// The keep-alive task's store watch: a read, then a flush when something is pending.
    fn watch(&mut self, h: usize) {
        if self.hosts[h].task.is_some() {
            // It waits for the job under way.
            self.hosts[h].next_watch = self.now + 50;
            return;
        }
        self.hosts[h].next_watch = self.now + ms(STORE_WATCH_INTERVAL);
        if self.hosts[h].state.tokens.is_none() {
            return; // nothing to write back, and nothing to learn before someone asks
        }
        self.start(h, Job::Read, true);
    }

    /// The pending-save guard: while news of a sent token is unsaved, extend the lease and
    /// save again every [`PENDING_RETRY`].
    fn retry_pending(&mut self, h: usize) {
        if self.hosts[h].task.is_some() {
            self.hosts[h].pending_retry_at = Some(self.now + 50);
            return;
        }
        self.hosts[h].pending_retry_at = None;
        if self.hosts[h].state.unsaved_news_of_a_sent_token() {
            self.start(h, Job::RetryPending, false);
        }
    }

    /// A job ended: the guard starts if news is unsaved, a watch's read may flush, a queued
    /// job starts.
    fn end(&mut self, h: usize, result: Result<(), TokenError>, guard_pending: bool) {
        let task = self.hosts[h].task.take().expect("a task to end");
        note!(
            self,
            "h{h} {:?} ends: {}",
            task.job,
            match &result {
                Ok(()) => "ok".to_string(),
                Err(error) => error.to_string(),
            }
        );
        if task.job == Job::Answer && self.hosts[h].state.valid(self.mono(h)).is_some() {
            self.hosts[h].last_served = Some(self.now);
        }
        let host = &mut self.hosts[h];
        if guard_pending
            && matches!(task.job, Job::Answer | Job::RetryPending)
            && host.pending_retry_at.is_none()
        {
            host.pending_retry_at = Some(self.now + ms(PENDING_RETRY));
        }
        if task.then_flush && result.is_ok() && host.state.pending.is_some() {
            note!(
                self,
                "h{h} watch: read {}, writes back {}",
                describe(self.store.doc.as_ref()),
                describe(self.hosts[h].state.tokens.as_ref())
            );
            self.start(h, Job::Save, false);
        } else if let Some(job) = self.hosts[h].queued.take() {
            self.start(h, job, false);
        }
    }

    /// One step of a host's job: the event it waited for has come; the driver says what next.
    fn step(&mut self, h: usize) {
        let now = self.now;
        let next = self.hosts[h]
            .task
            .as_mut()
            .and_then(|task| task.next.take())
            .expect("a task waits for something");
        let event = match next {
            Next::Deliver(event) => event,
            Next::Lock { since } => {
                if self.unreachable_for(h) {
                    self.hosts[h].hangs.push((now, now + CALL_BOUND));
                    self.wait_for(h, Event::Locked(Err(unreachable())), CALL_BOUND);
                    return;
                }
                let lease = self.hosts[h].lease;
                match self.store.lock(lease, now) {
                    Some(owner) => {
                        note!(self, "h{h} takes the lease (owner {owner})");
                        let lock = SimLock {
                            owner,
                            lease: Duration::from_millis(lease),
                        };
                        let latency = self.latency();
                        self.wait_for(h, Event::Locked(Ok(lock)), latency);
                    }
                    None if now.saturating_sub(since) < LOCK_WAIT => {
                        self.set_next(h, Next::Lock { since }, LOCK_POLL)
                    }
                    None => self.wait_for(
                        h,
                        Event::Locked(Err(StoreError::Busy {
                            waited: Duration::from_millis(LOCK_WAIT),
                        })),
                        0,
                    ),
                }
                return;
            }
            Next::Leave { sent, checked } => {
                self.leave(h, sent, checked);
                return;
            }
            Next::Await(f) => match self.answer(h, f) {
                Some(outcome) => Event::Answered(outcome),
                None => return,
            },
        };
        self.drive(h, event);
    }

    /// Hands the driver an event and performs the effects it asks for, until one takes time.
    fn drive(&mut self, h: usize, mut event: Event<SimLock>) {
        loop {
            let (mono, utc) = (self.mono(h), self.utc(h));
            let host = &mut self.hosts[h];
            let effect = host
                .driver
                .next(event, &host.state, &host.policy, mono, utc);
            event = match effect {
                Effect::Apply(outcome) => {
                    if matches!(outcome, Outcome::Sending) {
                        let before = self.hosts[h].state.clone();
                        if let Some(task) = self.hosts[h].task.as_mut() {
                            task.before = Some(before);
                        }
                    }
                    self.apply(h, outcome);
                    Event::Applied
                }
                Effect::Note(what) => {
                    note!(self, "h{h} notes {what:?}");
                    Event::Applied
                }
                Effect::Done {
                    result,
                    guard_pending,
                } => return self.end(h, result, guard_pending),
                Effect::Lock => return self.set_next(h, Next::Lock { since: self.now }, 0),
                Effect::Load => {
                    let result = self.store_call(h, |store, _| Ok(store.load()));
                    if result.0.is_ok() {
                        self.hosts[h].last_read = Some(self.now);
                    }
                    note!(
                        self,
                        "h{h} reads {}",
                        match &result.0 {
                            Ok(doc) => describe(doc.as_ref()),
                            Err(error) => error.to_string(),
                        }
                    );
                    return self.wait_for(h, Event::Loaded(result.0), result.1);
                }
                Effect::Save(doc) => {
                    let owner = self.hosts[h].owner().expect("saves run under the lock");
                    let stored = self.store.doc.as_ref().map(|d| d.version);
                    let not_durable = self.chance(self.mix.not_durable);
                    let result = self.store_call(h, |store, now| {
                        let version = store.save(&doc, owner, now)?;
                        if not_durable {
                            return Err(StoreFailure::NotDurable);
                        }
                        Ok(version)
                    });
                    if self.store.doc.as_ref().map(|d| d.version) != stored {
                        self.writes.push(Write { at: self.now });
                    }
                    note!(
                        self,
                        "h{h} saves {} over v{}: {:?}",
                        describe(Some(&doc)),
                        doc.version,
                        result.0.as_ref().map_err(|e| e.to_string())
                    );
                    return self.wait_for(h, Event::Saved(result.0), result.1);
                }
                Effect::Extend(by) => {
                    let owner = self.hosts[h]
                        .owner()
                        .expect("extensions run under the lock");
                    let (result, delay) =
                        self.store_call(h, |store, now| store.extend(owner, ms(by), now));
                    let now = self.now;
                    let result = result.map(|expires| {
                        if let Some(lock) = self.hosts[h].driver.lock_mut() {
                            lock.lease = Duration::from_millis(expires - now);
                        }
                    });
                    note!(
                        self,
                        "h{h} extends the lease: {:?}",
                        result.as_ref().map_err(|e| e.to_string())
                    );
                    return self.wait_for(h, Event::Extended(result), delay);
                }
                Effect::Release(lock) => {
                    let (_, delay) = self.store_call(h, |store, _| {
                        store.release(lock.owner);
                        Ok(())
                    });
                    return self.wait_for(h, Event::Released, delay);
                }
                Effect::Sleep(wait) => {
                    note!(self, "h{h} waits {wait:?}");
                    return self.wait_for(h, Event::Woke, ms_ceil(wait));
                }
                Effect::Send(sent) => {
                    // The request leaves right after the lease check (a pause may fall between).
                    let after = self.rng.u64(0..3);
                    let checked = self.now;
                    return self.set_next(h, Next::Leave { sent, checked }, after);
                }
            };
        }
    }

    /// Whether a per-call fault that falls `per_mille` times in a thousand falls now (never
    /// once the faults are over).
    fn chance(&mut self, per_mille: u64) -> bool {
        self.now < super::FAULTS_END && self.rng.u64(0..1000) < per_mille
    }

    /// Whether a store call of host `h` now hangs until its timeout.
    fn unreachable_for(&self, h: usize) -> bool {
        self.now < self.store.paused_until || self.hosts[h].cut_at(self.now)
    }

    /// A store call: it hangs until its bound when the store is paused or the host cut off;
    /// otherwise it runs, and its answer may still be lost. Returns the result and when it
    /// arrives.
    fn store_call<T>(
        &mut self,
        h: usize,
        call: impl FnOnce(&mut Store, Ms) -> Result<T, StoreFailure>,
    ) -> (Result<T, StoreError>, Ms) {
        let now = self.now;
        if self.unreachable_for(h) {
            self.hosts[h].hangs.push((now, now + CALL_BOUND));
            return (Err(unreachable()), CALL_BOUND);
        }
        let result = call(&mut self.store, now);
        if self.chance(self.mix.store_answer_lost) {
            note!(self, "h{h}'s store call ran, its answer is LOST");
            self.hosts[h].hangs.push((now, now + CALL_BOUND));
            return (Err(unreachable()), CALL_BOUND);
        }
        let latency = self.latency();
        if self.chance(self.mix.pause_in_call) {
            // The host stops (a GC pause, a VM stolen) while the answer is on its way: it takes
            // the answer only on resume, and whatever it checked before is that much older.
            let d = self.rng.u64(5_000..60_000);
            self.hosts[h].pauses.push((now, now + d));
            note!(self, "h{h} paused for {} during its store call", Secs(d));
        }
        let result = result.map_err(|failure| match failure {
            StoreFailure::Conflict => StoreError::Conflict {
                expected: 0,
                found: 0,
            },
            StoreFailure::LeaseLost => StoreError::LeaseLost,
            StoreFailure::NotDurable => StoreError::NotDurable {
                acknowledged: 0,
                required: 1,
            },
        });
        (result, latency)
    }

    fn set_next(&mut self, h: usize, next: Next, after: Ms) {
        let task = self.hosts[h].task.as_mut().expect("a task");
        task.next = Some(next);
        self.hosts[h].next_step = self.now + after;
    }

    fn wait_for(&mut self, h: usize, event: Event<SimLock>, after: Ms) {
        self.set_next(h, Next::Deliver(event), after);
    }

    /// The request leaves (`send()`), with a fate drawn now.
    fn leave(&mut self, h: usize, sent: RefreshToken, checked: Ms) {
        let now = self.now;
        if self.hosts[h]
            .state
            .knows_rotated(&self.hosts[h].policy.fingerprints, &sent)
        {
            self.fail(
                "sent a token known rotated",
                format!(
                    "h{h} sends {}, which it knows was rotated away",
                    sent.expose_secret()
                ),
            );
        }
        let task = self.hosts[h].task.as_ref().expect("a task");
        let from = task
            .before
            .as_ref()
            .and_then(|s| s.tokens.as_ref())
            .expect("a refresh has tokens");
        let marked = |doc: &StoredTokens| {
            matches!(doc.state, TokenState::PossiblyRotated { .. })
                && doc.refresh_token.expose_secret() == sent.expose_secret()
        };
        let from_marked = marked(from);
        let from_written_back = from.lineage.restored_at.is_some();
        let mark_known_elsewhere = (0..self.hosts.len()).any(|other| {
            // A host waiting for its own request cannot write anything back meanwhile.
            other != h
                && self.hosts[other].active(now)
                && !matches!(
                    self.hosts[other].task,
                    Some(Task {
                        next: Some(Next::Await(_)),
                        ..
                    })
                )
                && self.hosts[other].state.tokens.as_ref().is_some_and(marked)
        });
        let timeout = self.hosts[h].request_timeout;
        let deadline = now + timeout;
        let lease_expires = self.hosts[h]
            .owner()
            .and_then(|owner| self.store.lease_of(owner, now));
        let fenced = lease_expires.is_some_and(|expires| expires >= deadline);
        let m = self.mix;
        // Past the faults, every request is processed and answered.
        let roll = if self.now < super::FAULTS_END {
            self.rng.u64(0..1000)
        } else {
            1000
        };
        let mut flight = Flight {
            host: h,
            incarnation: self.hosts[h].incarnation,
            token: index_of(&sent),
            checked_at: checked,
            sent_at: now,
            deadline,
            fenced,
            lease_expires,
            process_at: None,
            processed: false,
            answer_at: None,
            answer: None,
            server_error: None,
            from_marked,
            from_written_back,
            mark_known_elsewhere,
            delivered: false,
            late: false,
            unreachable_at_send: self.unreachable,
            lease_granted_at: self.hosts[h]
                .owner()
                .and_then(|owner| self.store.granted_at(owner)),
        };
        let process_at = now
            + if self.rng.u32(0..20) == 0 {
                self.rng.u64(1..timeout - 1)
            } else {
                self.rng.u64(5..1_500)
            };
        let fate;
        if roll < m.request_lost {
            fate = "never processed, no answer";
        } else if roll < m.request_lost + m.unavailable {
            fate = "503";
            flight.answer = Some(Answer::Unavailable);
            flight.answer_at = Some(now + self.rng.u64(5..500));
        } else if roll < m.request_lost + m.unavailable + m.answer_lost {
            flight.process_at = Some(process_at);
            if self.rng.bool() {
                fate = "processed, answer lost";
            } else {
                fate = "processed, then a 5xx";
                flight.server_error = Some([500, 502, 504][self.rng.usize(0..3)]);
                flight.answer_at = Some(process_at + 1);
            }
        } else {
            fate = "processed, answered";
            flight.process_at = Some(process_at);
            flight.answer_at = Some(deadline.min(process_at + self.rng.u64(1..1_500)));
        }
        note!(
            self,
            "h{h} SENDS {} ({}fenced; {fate})",
            sent.expose_secret(),
            if fenced { "" } else { "NOT " }
        );
        self.flights.push(flight);
        let f = self.flights.len() - 1;
        let at = self.flights[f].answer_at.unwrap_or(deadline);
        self.set_next(h, Next::Await(f), at - now);
    }

    /// The answer arrives, or the request times out: the outcome to fold in (`None`: not yet).
    fn answer(&mut self, h: usize, f: usize) -> Option<Outcome> {
        let flight = &self.flights[f];
        let arrived = flight.answer_at.is_some_and(|at| at <= self.now);
        if !arrived && self.now < flight.deadline {
            let at = flight.answer_at.unwrap_or(flight.deadline);
            self.set_next(h, Next::Await(f), at - self.now);
            return None;
        }
        let sent = RefreshToken::new(rt(flight.token));
        let flight_deadline = flight.deadline;
        let answer = if arrived {
            match flight.server_error {
                Some(status) => Some(Answer::ServerError(status)),
                None => flight.answer,
            }
        } else {
            None
        };
        self.flights[f].delivered = true;
        self.flights[f].late = arrived && self.now > flight_deadline;
        note!(self, "h{h} gets {answer:?} for {}", sent.expose_secret());
        let server = |status: u16| Error::Server {
            status: StatusCode::from_u16(status).expect("a valid status"),
            retry_after: None,
            message: None,
        };
        Some(match answer {
            Some(Answer::Rotated(new)) => {
                let issued =
                    epoch() + chrono::Duration::milliseconds(self.genlogs.issued_at[new] as i64);
                let expires =
                    issued + chrono::Duration::milliseconds(self.genlogs.access_lifetime as i64);
                let mut session =
                    Session::example(expires, issued + chrono::Duration::days(7), Some(issued));
                session.access_token = AccessToken::new(format!("at-{new}"));
                session.refresh_token = RefreshToken::new(rt(new));
                session.access_expires = expires;
                Outcome::Refreshed {
                    sent,
                    session: Box::new(session),
                    jitter: self.rng.f64(),
                }
            }
            Some(Answer::Rejected) => Outcome::Failed {
                sent,
                error: Error::RefreshTokenRejected { message: None },
            },
            Some(Answer::Unavailable) => Outcome::Failed {
                sent,
                error: server(503),
            },
            Some(Answer::ServerError(status)) => Outcome::Failed {
                sent,
                error: server(status),
            },
            None => Outcome::Failed {
                sent,
                error: Error::OutcomeUnknown {
                    reason: UnknownOutcome::TimedOut,
                    recovered: None,
                    source: None,
                },
            },
        })
    }

    // ----- GenLogs -----

    fn process(&mut self, f: usize) {
        self.flights[f].processed = true;
        let token = self.flights[f].token;
        let answer = if self.genlogs.revoked {
            Answer::Rejected
        } else if token == self.genlogs.current {
            let g = &mut self.genlogs;
            g.current += 1;
            g.spent_by[token] = Some(f);
            g.spent_by.push(None);
            g.issued_at.push(self.now);
            note!(self, "GenLogs rotates {} -> {}", rt(token), rt(token + 1));
            self.unreachable = None;
            Answer::Rotated(token + 1)
        } else {
            self.genlogs.revoked = true;
            note!(
                self,
                "GenLogs sees REUSE of {} (valid: {}): grant revoked",
                rt(token),
                rt(self.genlogs.current)
            );
            self.verdict = self.judge(f);
            Answer::Rejected
        };
        if self.flights[f].server_error.is_none() && self.flights[f].answer_at.is_some() {
            self.flights[f].answer = Some(answer);
        }
    }
}

fn unreachable() -> StoreError {
    StoreError::Unreachable("the simulated store did not answer within its bound".into())
}

pub(super) fn describe(doc: Option<&StoredTokens>) -> String {
    match doc {
        None => "nothing".into(),
        Some(d) => {
            let state = match d.state {
                TokenState::Usable => "usable".to_string(),
                TokenState::PossiblyRotated { attempts, .. } => format!("marked x{attempts}"),
                TokenState::Dead { .. } => "dead".into(),
            };
            format!(
                "{} v{} seq {} {state}{}",
                d.refresh_token.expose_secret(),
                d.version,
                d.lineage.sequence,
                if d.lineage.restored_at.is_some() {
                    " written-back"
                } else {
                    ""
                }
            )
        }
    }
}

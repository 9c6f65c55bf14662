//! The manager's one actor: the task that owns the protocol [`Driver`] and performs its effects.
//!
//! Everything that needs the store or GenLogs is a [`Request`] in the manager's mailbox: a caller
//! without a valid token, the background refresh of a due one, a renewal (keep-alive,
//! `refresh_now`), a read (`sync`, the store watch), a save (`flush`, `replace_tokens`) and the
//! pending-save guard's retry. One actor at a time takes them in order and runs each as a job of
//! the driver; callers wait for their reply and read the tokens it served from the published
//! state, which the cached path reads without ever touching the mailbox.
//!
//! Requests for a token coalesce: the actor serves every such request queued when a job starts,
//! and every one queued while it runs, with that job (one refresh however many callers ask).
//!
//! The actor runs while there is work, as a task of the runtime of the caller that found it idle
//! (its connections and timers live there), and ends when the mailbox is empty. If its runtime
//! goes away mid-job, the driver is told the job was abandoned (it releases the store's lock
//! unless news of a sent token is unsaved), goes back to the mailbox for the next actor, and the
//! requests still queued are dropped: their callers see [`TokenError::Interrupted`] and ask again.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::Instrument;

use super::driver::{Driver, Effect, Event, Job, Note};
use super::state::Outcome;
use super::{Shared, TokenError, PENDING_RETRY};
use crate::secret::RefreshToken;
use crate::store::{BoxedLock, StoreError, TokenStore};

/// A job's result, as its callers get it.
pub(crate) type Reply = oneshot::Sender<Result<(), TokenError>>;

/// Something only the actor may do.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) job: Job,
    /// Folded into the state when the job starts, in the mailbox's order (a replacement).
    pub(crate) first: Option<Outcome>,
    /// Who waits for the result (`None`: the background refresh of a due token).
    pub(crate) reply: Option<Reply>,
    /// The caller's span, the parent of the job's.
    pub(crate) span: tracing::Span,
}

impl Request {
    pub(crate) fn new(job: Job, first: Option<Outcome>, reply: Option<Reply>) -> Self {
        Request {
            job,
            first,
            reply,
            span: tracing::Span::current(),
        }
    }
}

/// The queue of requests, whether an actor runs, and the driver while none does.
pub(crate) struct Mailbox {
    queue: VecDeque<Request>,
    running: bool,
    driver: Option<Driver<BoxedLock>>,
}

impl Mailbox {
    pub(crate) fn new(driver: Driver<BoxedLock>) -> Self {
        Mailbox {
            queue: VecDeque::new(),
            running: false,
            driver: Some(driver),
        }
    }

    /// Takes every request for a token out of the queue (they join the job that serves one).
    fn take_answers(&mut self, replies: &mut Vec<Reply>) {
        self.queue.retain_mut(|request| {
            if request.job != Job::Answer {
                return true;
            }
            replies.extend(request.reply.take());
            false
        });
    }
}

impl Shared {
    /// Queues `request`, starting an actor on the current runtime if none runs. Without a
    /// runtime, the request is answered [`TokenError::Interrupted`].
    pub(crate) fn request(self: &Arc<Self>, request: Request) {
        let mut mailbox = self.mailbox();
        mailbox.queue.push_back(request);
        if mailbox.running {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                mailbox.running = true;
                drop(mailbox);
                runtime.spawn(actor(self.clone()));
            }
            Err(_) => {
                // Dropped: its caller sees `Interrupted`.
                mailbox.queue.pop_back();
                self.background.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Queues a job and waits for its result.
    pub(crate) async fn job(
        self: &Arc<Self>,
        job: Job,
        first: Option<Outcome>,
    ) -> Result<(), TokenError> {
        let (reply, result) = oneshot::channel();
        self.request(Request::new(job, first, Some(reply)));
        result.await.unwrap_or(Err(TokenError::Interrupted))
    }

    fn mailbox(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The driver as the actor holds it: handed back to the mailbox however the actor ends (its
/// work done, a panic, its runtime dropping it), and abandoned first if that was mid-job.
struct Owned {
    shared: Arc<Shared>,
    driver: Option<Driver<BoxedLock>>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        // (An actor that ran out of work has handed the driver back already.)
        if let Some(driver) = self.driver.take() {
            let mut mailbox = self.shared.mailbox();
            mailbox.driver = Some(driver);
            mailbox.running = false;
            // Ended mid-way (a panic, its runtime went away): the callers of the requests left
            // see `Interrupted` and ask again, which starts a new actor on their runtime.
            mailbox.queue.clear();
            self.shared.background.store(false, Ordering::SeqCst);
        }
    }
}

/// Takes requests in order and runs each as a job until the mailbox is empty.
async fn actor(shared: Arc<Shared>) {
    let driver = shared.mailbox().driver.take();
    let mut owned = Owned {
        shared: shared.clone(),
        driver,
    };
    loop {
        let (request, mut replies) = {
            let mut mailbox = shared.mailbox();
            let Some(mut request) = mailbox.queue.pop_front() else {
                // Idle: `Owned` hands the driver back as the actor ends, under the same lock a
                // new request takes, so no request is left without an actor.
                mailbox.driver = owned.driver.take();
                mailbox.running = false;
                return;
            };
            let mut replies: Vec<Reply> = request.reply.take().into_iter().collect();
            if request.job == Job::Answer {
                mailbox.take_answers(&mut replies);
                shared.background.store(false, Ordering::SeqCst);
            }
            (request, replies)
        };
        let Some(driver) = owned.driver.as_mut() else {
            // (Never: the driver is handed back only when an actor ends.)
            return;
        };
        let answer = request.job == Job::Answer;
        let result = serve(&shared, driver, request).await;
        if answer {
            // Callers who asked for a token while the job ran joined it.
            shared.mailbox().take_answers(&mut replies);
            shared.background.store(false, Ordering::SeqCst);
        }
        for reply in replies {
            let _ = reply.send(result.clone());
        }
        guard_pending(&shared);
    }
}

/// Runs one request's job.
async fn serve(
    shared: &Arc<Shared>,
    driver: &mut Driver<BoxedLock>,
    request: Request,
) -> Result<(), TokenError> {
    if let Some(outcome) = request.first {
        shared.apply(outcome);
    }
    match request.job {
        Job::Answer => {
            // A token another job served since the request was made (a renewal asked for
            // makes none fresh): nothing to do.
            if served(shared) {
                return Ok(());
            }
            let span = tracing::info_span!(parent: &request.span, "genlogs_token_refresh");
            let result = act(shared, driver, Job::Answer).instrument(span).await;
            let state = shared.current();
            crate::metrics::observe(&state, shared.clock.monotonic(), shared.clock.utc_now());
            result
        }
        job => act(shared, driver, job).await,
    }
}

/// Whether a fresh token is served and nothing waits to be saved.
fn served(shared: &Shared) -> bool {
    let state = shared.current();
    state.pending.is_none() && state.fresh(shared.clock.monotonic()).is_some()
}

/// Runs one job of the driver: performs each effect it asks for and hands back what came of it.
/// If the job is abandoned mid-way (its actor dropped with its runtime), the driver drops the
/// store's lock unless news of a sent token is unsaved.
async fn act(shared: &Shared, driver: &mut Driver<BoxedLock>, job: Job) -> Result<(), TokenError> {
    let mut run = Abandon {
        shared,
        driver,
        done: false,
    };
    let mut event = Event::Start(job);
    loop {
        let state = shared.current();
        let (now, utc_now) = (shared.clock.monotonic(), shared.clock.utc_now());
        let effect = run.driver.next(event, &state, &shared.policy, now, utc_now);
        drop(state);
        event = match effect {
            Effect::Lock => Event::Locked(shared.store.lock().await),
            Effect::Load => Event::Loaded(shared.store.load().await),
            Effect::Save(tokens) => Event::Saved(match run.driver.lock() {
                Some(lock) => shared.store.save(&tokens, lock).await,
                None => Err(StoreError::LeaseLost),
            }),
            Effect::Extend(by) => Event::Extended(match run.driver.lock_mut() {
                Some(lock) => shared.store.extend(lock, by).await,
                None => Err(StoreError::LeaseLost),
            }),
            Effect::Release(lock) => {
                shared.store.release(lock).await;
                Event::Released
            }
            Effect::Sleep(wait) => {
                shared.clock.sleep(wait).await;
                Event::Woke
            }
            Effect::Send(sent) => Event::Answered(send(shared, sent).await),
            Effect::Apply(outcome) => {
                shared.apply(outcome);
                Event::Applied
            }
            Effect::Note(note) => {
                log_driver_note(note);
                Event::Applied
            }
            Effect::Done {
                result,
                guard_pending,
            } => {
                run.done = true;
                if guard_pending {
                    tracing::debug!("news of a sent token is unsaved; the store's lock is kept");
                }
                return result;
            }
        };
    }
}

/// Tells the driver its job was abandoned when [`act`]'s future is dropped before it is done.
struct Abandon<'a> {
    shared: &'a Shared,
    driver: &'a mut Driver<BoxedLock>,
    done: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.driver.abandon(&self.shared.current());
        }
    }
}

/// Logs what the driver noted.
fn log_driver_note(note: Note) {
    match note {
        Note::SavingOverUnreadable(error) => {
            tracing::warn!(error = %error, "saving over a stored document that cannot be read");
        }
        Note::SaveFailed(error) => {
            tracing::error!(error = %error, "saving the genlogs tokens failed; they are kept in memory");
        }
        Note::ExtendFailed(error) => {
            tracing::warn!(error = %error, "extending the genlogs token store's lease failed while a rotation is unsaved");
        }
    }
}

/// Sends the stored refresh token; returns what came back, to fold in.
async fn send(shared: &Shared, sent: RefreshToken) -> Outcome {
    tracing::info!("genlogs token refresh started");
    let started = shared.clock.monotonic();
    let result = crate::metrics::refresh(shared.client.refresh(&sent)).await;
    let elapsed_ms = shared.clock.monotonic().saturating_sub(started).as_millis() as u64;
    match result {
        Ok(session) => {
            tracing::info!(
                elapsed_ms,
                outcome = "refreshed",
                "genlogs token refresh finished"
            );
            Outcome::Refreshed {
                sent,
                session: Box::new(session),
                jitter: fastrand::f64(),
            }
        }
        Err(error) => {
            let status = error.status().map(|s| s.as_u16());
            tracing::warn!(elapsed_ms, status, outcome = "failed", error = %error, "genlogs token refresh finished");
            Outcome::Failed { sent, error }
        }
    }
}

/// While news of a sent token (a rotation above all) is not saved, this process holds the
/// store's lock, so that no other process reads the store (which still shows the sent token as
/// usable) and sends it again. A lease would run out meanwhile: this task asks the actor to
/// extend it and try the save again every [`PENDING_RETRY`], until it succeeds. One per manager
/// at a time; it ends with the manager.
async fn keep_pending_safe(weak: std::sync::Weak<Shared>) {
    loop {
        let sleep = match weak.upgrade() {
            Some(shared) => shared.clock.sleep(PENDING_RETRY),
            None => return, // the manager is gone
        };
        sleep.await;
        let Some(shared) = weak.upgrade() else {
            return;
        };
        if !shared.current().unsaved_news_of_a_sent_token() {
            break;
        }
        if shared.job(Job::RetryPending, None).await.is_ok()
            && !shared.current().unsaved_news_of_a_sent_token()
        {
            tracing::info!("unsaved genlogs tokens saved on a retry");
            break;
        }
    }
    if let Some(shared) = weak.upgrade() {
        shared.keeping_pending.store(false, Ordering::SeqCst);
        // News that became unsaved after the last look gets a task of its own.
        guard_pending(&shared);
    }
}

/// Starts [`keep_pending_safe`] if news of a sent token is unsaved and it is not running.
fn guard_pending(shared: &Arc<Shared>) {
    if shared.current().unsaved_news_of_a_sent_token()
        && shared
            .keeping_pending
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(keep_pending_safe(Arc::downgrade(shared)));
        } else {
            shared.keeping_pending.store(false, Ordering::SeqCst);
        }
    }
}

//! Single flight: at most one refresh task at a time, which every caller that needs a refresh
//! joins. The task runs in its own tokio task, so a caller that gives up never aborts it.
//!
//! The task marks itself finished from a drop guard, whatever way it ends (a result, a panic,
//! the runtime dropping it at shutdown), and a finished task is never joined again: a task that
//! dies cannot leave every later caller waiting on it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::{self, BoxFuture, FutureExt, Shared};
use tracing::Instrument;

use super::TokenError;

/// A refresh task's result, shareable between its callers.
pub(crate) type Flight = Shared<BoxFuture<'static, Result<(), TokenError>>>;

/// The refresh task in progress, if any.
#[derive(Default)]
pub(crate) struct Flights {
    slot: Mutex<Option<(Flight, Arc<AtomicBool>)>>,
}

/// Sets its flag when dropped: when the task's future completes or is dropped unfinished.
struct Finished(Arc<AtomicBool>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Flights {
    /// Joins the task in progress, or spawns `task` on the current runtime and joins it.
    pub(crate) fn join<Fut>(&self, start: impl FnOnce() -> Fut) -> Flight
    where
        Fut: Future<Output = Result<(), TokenError>> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return future::ready(Err(TokenError::Interrupted)).boxed().shared();
        };
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((flight, finished)) = slot.as_ref() {
            if !finished.load(Ordering::Acquire) {
                return flight.clone();
            }
        }
        let finished = Arc::new(AtomicBool::new(false));
        let guard = Finished(finished.clone());
        let task = start();
        let span = tracing::info_span!("genlogs_token_refresh");
        let handle = runtime.spawn(
            async move {
                let _finished = guard;
                task.await
            }
            .instrument(span),
        );
        let flight = async move { handle.await.unwrap_or(Err(TokenError::Interrupted)) }
            .boxed()
            .shared();
        *slot = Some((flight.clone(), finished));
        flight
    }
}

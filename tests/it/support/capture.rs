//! Capturing what `tracing` writes, to search it for secrets and spans.
//!
//! [`capture`] routes the events and spans of the calling thread, from the moment it is called
//! until its guard drops, to a buffer of that test's own. It installs one subscriber for the
//! whole test process that decides per event (never per callsite) whether anyone captures on
//! that thread. A per-thread default subscriber (`set_default`) is not enough: tracing caches
//! each callsite's interest for every thread, so another test's thread that reaches an event
//! first, with no subscriber, can make it invisible to the capturing thread (the flake seen under
//! load, even with the interest cache rebuilt).

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};

use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::Layer;

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

thread_local! {
    /// The buffer this thread's events go to, and the most verbose level kept.
    static CAPTURING: RefCell<Option<(Captured, Level)>> = const { RefCell::new(None) };
}

/// Captures this thread's events and spans at `level` and above until the guard drops. The
/// tests that read it run on a current-thread runtime, so every task they spawn (the manager's
/// actor included) logs on this thread.
pub fn capture(level: Level) -> (Captured, CaptureGuard) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(ThisThread)
            .with_filter(ThisThread);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in this test binary");
    });
    let captured = Captured::default();
    CAPTURING.with(|current| *current.borrow_mut() = Some((captured.clone(), level)));
    (captured, CaptureGuard(()))
}

/// Ends the capture of [`capture`] on this thread when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURING.with(|current| current.borrow_mut().take());
    }
}

/// The filter and the writer of the process-wide subscriber: whatever this thread captures.
struct ThisThread;

impl<S> Filter<S> for ThisThread {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        CAPTURING.with(|current| {
            current
                .borrow()
                .as_ref()
                .is_some_and(|(_, level)| metadata.level() <= level)
        })
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> Interest {
        // Asked again for every event: whether a thread captures changes all the time.
        Interest::sometimes()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThisThread {
    type Writer = Box<dyn std::io::Write>;

    fn make_writer(&'a self) -> Self::Writer {
        match CAPTURING.with(|current| current.borrow().as_ref().map(|(c, _)| c.clone())) {
            Some(captured) => Box::new(captured),
            None => Box::new(std::io::sink()),
        }
    }
}

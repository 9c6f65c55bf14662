//! Time, injectable: a monotonic clock to schedule refreshes on, and the wall clock to read the
//! server's UTC expiries against, shared by the manager
//! ([`TokenManagerBuilder::with_clock`](crate::manager::TokenManagerBuilder::with_clock)), the
//! stores ([`FileStore::with_clock`](crate::FileStore::with_clock), `RedisStore::with_clock`)
//! and the test kit's stand-in. Tests drive a [`ManualClock`] by hand.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::time::Instant;

use chrono::{DateTime, Utc};

/// A source of time for the [`TokenManager`](crate::TokenManager).
pub trait Clock: Send + Sync + Debug + 'static {
    /// Monotonic time since an arbitrary fixed start: never jumps, never goes back.
    fn monotonic(&self) -> Duration;
    /// The local wall clock, in UTC.
    fn utc_now(&self) -> DateTime<Utc>;
    /// Completes once `duration` has passed on this clock's monotonic time. Default: tokio's
    /// timer (a tokio runtime is needed). The manager's
    /// [`keep_alive`](crate::TokenManager::keep_alive) task waits on it, so a test clock drives
    /// it without real waiting.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The real clocks: the system's monotonic clock and the system time.
///
/// On Linux the monotonic reading is `CLOCK_MONOTONIC_COARSE`: a few milliseconds of resolution,
/// which is nothing against a refresh margin of seconds, for a fraction of the cost of
/// `Instant::now()` on the manager's hot path. Elsewhere it is [`std::time::Instant`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Duration,
}

impl SystemClock {
    /// A clock whose monotonic time starts now.
    pub fn new() -> Self {
        Self {
            start: raw_monotonic(),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn raw_monotonic() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    Duration::new(now.tv_sec.unsigned_abs(), now.tv_nsec as u32)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn raw_monotonic() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn monotonic(&self) -> Duration {
        raw_monotonic().saturating_sub(self.start)
    }

    fn utc_now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to: [`advance`](Self::advance) moves both readings and
/// ends the [`sleep`](Clock::sleep)s it passes.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Manual>,
}

#[derive(Debug)]
struct Manual {
    monotonic: Duration,
    utc: DateTime<Utc>,
    /// Sleeps not ended yet: when each ends, and how to wake it.
    sleeping: Vec<(Duration, tokio::sync::oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock reading `utc` (and monotonic zero).
    pub fn new(utc: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(Manual {
                monotonic: Duration::ZERO,
                utc,
                sleeping: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Manual> {
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward by `by`, ending every sleep that is due by then.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        now.monotonic += by;
        now.utc += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let monotonic = now.monotonic;
        let (due, waiting) = std::mem::take(&mut now.sleeping)
            .into_iter()
            .partition(|(until, _)| *until <= monotonic);
        now.sleeping = waiting;
        drop(now);
        for (_, wake) in due {
            let _ = wake.send(());
        }
    }

    /// How many sleeps on this clock are waiting for it to advance (ones whose future was
    /// dropped are not counted): a test advances the clock, then waits for the task it drives
    /// to be asleep again before advancing further.
    pub fn sleepers(&self) -> usize {
        self.lock()
            .sleeping
            .iter()
            .filter(|(_, wake)| !wake.is_closed())
            .count()
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        self.lock().monotonic
    }

    fn utc_now(&self) -> DateTime<Utc> {
        self.lock().utc
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let mut now = self.lock();
        if duration.is_zero() {
            return Box::pin(std::future::ready(()));
        }
        let until = now.monotonic.saturating_add(duration);
        let (wake, woken) = tokio::sync::oneshot::channel();
        now.sleeping.retain(|(_, wake)| !wake.is_closed());
        now.sleeping.push((until, wake));
        Box::pin(async move {
            let _ = woken.await;
        })
    }
}

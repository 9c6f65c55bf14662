//! Time, injectable: a monotonic clock to schedule refreshes on, and the wall clock to read the
//! server's UTC expiries against. Tests drive a [`ManualClock`] by hand.

use std::fmt::Debug;
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

/// A clock that moves only when told to: [`advance`](Self::advance) moves both readings.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<(Duration, DateTime<Utc>)>,
}

impl ManualClock {
    /// A clock reading `utc` (and monotonic zero).
    pub fn new(utc: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new((Duration::ZERO, utc)),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        now.0 += by;
        now.1 += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn utc_now(&self) -> DateTime<Utc> {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

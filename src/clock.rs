//! Time, injectable: a monotonic clock to schedule refreshes on, and the wall clock to read the
//! server's UTC expiries against. Tests drive a [`ManualClock`] by hand.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A source of time for the [`TokenManager`](crate::TokenManager).
pub trait Clock: Send + Sync + Debug + 'static {
    /// Monotonic time since an arbitrary fixed start: never jumps, never goes back.
    fn monotonic(&self) -> Duration;
    /// The local wall clock, in UTC.
    fn utc_now(&self) -> DateTime<Utc>;
}

/// The real clocks: [`Instant`] and the system time.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock whose monotonic time starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.start.elapsed()
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

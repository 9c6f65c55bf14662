//! What can go wrong in a history: the weights of the random events, drawn per history, and
//! the events themselves.

use super::judge::Loss;
use super::world::{describe, Sim};
use super::Secs;

/// Which faults a run may draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Faults {
    All,
    /// No store that goes back or comes back empty.
    NoRollback,
}

/// How often each fault falls, per history (weights of the random events; per call or per
/// request in thousandths).
#[derive(Debug, Clone, Copy)]
pub(super) struct Mix {
    call: u32,
    renew: u32,
    short_pause: u32,
    long_pause: u32,
    crash: u32,
    clock_step: u32,
    lose_writes: u32,
    restore: u32,
    empty: u32,
    store_pause: u32,
    host_cut: u32,
    all_cut: u32,
    /// Per store call: the call's answer is lost after it ran.
    pub(super) store_answer_lost: u64,
    /// Per store call: the host pauses while the answer is on its way.
    pub(super) pause_in_call: u64,
    /// Per save: written, but too few replicas acknowledged it (`NotDurable`).
    pub(super) not_durable: u64,
    /// Per request: never processed, no answer.
    pub(super) request_lost: u64,
    /// Per request: 503 at once, not processed.
    pub(super) unavailable: u64,
    /// Per request: processed, then the answer is lost or a 5xx.
    pub(super) answer_lost: u64,
}

impl Mix {
    pub(super) fn random(rng: &mut fastrand::Rng, faults: Faults) -> Self {
        let mut w = |max: u32| rng.u32(0..=max);
        let store = faults == Faults::All;
        let mix = Mix {
            call: 50,
            renew: w(6),
            short_pause: w(6),
            long_pause: w(3),
            crash: w(4),
            clock_step: w(2),
            lose_writes: if store { w(4) } else { 0 },
            restore: if store { w(3) } else { 0 },
            empty: if store { w(2) } else { 0 },
            store_pause: w(4),
            host_cut: w(3),
            all_cut: w(2),
            store_answer_lost: 0,
            pause_in_call: 0,
            not_durable: 0,
            request_lost: 0,
            unavailable: 0,
            answer_lost: 0,
        };
        Mix {
            store_answer_lost: rng.u64(0..=20),
            pause_in_call: rng.u64(0..=10),
            not_durable: rng.u64(0..=30),
            request_lost: rng.u64(0..=40),
            unavailable: rng.u64(0..=60),
            answer_lost: rng.u64(0..=30),
            ..mix
        }
    }
}

impl Sim {
    /// One random event: a caller, or a fault (only before the faults end).
    pub(super) fn random_event(&mut self) {
        let m = self.mix;
        let faults = self.now < super::FAULTS_END;
        let f = |w: u32| if faults { w } else { 0 };
        let weights = [
            m.call,
            m.renew,
            f(m.short_pause),
            f(m.long_pause),
            f(m.crash),
            f(m.clock_step),
            f(m.lose_writes),
            f(m.restore),
            f(m.empty),
            f(m.store_pause),
            f(m.host_cut),
            f(m.all_cut),
        ];
        let mut roll = self.rng.u32(0..weights.iter().sum::<u32>());
        let mut kind = 0;
        while roll >= weights[kind] {
            roll -= weights[kind];
            kind += 1;
        }
        let h = self.rng.usize(0..self.hosts.len());
        let now = self.now;
        match kind {
            0 | 1 if self.hosts[h].active(now) => self.call(h, kind == 1),
            2 | 3 if self.hosts[h].active(now) => {
                let d = if kind == 2 {
                    self.rng.u64(100..3_000)
                } else {
                    self.rng.u64(10_000..90_000)
                };
                self.hosts[h].pauses.push((now, now + d));
                self.cause = Some(Loss::Pause);
                note!(self, "h{h} paused for {}", Secs(d));
            }
            4 if self.hosts[h].alive => {
                self.crash(h);
                self.cause = Some(Loss::Crash);
                note!(self, "h{h} CRASHES (its lease stays until it runs out)");
            }
            5 => {
                let step = self.rng.i64(-3_600_000..=3_600_000);
                self.hosts[h].skew = step;
                note!(self, "h{h}'s wall clock is now off by {} s", step / 1000);
            }
            6 if self.store.history.len() > 1 => {
                let k = self.rng.usize(1..=3.min(self.store.history.len() - 1));
                let keep = self.store.history.len() - k;
                self.store.history.truncate(keep);
                self.store.doc = self.store.history[keep - 1].clone();
                self.note_went_back(
                    &format!("fails over and loses its last {k} writes"),
                    " and the lease",
                );
            }
            7 => {
                let i = self.rng.usize(0..self.store.history.len());
                self.store.doc = self.store.history[i].clone();
                self.store.history.push(self.store.doc.clone());
                self.note_went_back("restored from a backup", ", lease gone");
            }
            8 => {
                self.store.doc = None;
                self.store.history.push(None);
                self.went_back(Some(true));
                note!(self, "STORE restarts EMPTY (no persistence), lease gone");
            }
            9 => {
                let d = self.rng.u64(500..15_000);
                self.store.paused_until = self.store.paused_until.max(now + d);
                self.store.pauses.push((now, now + d));
                note!(self, "STORE paused for {}", Secs(d));
            }
            10 => {
                let d = self.rng.u64(500..30_000);
                self.hosts[h].cuts.push((now, now + d));
                note!(self, "h{h} CUT OFF from the store for {}", Secs(d));
            }
            11 => {
                let d = self.rng.u64(500..30_000);
                for host in &mut self.hosts {
                    host.cuts.push((now, now + d));
                }
                note!(self, "every host CUT OFF from the store for {}", Secs(d));
            }
            _ => {}
        }
    }

    /// The store went back (a failover, a restore, an empty restart): another instance answers,
    /// and the lease is lost with it (`lose_lease`, or drawn at random when `None`). Returns
    /// whether the lease was lost.
    /// The store went back (to `self.store.doc`) as `what` says, losing the lease or not, at
    /// random: both go into the log, `lease_gone` when it did.
    fn note_went_back(&mut self, what: &str, lease_gone: &str) {
        let lease = self.went_back(None);
        let lease = if lease { lease_gone } else { "" };
        note!(
            self,
            "STORE {what}{lease}: now {}",
            describe(self.store.doc.as_ref())
        );
    }

    pub(super) fn went_back(&mut self, lose_lease: Option<bool>) -> bool {
        self.store.new_instance();
        let lease = lose_lease.unwrap_or_else(|| self.rng.bool());
        if lease {
            self.store.lease = None;
        }
        self.store_faults.push((self.now, lease));
        self.cause = Some(Loss::StoreWentBack);
        lease
    }
}

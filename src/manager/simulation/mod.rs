//! A seeded simulation of the fleet protocol: several hosts, each running the manager's own
//! protocol driver ([`Driver`](super::driver::Driver), the code that ships: no copy of its
//! logic lives here) over the real decision core, against an in-memory store with the Redis
//! store's compare-and-set and lease rules and a model of GenLogs that rotates a single-use
//! refresh token and revokes the grant when a rotated-away one comes back (RFC 9700 §4.14).
//!
//! - `world.rs`: the hosts (each a driver, its state, its settings), the store, GenLogs, and
//!   the scheduler that performs each host's effects with latency;
//! - `faults.rs`: what can go wrong, drawn per history;
//! - `judge.rs`: whether a history was safe (no avoidable reuse) and live (every live host
//!   serves a valid access token once the faults stop, and the fleet stops writing).
//!
//! The faults: store calls with latency; store answers lost after the write happened; calls
//! that hang until their timeout (the store paused, or one host cut off from it); `NotDurable`
//! saves; the store going back through another instance (a failover that lost writes, a
//! restore, an empty restart); host pauses of any length, crashes and wall-clock steps; hosts
//! with different request timeouts, leases and with or without the keep-alive's store watch;
//! GenLogs never processing a request, answering 503, or processing it and then losing the
//! answer or answering a 5xx.
//!
//! Safety: every reuse must be one the model proves nothing on the client could avoid:
//!
//! - **the grant was already lost**: when the reusing request left, the valid refresh token was
//!   nowhere the fleet could read it (not in the store's current document, not in the memory of
//!   a live, running process, not in an answer on its way to one), and it got there through a
//!   fault: its answer was lost, every host holding it crashed, or the store went back while no
//!   running host that watches the store held it (a host without `keep_alive()` that is doing
//!   nothing cannot know); or every host holding it was paused or cut off from the store
//!   *across its lease's expiry* (or, its lease gone with the store, across the fleet's last
//!   wait for it: the reusing host's final check); or the holders came back only after the
//!   reusing host took the lease (a holder's lease ran out while it was isolated; a caller woke
//!   a holder unaware of the store going back), or, with no lease left, less than a store
//!   watch's interval and a call before the reusing host's final check (too late to read the
//!   store). A host counts as isolated while paused, cut off, the store paused, or a store call
//!   of its hangs (or lost its answer). A host's own decision that dropped it never counts.
//! - **the fencing gap**: a host was paused between its last lease check and its request
//!   leaving, across the point where the lease no longer outlasted the request; or the host
//!   that spent the token was paused across its lease's expiry and took GenLogs' answer only
//!   on resume. GenLogs takes no fencing token, so no check on the client can close that window.
//!
//! There is no default class: a reuse that fits none of these fails the history.
//!
//! Liveness: faults fall only in the first [`FAULTS_END`] of a history; by [`LIVENESS_BOUND`]
//! after that, every live host must hold a valid access token (unless the grant was lost or
//! revoked), and in the last minute the fleet must not keep writing the store beyond what its
//! refreshes need (a write-back war fails the history).
//!
//! A failing history fails the test with its seed and its steps; `SIMULATION_SEED=<n> cargo test
//! --all-features --lib simulation` replays one with its log, and `SIMULATION_HISTORIES=<n>` runs
//! more (or fewer) than CI does.

/// Milliseconds of simulated time, shown as seconds in the log (`2.5 s`).
struct Secs(u64);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} s", self.0 as f64 / 1000.0)
    }
}

/// Appends a line to a history's log (when it keeps one), stamped with the simulated time.
macro_rules! note {
    ($sim:expr, $($arg:tt)*) => {
        if let Some(log) = $sim.log.as_mut() {
            use std::fmt::Write as _;
            let _ = write!(log, "{:>7.3}s ", $sim.now as f64 / 1000.0);
            let _ = writeln!(log, $($arg)*);
        }
    };
}

mod faults;
mod judge;
mod world;

use faults::Faults;
use judge::Verdict;
use world::Sim;

/// How many histories each test runs in CI.
const HISTORIES: u64 = 10_000;

/// Faults fall before this point of a history (ms).
const FAULTS_END: u64 = 180_000;

/// After the last fault, every live host serves a valid access token within this (ms): a
/// possibly-rotated mark written by a host whose wall clock runs ahead is waited out at most
/// [`MAX_COOLDOWN`](crate::manager::MAX_COOLDOWN) from when a host first saw it (15 min), then
/// the longest lease (60 s) runs out and a refresh (≤ 45 s) completes, with a minute to spare.
const LIVENESS_BOUND: u64 = crate::manager::MAX_COOLDOWN.as_millis() as u64 + 165_000;

/// How many histories ended each way, and the first few seeds of each.
type Tally = std::collections::BTreeMap<String, (usize, Vec<u64>)>;

/// Runs `seeds` histories; returns the tally of verdicts and the failing seeds.
fn run_many(seeds: std::ops::Range<u64>, faults: Faults) -> (Tally, Vec<(u64, Verdict)>, usize) {
    let mut tally = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    let mut events = 0;
    for seed in seeds {
        let (verdict, _, n) = Sim::new(seed, faults, false).run();
        events += n;
        let key = match &verdict {
            Verdict::Clean => "no reuse".to_string(),
            Verdict::Unavoidable(why) => format!("unavoidable: {why}"),
            Verdict::Failure(class, _) => format!("FAILURE: {class}"),
        };
        let entry = tally.entry(key).or_insert((0, Vec::new()));
        entry.0 += 1;
        if entry.1.len() < 8 {
            entry.1.push(seed);
        }
        if matches!(verdict, Verdict::Failure(..)) {
            failures.push((seed, verdict));
        }
    }
    (tally, failures, events)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn check(faults: Faults) {
    if let Some(seed) = env_u64("SIMULATION_SEED") {
        if std::env::var("SIMULATION_FAULTS").is_ok_and(|f| f != format!("{faults:?}")) {
            return;
        }
        let (verdict, log, _) = Sim::new(seed, faults, true).run();
        println!("{}", log.unwrap_or_default());
        println!("seed {seed}: {verdict:?}");
        assert!(!matches!(verdict, Verdict::Failure(..)), "seed {seed}");
        return;
    }
    let histories = env_u64("SIMULATION_HISTORIES").unwrap_or(HISTORIES);
    let started = std::time::Instant::now();
    let (tally, failures, events) = run_many(0..histories, faults);
    println!(
        "{histories} histories ({faults:?}), {events} events in {:?}:",
        started.elapsed()
    );
    for (class, (count, seeds)) in &tally {
        println!("{count:>6}  {class} (seeds {seeds:?})");
    }
    if let Some((seed, _)) = failures.first() {
        let (verdict, log, _) = Sim::new(*seed, faults, true).run();
        let seeds: Vec<u64> = failures.iter().map(|(s, _)| *s).take(20).collect();
        panic!(
            "{} failing histories (first seeds {seeds:?}); seed {seed} step by step \
             (SIMULATION_SEED={seed} replays it):\n{}\n{verdict:?}",
            failures.len(),
            log.unwrap_or_default()
        );
    }
}

/// Crashes, pauses, clock steps, a store that stops answering or loses answers, lost requests
/// and answers: every reuse is unavoidable and every history live.
#[test]
fn without_a_store_that_goes_back_every_reuse_is_unavoidable() {
    check(Faults::NoRollback);
}

/// Everything, a store that goes back or comes back empty included.
#[test]
fn every_reuse_is_unavoidable() {
    check(Faults::All);
}

//! Shared by the benches: reading criterion's medians back to print ratios measured in one run.

#![allow(dead_code)]

use std::path::PathBuf;

use tokio::runtime::{Builder, Runtime};

/// A runtime with one worker thread, for the loopback server: a core of its own, as a real
/// server would have.
pub fn server_runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A current-thread runtime, for the side measured.
pub fn current_thread_runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// Criterion's output directory (`target/criterion`, or under `CARGO_TARGET_DIR`).
fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// The median of `group/id` from this run, in nanoseconds.
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let estimates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Prints `candidate / baseline` for medians measured in this run, against a target.
pub fn print_ratio(group: &str, candidate: &str, baseline: &str, target: f64) {
    match (median_ns(group, candidate), median_ns(group, baseline)) {
        (Some(c), Some(b)) => {
            let ratio = c / b;
            let verdict = if ratio <= target { "meets" } else { "MISSES" };
            println!(
                "RATIO {group}: {candidate} {c:.1} ns / {baseline} {b:.1} ns = {ratio:.3}x ({verdict} the {target}x target)"
            );
        }
        _ => println!("RATIO {group}: not measured in this run"),
    }
}

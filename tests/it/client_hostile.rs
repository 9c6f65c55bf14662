//! Hostile servers: a body that trickles one byte per second, 64 MiB bodies declared or chunked,
//! an endless body. The error comes within the configured timeout, and memory stays bounded (the
//! process's peak resident size is checked: it would pass 64 MiB if any body were buffered).
//! Each body runs in a process of its own (this test binary, re-run on its ignored `child`
//! test), so that no other test's memory counts in its peak.

use std::time::{Duration, Instant};

use crate::support::answering;
use crate::support::child::spawn_child;
use genlogs_auth::testing::Fault;
use genlogs_auth::{client::UnknownOutcome, AuthClient, Error, RefreshToken};

const API_KEY: &str = "hostile-test-key";
const TIMEOUT: Duration = Duration::from_millis(2_500);
const SIXTY_FOUR_MIB: usize = 64 << 20;

async fn refresh_against(reply: Fault) -> (Error, Duration) {
    let genlogs = answering(reply).await;
    let client = AuthClient::builder(API_KEY)
        .with_base_url(genlogs.base_url())
        .with_timeout(TIMEOUT)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client
        .refresh(&RefreshToken::new("rt-hostile"))
        .await
        .unwrap_err();
    crate::support::leak::assert_no_leak(&error, &[API_KEY, "rt-hostile"]);
    (error, started.elapsed())
}

/// The process's peak resident set size, from /proc (Linux).
fn peak_rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn assert_memory_bounded() {
    if let Some(peak) = peak_rss_bytes() {
        assert!(peak < SIXTY_FOUR_MIB / 2, "peak RSS {} MiB", peak >> 20);
    }
}

#[tokio::test]
async fn one_byte_per_second_times_out_within_the_configured_timeout() {
    let (error, elapsed) = refresh_against(Fault::Trickle {
        interval: Duration::from_secs(1),
        bytes: 600,
    })
    .await;
    assert!(
        matches!(error.unknown_outcome(), Some(UnknownOutcome::TimedOut)),
        "{error:?}"
    );
    assert!(
        elapsed >= TIMEOUT && elapsed < TIMEOUT + Duration::from_secs(1),
        "{elapsed:?}"
    );
}

/// Each reply must end in `BodyTooLarge`, before the timeout, with memory bounded.
async fn assert_cut_at_the_cap(reply: Fault) {
    let (error, elapsed) = refresh_against(reply).await;
    assert!(
        matches!(
            error.unknown_outcome(),
            Some(UnknownOutcome::BodyTooLarge { .. })
        ),
        "{error:?}"
    );
    assert!(elapsed < TIMEOUT);
    assert_memory_bounded();
}

/// Runs the `case` of [`child`] in a process of its own.
fn in_its_own_process(case: &str) {
    let mut child = spawn_child(module_path!(), case, &[] as &[(&str, &str)]);
    assert!(
        child.wait().unwrap().success(),
        "the {case} body failed in its process (its panic is above)"
    );
}

#[test]
fn a_declared_64_mib_body_is_refused_without_reading_it() {
    in_its_own_process("declared");
}

#[test]
fn a_chunked_64_mib_body_is_cut_at_the_cap() {
    in_its_own_process("chunked");
}

#[test]
fn an_endless_body_is_cut_at_the_cap() {
    in_its_own_process("endless");
}

/// Not a test: one of the bodies above, alone in its process, selected by `GENLOGS_TEST_CHILD`.
#[test]
#[ignore = "run by the hostile-body tests as a child process"]
fn child() {
    let reply = match std::env::var("GENLOGS_TEST_CHILD").as_deref() {
        Ok("declared") => Fault::Oversized {
            bytes: SIXTY_FOUR_MIB,
            chunked: false,
        },
        Ok("chunked") => Fault::Oversized {
            bytes: SIXTY_FOUR_MIB,
            chunked: true,
        },
        Ok("endless") => Fault::Oversized {
            bytes: 1 << 30,
            chunked: true,
        },
        other => panic!("no such case: {other:?}"),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(assert_cut_at_the_cap(reply));
}

//! The manager's metrics (feature `metrics`), read back through metrics-util's
//! `DebuggingRecorder`, against the crate's GenLogs stand-in.
//!
//! Which recorder sees what: the manager works in tasks it spawns, and a recorder set for one
//! thread (`metrics::with_local_recorder`) sees only what runs on that thread. So each test runs
//! its own current-thread tokio runtime inside `with_local_recorder` ([`recorded`]): every task,
//! the manager's refresh tasks and the stand-in's server included, is polled on the test's thread.
//! `FileStore`'s file work runs on tokio's blocking pool, but the metrics around it are recorded
//! in the async wrapper, back on that thread. Tests stay independent and run in parallel, with no
//! global recorder to serialize on. (`#[tokio::test(flavor = "multi_thread")]` would lose whatever
//! its worker threads record; the default `#[tokio::test]` would work too, with
//! `metrics::set_default_local_recorder`, but the runtime's flavor is what makes it right, so it
//! is spelled out here once.)

use std::time::Duration;

use crate::support::defaults::REQUEST_TIMEOUT;
use crate::support::fixture::Fixture;
use genlogs_auth::metrics::{
    describe, ACCESS_REJECTIONS_IN_A_ROW, ACCESS_TOKEN_EXPIRES_IN_SECONDS, INVALIDATIONS_TOTAL,
    REFRESHES_TOTAL, REFRESH_DURATION_SECONDS, REFRESH_TOKEN_EXPIRES_IN_SECONDS,
    STORE_DURATION_SECONDS, STORE_ERRORS_TOTAL, TOKEN_STATE,
};
use genlogs_auth::testing::Fault;
use genlogs_auth::{FileStore, MemoryStore, TokenManager, TokenStore};
use metrics::{SharedString, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

const ACCESS_LIFETIME: Duration = Duration::from_secs(10 * 60);
const REFRESH_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);

/// Every label and the values it may take (the module docs' sets).
const LABELS: &[(&str, &[&str])] = &[
    (
        "outcome",
        &["ok", "rejected", "unknown", "throttled", "failed"],
    ),
    ("store", &["memory", "file", "redis", "other"]),
    (
        "kind",
        &[
            "unreachable",
            "busy",
            "conflict",
            "lease_lost",
            "unreadable",
            "insecure_permissions",
            "io",
            "other",
        ],
    ),
    ("op", &["lock", "load", "save", "release", "extend"]),
    ("state", &["usable", "possibly_rotated", "dead", "none"]),
];

const NAMES: &[&str] = &[
    REFRESHES_TOTAL,
    STORE_ERRORS_TOTAL,
    INVALIDATIONS_TOTAL,
    REFRESH_DURATION_SECONDS,
    STORE_DURATION_SECONDS,
    ACCESS_TOKEN_EXPIRES_IN_SECONDS,
    REFRESH_TOKEN_EXPIRES_IN_SECONDS,
    ACCESS_REJECTIONS_IN_A_ROW,
    TOKEN_STATE,
];

/// Runs `test` against a new stand-in (whose tokens live [`ACCESS_LIFETIME`] and
/// [`REFRESH_LIFETIME`]) on a current-thread runtime with a fresh recorder for this thread, and
/// returns what it recorded (see the module doc for why this is the runtime that works), once
/// [`Recorded::assert_clean`] has checked it against every secret of the stand-in.
fn recorded(test: impl AsyncFnOnce(&Fixture)) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fx = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let fx = Fixture::with_stand_in(|genlogs| {
                genlogs
                    .with_api_key("metrics-test-api-key-5150")
                    .with_access_lifetime(ACCESS_LIFETIME)
                    .with_refresh_lifetime(REFRESH_LIFETIME)
            })
            .await;
            test(&fx).await;
            fx
        })
    });
    drop(runtime);
    let metrics = Recorded(snapshotter.snapshot().into_vec());
    metrics.assert_clean(&fx);
    metrics
}

type Entry = (CompositeKey, Option<Unit>, Option<SharedString>, DebugValue);

struct Recorded(Vec<Entry>);

impl Recorded {
    fn find(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0.iter().find_map(|(key, _, _, value)| {
            let key_labels: Vec<(&str, &str)> =
                key.key().labels().map(|l| (l.key(), l.value())).collect();
            let same = key.kind() == kind
                && key.key().name() == name
                && key_labels.len() == labels.len()
                && labels.iter().all(|label| key_labels.contains(label));
            same.then_some(value)
        })
    }

    /// A counter's value; 0 when it was never incremented.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(MetricKind::Counter, name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// Every series of a counter, summed.
    fn counter_total(&self, name: &str) -> u64 {
        self.0
            .iter()
            .filter(|(key, ..)| key.kind() == MetricKind::Counter && key.key().name() == name)
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(MetricKind::Gauge, name, labels) {
            Some(DebugValue::Gauge(value)) => value.into_inner(),
            other => panic!("{name} {labels:?} is not a recorded gauge: {other:?}"),
        }
    }

    /// A histogram's samples; none when it was never recorded.
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(MetricKind::Histogram, name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            None => vec![],
            Some(other) => panic!("{name} is not a histogram: {other:?}"),
        }
    }

    /// The `state` label set to 1 (and every other value of it present and 0).
    fn token_state(&self) -> &'static str {
        let states = LABELS
            .iter()
            .find(|(label, _)| *label == "state")
            .unwrap()
            .1;
        let current: Vec<_> = states
            .iter()
            .filter(|state| self.gauge(TOKEN_STATE, &[("state", state)]) == 1.0)
            .collect();
        for state in states {
            let value = self.gauge(TOKEN_STATE, &[("state", state)]);
            assert!(value == 0.0 || value == 1.0, "{state} = {value}");
        }
        assert_eq!(
            current.len(),
            1,
            "exactly one state is current: {current:?}"
        );
        current[0]
    }

    /// Every name is one of the crate's, every label one of the documented ones with one of its
    /// documented values; and no name, label or description carries a token or the api key.
    fn assert_clean(&self, fx: &Fixture) {
        let mut secrets = fx.genlogs.issued_tokens();
        secrets.push(fx.genlogs.api_key().to_string());
        for (key, _, description, _) in &self.0 {
            let name = key.key().name();
            assert!(NAMES.contains(&name), "an unknown metric: {name}");
            let mut texts = vec![name.to_string()];
            texts.extend(description.as_ref().map(|d| d.to_string()));
            for label in key.key().labels() {
                let allowed = LABELS
                    .iter()
                    .find(|(known, _)| *known == label.key())
                    .unwrap_or_else(|| panic!("an unknown label on {name}: {}", label.key()));
                assert!(
                    allowed.1.contains(&label.value()),
                    "{name}: {}={} is not a documented value",
                    label.key(),
                    label.value()
                );
                texts.push(label.key().to_string());
                texts.push(label.value().to_string());
            }
            for text in &texts {
                crate::support::leak::assert_no_leak(text, &secrets);
            }
        }
    }
}

/// A manager of `store` on the real clock, with the crate's defaults and 5 s requests.
fn manager(fx: &Fixture, store: impl TokenStore) -> TokenManager {
    TokenManager::builder(fx.client(Duration::from_secs(5)), store).build()
}

/// A manager whose store holds only a refresh token (as from `POST /auth/token`): its first call
/// refreshes.
fn needing_a_refresh(fx: &Fixture) -> TokenManager {
    manager(fx, MemoryStore::new(fx.valid_tokens()))
}

#[test]
fn a_successful_refresh_counts_ok_and_times_the_request_and_each_store_call() {
    let metrics = recorded(async |fx| {
        describe();
        needing_a_refresh(fx).access_token().await.unwrap();
    });

    assert_eq!(metrics.counter(REFRESHES_TOTAL, &[("outcome", "ok")]), 1);
    assert_eq!(
        metrics.counter_total(REFRESHES_TOTAL),
        1,
        "no other outcome"
    );
    let requests = metrics.samples(REFRESH_DURATION_SECONDS, &[]);
    assert_eq!(requests.len(), 1, "one request timed: {requests:?}");
    assert!(requests[0] > 0.0 && requests[0] < 5.0, "{requests:?}");
    // What a refresh needs from any store; `extend` only for stores whose locks are leases.
    for op in ["lock", "load", "save", "release"] {
        let calls = metrics.samples(STORE_DURATION_SECONDS, &[("op", op)]);
        assert!(!calls.is_empty(), "no {op} timed");
        assert!(
            calls.iter().all(|s| (0.0..5.0).contains(s)),
            "{op}: {calls:?}"
        );
    }
    assert!(metrics
        .samples(STORE_DURATION_SECONDS, &[("op", "extend")])
        .is_empty());
    assert_eq!(metrics.counter_total(STORE_ERRORS_TOTAL), 0);
    assert_eq!(metrics.token_state(), "usable");

    // `describe` covered everything recorded, with seconds where the name says so.
    for (key, unit, description, _) in &metrics.0 {
        let name = key.key().name();
        assert!(description.is_some(), "{name} has no description");
        if name.ends_with("_seconds") {
            assert_eq!(*unit, Some(Unit::Seconds), "{name}");
        }
    }
}

#[test]
fn each_refresh_outcome_is_counted_under_its_label_and_the_token_state_follows() {
    // (what the stand-in answers, the `outcome` label, the token's state afterwards)
    let cases = [
        (Fault::unauthorized(), "rejected", "dead"),
        (Fault::rate_limited(30), "throttled", "usable"),
        (Fault::unavailable(), "throttled", "usable"),
        (Fault::server_error(), "unknown", "possibly_rotated"),
        (Fault::gateway_timeout(), "unknown", "possibly_rotated"),
        (Fault::forbidden(), "failed", "usable"),
        (Fault::validation(), "failed", "usable"),
    ];
    for (fault, outcome, state) in cases {
        let metrics = recorded(async |fx| {
            let manager = needing_a_refresh(fx);
            fx.genlogs.fail_next(1, fault.clone());
            manager.access_token().await.unwrap_err();
        });
        assert_eq!(
            metrics.counter(REFRESHES_TOTAL, &[("outcome", outcome)]),
            1,
            "{fault:?}"
        );
        assert_eq!(metrics.counter_total(REFRESHES_TOTAL), 1, "{fault:?}");
        assert_eq!(metrics.samples(REFRESH_DURATION_SECONDS, &[]).len(), 1);
        assert_eq!(metrics.token_state(), state, "{fault:?}");
        if state == "dead" {
            // New tokens are needed: nothing is left of the refresh token's life.
            assert_eq!(metrics.gauge(REFRESH_TOKEN_EXPIRES_IN_SECONDS, &[]), 0.0);
        }
        assert_eq!(metrics.gauge(ACCESS_TOKEN_EXPIRES_IN_SECONDS, &[]), 0.0);
    }
}

#[test]
fn a_store_that_cannot_be_used_counts_an_error_with_its_store_and_kind() {
    let metrics = recorded(async |fx| {
        // The token file's directory is a regular file: opening the lock file fails (ENOTDIR),
        // whoever runs the test (root included).
        let not_a_directory = tempfile::NamedTempFile::new().unwrap();
        let store = FileStore::new(not_a_directory.path().join("tokens.json"));
        let error = manager(fx, store).access_token().await.unwrap_err();
        assert!(error.store_error().is_some(), "{error:?}");
    });

    assert_eq!(
        metrics.counter(STORE_ERRORS_TOTAL, &[("store", "file"), ("kind", "io")]),
        1
    );
    assert_eq!(metrics.counter_total(STORE_ERRORS_TOTAL), 1);
    assert_eq!(
        metrics
            .samples(STORE_DURATION_SECONDS, &[("op", "lock")])
            .len(),
        1,
        "the failed call is timed too"
    );
    assert_eq!(
        metrics.counter_total(REFRESHES_TOTAL),
        0,
        "nothing was sent"
    );
}

#[cfg(feature = "redis")]
#[test]
fn an_unreachable_redis_counts_unreachable_errors_of_the_redis_store() {
    let metrics = recorded(async |fx| {
        // A port that was free a moment ago: connections are refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = genlogs_auth::RedisStore::new(&format!("redis://127.0.0.1:{port}/"), "grant")
            .unwrap()
            .with_timeout(Duration::from_millis(200));
        manager(fx, store).access_token().await.unwrap_err();
    });

    assert!(
        metrics.counter(
            STORE_ERRORS_TOTAL,
            &[("store", "redis"), ("kind", "unreachable")]
        ) >= 1
    );
    assert_eq!(
        metrics.counter_total(STORE_ERRORS_TOTAL),
        metrics.counter(
            STORE_ERRORS_TOTAL,
            &[("store", "redis"), ("kind", "unreachable")]
        )
    );
}

#[test]
fn every_invalidate_call_is_counted() {
    let metrics = recorded(async |fx| {
        let manager = needing_a_refresh(fx);
        let token = manager.access_token().await.unwrap();
        manager.invalidate(&token);
        // A second report of the same token changes nothing, but it is still a report.
        manager.invalidate(&token);
    });

    assert_eq!(metrics.counter(INVALIDATIONS_TOTAL, &[]), 2);
    // The rejected token is no longer handed out.
    assert_eq!(metrics.gauge(ACCESS_TOKEN_EXPIRES_IN_SECONDS, &[]), 0.0);
}

/// Two fresh access tokens rejected in a row (the seeded one and its successor), then, when
/// `succeed`, the next one is fetched after the backoff and reported accepted.
async fn rejected_twice(fx: &Fixture, succeed: bool) {
    let store = MemoryStore::new(fx.genlogs.issue_tokens());
    let manager = TokenManager::builder(fx.client(REQUEST_TIMEOUT), store)
        .with_min_refresh_interval(Duration::from_millis(100))
        .build();
    for _ in 0..2 {
        let token = manager.access_token().await.unwrap();
        manager.invalidate(&token);
    }
    assert!(matches!(
        manager.access_token().await,
        Err(genlogs_auth::TokenError::AccessRejected { consecutive: 2, .. })
    ));
    if succeed {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let token = manager.access_token().await.unwrap();
        manager.confirm(&token);
    }
}

#[test]
fn the_rejections_gauge_counts_fresh_access_tokens_rejected_in_a_row() {
    let metrics = recorded(async |fx| rejected_twice(fx, false).await);
    assert_eq!(metrics.gauge(ACCESS_REJECTIONS_IN_A_ROW, &[]), 2.0);
}

#[test]
fn the_rejections_gauge_is_zero_again_after_a_success() {
    let metrics = recorded(async |fx| rejected_twice(fx, true).await);
    assert_eq!(metrics.gauge(ACCESS_REJECTIONS_IN_A_ROW, &[]), 0.0);
    assert_eq!(metrics.counter(INVALIDATIONS_TOTAL, &[]), 2);
}

#[test]
fn the_expiry_gauges_are_the_fresh_tokens_lifetimes() {
    let metrics = recorded(async |fx| {
        needing_a_refresh(fx).access_token().await.unwrap();
    });

    // The server's `Date` has one-second resolution (the manager allows a second for it), and the
    // request and the test take a moment: a few seconds of slack.
    let access = metrics.gauge(ACCESS_TOKEN_EXPIRES_IN_SECONDS, &[]);
    let lifetime = ACCESS_LIFETIME.as_secs_f64();
    assert!(access <= lifetime && access > lifetime - 5.0, "{access}");
    let refresh = metrics.gauge(REFRESH_TOKEN_EXPIRES_IN_SECONDS, &[]);
    let lifetime = REFRESH_LIFETIME.as_secs_f64();
    assert!(refresh <= lifetime && refresh > lifetime - 5.0, "{refresh}");
}

#[test]
fn no_name_label_or_description_carries_a_token_or_the_api_key() {
    // Many paths in one recorder: a refresh, a rejection, an invalidation, a throttled and a
    // failed request, a store error; then every name, label and description is checked against
    // every token the stand-in issued and its api key.
    let metrics = recorded(async |fx| {
        describe();
        let good = needing_a_refresh(fx);
        let token = good.access_token().await.unwrap();
        good.invalidate(&token);
        for fault in [
            Fault::unauthorized(),
            Fault::rate_limited(1),
            Fault::forbidden(),
        ] {
            let other = needing_a_refresh(fx);
            fx.genlogs.fail_next(1, fault);
            other.access_token().await.unwrap_err();
        }
        let not_a_directory = tempfile::NamedTempFile::new().unwrap();
        let broken = manager(
            fx,
            FileStore::new(not_a_directory.path().join("tokens.json")),
        );
        broken.access_token().await.unwrap_err();
    });

    assert_eq!(metrics.counter_total(REFRESHES_TOTAL), 4);
    assert!(metrics.counter_total(STORE_ERRORS_TOTAL) >= 1);
}

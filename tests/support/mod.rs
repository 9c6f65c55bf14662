//! Shared by the integration tests: loopback servers and secret-leak checks.

#![allow(dead_code)]

pub mod capture;
pub mod child;
pub mod fixture;
pub mod genlogs;
pub mod redis;
pub mod sentinel;
pub mod server;

use std::error::Error as _;

/// Asserts that none of `secrets` appears in the error's `{}`, `{:#}`, `{:?}`, `{:#?}`, nor in
/// the `{}` and `{:?}` of any error in its `source()` chain.
pub fn assert_no_secrets(error: &genlogs_auth::Error, secrets: &[&str]) {
    let mut renderings = vec![
        format!("{error}"),
        format!("{error:#}"),
        format!("{error:?}"),
        format!("{error:#?}"),
    ];
    let mut source = error.source();
    while let Some(cause) = source {
        renderings.push(format!("{cause}"));
        renderings.push(format!("{cause:#}"));
        renderings.push(format!("{cause:?}"));
        source = cause.source();
    }
    for secret in secrets {
        assert!(!secret.is_empty());
        for rendering in &renderings {
            assert!(
                !rendering.contains(secret),
                "a secret leaked into: {rendering}"
            );
        }
    }
}

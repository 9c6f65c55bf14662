//! The one check that no secret shows: in an error (its `Display` and `Debug`, plain and
//! alternate, and those of every error in its `source()` chain) or in plain text (a command's
//! output, a trace, a `Debug` rendering).

use std::error::Error;

/// What a secret could leak into: every way it is shown.
pub trait Shown {
    /// Every rendering to search.
    fn renderings(&self) -> Vec<String>;
}

impl Shown for str {
    fn renderings(&self) -> Vec<String> {
        vec![self.to_string()]
    }
}

impl Shown for String {
    fn renderings(&self) -> Vec<String> {
        self.as_str().renderings()
    }
}

impl Shown for dyn Error + '_ {
    fn renderings(&self) -> Vec<String> {
        let mut all = Vec::new();
        let mut next: Option<&dyn Error> = Some(self);
        while let Some(error) = next {
            all.extend([
                format!("{error}"),
                format!("{error:#}"),
                format!("{error:?}"),
                format!("{error:#?}"),
            ]);
            next = error.source();
        }
        all
    }
}

impl<T: Shown + ?Sized> Shown for &T {
    fn renderings(&self) -> Vec<String> {
        (**self).renderings()
    }
}

/// The crate's errors are shown as errors (the trait objects above cover any other).
macro_rules! shown_as_error {
    ($($error:ty),* $(,)?) => {$(
        impl Shown for $error {
            fn renderings(&self) -> Vec<String> {
                (self as &dyn Error).renderings()
            }
        }
    )*};
}

shown_as_error!(
    genlogs_auth::Error,
    genlogs_auth::StoreError,
    genlogs_auth::TokenError,
    genlogs_auth::client::InvalidAccessToken,
);
#[cfg(feature = "middleware")]
shown_as_error!(genlogs_auth::middleware::reqwest_middleware::Error);

/// Asserts that none of `secrets` (none of them empty) appears in any rendering of `shown`.
#[track_caller]
pub fn assert_no_leak(shown: &(impl Shown + ?Sized), secrets: &[impl AsRef<str>]) {
    let renderings = shown.renderings();
    for secret in secrets {
        let secret = secret.as_ref();
        assert!(!secret.is_empty(), "an empty secret matches everything");
        for rendering in &renderings {
            assert!(
                !rendering.contains(secret),
                "{secret:?} leaked into: {rendering}"
            );
        }
    }
}

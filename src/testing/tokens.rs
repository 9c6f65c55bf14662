//! The stand-in's book of issued tokens: which refresh token is current in each family, which
//! were rotated away, which access tokens are valid, and what reuse of a rotated token does.
//!
//! Kept free of HTTP so that each rule is a unit test.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// One refresh token's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// The family's newest refresh token: the only one a refresh accepts.
    Current,
    /// Already exchanged: presenting it again is reuse.
    Rotated,
}

#[derive(Debug, Clone)]
struct RefreshEntry {
    family: u64,
    standing: Standing,
    expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct AccessEntry {
    family: u64,
    expires: DateTime<Utc>,
}

/// A fresh pair, as a token response carries it.
#[derive(Clone)]
pub(crate) struct Issued {
    pub(crate) access: String,
    pub(crate) access_expires: DateTime<Utc>,
    pub(crate) refresh: String,
    pub(crate) refresh_expires: DateTime<Utc>,
}

/// What a refresh request with a given token comes to.
#[derive(Clone)]
pub(crate) enum RefreshOutcome {
    /// The token was current: here is the next pair; the token sent is now rotated.
    Rotated(Issued),
    /// The token had already been rotated: reuse (its family is revoked if the policy says so).
    Reused,
    /// Unknown, revoked, or expired.
    Rejected,
}

/// The lifetimes and reuse policy the book applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) access_lifetime: Duration,
    pub(crate) refresh_lifetime: Duration,
    pub(crate) revoke_family_on_reuse: bool,
}

/// Every token the stand-in issued, by family (one family per `POST /auth/token`). No `Debug`:
/// it holds every credential.
pub(crate) struct TokenBook {
    policy: Policy,
    refresh: HashMap<String, RefreshEntry>,
    access: HashMap<String, AccessEntry>,
    revoked_families: Vec<u64>,
    next_family: u64,
    serial: u64,
    random: RandomState,
    /// Every token issued, in order: what a leak check looks for.
    all: Vec<String>,
}

impl TokenBook {
    pub(crate) fn new(policy: Policy) -> Self {
        Self {
            policy,
            refresh: HashMap::new(),
            access: HashMap::new(),
            revoked_families: Vec::new(),
            next_family: 0,
            serial: 0,
            random: RandomState::new(),
            all: Vec::new(),
        }
    }

    /// A new family's first pair, as `POST /auth/token` (email and password) would issue it.
    pub(crate) fn create(&mut self, now: DateTime<Utc>) -> Issued {
        let family = self.next_family;
        self.next_family += 1;
        self.issue(family, now)
    }

    /// Exchanges `token` for a new pair, applying rotation and reuse detection.
    pub(crate) fn refresh(&mut self, token: &str, now: DateTime<Utc>) -> RefreshOutcome {
        let Some(entry) = self.refresh.get(token).cloned() else {
            return RefreshOutcome::Rejected;
        };
        if self.revoked_families.contains(&entry.family) {
            return RefreshOutcome::Rejected;
        }
        match entry.standing {
            Standing::Rotated => {
                // RFC 9700 §4.14: a rotated token presented again means two parties hold the
                // grant; revoking the family stops whichever of them is the attacker.
                if self.policy.revoke_family_on_reuse {
                    self.revoked_families.push(entry.family);
                }
                RefreshOutcome::Reused
            }
            Standing::Current if entry.expires <= now => RefreshOutcome::Rejected,
            Standing::Current => {
                if let Some(sent) = self.refresh.get_mut(token) {
                    sent.standing = Standing::Rotated;
                }
                RefreshOutcome::Rotated(self.issue(entry.family, now))
            }
        }
    }

    /// Whether `token` is a refresh token a refresh would accept now.
    pub(crate) fn is_valid_refresh(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.refresh.get(token).is_some_and(|entry| {
            entry.standing == Standing::Current
                && entry.expires > now
                && !self.revoked_families.contains(&entry.family)
        })
    }

    /// Whether `token` is an access token the protected endpoint accepts now.
    pub(crate) fn is_valid_access(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.access.get(token).is_some_and(|entry| {
            entry.expires > now && !self.revoked_families.contains(&entry.family)
        })
    }

    /// Revokes every token issued so far (as an operator revoking a user's grants would).
    pub(crate) fn revoke_all(&mut self) {
        self.revoked_families = (0..self.next_family).collect();
    }

    /// Revokes one access token: the protected endpoint no longer accepts it.
    pub(crate) fn revoke_access(&mut self, token: &str) {
        self.access.remove(token);
    }

    pub(crate) fn all_issued(&self) -> &[String] {
        &self.all
    }

    fn issue(&mut self, family: u64, now: DateTime<Utc>) -> Issued {
        let access = self.new_token("at");
        let refresh = self.new_token("rt");
        let access_expires = now + self.policy.access_lifetime;
        let refresh_expires = now + self.policy.refresh_lifetime;
        self.access.insert(
            access.clone(),
            AccessEntry {
                family,
                expires: access_expires,
            },
        );
        self.refresh.insert(
            refresh.clone(),
            RefreshEntry {
                family,
                standing: Standing::Current,
                expires: refresh_expires,
            },
        );
        Issued {
            access,
            access_expires,
            refresh,
            refresh_expires,
        }
    }

    /// Unguessable enough for a test server, and token-shaped (letters and digits, 34
    /// characters), so that the crate's scrubbing of echoed tokens applies to them as to real ones.
    fn new_token(&mut self, prefix: &str) -> String {
        let serial = self.serial;
        self.serial += 1;
        let a = self.random.hash_one((serial, 1u8));
        let b = self.random.hash_one((serial, 2u8));
        let token = format!("{prefix}{a:016x}{b:016x}");
        self.all.push(token.clone());
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(revoke_family_on_reuse: bool) -> TokenBook {
        TokenBook::new(Policy {
            access_lifetime: Duration::from_secs(1800),
            refresh_lifetime: Duration::from_secs(7 * 86400),
            revoke_family_on_reuse,
        })
    }

    /// A book (revoking a family on reuse or not) with one family issued, and the time it was.
    fn one_family(revoke_family_on_reuse: bool) -> (TokenBook, Issued, DateTime<Utc>) {
        let now = Utc::now();
        let mut book = book(revoke_family_on_reuse);
        let first = book.create(now);
        (book, first, now)
    }

    /// What a refresh came to, when it did not rotate: `rejected` or `reused`.
    fn outcome(outcome: RefreshOutcome) -> &'static str {
        match outcome {
            RefreshOutcome::Rejected => "rejected",
            RefreshOutcome::Reused => "reused",
            RefreshOutcome::Rotated(_) => "rotated",
        }
    }

    fn rotated(outcome: RefreshOutcome) -> Issued {
        match outcome {
            RefreshOutcome::Rotated(issued) => issued,
            _ => panic!("expected a rotation"),
        }
    }

    #[test]
    fn a_refresh_rotates_the_token_and_keeps_the_old_access_token() {
        let (mut book, first, now) = one_family(true);
        let second = rotated(book.refresh(&first.refresh, now));
        assert!(!book.is_valid_refresh(&first.refresh, now));
        assert!(book.is_valid_refresh(&second.refresh, now));
        assert!(book.is_valid_access(&first.access, now));
        assert!(book.is_valid_access(&second.access, now));
        assert_eq!(second.access_expires, now + chrono::Duration::seconds(1800));
    }

    #[test]
    fn reuse_revokes_the_whole_family_when_configured() {
        let (mut book, first, now) = one_family(true);
        let other_family = book.create(now);
        let second = rotated(book.refresh(&first.refresh, now));
        assert_eq!(outcome(book.refresh(&first.refresh, now)), "reused");
        assert!(!book.is_valid_refresh(&second.refresh, now));
        assert!(!book.is_valid_access(&second.access, now));
        assert_eq!(outcome(book.refresh(&second.refresh, now)), "rejected");
        assert!(book.is_valid_refresh(&other_family.refresh, now));
    }

    #[test]
    fn reuse_only_rejects_when_revocation_is_off() {
        let (mut book, first, now) = one_family(false);
        let second = rotated(book.refresh(&first.refresh, now));
        assert_eq!(outcome(book.refresh(&first.refresh, now)), "reused");
        assert!(book.is_valid_refresh(&second.refresh, now));
        rotated(book.refresh(&second.refresh, now));
    }

    #[test]
    fn expired_and_unknown_tokens_are_rejected() {
        let (mut book, first, now) = one_family(true);
        let later = now + chrono::Duration::days(8);
        assert!(!book.is_valid_access(&first.access, later));
        assert_eq!(outcome(book.refresh(&first.refresh, later)), "rejected");
        assert_eq!(outcome(book.refresh("rt-never-issued", now)), "rejected");
    }

    #[test]
    fn revoking_one_access_token_leaves_the_rest_valid() {
        let (mut book, first, now) = one_family(true);
        let second = rotated(book.refresh(&first.refresh, now));
        book.revoke_access(&first.access);
        assert!(!book.is_valid_access(&first.access, now));
        assert!(book.is_valid_access(&second.access, now));
        assert!(book.is_valid_refresh(&second.refresh, now));
    }

    #[test]
    fn revoke_all_invalidates_every_family() {
        let (mut book, first, now) = one_family(true);
        book.revoke_all();
        assert!(!book.is_valid_refresh(&first.refresh, now));
        assert!(!book.is_valid_access(&first.access, now));
        assert_eq!(book.all_issued().len(), 2);
    }
}

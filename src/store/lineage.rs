//! Where a stored document stands in the grant's history, so that a store that went back in time
//! (a failover that lost writes, a restart from an old snapshot, a restored backup) is told apart
//! from one that moved on, and no host sends a refresh token it knows was rotated away.
//!
//! - [`Fingerprint`]: a keyed hash of a refresh token (HMAC-SHA-256 under a key derived from the
//!   api key, which every host of a fleet shares), never the token itself. Hosts remember the
//!   fingerprints of the tokens they saw rotated away, and every document carries the most recent
//!   ones.
//! - `generation`: set when an operator writes tokens (`TokenStore::replace`, `genlogs-auth init
//!   --force`, `TokenManager::replace_tokens`), to the time of writing in milliseconds: a
//!   deliberate re-seed is newer than anything before it, a rolled-back store is not.
//! - `sequence`: counts the writes of managers within a generation. Unlike the store's `version`,
//!   which a store that went back counts again from where it went back to, it never goes back:
//!   a host writing newer tokens back numbers them past everything it has seen.
//! - `restored_at`: the tokens were written back into a store that had gone back or come back
//!   empty; no host refreshes from them before [`RESTORE_GRACE`] has passed, so every host had a
//!   chance to write back newer ones.
//! - `instance_changed`: set by a store when it reads, never stored: the store now answers from
//!   another server instance than the one that saved the document (a restart, a failover, a
//!   restored backup; Redis's `run_id`), so it may have lost later writes that only running
//!   hosts hold, or the possibly-rotated mark of a request still in flight. The manager writes
//!   the document back with `restored_at`, so nobody refreshes from it before the grace: that
//!   also protects a host that has seen nothing newer (one started after the rollback), which
//!   nothing in the document could warn.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::{ApiKey, RefreshToken};

/// How many fingerprints of rotated-away refresh tokens a document carries (the most recent).
pub const DOCUMENT_FINGERPRINTS: usize = 16;

/// After tokens were written back into a store that went back or came back empty, no host
/// refreshes from them for this long, and never sooner than the client's request timeout plus
/// 2 s (a refresh in flight when the store lost its mark may still rotate; its answer is then
/// saved over them): hosts that hold newer tokens and read the store meanwhile (any caller
/// needing a refresh, the keep-alive task's store watch) write them back first. Access tokens
/// are still handed out; only the next refresh waits.
pub const RESTORE_GRACE: Duration = Duration::from_secs(3);

/// A keyed hash of a refresh token: equal for equal tokens under one api key, and useless for
/// finding the token. `Debug` and serialization show hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint([u8; 16]);

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", String::from(*self))
    }
}

impl From<Fingerprint> for String {
    fn from(fingerprint: Fingerprint) -> String {
        fingerprint.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return Err("a fingerprint is 32 hex digits");
        }
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let digit = |c: u8| {
                (c as char)
                    .to_digit(16)
                    .ok_or("a fingerprint is hex digits")
            };
            out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(Fingerprint(out))
    }
}

/// The key fingerprints are made with: derived from the api key, so every host of a fleet makes
/// the same fingerprint of a token and nobody without the key can test a guess against one.
#[derive(Clone, Copy)]
pub(crate) struct FingerprintKey([u8; 32]);

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey([REDACTED])")
    }
}

impl FingerprintKey {
    pub(crate) fn from_api_key(api_key: &ApiKey) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"genlogs-auth refresh token fingerprint v1\0");
        hash.update(api_key.expose_secret().as_bytes());
        Self(hash.finalize().into())
    }

    pub(crate) fn fingerprint(&self, token: &RefreshToken) -> Fingerprint {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(token.expose_secret().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Fingerprint(out)
    }
}

/// Where a document stands in the grant's history (the module documentation says how it is
/// used). Documents written before it existed read as generation 0, sequence 0, nothing rotated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Lineage {
    /// When an operator last wrote the tokens, in milliseconds since 1970 (0: never).
    #[serde(default)]
    pub generation: u64,
    /// Writes by managers within the generation; never goes back.
    #[serde(default)]
    pub sequence: u64,
    /// Fingerprints of the most recently rotated-away refresh tokens, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotated: Vec<Fingerprint>,
    /// When these tokens were written back into a store that had gone back or come back empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<DateTime<Utc>>,
    /// Set by the store that read the document, never stored: it now answers from another server
    /// instance than the one that saved the document (restarted, failed over, restored), so it
    /// may have lost later writes. A store that cannot tell leaves it `false`.
    #[serde(skip)]
    pub instance_changed: bool,
}

impl Lineage {
    /// Whether nothing is known (an older document): skipped when serializing.
    pub fn is_empty(&self) -> bool {
        *self == Lineage::default()
    }

    /// The position to compare: a higher generation wins, then a higher sequence.
    pub(crate) fn mark(&self) -> (u64, u64) {
        (self.generation, self.sequence)
    }

    /// An operator's generation written at `now` over a document of `previous` generation:
    /// the time, or one more than the previous one if the clock says less.
    pub(crate) fn operator_generation(previous: u64, now: DateTime<Utc>) -> u64 {
        u64::try_from(now.timestamp_millis())
            .unwrap_or(0)
            .max(previous.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_keyed_stable_and_reveal_nothing() {
        let key = FingerprintKey::from_api_key(&ApiKey::new("key-1"));
        let other = FingerprintKey::from_api_key(&ApiKey::new("key-2"));
        let token = RefreshToken::new("rt-SECRET-1");
        assert_eq!(key.fingerprint(&token), key.fingerprint(&token));
        assert_ne!(key.fingerprint(&token), other.fingerprint(&token));
        assert_ne!(
            key.fingerprint(&token),
            key.fingerprint(&RefreshToken::new("rt-SECRET-2"))
        );
        let shown = format!("{:?} {:?}", key, key.fingerprint(&token));
        assert!(
            !shown.contains("SECRET") && !shown.contains("key-1"),
            "{shown}"
        );
    }

    #[test]
    fn fingerprints_round_trip_as_hex_and_refuse_anything_else() {
        let key = FingerprintKey::from_api_key(&ApiKey::new("key"));
        let fingerprint = key.fingerprint(&RefreshToken::new("rt"));
        let text = serde_json::to_string(&fingerprint).unwrap();
        assert_eq!(text.len(), 34);
        assert_eq!(
            serde_json::from_str::<Fingerprint>(&text).unwrap(),
            fingerprint
        );
        for bad in ["\"\"", "\"zz\"", "\"0123456789abcdef0123456789abcdeg\""] {
            assert!(serde_json::from_str::<Fingerprint>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_operator_generation_is_newer_than_the_one_before_even_on_a_slow_clock() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .unwrap()
            .to_utc();
        let ms = now.timestamp_millis() as u64;
        assert_eq!(Lineage::operator_generation(0, now), ms);
        assert_eq!(Lineage::operator_generation(ms + 5, now), ms + 6);
        assert!(Lineage::default().is_empty());
    }
}

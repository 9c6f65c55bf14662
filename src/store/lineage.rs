//! Where a stored document stands in the grant's history, so that a store that went back in time
//! (a failover that lost writes, a restart from an old snapshot, a restored backup) is told apart
//! from one that moved on, and no host sends a refresh token it knows was rotated away.
//!
//! - [`Fingerprint`]: a hash of a refresh token (HMAC-SHA-256 under a fixed, domain-separated
//!   key: the same on every host whatever its api key), never the token itself. Hosts remember
//!   the fingerprints of the tokens they saw rotated away, and every document carries the most
//!   recent ones. See [`Fingerprint`] for why the key is fixed and why that reveals nothing.
//! - `generation`: set when an operator writes tokens (`TokenStore::replace`, `genlogs-auth init
//!   --force`, `TokenManager::replace_tokens`), to the time of writing in milliseconds: a
//!   deliberate re-seed is newer than anything before it, a rolled-back store is not.
//! - `sequence`: counts the writes of managers within a generation. Unlike the store's `version`,
//!   which a store that went back counts again from where it went back to, it never goes back:
//!   a host writing newer tokens back numbers them past everything it has seen.
//! - `restored_at`: the tokens were written back into a store that had gone back or come back
//!   empty; no host refreshes from them before 3 s has passed, so every host had a
//!   chance to write back newer ones.
//! - A store that can tell it now answers from another server instance than the one that saved
//!   the document (a restart, a failover, a restored backup; Redis's `run_id`) says so on what it
//!   read (`StoredTokens::read_from_another_instance`, never stored): it may have lost later
//!   writes that only running hosts hold, or the possibly-rotated mark of a request still in
//!   flight. The manager writes the document back with `restored_at`, so nobody refreshes from
//!   it before the grace: that also protects a host that has seen nothing newer (one started
//!   after the rollback), which nothing in the document could warn.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::{AccessToken, ApiKey, RefreshToken};

/// How many fingerprints of rotated-away refresh tokens a document carries (the most recent).
pub(crate) const DOCUMENT_FINGERPRINTS: usize = 16;

/// After tokens were written back into a store that went back or came back empty, no host
/// refreshes from them for this long, and never sooner than the client's request timeout plus
/// 2 s (a refresh in flight when the store lost its mark may still rotate; its answer is then
/// saved over them): hosts that hold newer tokens and read the store meanwhile (any caller
/// needing a refresh, the keep-alive task's store watch) write them back first. Access tokens
/// are still handed out; only the next refresh waits.
pub(crate) const RESTORE_GRACE: Duration = Duration::from_secs(3);

/// A hash of a refresh token: equal for equal tokens on every host, and useless for finding the
/// token. `Debug` and serialization show hex.
///
/// HMAC-SHA-256 (truncated to 128 bits) under a fixed key, a constant that says what is hashed
/// (`genlogs-auth refresh token fingerprint v2`): every host of a fleet makes the same
/// fingerprint of a token whatever its api key, so rotating the api key across a fleet, host by
/// host, never splits it into hosts that cannot recognise each other's rotated tokens (with
/// keys derived from the api key, as in 0.2, they silently could not). A fixed key lets anyone
/// who reads a document test a guess against its fingerprints; that reveals nothing: refresh
/// tokens are long random secrets (guessing one is hopeless, 128 bits of hash or not), a
/// fingerprint is only ever of a token that is already rotated away (dead), and whoever reads
/// the document reads the current refresh token itself in the next field.
///
/// Documents written before (fingerprints keyed with the api key, "v1") are still read: a host
/// recognises a token by either its fingerprint or its v1 fingerprint under its own api key,
/// so nothing is forgotten on upgrade; it writes only the new ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct Fingerprint([u8; 16]);

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

/// The keys fingerprints are made with: the fixed one every host shares, the one 0.2 derived
/// from this host's api key (to recognise the fingerprints older documents carry), and the one
/// for rejected access tokens.
#[derive(Clone, Copy)]
pub(crate) struct FingerprintKey {
    current: [u8; 32],
    legacy: [u8; 32],
    access: [u8; 32],
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey([REDACTED])")
    }
}

/// `SHA-256(domain ‖ extra)`: an HMAC key that says what it hashes.
fn derive(domain: &[u8], extra: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(domain)
        .chain_update(extra)
        .finalize()
        .into()
}

/// HMAC-SHA-256 of `secret` under `key`, truncated to 128 bits.
fn hmac_128(key: &[u8; 32], secret: &str) -> Fingerprint {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(secret.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    Fingerprint(out)
}

impl FingerprintKey {
    pub(crate) fn from_api_key(api_key: &ApiKey) -> Self {
        Self {
            current: derive(b"genlogs-auth refresh token fingerprint v2\0", b""),
            // 0.2's, only to read older documents.
            legacy: derive(
                b"genlogs-auth refresh token fingerprint v1\0",
                api_key.expose_secret().as_bytes(),
            ),
            access: derive(b"genlogs-auth rejected access token v1\0", b""),
        }
    }

    /// The fingerprint of `token` every host makes (what documents carry).
    pub(crate) fn fingerprint(&self, token: &RefreshToken) -> Fingerprint {
        hmac_128(&self.current, token.expose_secret())
    }

    /// Whether `token` is among `known`, by its fingerprint or by the one an older version made
    /// under this host's api key.
    pub(crate) fn known<'a>(
        &self,
        token: &RefreshToken,
        mut known: impl Iterator<Item = &'a Fingerprint>,
    ) -> bool {
        let (current, legacy) = (
            self.fingerprint(token),
            hmac_128(&self.legacy, token.expose_secret()),
        );
        known.any(|fingerprint| *fingerprint == current || *fingerprint == legacy)
    }

    /// What a host remembers of an access token another endpoint rejected (kept in memory only).
    pub(crate) fn access(&self, token: &AccessToken) -> Fingerprint {
        hmac_128(&self.access, token.expose_secret())
    }
}

/// Where a document stands in the grant's history (the module documentation says how it is
/// used). Documents written before it existed read as generation 0, sequence 0, nothing rotated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub(crate) struct Lineage {
    /// When an operator last wrote the tokens, in milliseconds since 1970 (0: never).
    #[serde(default)]
    pub(crate) generation: u64,
    /// Writes by managers within the generation; never goes back.
    #[serde(default)]
    pub(crate) sequence: u64,
    /// Fingerprints of the most recently rotated-away refresh tokens, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) rotated: Vec<Fingerprint>,
    /// When these tokens were written back into a store that had gone back or come back empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) restored_at: Option<DateTime<Utc>>,
}

impl Lineage {
    /// Whether nothing is known (an older document): skipped when serializing.
    pub(crate) fn is_empty(&self) -> bool {
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
    fn fingerprints_are_the_same_under_any_api_key_stable_and_reveal_nothing() {
        let key = FingerprintKey::from_api_key(&ApiKey::new("key-1"));
        let other = FingerprintKey::from_api_key(&ApiKey::new("key-2"));
        let token = RefreshToken::new("rt-SECRET-1");
        assert_eq!(key.fingerprint(&token), key.fingerprint(&token));
        assert_eq!(
            key.fingerprint(&token),
            other.fingerprint(&token),
            "an api key rotation does not split the fleet"
        );
        assert_ne!(
            key.fingerprint(&token),
            key.fingerprint(&RefreshToken::new("rt-SECRET-2"))
        );
        assert_ne!(
            key.fingerprint(&token),
            key.access(&AccessToken::new("rt-SECRET-1")),
            "an access token's fingerprint is of another kind"
        );
        let shown = format!(
            "{:?} {:?} {:?}",
            key,
            key.fingerprint(&token),
            key.access(&AccessToken::new("at-SECRET"))
        );
        assert!(
            !shown.contains("SECRET") && !shown.contains("key-1"),
            "{shown}"
        );
    }

    #[test]
    fn the_fingerprints_older_documents_carry_are_recognised_under_the_same_api_key() {
        let key = FingerprintKey::from_api_key(&ApiKey::new("key-1"));
        let token = RefreshToken::new("rt-SECRET-1");
        // What 0.2 wrote for this token under this api key (HMAC-SHA-256 under
        // SHA-256("genlogs-auth refresh token fingerprint v1\0" ‖ api key), computed apart).
        let old = Fingerprint::try_from("00f1e1b15294a59518966ff4cb44773f".to_string()).unwrap();
        assert!(key.known(&token, [old].iter()));
        assert!(key.known(&token, [key.fingerprint(&token)].iter()));
        assert!(!key.known(&RefreshToken::new("rt-other"), [old].iter()));
        let other = FingerprintKey::from_api_key(&ApiKey::new("key-2"));
        assert!(other.known(&token, [key.fingerprint(&token)].iter()));
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

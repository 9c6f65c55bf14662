//! Encryption at rest for [`RedisStore`](super::RedisStore): whoever can read Redis (a replica, a
//! backup, `MONITOR`) must not be able to read the tokens.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per save (random nonces are safe at that size,
//! so no counter has to be shared by the fleet). The associated data binds the ciphertext to the
//! grant's name and to the document's version, so a document copied from another grant, or an old
//! document written back over a newer version, fails to decrypt instead of being served.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox};

use crate::store::{StoreError, UnreadableReason};

/// First byte of a sealed document. A JSON document starts with `{`, so the two cannot be mixed up.
const SEALED_MAGIC: u8 = 0xE1;
const NONCE_LEN: usize = 24;

/// A 256-bit key for [`RedisStore::with_encryption_key`](super::RedisStore::with_encryption_key).
/// `Debug` is redacted and the bytes are zeroed on drop. Every host of a fleet needs the same key.
pub struct EncryptionKey(SecretBox<[u8; 32]>);

impl EncryptionKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A key from 64 hexadecimal digits (e.g. an environment variable or a secret manager's
    /// value). The error never shows the input.
    pub fn from_hex(hex: &str) -> Result<Self, InvalidKey> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return Err(InvalidKey);
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let high = hex_digit(pair[0]).ok_or(InvalidKey)?;
            let low = hex_digit(pair[1]).ok_or(InvalidKey)?;
            *byte = high << 4 | low;
        }
        Ok(Self::from_bytes(bytes))
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, InvalidKey> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| InvalidKey)?;
        Ok(Self::from_bytes(bytes))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0.expose_secret()).into())
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The key could not be made: not 64 hexadecimal digits, or no randomness available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an encryption key must be 32 bytes, given as 64 hexadecimal digits")]
pub struct InvalidKey;

/// What binds a sealed document to its place: the grant's name and the version it is saved as.
fn associated_data(name: &str, version: u64) -> Vec<u8> {
    format!("genlogs-auth/redis-store/1\0{name}\0{version}").into_bytes()
}

/// Encrypts `json` (the document saved as `version` of grant `name`).
pub(super) fn seal(
    key: &EncryptionKey,
    name: &str,
    version: u64,
    json: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|_| StoreError::Other("no randomness for an encryption nonce".into()))?;
    let aad = associated_data(name, version);
    let ciphertext = key
        .cipher()
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: json,
                aad: &aad,
            },
        )
        // Only fails for messages of gigabytes.
        .map_err(|_| StoreError::Other("the token document is too large to encrypt".into()))?;
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(SEALED_MAGIC);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// The JSON inside a stored value, decrypting it when this store has a key.
pub(super) fn open(
    key: Option<&EncryptionKey>,
    name: &str,
    version: u64,
    stored: &[u8],
) -> Result<Vec<u8>, UnreadableReason> {
    let sealed = stored.first() == Some(&SEALED_MAGIC);
    match (key, sealed) {
        (None, false) => Ok(stored.to_vec()),
        (None, true) => Err(UnreadableReason::EncryptedWithoutKey),
        (Some(_), false) => Err(UnreadableReason::NotEncrypted),
        (Some(key), true) => {
            let rest = &stored[1..];
            if rest.len() < NONCE_LEN {
                return Err(UnreadableReason::WrongKeyOrAltered);
            }
            let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
            let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
            let aad = associated_data(name, version);
            key.cipher()
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| UnreadableReason::WrongKeyOrAltered)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &[u8] = br#"{"refresh_token":"rt-secret-value"}"#;

    fn key(byte: u8) -> EncryptionKey {
        EncryptionKey::from_bytes([byte; 32])
    }

    #[test]
    fn sealed_round_trip_returns_the_json_and_hides_it() {
        let sealed = seal(&key(7), "grant", 3, JSON).unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(open(Some(&key(7)), "grant", 3, &sealed).unwrap(), JSON);
    }

    #[test]
    fn two_seals_of_one_document_differ() {
        assert_ne!(
            seal(&key(7), "grant", 3, JSON).unwrap(),
            seal(&key(7), "grant", 3, JSON).unwrap()
        );
    }

    #[test]
    fn wrong_key_other_grant_other_version_or_flipped_bit_are_refused() {
        let sealed = seal(&key(7), "grant", 3, JSON).unwrap();
        let refused = |result: Result<Vec<u8>, UnreadableReason>| {
            assert_eq!(result.unwrap_err(), UnreadableReason::WrongKeyOrAltered)
        };
        refused(open(Some(&key(8)), "grant", 3, &sealed));
        refused(open(Some(&key(7)), "other", 3, &sealed));
        refused(open(Some(&key(7)), "grant", 2, &sealed));
        for index in 1..sealed.len() {
            let mut altered = sealed.clone();
            altered[index] ^= 0x01;
            refused(open(Some(&key(7)), "grant", 3, &altered));
        }
        refused(open(Some(&key(7)), "grant", 3, &sealed[..10]));
        refused(open(Some(&key(7)), "grant", 3, &[SEALED_MAGIC]));
    }

    #[test]
    fn mixing_sealed_and_plain_documents_is_a_named_error() {
        let sealed = seal(&key(7), "grant", 3, JSON).unwrap();
        assert_eq!(
            open(None, "grant", 3, &sealed).unwrap_err(),
            UnreadableReason::EncryptedWithoutKey
        );
        assert_eq!(
            open(Some(&key(7)), "grant", 3, JSON).unwrap_err(),
            UnreadableReason::NotEncrypted
        );
        assert_eq!(open(None, "grant", 3, JSON).unwrap(), JSON);
    }

    #[test]
    fn hex_keys_parse_and_bad_ones_do_not_echo() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let parsed = EncryptionKey::from_hex(hex).unwrap();
        let sealed = seal(&parsed, "g", 1, JSON).unwrap();
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = [
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ][i % 16];
        }
        assert_eq!(
            open(Some(&EncryptionKey::from_bytes(bytes)), "g", 1, &sealed).unwrap(),
            JSON
        );
        for bad in ["", "00", &hex[1..], &format!("{}zz", &hex[2..])] {
            let error = EncryptionKey::from_hex(bad).unwrap_err();
            assert!(bad.is_empty() || !error.to_string().contains(bad));
        }
        assert_eq!(format!("{parsed:?}"), "EncryptionKey([REDACTED])");
    }
}

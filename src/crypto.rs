//! Encryption at rest for secrets the app must read back (Steam API keys,
//! TOTP secrets): AES-256-GCM under the master key, a fresh random nonce per
//! value, the key id stored beside each ciphertext so keys can rotate.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::Settings;

const NONCE_LEN: usize = 12;

/// Compares a submitted secret (token, code) with the expected one in time
/// that reveals neither where they differ nor their lengths: both are
/// hashed to fixed-size digests first.
pub fn secrets_equal(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())).into()
}

/// Encrypts and decrypts with the configured master key.
#[derive(Clone)]
pub struct Cipher {
    key_id: String,
    cipher: Aes256Gcm,
}

/// A value that could not be decrypted: wrong key id, wrong key, or tampering.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt: {0}")]
pub struct DecryptError(&'static str);

impl Cipher {
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(&settings.master_key_id, settings.master_key.expose_secret())
    }

    /// `key` must be 32 bytes (settings guarantee it).
    pub fn new(key_id: &str, key: &[u8]) -> Self {
        let key = Key::<Aes256Gcm>::from_slice(key);
        Cipher { key_id: key_id.to_owned(), cipher: Aes256Gcm::new(key) }
    }

    /// The id to store beside ciphertexts made now.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `nonce || ciphertext+tag`. `context` (for example "totp:42") is
    /// authenticated, so a ciphertext copied to another row or purpose fails.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("AES-GCM encryption of a bounded message cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    pub fn decrypt(&self, key_id: &str, data: &[u8], context: &str) -> Result<Vec<u8>, DecryptError> {
        if key_id != self.key_id {
            return Err(DecryptError("encrypted under another key id; run `questline rotate-keys`"));
        }
        if data.len() < NONCE_LEN + 16 {
            return Err(DecryptError("ciphertext too short"));
        }
        let (nonce, ct) = data.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
            .map_err(|_| DecryptError("authentication failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::new("k1", &[7u8; 32])
    }

    #[test]
    fn a_value_round_trips_and_each_encryption_differs() {
        let c = cipher();
        let a = c.encrypt(b"secret", "totp:1");
        let b = c.encrypt(b"secret", "totp:1");
        assert_ne!(a, b, "fresh nonce each time");
        assert_eq!(c.decrypt("k1", &a, "totp:1").unwrap(), b"secret");
    }

    #[test]
    fn another_context_key_or_a_flipped_bit_is_refused() {
        let c = cipher();
        let mut a = c.encrypt(b"secret", "totp:1");
        assert!(c.decrypt("k1", &a, "totp:2").is_err());
        assert!(c.decrypt("k2", &a, "totp:1").is_err());
        assert!(Cipher::new("k1", &[8u8; 32]).decrypt("k1", &a, "totp:1").is_err());
        let last = a.len() - 1;
        a[last] ^= 1;
        assert!(c.decrypt("k1", &a, "totp:1").is_err());
    }
}

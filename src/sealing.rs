//! Encryption at rest for stored secrets (`keys.encryption_key`):
//! AES-256-GCM through `aws-lc-rs`, stored as `enc:v1:<base64(nonce ‖ ciphertext)>`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "enc:v1:";

/// Why a stored value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The value is encrypted but no `keys.encryption_key` is configured.
    #[error("the stored value is encrypted but keys.encryption_key is not set")]
    NoKey,
    /// Wrong key or damaged value.
    #[error("the stored value cannot be decrypted (wrong keys.encryption_key?)")]
    Undecryptable,
    /// Encryption failed (the system RNG); nothing is stored in plain text
    /// instead.
    #[error("a value could not be encrypted")]
    SealFailed,
}

/// Seals and opens values with the configured key, or passes them through
/// when none is configured.
#[derive(Clone)]
pub struct Sealer {
    key: Option<std::sync::Arc<LessSafeKey>>,
}

impl Sealer {
    /// `key_b64`: 32 bytes, base64 (validated with the configuration).
    pub fn new(key_b64: Option<&str>) -> Self {
        let key = key_b64
            .and_then(|k| STANDARD.decode(k).ok())
            .and_then(|k| UnboundKey::new(&AES_256_GCM, &k).ok())
            .map(|k| std::sync::Arc::new(LessSafeKey::new(k)));
        Self { key }
    }

    /// Encrypts `plain` when a key is configured; a failure is an error,
    /// never a silent plain-text value.
    pub fn seal(&self, plain: &str) -> Result<String, SealError> {
        let Some(key) = &self.key else {
            return Ok(plain.to_owned());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::SealFailed)?;
        let mut buf = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| SealError::SealFailed)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// Whether a key is configured.
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    /// Whether `stored` was sealed (by any key).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Decrypts a value from [`Sealer::seal`]; plain values pass through.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let key = self.key.as_ref().ok_or(SealError::NoKey)?;
        let raw = STANDARD.decode(b64).map_err(|_| SealError::Undecryptable)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Undecryptable);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Undecryptable)?;
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .map_err(|_| SealError::Undecryptable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key() {
        let key = STANDARD.encode([7u8; 32]);
        let sealer = Sealer::new(Some(&key));
        let sealed = sealer.seal("private").expect("seals");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("private"));
        assert_eq!(sealer.open(&sealed).expect("opens"), "private");
        let other = Sealer::new(Some(&STANDARD.encode([8u8; 32])));
        assert!(other.open(&sealed).is_err());
        assert!(Sealer::new(None).open(&sealed).is_err());
        assert_eq!(Sealer::new(None).seal("plain").expect("passes"), "plain");
    }
}

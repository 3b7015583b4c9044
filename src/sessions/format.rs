//! The refresh token's wire form: what a token carries and how a forged
//! one is refused without a query.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::secrets::ServerKey;

/// Refresh token wire form: base64url(id ‖ secret ‖ tag), 64 bytes.
///
/// - `secret`, 256 bits: random for the first token of a family; for a
///   child, HMAC(server key, parent's value, child id). The child's value can
///   then be derived again from the parent's for the grace window, without
///   storing any token value (only SHA-256 hashes are stored), and guessing
///   any token of a family means guessing its 256 random bits or the key.
/// - `tag`, 128 bits of HMAC(server key, id ‖ secret): a forged token is
///   refused without a query.
///
/// Tokens of the first form, base64url(id ‖ HMAC(key, "refresh", id)),
/// 48 bytes, are still read until they expire.
fn refresh_value(key: &ServerKey, id: Uuid, secret: &[u8; 32]) -> String {
    let mut raw = Vec::with_capacity(64);
    raw.extend_from_slice(id.as_bytes());
    raw.extend_from_slice(secret);
    raw.extend_from_slice(&key.mac(&[b"refresh-tag", id.as_bytes(), secret])[..16]);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The first token of a family: a fresh random secret.
pub fn root_refresh_value(key: &ServerKey, id: Uuid) -> String {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    refresh_value(key, id, &secret)
}

/// A rotation's child, derived from the parent's value as presented.
pub fn child_refresh_value(key: &ServerKey, parent_value: &str, child: Uuid) -> String {
    let secret = key.mac(&[b"refresh-child", parent_value.as_bytes(), child.as_bytes()]);
    refresh_value(key, child, &secret)
}

pub fn parse_refresh(key: &ServerKey, value: &str) -> Option<Uuid> {
    if value.len() > 128 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
    let id = Uuid::from_slice(raw.get(..16)?).ok()?;
    match raw.len() {
        64 => {
            let tag = key.mac(&[b"refresh-tag", id.as_bytes(), &raw[16..48]]);
            bool::from(tag[..16].ct_eq(&raw[48..])).then_some(id)
        }
        48 => {
            let mac = key.mac(&[b"refresh", id.as_bytes()]);
            bool::from(mac.ct_eq(&raw[16..])).then_some(id)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_refresh_tokens_are_refused(value in ".{0,120}") {
            prop_assert!(parse_refresh(&ServerKey::from_bytes([3; 32]), &value).is_none());
        }
    }

    #[test]
    fn refresh_values_carry_their_id_256_bits_and_refuse_forgery() {
        let key = ServerKey::from_bytes([1; 32]);
        let id = Uuid::new_v4();
        let v = root_refresh_value(&key, id);
        assert_eq!(v.len(), 86, "64 bytes: id, 256-bit secret, tag");
        assert_eq!(parse_refresh(&key, &v), Some(id));
        assert_ne!(v, root_refresh_value(&key, id), "the secret is random");
        assert_eq!(parse_refresh(&ServerKey::from_bytes([2; 32]), &v), None);
        let mut tampered = v.clone().into_bytes();
        tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            parse_refresh(&key, &String::from_utf8(tampered).expect("ascii")),
            None
        );
        assert_eq!(parse_refresh(&key, "not a token"), None);
        // A child is derived from its parent's value: the same again for the
        // grace window, different for another parent.
        let child = Uuid::new_v4();
        let c = child_refresh_value(&key, &v, child);
        assert_eq!(c, child_refresh_value(&key, &v, child));
        assert_ne!(
            c,
            child_refresh_value(&key, &root_refresh_value(&key, id), child)
        );
        assert_eq!(parse_refresh(&key, &c), Some(child));
        // Tokens of the first form are still read.
        let mut old = id.as_bytes().to_vec();
        old.extend_from_slice(&key.mac(&[b"refresh", id.as_bytes()]));
        assert_eq!(parse_refresh(&key, &URL_SAFE_NO_PAD.encode(old)), Some(id));
    }
}

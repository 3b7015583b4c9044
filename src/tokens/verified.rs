//! Access tokens this process has verified: a client presents one token
//! many times over its life (every API call until it expires), and
//! checking an RS256 signature is most of a bearer check's work (RSA
//! verification: about 260 k of the 470 k instructions of `GET
//! /account/me`). A token seen before is recognised by its SHA-256 and its
//! signature is not checked again, as API gateways do (Envoy's `jwt_authn`
//! keeps such a cache).
//!
//! What is remembered is exactly what [`super::verify_jwt`] answered for
//! those bytes: signature, algorithm, `kid`, `typ` and issuer, none of which
//! can change for the same bytes, except that the key can stop being
//! published (retired past its tokens' lifetime, or deleted from the
//! database after a compromise). So an entry is used only while its `kid` is
//! still published. Time (`exp`, `nbf`) and
//! revocation (the deny list, the account) are checked on every request by
//! the callers, as before. Tokens that fail verification are never
//! remembered: a forged token costs a full check every time.

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use quick_cache::sync::Cache;

use super::claims::AccessClaims;

/// How many verified tokens are remembered (a few hundred bytes each;
/// beyond that, quick_cache's S3-FIFO policy forgets the least used).
const ENTRIES: usize = 2048;

/// The SHA-256 of a token: a cache key that identifies its bytes.
pub type TokenHash = [u8; 32];

/// The cache; clones share it.
#[derive(Clone)]
pub struct Verified(Arc<Cache<TokenHash, Arc<Entry>>>);

struct Entry {
    kid: String,
    claims: AccessClaims,
}

impl Default for Verified {
    fn default() -> Self {
        Self(Arc::new(Cache::new(ENTRIES)))
    }
}

impl Verified {
    /// The key `token` is remembered under.
    pub fn hash(token: &str) -> TokenHash {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        out
    }

    /// The claims of a token verified before, if the key that signed it is
    /// still `published`.
    pub fn get(
        &self,
        hash: &TokenHash,
        published: impl FnOnce(&str) -> bool,
    ) -> Option<AccessClaims> {
        let entry = self.0.get(hash)?;
        if !published(&entry.kid) {
            self.0.remove(hash);
            return None;
        }
        Some(entry.claims.clone())
    }

    /// Remembers that the token of `hash`, signed by `kid`, verified to
    /// `claims`.
    pub fn insert(&self, hash: TokenHash, kid: String, claims: AccessClaims) {
        self.0.insert(hash, Arc::new(Entry { kid, claims }));
    }
}

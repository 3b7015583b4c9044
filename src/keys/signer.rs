//! A `jsonwebtoken` crypto provider over `aws-lc-rs` (AWS-LC: constant-time
//! RSA with the same AVX-512 IFMA code OpenSSL uses, about three times as fast
//! as `ring` on CPUs that have it), with each key parsed once: `jsonwebtoken`'s
//! own providers re-parse the key on every signature and every verification,
//! which nearly doubles the cost of a token. Only RS256 exists here; every
//! other algorithm is refused.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaKeyPair};
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use sha2::{Digest, Sha256};

/// Parsed keys by SHA-256 of their encoding. Holds one entry per key this
/// process has used (a handful over its life).
struct Parsed<K>(LazyLock<RwLock<HashMap<[u8; 32], Arc<K>>>>);

impl<K> Parsed<K> {
    const fn new() -> Self {
        Self(LazyLock::new(|| RwLock::new(HashMap::new())))
    }

    fn get_or_parse(
        &self,
        parts: &[&[u8]],
        parse: impl FnOnce() -> Result<K, JwtError>,
    ) -> Result<Arc<K>, JwtError> {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        let id: [u8; 32] = h.finalize().into();
        if let Some(k) = self.0.read().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(k);
        }
        let key = Arc::new(parse()?);
        if let Ok(mut m) = self.0.write() {
            m.insert(id, key.clone());
        }
        Ok(key)
    }
}

static PRIVATE: Parsed<RsaKeyPair> = Parsed::new();
static PUBLIC: Parsed<ParsedPublicKey> = Parsed::new();

static RNG: LazyLock<SystemRandom> = LazyLock::new(SystemRandom::new);

/// The provider; install once per process with [`install`].
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory,
    verifier_factory,
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Makes this the process-wide `jsonwebtoken` provider (idempotent).
pub fn install() {
    // Err means already installed, by this same function.
    let _ = PROVIDER.install_default();
}

/// Parses `der` (PKCS#1) once and remembers it for [`signer_factory`].
pub fn preload(der: &[u8]) -> Result<(), JwtError> {
    private(der).map(|_| ())
}

fn rejected(e: impl std::fmt::Display) -> JwtError {
    JwtError::from(ErrorKind::InvalidRsaKey(e.to_string()))
}

fn private(der: &[u8]) -> Result<Arc<RsaKeyPair>, JwtError> {
    PRIVATE.get_or_parse(&[der], || RsaKeyPair::from_der(der).map_err(rejected))
}

fn public(key: &DecodingKey) -> Result<Arc<ParsedPublicKey>, JwtError> {
    let alg = &sig::RSA_PKCS1_2048_8192_SHA256;
    match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => PUBLIC.get_or_parse(&[n, e], || {
            let der = pkcs1_public_der(n, e)?;
            ParsedPublicKey::new(alg, der).map_err(rejected)
        }),
        DecodingKeyKind::SecretOrDer(der) => {
            PUBLIC.get_or_parse(&[der], || ParsedPublicKey::new(alg, der).map_err(rejected))
        }
    }
}

/// PKCS#1 DER of the public key (n, e), as `ParsedPublicKey` takes it.
fn pkcs1_public_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, JwtError> {
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(e),
    )
    .map_err(rejected)?;
    Ok(key.to_pkcs1_der().map_err(rejected)?.into_vec())
}

struct Rs256Signer(Arc<RsaKeyPair>);

impl signature::Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut out = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(&sig::RSA_PKCS1_SHA256, &*RNG, msg, &mut out)
            .map_err(|_| signature::Error::new())?;
        Ok(out)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct Rs256Verifier(Arc<ParsedPublicKey>);

impl signature::Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        self.0
            .verify_sig(msg, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn signer_factory(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Rs256Signer(private(key.inner())?)))
}

fn verifier_factory(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Rs256Verifier(public(key)?)))
}

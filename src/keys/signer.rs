//! A `jsonwebtoken` crypto provider over `aws-lc-rs` (AWS-LC: constant-time
//! RSA with the same AVX-512 IFMA code OpenSSL uses, about three times as fast
//! as `ring` on CPUs that have it), with each key parsed once: `jsonwebtoken`'s
//! own providers re-parse the key on every signature and every verification,
//! which nearly doubles the cost of a token. RS256, ES256 and EdDSA exist
//! here; every other algorithm is refused.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as sig, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey,
    RsaKeyPair,
};
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

/// A parsed private key.
enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

static PRIVATE: Parsed<PrivateKey> = Parsed::new();
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

/// Parses the private key `der` of `alg` (RSA: PKCS#1; EC, Ed25519:
/// PKCS#8) once and remembers it for [`signer_factory`].
pub fn preload(alg: Algorithm, der: &[u8]) -> Result<(), JwtError> {
    private(alg, der).map(|_| ())
}

fn rejected(e: impl std::fmt::Display) -> JwtError {
    JwtError::from(ErrorKind::Signing(format!("key rejected: {e}")))
}

/// A one-byte tag per algorithm, so one encoding never parses as two kinds.
fn tag(alg: Algorithm) -> Result<[u8; 1], JwtError> {
    match alg {
        Algorithm::RS256 => Ok([1]),
        Algorithm::ES256 => Ok([2]),
        Algorithm::EdDSA => Ok([3]),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn private(alg: Algorithm, der: &[u8]) -> Result<Arc<PrivateKey>, JwtError> {
    PRIVATE.get_or_parse(&[&tag(alg)?, der], || match alg {
        Algorithm::RS256 => RsaKeyPair::from_der(der)
            .map(PrivateKey::Rsa)
            .map_err(rejected),
        Algorithm::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(PrivateKey::Ec)
            .map_err(rejected),
        _ => Ed25519KeyPair::from_pkcs8(der)
            .map(PrivateKey::Ed)
            .map_err(rejected),
    })
}

fn public(alg: Algorithm, key: &DecodingKey) -> Result<Arc<ParsedPublicKey>, JwtError> {
    let tag = tag(alg)?;
    match (alg, key.kind()) {
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            PUBLIC.get_or_parse(&[&tag, n, e], || {
                let der = pkcs1_public_der(n, e)?;
                ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der).map_err(rejected)
            })
        }
        // RSA: PKCS#1 DER; EC: the SEC 1 point; Ed25519: the 32 raw bytes.
        (_, DecodingKeyKind::SecretOrDer(bytes)) => PUBLIC.get_or_parse(&[&tag, bytes], || {
            let verification: &'static dyn sig::VerificationAlgorithm = match alg {
                Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                _ => &sig::ED25519,
            };
            ParsedPublicKey::new(verification, bytes).map_err(rejected)
        }),
        _ => Err(ErrorKind::InvalidKeyFormat.into()),
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

struct Signer(Algorithm, Arc<PrivateKey>);

impl signature::Signer<Vec<u8>> for Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        match &*self.1 {
            PrivateKey::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &*RNG, msg, &mut out)
                    .map_err(|_| signature::Error::new())?;
                Ok(out)
            }
            // FIXED: r || s, 32 bytes each, as JWS wants (RFC 7518 §3.4).
            PrivateKey::Ec(k) => k
                .sign(&*RNG, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            PrivateKey::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for Signer {
    fn algorithm(&self) -> Algorithm {
        self.0
    }
}

struct Verifier(Algorithm, Arc<ParsedPublicKey>);

impl signature::Verifier<Vec<u8>> for Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        self.1
            .verify_sig(msg, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Verifier {
    fn algorithm(&self) -> Algorithm {
        self.0
    }
}

fn signer_factory(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Signer(*alg, private(*alg, key.inner())?)))
}

fn verifier_factory(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    // A key is used only with its own kind of algorithm, whatever the
    // caller checked before.
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Verifier(*alg, public(*alg, key)?)))
}

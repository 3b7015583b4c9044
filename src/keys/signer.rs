//! A `jsonwebtoken` crypto provider over `ring` (constant-time RSA), with
//! each private key parsed once: `jsonwebtoken`'s own providers re-parse
//! the key on every signature, which nearly doubles the cost of a token.
//! Only RS256 exists here; every other algorithm is refused.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, RsaKeyPair};
use sha2::{Digest, Sha256};

/// Parsed key pairs by SHA-256 of their PKCS#1 DER. Holds one entry per
/// signing key this process has used (a handful over its life).
static PARSED: LazyLock<RwLock<HashMap<[u8; 32], Arc<RsaKeyPair>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

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
    parsed(der).map(|_| ())
}

fn parsed(der: &[u8]) -> Result<Arc<RsaKeyPair>, JwtError> {
    let id: [u8; 32] = Sha256::digest(der).into();
    if let Some(k) = PARSED.read().ok().and_then(|m| m.get(&id).cloned()) {
        return Ok(k);
    }
    let pair = Arc::new(
        RsaKeyPair::from_der(der)
            .map_err(|e| JwtError::from(ErrorKind::InvalidRsaKey(e.to_string())))?,
    );
    if let Ok(mut m) = PARSED.write() {
        m.insert(id, pair.clone());
    }
    Ok(pair)
}

struct Rs256Signer(Arc<RsaKeyPair>);

impl signature::Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut out = vec![0; self.0.public().modulus_len()];
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

struct Rs256Verifier(DecodingKey);

impl signature::Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let result = match self.0.kind() {
            DecodingKeyKind::RsaModulusExponent { n, e } => sig::RsaPublicKeyComponents { n, e }
                .verify(&sig::RSA_PKCS1_2048_8192_SHA256, msg, signature),
            DecodingKeyKind::SecretOrDer(der) => {
                sig::UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(msg, signature)
            }
        };
        result.map_err(|_| signature::Error::new())
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
    Ok(Box::new(Rs256Signer(parsed(key.inner())?)))
}

fn verifier_factory(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Rs256Verifier(key.clone())))
}

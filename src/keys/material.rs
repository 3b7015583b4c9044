//! Key material per algorithm: making a private key, reading one back from
//! its PKCS#8 PEM, its public JWK with the RFC 7638 thumbprint as `kid`, and
//! the `jsonwebtoken` keys that sign and verify with it.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding, SecretDocument};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::signer;
use crate::config::SigningAlg;
use crate::error::{Error, Result};

/// A public key as a JWK (RFC 7517 §4; RSA: RFC 7518 §6.3.1, EC: §6.2.1,
/// OKP: RFC 8037 §2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// Key id.
    pub kid: String,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve: `P-256` or `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, or the Ed25519 public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// The `jsonwebtoken` algorithm of `alg`.
pub fn jose(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// What a private key gives: its public JWK and the key that signs.
pub struct Material {
    /// The public half.
    pub jwk: Jwk,
    /// For `jsonwebtoken::encode`, parsed once by [`signer`].
    pub encoding: EncodingKey,
}

/// A new private key for `alg`, as PKCS#8 PEM. RSA keys take a while:
/// call this off the async executor.
pub fn generate(alg: SigningAlg, rsa_bits: usize) -> Result<Zeroizing<String>> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = match alg {
        SigningAlg::RS256 => {
            let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, rsa_bits)
                .map_err(Error::internal)?;
            return key.to_pkcs8_pem(LineEnding::LF).map_err(Error::internal);
        }
        SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
    }
    .map_err(Error::internal)?;
    SecretDocument::try_from(der.as_ref())
        .and_then(|d| d.to_pem("PRIVATE KEY", LineEnding::LF))
        .map_err(Error::internal)
}

/// Reads a private key of `alg` from its PKCS#8 PEM.
pub fn parse(alg: SigningAlg, pem: &str) -> Result<Material> {
    if alg == SigningAlg::RS256 {
        let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(Error::internal)?;
        return rsa_material(&key);
    }
    let (_, doc) = SecretDocument::from_pem(pem).map_err(Error::internal)?;
    let der = doc.as_bytes();
    let (jwk, encoding) = match alg {
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map_err(Error::internal)?;
            // SEC 1 uncompressed point: 0x04 || x || y, 32 bytes each.
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(Error::internal("unexpected P-256 public key encoding"));
            }
            let (x, y) = point[1..].split_at(32);
            (
                thumbprinted(Jwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(URL_SAFE_NO_PAD.encode(x)),
                    y: Some(URL_SAFE_NO_PAD.encode(y)),
                    ..blank(alg)
                }),
                EncodingKey::from_ec_der(der),
            )
        }
        SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(der).map_err(Error::internal)?;
            (
                thumbprinted(Jwk {
                    kty: "OKP".into(),
                    crv: Some("Ed25519".into()),
                    x: Some(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())),
                    ..blank(alg)
                }),
                EncodingKey::from_ed_der(der),
            )
        }
        SigningAlg::RS256 => unreachable!("handled above"),
    };
    signer::preload(jose(alg), encoding.inner()).map_err(Error::internal)?;
    Ok(Material { jwk, encoding })
}

/// The material of an RSA key (a generated one, or `keys.private_key_file`).
pub fn rsa_material(key: &RsaPrivateKey) -> Result<Material> {
    let der = key.to_pkcs1_der().map_err(Error::internal)?;
    signer::preload(Algorithm::RS256, der.as_bytes()).map_err(Error::internal)?;
    Ok(Material {
        jwk: rsa_jwk(key),
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
    })
}

/// The public JWK of an RSA key.
pub fn rsa_jwk(key: &RsaPrivateKey) -> Jwk {
    thumbprinted(Jwk {
        kty: "RSA".into(),
        n: Some(URL_SAFE_NO_PAD.encode(key.n().to_bytes_be())),
        e: Some(URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())),
        ..blank(SigningAlg::RS256)
    })
}

/// The key that verifies what `jwk` signs, and its algorithm; `None` for a
/// JWK of no algorithm of ours, missing a member, or whose `kid` is not its
/// thumbprint. So a `kid` always names one key, whatever the database holds:
/// tokens remembered as verified by `kid` rely on it.
pub fn verifying(jwk: &Jwk) -> Option<(SigningAlg, DecodingKey)> {
    if thumbprinted(jwk.clone()).kid != jwk.kid {
        return None;
    }
    let alg = SigningAlg::parse(&jwk.alg)?;
    let key = match (alg, jwk.kty.as_str()) {
        (SigningAlg::RS256, "RSA") => {
            DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?
        }
        (SigningAlg::ES256, "EC") => {
            DecodingKey::from_ec_components(jwk.x.as_deref()?, jwk.y.as_deref()?).ok()?
        }
        (SigningAlg::EdDSA, "OKP") => DecodingKey::from_ed_components(jwk.x.as_deref()?).ok()?,
        _ => return None,
    };
    Some((alg, key))
}

fn blank(alg: SigningAlg) -> Jwk {
    Jwk {
        kty: String::new(),
        use_: "sig".into(),
        alg: alg.as_str().into(),
        kid: String::new(),
        n: None,
        e: None,
        crv: None,
        x: None,
        y: None,
    }
}

/// `jwk` with its `kid` set to its RFC 7638 thumbprint: the SHA-256 of the
/// required members in lexicographic order, without whitespace.
fn thumbprinted(mut jwk: Jwk) -> Jwk {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let canonical = match jwk.kty.as_str() {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&jwk.e), s(&jwk.n)),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s(&jwk.crv),
            s(&jwk.x),
            s(&jwk.y)
        ),
        _ => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
            s(&jwk.crv),
            jwk.kty,
            s(&jwk.x)
        ),
    };
    jwk.kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    jwk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_pem_and_signs_what_its_jwk_verifies() {
        signer::install();
        for alg in SigningAlg::ALL {
            let pem = generate(alg, 2048).expect("generate");
            let m = parse(alg, &pem).expect("parse");
            assert_eq!(m.jwk.alg, alg.as_str());
            assert_eq!(
                parse(alg, &pem).expect("again").jwk,
                m.jwk,
                "same key, same kid"
            );
            let mut header = jsonwebtoken::Header::new(jose(alg));
            header.kid = Some(m.jwk.kid.clone());
            let claims = serde_json::json!({"sub": "u", "exp": 4_000_000_000u64});
            let token = jsonwebtoken::encode(&header, &claims, &m.encoding).expect("sign");
            let (valg, key) = verifying(&m.jwk).expect("verifying key");
            assert_eq!(valg, alg);
            // Another key under this key's kid is refused.
            let other = parse(alg, &generate(alg, 2048).expect("generate"))
                .expect("parse")
                .jwk;
            let impostor = Jwk {
                kid: m.jwk.kid.clone(),
                ..other
            };
            assert!(
                verifying(&impostor).is_none(),
                "{alg:?}: a kid names one key"
            );
            let mut v = jsonwebtoken::Validation::new(jose(alg));
            v.validate_aud = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).expect("verifies");
            let mut forged = token.clone();
            forged.pop();
            forged.push(if token.ends_with('A') { 'B' } else { 'A' });
            assert!(
                jsonwebtoken::decode::<serde_json::Value>(&forged, &key, &v).is_err(),
                "{alg:?}: a changed signature is refused"
            );
        }
    }

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = thumbprinted(Jwk {
            kty: "RSA".into(),
            n: Some(n.into()),
            e: Some("AQAB".into()),
            ..blank(SigningAlg::RS256)
        });
        assert_eq!(jwk.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}

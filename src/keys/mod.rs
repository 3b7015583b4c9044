//! Signing keys: generated on first start and kept in the database (or read
//! from `keys.private_key_file`), rotated with `gatehouse keys rotate`, and
//! published as a JWK Set (RFC 7517). RS256 keys always exist; ES256 and
//! EdDSA keys once a client asks for them (`[[clients]] signing_alg`), each
//! algorithm rotated in its own generations.
//!
//! Rotation publishes the new key at once but lets it sign only
//! `keys.jwks_max_age` later, so a relying party with a cached JWKS never
//! meets an unknown `kid`. A retired key stays published while tokens it
//! signed can still be live.

pub mod material;
pub mod signer;
mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sea_orm::DatabaseConnection;
use serde::Serialize;

pub use material::Jwk;

use crate::clock::chrono_duration;
use crate::config::SigningAlg;
use crate::entity::signing_keys;
use crate::error::{Error, Result};
use crate::sealing::Sealer;

/// Stored in place of the private key for a key that lives in a file.
const EXTERNAL: &str = "external";

/// A key that can sign.
pub struct SigningKey {
    /// Its `kid`.
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: Algorithm,
    /// For `jsonwebtoken::encode` (parsed once by [`signer`]).
    pub encoding: EncodingKey,
}

impl SigningKey {
    /// A JWS header for a token of type `typ` signed by this key.
    pub fn header(&self, typ: &str) -> Header {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        header
    }
}

/// A loaded key: its public half always, its private half when we hold it.
struct LoadedKey {
    jwk: Jwk,
    alg: SigningAlg,
    decoding: DecodingKey,
    signing: Option<Arc<SigningKey>>,
    activates_at: DateTime<Utc>,
}

/// The keys as last read from the database, with the JWKS bytes rendered.
struct KeySet {
    keys: Vec<LoadedKey>,
    by_kid: HashMap<String, usize>,
    /// Pre-rendered JWKS body, shared by every request.
    jwks: Arc<[u8]>,
}

/// Summary of a key for `gatehouse keys list`.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: &'static str,
    /// Generation number (per algorithm).
    pub generation: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// From when it signs.
    pub activates_at: DateTime<Utc>,
    /// When it stopped signing.
    pub retired_at: Option<DateTime<Utc>>,
    /// `signing`, `next`, `published` or `expired`.
    pub state: &'static str,
}

/// The key ring every replica shares through the database.
#[derive(Clone)]
pub struct KeyRing {
    db: DatabaseConnection,
    sealer: Sealer,
    rsa_bits: usize,
    /// The algorithms a key is kept for (RS256 and the clients' choices).
    algs: Vec<SigningAlg>,
    file_key: Option<Arc<RsaPrivateKey>>,
    set: Arc<ArcSwap<KeySet>>,
}

/// How often every replica re-reads the keys (`AppState`'s key reloader):
/// a key another replica rotated in is published here at most this late.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// How far ahead of signing a new key is written: `jwks_max_age` for
/// relying parties' caches, plus [`RELOAD_EVERY`] for the replicas that
/// learn of it last, so no cached JWKS anywhere lacks a key that signs.
pub fn publish_ahead(jwks_max_age: Duration) -> Duration {
    jwks_max_age + RELOAD_EVERY
}

impl KeyRing {
    /// Loads the keys, creating the first one of each algorithm in `algs`
    /// that has none. Several processes may run this at once on one
    /// database: exactly one key per algorithm is made.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        db: DatabaseConnection,
        sealer: Sealer,
        rsa_bits: usize,
        algs: &[SigningAlg],
        private_key_file: Option<&std::path::Path>,
        now: DateTime<Utc>,
        max_token_ttl: Duration,
        jwks_max_age: Duration,
    ) -> Result<Self> {
        signer::install();
        let file_key = match private_key_file {
            Some(path) => Some(Arc::new(read_key_file(path)?)),
            None => None,
        };
        let ring = Self {
            db,
            sealer,
            rsa_bits,
            algs: algs.to_vec(),
            file_key,
            set: Arc::new(ArcSwap::from_pointee(KeySet {
                keys: Vec::new(),
                by_kid: HashMap::new(),
                jwks: Arc::from(&b"{\"keys\":[]}"[..]),
            })),
        };
        // A deployment that already published keys: relying parties and the
        // other replicas hold its JWKS, so a new algorithm's first key is
        // published ahead, like a rotation (RS256 signs meanwhile).
        let deployed = !store::all(&ring.db).await?.is_empty();
        if let Some(key) = ring.file_key.clone() {
            ring.adopt_file_key(&key, now, jwks_max_age, max_token_ttl)
                .await?;
        }
        for &alg in &ring.algs {
            if alg == SigningAlg::RS256 && ring.file_key.is_some()
                || store::max_generation(&ring.db, alg.as_str())
                    .await?
                    .is_some()
            {
                continue;
            }
            let pem = generate(alg, ring.rsa_bits).await?;
            let activates_at = if deployed && alg != SigningAlg::RS256 {
                now + chrono_duration(publish_ahead(jwks_max_age))
            } else {
                now
            };
            let row = ring.row_for(alg, &pem, 1, now, activates_at)?;
            if store::insert_if_generation_free(&ring.db, row).await? {
                tracing::info!(
                    key.alg = alg.as_str(),
                    "created the first signing key; it signs from {activates_at}"
                );
            } else {
                tracing::info!(
                    key.alg = alg.as_str(),
                    "another process created the first signing key; using it"
                );
            }
        }
        ring.reseal().await?;
        ring.reload(now, max_token_ttl).await?;
        Ok(ring)
    }

    /// Re-reads keys from the database (new rotations from other replicas)
    /// and re-renders the JWKS.
    pub async fn reload(&self, now: DateTime<Utc>, max_token_ttl: Duration) -> Result<()> {
        let rows = store::all(&self.db).await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            if unpublished(&row, now, max_token_ttl) {
                continue;
            }
            keys.push(self.load(row)?);
        }
        let by_kid = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.jwk.kid.clone(), i))
            .collect();
        let jwks = serde_json::to_vec(&serde_json::json!({
            "keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>()
        }))
        .map_err(Error::internal)?;
        self.set.store(Arc::new(KeySet {
            keys,
            by_kid,
            jwks: Arc::from(jwks),
        }));
        Ok(())
    }

    /// The key of `alg` that signs at `now`: its newest generation already
    /// active; an RS256 key while `alg`'s first key is still only published
    /// (a new algorithm in a running deployment). The key's `alg` says which.
    pub fn signing_key(&self, now: DateTime<Utc>, alg: SigningAlg) -> Result<Arc<SigningKey>> {
        let set = self.set.load();
        let active = |alg: SigningAlg| {
            set.keys
                .iter()
                .rev()
                .filter(|k| k.alg == alg && k.activates_at <= now)
                .find_map(|k| k.signing.clone())
        };
        active(alg)
            .or_else(|| active(SigningAlg::RS256))
            .ok_or_else(|| Error::internal(format!("no active {} signing key", alg.as_str())))
    }

    /// The algorithm and public key of `kid`, if it is published.
    pub fn verifying_key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        let set = self.set.load();
        set.by_kid.get(kid).map(|&i| {
            (
                material::jose(set.keys[i].alg),
                set.keys[i].decoding.clone(),
            )
        })
    }

    /// Whether the key `kid` is published now.
    pub fn is_published(&self, kid: &str) -> bool {
        self.set.load().by_kid.contains_key(kid)
    }

    /// The JOSE names of the algorithms the published keys sign with
    /// (discovery's `id_token_signing_alg_values_supported`).
    pub fn algorithms(&self) -> Vec<&'static str> {
        let set = self.set.load();
        let mut algs: Vec<SigningAlg> = set.keys.iter().map(|k| k.alg).collect();
        algs.push(SigningAlg::RS256);
        algs.sort_unstable();
        algs.dedup();
        algs.into_iter().map(SigningAlg::as_str).collect()
    }

    /// The JWK Set body, rendered once per reload.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.set.load().jwks.clone()
    }

    /// Starts a new key of every algorithm in use (RS256 and the clients'
    /// choices): published now, signing after `publish_ahead`; the current
    /// key of that algorithm retires when the new one takes over and stays
    /// published while its tokens may live (`max_token_ttl`, the lifetime in
    /// force now). Keys of an algorithm no client names any more retire now,
    /// published as long as their tokens may live, then gone.
    pub async fn rotate(
        &self,
        now: DateTime<Utc>,
        publish_ahead: Duration,
        max_token_ttl: Duration,
    ) -> Result<Vec<KeyInfo>> {
        let mut unused: Vec<String> = store::all(&self.db)
            .await?
            .into_iter()
            .filter(|r| r.retired_at.is_none())
            .map(|r| r.alg)
            .filter(|a| !self.algs.iter().any(|c| c.as_str() == a))
            .collect();
        unused.sort_unstable();
        unused.dedup();
        for alg in unused {
            store::retire_older(&self.db, &alg, i64::MAX, now, now + keep_for(max_token_ttl))
                .await?;
            tracing::info!(key.alg = %alg, "no client signs with this algorithm: its keys retire");
        }
        let mut made = Vec::with_capacity(self.algs.len());
        for &alg in &self.algs {
            made.push(
                self.rotate_one(alg, now, publish_ahead, max_token_ttl)
                    .await?,
            );
        }
        Ok(made)
    }

    async fn rotate_one(
        &self,
        alg: SigningAlg,
        now: DateTime<Utc>,
        publish_ahead: Duration,
        max_token_ttl: Duration,
    ) -> Result<KeyInfo> {
        let pem = generate(alg, self.rsa_bits).await?;
        let generation = store::max_generation(&self.db, alg.as_str())
            .await?
            .unwrap_or(0)
            + 1;
        let activates_at = now + chrono_duration(self::publish_ahead(publish_ahead));
        let row = self.row_for(alg, &pem, generation, now, activates_at)?;
        let kid = row.kid.clone();
        if !store::insert_if_generation_free(&self.db, row).await? {
            return Err(Error::Unavailable(
                "a concurrent rotation happened; try again".into(),
            ));
        }
        store::retire_older(
            &self.db,
            alg.as_str(),
            generation,
            activates_at,
            activates_at + keep_for(max_token_ttl),
        )
        .await?;
        Ok(KeyInfo {
            kid,
            alg: alg.as_str(),
            generation,
            created_at: now,
            activates_at,
            retired_at: None,
            state: "next",
        })
    }

    /// With `keys.encryption_key` set, seals every private key still stored
    /// in plain text (the key was turned on after they were made). Each row
    /// is replaced only if still the plain value, so replicas starting
    /// together agree. Returns how many were sealed.
    pub async fn reseal(&self) -> Result<u64> {
        if !self.sealer.enabled() {
            return Ok(0);
        }
        let mut sealed = 0;
        for row in store::all(&self.db).await? {
            if row.private_key == EXTERNAL || Sealer::is_sealed(&row.private_key) {
                continue;
            }
            let value = self
                .sealer
                .seal(&row.private_key)
                .map_err(Error::internal)?;
            sealed +=
                store::replace_private_key(&self.db, &row.kid, &row.private_key, &value).await?;
        }
        if sealed > 0 {
            tracing::info!(
                keys = sealed,
                "signing keys sealed with keys.encryption_key"
            );
        }
        Ok(sealed)
    }

    /// Every key in the database with its state at `now`.
    pub async fn list(&self, now: DateTime<Utc>, max_token_ttl: Duration) -> Result<Vec<KeyInfo>> {
        list(&self.db, now, max_token_ttl).await
    }

    /// Makes the key from `keys.private_key_file` the signing key, publishing
    /// it in the database so every replica's JWKS shows it.
    /// A first key signs at once (no JWKS was ever served without it); a
    /// key replacing others is published first and signs once every cache
    /// can hold it ([`publish_ahead`]), like a rotation.
    async fn adopt_file_key(
        &self,
        key: &RsaPrivateKey,
        now: DateTime<Utc>,
        jwks_max_age: Duration,
        max_token_ttl: Duration,
    ) -> Result<()> {
        let jwk = material::rsa_jwk(key);
        let exists = store::all(&self.db).await?.iter().any(|r| r.kid == jwk.kid);
        if exists {
            return Ok(());
        }
        let rs256 = SigningAlg::RS256.as_str();
        let previous = store::max_generation(&self.db, rs256).await?;
        let generation = previous.unwrap_or(0) + 1;
        let activates_at = if previous.is_some() {
            now + chrono_duration(publish_ahead(jwks_max_age))
        } else {
            now
        };
        let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(Error::internal)?;
        let mut row = self.row_for(SigningAlg::RS256, &pem, generation, now, activates_at)?;
        row.private_key = EXTERNAL.into();
        if store::insert_if_generation_free(&self.db, row).await? {
            store::retire_older(
                &self.db,
                rs256,
                generation,
                activates_at,
                activates_at + keep_for(max_token_ttl),
            )
            .await?;
            tracing::info!(
                key.kid = %jwk.kid,
                "the key from keys.private_key_file is published and signs from {activates_at}"
            );
        }
        Ok(())
    }

    fn row_for(
        &self,
        alg: SigningAlg,
        pem: &str,
        generation: i64,
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
    ) -> Result<signing_keys::Model> {
        let jwk = material::parse(alg, pem)?.jwk;
        Ok(signing_keys::Model {
            kid: jwk.kid.clone(),
            alg: alg.as_str().into(),
            generation,
            private_key: self.sealer.seal(pem).map_err(Error::internal)?,
            published_until: None,
            public_jwk: serde_json::to_string(&jwk).map_err(Error::internal)?,
            created_at: now,
            activates_at,
            retired_at: None,
        })
    }

    fn load(&self, row: signing_keys::Model) -> Result<LoadedKey> {
        let jwk: Jwk = serde_json::from_str(&row.public_jwk).map_err(Error::internal)?;
        let (alg, decoding) = material::verifying(&jwk)
            .filter(|(alg, _)| alg.as_str() == row.alg)
            .ok_or_else(|| Error::internal(format!("signing key {}: unusable JWK", row.kid)))?;
        let private = if row.private_key == EXTERNAL {
            match self.file_key.as_deref() {
                Some(k) if material::rsa_jwk(k).kid == jwk.kid => Some(material::rsa_material(k)?),
                _ => None,
            }
        } else {
            let pem = self
                .sealer
                .open(&row.private_key)
                .map_err(Error::internal)?;
            Some(material::parse(alg, &pem)?)
        };
        let signing = private.map(|m| {
            Arc::new(SigningKey {
                kid: jwk.kid.clone(),
                alg: material::jose(alg),
                encoding: m.encoding,
            })
        });
        Ok(LoadedKey {
            jwk,
            alg,
            decoding,
            signing,
            activates_at: row.activates_at,
        })
    }
}

/// Generates a private key (PKCS#8 PEM) on the blocking pool (an RSA key
/// takes long enough to stall an executor thread).
async fn generate(alg: SigningAlg, rsa_bits: usize) -> Result<Zeroizing<String>> {
    tokio::task::spawn_blocking(move || material::generate(alg, rsa_bits))
        .await
        .map_err(Error::internal)?
}

/// Reads a PEM private key (PKCS#8 or PKCS#1).
fn read_key_file(path: &std::path::Path) -> Result<RsaPrivateKey> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| Error::internal(format!("keys.private_key_file {}: {e}", path.display())))?;
    RsaPrivateKey::from_pkcs8_pem(&pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
        .map_err(|e| Error::internal(format!("keys.private_key_file {}: {e}", path.display())))
}

/// Every key in `db` with its state at `now`. Reads only: `keys list`
/// calls it without building the app (no migration, no key generation).
pub async fn list(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    max_token_ttl: Duration,
) -> Result<Vec<KeyInfo>> {
    let rows = store::all(db).await?;
    let signing = |alg: &str| {
        rows.iter()
            .rev()
            .find(|r| r.alg == alg && r.activates_at <= now && r.retired_at.is_none_or(|t| t > now))
            .map(|r| r.generation)
    };
    let signing: HashMap<String, Option<i64>> = rows
        .iter()
        .map(|r| (r.alg.clone(), signing(&r.alg)))
        .collect();
    Ok(rows
        .iter()
        .map(|r| KeyInfo {
            state: if signing.get(&r.alg).copied().flatten() == Some(r.generation) {
                "signing"
            } else if r.activates_at > now {
                "next"
            } else if unpublished(r, now, max_token_ttl) {
                "expired"
            } else {
                "published"
            },
            kid: r.kid.clone(),
            alg: SigningAlg::parse(&r.alg).map_or("unknown", SigningAlg::as_str),
            generation: r.generation,
            created_at: r.created_at,
            activates_at: r.activates_at,
            retired_at: r.retired_at,
        })
        .collect())
}

/// How long a retired key stays published for tokens of lifetime `ttl`
/// (plus a minute for clock skew between replicas).
fn keep_for(ttl: Duration) -> chrono::Duration {
    chrono_duration(ttl) + chrono::Duration::minutes(1)
}

/// Whether a retired key has left the JWKS: past both the lifetime written
/// at its retirement and today's (a shorter lifetime configured since does
/// not unpublish a key whose tokens are still live).
fn unpublished(row: &signing_keys::Model, now: DateTime<Utc>, max_token_ttl: Duration) -> bool {
    let Some(retired) = row.retired_at else {
        return false;
    };
    let until = row
        .published_until
        .map_or(retired + keep_for(max_token_ttl), |p| {
            p.max(retired + keep_for(max_token_ttl))
        });
    until < now
}

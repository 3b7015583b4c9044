//! Passwords: the policy of API.md and Argon2id hashing on the blocking pool
//! with bounded concurrency (so a login flood cannot exhaust memory or stall
//! the async executor).

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordHashSettings;
use crate::error::{Error, Result};
use crate::workers::Workers;

/// Longest password accepted (API.md).
pub const MAX_LEN: usize = 128;

/// A password that passed the policy. Its `Debug` never shows it.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Applies the policy: `min_len..=128` characters, not all digits, and
    /// strong enough by zxcvbn with the user's own inputs (email, username,
    /// names) so a password built from them, or a common one, is refused.
    /// Problems are reported under `field`.
    pub fn parse(raw: &str, min_len: usize, user_inputs: &[&str], field: &str) -> Result<Self> {
        let len = raw.chars().count();
        let problem = if len < min_len {
            Some(format!("must be at least {min_len} characters"))
        } else if len > MAX_LEN {
            Some(format!("must be at most {MAX_LEN} characters"))
        } else if raw.chars().all(|c| c.is_ascii_digit()) {
            Some("must not be entirely numeric".to_owned())
        } else {
            let inputs: Vec<&str> = user_inputs
                .iter()
                .copied()
                .filter(|s| !s.is_empty())
                .collect();
            let estimate = zxcvbn::zxcvbn(raw, &inputs);
            (u8::from(estimate.score()) < 3 || mostly_user_inputs(raw, &inputs)).then(|| {
                "is too easy to guess: it is common, or too similar to your email, username or name"
                    .to_owned()
            })
        };
        match problem {
            Some(p) => Err(Error::field(field, p)),
            None => Ok(Self(raw.to_owned())),
        }
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether the password is little more than the user's own inputs: with
/// every input of 3+ characters removed (case and punctuation ignored),
/// fewer than 6 characters are left. zxcvbn alone scores "alice.smith2024"
/// as strong for alice.smith@example.com.
fn mostly_user_inputs(raw: &str, inputs: &[&str]) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let mut rest = norm(raw);
    let mut found = false;
    for input in inputs {
        let i = norm(input);
        if i.chars().count() >= 3 && rest.contains(&i) {
            rest = rest.replace(&i, "");
            found = true;
        }
    }
    found && rest.chars().count() < 6
}

thread_local! {
    /// Each hash worker's Argon2 memory, allocated once and reused: freed
    /// 19 MiB buffers were kept by the allocator rather than returned, so
    /// resident memory grew with every distinct thread that ever hashed.
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's Argon2 memory, grown to `blocks` if needed.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < blocks {
            m.resize(blocks, argon2::Block::new());
        }
        f(&mut m[..blocks])
    })
}

/// Gives this thread's Argon2 memory back to the operating system.
fn release_memory() {
    if MEMORY.with(|m| !std::mem::take(&mut *m.borrow_mut()).is_empty()) {
        crate::workers::trim_heap();
    }
}

/// Whether `password` matches the PHC string `stored` (any Argon2 variant
/// and parameters), computed in the worker's reused memory and compared in
/// constant time.
fn verify_phc(stored: &PasswordHash<'_>, password: &[u8]) -> bool {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => Version::V0x13,
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = with_memory(params.block_count(), |memory| {
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
    });
    computed.is_ok()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            out.as_slice(),
            expected.as_bytes(),
        ))
}

/// Result of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password (or no such user).
    No,
    /// Right password, hash made with the current parameters.
    Yes,
    /// Right password, but the hash should be redone with current parameters.
    YesRehash,
}

/// How long a hash worker keeps its Argon2 memory without work.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// Argon2id hasher shared by every request.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    workers: Arc<Workers>,
    /// A hash of a random password, verified when the user does not exist so
    /// both answers cost the same.
    dummy: Arc<tokio::sync::OnceCell<String>>,
}

impl Hasher {
    /// Builds the hasher (the dummy hash is made at the first unknown login,
    /// so an idle server holds no Argon2 memory).
    pub async fn new(settings: &PasswordHashSettings) -> Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| Error::internal(format!("password_hash: {e}")))?;
        let permits = match settings.concurrency {
            0 => crate::workers::cpus(),
            n => n,
        };
        let hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(permits)),
            workers: Arc::new(Workers::start(
                "argon2",
                permits,
                IDLE_RELEASE,
                release_memory,
            )?),
            dummy: Arc::default(),
        };
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Hashes a password (PHC string).
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        let params = self.params.clone();
        self.blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            let mut salt_buf = [0u8; 64];
            let salt_bytes = salt
                .as_salt()
                .decode_b64(&mut salt_buf)
                .map_err(Error::internal)?;
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            with_memory(params.block_count(), |memory| {
                Self::argon2(params.clone()).hash_password_into_with_memory(
                    password.as_bytes(),
                    salt_bytes,
                    &mut out,
                    memory,
                )
            })
            .map_err(Error::internal)?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params).map_err(Error::internal)?,
                salt: Some(salt.as_salt()),
                hash: Some(Output::new(&out).map_err(Error::internal)?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when
    /// there is no user, spending the same time either way.
    pub async fn verify(&self, stored: Option<&str>, password: &str) -> Result<Verified> {
        let real = stored.is_some();
        let stored = match stored {
            Some(s) => s.to_owned(),
            None => self
                .dummy
                .get_or_try_init(|| async {
                    let random = uuid::Uuid::new_v4().to_string();
                    self.hash(&random).await
                })
                .await?
                .clone(),
        };
        let password = password.to_owned();
        let current = self.params.clone();
        self.blocking(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Ok(Verified::No);
            };
            let ok = verify_phc(&parsed, password.as_bytes());
            if !ok || !real {
                return Ok(Verified::No);
            }
            let same = parsed.algorithm.as_str() == "argon2id"
                && Params::try_from(&parsed).is_ok_and(|p| {
                    p.m_cost() == current.m_cost()
                        && p.t_cost() == current.t_cost()
                        && p.p_cost() == current.p_cost()
                });
            Ok(if same {
                Verified::Yes
            } else {
                Verified::YesRehash
            })
        })
        .await
    }

    /// Runs CPU-heavy work on the hash workers (never on the async
    /// executor), at most `concurrency` at once, keeping the caller's span.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        self.workers.run(work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_weak_passwords_with_a_reason() {
        let cases = [
            ("short1!", "at least 8"),
            ("12345678901", "numeric"),
            ("password1", "easy to guess"),
            ("alice.smith2024", "easy to guess"),
            (&"x".repeat(129), "at most 128"),
        ];
        for (pw, expected) in cases {
            let err = Password::parse(
                pw,
                8,
                &["alice.smith@example.com", "alice", "Smith"],
                "password",
            )
            .expect_err(pw);
            let Error::Validation(fields) = err else {
                panic!("not a validation error")
            };
            assert!(
                fields["password"][0].contains(expected),
                "{pw}: {:?}",
                fields["password"]
            );
        }
        assert!(Password::parse("correct-horse-battery-staple", 8, &[], "password").is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_old_parameters_ask_for_a_rehash() {
        let old = Hasher::new(&PasswordHashSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            concurrency: 1,
        })
        .await
        .expect("hasher");
        let new = Hasher::new(&PasswordHashSettings {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
            concurrency: 1,
        })
        .await
        .expect("hasher");
        let h = old.hash("tr0ub4dor&3-horse").await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        // A standard PHC string: the reference verifier accepts it.
        use argon2::password_hash::PasswordVerifier as _;
        let parsed = PasswordHash::new(&h).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"tr0ub4dor&3-horse", &parsed)
                .is_ok()
        );
        assert_eq!(
            old.verify(Some(&h), "tr0ub4dor&3-horse").await.expect("v"),
            Verified::Yes
        );
        assert_eq!(
            new.verify(Some(&h), "tr0ub4dor&3-horse").await.expect("v"),
            Verified::YesRehash
        );
        assert_eq!(
            old.verify(Some(&h), "wrong").await.expect("v"),
            Verified::No
        );
        assert_eq!(old.verify(None, "anything").await.expect("v"), Verified::No);
    }
}

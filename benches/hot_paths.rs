//! Criterion benchmarks of the hot functions, on the real services (a
//! SQLite database in a temp dir, the default Argon2id and RSA-2048 keys).
//!
//! Run: `cargo bench --bench hot_paths`. Numbers are in README.md.

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gatehouse::app::AppState;
use gatehouse::clients::{self, Credentials};
use gatehouse::config::Settings;
use gatehouse::passwords::Hasher;
use gatehouse::scope::Scope;

const PASSWORD: &str = "vivid-Meadow-lantern-42";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A full app state on a fresh SQLite file, with one activated user.
fn state(rt: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> AppState {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let settings = Settings::from_toml(&format!(
        "[database]\nurl = \"{url}\"\n[mail]\ntransport = \"file\"\nfile_dir = \"{}\"\n[log]\nlevel = \"error\"\n[rate_limits]\nunauthenticated_per_ip = \"1000000000/1s\"\n",
        dir.path().join("mail").display()
    ))
    .expect("settings");
    rt.block_on(async {
        let (_trigger, shutdown) = gatehouse::shutdown::channel();
        let state = AppState::build(settings, shutdown).await.expect("state");
        state
            .accounts
            .create_user("bench@example.com", PASSWORD, false)
            .await
            .expect("user");
        state
    })
}

fn passwords(c: &mut Criterion) {
    let rt = runtime();
    let hasher = rt
        .block_on(Hasher::new(&Default::default()))
        .expect("hasher");
    let hash = rt.block_on(hasher.hash(PASSWORD)).expect("hash");
    let mut g = c.benchmark_group("argon2id_m19456_t2_p1");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    g.bench_function("verify", |b| {
        b.to_async(&rt)
            .iter(|| async { hasher.verify(Some(&hash), PASSWORD).await.expect("verify") })
    });
    g.finish();
}

fn tokens(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let state = state(&rt, &dir);
    let settings = state.live.get();
    let client = clients::authenticate(&settings, &Credentials::default()).expect("client");
    let user = rt
        .block_on(gatehouse::accounts::store::find_by_email(
            &state.db,
            "bench@example.com",
        ))
        .expect("query")
        .expect("user");
    let no_openid = Scope::parse("profile email").expect("scope");
    let with_openid = Scope::parse("openid profile email").expect("scope");

    let mut g = c.benchmark_group("tokens");
    g.bench_function(
        "start_session_without_openid (1 RSA signature + 1 insert)",
        |b| {
            b.to_async(&rt).iter(|| async {
                state
                    .oauth
                    .start_session(&user, &client, &no_openid, Default::default())
                    .await
                    .expect("issue")
            })
        },
    );
    g.bench_function(
        "start_session_with_openid (2 RSA signatures + 1 insert)",
        |b| {
            b.to_async(&rt).iter(|| async {
                state
                    .oauth
                    .start_session(&user, &client, &with_openid, Default::default())
                    .await
                    .expect("issue")
            })
        },
    );
    let set = rt
        .block_on(
            state
                .oauth
                .start_session(&user, &client, &no_openid, Default::default()),
        )
        .expect("issue");
    g.bench_function(
        "bearer check of /account/me (RS256 verify + deny list and account in one SQLite read)",
        |b| {
            b.to_async(&rt)
                .iter(|| async { state.oauth.caller(&set.access_token).await.expect("verify") })
        },
    );
    g.bench_function(
        "refresh_grant on SQLite (rotation + 1 RSA signature)",
        |b| {
            b.iter_batched(
                || {
                    rt.block_on(state.oauth.start_session(
                        &user,
                        &client,
                        &no_openid,
                        Default::default(),
                    ))
                    .expect("issue")
                    .refresh_token
                },
                |rt_token| {
                    rt.block_on(state.oauth.refresh_grant(
                        &client,
                        &rt_token,
                        None,
                        std::net::IpAddr::from([127, 0, 0, 1]),
                    ))
                    .expect("refresh")
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.finish();

    let mut g = c.benchmark_group("jwks");
    g.bench_function("serve prepared bytes", |b| {
        b.iter(|| state.keys.jwks().to_vec())
    });
    g.bench_function("reload and re-render from the database", |b| {
        b.to_async(&rt).iter(|| async {
            state
                .keys
                .reload(state.clock.now(), Duration::from_secs(900))
                .await
                .expect("reload")
        })
    });
    g.finish();
}

fn rsa_limit(c: &mut Criterion) {
    // The hardware limit a token response cannot beat: one RSA-2048 PKCS#1
    // v1.5 signature with a key parsed once, with the library Gatehouse signs
    // with (aws-lc-rs) and, for comparison, with ring.
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("key");
    let der = key.to_pkcs1_der().expect("der");
    let msg = b"header.payload";

    let pair = aws_lc_rs::signature::RsaKeyPair::from_der(der.as_bytes()).expect("aws-lc key");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut out = vec![0u8; pair.public_modulus_len()];
    c.bench_function("rsa2048_sign_limit (aws-lc-rs, key parsed once)", |b| {
        b.iter(|| {
            pair.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                .expect("sign")
        })
    });

    let pair = ring::signature::RsaKeyPair::from_der(der.as_bytes()).expect("ring key");
    let rng = ring::rand::SystemRandom::new();
    let mut out = vec![0u8; pair.public().modulus_len()];
    c.bench_function(
        "rsa2048_sign (ring, key parsed once, for comparison)",
        |b| {
            b.iter(|| {
                pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .expect("sign")
            })
        },
    );
}

fn token_signatures(c: &mut Criterion) {
    // One access token signed with each algorithm a client may choose
    // (`[[clients]] signing_alg`), through the same path as the server
    // (jsonwebtoken over Gatehouse's aws-lc-rs provider, key parsed once);
    // and the verification the bearer check does.
    use gatehouse::config::SigningAlg;
    use gatehouse::keys::material;
    gatehouse::keys::signer::install();
    let claims = serde_json::json!({
        "iss": "https://id.example", "sub": "00000000-0000-0000-0000-000000000000",
        "aud": "app", "client_id": "app", "exp": 4_000_000_000u64, "iat": 1, "nbf": 1,
        "jti": "00000000-0000-0000-0000-000000000001", "scope": "profile email",
    });
    let mut g = c.benchmark_group("token signature");
    for alg in SigningAlg::ALL {
        let pem = material::generate(alg, 2048).expect("key");
        let m = material::parse(alg, &pem).expect("parse");
        let mut header = jsonwebtoken::Header::new(material::jose(alg));
        header.kid = Some(m.jwk.kid.clone());
        header.typ = Some("at+jwt".into());
        g.bench_function(format!("sign {}", alg.as_str()), |b| {
            b.iter(|| jsonwebtoken::encode(&header, &claims, &m.encoding).expect("sign"))
        });
        let token = jsonwebtoken::encode(&header, &claims, &m.encoding).expect("sign");
        let (_, key) = material::verifying(&m.jwk).expect("verifying key");
        let mut v = jsonwebtoken::Validation::new(material::jose(alg));
        v.validate_aud = false;
        g.bench_function(format!("verify {}", alg.as_str()), |b| {
            b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).expect("verify"))
        });
    }
    g.finish();
}

criterion_group!(benches, passwords, tokens, rsa_limit, token_signatures);
criterion_main!(benches);

//! The test harness: the real app, built by the same function `serve` uses,
//! on an ephemeral port with a fresh database per test (a SQLite file in a
//! temp dir, or a fresh PostgreSQL database when GATEHOUSE_TEST_DATABASE_URL
//! is set), spoken to over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::app::AppState;
use gatehouse::config::Settings;
use gatehouse::server::Application;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::databases::{Backend, TestDb};
use super::smtp::MailSink;

/// The issuer every test app uses.
pub const ISSUER: &str = "http://gatehouse.test";
/// A password the policy accepts.
pub const PASSWORD: &str = "vivid-Meadow-lantern-42";

/// Settings for a test app: fast hashing, generous limits, the given
/// database, plus `extra` TOML on top.
pub fn settings(db_url: &str, extra: &str) -> Settings {
    Settings::from_toml(&settings_toml(db_url, extra)).expect("test settings are valid")
}

/// The TOML text of [`settings`], for tests that write a config file.
pub fn settings_toml(db_url: &str, extra: &str) -> String {
    let base = format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "{ISSUER}"
[database]
url = "{db_url}"
max_connections = 8
[password_hash]
memory_kib = 256
iterations = 1
[rate_limits]
login_per_ip = "1000/1m"
register_per_ip = "1000/1m"
forgot_per_ip = "1000/1m"
unauthenticated_per_ip = "1000000/1m"
activation_per_ip = "1000/1m"
"#
    );
    merge_toml(&base, extra)
}

/// Merges two TOML documents, `b` winning.
pub fn merge_toml(a: &str, b: &str) -> String {
    let mut a: toml::Table = a.parse().expect("toml a");
    let b: toml::Table = b.parse().expect("toml b");
    fn merge(a: &mut toml::Table, b: toml::Table) {
        for (k, v) in b {
            match (a.get_mut(&k), v) {
                (Some(toml::Value::Table(at)), toml::Value::Table(bt)) => merge(at, bt),
                (_, v) => {
                    a.insert(k, v);
                }
            }
        }
    }
    merge(&mut a, b);
    toml::to_string(&a).expect("toml")
}

/// A running app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The app's state (clock, database).
    pub state: AppState,
    /// The database (kept alive for the test; its URL names the file).
    pub db: Arc<TestDb>,
    /// Mail received by the test's SMTP server, when it has one.
    pub mail: Option<MailSink>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// An app with default test settings.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, "").await
    }

    /// An app with `extra` TOML on top of the test settings.
    pub async fn spawn_with(backend: Backend, extra: &str) -> Self {
        let db = Arc::new(TestDb::new(backend).await);
        Self::spawn_on(db, extra, None).await
    }

    /// An app with an SMTP server of the test's own receiving its mail.
    pub async fn spawn_with_mail(backend: Backend, extra: &str) -> Self {
        let sink = MailSink::start();
        let extra = merge_toml(
            &format!(
                "[mail]\ntransport = \"smtp\"\nsmtp_url = \"smtp://127.0.0.1:{}\"\nmax_attempts = 3\n",
                sink.port
            ),
            extra,
        );
        let db = Arc::new(TestDb::new(backend).await);
        Self::spawn_on(db, &extra, Some(sink)).await
    }

    /// An app on an existing database (several replicas of one deployment).
    pub async fn spawn_on(db: Arc<TestDb>, extra: &str, mail: Option<MailSink>) -> Self {
        let settings = settings(&db.url, extra);
        Self::spawn_settings(db, settings, None, mail).await
    }

    /// An app from explicit settings, watching `config_path` when given.
    pub async fn spawn_settings(
        db: Arc<TestDb>,
        settings: Settings,
        config_path: Option<std::path::PathBuf>,
        mail: Option<MailSink>,
    ) -> Self {
        // GATEHOUSE_TEST_LOG=debug shows the apps' logs when a test needs explaining.
        if let Ok(level) = std::env::var("GATEHOUSE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(level)
                .with_test_writer()
                .try_init();
        }
        let app = Application::build(settings, config_path)
            .await
            .expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            base,
            http,
            state,
            db,
            mail,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// POST JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST a form.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// Registers `email` with [`PASSWORD`] and extra fields.
    pub async fn register(&self, email: &str, extra: Value) -> Response {
        let mut body = json!({ "email": email, "password": PASSWORD });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post_json("/account/register", &body).await
    }

    /// A registered, activated user; returns its id.
    pub async fn activated_user(&self, email: &str) -> String {
        let r = self.register(email, json!({})).await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
        let body: Value = r.json().await.expect("json");
        self.state
            .accounts
            .activate_by_operator(email)
            .await
            .expect("activate");
        body["user"]["id"].as_str().expect("id").to_owned()
    }

    /// Password grant (form-encoded).
    pub async fn password_grant(&self, username: &str, password: &str) -> Response {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Password grant that must succeed; returns the token response.
    pub async fn login(&self, username: &str) -> Value {
        let r = self.password_grant(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "login {username}");
        r.json().await.expect("json")
    }

    /// Password grant with `password` that must succeed.
    pub async fn login_with(&self, username: &str, password: &str) -> Value {
        let r = self.password_grant(username, password).await;
        assert_eq!(r.status(), StatusCode::OK, "login {username}");
        r.json().await.expect("json")
    }

    /// Refresh grant.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// GET with a bearer token.
    pub async fn get_bearer(&self, path: &str, token: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Moves the app's clock forward.
    pub fn advance(&self, by: Duration) {
        self.state.clock.advance(by);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts the contract's error shape and code; returns the body.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status for expected {code}");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    let body: Value = r.json().await.expect("json error body");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// The decoded JOSE header of a compact JWT.
pub fn jwt_header(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').next().expect("jwt header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json header")
}

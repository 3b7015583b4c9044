//! The test harness: the real app, built by the same function `serve` uses,
//! on an ephemeral port with a fresh database per test (a SQLite file in a
//! temp dir, or a fresh PostgreSQL database when GATEHOUSE_TEST_DATABASE_URL
//! is set), spoken to over real HTTP.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse::app::{AppState, Application};
use gatehouse::config::Settings;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// The issuer every test app uses.
pub const ISSUER: &str = "http://gatehouse.test";
/// A password the policy accepts.
pub const PASSWORD: &str = "vivid-Meadow-lantern-42";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A fresh database on GATEHOUSE_TEST_DATABASE_URL's server.
    Postgres,
}

/// Runs an `async fn(Backend)` test on SQLite, and on PostgreSQL when asked
/// for with `--include-ignored` (CI always does).
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL: set GATEHOUSE_TEST_DATABASE_URL and run with --include-ignored"]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

/// The Redis URL for tests, or a loud failure: tests that need Redis are
/// `#[ignore]`d with a reason, so reaching here without it is a setup error.
pub fn redis_url() -> String {
    std::env::var("GATEHOUSE_TEST_REDIS_URL")
        .expect("this test needs Redis: set GATEHOUSE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)")
}

/// A database for one test; dropped (PostgreSQL) when the guard goes.
pub struct TestDb {
    /// URL the app connects to.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh, empty database.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("gatehouse.db").display()
                );
                Self {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("GATEHOUSE_TEST_DATABASE_URL").expect(
                    "this test needs PostgreSQL: set GATEHOUSE_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1/postgres)",
                );
                let name = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
                let db = sea_orm::Database::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                use sea_orm::ConnectionTrait as _;
                db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create database");
                let _ = db.close().await;
                let base = admin.split('?').next().unwrap_or(&admin);
                let (server, _) = base.rsplit_once('/').expect("database URL has a path");
                Self {
                    url: format!("{server}/{name}"),
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop needs async; do it on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(db) = sea_orm::Database::connect(&admin).await {
                        use sea_orm::ConnectionTrait as _;
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        let _ = db.close().await;
                    }
                });
            })
            .join();
        }
    }
}

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
    /// The database (kept alive for the test).
    #[expect(dead_code, reason = "held only to keep the database alive")]
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

/// Messages received by an SMTP server running inside the test.
#[derive(Clone)]
pub struct MailSink {
    /// Port it listens on.
    pub port: u16,
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[derive(Clone)]
struct SinkHandler {
    current: Vec<u8>,
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
    /// A recipient this server refuses for good (550), and how often it did.
    refuse: Option<(String, Arc<std::sync::atomic::AtomicUsize>)>,
}

impl mailin::Handler for SinkHandler {
    fn rcpt(&mut self, to: &str) -> mailin::Response {
        match &self.refuse {
            Some((bad, count)) if to.contains(bad.as_str()) => {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                mailin::response::NO_MAILBOX
            }
            _ => mailin::response::OK,
        }
    }
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> mailin::Response {
        self.current.clear();
        mailin::response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin::Response {
        self.messages
            .lock()
            .expect("lock")
            .push(std::mem::take(&mut self.current));
        mailin::response::OK
    }
}

/// One SMTP conversation, driven by the `mailin` protocol state machine.
fn converse(stream: std::net::TcpStream, handler: SinkHandler) -> std::io::Result<()> {
    use std::io::{BufRead as _, BufReader, Write as _};
    let ip = stream.peer_addr()?.ip();
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut session = mailin::SessionBuilder::new("sink.test").build(ip, handler);
    session.greeting().write_to(&mut writer)?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let res = session.process(&line);
        match res.action {
            mailin::Action::Reply => res.write_to(&mut writer)?,
            mailin::Action::Close => {
                res.write_to(&mut writer)?;
                return Ok(());
            }
            mailin::Action::UpgradeTls => return Ok(()),
            mailin::Action::NoReply => {}
        }
        writer.flush()?;
    }
}

impl MailSink {
    /// Starts an SMTP server on a free port (it runs until the process ends).
    pub fn start() -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind smtp");
        Self::serve(listener)
    }

    /// A free port with nothing listening on it (yet).
    pub fn unused_port() -> u16 {
        StdListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    }

    /// Starts an SMTP server on `port`.
    pub fn start_on(port: u16) -> Self {
        Self::serve(StdListener::bind(("127.0.0.1", port)).expect("bind smtp port"))
    }

    /// An SMTP server that answers 550 for `recipient` (and counts how
    /// often it was asked), and takes everything else.
    pub fn refusing(recipient: &str) -> (Self, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = StdListener::bind("127.0.0.1:0").expect("bind smtp");
        let sink = Self::serve_with(listener, Some((recipient.to_owned(), count.clone())));
        (sink, count)
    }

    fn serve(listener: StdListener) -> Self {
        Self::serve_with(listener, None)
    }

    fn serve_with(
        listener: StdListener,
        refuse: Option<(String, Arc<std::sync::atomic::AtomicUsize>)>,
    ) -> Self {
        let port = listener.local_addr().expect("addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let handler = SinkHandler {
            current: Vec::new(),
            messages: messages.clone(),
            refuse,
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let h = handler.clone();
                std::thread::spawn(move || converse(stream, h));
            }
        });
        Self { port, messages }
    }

    /// Waits (up to 10 s) for a message to `to` whose text contains `needle`;
    /// returns its decoded plain-text body and subject.
    pub async fn wait_for(&self, to: &str, needle: &str) -> (String, String) {
        for _ in 0..200 {
            let found = self
                .messages
                .lock()
                .expect("lock")
                .iter()
                .rev()
                .find_map(|raw| {
                    let parsed = mailparse::parse_mail(raw).ok()?;
                    let headers = &parsed.headers;
                    use mailparse::MailHeaderMap as _;
                    let rcpt = headers.get_first_value("To")?;
                    if !rcpt.contains(to) {
                        return None;
                    }
                    let subject = headers.get_first_value("Subject").unwrap_or_default();
                    let text = text_part(&parsed)?;
                    (text.contains(needle) || subject.contains(needle)).then_some((text, subject))
                });
            if let Some(f) = found {
                return f;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail to {to} containing {needle:?} arrived");
    }

    /// Waits (up to 10 s) until `n` messages arrived.
    pub async fn wait_count(&self, n: usize) {
        for _ in 0..200 {
            if self.messages.lock().expect("lock").len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} messages arrived");
    }
}

fn text_part(m: &mailparse::ParsedMail<'_>) -> Option<String> {
    if m.ctype.mimetype == "text/plain" {
        return m.get_body().ok();
    }
    m.subparts.iter().find_map(text_part)
}

/// The 6-digit code in an activation mail body.
pub fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

/// Where rate limits and the deny list live in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// In process memory, on SQLite.
    Memory,
    /// In Redis (GATEHOUSE_TEST_REDIS_URL), on PostgreSQL.
    Redis,
}

/// Runs an `async fn(Shared)` test with in-memory limits on SQLite, and with
/// Redis on PostgreSQL when asked for with `--include-ignored`.
#[macro_export]
macro_rules! shared {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory_sqlite() {
                super::$name($crate::helpers::Shared::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL and Redis: set GATEHOUSE_TEST_DATABASE_URL and GATEHOUSE_TEST_REDIS_URL and run with --include-ignored"]
            async fn redis_postgres() {
                super::$name($crate::helpers::Shared::Redis).await
            }
        }
    };
}

impl Shared {
    /// The database backend that goes with it.
    pub fn backend(self) -> Backend {
        match self {
            Shared::Memory => Backend::Sqlite,
            Shared::Redis => Backend::Postgres,
        }
    }

    /// TOML for `[redis]`: a fresh key prefix per call (one deployment).
    pub fn redis_toml(self) -> String {
        match self {
            Shared::Memory => String::new(),
            Shared::Redis => format!(
                "[redis]\nurl = \"{}\"\nprefix = \"gh-test-{}\"\n",
                redis_url(),
                uuid::Uuid::new_v4().simple()
            ),
        }
    }
}

/// A TCP proxy a test can cut and restore, to break a dependency for real.
#[derive(Clone)]
pub struct ChaosProxy {
    /// Port it listens on.
    pub port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl ChaosProxy {
    /// Forwards 127.0.0.1:`port` → `target`.
    pub async fn start(target: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (u, g) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let born = g.load(Ordering::SeqCst);
                let (u, g) = (u.clone(), g.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let cut = async {
                        while u.load(Ordering::SeqCst) && g.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cut => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            generation,
        }
    }

    /// Drops every connection and refuses new ones (returns once the
    /// forwarding tasks had time to see it).
    pub async fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Sum of the samples of counter `metric` with `label` in Prometheus text
/// (parsed by a real Prometheus text parser).
pub fn metric(text: &str, metric: &str, label: (&str, &str)) -> f64 {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

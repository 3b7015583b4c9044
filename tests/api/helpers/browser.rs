//! A browser as the hosted pages see one: it keeps cookies, does not follow
//! redirects (the test does, so it can look at each hop), and reads the
//! CSRF field out of the page it was given.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

/// A cookie-keeping HTTP client for one server.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

/// PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier: String =
        uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The query parameters of `url`.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

impl Browser {
    /// A browser with no cookies, talking to `base`.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().expect("jar");
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&self, r: &Response) {
        let mut jar = self.cookies.lock().expect("jar");
        for v in r.headers().get_all(SET_COOKIE) {
            let v = v.to_str().expect("ascii cookie");
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attrs.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// The cookie `name`, if the browser holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("jar").get(name).cloned()
    }

    /// GET, keeping cookies.
    pub async fn get(&self, path: &str) -> Response {
        let r = self
            .http
            .get(self.url(path))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep(&r);
        r
    }

    /// POST a form, keeping cookies.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let r = self
            .http
            .post(self.url(path))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("request");
        self.keep(&r);
        r
    }

    /// GET a page and return its status and HTML.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self.get(path).await;
        let status = r.status();
        (status, r.text().await.expect("html"))
    }

    /// The redirect target of `r`.
    pub fn location(r: &Response) -> String {
        r.headers()
            .get(LOCATION)
            .unwrap_or_else(|| panic!("a redirect, got {}", r.status()))
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    /// The value of the hidden `csrf` field in `html`.
    pub fn csrf_of(html: &str) -> String {
        let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        html[at..].split('"').next().expect("value").to_owned()
    }

    /// Follows an authorization request through the login page with
    /// `username` and `password` (when asked), and returns where the server
    /// finally sends the browser (the client's redirect URI).
    pub async fn authorize(&self, authorize_path: &str, username: &str, password: &str) -> String {
        let r = self.get(authorize_path).await;
        assert_eq!(r.status(), StatusCode::FOUND, "authorize redirects");
        let to = Self::location(&r);
        if !to.starts_with("/login") {
            return to;
        }
        let (status, html) = self.page(&to).await;
        assert_eq!(status, StatusCode::OK, "the login page");
        let csrf = Self::csrf_of(&html);
        let cont = query_of(&to).remove("continue").expect("continue");
        let r = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("continue", &cont),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login succeeds");
        let back = Self::location(&r);
        let r = self.get(&back).await;
        assert_eq!(r.status(), StatusCode::FOUND, "back at authorize");
        Self::location(&r)
    }
}

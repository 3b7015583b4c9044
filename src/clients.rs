//! OAuth client identification (RFC 6749 §2.3): public clients by
//! `client_id`, confidential ones by HTTP Basic or `client_secret`.
//! With no `[[clients]]` configured, any client id (or none) is public,
//! may use every grant, and may redirect browsers to loopback addresses.
//! A public `docs` client (Swagger UI, redirecting to
//! `{public_url}/docs/oauth2-redirect.html`) exists unless one is configured.

use subtle::ConstantTimeEq;

use crate::config::{AccessTokenTyp, Settings, SigningAlg};
use crate::error::{Error, Result};

/// Client id used when a caller names none (first-party mode, or a
/// configured client with this id).
pub const DEFAULT_CLIENT_ID: &str = "gatehouse";

/// The Swagger UI client that exists by default.
pub const DOCS_CLIENT_ID: &str = "docs";

/// Longest client id accepted.
const MAX_ID_LEN: usize = 128;

/// What the caller presented.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    /// `client_id` from the body or Basic auth.
    pub id: Option<String>,
    /// `client_secret` from the body or Basic auth.
    pub secret: Option<String>,
}

/// An identified client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its id.
    pub id: String,
    /// `aud` for its access tokens.
    pub audience: String,
    /// Authenticated with a secret.
    pub confidential: bool,
    /// Grants it may use.
    pub grant_types: Vec<String>,
    /// `typ` header of its access tokens.
    pub access_token_typ: AccessTokenTyp,
    /// What its access and ID tokens are signed with.
    pub signing_alg: SigningAlg,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party mode: any loopback redirect URI is accepted.
    pub any_loopback: bool,
}

/// `uri` without its port if it is an `http` loopback URI (RFC 8252 §7.3:
/// native apps listen on whatever port is free), else `None`.
fn loopback_without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        format!("[{host}]")
    } else {
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        if !(port.is_empty() && !authority.contains(':') || is_port(port)) {
            return None;
        }
        host.to_owned()
    };
    matches!(host.as_str(), "127.0.0.1" | "[::1]" | "localhost")
        .then(|| format!("http://{host}{path}"))
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

impl Client {
    /// Whether an authorization response may go to `uri`: a registered URI
    /// exactly, or a registered loopback URI on any port; in first-party
    /// mode any loopback URI.
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        // No fragment (RFC 6749 §3.1.2), nothing a Location header cannot
        // carry.
        if uri.contains('#') || uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return false;
        }
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        let Some(asked) = loopback_without_port(uri) else {
            return false;
        };
        self.any_loopback
            || self
                .redirect_uris
                .iter()
                .any(|r| loopback_without_port(r).as_deref() == Some(asked.as_str()))
    }

    /// Whether RP-initiated logout may send the browser to `uri`.
    pub fn accepts_post_logout_redirect(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
            || (self.any_loopback && loopback_without_port(uri).is_some())
    }
}

impl Client {
    /// `unauthorized_client` unless the client may use `grant`.
    pub fn check_grant(&self, grant: &str) -> Result<()> {
        if self.grant_types.iter().any(|g| g == grant) {
            Ok(())
        } else {
            Err(Error::UnauthorizedClient)
        }
    }
}

/// The grant types some client may really use: every known one in
/// first-party mode, else those the configured clients list (a client
/// listing none gets [`crate::grants::CONFIGURED_DEFAULT`]), and the
/// built-in `docs` client's unless a client of that id is configured.
pub fn grant_types_in_use(settings: &Settings) -> Vec<String> {
    let builtin_docs = !settings.clients.iter().any(|c| c.id == DOCS_CLIENT_ID);
    let docs = docs_client(settings);
    crate::grants::ALL
        .iter()
        .filter(|g| {
            settings.clients.is_empty()
                || (builtin_docs && docs.grant_types.iter().any(|x| x == *g))
                || settings
                    .clients
                    .iter()
                    .any(|c| configured_grants(&c.grant_types).iter().any(|x| x == *g))
        })
        .map(|g| (*g).to_owned())
        .collect()
}

/// A configured client's grants: as listed, or the default list.
fn configured_grants(listed: &[String]) -> Vec<String> {
    if listed.is_empty() {
        crate::grants::CONFIGURED_DEFAULT
            .iter()
            .map(|g| (*g).to_owned())
            .collect()
    } else {
        listed.to_vec()
    }
}

/// The Swagger UI client: public, browser login to the served docs. In
/// first-party mode it may use every grant, as any client may there (Swagger
/// UI names it for its password flow too).
fn docs_client(settings: &Settings) -> Client {
    let grants = if settings.clients.is_empty() {
        crate::grants::ALL.iter().map(|g| (*g).to_owned()).collect()
    } else {
        configured_grants(&[])
    };
    Client {
        id: DOCS_CLIENT_ID.into(),
        audience: DOCS_CLIENT_ID.into(),
        confidential: false,
        grant_types: grants,
        access_token_typ: AccessTokenTyp::default(),
        signing_alg: SigningAlg::default(),
        redirect_uris: vec![format!(
            "{}/docs/oauth2-redirect.html",
            settings.server.public_url
        )],
        post_logout_redirect_uris: vec![format!("{}/docs", settings.server.public_url)],
        any_loopback: settings.clients.is_empty(),
    }
}

/// The client `id` for a browser request (`/oauth/authorize`, logout):
/// public or confidential alike, without a secret (that comes at the token
/// endpoint). `None` when no such client exists.
pub fn by_id(settings: &Settings, id: &str) -> Option<Client> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return None;
    }
    if let Some(cfg) = settings.clients.iter().find(|c| c.id == id) {
        return Some(from_config(cfg, cfg.secret.is_some()));
    }
    if id == DOCS_CLIENT_ID {
        return Some(docs_client(settings));
    }
    settings.clients.is_empty().then(|| first_party(id))
}

fn first_party(id: &str) -> Client {
    Client {
        audience: id.to_owned(),
        id: id.to_owned(),
        confidential: false,
        grant_types: crate::grants::ALL.iter().map(|g| (*g).to_owned()).collect(),
        access_token_typ: AccessTokenTyp::default(),
        signing_alg: SigningAlg::default(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        any_loopback: true,
    }
}

fn from_config(cfg: &crate::config::ClientSettings, confidential: bool) -> Client {
    Client {
        id: cfg.id.clone(),
        audience: cfg.audience.clone().unwrap_or_else(|| cfg.id.clone()),
        confidential,
        grant_types: configured_grants(&cfg.grant_types),
        access_token_typ: cfg.access_token_typ,
        signing_alg: cfg.signing_alg,
        redirect_uris: cfg.redirect_uris.clone(),
        post_logout_redirect_uris: cfg.post_logout_redirect_uris.clone(),
        any_loopback: false,
    }
}

/// Parses an `Authorization: Basic` value into client id and secret
/// (RFC 6749 §2.3.1: both form-urlencoded before base64). `None` when the
/// header is not Basic; `Err(InvalidClient)` when it is Basic but malformed.
pub fn parse_basic(header: &str) -> Result<Option<(String, String)>> {
    let Some((scheme, encoded)) = header.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Error::InvalidClient)?;
    let (id, secret) = decoded.split_once(':').ok_or(Error::InvalidClient)?;
    let decode = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
            .ok_or(Error::InvalidClient)
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}

/// Identifies the client; `invalid_client` for an unknown one or a bad secret.
pub fn authenticate(settings: &Settings, creds: &Credentials) -> Result<Client> {
    let id = creds.id.as_deref().filter(|s| !s.is_empty());
    if id.is_some_and(|i| i.len() > MAX_ID_LEN) {
        return Err(Error::InvalidClient);
    }
    // A caller naming no client is the default client.
    let id = id.unwrap_or(DEFAULT_CLIENT_ID);
    let Some(cfg) = settings.clients.iter().find(|c| c.id == id) else {
        // The docs client and first-party clients are public: a secret
        // they do not have is refused like a wrong one.
        return match by_id(settings, id) {
            Some(c) if creds.secret.is_none() || settings.clients.is_empty() => Ok(c),
            _ => Err(Error::InvalidClient),
        };
    };
    let confidential = match (&cfg.secret, creds.secret.as_deref()) {
        (Some(expected), Some(given)) => {
            if bool::from(expected.expose().as_bytes().ct_eq(given.as_bytes())) {
                true
            } else {
                return Err(Error::InvalidClient);
            }
        }
        // A confidential client must authenticate.
        (Some(_), None) => return Err(Error::InvalidClient),
        // A public client sent a secret it does not have.
        (None, Some(_)) => return Err(Error::InvalidClient),
        (None, None) => false,
    };
    Ok(from_config(cfg, confidential))
}

/// The client a registration's tokens are issued to (when the account
/// needs no activation): the named one, by the password grant's rules; with
/// none named, the default client if there is one, else none (the account
/// is still created, the answer carries no tokens).
pub fn for_registration(settings: &Settings, id: Option<&str>) -> Result<Option<Client>> {
    let named = id.filter(|s| !s.is_empty());
    // A nameless caller cannot present a secret, so a confidential default
    // client does not count.
    if named.is_none()
        && !settings.clients.is_empty()
        && !settings
            .clients
            .iter()
            .any(|c| c.id == DEFAULT_CLIENT_ID && c.secret.is_none())
    {
        return Ok(None);
    }
    let client = authenticate(
        settings,
        &Credentials {
            id: named.map(str::to_owned),
            secret: None,
        },
    )?;
    client.check_grant(crate::grants::PASSWORD)?;
    Ok(Some(client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientSettings, Secret};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_authorization_header_parses_without_panicking(h in ".{0,200}") {
            let _ = parse_basic(&h);
        }

        #[test]
        fn basic_credentials_round_trip(id in "[a-zA-Z0-9 :%+&=_.-]{0,40}", secret in "[a-zA-Z0-9 :%+&=_.-]{0,40}") {
            use base64::Engine as _;
            let enc = |s: &str| serde_urlencoded::to_string([("v", s)]).expect("encode")[2..].to_owned();
            let raw = format!("{}:{}", enc(&id), enc(&secret));
            let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw));
            prop_assert_eq!(parse_basic(&header).expect("valid"), Some((id, secret)));
        }
    }

    fn settings() -> Settings {
        Settings {
            clients: vec![
                ClientSettings {
                    id: "web".into(),
                    secret: None,
                    grant_types: vec![],
                    audience: None,
                    access_token_typ: AccessTokenTyp::AtJwt,
                    signing_alg: SigningAlg::RS256,
                    redirect_uris: vec![
                        "https://app.example/cb".into(),
                        "http://127.0.0.1/cb".into(),
                    ],
                    post_logout_redirect_uris: vec![],
                },
                ClientSettings {
                    id: "api".into(),
                    secret: Some(Secret::new("s3cret")),
                    grant_types: vec!["refresh_token".into()],
                    audience: Some("resource".into()),
                    access_token_typ: AccessTokenTyp::Jwt,
                    signing_alg: SigningAlg::ES256,
                    redirect_uris: vec![],
                    post_logout_redirect_uris: vec![],
                },
            ],
            ..Settings::default()
        }
    }

    fn creds(id: Option<&str>, secret: Option<&str>) -> Credentials {
        Credentials {
            id: id.map(Into::into),
            secret: secret.map(Into::into),
        }
    }

    #[test]
    fn configured_clients_authenticate_by_id_and_secret() {
        let s = settings();
        assert!(
            !authenticate(&s, &creds(Some("web"), None))
                .expect("public")
                .confidential
        );
        let api = authenticate(&s, &creds(Some("api"), Some("s3cret"))).expect("confidential");
        assert!(api.confidential);
        assert_eq!(api.audience, "resource");
        assert_eq!(api.signing_alg, SigningAlg::ES256);
        assert!(matches!(
            api.check_grant("password"),
            Err(Error::UnauthorizedClient)
        ));
        for (id, secret) in [
            (Some("api"), Some("wrong")),
            (Some("api"), None),
            (Some("nope"), None),
            (None, None),
        ] {
            assert!(
                matches!(
                    authenticate(&s, &creds(id, secret)),
                    Err(Error::InvalidClient)
                ),
                "{id:?}"
            );
        }
    }

    #[test]
    fn first_party_mode_accepts_any_client() {
        let s = Settings::default();
        assert_eq!(
            authenticate(&s, &creds(None, None)).expect("ok").id,
            DEFAULT_CLIENT_ID
        );
        assert_eq!(
            authenticate(&s, &creds(Some("spa"), None))
                .expect("ok")
                .aud(),
            "spa"
        );
    }

    #[test]
    fn a_configured_docs_client_replaces_the_built_in_one_in_discovery() {
        let only_refresh = |id: &str| ClientSettings {
            id: id.into(),
            secret: None,
            grant_types: vec!["refresh_token".into()],
            audience: None,
            access_token_typ: AccessTokenTyp::AtJwt,
            signing_alg: SigningAlg::EdDSA,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
        };
        let mut s = Settings {
            clients: vec![only_refresh("app")],
            ..Settings::default()
        };
        assert_eq!(
            grant_types_in_use(&s),
            ["authorization_code", "refresh_token"],
            "the built-in docs client brings the code flow"
        );
        s.clients.push(only_refresh(DOCS_CLIENT_ID));
        assert_eq!(grant_types_in_use(&s), ["refresh_token"]);
    }

    #[test]
    fn redirect_uris_match_exactly_or_as_loopback_on_any_port() {
        let s = settings();
        let web = by_id(&s, "web").expect("configured");
        assert!(web.accepts_redirect("https://app.example/cb"));
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example/cb#f",
            "https://APP.example/cb",
            "http://127.0.0.1:8080/other",
            "http://127.0.0.1.evil.example/cb",
            "http://127.0.0.1:80@evil.example/cb",
            "http://localhost:99999999/cb",
        ] {
            assert!(!web.accepts_redirect(bad), "{bad}");
        }
        assert!(web.accepts_redirect("http://127.0.0.1:53124/cb"));
        assert!(!by_id(&s, "nope").is_some_and(|_| true));
        let fp = by_id(&Settings::default(), "cli").expect("first party");
        assert!(fp.accepts_redirect("http://localhost:3000/callback"));
        assert!(fp.accepts_redirect("http://[::1]:3000/callback"));
        assert!(!fp.accepts_redirect("https://evil.example/callback"));
        let docs = by_id(&s, DOCS_CLIENT_ID).expect("docs client");
        assert!(docs.accepts_redirect("http://127.0.0.1:8080/docs/oauth2-redirect.html"));
        assert!(!docs.accepts_redirect("http://127.0.0.1:8080/evil"));
    }

    impl Client {
        fn aud(&self) -> &str {
            &self.audience
        }
    }
}

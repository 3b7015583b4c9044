//! OAuth client identification (RFC 6749 §2.3): public clients by
//! `client_id`, confidential ones by HTTP Basic or `client_secret`.
//! With no `[[clients]]` configured, any client id (or none) is public.

use subtle::ConstantTimeEq;

use crate::config::{AccessTokenTyp, Settings};
use crate::error::{Error, Result};

/// Client id used when a caller names none (first-party mode, or a
/// configured client with this id).
pub const DEFAULT_CLIENT_ID: &str = "gatehouse";

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
    /// Grants it may use; empty means all.
    pub grant_types: Vec<String>,
    /// `typ` header of its access tokens.
    pub access_token_typ: AccessTokenTyp,
}

impl Client {
    /// `unauthorized_client` unless the client may use `grant`.
    pub fn check_grant(&self, grant: &str) -> Result<()> {
        if self.grant_types.is_empty() || self.grant_types.iter().any(|g| g == grant) {
            Ok(())
        } else {
            Err(Error::UnauthorizedClient)
        }
    }
}

/// The grant types some client may really use: every known one in
/// first-party mode, else those the configured clients list (a client
/// listing none may use all).
pub fn grant_types_in_use(settings: &Settings) -> Vec<String> {
    crate::grants::ALL
        .iter()
        .filter(|g| {
            settings.clients.is_empty()
                || settings
                    .clients
                    .iter()
                    .any(|c| c.grant_types.is_empty() || c.grant_types.iter().any(|x| x == *g))
        })
        .map(|g| (*g).to_owned())
        .collect()
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
    if settings.clients.is_empty() {
        let id = id.unwrap_or(DEFAULT_CLIENT_ID).to_owned();
        return Ok(Client {
            audience: id.clone(),
            id,
            confidential: false,
            grant_types: Vec::new(),
            access_token_typ: AccessTokenTyp::default(),
        });
    }
    // A caller naming no client is the default client, if one is configured.
    let id = id.unwrap_or(DEFAULT_CLIENT_ID);
    let Some(cfg) = settings.clients.iter().find(|c| c.id == id) else {
        return Err(Error::InvalidClient);
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
    Ok(Client {
        id: cfg.id.clone(),
        audience: cfg.audience.clone().unwrap_or_else(|| cfg.id.clone()),
        confidential,
        grant_types: cfg.grant_types.clone(),
        access_token_typ: cfg.access_token_typ,
    })
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
                },
                ClientSettings {
                    id: "api".into(),
                    secret: Some(Secret::new("s3cret")),
                    grant_types: vec!["refresh_token".into()],
                    audience: Some("resource".into()),
                    access_token_typ: AccessTokenTyp::Jwt,
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

    impl Client {
        fn aud(&self) -> &str {
            &self.audience
        }
    }
}

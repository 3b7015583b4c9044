//! The HTTP layer: poem-openapi endpoint groups, thin — each handler parses,
//! calls one service and maps the result. `error` is the one place errors
//! become HTTP; `middleware` is the one place every request passes through.
//!
//! The groups are unit structs that take the state through `Data<&AppState>`
//! so that the OpenAPI document can be generated without a database
//! (`gatehouse openapi`, and the test comparing it with the committed file).

pub mod account;
pub mod auth;
pub mod discovery;
pub mod error;
pub mod json;
pub mod middleware;
pub mod oauth;
pub mod ops;
pub mod pages;
pub mod payload;
pub mod routes;
pub mod types;

use std::net::{IpAddr, Ipv4Addr};

use poem::{Endpoint as _, EndpointExt, IntoEndpoint, Request, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::app::AppState;

/// Tags of the spec, by domain.
#[derive(Tags)]
pub enum ApiTags {
    /// OAuth 2.0 and OpenID Connect.
    #[oai(rename = "oauth")]
    OAuth,
    /// Accounts: registration, activation, password reset, profile.
    #[oai(rename = "account")]
    Account,
    /// Keys and discovery.
    #[oai(rename = "discovery")]
    Discovery,
    /// Health and metrics.
    #[oai(rename = "operations")]
    Operations,
}

type Apis = (
    discovery::DiscoveryApi,
    oauth::OAuthApi,
    account::AccountApi,
    ops::OpsApi,
);

/// The OpenAPI service of every group.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            discovery::DiscoveryApi,
            oauth::OAuthApi,
            account::AccountApi,
            ops::OpsApi,
        ),
        "Gatehouse",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Gatehouse identity provider: OAuth 2.0 authorization code (PKCE), password and refresh-token grants, \
         RS256 JWTs, OIDC userinfo and discovery, account registration and recovery. \
         Use **Authorize** (authorization code flow with PKCE, client `docs`) to log in, \
         then try the protected endpoints.",
    )
}

/// The OpenAPI document as JSON (what `openapi/openapi.json` holds).
pub fn spec_json() -> String {
    service().spec()
}

/// Every route, with the middleware and the state attached.
pub fn routes(state: AppState) -> impl poem::Endpoint {
    let api = service();
    let spec = api.spec_endpoint();
    let docs = docs(&state.live.get().server.public_url);
    let settings = state.live.get();
    let cors = middleware::cors(&settings.server.cors_origins, &settings.server.public_url);
    pages::mount(Route::new())
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .into_endpoint()
        .around(middleware::contract)
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .around(middleware::observe)
        .data(state)
}

/// Swagger UI at `/docs`: poem-openapi's page, told to log in with the
/// built-in `docs` client through the code flow with PKCE, its redirect
/// page served at `/docs/oauth2-redirect.html` (the docs client's
/// registered redirect URI).
fn docs(public_url: &str) -> Route {
    use std::sync::{Arc, OnceLock};
    // Built at the first visit, not at start: the page embeds Swagger UI's
    // 1.4 MB bundle, and most servers never serve it (3.7 MiB less RSS at
    // start, measured).
    let redirect = format!("{public_url}/docs/oauth2-redirect.html");
    let html: Arc<OnceLock<String>> = Arc::default();
    let page = poem::endpoint::make_sync(move |_| {
        poem::web::Html(
            html.get_or_init(|| {
                service()
                    .swagger_ui_html()
                    .replacen(
                        "    SwaggerUIBundle({",
                        "    const ui = SwaggerUIBundle({",
                        1,
                    )
                    .replacen(
                        "oauth2RedirectUrl: oauth2RedirectUrl,",
                        &format!(
                            "oauth2RedirectUrl: {},",
                            serde_json::Value::from(redirect.as_str())
                        ),
                        1,
                    )
                    .replacen(
                        "</script>\n\n</body>",
                        "    ui.initOAuth({ clientId: \"docs\", usePkceWithAuthorizationCodeGrant: true, \
                         scopes: \"openid profile email\" });\n</script>\n\n</body>",
                        1,
                    )
            })
            .clone(),
        )
    });
    let ui: Arc<OnceLock<poem::endpoint::BoxEndpoint<'static>>> = Arc::default();
    let receiver = poem::endpoint::make(move |_req: Request| {
        let ui = ui.clone();
        async move {
            let ui = ui.get_or_init(|| service().swagger_ui().map_to_response().boxed());
            let inner = Request::builder().uri_str("/oauth-receiver.html").finish();
            ui.get_response(inner).await
        }
    });
    Route::new()
        .at("/", page)
        .at("/oauth2-redirect.html", receiver)
}

/// The client address the middleware settled on (socket, or
/// `X-Forwarded-For` from a trusted proxy).
pub fn client_ip(req: &Request) -> IpAddr {
    req.data::<middleware::ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0)
}

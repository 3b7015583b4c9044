//! What every request passes through, once: one named function per job —
//! [`request_id`], [`client_address`], [`access_log`], [`security_headers`]
//! in the outer layer ([`observe`]), then CORS, then [`body_limit`] and
//! [`contract_errors`] (every error in the contract's shape, as a response
//! the CORS layer then dresses) in the inner one ([`contract`]).

use std::net::IpAddr;
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::middleware::Cors;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::app::AppState;

/// The client for limits: its IPv4 address, or its IPv6 network of
/// `server.ipv6_prefix` bits.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The origin (`scheme://host[:port]`) of an absolute URL.
pub fn origin_of(url: &str) -> &str {
    url.find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| &url[..i + 3 + j]))
        .unwrap_or(url)
}

/// CORS for the configured browser origins, or none. The server's own
/// origin (`public_url`) is always allowed besides them: browsers send
/// `Origin` on same-origin posts too (the hosted pages, Swagger UI).
pub fn cors(origins: &[String], public_url: &str) -> Option<Cors> {
    if origins.is_empty() {
        return None;
    }
    let mut c = Cors::new()
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
        .allow_headers(["authorization", "content-type"])
        .expose_headers(["retry-after", "www-authenticate", "x-request-id"])
        .max_age(600);
    for o in origins {
        c = c.allow_origin(o.as_str());
    }
    c = c.allow_origin(origin_of(public_url));
    Some(c)
}

/// The client address: the socket peer, or, when the peer is a trusted
/// proxy, the rightmost address of `X-Forwarded-For` that is not itself a
/// trusted proxy. Every header line counts, in order (a proxy may append a
/// line of its own rather than extend the first, RFC 9110 §5.3), so a value
/// the client forged at the left never wins over what the proxies added.
fn resolve_ip(req: &Request, settings: &crate::config::Settings) -> IpAddr {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip().to_canonical());
    if !settings.server.is_trusted_proxy(peer) {
        return peer;
    }
    let hops: Vec<&[u8]> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        client = hop_address(hop);
        if !settings.server.is_trusted_proxy(client) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` hop: an address, an `address:port` or
/// `[v6]:port`, or, when it is neither, an opaque client of its own (an
/// address in the IPv6 discard prefix 100::/64, RFC 6666, derived from the
/// hop's bytes), so that a garbled hop never falls back to the proxy's own
/// address and its budget.
fn hop_address(hop: &[u8]) -> IpAddr {
    let text = std::str::from_utf8(hop).map(str::trim).unwrap_or_default();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return ip.to_canonical();
    }
    if let Ok(sock) = text.parse::<std::net::SocketAddr>() {
        return sock.ip().to_canonical();
    }
    use std::hash::{BuildHasher as _, Hasher as _};
    static KEY: std::sync::LazyLock<std::hash::RandomState> =
        std::sync::LazyLock::new(std::hash::RandomState::new);
    let mut h = KEY.build_hasher();
    h.write(hop.trim_ascii());
    IpAddr::V6(
        std::net::Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0)
            | std::net::Ipv6Addr::from(u128::from(h.finish())),
    )
}

/// Content-Security-Policy: nothing for the API; the pages' own
/// stylesheet (no script at all) for the hosted pages; Swagger UI's inline
/// scripts and styles for `/docs`.
fn csp(path: &str) -> &'static str {
    if super::routes::is_page(path) {
        "default-src 'none'; style-src 'self'; img-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'none'"
    } else if path.starts_with("/docs") {
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    }
}

/// Refuses bodies over `max` bytes with 413: by `Content-Length` when
/// given, else by reading at most `max` bytes of the body. A body that
/// cannot be read at all is a 400.
async fn limit_body(req: &mut Request, max: usize) -> Result<(), Response> {
    let too_large = || {
        super::error::from_poem(poem::Error::from_status(
            poem::http::StatusCode::PAYLOAD_TOO_LARGE,
        ))
    };
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH) {
        let len: usize = len
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX);
        return if len > max { Err(too_large()) } else { Ok(()) };
    }
    // No length: no body at all (most GETs), or chunked HTTP/1.1, or
    // HTTP/2, where neither header is required. Read at most
    // `max` bytes, whatever the framing. The read's state (a 4 KiB buffer)
    // is boxed: in place it would grow every request's future by as much,
    // and each request's future is moved into a box of its own.
    let body = req.take_body();
    if body.is_empty() {
        req.set_body(body);
        return Ok(());
    }
    match Box::pin(body.into_bytes_limit(max)).await {
        Ok(bytes) => req.set_body(bytes),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => return Err(too_large()),
        // Broken framing (a bad chunk size), a reset HTTP/2 stream, a
        // client gone mid-body: nothing was learnt about the size.
        Err(e) => {
            tracing::debug!(error = %e, "request body could not be read");
            return Err(super::error::from_poem(poem::Error::from_string(
                "the request body could not be read",
                poem::http::StatusCode::BAD_REQUEST,
            )));
        }
    }
    Ok(())
}

/// The two layers every request passes through, around the CORS layer:
/// [`observe`] outside it, [`contract`] inside it. Each job is its own
/// function below; they are called in order from these two layers rather
/// than stacked as six, because each extra poem layer cost about 2 µs a
/// request (12 % of a JWKS answer, measured with wrk).
pub async fn observe<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let id = request_id(&req);
    let ip = client_address(&mut req);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = answer(next.call(req).await);
    access_log(&resp, &id, &method, &path, ip, started);
    security_headers(&mut resp, &path);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}

/// The inner layer: [`body_limit`], then the endpoint, then
/// [`contract_errors`].
pub async fn contract<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    if let Err(too_large) = body_limit(&mut req).await {
        return Ok(too_large);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        // Our own `ApiError`s arrive as errors wrapping their response.
        Err(e) if e.is_from_response() => e.into_response(),
        Err(e) => super::error::from_poem(e),
    };
    Ok(contract_errors(resp, &method, &path).await)
}

/// Job: the request id — the caller's `X-Request-Id` when it is a sane
/// token, else a new UUID; logged and echoed on the response.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Job: who is asking — the socket peer, or the client a trusted proxy
/// names ([`resolve_ip`]); limits key on its IPv6 network ([`ClientIp`]),
/// the log shows the address (returned).
fn client_address(req: &mut Request) -> IpAddr {
    let (ip, client) = match req.data::<AppState>() {
        Some(state) => {
            // One settings snapshot for both.
            let settings = state.live.get();
            let ip = resolve_ip(req, &settings);
            (ip, settings.server.client_of(ip))
        }
        None => (IpAddr::from([0, 0, 0, 0]), IpAddr::from([0, 0, 0, 0])),
    };
    req.set_data(ClientIp(client));
    ip
}

/// Job: request metrics (by route template) and the log line.
fn access_log(
    resp: &Response,
    id: &str,
    method: &Method,
    path: &str,
    ip: IpAddr,
    started: Instant,
) {
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    // Route templates, not raw paths, so the label set stays bounded.
    let route = super::routes::template(method, path);
    metrics::counter!("gatehouse_http_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("gatehouse_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    if path != "/healthz" && path != "/metrics" {
        tracing::info!(
            request.id = %id,
            http.method = %method,
            http.route = route,
            http.status = status,
            client.ip = %ip,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "{method} {route} {status}"
        );
    }
}

/// Job: the headers every response carries (no sniffing, no framing, a
/// CSP per kind of page, no `Server`).
fn security_headers(resp: &mut Response, path: &str) {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Pages post forms to themselves: `same-origin` keeps their `Origin`
    // header (which `no-referrer` would turn into `null`).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(if super::routes::is_page(path) {
            "same-origin"
        } else {
            "no-referrer"
        }),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp(path)),
    );
    h.remove(header::SERVER);
}

/// Job: bodies over `server.max_body_bytes` get 413, whatever the
/// framing (length, chunked, HTTP/2 without a length).
async fn body_limit(req: &mut Request) -> Result<(), Response> {
    let max_body = req
        .data::<AppState>()
        .map_or(65536, |s| s.live.get().server.max_body_bytes);
    limit_body(req, max_body).await
}

/// An inner layer's outcome as a response (they have all turned errors
/// into responses; anything left is shaped here).
fn answer(r: poem::Result<impl IntoResponse>) -> Response {
    match r {
        Ok(r) => r.into_response(),
        Err(e) if e.is_from_response() => e.into_response(),
        Err(e) => super::error::from_poem(e),
    }
}

/// Job: every error (ours, poem's, poem-openapi's parse errors) in the
/// contract's shape, as a response, so that the CORS layer around dresses
/// errors like successes; the hosted pages keep their HTML errors.
async fn contract_errors(mut resp: Response, method: &Method, path: &str) -> Response {
    if resp.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return super::error::unsupported_media_type(super::routes::accepts(method, path));
    }
    // Errors poem-openapi turned into responses (parse errors) keep their
    // plain-text body: give them the contract's shape too.
    if resp.status().is_client_error()
        && !super::routes::is_page(path)
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| !v.as_bytes().starts_with(b"application/json"))
        && resp.status() != StatusCode::UNAUTHORIZED
    {
        let status = resp.status();
        let body = resp.take_body().into_string().await.unwrap_or_default();
        resp = super::error::from_poem(poem::Error::from_string(body, status));
    }
    resp
}

//! What the spec knows about each route, read once from the generated
//! OpenAPI document: the route template metrics are labelled by, and the
//! media types an operation accepts (named in its 415 answer). Reading the
//! spec rather than keeping a second list means the two cannot disagree.

use std::collections::HashMap;
use std::sync::LazyLock;

use poem::http::Method;

/// One operation of the spec.
#[derive(Debug, Default)]
struct Operation {
    /// Media types of its request body.
    accepts: Vec<String>,
}

/// `(method, path)` → operation, and every path.
struct Table {
    operations: HashMap<(String, String), Operation>,
    paths: Vec<&'static str>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let spec: serde_json::Value = serde_json::from_str(&super::spec_json()).unwrap_or_default();
    let mut operations = HashMap::new();
    let mut paths = Vec::new();
    if let Some(p) = spec["paths"].as_object() {
        for (path, methods) in p {
            // Leaked once, at first use, for `&'static` metric labels; the
            // set is the spec's paths, fixed at compile time.
            paths.push(&*Box::leak(path.clone().into_boxed_str()));
            let Some(methods) = methods.as_object() else {
                continue;
            };
            for (method, op) in methods {
                let accepts = op["requestBody"]["content"]
                    .as_object()
                    .map(|c| c.keys().cloned().collect())
                    .unwrap_or_default();
                operations.insert(
                    (method.to_ascii_uppercase(), path.clone()),
                    Operation { accepts },
                );
            }
        }
    }
    Table { operations, paths }
});

/// The route template for metrics: the spec's path, `/docs`, or
/// `unmatched` (so that stray paths cannot grow the label set).
pub fn template(_method: &Method, path: &str) -> &'static str {
    if let Some(p) = TABLE.paths.iter().find(|p| **p == path) {
        return p;
    }
    if let Some(p) = PAGES.iter().find(|p| **p == path) {
        return p;
    }
    match path {
        "/openapi.json" => "/openapi.json",
        "/assets/pages.css" => "/assets/pages.css",
        p if p == "/docs" || p.starts_with("/docs/") => "/docs",
        _ => "unmatched",
    }
}

/// The media types `method path` accepts, as the spec lists them.
pub fn accepts(method: &Method, path: &str) -> Vec<String> {
    TABLE
        .operations
        .get(&(method.as_str().to_owned(), path.to_owned()))
        .map(|o| o.accepts.clone())
        .unwrap_or_default()
}

/// The hosted pages (`pages::mount` serves them): HTML answers and errors,
/// the pages' CSP and `Referrer-Policy`.
const PAGES: &[&str] = &[
    "/oauth/authorize",
    "/login",
    "/register",
    "/activate",
    "/password/forgot",
    "/password/reset",
    "/oauth/logout",
];

/// Whether `path` is one of the hosted pages.
pub fn is_page(path: &str) -> bool {
    PAGES.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_endpoint_accepts_forms_and_json_and_register_json() {
        assert_eq!(
            accepts(&Method::POST, "/oauth/token"),
            vec![
                "application/json".to_owned(),
                "application/x-www-form-urlencoded".to_owned()
            ]
        );
        assert_eq!(
            accepts(&Method::POST, "/account/register"),
            vec!["application/json".to_owned()]
        );
        assert_eq!(template(&Method::POST, "/oauth/token"), "/oauth/token");
        assert_eq!(template(&Method::GET, "/nope/123"), "unmatched");
    }
}

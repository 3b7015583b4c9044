//! Two app instances on one database (and one Redis) behave as one server.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, Shared, TestApp, TestDb, assert_error};
use crate::shared;

async fn two_replicas_behave_as_one(shared: Shared) {
    let db = Arc::new(TestDb::new(shared.backend()).await);
    let deployment = format!(
        "{}\n[rate_limits]\nlogin_per_ip = \"4/1h\"\n",
        shared.redis_toml()
    );
    // Both start at once on the empty database.
    let (a, b) = tokio::join!(
        TestApp::spawn_on(db.clone(), &deployment, None),
        TestApp::spawn_on(db.clone(), &deployment, None)
    );
    let jwks_a = a
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .expect("a");
    let jwks_b = b
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .expect("b");
    assert_eq!(jwks_a, jwks_b, "one signing key");
    a.activated_user("both@example.com").await;

    // Issued by A, refreshed at B.
    let t = a.login("both@example.com").await;
    let first = t["refresh_token"].as_str().expect("rt").to_owned();
    let r = b.refresh(&first).await;
    assert_eq!(r.status(), StatusCode::OK);
    let child: serde_json::Value = r.json().await.expect("json");
    let child_rt = child["refresh_token"].as_str().expect("rt").to_owned();
    // Used at B, replayed at A after the grace window: reuse, the family dies.
    a.advance(Duration::from_secs(11));
    b.advance(Duration::from_secs(11));
    assert_error(
        a.refresh(&first).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_error(
        b.refresh(&child_rt).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // An access token revoked at A is refused by B at once.
    let t = a.login("both@example.com").await;
    let at = t["access_token"].as_str().expect("at");
    assert_eq!(
        b.get_bearer("/oauth/userinfo", at).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        a.post_form("/oauth/revoke", &[("token", at)])
            .await
            .status(),
        StatusCode::OK
    );
    if shared == Shared::Redis {
        assert_eq!(
            b.get_bearer("/oauth/userinfo", at).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    // A limit is one limit across replicas (with Redis): 4 an hour in all,
    // 2 of them used above at A.
    if shared == Shared::Redis {
        let mut statuses = Vec::new();
        for app in [&b, &a, &b, &a] {
            statuses.push(
                app.password_grant("both@example.com", PASSWORD)
                    .await
                    .status(),
            );
        }
        let (ok, limited) = (StatusCode::OK, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            statuses,
            vec![ok, ok, limited, limited],
            "A and B count together"
        );
    }
}
shared!(two_replicas_behave_as_one);

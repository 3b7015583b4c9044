//! Operations: liveness, readiness, metrics.

use poem::web::Data;
use poem_openapi::payload::PlainText;

use super::json::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::app::AppState;

/// Health and metrics.
pub struct OpsApi;

/// What each dependency answered.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `up` or `down`.
    pub database: String,
    /// `up`, `down` or `disabled`.
    pub redis: String,
}

/// Readiness answer.
#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Ready to serve.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// A dependency does not answer.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Liveness
    ///
    /// 200 while the process serves.
    #[oai(path = "/healthz", method = "get", operation_id = "get_health")]
    async fn healthz(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// Readiness
    ///
    /// 200 when the database (and Redis, when configured) answer.
    #[oai(path = "/readyz", method = "get", operation_id = "get_readiness")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        let (db, redis) = state.readiness().await;
        let up = |b: bool| if b { "up" } else { "down" }.to_owned();
        let body = Readiness {
            database: up(db),
            redis: redis.map_or_else(|| "disabled".into(), up),
        };
        if db && redis.unwrap_or(true) {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }

    /// Prometheus metrics
    #[oai(path = "/metrics", method = "get", operation_id = "get_metrics")]
    async fn metrics(&self, state: Data<&AppState>) -> PlainText<String> {
        state.record_pool_metrics();
        PlainText(state.metrics.render())
    }
}

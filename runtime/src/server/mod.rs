//! The HTTP server of an owner: one router for the Unix socket in the state directory
//! (the CLI's clients) and, with `sluice serve --listen`, a TCP address (everyone else).
//!
//! Owns the routes (the Databricks Jobs API subset in `jobs_api`, sluice's own in
//! `sluice_api`, `/healthz`, `/metrics`, the SDK's config probe, the dashboard under
//! `/ui/` in `dashboard`), authentication
//! (`auth`), the error shape (`error`), request limits and timeouts, metrics
//! (`metrics`), and the listeners with their graceful stop (`listen`). It translates
//! HTTP to calls on the [`Service`] and back; it never touches sled or wasmtime, and
//! decides nothing about runs.

pub mod auth;
mod dashboard;
mod deploy_api;
mod error;
mod jobs_api;
mod jobs_json;
pub mod listen;
pub mod metrics;
mod sluice_api;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use error::ApiError;
pub use metrics::Metrics;

use crate::service::Service;

/// The largest request body accepted: run-now and repair bodies are a few hundred bytes,
/// a secret value at most what fits here.
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// How long a client may take to send a request's body (a slow client is cut off).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a handler may take to answer: generous, since a submission may compile a new
/// component and verify re-executes a run; events streams answer at once and then stream.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(600);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub metrics: Arc<Metrics>,
}

/// The router every listener serves.
pub fn router(state: AppState) -> Router {
    let jobs = jobs_api::routes();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/.well-known/databricks-config", get(|| async { Json(json!({})) }))
        .nest("/api/2.2", jobs.clone().layer(Extension(jobs_api::Version::V2_2)))
        .nest("/api/2.1", jobs.layer(Extension(jobs_api::Version::V2_1)))
        .nest("/api/sluice/v1", sluice_api::routes().merge(deploy_api::routes()))
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::for_status(StatusCode::NOT_FOUND) })
        .layer(middleware::from_fn(handler_timeout))
        .layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY))
        .layer(middleware::from_fn(json_errors))
        .merge(
            deploy_api::blob_routes()
                .layer(middleware::from_fn(handler_timeout))
                .layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT))
                .layer(middleware::from_fn(json_errors)),
        )
        .with_state(state)
}

/// Run `f` (which reads the store: sled reads and folds block) on tokio's blocking pool,
/// so readers polling runs never hold the async workers that drive the runs.
pub(crate) async fn blocking<T, F>(st: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Service) -> Result<T, crate::service::ServiceError> + Send + 'static,
{
    let service = st.service.clone();
    match tokio::task::spawn_blocking(move || f(&service)).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::internal(format!("a read of the store failed: {e}"))),
    }
}

async fn healthz(State(st): State<AppState>) -> Json<serde_json::Value> {
    let (running, queued) = st.service.run_counts();
    Json(json!({ "status": "ok", "runs": { "running": running, "queued": queued } }))
}

async fn metrics(State(st): State<AppState>) -> Response {
    let text = st.metrics.render(&st.service);
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

async fn handler_timeout(req: Request, next: Next) -> Response {
    match tokio::time::timeout(HANDLER_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::for_status(StatusCode::REQUEST_TIMEOUT).into_response(),
    }
}

/// Every error a layer answered without a JSON body (too large, no route, wrong method)
/// gets the API's error shape.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        return ApiError::for_status(status).into_response();
    }
    response
}

//! `/api/sluice/v1/deployments…` and `/api/sluice/v1/blobs/{hash}`: deployments over HTTP —
//! one `POST deployments/op` carrying a [`DeployOp`] (what the CLI sends, over the socket or
//! to `sluice serve --listen` with a token), `GET deployments?bundle=B&target=T` (the
//! deployments and journal of a target), and the upload of a component a remote deploy's
//! server lacks (`PUT blobs/{hash}`, raw bytes, refused unless they hash to `hash`).
//!
//! It translates HTTP to the service and back; it decides nothing.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{post, put};
use serde_json::{Value, json};
use tower_http::limit::RequestBodyLimitLayer;

use super::AppState;
use super::auth::Authed;
use super::error::{ApiError, ApiJson, Params};
use crate::service::{DeployOp, Service};

/// The largest component a remote deploy may upload: bigger than any component we build
/// (an interpreter with its standard library is ~50 MiB), small enough to hold in memory.
pub const MAX_BLOB_UPLOAD: usize = 256 << 20;

type ApiResult = Result<Json<Value>, ApiError>;

/// The routes under `/api/sluice/v1` with the router's ordinary limits.
pub fn routes() -> Router<AppState> {
    Router::new().route("/deployments/op", post(op)).route("/deployments", axum::routing::get(list))
}

/// The upload route, with its own body limit (merged beside the limited router).
pub fn blob_routes() -> Router<AppState> {
    Router::new()
        .route("/api/sluice/v1/blobs/{hash}", put(put_blob))
        .layer(DefaultBodyLimit::max(MAX_BLOB_UPLOAD))
        .layer(RequestBodyLimitLayer::new(MAX_BLOB_UPLOAD))
}

async fn op(State(st): State<AppState>, Authed(caller): Authed, ApiJson(op): ApiJson<DeployOp>) -> ApiResult {
    let answer = super::blocking(&st, move |svc: &Service| svc.deployments(&caller, op)).await?;
    serde_json::to_value(answer).map(Json).map_err(|e| ApiError::internal(e.to_string()))
}

async fn list(State(st): State<AppState>, Authed(caller): Authed, p: Params) -> ApiResult {
    let need = |key: &str| {
        p.str(key).map(str::to_string).ok_or_else(|| ApiError::invalid(format!("Missing required parameter: {key}")))
    };
    let op = DeployOp::List { bundle: need("bundle")?, target: need("target")? };
    let answer = super::blocking(&st, move |svc: &Service| svc.deployments(&caller, op)).await?;
    serde_json::to_value(answer).map(Json).map_err(|e| ApiError::internal(e.to_string()))
}

async fn put_blob(
    State(st): State<AppState>,
    Authed(caller): Authed,
    Path(hash): Path<String>,
    body: Bytes,
) -> ApiResult {
    super::blocking(&st, move |svc: &Service| svc.put_blob(&caller, &hash, &body)).await?;
    Ok(Json(json!({})))
}

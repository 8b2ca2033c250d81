//! Who a request comes from.
//!
//! Over the Unix socket the peer's uid was checked when the connection was accepted
//! (SO_PEERCRED: the owner's own user, or root), so the peer is trusted to say who it is
//! and which workspace it works in (`x-sluice-principal`, `x-sluice-workspace`), as the
//! CLI always could locally. Over TCP every request but `/healthz`, `/metrics` and the
//! SDK's config probe needs `Authorization: Bearer <token>`; the token's principal and
//! workspace are the caller's. No token, or a wrong or expired one: 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::service::Caller;

/// The header a local client names its principal in.
pub const PRINCIPAL_HEADER: &str = "x-sluice-principal";
/// The header a local client names its workspace in.
pub const WORKSPACE_HEADER: &str = "x-sluice-workspace";

/// How the connection a request came on was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The Unix socket, from a process of the owner's user (or root).
    Local,
    /// A TCP connection: authenticate each request.
    Remote,
}

/// The authenticated caller of a request.
pub struct Authed(pub Caller);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        match parts.extensions.get::<Peer>() {
            Some(Peer::Local) => {
                let principal = header(PRINCIPAL_HEADER).filter(|p| !p.is_empty()).unwrap_or(crate::service::ANONYMOUS);
                let workspace = header(WORKSPACE_HEADER).unwrap_or(crate::secrets::DEFAULT_WORKSPACE);
                crate::spec::names::check_name(workspace)
                    .map_err(|e| ApiError::invalid(format!("{WORKSPACE_HEADER}: {e}")))?;
                Ok(Authed(Caller::local(principal, workspace)))
            }
            _ => {
                let token = header("authorization")
                    .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                    .map(str::trim);
                let Some(token) = token else {
                    let e = crate::service::ServiceError::Unauthenticated(
                        "Missing credentials: send `Authorization: Bearer <token>` (see `sluice tokens create`)."
                            .into(),
                    );
                    return Err(e.into());
                };
                Ok(Authed(state.service.authenticate(token)?))
            }
        }
    }
}

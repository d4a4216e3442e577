//! `/v1/visitors/{id}/revoke` (admin): every session token of the visitor issued until
//! now is refused from then on, and its open connections are closed with 4401. The
//! visitor's conversations stay; a verified customer who signs in again gets a new
//! session.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};

use super::{auth, ApiResult};
use crate::{
    error::Error,
    hub::Hub,
    registry::{Kick, PartyKey},
};

pub async fn revoke(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    auth::admin(&hub, &headers).await?;
    if !id.starts_with("v_")
        || id.len() > 64
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::bad_request("not a visitor id").into());
    }
    let now_ms = crate::clock::now_ms();
    // The mark must outlive every session it refuses.
    let keep_s = hub.config.identity.session_lifetime_s;
    hub.store.revoke_visitor(&id, now_ms, keep_s).await?;
    hub.registry
        .kick_party(&PartyKey::Visitor(id.clone()), Kick::SessionRevoked);
    tracing::info!(visitor_id = %id, "visitor sessions revoked");
    Ok(StatusCode::NO_CONTENT)
}

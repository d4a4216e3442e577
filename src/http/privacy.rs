//! Data protection, admin only: export and erase everything held about one customer,
//! and the audit log of both (`docs/privacy.md`).
//!
//! - `GET /v1/customers/{id}/export` — JSON of everything held;
//! - `DELETE /v1/customers/{id}` — erase it (409 while the customer has an open
//!   conversation: close it first);
//! - `GET /v1/audit?after=CURSOR&limit=N` — who exported or erased whom, when.
//!
//! `{id}` is a visitor id (`v_…`) or a verified customer's user id (the `user_id` of
//! its identity, mapped to its visitor id with the identity secret); `?by=visitor` or
//! `?by=user` says which when an id could be read either way. Must not talk to Redis
//! itself (`store/privacy.rs` does).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, Path, Query, State},
    http::HeaderMap,
    response::IntoResponse,
    routing::{delete, get},
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use super::{auth, ApiResult};
use crate::{error::Error, hub::Hub, store::StreamCursor};

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/v1/customers/{id}/export", get(export))
        .route("/v1/customers/{id}", delete(erase))
        .route("/v1/audit", get(audit))
}

/// The longest customer id accepted (user ids are the site's own).
const MAX_ID_CHARS: usize = 256;

#[derive(Deserialize)]
pub struct CustomerQuery {
    by: Option<String>,
}

/// The customer as asked, and the visitor id its data is held under.
struct Customer {
    visitor_id: String,
    user_id: Option<String>,
}

fn resolve(hub: &Hub, id: &str, by: Option<&str>) -> Result<Customer, Error> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(Error::bad_request(format!(
            "a customer id has 1 to {MAX_ID_CHARS} characters"
        )));
    }
    let by_user = match by {
        Some("visitor") => false,
        Some("user") => true,
        None => !id.starts_with("v_"),
        Some(other) => {
            return Err(Error::bad_request(format!(
                "by={other}: use `visitor` or `user`"
            )))
        }
    };
    if !by_user {
        return Ok(Customer {
            visitor_id: id.to_string(),
            user_id: None,
        });
    }
    let secret = hub.config.identity_secret.as_ref().ok_or_else(|| {
        Error::bad_request("no identity_secret is configured: give a visitor id (v_…)")
    })?;
    Ok(Customer {
        visitor_id: crate::auth::verified_visitor_id(secret.expose(), id),
        user_id: Some(id.to_string()),
    })
}

async fn export(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<CustomerQuery>,
) -> ApiResult<impl IntoResponse> {
    auth::admin(&hub, &headers).await?;
    let customer = resolve(&hub, &id, query.by.as_deref())?;
    let data = hub.store.customer_data(&customer.visitor_id).await?;
    let detail = json!({
        "user_id": customer.user_id,
        "conversations": data.conversations.len(),
        "tickets": data.tickets.len(),
    });
    // No audit entry, no data: an export nobody can trace is not handed out.
    hub.store
        .audit(
            "admin",
            "export",
            &customer.visitor_id,
            &peer.ip().to_string(),
            &detail,
        )
        .await?;
    tracing::info!(visitor_id = %customer.visitor_id, "customer data exported");
    Ok(Json(json!({
        "customer": {"visitor_id": customer.visitor_id, "user_id": customer.user_id},
        "exported_at": crate::clock::now_ms(),
        "data": data,
    })))
}

async fn erase(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<CustomerQuery>,
) -> ApiResult<impl IntoResponse> {
    auth::admin(&hub, &headers).await?;
    let customer = resolve(&hub, &id, query.by.as_deref())?;
    if let Some(open) = hub
        .store
        .visitor_open_conversation(&customer.visitor_id)
        .await?
    {
        return Err(Error::conflict(format!(
            "the customer has an open conversation ({open}): close it, then erase"
        ))
        .into());
    }
    let erased = hub.store.erase_customer(&customer.visitor_id).await?;
    let detail = json!({
        "user_id": customer.user_id,
        "conversations": erased.conversations,
        "tickets": erased.tickets,
        "outbox_entries": erased.outbox_entries,
    });
    hub.store
        .audit(
            "admin",
            "erase",
            &customer.visitor_id,
            &peer.ip().to_string(),
            &detail,
        )
        .await?;
    tracing::info!(visitor_id = %customer.visitor_id, conversations = erased.conversations, tickets = erased.tickets, "customer data erased");
    Ok(Json(json!({
        "customer": {"visitor_id": customer.visitor_id, "user_id": customer.user_id},
        "erased": erased,
    })))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn audit(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> ApiResult<impl IntoResponse> {
    auth::admin(&hub, &headers).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => Some(
            StreamCursor::parse(text)
                .ok_or_else(|| Error::bad_request("bad cursor: use the `next` of a page"))?,
        ),
        None => None,
    };
    let page = hub.store.audit_page(after.as_ref(), limit).await?;
    Ok(Json(json!({ "entries": page.entries, "next": page.next })))
}

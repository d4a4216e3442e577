//! HTTP: the WebSocket endpoints, the REST API, health and metrics, and the embedded
//! web pages. Handlers are thin: they authenticate, validate and call into the hub.

mod agents;
mod attachments;
mod auth;
mod canned;
mod conversations;
mod history;
mod inbox;
mod pages;
mod privacy;
mod reports;
mod transcript;
mod visitors;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, State, WebSocketUpgrade},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, patch, post},
    Json, Router,
};
use serde_json::json;

use crate::{
    admission::{client, Refusal},
    error::Error,
    hub::Hub,
    transport::{self, Endpoint},
};

/// An `Error` as an HTTP response with the contract's error code.
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(err: E) -> Self {
        ApiError(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(json!({"code": code, "message": self.0.to_string()})),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn app(hub: Arc<Hub>) -> Router {
    // Issue 15, part C: failed bearer tokens are throttled per client address.
    let login_throttle = Arc::new(auth::LoginThrottle::new(
        hub.config.auth.clone(),
        hub.metrics.login_failures.clone(),
    ));
    Router::new()
        .route("/v1/customer/ws", get(customer_ws))
        .route("/v1/agent/ws", get(agent_ws))
        .route("/v1/agents", get(agents::list).post(agents::create))
        .route("/v1/nodes", get(nodes))
        .route("/v1/transfer-targets", get(agents::transfer_targets))
        .route(
            "/v1/agents/{id}",
            patch(agents::update).delete(agents::remove),
        )
        .route("/v1/conversations", get(conversations::list))
        .route("/v1/queue", get(conversations::queue))
        .route("/v1/transcript/{id}", get(transcript::transcript))
        .route("/v1/conversations/{id}", get(conversations::show))
        .route(
            "/v1/conversations/{id}/attachments",
            post(attachments::upload).options(attachments::preflight),
        )
        .route(
            "/v1/conversations/{id}/attachments/{attachment}",
            get(attachments::link_for).options(attachments::preflight),
        )
        .route(
            "/v1/attachments/{id}/{attachment}",
            get(attachments::download),
        )
        .route(
            "/v1/conversations/{id}/routing",
            get(conversations::routing),
        )
        .route("/v1/tickets", get(history::tickets))
        .route("/v1/tickets/{id}", get(history::ticket))
        .route("/v1/inbox", get(inbox::list))
        .route("/v1/inbox/{ticket_id}", patch(inbox::mark))
        .route("/v1/stats", get(conversations::stats))
        .route("/v1/reports", get(reports::report))
        .route("/v1/config/canned", get(canned::config_list))
        .route("/v1/canned", get(canned::list).post(canned::create))
        .route(
            "/v1/canned/{id}",
            patch(canned::update).delete(canned::remove),
        )
        .route("/v1/visitors/{id}/revoke", post(visitors::revoke))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(pages::routes())
        .merge(privacy::routes())
        .layer(axum::middleware::from_fn_with_state(
            login_throttle,
            auth::throttle_failed_logins,
        ))
        .layer(axum::middleware::map_response(pages::common_headers))
        .with_state(hub)
}

/// Refuses an upgrade before it happens: 403 for a foreign `Origin`, 503 over a cap.
fn refuse(hub: &Hub, reason: Refusal, client: IpAddr) -> Response {
    hub.admission.refused(reason, Some(client));
    let status = match reason {
        Refusal::Origin => StatusCode::FORBIDDEN,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let code = match reason {
        Refusal::Origin => "forbidden",
        _ => "unavailable",
    };
    (
        status,
        [(header::RETRY_AFTER, "5")],
        Json(json!({"code": code, "message": reason.message()})),
    )
        .into_response()
}

fn upgrade(
    hub: Arc<Hub>,
    ws: WebSocketUpgrade,
    endpoint: Endpoint,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Response {
    let client = client::client_addr(peer, headers, hub.admission.trusted());
    let access = &hub.config.access;
    let origin_ok = match endpoint {
        Endpoint::Customer => client::widget_origin_ok(access, headers),
        Endpoint::Agent => {
            client::console_origin_ok(access, headers, hub.admission.is_trusted_proxy(peer.ip()))
        }
    };
    if !origin_ok {
        return refuse(&hub, Refusal::Origin, client);
    }
    let permit = match hub.admission.admit_ws(client) {
        Ok(permit) => permit,
        Err(reason) => return refuse(&hub, reason, client),
    };
    // The hard limit sits above the configured one so an oversize frame still reaches
    // the connection, which closes it with 1009 as the contract says.
    let hard_limit = (hub.config.limits.max_frame_bytes * 2).max(1 << 20);
    // Small socket buffers: most connections are idle chats, and 128 KiB of buffers
    // each (the default) would cost more than everything else a connection holds. The
    // writer batches frames itself before each flush. The read buffer is allocated (and
    // zeroed) up front for every connection and grows for a large frame, so it is sized
    // for chat frames (a few hundred bytes): 1 KiB still takes several per read, and
    // saves a kilobyte on each idle connection against 2 KiB (issue 19).
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| {
            // Tracked, so shutdown waits for the connection's Close frame.
            let tracker = hub.tracker.clone();
            tracker.track_future(transport::serve(hub, socket, endpoint, client, permit))
        })
}

async fn customer_ws(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(hub, ws, Endpoint::Customer, peer, &headers)
}

async fn agent_ws(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(hub, ws, Endpoint::Agent, peer, &headers)
}

async fn readyz(State(hub): State<Arc<Hub>>) -> Response {
    match hub.store.ping().await {
        // Reaching Redis is not enough: a node that lost its live feed would look
        // connected to its clients and hear nothing from the other nodes.
        Ok(()) if !hub.feed.is_ready() => {
            (StatusCode::SERVICE_UNAVAILABLE, "live feed from redis lost").into_response()
        }
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(cause = %err, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable").into_response()
        }
    }
}

/// `GET /v1/nodes`: the live nodes (their heartbeats) and which one routes.
async fn nodes(State(hub): State<Arc<Hub>>, headers: axum::http::HeaderMap) -> ApiResult<Response> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    let routing = hub.store.lease_holder().await?;
    let mut nodes = Vec::new();
    for (id, record) in hub.store.live_nodes().await? {
        let Ok(record) = serde_json::from_str::<crate::routing::recovery::NodeRecord>(&record)
        else {
            continue;
        };
        let routes = routing.as_ref().map(|(node, _)| node == &id);
        nodes.push(serde_json::json!({
            "id": id,
            "address": record.address,
            "started_at": record.started_at,
            "connections": {"customer": record.customers, "agent": record.agents_connected},
            "routing": routes.unwrap_or(false),
            "epoch": routing.as_ref().filter(|_| routes == Some(true)).map(|(_, epoch)| *epoch),
        }));
    }
    nodes.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(axum::Json(serde_json::json!({
        "node": hub.node.id,
        "routing": routing.map(|(node, _)| node),
        "nodes": nodes,
    }))
    .into_response())
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let queued = i64::try_from(hub.send_budget.queued()).unwrap_or(i64::MAX);
    hub.metrics.send_queue_bytes.set(queued);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        hub.metrics.render(),
    )
        .into_response()
}

//! HTTP: the WebSocket endpoints, the REST API, health and metrics, and the embedded
//! web pages. Handlers are thin: they authenticate, validate and call into the hub.

mod agents;
mod auth;
mod conversations;
mod pages;
mod visitors;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, State, WebSocketUpgrade},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, patch, post},
    Json, Router,
};
use serde_json::json;

use crate::{
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
    Router::new()
        .route("/v1/customer/ws", get(customer_ws))
        .route("/v1/agent/ws", get(agent_ws))
        .route("/v1/agents", get(agents::list).post(agents::create))
        .route(
            "/v1/agents/{id}",
            patch(agents::update).delete(agents::remove),
        )
        .route("/v1/conversations", get(conversations::list))
        .route("/v1/conversations/{id}", get(conversations::show))
        .route("/v1/tickets", get(conversations::tickets))
        .route("/v1/tickets/{id}", get(conversations::ticket))
        .route("/v1/stats", get(conversations::stats))
        .route("/v1/config/canned", get(agents::canned))
        .route("/v1/visitors/{id}/revoke", post(visitors::revoke))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(pages::routes())
        .with_state(hub)
}

fn upgrade(hub: Arc<Hub>, ws: WebSocketUpgrade, endpoint: Endpoint, peer: SocketAddr) -> Response {
    // The hard limit sits above the configured one so an oversize frame still reaches
    // the connection, which closes it with 1009 as the contract says.
    let hard_limit = (hub.config.limits.max_frame_bytes * 2).max(1 << 20);
    // Small socket buffers: most connections are idle chats, and 128 KiB of buffers
    // each (the default) would cost more than everything else a connection holds. The
    // writer batches frames itself before each flush. The read buffer is allocated up
    // front for every connection and grows for a large frame, so it is sized for chat
    // frames (a few hundred bytes): 2 KiB still takes a dozen of them per read.
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .read_buffer_size(2 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| {
            // Tracked, so shutdown waits for the connection's Close frame.
            let tracker = hub.tracker.clone();
            tracker.track_future(transport::serve(hub, socket, endpoint, peer.ip()))
        })
}

async fn customer_ws(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(hub, ws, Endpoint::Customer, peer)
}

async fn agent_ws(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(hub, ws, Endpoint::Agent, peer)
}

async fn readyz(State(hub): State<Arc<Hub>>) -> Response {
    match hub.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(cause = %err, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable").into_response()
        }
    }
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        hub.metrics.render(),
    )
        .into_response()
}

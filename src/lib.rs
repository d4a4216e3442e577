//! Switchboard: a real-time live-chat and routing hub.
//!
//! - [`protocol`] — serde types for every wire frame (the contract is `docs/protocol.md`).
//! - [`config`] — flags, environment and the TOML file, validated once.
//! - [`error`] — the one error type, mapped onto the contract's error codes.
//! - [`hub`] — WebSocket connections, conversation membership and ordered fan-out.
//! - [`router`] — pure routing state and decisions (no I/O, time passed in).
//! - [`store`] — everything that talks to Redis, the system of record.
//! - [`tickets`] — the exactly-once flush of closed conversations and the webhook outbox.
//! - [`http`] — REST API, health, metrics and the embedded web pages.
//! - [`auth`], [`metrics`] — credentials; Prometheus metrics per instance.
//!
//! [`Server::start`] connects to Redis and rebuilds state; [`Server::serve`] runs until
//! the shutdown token is cancelled. The binary and the tests both go through them.

#![warn(rust_2018_idioms)]
#![deny(clippy::dbg_macro)]

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod protocol;
pub mod router;
pub mod store;
pub mod tickets;

use std::{sync::Arc, time::Duration};

use dashmap::DashMap;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Config,
    hub::{conversation::Conversations, registry::Registry, routing, Hub},
    metrics::Metrics,
    store::{Store, StoreError},
};

/// Milliseconds since the Unix epoch, the unit of every `ts` on the wire.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach redis")]
    Redis(#[from] StoreError),
    #[error("cannot serve")]
    Io(#[from] std::io::Error),
}

/// A started hub, ready to serve.
pub struct Server {
    hub: Arc<Hub>,
}

impl Server {
    /// Connects to Redis (failing at once if it cannot), rebuilds routing state from it
    /// and starts the background tasks.
    pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Server, StartError> {
        let metrics = Metrics::new();
        let timeout = Duration::from_millis(config.limits.store_timeout_ms);
        let store = Store::connect(&config.redis_url, timeout)
            .await?
            .with_metrics(metrics.clone());
        let session_secret = store.session_secret().await?;
        let tracker = TaskTracker::new();
        let registry = Arc::new(Registry::default());
        let conversations = Conversations::new(
            store.clone(),
            Arc::clone(&registry),
            metrics.clone(),
            shutdown.clone(),
            tracker.clone(),
        );
        let (router, inbox) = routing::channel();
        let tickets = tickets::Tickets::from_config(store.clone(), metrics.clone(), &config);
        let hub = Arc::new(Hub {
            config: Arc::new(config),
            store,
            metrics,
            registry,
            conversations,
            router: router.clone(),
            agents: DashMap::new(),
            session_secret,
            shutdown,
            tracker: tracker.clone(),
            tickets,
        });
        let routing_task = routing::RoutingTask::new(Arc::clone(&hub), router);
        tracker.spawn(routing_task.run(inbox));
        hub::recovery::restore(&hub).await?;
        tracker.spawn(tickets::sweep(Arc::clone(&hub)));
        if hub.config.webhook_url.is_some() {
            tracker.spawn(tickets::webhook::run(Arc::clone(&hub)));
        }
        Ok(Server { hub })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Serves HTTP and WebSockets on `listener` until shutdown, then drains tasks.
    pub async fn serve(self, listener: TcpListener) -> Result<(), StartError> {
        let shutdown = self.hub.shutdown.clone();
        let app = http::app(Arc::clone(&self.hub));
        // Chat frames are small and latency-bound: never let Nagle hold them back.
        let listener =
            axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                if let Err(err) = tcp.set_nodelay(true) {
                    tracing::debug!(cause = %err, "cannot set TCP_NODELAY");
                }
            });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;
        shutdown.cancel();
        self.hub.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.hub.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not finish within the drain time");
        }
        Ok(())
    }
}

/// Starts and serves in one call (what tests usually want).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    Server::start(config, shutdown).await?.serve(listener).await
}

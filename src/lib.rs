//! Switchboard: a real-time live-chat and routing hub.
//!
//! One folder (or file) per job; arrows only point down this list, never back:
//! - [`simulate`] — the what-if simulator: traffic replayed through the router core on
//!   a virtual clock (`switchboard simulate`);
//! - [`http`] — REST API, health, metrics, the embedded pages, WebSocket upgrades;
//! - [`transport`] — one task per socket: `hello`, reader loop, bounded writer, pings,
//!   close codes;
//! - [`session`] — what each role may ask (dispatched once per frame);
//! - [`hub`] — the handles a node gives its sessions and handlers (owns nothing);
//! - [`routing`] — the task owning the pure router core, and the effects of its commands;
//! - [`conversation`] — one task per conversation, the only writer of its events;
//! - [`reports`] — hourly aggregates of tickets, ratings and agent time, and the reports
//!   assembled from them;
//! - [`attachments`] — uploaded files: the object store, upload checks, expiry;
//! - [`tickets`] — the exactly-once flush of closed conversations and the webhook outbox;
//! - [`admission`] — connection caps, the accept loop, client addresses and origins;
//! - [`registry`] — who is connected (bounded send queues by party);
//! - [`directory`] — agent profiles for permissions and names;
//! - [`node`] — this node among the others: heartbeat, and the dispatch of the live feed;
//! - [`store`] — every Redis call and key, the system of record;
//! - [`router`] — pure routing state and decisions (no I/O, time passed in);
//! - [`protocol`] — every wire frame, typed; [`config`], [`hours`], [`error`], [`auth`],
//!   [`metrics`], [`clock`], [`canned`] (the rules of canned responses) — the leaves.
//!
//! [`Server::start`] connects to Redis, wires the owners together and rebuilds state;
//! [`Server::serve`] runs until the shutdown token is cancelled. The binary and the tests
//! both go through them.

#![warn(rust_2018_idioms)]
#![deny(clippy::dbg_macro)]

pub mod admission;
pub mod attachments;
pub mod auth;
pub mod canned;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod directory;
pub mod error;
#[cfg(feature = "failpoints")]
mod failpoint;
pub mod hours;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod registry;
pub mod reports;
pub mod router;
pub mod routing;
pub mod session;
pub mod simulate;
pub mod store;
pub mod tickets;
pub mod transport;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Config,
    conversation::{ConversationDeps, Conversations, OnClosed},
    directory::Directory,
    hub::Hub,
    metrics::Metrics,
    node::NodeParts,
    registry::Registry,
    reports::Reports,
    routing::{leadership, RouterHandle, RoutingDeps},
    store::{Feed, Store, StoreError},
    tickets::Tickets,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach redis")]
    Redis(#[from] StoreError),
    #[error("cannot serve")]
    Io(#[from] std::io::Error),
    #[error("bad [attachments.store]: {0}")]
    Attachments(String),
}

/// A started hub, ready to serve.
pub struct Server {
    hub: Arc<Hub>,
}

impl Server {
    /// Connects to Redis (failing at once if it cannot), rebuilds routing state from it
    /// and starts the background tasks.
    pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Server, StartError> {
        let config = Arc::new(config);
        let node_id = config.node_id.clone();
        let metrics = Metrics::for_node(&node_id);
        let timeout = Duration::from_millis(config.limits.store_timeout_ms);
        let store = Store::connect(&config.redis_url, timeout)
            .await?
            .with_metrics(metrics.clone());
        let attachments =
            attachments::Attachments::new(&config.attachments).map_err(StartError::Attachments)?;
        let session_secret = store.session_secret().await?;
        seed_canned(&store, &config).await?;
        let tracker = TaskTracker::new();
        let registry = Arc::new(Registry::default());
        // Tickets and ratings reach the reports through the flush; agent time through the
        // routing task (`routing/desk.rs`).
        let reports = Reports::new(store.clone(), &config).with_metrics(metrics.clone());
        let tickets = Tickets::from_config(store.clone(), metrics.clone(), &config)
            .with_sink(Arc::new(reports.clone()));
        let (feed, feed_starter) = Feed::new(store.clone(), &config.redis_url, &node_id);
        // Every node hears the router channel: requests, answers, frames for its clients.
        feed.subscribe(store::keys::router_channel(), None);
        let router = RouterHandle::new(&node_id, store.clone(), Arc::clone(&registry));
        let conversations = Conversations::new(ConversationDeps {
            store: store.clone(),
            registry: Arc::clone(&registry),
            metrics: metrics.clone(),
            on_closed: on_closed(&config, &router, &tickets, &store, &tracker),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            feed: feed.clone(),
            node_id: node_id.clone(),
            replicated_acks: config.limits.replicated_acks,
            armed: config.failpoint.clone(),
        });
        let agents = Arc::new(Directory::default());
        routing::recovery::load_directory(&store, &agents).await?;
        let nudge = Arc::new(tokio::sync::Notify::new());
        let node = NodeParts {
            id: node_id.clone(),
            address: String::new(),
            started_at: crate::clock::now_ms(),
            store: store.clone(),
            registry: Arc::clone(&registry),
            conversations: Arc::clone(&conversations),
            router: router.clone(),
            directory: Arc::clone(&agents),
            nudge: Arc::clone(&nudge),
        };
        feed_starter.start(node::feed_handler(node.clone()), shutdown.clone(), &tracker);
        let candidate = leadership::Candidate {
            deps: RoutingDeps {
                config: Arc::clone(&config),
                store: store.clone(),
                metrics: metrics.clone(),
                registry: Arc::clone(&registry),
                conversations: Arc::clone(&conversations),
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
                reports: reports.clone(),
            },
            router: router.clone(),
            tickets: tickets.clone(),
            directory: Arc::clone(&agents),
            first: Default::default(),
        };
        // The first election runs before serving, so a lone node routes from its first
        // client on.
        leadership::first_election(&candidate).await;
        tracker.spawn(leadership::run(candidate, nudge));
        tracker.spawn(tickets::sweep(tickets.clone(), shutdown.clone()));
        tracker.spawn(attachments::sweep(
            attachments.clone(),
            store.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        if config.webhook_url.is_some() {
            tracker.spawn(tickets::webhook::run(
                Arc::clone(&config),
                store.clone(),
                metrics.clone(),
                shutdown.clone(),
            ));
        }
        let fd_limit = admission::listen::raise_fd_limit();
        let caps = admission::Caps::resolve(&config.limits, fd_limit);
        tracing::info!(fd_limit, ?caps, "connection caps");
        if (caps.ws_total + caps.http_total) as u64 > fd_limit {
            tracing::warn!(
                fd_limit,
                ?caps,
                "the connection caps exceed the descriptor limit: accept will run short (and back off) before the caps refuse"
            );
        }
        let admission =
            admission::Admission::new(caps, &config.access.trusted_proxies, metrics.clone());
        let send_budget = registry::SendBudget::new(config.limits.send_queue_bytes_total);
        let hub = Arc::new(Hub {
            config,
            store,
            metrics,
            registry,
            conversations,
            router,
            agents,
            tickets,
            reports,
            session_secret,
            shutdown,
            tracker,
            admission,
            send_budget,
            feed,
            node,
            attachments,
        });
        Ok(Server { hub })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Serves HTTP and WebSockets on `listener` until shutdown, then drains tasks.
    pub async fn serve(self, listener: TcpListener) -> Result<(), StartError> {
        let shutdown = self.hub.shutdown.clone();
        let mut node = self.hub.node.clone();
        node.address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        self.hub
            .tracker
            .spawn(node::heartbeat(node, shutdown.clone()));
        let app = http::app(Arc::clone(&self.hub));
        admission::listen::serve(
            listener,
            app,
            Arc::clone(&self.hub.admission),
            Duration::from_millis(self.hub.config.limits.header_read_timeout_ms),
            shutdown.clone(),
            self.hub.tracker.clone(),
        )
        .await;
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

/// The config's `[[canned_responses]]` go to Redis once per deployment, at the first
/// start that lists any, when Redis holds none (issue 18): afterwards Redis is the
/// record and the REST API changes it.
async fn seed_canned(store: &Store, config: &Config) -> Result<(), StoreError> {
    if config.canned_responses.is_empty() {
        return Ok(());
    }
    let now = clock::now_ms();
    let records: Vec<store::CannedRecord> = config
        .canned_responses
        .iter()
        .map(|entry| store::CannedRecord {
            id: auth::random_id("cr_"),
            shortcut: entry.shortcut().to_string(),
            text: entry.text.clone(),
            topic: entry.topic.clone(),
            updated_at: now,
        })
        .collect();
    let stored = store.seed_canned(&records).await?;
    if stored > 0 {
        tracing::info!(stored, "canned responses seeded from the config");
    }
    Ok(())
}

/// What follows a stored `closed`: the router frees the slot, and the ticket is flushed
/// (or left to the sweep when Redis fails).
fn on_closed(
    config: &Config,
    router: &RouterHandle,
    tickets: &Tickets,
    store: &Store,
    tracker: &TaskTracker,
) -> OnClosed {
    let (router, tickets, tracker) = (router.clone(), tickets.clone(), tracker.clone());
    let store = store.clone();
    #[cfg(feature = "failpoints")]
    let armed = config.failpoint.clone();
    #[cfg(not(feature = "failpoints"))]
    let _ = config;
    Arc::new(move |conversation_id: &str, milestones| {
        let (router, tickets, store) = (router.clone(), tickets.clone(), store.clone());
        #[cfg(feature = "failpoints")]
        let armed = armed.clone();
        let id = conversation_id.to_string();
        tracker.spawn(async move {
            // The agent's room in the ledger is freed before the router frees it: the
            // router may offer that room at once, and the accept's reservation must find
            // it free in Redis too (safe to repeat; the sweep retries a failed flush).
            if let Err(err) = store.free_reservation(&id).await {
                tracing::warn!(conversation_id = %id, cause = %err, "reservation not freed");
            }
            router.closed(&id);
            #[cfg(feature = "failpoints")]
            failpoint::hit(armed.as_deref(), "after_close_before_flush");
            tickets.flush_or_defer(&id, milestones).await
        });
    })
}

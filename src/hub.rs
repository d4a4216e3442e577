//! The handles one hub node gives its sessions and HTTP handlers (the axum state). It
//! owns no mutable state itself: each piece has its owner (the conversation tasks, the
//! routing task, the registry, the directory, Redis) and this only holds the way to it.
//! Background workers (routing, tickets) are handed what they use, never this.

use std::sync::Arc;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admission::Admission,
    attachments::Attachments,
    config::Config,
    conversation::Conversations,
    directory::Directory,
    metrics::Metrics,
    node::NodeParts,
    registry::{Registry, SendBudget},
    reports::Reports,
    routing::RouterHandle,
    store::{Feed, Store},
    tickets::Tickets,
};

pub struct Hub {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Metrics,
    /// Who is connected, by party.
    pub registry: Arc<Registry>,
    /// The conversation tasks.
    pub conversations: Arc<Conversations>,
    /// The routing task.
    pub router: RouterHandle,
    /// Agent profiles for permissions and names.
    pub agents: Arc<Directory>,
    pub tickets: Tickets,
    /// Report aggregates: `GET /v1/reports` reads them; agent state changes are
    /// recorded through it (`Reports::record_agent_state`).
    pub reports: Reports,
    /// Signs visitor sessions (the same for every node, from Redis).
    pub session_secret: String,
    pub shutdown: CancellationToken,
    /// Every task the node spawns, drained at shutdown.
    pub tracker: TaskTracker,
    /// Connection caps (issue 15 part A).
    pub admission: Arc<Admission>,
    /// Queued outbound bytes of all connections together.
    pub send_budget: Arc<SendBudget>,
    /// The live feed from Redis (`/readyz` fails while it is lost).
    pub feed: Feed,
    /// This node among the others (`GET /v1/nodes`).
    pub node: NodeParts,
    /// Uploaded files: the object store and the upload limits.
    pub attachments: Attachments,
}

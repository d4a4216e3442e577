//! The hub: WebSocket connections, conversation membership and fan-out, and the
//! operations on conversations that both roles share (start, close, ticket flush).
//!
//! - `connection` — one task per socket: handshake, reader loop, bounded writer.
//! - `customer`, `agent` — what each role may ask for; `requests` — what both share.
//! - `conversation` — one task per active conversation: ordered delivery.
//! - `registry` — connections by party, bounded send queues.
//! - `routing` — the task that owns the router core and carries out its decisions.
//! - `recovery` — rebuilding state from Redis at start-up.
//! - `throttle` — at most once per interval (the routing task's gauges).

pub mod agent;
pub mod connection;
pub mod conversation;
pub mod customer;
pub mod recovery;
pub mod registry;
pub mod requests;
pub mod routing;
pub mod throttle;

use std::sync::Arc;

use dashmap::DashMap;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::{
    conversation::{AppendRequest, Author, Conversations, Permission},
    registry::{ConnTx, Registry},
    routing::RouterHandle,
};
use crate::{
    config::Config,
    error::{Error, Result},
    metrics::Metrics,
    protocol::{AckBody, EventBody, Party},
    store::{AgentRecord, AppendOutcome, Requirement, Store},
};

/// Shared state of one hub instance. Mutable parts are sharded maps or owned by tasks.
pub struct Hub {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Metrics,
    pub registry: Arc<Registry>,
    pub conversations: Arc<Conversations>,
    pub router: RouterHandle,
    /// Agent profiles, loaded at start and kept current by the HTTP API.
    pub agents: DashMap<String, AgentRecord>,
    pub session_secret: String,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub tickets: crate::tickets::Tickets,
}

impl Hub {
    pub fn agent_name(&self, id: &str) -> String {
        self.agents
            .get(id)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    /// Closes a conversation: stores the `closed` event (once), frees the router's slot
    /// and flushes the ticket. The ack (if any) carries the seq and ticket id.
    pub async fn close_conversation(
        self: &Arc<Self>,
        conversation_id: &str,
        author: Author,
        by: Party,
        resolution: String,
        tags: Vec<String>,
        ack: Option<(ConnTx, String)>,
    ) -> Result<(u64, String)> {
        let ticket_id = format!(
            "t_{}",
            self.store
                .next_id(&crate::store::keys::ticket_counter())
                .await?
        );
        let closed_at = crate::now_ms();
        let request = AppendRequest {
            author,
            permission: Permission::Member,
            body: EventBody::Closed {
                by,
                resolution: resolution.clone(),
                ticket_id: ticket_id.clone(),
            },
            client_msg_id: None,
            requirement: Requirement::Open,
            updates: vec![
                ("state", "closed".into()),
                ("closed_at", closed_at.to_string()),
                ("ticket_id", ticket_id.clone()),
                ("resolution", resolution),
                (
                    "tags",
                    serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
                ),
            ],
            ack: ack.map(|(conn, req)| {
                (
                    conn,
                    req,
                    AckBody {
                        ticket_id: Some(ticket_id.clone()),
                        ..AckBody::default()
                    },
                )
            }),
            errors_to: None,
        };
        match self.conversations.append(conversation_id, request).await? {
            AppendOutcome::Stored(seq) => {
                self.router.closed(conversation_id);
                crate::tickets::failpoint("after_close_before_flush");
                let hub = Arc::clone(self);
                let id = conversation_id.to_string();
                self.tracker
                    .spawn(async move { hub.tickets.flush_or_defer(&id).await });
                Ok((seq, ticket_id))
            }
            AppendOutcome::Duplicate(seq) => Ok((seq, ticket_id)),
            AppendOutcome::NotFound => Err(Error::not_found(format!(
                "no conversation {conversation_id}"
            ))),
            AppendOutcome::WrongState => Err(Error::conflict(format!(
                "{conversation_id} is already closed"
            ))),
        }
    }
}

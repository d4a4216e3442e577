//! Routing: the task that owns the pure router core (`crate::router`), feeds it what
//! happens (agents connecting, status changes, new conversations, answers to offers, the
//! clock) and carries out its commands. The core holds every routing fact (status, load,
//! owners, pending transfers); this module keeps only what the core has no use for
//! (what an offer shows of a conversation, the last queue position told).
//!
//! - this file — the handle others talk to the task through, and its messages;
//! - `task` — the loop and what each message does;
//! - `effects` — carrying out the core's commands (frames, stored joins and hand-offs);
//! - `rules` — the configuration as the core takes it;
//! - `recovery` — rebuilding routing state from Redis at start-up;
//! - `throttle` — at most once per interval (the queue gauges).

mod effects;
pub mod recovery;
mod rules;
mod task;
mod throttle;

use tokio::sync::{mpsc, oneshot};

pub use self::{
    rules::router_config,
    task::{RoutingDeps, RoutingTask},
};
use crate::{
    conversation::Ack,
    error::{Error, Result},
    protocol::{AgentStatus, CustomerInfo},
    router,
    store::AgentRecord,
};

/// A conversation handed to the router, with what offers show about it.
#[derive(Debug, Clone)]
pub struct QueuedConversation {
    pub id: String,
    pub visitor_id: String,
    pub topic: String,
    pub customer: CustomerInfo,
    pub preview: String,
    /// Wall-clock ms when the wait started (kept through re-queues and transfers).
    pub waiting_since_ms: u64,
    pub preferred_agent: Option<String>,
    pub customer_present: bool,
}

/// Where a conversation is handed to.
#[derive(Debug, Clone)]
pub enum Target {
    Agent(String),
    Topic(String),
}

pub(crate) enum Msg {
    AgentConnected {
        agent: String,
        reply: oneshot::Sender<(AgentStatus, Vec<String>)>,
    },
    AgentDisconnected {
        agent: String,
    },
    SetStatus {
        agent: String,
        status: AgentStatus,
        reply: oneshot::Sender<Result<AgentStatus>>,
    },
    UpsertAgent(AgentRecord),
    RemoveAgent(String),
    Enqueue(Box<QueuedConversation>),
    Restore {
        conversation: Box<QueuedConversation>,
        agent: Option<String>,
    },
    Accept {
        agent: String,
        offer_id: String,
        ack: Option<Ack>,
        reply: oneshot::Sender<Result<()>>,
    },
    Decline {
        agent: String,
        offer_id: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Closed {
        conversation: String,
    },
    Transfer {
        conversation: String,
        requester: String,
        target: Target,
        note: Option<String>,
    },
    CustomerPresence {
        conversation: String,
        present: bool,
    },
    AssignmentFailed {
        agent: String,
        conversation: String,
    },
    Online {
        reply: oneshot::Sender<bool>,
    },
    Stats {
        reply: oneshot::Sender<router::RouterStats>,
    },
    /// How many conversations wait in a topic (abuse-b: the `max_waiting` cap).
    Waiting {
        topic: String,
        reply: oneshot::Sender<usize>,
    },
}

/// Cheap handle to the routing task.
#[derive(Clone)]
pub struct RouterHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

/// The receiving end, consumed when the task starts.
pub struct RouterInbox(pub(crate) mpsc::UnboundedReceiver<Msg>);

pub fn channel() -> (RouterHandle, RouterInbox) {
    // Unbounded on purpose: every message is small and produced by a client request
    // that is itself rate limited; a bounded queue would let one slow decision block
    // unrelated connections' reader loops.
    let (tx, rx) = mpsc::unbounded_channel();
    (RouterHandle { tx }, RouterInbox(rx))
}

impl RouterHandle {
    pub(crate) fn tell(&self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            tracing::debug!("router task has stopped (shutting down)");
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Msg) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tell(make(reply));
        answer.await.ok()
    }

    /// A connection of the agent arrived: its status now (the one it had before its
    /// connections last dropped) and the conversations it holds.
    pub async fn agent_connected(&self, agent: &str) -> (AgentStatus, Vec<String>) {
        let agent = agent.to_string();
        self.ask(|reply| Msg::AgentConnected { agent, reply })
            .await
            .unwrap_or((AgentStatus::Away, Vec::new()))
    }

    pub fn agent_disconnected(&self, agent: &str) {
        self.tell(Msg::AgentDisconnected {
            agent: agent.to_string(),
        });
    }

    pub async fn set_status(&self, agent: &str, status: AgentStatus) -> Result<AgentStatus> {
        let agent = agent.to_string();
        self.ask(|reply| Msg::SetStatus {
            agent,
            status,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
    }

    pub fn upsert_agent(&self, agent: AgentRecord) {
        self.tell(Msg::UpsertAgent(agent));
    }

    pub fn remove_agent(&self, agent: &str) {
        self.tell(Msg::RemoveAgent(agent.to_string()));
    }

    pub fn enqueue(&self, conversation: QueuedConversation) {
        self.tell(Msg::Enqueue(Box::new(conversation)));
    }

    pub fn restore(&self, conversation: QueuedConversation, agent: Option<String>) {
        self.tell(Msg::Restore {
            conversation: Box::new(conversation),
            agent,
        });
    }

    pub async fn accept(&self, agent: &str, offer_id: &str, ack: Option<Ack>) -> Result<()> {
        let (agent, offer_id) = (agent.to_string(), offer_id.to_string());
        self.ask(|reply| Msg::Accept {
            agent,
            offer_id,
            ack,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
    }

    pub async fn decline(&self, agent: &str, offer_id: &str) -> Result<()> {
        let (agent, offer_id) = (agent.to_string(), offer_id.to_string());
        self.ask(|reply| Msg::Decline {
            agent,
            offer_id,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
    }

    pub fn closed(&self, conversation: &str) {
        self.tell(Msg::Closed {
            conversation: conversation.to_string(),
        });
    }

    /// Hands a conversation to `target`; `requester` hears if it fails.
    pub fn transfer(
        &self,
        conversation: String,
        requester: String,
        target: Target,
        note: Option<String>,
    ) {
        self.tell(Msg::Transfer {
            conversation,
            requester,
            target,
            note,
        });
    }

    pub fn customer_presence(&self, conversation: &str, present: bool) {
        self.tell(Msg::CustomerPresence {
            conversation: conversation.to_string(),
            present,
        });
    }

    pub async fn online(&self) -> bool {
        self.ask(|reply| Msg::Online { reply })
            .await
            .unwrap_or(false)
    }

    pub async fn stats(&self) -> Option<router::RouterStats> {
        self.ask(|reply| Msg::Stats { reply }).await
    }

    /// How many conversations wait in `topic` (offered or not); 0 for an unknown topic.
    /// Cheap: the length of the topic's queue.
    pub async fn waiting(&self, topic: &str) -> usize {
        let topic = topic.to_string();
        self.ask(|reply| Msg::Waiting { topic, reply })
            .await
            .unwrap_or(0)
    }

    /// Each agent's routing state (status, load) for `GET /v1/agents`.
    pub async fn agents(&self) -> Vec<router::AgentStats> {
        self.stats().await.map(|s| s.agents).unwrap_or_default()
    }
}

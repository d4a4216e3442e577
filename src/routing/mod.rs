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

pub mod bus;
mod desk;
mod effects;
mod fanout;
pub mod leadership;
mod link;
pub mod recovery;
pub mod rules;
mod task;
mod throttle;

use std::sync::Arc;

use tokio::sync::oneshot;

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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Target {
    Agent(String),
    Topic(String),
}

/// Who is there to chat, as customers are told (`welcome.online`, `presence`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Staffing {
    /// Any agent available (or in wrap-up): the contract's `welcome.online`.
    pub any: bool,
    /// Per topic: an agent who could take its chats is available (`staffed_topics`).
    pub topics: Vec<(String, bool)>,
}

pub(crate) enum Msg {
    /// A connection of the agent arrived at `node`.
    AgentConnected {
        agent: String,
        node: String,
        reply: oneshot::Sender<(AgentStatus, Vec<String>)>,
    },
    /// The last connection of the agent at `node` closed.
    AgentDisconnected {
        agent: String,
        node: String,
    },
    SetStatus {
        agent: String,
        status: AgentStatus,
        /// With Away: the reason the agent chose.
        reason: Option<String>,
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
        /// The ack of an accepting connection on this node, or one on another node.
        /// Boxed: an ack holds a whole `AckBody`, and this message shares its enum with
        /// small ones.
        ack: Option<Box<Ack>>,
        remote_ack: Option<crate::conversation::RemoteAck>,
        /// The conversation and the seq of its `joined`.
        reply: oneshot::Sender<Result<(String, u64)>>,
    },
    Decline {
        agent: String,
        offer_id: String,
        reply: oneshot::Sender<Result<()>>,
    },
    /// A queued conversation given to an agent by a person (taken or assigned).
    Claim {
        conversation: String,
        agent: String,
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
    /// A `joined` was stored: the agent's nodes hear the conversation from `seq`.
    Joined {
        agent: String,
        conversation: String,
        seq: u64,
        /// The accept's ack owed to a tab at another node.
        ack: Option<crate::conversation::RemoteAck>,
    },
    /// Which of these conversations the router does not know.
    Unknown {
        ids: Vec<String>,
        reply: oneshot::Sender<Vec<String>>,
    },
    /// A routing write was refused by Redis: re-read the conversation and follow it.
    Reconcile {
        conversation: String,
    },
    /// The record of a conversation being reconciled (`None`: gone or closed).
    Reconciled {
        conversation: String,
        owner: Option<Option<String>>,
    },
    /// Rebuilding: the status the agent chose before, taken back when it connects.
    RestoreStatus {
        agent: String,
        status: AgentStatus,
    },
    /// The live nodes and the agents connected at each (heartbeats): agents of nodes
    /// that died are disconnected.
    Nodes(Vec<(String, Vec<String>)>),
    /// Whether any agent is available, and per topic whether one who could take it is.
    Online {
        reply: oneshot::Sender<Staffing>,
    },
    Stats {
        reply: oneshot::Sender<router::RouterStats>,
    },
    /// The first `limit` queued conversations in serving order (`GET /v1/queue`).
    Queued {
        limit: usize,
        reply: oneshot::Sender<Vec<String>>,
    },
    /// How many conversations wait in a topic (abuse-b: the `max_waiting` cap).
    Waiting {
        topic: String,
        reply: oneshot::Sender<usize>,
    },
}

/// The receiving end of a routing task's inbox.
pub struct RouterInbox(pub(crate) tokio::sync::mpsc::UnboundedReceiver<Msg>);

/// Cheap handle to the routing task, wherever it runs (`link`).
#[derive(Clone)]
pub struct RouterHandle {
    link: Arc<link::Link>,
}

impl RouterHandle {
    pub fn new(
        node_id: &str,
        store: crate::store::Store,
        registry: Arc<crate::registry::Registry>,
    ) -> Self {
        RouterHandle {
            link: Arc::new(link::Link::new(node_id.to_string(), store, registry)),
        }
    }

    pub(crate) fn tell(&self, msg: Msg) {
        self.link.tell(msg);
    }

    pub fn node_id(&self) -> &str {
        &self.link.node_id
    }

    /// Whether this node routes now.
    pub fn is_routing(&self) -> bool {
        self.link.leading().is_some()
    }

    /// A message from the router channel (`bus`), for the node to act on.
    pub fn bus_request(&self, from: String, id: u64, request: bus::Request) {
        self.link.serve(from, id, request);
    }

    pub fn bus_reply(&self, id: u64, reply: bus::Reply) {
        self.link.replied(id, reply);
    }

    /// A node announced on the bus that it routes now, at `epoch`.
    pub fn leader_announced(&self, epoch: u64) {
        self.link.leader_announced(epoch);
    }

    pub(crate) fn publish(&self, message: &bus::BusMessage) {
        self.link.publish(message);
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
        let node = self.node_id().to_string();
        let asked = agent.clone();
        match self
            .ask(|reply| Msg::AgentConnected { agent, node, reply })
            .await
        {
            Some(answer) => answer,
            // No routing node right now (one is taking over): what the agent holds is
            // in the ledger; it starts away, and is announced again to the next one.
            None => (AgentStatus::Away, self.held_by_ledger(&asked).await),
        }
    }

    /// The conversations the ledger has `agent` serving and the record agrees: a
    /// routing node that died between a reservation and the `joined` it fenced left the
    /// ledger naming an agent that never joined (the next routing node rewrites it).
    async fn held_by_ledger(&self, agent: &str) -> Vec<String> {
        let store = &self.link.store;
        let mut held = Vec::new();
        for conversation in store.conversations_of(agent).await.unwrap_or_default() {
            match store.conversation(&conversation).await {
                Ok(Some(record)) if record.agent.as_deref() != Some(agent) => {}
                // Unreadable now: listed, as the ledger says (its history tells the rest).
                _ => held.push(conversation),
            }
        }
        held
    }

    pub fn agent_disconnected(&self, agent: &str) {
        self.tell(Msg::AgentDisconnected {
            agent: agent.to_string(),
            node: self.node_id().to_string(),
        });
    }

    pub async fn set_status(
        &self,
        agent: &str,
        status: AgentStatus,
        reason: Option<String>,
    ) -> Result<AgentStatus> {
        let agent = agent.to_string();
        self.ask(|reply| Msg::SetStatus {
            agent,
            status,
            reason,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
    }

    /// A profile changed (REST): the router and every other node's directory hear it.
    pub fn upsert_agent(&self, agent: AgentRecord) {
        self.publish(&bus::BusMessage::Agent {
            from: self.node_id().to_string(),
            id: agent.id.clone(),
            record: Some(Box::new(agent.clone())),
        });
        self.tell(Msg::UpsertAgent(agent));
    }

    pub fn remove_agent(&self, agent: &str) {
        self.publish(&bus::BusMessage::Agent {
            from: self.node_id().to_string(),
            id: agent.to_string(),
            record: None,
        });
        self.tell(Msg::RemoveAgent(agent.to_string()));
    }

    pub fn enqueue(&self, conversation: QueuedConversation) {
        self.tell(Msg::Enqueue(Box::new(conversation)));
    }

    pub async fn accept(&self, agent: &str, offer_id: &str, ack: Option<Ack>) -> Result<()> {
        let (agent, offer_id) = (agent.to_string(), offer_id.to_string());
        self.ask(|reply| Msg::Accept {
            agent,
            offer_id,
            ack: ack.map(Box::new),
            remote_ack: None,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
        .map(|_| ())
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

    /// Gives a queued conversation to `agent` (it takes it, or a supervisor assigns it).
    pub async fn claim(&self, conversation: &str, agent: &str) -> Result<()> {
        let (conversation, agent) = (conversation.to_string(), agent.to_string());
        self.ask(|reply| Msg::Claim {
            conversation,
            agent,
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

    /// On the routing node: which of `ids` the router does not know.
    pub async fn unknown(&self, ids: Vec<String>) -> Vec<String> {
        if !self.is_routing() {
            return Vec::new();
        }
        self.ask(|reply| Msg::Unknown { ids, reply })
            .await
            .unwrap_or_default()
    }

    /// On the routing node: the live nodes and their agents (heartbeats).
    pub fn live_nodes(&self, live: Vec<(String, Vec<String>)>) {
        if self.is_routing() {
            self.tell(Msg::Nodes(live));
        }
    }

    pub fn customer_presence(&self, conversation: &str, present: bool) {
        self.tell(Msg::CustomerPresence {
            conversation: conversation.to_string(),
            present,
        });
    }

    /// Who is there to chat: any agent at all, and per topic one who could take its
    /// chats; nobody when the routing node cannot be asked.
    pub async fn staffing(&self) -> Staffing {
        self.ask(|reply| Msg::Online { reply })
            .await
            .unwrap_or_default()
    }

    pub async fn stats(&self) -> Option<router::RouterStats> {
        self.ask(|reply| Msg::Stats { reply }).await
    }

    /// The first `limit` queued conversations, in serving order of their topics.
    pub async fn queued(&self, limit: usize) -> Option<Vec<String>> {
        self.ask(|reply| Msg::Queued { limit, reply }).await
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

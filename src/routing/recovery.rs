//! Taking routing over: rebuild the router's state from Redis (and finish the tickets
//! of conversations closed but not flushed), so a new routing node or a restarted hub
//! carries on where the last one stopped. Offers in flight are not stored: their
//! conversations are simply queued again and re-offered. Who is connected comes from
//! the live nodes' heartbeats: agents connected to none start their grace period.

use std::collections::HashMap;

use tokio::sync::mpsc::UnboundedSender;

use super::{Msg, QueuedConversation};
use crate::{
    directory::Directory,
    protocol::{AgentStatus, CustomerInfo},
    store::{Store, StoreResult},
    tickets::Tickets,
};

/// What a node's heartbeat says (`GET /v1/nodes` shows it too).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub address: String,
    pub started_at: u64,
    pub customers: usize,
    pub agents_connected: usize,
    /// Agents with a connection at this node.
    pub agents: Vec<String>,
    /// How many connections each of those agents has here.
    #[serde(default)]
    pub agent_tabs: std::collections::BTreeMap<String, usize>,
    pub routing: bool,
}

fn parse_status(text: &str) -> Option<AgentStatus> {
    match text {
        "available" => Some(AgentStatus::Available),
        "away" => Some(AgentStatus::Away),
        _ => None,
    }
}

/// Every node at start-up: the agent profiles its sessions check permissions with.
pub async fn load_directory(store: &Store, directory: &Directory) -> StoreResult<()> {
    for agent in store.agents().await? {
        directory.insert(agent);
    }
    Ok(())
}

/// Feeds a new routing task everything it needs, straight into its inbox: the task
/// serves nobody else until this is done, so no answer comes from a half-built router.
pub(crate) async fn rebuild(
    store: &Store,
    epoch: u64,
    inbox: &UnboundedSender<Msg>,
    tickets: &Tickets,
    directory: &Directory,
) -> StoreResult<()> {
    let router = Inbox(inbox);
    for agent in store.agents().await? {
        directory.insert(agent.clone());
        router.tell(Msg::UpsertAgent(agent));
    }
    let mut restored = 0usize;
    let mut assignments = Vec::new();
    for id in store.open_conversation_ids().await? {
        let Some(record) = store.conversation(&id).await? else {
            // The index was written but the create never ran.
            store.forget_open(&id).await?;
            continue;
        };
        if !record.is_open() {
            if record.flushed {
                store.finish_conversation(&record).await?;
            } else {
                tickets.flush_or_defer(&id, None).await;
            }
            continue;
        }
        if let Some(agent) = &record.agent {
            assignments.push((record.id.clone(), agent.clone()));
        }
        // Nobody is known to be here yet: the nodes tell who is (`node::announce`).
        let conversation = queued_from(&record, false);
        router.tell(Msg::Restore {
            conversation: Box::new(conversation),
            agent: record.agent.clone(),
        });
        restored += 1;
    }
    // The records are the truth the router was just given; capacity is checked against
    // the ledger, so it says the same (a reservation whose `joined` was never stored
    // counted the wrong agent).
    // Not rewritten, the router still routes by the records; the rest of the rebuild
    // goes on either way.
    match store.rewrite_ledger(epoch, &assignments).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(epoch, "ledger not rewritten: a later epoch routes"),
        Err(err) => tracing::warn!(epoch, cause = %err, "ledger not rewritten"),
    }
    // Who is connected where, by the nodes' heartbeats; the rest start their grace.
    let mut connected: HashMap<String, Vec<String>> = HashMap::new();
    for (node, record) in store.live_nodes().await? {
        if let Ok(record) = serde_json::from_str::<NodeRecord>(&record) {
            for agent in record.agents {
                connected.entry(agent).or_default().push(node.clone());
            }
        }
    }
    let statuses = store.statuses().await?;
    for agent in directory.ids() {
        // The status it chose comes back with its (next) connection.
        if let Some(status) = statuses.get(&agent).and_then(|s| parse_status(s)) {
            router.tell(Msg::RestoreStatus {
                agent: agent.clone(),
                status,
            });
        }
        match connected.remove(&agent) {
            Some(nodes) => {
                for node in nodes {
                    let (reply, _not_needed) = tokio::sync::oneshot::channel();
                    router.tell(Msg::AgentConnected {
                        agent: agent.clone(),
                        node,
                        reply,
                    });
                }
            }
            None => router.tell(Msg::AgentDisconnected {
                agent: agent.clone(),
                node: String::new(),
            }),
        }
    }
    tracing::info!(
        conversations = restored,
        agents = directory.len(),
        "state restored from redis"
    );
    Ok(())
}

/// The routing task's inbox, told like a handle.
struct Inbox<'a>(&'a UnboundedSender<Msg>);

impl Inbox<'_> {
    fn tell(&self, msg: Msg) {
        let _stopped_means_stepped_down = self.0.send(msg);
    }
}

/// What the router needs of an open conversation, from its record.
fn queued_from(
    record: &crate::store::ConversationRecord,
    customer_present: bool,
) -> QueuedConversation {
    QueuedConversation {
        id: record.id.clone(),
        visitor_id: record.visitor_id.clone(),
        topic: record.topic.clone(),
        customer: CustomerInfo {
            id: record.visitor_id.clone(),
            name: record.customer_name.clone(),
            email: record.customer_email.clone(),
            verified: record.verified,
            verified_fields: None,
        },
        preview: record.preview.clone(),
        waiting_since_ms: record.waiting_since,
        preferred_agent: None,
        customer_present,
    }
}

/// On the routing node, now and then: open conversations the router does not know (their
/// `Enqueue` went to a node that stopped routing before it was rebuilt elsewhere) are
/// taken in, so no conversation is stranded.
pub async fn adopt_unknown(store: &Store, router: &super::RouterHandle) -> StoreResult<usize> {
    let ids = store.open_conversation_ids().await?;
    let unknown = router.unknown(ids).await;
    let mut adopted = 0;
    for id in unknown {
        let Some(record) = store.conversation(&id).await? else {
            continue;
        };
        if !record.is_open() {
            continue;
        }
        tracing::info!(conversation_id = %id, "routing takes in a conversation it did not know");
        router.tell(Msg::Restore {
            conversation: Box::new(queued_from(&record, true)),
            agent: record.agent.clone(),
        });
        adopted += 1;
    }
    Ok(adopted)
}

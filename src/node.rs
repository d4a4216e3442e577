//! This node among the others: its heartbeat (what `GET /v1/nodes` lists and how the
//! routing node learns who is connected where and which nodes died), and the dispatch
//! of what the live feed brings — conversation hints to the conversation tasks, router
//! channel messages to the routing link, frames from the routing node to this node's
//! connections.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    conversation::Conversations,
    directory::Directory,
    registry::{Kick, PartyKey, Registry},
    routing::{
        bus::{BusMessage, Party},
        leadership::Nudge,
        recovery::NodeRecord,
        RouterHandle,
    },
    store::{keys, FeedHandler, FeedMessage, Store},
};

/// How often a node says it is alive; a node silent for [`HEARTBEAT_TTL`] is gone.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(1000);
pub const HEARTBEAT_TTL: Duration = Duration::from_millis(3000);
/// Every this many heartbeats the routing node looks for open conversations it does not
/// know (see `routing::recovery::adopt_unknown`).
const ADOPT_EVERY_BEATS: u64 = 5;

/// What the node's background work acts on.
#[derive(Clone)]
pub struct NodeParts {
    pub id: String,
    pub address: String,
    pub started_at: u64,
    pub store: Store,
    pub registry: Arc<Registry>,
    pub conversations: Arc<Conversations>,
    pub router: RouterHandle,
    pub directory: Arc<Directory>,
    pub nudge: Nudge,
}

impl NodeParts {
    fn record(&self) -> NodeRecord {
        let (customers, agents_connected) = self.registry.counts();
        NodeRecord {
            id: self.id.clone(),
            address: self.address.clone(),
            started_at: self.started_at,
            customers,
            agents_connected,
            agents: self.registry.agent_ids(),
            agent_tabs: self.registry.agent_tabs(),
            routing: self.router.is_routing(),
        }
    }
}

/// Sends the heartbeat until shutdown; the routing node also hands the live nodes to
/// its routing task. At shutdown the node removes its own record.
pub async fn heartbeat(parts: NodeParts, shutdown: CancellationToken) {
    let ttl_ms = HEARTBEAT_TTL.as_millis() as u64;
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    let mut beats = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let Ok(record) = serde_json::to_string(&parts.record()) else {
            continue;
        };
        if let Err(err) = parts.store.heartbeat(&parts.id, &record, ttl_ms).await {
            tracing::debug!(cause = %err, "heartbeat not sent");
            continue;
        }
        beats += 1;
        if parts.router.is_routing() && beats % ADOPT_EVERY_BEATS == 0 {
            if let Err(err) =
                crate::routing::recovery::adopt_unknown(&parts.store, &parts.router).await
            {
                tracing::debug!(cause = %err, "open conversations not checked");
            }
        }
        if parts.router.is_routing() {
            match parts.store.live_nodes().await {
                Ok(nodes) => {
                    let live = nodes
                        .into_iter()
                        .filter_map(|(id, record)| {
                            let record: NodeRecord = serde_json::from_str(&record).ok()?;
                            Some((id, record.agents))
                        })
                        .collect();
                    parts.router.live_nodes(live);
                }
                Err(err) => tracing::debug!(cause = %err, "live nodes not read"),
            }
        }
    }
    if let Err(err) = parts.store.forget_node(&parts.id).await {
        tracing::debug!(cause = %err, "node record not removed");
    }
}

/// The live feed's handler: hands each message to its owner without waiting (it runs
/// on the feed's connection task, see `store::FeedHandler`).
pub fn feed_handler(parts: NodeParts) -> FeedHandler {
    let router_channel = keys::router_channel();
    Arc::new(move |message| match message {
        FeedMessage::Message { channel, payload } => {
            if channel == router_channel {
                match serde_json::from_str::<BusMessage>(&payload) {
                    Ok(message) => on_bus(&parts, message),
                    Err(err) => tracing::warn!(cause = %err, "unreadable router message"),
                }
            } else if let Some(id) = keys::conversation_of_live(&channel, &parts.id) {
                parts.conversations.live(id, payload);
            }
        }
        FeedMessage::Resubscribed => {
            // Anything published while the feed was down was missed: read it back.
            parts.conversations.catch_up_all();
            announce(&parts);
        }
    })
}

fn on_bus(parts: &NodeParts, message: BusMessage) {
    match message {
        BusMessage::Request { from, id, request } => {
            if parts.router.is_routing() {
                parts.router.bus_request(from, id, request);
            }
        }
        BusMessage::Reply { to, id, reply } => {
            if to == parts.id {
                parts.router.bus_reply(id, reply);
            }
        }
        BusMessage::Deliver {
            from,
            party,
            frame,
            except,
            watch,
            ack,
        } => {
            if from == parts.id {
                return;
            }
            let key = match party {
                Party::Agent(id) => PartyKey::Agent(id),
                Party::Visitor(id) => PartyKey::Visitor(id),
            };
            let text = frame.map(crate::protocol::FrameText::from);
            let skip = except
                .filter(|(node, _)| *node == parts.id)
                .map(|(_, conn)| conn);
            let here = parts.registry.push_except(&key, text.as_ref(), skip);
            if let (true, Some((conversation, from_seq))) = (here, watch) {
                let joiner = match &key {
                    PartyKey::Agent(id) => Some(id.as_str()),
                    PartyKey::Visitor(_) => None,
                };
                parts.conversations.watch_soon(
                    &conversation,
                    from_seq,
                    joiner,
                    ack.filter(|ack| ack.node == parts.id),
                );
            }
        }
        BusMessage::Agent { from, id, record } => {
            if from == parts.id {
                return;
            }
            match record {
                Some(record) => parts.directory.insert(*record),
                None => {
                    parts.directory.remove(&id);
                    parts
                        .registry
                        .kick_party(&PartyKey::Agent(id), Kick::AgentRemoved);
                }
            }
        }
        BusMessage::Leader { node, epoch } => {
            if epoch == 0 {
                // The routing node left on purpose: try the lease now.
                parts.nudge.notify_one();
                return;
            }
            // Requests asked while nobody routed go again, to this one.
            parts.router.leader_announced(epoch);
            if node != parts.id {
                announce(parts);
            }
        }
    }
}

/// Tells the routing node who is connected here (it may be new, or may have missed a
/// message while this node's feed was down).
fn announce(parts: &NodeParts) {
    if parts.router.is_routing() {
        return;
    }
    for agent in parts.registry.agent_ids() {
        let router = parts.router.clone();
        tokio::spawn(async move {
            router.agent_connected(&agent).await;
        });
    }
    for visitor in parts.registry.visitor_ids() {
        let (router, store) = (parts.router.clone(), parts.store.clone());
        tokio::spawn(async move {
            if let Ok(Some(conversation)) = store.visitor_open_conversation(&visitor).await {
                router.customer_presence(&conversation, true);
            }
        });
    }
}

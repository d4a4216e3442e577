//! Who is connected: each connection's bounded outbound queue, indexed by party
//! (a visitor's tabs, an agent's tabs) and by monitored conversation.
//!
//! Pushing never waits: a full queue means the client reads too slowly, and it is
//! disconnected (it resumes from its last `seq`) rather than allowed to grow memory.
//! A queue is full at `send_queue` frames or `send_queue_bytes` bytes, whichever comes
//! first: frames differ in size by three orders of magnitude (an ack against a history
//! page of a thousand long messages). Bytes count from the push until the writer has
//! flushed them to the socket, so a frame stuck in the WebSocket's write buffer of a
//! client that stopped reading still counts.
//!
//! All connections also share one [`SendBudget`] (`send_queue_bytes_total`): the
//! per-connection budget times the connection cap is far above any machine's memory
//! (1 MiB × 100,000 connections = 100 GB), so it is the global budget that bounds the
//! hub's queued bytes: at most `send_queue_bytes_total` plus one frame (a frame larger
//! than the whole budget still goes out when nothing at all is queued). A push past
//! either budget closes that connection with 1013.
//!
//! - `connection` — one connection's sending side, its budgets and why it was closed;
//! - `queue` — the frames waiting for a connection's writer.

mod connection;
mod queue;

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

pub use self::connection::{ConnId, ConnRx, ConnTx, Kick, SendBudget};
use crate::protocol::{FrameText, ServerFrame};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PartyKey {
    Visitor(String),
    Agent(String),
}

/// Looked up for every delivered event: foldhash, several times cheaper than SipHash for
/// ids this short, and seeded at random.
type Connections = DashMap<String, Vec<ConnTx>, foldhash::fast::RandomState>;

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    // Visitors and agents apart, so fan-out looks a party up by `&str` without building
    // a key.
    visitors: Connections,
    agents: Connections,
    monitors: Connections,
    /// Acks owed to this node's connections for events another node stores (an accept
    /// carried out by the routing node): sent by whoever claims one first.
    owed_acks: dashmap::DashMap<(ConnId, String), ()>,
}

impl Registry {
    fn side<'a>(&self, party: &'a PartyKey) -> (&Connections, &'a str) {
        match party {
            PartyKey::Visitor(id) => (&self.visitors, id),
            PartyKey::Agent(id) => (&self.agents, id),
        }
    }

    pub fn expect_ack(&self, conn: ConnId, req: &str) {
        self.owed_acks.insert((conn, req.to_string()), ());
    }

    /// Whether the caller is the first to claim the ack of `(conn, req)`.
    pub fn claim_ack(&self, conn: ConnId, req: &str) -> bool {
        self.owed_acks.remove(&(conn, req.to_string())).is_some()
    }

    /// Agents with a connection here.
    pub fn agent_ids(&self) -> Vec<String> {
        self.agents
            .iter()
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// Pushes `text` (if any) to each connection of `party` here but `skip`; returns
    /// whether the party has a connection here at all.
    pub fn push_except(
        &self,
        party: &PartyKey,
        text: Option<&FrameText>,
        skip: Option<ConnId>,
    ) -> bool {
        let mut here = false;
        self.for_each(party, |conn| {
            here = true;
            if let (Some(text), false) = (text, Some(conn.id) == skip) {
                conn.push(text.clone());
            }
        });
        here
    }

    /// Agents with connections here, and how many each.
    pub fn agent_tabs(&self) -> std::collections::BTreeMap<String, usize> {
        self.agents
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().len()))
            .collect()
    }

    /// Visitors with a connection here.
    pub fn visitor_ids(&self) -> Vec<String> {
        self.visitors
            .iter()
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// Connections here by role: (visitors, agents).
    pub fn counts(&self) -> (usize, usize) {
        let count = |map: &Connections| map.iter().map(|entry| entry.value().len()).sum();
        (count(&self.visitors), count(&self.agents))
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a connection; returns how many the party has now.
    pub fn add(&self, party: PartyKey, conn: ConnTx) -> usize {
        let (map, id) = self.side(&party);
        let mut conns = map.entry(id.to_string()).or_default();
        conns.push(conn);
        conns.len()
    }

    /// Removes a connection; returns how many the party has left.
    pub fn remove(&self, party: &PartyKey, id: ConnId) -> usize {
        let (map, party) = self.side(party);
        let left = match map.get_mut(party) {
            Some(mut conns) => {
                conns.retain(|c| c.id != id);
                conns.len()
            }
            None => 0,
        };
        if left == 0 {
            map.remove_if(party, |_, conns| conns.is_empty());
        }
        left
    }

    /// Calls `visit` with each connection of a party, in place: fan-out runs this for
    /// every event, so it must not copy the list. `visit` must not block.
    pub fn for_each(&self, party: &PartyKey, visit: impl FnMut(&ConnTx)) {
        let (map, id) = self.side(party);
        Self::visit(map, id, visit);
    }

    pub fn for_each_visitor_conn(&self, visitor_id: &str, visit: impl FnMut(&ConnTx)) {
        Self::visit(&self.visitors, visitor_id, visit);
    }

    pub fn for_each_agent_conn(&self, agent_id: &str, visit: impl FnMut(&ConnTx)) {
        Self::visit(&self.agents, agent_id, visit);
    }

    fn visit(map: &Connections, id: &str, mut visit: impl FnMut(&ConnTx)) {
        if let Some(conns) = map.get(id) {
            conns.iter().for_each(&mut visit);
        }
    }

    /// Like [`Registry::for_each`] over the connections monitoring a conversation.
    pub fn for_each_monitor(&self, conversation_id: &str, visit: impl FnMut(&ConnTx)) {
        Self::visit(&self.monitors, conversation_id, visit);
    }

    pub fn is_monitored(&self, conversation_id: &str) -> bool {
        self.monitors.contains_key(conversation_id)
    }

    pub fn connections(&self, party: &PartyKey) -> Vec<ConnTx> {
        let (map, id) = self.side(party);
        map.get(id).map(|c| c.clone()).unwrap_or_default()
    }

    pub fn count(&self, party: &PartyKey) -> usize {
        let (map, id) = self.side(party);
        map.get(id).map(|c| c.len()).unwrap_or(0)
    }

    /// Sends one frame to every connection of a party; false if it has none.
    pub fn send_to(&self, party: &PartyKey, frame: &ServerFrame) -> bool {
        if self.count(party) == 0 {
            return false;
        }
        let text = frame.to_text();
        self.for_each(party, |conn| {
            conn.push(text.clone());
        });
        true
    }

    pub fn monitor(&self, conversation_id: &str, conn: ConnTx) {
        let mut conns = self
            .monitors
            .entry(conversation_id.to_string())
            .or_default();
        if !conns.iter().any(|c| c.id == conn.id) {
            conns.push(conn);
        }
    }

    pub fn unmonitor(&self, conversation_id: &str, id: ConnId) {
        if let Some(mut conns) = self.monitors.get_mut(conversation_id) {
            conns.retain(|c| c.id != id);
        }
        self.monitors
            .remove_if(conversation_id, |_, conns| conns.is_empty());
    }

    /// Drops a closing connection from every monitor list.
    pub fn unmonitor_all(&self, id: ConnId, conversations: &[String]) {
        for conversation_id in conversations {
            self.unmonitor(conversation_id, id);
        }
    }

    pub fn kick_party(&self, party: &PartyKey, why: Kick) {
        for conn in self.connections(party) {
            conn.kick(why);
        }
    }
}

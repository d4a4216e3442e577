//! Who is connected: each connection's bounded outbound queue, indexed by party
//! (a visitor's tabs, an agent's tabs) and by monitored conversation.
//!
//! Pushing never waits: a full queue means the client reads too slowly, and it is
//! disconnected (it resumes from its last `seq`) rather than allowed to grow memory.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Audience, ServerFrame};

pub type ConnId = u64;

/// Why the hub closes a connection: the WebSocket close code and reason it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    SlowReader,
    AgentRemoved,
    Idle,
    FrameTooLarge,
    ShuttingDown,
}

impl Kick {
    pub fn close_code(self) -> (u16, &'static str) {
        match self {
            Kick::SlowReader => (1013, "slow reader: resume from your last seq"),
            Kick::AgentRemoved => (4409, "agent removed"),
            Kick::Idle => (1001, "no pong in time"),
            Kick::FrameTooLarge => (1009, "frame too large"),
            Kick::ShuttingDown => (1001, "server shutting down"),
        }
    }
}

/// The sending side of one connection.
#[derive(Clone)]
pub struct ConnTx {
    pub id: ConnId,
    pub audience: Audience,
    tx: mpsc::Sender<Arc<str>>,
    kill: CancellationToken,
    kick: Arc<std::sync::OnceLock<Kick>>,
    slow_reader_closes: prometheus::IntCounter,
}

impl ConnTx {
    pub fn new(
        id: ConnId,
        audience: Audience,
        capacity: usize,
        slow_reader_closes: prometheus::IntCounter,
    ) -> (ConnTx, mpsc::Receiver<Arc<str>>) {
        let (tx, rx) = mpsc::channel(capacity);
        let conn = ConnTx {
            id,
            audience,
            tx,
            kill: CancellationToken::new(),
            kick: Arc::new(std::sync::OnceLock::new()),
            slow_reader_closes,
        };
        (conn, rx)
    }

    /// Queues a serialized frame. Returns false when the connection is gone or was just
    /// closed for reading too slowly.
    pub fn push(&self, text: Arc<str>) -> bool {
        match self.tx.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.kick.set(Kick::SlowReader).is_ok() {
                    self.slow_reader_closes.inc();
                    tracing::info!(conn_id = self.id, "send queue full: closing slow reader");
                }
                self.kill.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn send(&self, frame: &ServerFrame) -> bool {
        self.push(frame.to_text())
    }

    pub fn kick(&self, why: Kick) {
        let _first = self.kick.set(why);
        self.kill.cancel();
    }

    pub fn killed(&self) -> &CancellationToken {
        &self.kill
    }

    pub fn kick_reason(&self) -> Option<Kick> {
        self.kick.get().copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PartyKey {
    Visitor(String),
    Agent(String),
}

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    parties: DashMap<PartyKey, Vec<ConnTx>>,
    monitors: DashMap<String, Vec<ConnTx>>,
}

impl Registry {
    pub fn next_conn_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a connection; returns how many the party has now.
    pub fn add(&self, party: PartyKey, conn: ConnTx) -> usize {
        let mut conns = self.parties.entry(party).or_default();
        conns.push(conn);
        conns.len()
    }

    /// Removes a connection; returns how many the party has left.
    pub fn remove(&self, party: &PartyKey, id: ConnId) -> usize {
        let left = match self.parties.get_mut(party) {
            Some(mut conns) => {
                conns.retain(|c| c.id != id);
                conns.len()
            }
            None => 0,
        };
        if left == 0 {
            self.parties.remove_if(party, |_, conns| conns.is_empty());
        }
        left
    }

    pub fn connections(&self, party: &PartyKey) -> Vec<ConnTx> {
        self.parties
            .get(party)
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    pub fn count(&self, party: &PartyKey) -> usize {
        self.parties.get(party).map(|c| c.len()).unwrap_or(0)
    }

    /// Sends one frame to every connection of a party; false if it has none.
    pub fn send_to(&self, party: &PartyKey, frame: &ServerFrame) -> bool {
        let conns = self.connections(party);
        if conns.is_empty() {
            return false;
        }
        let text = frame.to_text();
        for conn in &conns {
            conn.push(text.clone());
        }
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

    pub fn monitors(&self, conversation_id: &str) -> Vec<ConnTx> {
        self.monitors
            .get(conversation_id)
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    pub fn kick_party(&self, party: &PartyKey, why: Kick) {
        for conn in self.connections(party) {
            conn.kick(why);
        }
    }
}

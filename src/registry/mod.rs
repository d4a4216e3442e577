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

mod queue;

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
};

use dashmap::DashMap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Audience, FrameText, ServerFrame};

pub type ConnId = u64;

/// Why the hub closes a connection: the WebSocket close code and reason it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    SlowReader,
    AgentRemoved,
    Idle,
    FrameTooLarge,
    ShuttingDown,
    /// Reserved opcode or bits, bad framing: 1002.
    ProtocolError,
    /// A text frame that is not UTF-8: 1007.
    InvalidUtf8,
    /// The visitor's sessions were revoked (abuse-b).
    SessionRevoked,
}

impl Kick {
    pub fn close_code(self) -> (u16, &'static str) {
        match self {
            Kick::SlowReader => (1013, "slow reader: resume from your last seq"),
            Kick::AgentRemoved => (4409, "agent removed"),
            Kick::Idle => (1001, "no pong in time"),
            Kick::FrameTooLarge => (1009, "frame too large"),
            Kick::ShuttingDown => (1001, "server shutting down"),
            Kick::ProtocolError => (1002, "protocol error"),
            Kick::InvalidUtf8 => (1007, "invalid UTF-8 in a text frame"),
            Kick::SessionRevoked => (4401, "session revoked"),
        }
    }
}

/// Bytes queued for all connections together, against `limits.send_queue_bytes_total`.
/// Its count is the one copy: the `send_queue_bytes` gauge is read from it at scrape
/// time, not kept in step on every push and flush.
pub struct SendBudget {
    limit: usize,
    queued: AtomicUsize,
}

impl SendBudget {
    pub fn new(limit: usize) -> Arc<SendBudget> {
        Arc::new(SendBudget {
            limit,
            queued: AtomicUsize::new(0),
        })
    }

    /// Takes `len` bytes; false (nothing taken) when that would pass the limit, unless
    /// nothing at all is queued.
    fn take(&self, len: usize) -> bool {
        let queued = self.queued.fetch_add(len, Ordering::AcqRel);
        if queued > 0 && queued + len > self.limit {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give_back(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::AcqRel);
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// The sending side of one connection. Cheap to clone (one reference count): requests
/// carry it to the conversation task, which answers on it.
#[derive(Clone)]
pub struct ConnTx {
    pub id: ConnId,
    pub audience: Audience,
    shared: Arc<ConnShared>,
}

struct ConnShared {
    queue: queue::FrameQueue,
    /// Bytes pushed and not yet flushed by the writer.
    queued_bytes: AtomicUsize,
    byte_budget: usize,
    /// Shared by every connection of the node.
    total: Arc<SendBudget>,
    /// Signalled whenever the writer has flushed bytes.
    drained: Notify,
    kill: CancellationToken,
    kick: std::sync::OnceLock<Kick>,
    slow_reader_closes: prometheus::IntCounter,
}

impl ConnTx {
    pub fn new(
        id: ConnId,
        audience: Audience,
        capacity: usize,
        byte_budget: usize,
        total: Arc<SendBudget>,
        slow_reader_closes: prometheus::IntCounter,
    ) -> (ConnTx, ConnRx) {
        let conn = ConnTx {
            id,
            audience,
            shared: Arc::new(ConnShared {
                queue: queue::FrameQueue::new(capacity),
                queued_bytes: AtomicUsize::new(0),
                byte_budget,
                total,
                drained: Notify::new(),
                kill: CancellationToken::new(),
                kick: std::sync::OnceLock::new(),
                slow_reader_closes,
            }),
        };
        let rx = ConnRx {
            shared: Arc::clone(&conn.shared),
        };
        (conn, rx)
    }

    /// Queues a serialized frame. Returns false when the connection is gone or was just
    /// closed for reading too slowly.
    pub fn push(&self, text: FrameText) -> bool {
        let shared = &self.shared;
        let len = text.len();
        let queued = shared.queued_bytes.fetch_add(len, Ordering::Relaxed);
        // A frame larger than the whole budget still goes out when nothing is queued.
        if queued > 0 && queued + len > shared.byte_budget {
            shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.close_slow_reader();
            return false;
        }
        if !shared.total.take(len) {
            shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.close_slow_reader();
            return false;
        }
        let refused = match shared.queue.push(text) {
            Ok(()) => return true,
            Err(queue::Refused::Full) => true,
            Err(queue::Refused::Closed) => false,
        };
        shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        shared.total.give_back(len);
        if refused {
            self.close_slow_reader();
        }
        false
    }

    /// The writer flushed (or dropped) `len` bytes of frames it had taken off the queue.
    pub fn taken(&self, len: usize) {
        if len == 0 {
            return;
        }
        self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        self.shared.total.give_back(len);
        self.shared.drained.notify_waiters();
    }

    /// Bytes pushed and not yet flushed.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }

    /// Waits until at most `threshold` bytes are queued (true), or `timeout` passed
    /// (false), or the connection was closed (false). Woken by the writer's flushes,
    /// never by polling.
    pub async fn drained_below(&self, threshold: usize, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.drained.notified();
            tokio::pin!(notified);
            // Registered before the check, so a flush in between is not missed.
            notified.as_mut().enable();
            if self.queued_bytes() <= threshold {
                return true;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = self.shared.kill.cancelled() => return false,
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// Closes the connection with 1013 (it resumes from its last `seq`).
    pub fn close_slow_reader(&self) {
        let shared = &self.shared;
        if shared.kick.set(Kick::SlowReader).is_ok() {
            shared.slow_reader_closes.inc();
            tracing::info!(conn_id = self.id, "send queue full: closing slow reader");
        }
        shared.kill.cancel();
    }

    pub fn send(&self, frame: &ServerFrame) -> bool {
        self.push(frame.to_text())
    }

    pub fn kick(&self, why: Kick) {
        let _first = self.shared.kick.set(why);
        self.shared.kill.cancel();
    }

    pub fn killed(&self) -> &CancellationToken {
        &self.shared.kill
    }

    pub fn kick_reason(&self) -> Option<Kick> {
        self.shared.kick.get().copied()
    }
}

/// The taking side of one connection's queue: held by its writer alone.
pub struct ConnRx {
    shared: Arc<ConnShared>,
}

impl ConnRx {
    /// Waits until a frame is queued, then moves every queued frame into `batch`.
    /// Cancel-safe.
    pub async fn take(&mut self, batch: &mut VecDeque<FrameText>) {
        self.shared.queue.take(batch).await
    }

    /// Moves what is queued now into `batch`, without waiting; false when nothing was.
    pub fn take_now(&mut self, batch: &mut VecDeque<FrameText>) -> bool {
        self.shared.queue.take_now(batch)
    }

    /// Refuses every later push; returns what was still queued, never to be sent.
    pub fn close(&mut self) -> VecDeque<FrameText> {
        self.shared.queue.close()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PartyKey {
    Visitor(String),
    Agent(String),
}

type Connections = DashMap<String, Vec<ConnTx>>;

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

// ---- send budgets (issue 15 part A) ----
#[cfg(test)]
mod budget_tests {
    use super::*;

    fn conn(id: ConnId, budget: usize, total: &Arc<SendBudget>) -> (ConnTx, ConnRx) {
        ConnTx::new(
            id,
            Audience::Customer,
            64,
            budget,
            Arc::clone(total),
            prometheus::IntCounter::new("c", "c").expect("counter"),
        )
    }

    fn text(len: usize) -> FrameText {
        "x".repeat(len).into()
    }

    #[tokio::test]
    async fn the_global_budget_closes_the_reader_that_would_pass_it() {
        let total = SendBudget::new(1000);
        let (a, _rx_a) = conn(1, 800, &total);
        let (b, _rx_b) = conn(2, 800, &total);
        assert!(a.push(text(600)));
        assert!(!b.push(text(600)), "past the global budget");
        assert_eq!(b.kick_reason(), Some(Kick::SlowReader));
        assert_eq!(a.kick_reason(), None, "the other reader is left alone");
        assert_eq!(total.queued(), 600);
        a.taken(600);
        assert_eq!(total.queued(), 0);
    }

    #[tokio::test]
    async fn a_waiter_is_woken_by_the_writer_not_by_polling() {
        let total = SendBudget::new(10_000);
        let (a, _rx) = conn(1, 5_000, &total);
        assert!(a.push(text(3_000)));
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move {
                a.drained_below(1_000, std::time::Duration::from_secs(30))
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        a.taken(3_000);
        assert!(waiter.await.expect("waiter"), "woken by the flush");
        assert!(a.push(text(3_000)));
        assert!(
            !a.drained_below(1_000, std::time::Duration::from_millis(50))
                .await,
            "times out when nothing is flushed"
        );
    }
}

//! One connection's sending side: [`ConnTx`], which any task holds to queue frames
//! for it, [`ConnRx`], which its writer takes them from, the per-connection and
//! node-wide byte budgets ([`SendBudget`]), and [`Kick`], why the hub closed it.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::queue;
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
    /// Cancelled when the connection is to end. A child of the node's shutdown token, so
    /// the reader and writer wait on this one token alone: polling the node-wide token
    /// on every wake-up would take its one mutex, shared by every connection.
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
        kill: CancellationToken,
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
                kill,
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
            CancellationToken::new(),
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

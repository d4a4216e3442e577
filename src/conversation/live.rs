//! The conversation's side of several nodes: events stored by other nodes arrive as
//! hints on this node's live channel of the conversation (see `store::feed`), to which
//! they publish because this node is listed among the conversation's listeners
//! (`listen`, before the task reads anything). A hint is delivered
//! when its seq is the next one; otherwise the stream is read from the last delivered
//! seq. After the feed was lost, and every few seconds (`task::RECONCILE_EVERY`) while this node has
//! clients in the conversation, the task catches up from the stream, so a missed hint
//! delays an event but never skips it.
//!
//! An accept carried out by the routing node on another node's behalf owes that node's
//! connection an ack before the `joined` event: it travels with the event as its note
//! ([`RemoteAck`]), and whoever claims it first (this task on the hint, or the requester
//! on the router's answer when the hint was missed) sends it.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::{task::ConversationTask, Command, Conversations};
use crate::{
    error::Result,
    protocol::{AckBody, ServerFrame},
    registry::ConnId,
    store::LiveEvent,
};

/// `heard_from` of an agent whose tabs here wait for its joined-watch before hearing
/// anything: its `joined` was stored before this task loaded the record.
pub(super) const PENDING: u64 = u64::MAX;

/// How long a task waits for its subscription before going on without it (the feed is
/// down; its return catches everything up).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// An ack owed to a connection on `node` for the event it travels with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteAck {
    pub node: String,
    pub agent: String,
    pub conn: ConnId,
    pub req: String,
}

impl Conversations {
    /// Hands a hint from the live feed to the conversation's task, if this node runs one
    /// (otherwise nobody here hears the conversation). A hint the task would skip
    /// whole is dropped here instead of waking it: every event in it delivered already
    /// and no ack owed (another node's batch the task had already read from the stream;
    /// a node's own batches are not published back to it).
    pub fn live(&self, conversation_id: &str, payload: String) {
        let events = LiveEvent::batch(&payload);
        // A short read of the shard: the send below does not wait.
        let Some(task) = self.tasks.get(conversation_id) else {
            return;
        };
        let delivered = task.delivered.get();
        let skipped_whole = events
            .is_some_and(|events| events.iter().all(|live| nothing_owed_for(live, delivered)));
        if skipped_whole {
            self.deps.metrics.live_hints_skipped.inc();
        } else {
            self.deps.metrics.live_hints_to_task.inc();
            let _exited = task.tx.send(Command::Live(payload));
        }
    }

    /// Makes this node hear the conversation from now on, for a client of it here:
    /// - `agent` none: a customer, monitor or returning agent; a new task delivers from
    ///   `from_seq` if given;
    /// - `agent` with no seq: it was offered the conversation, so the `joined` of its
    ///   accept reaches its tabs here;
    /// - `agent` with `from_seq`: it joined at that seq, and its tabs here get every
    ///   event from its `joined` on, even those delivered before it was a member.
    ///
    /// `ack`: the accept's ack owed to a tab here, sent before the `joined` it answers
    /// (the watch can come before the `joined`'s own hint, which carries it too).
    pub async fn watch(
        self: &Arc<Self>,
        conversation_id: &str,
        from_seq: Option<u64>,
        agent: Option<&str>,
        ack: Option<RemoteAck>,
    ) -> Result<()> {
        let agent = agent.map(str::to_owned);
        self.ask(conversation_id, |reply| {
            Command::Watch(from_seq, agent, ack, reply)
        })
        .await
    }

    /// Like [`Conversations::watch`], without waiting.
    pub fn watch_soon(
        self: &Arc<Self>,
        conversation_id: &str,
        from_seq: Option<u64>,
        agent: Option<&str>,
        ack: Option<RemoteAck>,
    ) {
        let conversations = Arc::clone(self);
        let id = conversation_id.to_string();
        let agent = agent.map(str::to_owned);
        self.deps.tracker.spawn(async move {
            if let Err(err) = conversations
                .watch(&id, from_seq, agent.as_deref(), ack)
                .await
            {
                tracing::debug!(conversation_id = %id, cause = %err, "watch failed");
            }
        });
    }

    /// After the feed came back: every task reads what it may have missed.
    pub fn catch_up_all(&self) {
        for task in self.tasks.iter() {
            let _exited = task.value().tx.send(Command::CatchUp);
        }
    }

    pub(super) async fn subscribe(&self, channel: &str) {
        let (done, subscribed) = tokio::sync::oneshot::channel();
        self.deps.feed.subscribe(channel.to_string(), Some(done));
        if tokio::time::timeout(SUBSCRIBE_WAIT, subscribed)
            .await
            .is_err()
        {
            tracing::debug!(
                channel,
                "no subscription in time; the feed's return catches up"
            );
        }
    }
}

/// Whether a task that has delivered up to `delivered` has nothing to do for `live`:
/// the event reached its clients already and carries no ack owed to one of them. The
/// task skips such an event; the dispatch drops a hint made only of such events.
fn nothing_owed_for(live: &LiveEvent<'_>, delivered: u64) -> bool {
    live.seq <= delivered && live.note.is_empty()
}

impl ConversationTask {
    /// A hint (one stored batch): each next event is delivered as is; a gap is read from
    /// the stream.
    pub(super) async fn live(&mut self, payload: &str) {
        let Some(events) = LiveEvent::batch(payload) else {
            tracing::warn!(conversation_id = %self.id, "unreadable live message");
            return;
        };
        if self.load().await.is_err() {
            return;
        }
        for live in events {
            if nothing_owed_for(&live, self.delivered()) {
                continue; // read from the stream already
            }
            if live.seq > self.delivered() + 1 {
                if let Err(err) = self.catch_up(live.seq - 1).await {
                    tracing::warn!(cause = %err, "catch-up after a gap failed");
                    self.needs_resync = true;
                    return;
                }
            }
            self.remote_ack(live.note, live.seq);
            if live.seq == self.delivered() + 1 {
                // The frame is spliced from the stored form, as for a local append,
                // rather than serialized again from the parsed event.
                match live.event(&self.id) {
                    Some(event) => {
                        let frame = live.frame(&self.id);
                        self.deliver(&event, frame);
                    }
                    None => tracing::warn!(conversation_id = %self.id, "unreadable live event"),
                }
            }
        }
    }

    /// Sends the ack a note owes to a connection of this node, if not sent yet.
    fn remote_ack(&self, note: &str, seq: u64) {
        if note.is_empty() {
            return;
        }
        if let Ok(ack) = serde_json::from_str::<RemoteAck>(note) {
            self.send_remote_ack(ack, seq);
        }
    }

    /// Sends `ack` for the event stored at `seq`, if it is owed here and not sent yet.
    fn send_remote_ack(&self, ack: RemoteAck, seq: u64) {
        if ack.node != self.owner.deps.node_id
            || !self.owner.deps.registry.claim_ack(ack.conn, &ack.req)
        {
            return;
        }
        let frame = ServerFrame::ack(
            ack.req,
            AckBody {
                conversation_id: Some(self.id.clone()),
                seq: Some(seq),
                ..AckBody::default()
            },
        );
        self.owner
            .deps
            .registry
            .for_each_agent_conn(&ack.agent, |conn| {
                if conn.id == ack.conn {
                    conn.send(&frame);
                }
            });
    }

    /// A client of the conversation arrived at this node: load, then deliver from
    /// `from_seq` (a new task) or whatever was missed (a running one).
    pub(super) async fn watch(
        &mut self,
        from_seq: Option<u64>,
        agent: Option<String>,
        ack: Option<RemoteAck>,
    ) -> Result<()> {
        let fresh = self.members.is_none();
        self.load().await?;
        // Before anything from the stream: the `joined` at `from_seq` must come after it.
        if let (Some(ack), Some(joined_at)) = (ack, from_seq) {
            self.send_remote_ack(ack, joined_at);
        }
        match (from_seq, agent) {
            // Offered to `agent`. If its `joined` was stored before this load, its tabs
            // wait for the joined-watch, which replays from the `joined` in order.
            (None, Some(agent)) => {
                let already_present = self
                    .members
                    .as_ref()
                    .is_some_and(|m| m.present.contains(&agent));
                if fresh && already_present {
                    self.heard_from.insert(agent, PENDING);
                }
            }
            (Some(from), Some(agent)) if fresh => {
                self.deliver_from(from);
                self.heard_from.insert(agent, from);
            }
            (Some(from), Some(agent)) => self.replay_to_joiner(&agent, from).await?,
            (Some(from), None) if fresh => self.deliver_from(from),
            _ => {}
        }
        if fresh && from_seq.is_none() {
            return Ok(());
        }
        self.catch_up(u64::MAX).await
    }

    /// A new task delivers from `from` on: what it has delivered may then end inside
    /// a stream entry, where an append must not go (`store::entries`), until the
    /// catch-up that follows reads the stream to its end.
    fn deliver_from(&mut self, from: u64) {
        self.set_delivered(self.delivered().min(from.saturating_sub(1)));
        self.needs_resync = true;
    }

    /// A joining agent whose tabs here were held back (see [`PENDING`]) gets everything
    /// from its `joined` up to what this task delivered, in order; from then on it is a
    /// recipient like the others.
    async fn replay_to_joiner(&mut self, agent: &str, joined_seq: u64) -> Result<()> {
        if self.heard_from.get(agent) != Some(&PENDING) {
            return Ok(());
        }
        let until = self.delivered();
        let mut after = joined_seq.saturating_sub(1);
        while after < until {
            let (events, more) = self
                .owner
                .deps
                .store
                .history_in_order(&self.id, after, 200)
                .await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                break;
            };
            for event in events.iter().filter(|e| e.seq <= until) {
                let text = event.frame_text();
                self.owner.deps.registry.for_each_agent_conn(agent, |conn| {
                    conn.push(text.clone());
                });
            }
            after = last;
            if !more {
                break;
            }
        }
        self.heard_from.insert(agent.to_string(), joined_seq);
        Ok(())
    }

    /// Lists this node among the conversation's listeners, so other nodes publish what
    /// they store to it (`store::Store::listen`); until that succeeds, every load and
    /// reconcile tries again, and the reconciles read the stream meanwhile.
    pub(super) async fn listen(&mut self) {
        let deps = &self.owner.deps;
        self.listed = match deps.store.listen(&self.id, &deps.node_id).await {
            Ok(listed) => listed,
            Err(err) => {
                tracing::debug!(conversation_id = %self.id, cause = %err, "listing this node failed");
                false
            }
        };
    }

    /// Reads what a missed hint would have brought, when anyone here listens. An agent
    /// still held back (its joined-watch was lost) hears from now on; its client reads
    /// the rest with `history`.
    pub(super) async fn reconcile(&mut self) {
        if !self.listed {
            self.listen().await;
        }
        let next = self.delivered() + 1;
        for from in self.heard_from.values_mut() {
            if *from == PENDING {
                *from = next;
            }
        }
        if self.members.is_none() || !self.has_local_recipients() {
            return;
        }
        if let Err(err) = self.catch_up(u64::MAX).await {
            tracing::debug!(cause = %err, "reconcile failed");
            self.needs_resync = true;
        }
    }

    pub(super) fn has_local_recipients(&self) -> bool {
        let mut any = false;
        self.for_each_recipient(|_| any = true);
        any
    }
}

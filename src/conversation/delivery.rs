//! Delivery: fanning a stored event out to every connection of this node that hears the
//! conversation, in `seq` order, and catching up from the stream when events were stored
//! elsewhere (another node, a reply lost) or a live hint was missed.

use super::{task::ConversationTask, Ack};
use crate::{
    error::Result,
    protocol::{Audience, CustomerView, Event, EventBody},
    registry::{ConnId, ConnTx},
};

impl ConversationTask {
    /// Delivers stored events after `delivered` up to `until` (inclusive), in order.
    /// Stopping at `until` may leave `delivered` inside a stream entry, where an append
    /// must not go (`store::entries`): the task then reads the stream again first.
    pub(super) async fn catch_up(&mut self, until: u64) -> Result<()> {
        let mut stopped_short;
        loop {
            let (events, more) = self
                .owner
                .deps
                .store
                .history_in_order(&self.id, self.delivered(), 200)
                .await?;
            let mut progressed = false;
            stopped_short = events.last().is_some_and(|last| last.seq > until);
            for event in events.into_iter().filter(|e| e.seq <= until) {
                let closed = matches!(event.body, EventBody::Closed { .. });
                let fresh = event.seq > self.delivered();
                self.deliver(&event, None);
                if closed && fresh {
                    // Stored by a request whose reply was lost: the close still counts.
                    (self.owner.deps.on_closed)(&self.id, self.milestones.take());
                }
                progressed = true;
            }
            if !more || !progressed || self.delivered() >= until {
                break;
            }
        }
        self.needs_resync = stopped_short;
        Ok(())
    }

    /// Calls `visit` once for each connection that hears this conversation: the
    /// customer's tabs, present agents' tabs, then monitoring supervisors not already
    /// among them. In place, without collecting: this runs for every event.
    pub(super) fn for_each_recipient(&self, mut visit: impl FnMut(&ConnTx)) {
        let Some(members) = &self.members else {
            return;
        };
        let registry = &self.owner.deps.registry;
        let monitored = registry.is_monitored(&self.id);
        let mut visited: Vec<ConnId> = Vec::new();
        let mut member = |conn: &ConnTx| {
            if monitored {
                visited.push(conn.id);
            }
            visit(conn);
        };
        registry.for_each_visitor_conn(&members.visitor_id, &mut member);
        for agent in &members.present {
            if self.heard_from.get(agent) == Some(&super::live::PENDING) {
                continue; // held back until its joined-watch replays in order (`live`)
            }
            registry.for_each_agent_conn(agent, &mut member);
        }
        if monitored {
            registry.for_each_monitor(&self.id, |conn| {
                if !visited.contains(&conn.id) {
                    visit(conn);
                }
            });
        }
    }

    /// Acks a stored append and says which connection its event skips: the author's,
    /// when its `message` asked for no echo (issue 19). That ack carries the event's `ts`
    /// too, and is queued before the event goes to anyone, so the author still learns of
    /// its message in `seq` order.
    pub(super) fn ack_stored(&self, ack: &mut Option<Ack>, seq: u64, ts: u64) -> Option<ConnId> {
        let mut skip = None;
        if let Some(ack) = ack.as_mut().filter(|ack| !ack.echo) {
            ack.body.ts = Some(ts);
            skip = Some(ack.conn.id);
        }
        self.ack(ack, seq);
        skip
    }

    /// Fans `event` out to its recipients; `frame` is its `event` frame when the caller
    /// has it already.
    pub(super) fn deliver(&mut self, event: &Event, frame: Option<crate::protocol::FrameText>) {
        self.deliver_except(event, frame, None);
    }

    /// [`Self::deliver`], but not to the connection `skip` (its author, acked instead).
    pub(super) fn deliver_except(
        &mut self,
        event: &Event,
        frame: Option<crate::protocol::FrameText>,
        skip: Option<ConnId>,
    ) {
        if event.seq <= self.delivered() {
            return;
        }
        self.set_delivered(event.seq);
        if self.seen.as_mut().is_some_and(|seen| !seen.record(event)) {
            self.seen = None; // an event skipped: built again from the stream when needed
        }
        if self
            .milestones
            .as_mut()
            .is_some_and(|log| !log.record(event))
        {
            self.milestones = None; // the flush reads the stream instead
        }
        if let EventBody::Joined { agent } = &event.body {
            self.heard_from.entry(agent.id.clone()).or_insert(event.seq);
        }
        if let Some(members) = self.members.as_mut() {
            members.before_delivery(event.seq, &event.body);
        }
        let staff_text = frame.unwrap_or_else(|| event.frame_text());
        let customer_text = match event.customer_view() {
            CustomerView::Same => Some(staff_text.clone()),
            CustomerView::Redacted(redacted) => Some(redacted.frame_text()),
            CustomerView::Hidden => None,
        };
        self.for_each_recipient(|conn| match conn.audience {
            _ if Some(conn.id) == skip => {}
            Audience::Staff => {
                conn.push(staff_text.clone());
            }
            Audience::Customer => {
                if let Some(text) = &customer_text {
                    conn.push(text.clone());
                }
            }
        });
        // Recipients were taken before this: a leaving agent hears its own `left`.
        if let Some(members) = self.members.as_mut() {
            members.after_delivery(&event.body);
        }
    }
}

//! Keeping the indexes in step with the records: an agent's entries in its groups (take
//! it out before changing anything its rank depends on, put it back after), and a seeking
//! conversation's entries in its topic queue, its group's waiting set and its timers.
//! No decisions are made here.

use super::rank::{AgentRank, QueueKey};
use super::state::{Agent, Indexed, Seek, Timer};
use super::topics::{Slot, Topic};
use super::types::AgentStatus;
use super::Router;

impl Router {
    /// Removes the agent from every group index and aggregate.
    pub(super) fn unindex_agent(&mut self, id: &str) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        let Some(ix) = agent.indexed.take() else {
            return;
        };
        for &(g, level) in &agent.groups {
            let group = &mut self.groups[g];
            group.available_agents -= 1;
            group.available_capacity -= u64::from(ix.capacity);
            group.free_capacity -= u64::from(ix.capacity.saturating_sub(ix.load));
            if ix.free {
                let rank = AgentRank::new(
                    &agent.rank_id,
                    ix.load,
                    ix.capacity,
                    level,
                    ix.idle_since_ms,
                );
                group.agents.remove(&rank);
            }
        }
    }

    /// Puts the agent back according to its current status, load and capacity.
    pub(super) fn reindex_agent(&mut self, id: &str) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        debug_assert!(agent.indexed.is_none(), "reindex without unindex");
        if agent.status != AgentStatus::Available {
            return;
        }
        let ix = Indexed {
            load: agent.load(),
            capacity: agent.profile.capacity,
            idle_since_ms: agent.idle_since_ms,
            free: agent.has_room(),
        };
        for &(g, level) in &agent.groups {
            let group = &mut self.groups[g];
            group.available_agents += 1;
            group.available_capacity += u64::from(ix.capacity);
            group.free_capacity += u64::from(ix.capacity.saturating_sub(ix.load));
            if ix.free {
                let rank = AgentRank::new(
                    &agent.rank_id,
                    ix.load,
                    ix.capacity,
                    level,
                    ix.idle_since_ms,
                );
                group.agents.insert(rank);
            }
        }
        agent.indexed = Some(ix);
    }

    /// Changes an agent with its index entries kept exact.
    pub(super) fn update_agent<R>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Agent) -> R,
    ) -> Option<R> {
        self.unindex_agent(id);
        let agent = self.agents.get_mut(id)?;
        let before = (agent.status, agent.active.is_empty());
        let result = change(agent);
        if before != (agent.status, agent.active.is_empty()) {
            self.activity_changed.insert(id.to_owned());
        }
        self.reindex_agent(id);
        Some(result)
    }

    /// Enters a new seek into its topic queue and group, and schedules its timers. The
    /// caller then stores it in the conversation.
    pub(super) fn index_seek(
        &mut self,
        conv_id: &str,
        seek: &mut Seek,
        notify: bool,
        sent_at: Option<u64>,
    ) {
        let slot = Slot {
            notify,
            group: seek.group,
            own: 0,
            rank: 0,
            sent_pos: 0,
            sent_at,
            held: false,
        };
        self.topic_insert(seek.topic, seek.key.clone(), slot);
        if seek.listed() {
            self.groups[seek.group].waiting.insert(seek.key.clone());
        }
        if let Some(after) = self.topics[seek.topic].next_widen_after(seek.level) {
            let at = seek.widen_from_ms.saturating_add(after);
            seek.widen_at = Some(at);
            self.schedule(at, Timer::Widen(conv_id.to_owned()));
        }
        if let Some(at) = seek.hold_until {
            self.schedule(at, Timer::Hold(conv_id.to_owned()));
        }
    }

    /// Takes an ended seek out of every index and cancels its timers. Its open offer, if
    /// any, must already be ended by the caller.
    pub(super) fn drop_seek(&mut self, conv_id: &str, seek: Seek) {
        debug_assert!(seek.offer.is_none(), "seek dropped with an open offer");
        if let Some(slot) = self.topic_remove(seek.topic, &seek.key) {
            if slot.notify {
                if let Some(conv) = self.convs.get_mut(conv_id) {
                    conv.pos_sent_at = slot.sent_at;
                }
            }
        }
        self.groups[seek.group].waiting.remove(&seek.key);
        if let Some(at) = seek.widen_at {
            self.unschedule(at, Timer::Widen(conv_id.to_owned()));
        }
        if let Some(at) = seek.hold_until {
            self.unschedule(at, Timer::Hold(conv_id.to_owned()));
        }
        if let Some(at) = seek.readmit_at {
            self.unschedule(at, Timer::Readmit(conv_id.to_owned()));
        }
    }

    /// Puts a seek whose offer ended back in its group's waiting set.
    pub(super) fn relist_seek(&mut self, conv_id: &str) {
        if let Some(seek) = self.convs.get(conv_id).and_then(|c| c.seek()) {
            if seek.listed() {
                self.groups[seek.group].waiting.insert(seek.key.clone());
            }
        }
    }

    fn topic_insert(&mut self, topic: usize, key: QueueKey, slot: Slot) {
        self.topics[topic].order.insert(key.clone(), slot);
        self.queue_changed(topic, &key, 1);
    }

    fn topic_remove(&mut self, topic: usize, key: &QueueKey) -> Option<Slot> {
        let interval = self.settings.queue_update_min_interval_ms;
        let t = &mut self.topics[topic];
        let slot = t.order.remove(key)?;
        if slot.held {
            let due = slot.sent_at.unwrap_or(0).saturating_add(interval);
            t.held.remove(&(due, key.clone()));
            self.reschedule_positions(topic);
        }
        self.queue_changed(topic, key, -1);
        Some(slot)
    }

    /// `key` entered (`delta` 1) or left (−1) `topic`'s queue: only entries served after
    /// it move, in that queue and in every competing one. Each of those queues that has
    /// such entries records the move and is marked dirty from `key` (queues of topics
    /// that do not compete are not touched); the flush before the call returns applies
    /// the moves and sends what changed.
    fn queue_changed(&mut self, topic: usize, key: &QueueKey, delta: i32) {
        let behind = |t: &Topic| {
            t.order
                .last_key_value()
                .is_some_and(|(last, _)| last >= key)
        };
        let t = &mut self.topics[topic];
        if behind(t) {
            lower_to(&mut t.own_dirty_from, key);
        }
        for i in 0..self.topics[topic].competing.len() {
            let c = self.topics[topic].competing[i];
            let t = &mut self.topics[c];
            if behind(t) {
                lower_to(&mut t.dirty_from, key);
                t.moves.push((key.clone(), delta));
                self.dirty_topics.insert(c);
            }
        }
    }
}

/// Moves a "dirty from" mark down to `key` if it is not already at or before it.
fn lower_to(mark: &mut Option<QueueKey>, key: &QueueKey) {
    if mark.as_ref().is_none_or(|from| key < from) {
        *mark = Some(key.clone());
    }
}

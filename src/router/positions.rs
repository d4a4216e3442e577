//! Queue positions and their eta, throttled per conversation.
//!
//! A position is the rank in the conversation's topic queue: every conversation
//! competing in that topic, including ones being offered and escalations into it (only
//! queued customers are told). A change marks the topic dirty *from the changed key*:
//! only entries behind it can move, so the flush that ends every call walks just that
//! tail, keeps each entry's `rank` exact, and sends what changed. A change the throttle
//! does not let through yet goes into the topic's `held` set, by the time it may be sent;
//! the `Positions` timer at the first of those times sends exactly the entries that are
//! due, using their kept ranks, without walking the queue.

use super::rank::QueueKey;
use super::state::Timer;
use super::topics::Group;
use super::types::Command;
use super::Router;

/// Estimated wait for the conversation at `position`, given the group it needs now:
/// the first `free_capacity` positions are served now; beyond them, slots free up at
/// `available_capacity / handle_ms`. With no available agent at all, one slot is assumed
/// so the estimate stays finite.
pub(super) fn eta_ms(position: u32, group: &Group, handle_ms: u64) -> u64 {
    let position = u64::from(position);
    if position <= group.free_capacity {
        return 0;
    }
    let behind = position - group.free_capacity;
    let servers = group.available_capacity.max(1);
    behind.saturating_mul(handle_ms) / servers
}

impl Router {
    /// Recomputes the ranks of the dirty tail of `topic` and sends the positions that
    /// changed and may be sent now; holds back the others.
    pub(super) fn flush_positions(&mut self, now_ms: u64, topic: usize, out: &mut Vec<Command>) {
        let interval = self.settings.queue_update_min_interval_ms;
        let groups = &self.groups;
        let t = &mut self.topics[topic];
        let Some(from) = t.dirty_from.take() else {
            return;
        };
        let tail = t.order.range(&from..).count();
        let mut rank = t.order.len() - tail;
        let handle_ms = t.handle_ewma_ms;
        for (key, slot) in t.order.range_mut(from..) {
            rank += 1;
            slot.rank = u32::try_from(rank).unwrap_or(u32::MAX);
            if !slot.notify || slot.sent_pos == slot.rank {
                continue;
            }
            let due = slot.sent_at.map(|at| at.saturating_add(interval));
            match due {
                Some(due) if now_ms < due => {
                    if !slot.held {
                        slot.held = true;
                        t.held.insert((due, key.clone()));
                    }
                }
                _ => {
                    if slot.held {
                        slot.held = false;
                        if let Some(due) = due {
                            t.held.remove(&(due, key.clone()));
                        }
                    }
                    out.push(position_command(
                        key,
                        slot.rank,
                        &groups[slot.group],
                        handle_ms,
                    ));
                    slot.sent_pos = slot.rank;
                    slot.sent_at = Some(now_ms);
                }
            }
        }
        self.reschedule_positions(topic);
    }

    /// The throttle of some held-back positions ran out: send those (their ranks are
    /// exact once any pending flush of the topic is done).
    pub(super) fn positions_due(
        &mut self,
        now_ms: u64,
        topic: usize,
        at: u64,
        out: &mut Vec<Command>,
    ) {
        if self.topics[topic].held_timer != Some(at) {
            return;
        }
        self.topics[topic].held_timer = None;
        if self.dirty_topics.remove(&topic) {
            self.flush_positions(now_ms, topic, out);
        }
        let groups = &self.groups;
        let t = &mut self.topics[topic];
        let handle_ms = t.handle_ewma_ms;
        while let Some((due, key)) = t.held.first().cloned() {
            if due > now_ms {
                break;
            }
            t.held.pop_first();
            let Some(slot) = t.order.get_mut(&key) else {
                continue;
            };
            slot.held = false;
            if slot.notify && slot.rank != slot.sent_pos {
                out.push(position_command(
                    &key,
                    slot.rank,
                    &groups[slot.group],
                    handle_ms,
                ));
                slot.sent_pos = slot.rank;
                slot.sent_at = Some(now_ms);
            }
        }
        self.reschedule_positions(topic);
    }

    /// Keeps the topic's `Positions` timer at the first held-back time.
    pub(super) fn reschedule_positions(&mut self, topic: usize) {
        let t = &mut self.topics[topic];
        let want = t.held.first().map(|(due, _)| *due);
        if want == t.held_timer {
            return;
        }
        let previous = std::mem::replace(&mut t.held_timer, want);
        if let Some(at) = previous {
            self.unschedule(at, Timer::Positions(topic));
        }
        if let Some(at) = want {
            self.schedule(at, Timer::Positions(topic));
        }
    }
}

fn position_command(key: &QueueKey, position: u32, group: &Group, handle_ms: u64) -> Command {
    Command::QueuePosition {
        conversation: key.id.to_string(),
        position,
        eta_ms: eta_ms(position, group, handle_ms),
    }
}

//! Queue positions and their eta, throttled per conversation.
//!
//! A position is the rank in the conversation's topic queue (every conversation competing
//! in that topic, including ones being offered and escalations into it; only queued
//! customers are told). A change marks the topic dirty *from the changed key*: only
//! entries behind it can move, so the flush counts and walks just that tail. A change a
//! conversation may not be told yet (throttle) is remembered as `retry_from`/`retry_at`
//! and sent by the `tick` at `retry_at`.

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
    /// Sends the queue positions of `topic` that changed and may be sent now.
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
        let mut held_from = None;
        let mut held_until: Option<u64> = None;
        for (key, slot) in t.order.range_mut(from..) {
            rank += 1;
            let position = u32::try_from(rank).unwrap_or(u32::MAX);
            if !slot.notify || slot.sent_pos == position {
                continue;
            }
            match slot.sent_at.map(|at| at.saturating_add(interval)) {
                Some(due) if now_ms < due => {
                    held_until = Some(held_until.map_or(due, |h| h.min(due)));
                    held_from.get_or_insert_with(|| key.clone());
                }
                _ => {
                    out.push(Command::QueuePosition {
                        conversation: key.id.clone(),
                        position,
                        eta_ms: eta_ms(position, &groups[slot.group], handle_ms),
                    });
                    slot.sent_pos = position;
                    slot.sent_at = Some(now_ms);
                }
            }
        }
        let (Some(held_from), Some(held_until)) = (held_from, held_until) else {
            return;
        };
        // Merge with changes held back earlier that this flush did not look at.
        if t.retry_from.as_ref().is_none_or(|r| held_from < *r) {
            t.retry_from = Some(held_from);
        }
        let previous = t.retry_at;
        if previous.is_none_or(|p| held_until < p) {
            t.retry_at = Some(held_until);
            if let Some(p) = previous {
                self.unschedule(p, Timer::Positions(topic));
            }
            self.schedule(held_until, Timer::Positions(topic));
        }
    }

    /// The throttle of some held-back updates ran out: recompute from there.
    pub(super) fn positions_due(&mut self, topic: usize, at: u64) {
        let t = &mut self.topics[topic];
        if t.retry_at != Some(at) {
            return;
        }
        t.retry_at = None;
        if let Some(from) = t.retry_from.take() {
            if t.dirty_from.as_ref().is_none_or(|d| from < *d) {
                t.dirty_from = Some(from);
            }
            self.dirty_topics.insert(topic);
        }
    }
}

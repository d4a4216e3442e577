//! Queue positions and their eta, throttled per conversation.
//!
//! A conversation's position is 1 + the number of conversations served before it (by
//! [`QueueKey`]) in its topic's queue and in the queues of every topic that competes with
//! it for the same agents (`topics::competes`, fixed at construction). Every queue entry
//! counts, including ones being offered and escalations into a topic (only queued
//! customers are told).
//!
//! A key entering or leaving a queue moves exactly the entries served after it, by one,
//! in that queue and in every competing one. So it is recorded as a *move* (key, ±1) in
//! each of those queues that has entries behind it, which is marked dirty from that key
//! (`index.rs`); topics that do not compete are never touched. The flush that ends every
//! call walks each dirty queue from its first move on, once, adding up the moves in
//! front of each entry as it goes: every entry keeps its exact `rank` without looking at
//! any other queue. Only an entry new in the queue is counted from scratch: 1 + its
//! index in its own queue + the entries of each competing queue in front of it, one
//! lookup each, through the `own` index every entry keeps in its own queue.
//!
//! A change the throttle does not let through yet goes into the topic's `held` set, by
//! the time it may be sent; the `Positions` timer at the first of those times sends
//! exactly the entries that are due, using their kept ranks, without walking any queue.

use std::collections::BTreeMap;
use std::mem;

use super::rank::QueueKey;
use super::state::Timer;
use super::topics::{Group, Slot};
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

/// The entries of a queue served before `key` (its `own` indexes must be exact).
fn count_before(queue: &BTreeMap<QueueKey, Slot>, key: &QueueKey) -> u32 {
    match queue.range(key..).next() {
        Some((_, slot)) => slot.own,
        None => u32::try_from(queue.len()).unwrap_or(u32::MAX),
    }
}

impl Router {
    /// Brings the ranks of the dirty tail of `topic` up to date and sends the positions
    /// that changed and may be sent now; holds back the others.
    pub(super) fn flush_positions(&mut self, now_ms: u64, topic: usize, out: &mut Vec<Command>) {
        let Some(from) = self.topics[topic].dirty_from.take() else {
            return;
        };
        // Own indexes exact, in this queue and in those a new entry is counted against.
        for i in 0..self.topics[topic].competing.len() {
            let c = self.topics[topic].competing[i];
            self.refresh_own(c);
        }
        let interval = self.settings.queue_update_min_interval_ms;
        let t = &mut self.topics[topic];
        let handle_ms = t.handle_ewma_ms;
        let mut moves = mem::take(&mut t.moves);
        moves.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Out of the table for the walk, so the competing queues can be read beside it.
        let mut order = mem::take(&mut t.order);
        let mut held = mem::take(&mut t.held);
        let topics = &self.topics;
        let (mut applied, mut shift) = (0, 0i64);
        for (key, slot) in order.range_mut(&from..) {
            // The moves in front of this entry (strictly: its own entering is not one).
            while let Some((_, delta)) = moves.get(applied).filter(|(at, _)| at < key) {
                shift += i64::from(*delta);
                applied += 1;
            }
            slot.rank = if slot.rank == 0 {
                // New here: counted from scratch.
                topics[topic]
                    .competing
                    .iter()
                    .filter(|&&c| c != topic)
                    .fold(slot.own.saturating_add(1), |rank, &c| {
                        rank.saturating_add(count_before(&topics[c].order, key))
                    })
            } else {
                u32::try_from(i64::from(slot.rank) + shift).unwrap_or(1)
            };
            if !slot.notify || slot.sent_pos == slot.rank {
                continue;
            }
            let due = slot.sent_at.map(|at| at.saturating_add(interval));
            match due {
                Some(due) if now_ms < due => {
                    if !slot.held {
                        slot.held = true;
                        held.insert((due, key.clone()));
                    }
                }
                _ => {
                    if slot.held {
                        slot.held = false;
                        if let Some(due) = due {
                            held.remove(&(due, key.clone()));
                        }
                    }
                    out.push(position_command(
                        key,
                        slot.rank,
                        &self.groups[slot.group],
                        handle_ms,
                    ));
                    slot.sent_pos = slot.rank;
                    slot.sent_at = Some(now_ms);
                }
            }
        }
        moves.clear();
        let t = &mut self.topics[topic];
        t.order = order;
        t.held = held;
        t.moves = moves;
        self.reschedule_positions(topic);
    }

    /// Makes the `own` indexes of a queue exact again from its first change on.
    fn refresh_own(&mut self, topic: usize) {
        let t = &mut self.topics[topic];
        let Some(from) = t.own_dirty_from.take() else {
            return;
        };
        let first = t
            .order
            .range(..&from)
            .next_back()
            .map_or(0, |(_, slot)| slot.own + 1);
        for ((_, slot), own) in t.order.range_mut(&from..).zip(first..) {
            slot.own = own;
        }
    }

    /// The throttle of some held-back positions ran out: send those (their ranks are
    /// exact once any pending flush of the topic is done; changes in competing queues
    /// mark this topic dirty too).
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

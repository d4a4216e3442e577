//! The two orderings that decide who gets what, and nothing else:
//! - [`AgentRank`]: which eligible agent is offered a conversation (smallest first);
//! - [`QueueKey`]: which waiting conversation is served first (smallest first).
//!
//! Both are the keys of ordered sets in the indexes, so the *derived* `Ord` — fields
//! compared in declaration order — IS the rule. To change a rule, reorder or replace
//! fields here (and the constructor); no other code compares agents or conversations.

use std::cmp::{Ordering, Reverse};
use std::sync::Arc;

/// An agent's load as the exact fraction `load / capacity` (capacity is never 0 for an
/// indexed agent), so 1/2 and 2/4 compare equal without floating point.
#[derive(Debug, Clone, Copy)]
pub(super) struct LoadRatio {
    pub(super) load: u32,
    pub(super) capacity: u32,
}

impl Ord for LoadRatio {
    fn cmp(&self, other: &Self) -> Ordering {
        let lhs = u64::from(self.load) * u64::from(other.capacity.max(1));
        let rhs = u64::from(other.load) * u64::from(self.capacity.max(1));
        lhs.cmp(&rhs)
    }
}

impl PartialOrd for LoadRatio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// Equality must agree with `Ord` (1/2 == 2/4) or the ordered sets misbehave.
impl PartialEq for LoadRatio {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for LoadRatio {}

/// The agent selection rule. Among eligible agents the smallest `AgentRank` wins:
/// 1. least loaded: (assigned + held offers) ÷ capacity;
/// 2. highest total level in the skills the conversation currently requires;
/// 3. longest idle: earliest last assignment (never assigned counts as time 0);
/// 4. agent id, so the choice is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct AgentRank {
    pub(super) load: LoadRatio,
    pub(super) level: Reverse<u32>,
    pub(super) idle_since_ms: u64,
    /// Shared with the agent record: re-indexing an agent allocates nothing.
    pub(super) id: Arc<str>,
}

impl AgentRank {
    pub(super) fn new(
        id: &Arc<str>,
        load: u32,
        capacity: u32,
        level_sum: u32,
        idle_since_ms: u64,
    ) -> Self {
        AgentRank {
            load: LoadRatio { load, capacity },
            level: Reverse(level_sum),
            idle_since_ms,
            id: Arc::clone(id),
        }
    }
}

/// Lanes inside one priority: conversations re-queued after losing their agent go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Lane {
    Requeued,
    New,
}

/// The serving order of waiting conversations. The smallest key is served first:
/// 1. highest priority;
/// 2. re-queued after an agent loss before the rest of that priority;
/// 3. oldest `waiting_since` (transfers and re-queues keep the original one);
/// 4. enqueue order, then id, so the order is total and deterministic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct QueueKey {
    pub(super) priority: Reverse<i32>,
    pub(super) lane: Lane,
    pub(super) waiting_since_ms: u64,
    pub(super) seq: u64,
    /// Shared, so the many copies the indexes keep cost no allocation.
    pub(super) id: Arc<str>,
}

impl QueueKey {
    pub(super) fn new(
        id: &str,
        priority: i32,
        lane: Lane,
        waiting_since_ms: u64,
        seq: u64,
    ) -> Self {
        QueueKey {
            priority: Reverse(priority),
            lane,
            waiting_since_ms,
            seq,
            id: Arc::from(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_ratio_compares_fractions_exactly() {
        let half = LoadRatio {
            load: 1,
            capacity: 2,
        };
        let two_quarters = LoadRatio {
            load: 2,
            capacity: 4,
        };
        let third = LoadRatio {
            load: 1,
            capacity: 3,
        };
        assert_eq!(half, two_quarters);
        assert!(third < half);
        assert!(
            LoadRatio {
                load: 0,
                capacity: 5
            } < LoadRatio {
                load: 1,
                capacity: 5
            }
        );
    }

    #[test]
    fn agent_rank_tie_breaks_in_order() {
        let base = AgentRank::new(&"b".into(), 1, 2, 5, 100);
        assert!(
            AgentRank::new(&"z".into(), 0, 2, 1, 900) < base,
            "load first"
        );
        assert!(
            AgentRank::new(&"z".into(), 2, 4, 6, 900) < base,
            "then level"
        );
        assert!(AgentRank::new(&"z".into(), 2, 4, 5, 50) < base, "then idle");
        assert!(AgentRank::new(&"a".into(), 2, 4, 5, 100) < base, "then id");
    }

    #[test]
    fn queue_key_tie_breaks_in_order() {
        let base = QueueKey::new("b", 0, Lane::New, 100, 7);
        assert!(
            QueueKey::new("z", 1, Lane::New, 900, 9) < base,
            "priority first"
        );
        assert!(
            QueueKey::new("z", 0, Lane::Requeued, 900, 9) < base,
            "then lane"
        );
        assert!(QueueKey::new("z", 0, Lane::New, 50, 9) < base, "then wait");
        assert!(QueueKey::new("z", 0, Lane::New, 100, 3) < base, "then seq");
    }
}

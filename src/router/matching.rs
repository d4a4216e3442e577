//! Matching, in both directions:
//! - a conversation looking for an agent takes the head of its group's agent set
//!   (skipping agents it excludes);
//! - an agent with a free slot compares the heads of the waiting sets of the groups it
//!   qualifies for and takes the best conversation, once per free slot.
//!
//! Who wins is decided by `rank.rs` alone; this module only walks the ordered sets. What
//! happens to the winner (offer or assignment) is `handover.rs`.

use super::decision::{DecisionEvent, Rule};
use super::rank::{Lane, QueueKey};
use super::state::{Assigned, Conv, Seek, Transfer};
use super::types::Command;
use super::Router;

impl Router {
    /// A fresh seek for `topic`, at the widening level reached after waiting since
    /// `widen_from_ms`.
    #[allow(clippy::too_many_arguments)] // all plain fields of the seek; a builder would only hide them
    pub(super) fn new_seek(
        &self,
        now_ms: u64,
        topic: usize,
        conv_id: &str,
        priority: i32,
        lane: Lane,
        waiting_since_ms: u64,
        seq: u64,
        widen_from_ms: u64,
    ) -> Seek {
        let t = &self.topics[topic];
        let level = t.level_at(now_ms.saturating_sub(widen_from_ms));
        Seek {
            topic,
            key: QueueKey::new(conv_id, priority, lane, waiting_since_ms, seq),
            level,
            group: t.levels[level].group,
            widen_from_ms,
            widen_at: None,
            excluded: Default::default(),
            offer: None,
            hold_until: None,
            readmit_at: None,
        }
    }

    /// False for an escalation whose deadline has passed (its timer is about to fire).
    fn seek_open(conv: &Conv, now_ms: u64) -> bool {
        match conv.assigned() {
            Some(Assigned {
                transfer: Some(Transfer::ToTopic { deadline_ms, .. }),
                ..
            }) => *deadline_ms > now_ms,
            _ => true,
        }
    }

    /// Whether `agent_id` may be given the conversation behind this waiting key.
    fn may_take(&self, now_ms: u64, key: &QueueKey, agent_id: &str) -> bool {
        self.convs.get(&*key.id).is_some_and(|c| {
            Self::seek_open(c, now_ms)
                && c.seek().is_some_and(|s| !s.excluded.contains_key(agent_id))
        })
    }

    /// Whether the agent is eligible for the conversation right now (used for sticky
    /// routing, which bypasses the ranking).
    pub(super) fn eligible_for(&self, agent_id: &str, conv_id: &str) -> bool {
        let Some(agent) = self.agents.get(agent_id) else {
            return false;
        };
        let Some(seek) = self.convs.get(conv_id).and_then(Conv::seek) else {
            return false;
        };
        agent.has_room()
            && agent.qualifies(seek.group)
            && seek.listed()
            && !seek.excluded.contains_key(agent_id)
    }

    /// Offers a seeking conversation to its best eligible agent, if there is one.
    pub(super) fn seek_agent(&mut self, now_ms: u64, conv_id: &str, out: &mut Vec<Command>) {
        let Some(conv) = self.convs.get(conv_id) else {
            return;
        };
        let Some(seek) = conv.seek() else {
            return;
        };
        if !seek.listed() || !Self::seek_open(conv, now_ms) {
            return;
        }
        let pick = self.groups[seek.group]
            .agents
            .iter()
            .find(|rank| !seek.excluded.contains_key(&*rank.id))
            .map(|rank| rank.id.to_string());
        match pick {
            Some(agent) => {
                self.offer_to(now_ms, conv_id, &agent, Rule::Ranking, out);
            }
            None => {
                let decision = self.explain(
                    now_ms,
                    conv_id,
                    DecisionEvent::Queued,
                    None,
                    Rule::NoEligibleAgent,
                );
                self.record(decision, out);
            }
        }
    }

    /// Gives an agent with free slots the best waiting conversations it may serve, one per
    /// slot. Only the heads of its groups' waiting sets are compared.
    pub(super) fn seek_work(&mut self, now_ms: u64, agent_id: &str, out: &mut Vec<Command>) {
        loop {
            let Some(agent) = self.agents.get(agent_id) else {
                return;
            };
            if !agent.has_room() {
                return;
            }
            let mut best: Option<&QueueKey> = None;
            for &(g, _) in &agent.groups {
                for key in &self.groups[g].waiting {
                    if best.is_some_and(|b| key >= b) {
                        break;
                    }
                    // Usually the head; later entries only when the agent is excluded there.
                    if self.may_take(now_ms, key, agent_id) {
                        best = Some(key);
                        break;
                    }
                }
            }
            let Some(conv_id) = best.map(|k| k.id.to_string()) else {
                return;
            };
            if !self.offer_to(now_ms, &conv_id, agent_id, Rule::ServingOrder, out) {
                return;
            }
        }
    }
}

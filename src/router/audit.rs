//! The routing audit: why a conversation went where it went. Each decision (an offer
//! or assignment, a decline, an expiry, a widening step, a requeue, or finding nobody)
//! is explained by the core itself at the moment it decides, from the same indexes the
//! decision was read from: the candidates in rank order with their rank keys, every
//! other agent with the reason it was passed over, and the rule that decided.
//!
//! Only built when `RouterConfig::audit` is on; building one walks every agent once.

use super::decision::{Candidate, Decision, DecisionEvent, PassReason, PassedOver, Rule};
use super::state::{Exclusion, Seek};
use super::types::AgentStatus;
use super::Router;

/// Most candidates listed per decision (the rest are counted).
const MAX_CANDIDATES: usize = 10;
/// Most passed-over agents listed per decision (the rest are counted).
const MAX_PASSED_OVER: usize = 50;

impl Router {
    /// Explains a decision about a conversation with an active seek (queued or
    /// escalating). `chosen` is left out of the lists; call it before the choice
    /// changes the chosen agent's load so its rank keys are the ones that won.
    pub(super) fn explain(
        &self,
        now_ms: u64,
        conv_id: &str,
        event: DecisionEvent,
        chosen: Option<&str>,
        rule: Rule,
    ) -> Option<Box<Decision>> {
        if !self.settings.audit {
            return None;
        }
        let conv = self.convs.get(conv_id)?;
        let topic = self.topics[conv.topic].rule.name.clone();
        let Some(seek) = conv.seek() else {
            return Some(Box::new(Decision {
                conversation: conv_id.to_owned(),
                at_ms: now_ms,
                event,
                topic,
                level: 0,
                required_skills: Vec::new(),
                chosen: chosen.map(str::to_owned),
                rule,
                candidates: Vec::new(),
                candidates_total: 0,
                passed_over: Vec::new(),
                passed_over_total: 0,
            }));
        };
        let group = &self.groups[seek.group];
        let mut candidates = Vec::new();
        let mut candidates_total = 0u32;
        for rank in group.agents.iter() {
            if seek.excluded.contains_key(&*rank.id) {
                continue;
            }
            candidates_total += 1;
            if candidates.len() < MAX_CANDIDATES {
                candidates.push(Candidate {
                    agent: rank.id.to_string(),
                    load: rank.load.load,
                    capacity: rank.load.capacity,
                    level_sum: rank.level.0,
                    idle_since_ms: rank.idle_since_ms,
                });
            }
        }
        let mut passed_over = Vec::new();
        let mut passed_over_total = 0u32;
        for id in self.agents.keys() {
            let Some(reason) = self.pass_reason(seek, id) else {
                continue;
            };
            passed_over_total += 1;
            if passed_over.len() < MAX_PASSED_OVER {
                passed_over.push(PassedOver {
                    agent: id.clone(),
                    reason,
                });
            }
        }
        Some(Box::new(Decision {
            conversation: conv_id.to_owned(),
            at_ms: now_ms,
            event,
            topic,
            level: seek.level,
            required_skills: group.skills.clone(),
            chosen: chosen.map(str::to_owned),
            rule,
            candidates,
            candidates_total,
            passed_over,
            passed_over_total,
        }))
    }

    /// Why `agent_id` is not a candidate for this seek, or None if it is one.
    fn pass_reason(&self, seek: &Seek, agent_id: &str) -> Option<PassReason> {
        let agent = self.agents.get(agent_id)?;
        match agent.status {
            AgentStatus::Offline => return Some(PassReason::Offline),
            AgentStatus::Away => {
                return Some(PassReason::Away {
                    away_reason: agent.away_reason.clone(),
                })
            }
            AgentStatus::WrapUp => return Some(PassReason::WrapUp),
            AgentStatus::Available => {}
        }
        if !agent.qualifies(seek.group) {
            let missing = self.groups[seek.group]
                .skills
                .iter()
                .filter(|s| agent.profile.skills.get(*s).copied().unwrap_or(0) == 0)
                .cloned()
                .collect();
            return Some(PassReason::MissingSkill { missing });
        }
        match seek.excluded.get(agent_id) {
            Some(Exclusion::Declined { .. }) => return Some(PassReason::DeclinedBefore),
            Some(Exclusion::Expired { .. }) => return Some(PassReason::ExpiredBefore),
            Some(Exclusion::Owner) => return Some(PassReason::Owner),
            None => {}
        }
        if agent.load() >= agent.profile.capacity {
            return Some(PassReason::AtCapacity {
                load: agent.load(),
                capacity: agent.profile.capacity,
            });
        }
        None
    }

    /// Queues the explanation, if the audit is on.
    pub(super) fn record(&self, decision: Option<Box<Decision>>, out: &mut Vec<super::Command>) {
        if let Some(decision) = decision {
            out.push(super::Command::Decision(decision));
        }
    }
}

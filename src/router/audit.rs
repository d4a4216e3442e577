//! The routing audit: why a conversation went where it went. Each decision (an offer
//! or assignment, a decline, an expiry, a widening step, a requeue, or finding nobody)
//! is explained by the core itself at the moment it decides, from the same indexes the
//! decision was read from: the candidates in rank order with their rank keys, every
//! other agent with the reason it was passed over, and the rule that decided.
//!
//! Only built when `RouterConfig::audit` is on; building one walks every agent once.

use serde::Serialize;

use super::state::{Exclusion, Seek};
use super::types::{AgentId, AgentStatus, ConversationId};
use super::Router;

/// Most candidates listed per decision (the rest are counted).
const MAX_CANDIDATES: usize = 10;
/// Most passed-over agents listed per decision (the rest are counted).
const MAX_PASSED_OVER: usize = 50;

/// One explained decision about one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub conversation: ConversationId,
    /// The caller's clock (the hub's is Unix milliseconds).
    #[serde(rename = "at")]
    pub at_ms: u64,
    #[serde(flatten)]
    pub event: DecisionEvent,
    pub topic: String,
    /// Widening level reached (0: none yet) and the skills required at it.
    pub level: usize,
    pub required_skills: Vec<String>,
    /// The agent given the conversation, if any.
    pub chosen: Option<AgentId>,
    pub rule: Rule,
    /// Eligible agents, best first, with the keys they were ranked by.
    pub candidates: Vec<Candidate>,
    pub candidates_total: u32,
    pub passed_over: Vec<PassedOver>,
    pub passed_over_total: u32,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DecisionEvent {
    /// Offered to `chosen`.
    Offered,
    /// Given to `chosen` directly (it auto-accepts).
    Assigned,
    /// Nobody may take it now: it waits.
    Queued,
    /// `agent` said no; it will not be offered this conversation again.
    Declined { agent: AgentId },
    /// `agent` let the offer run out; it will not be offered this conversation again.
    Expired { agent: AgentId },
    /// `agent` can no longer hold the offer (away, offline, capacity lowered).
    Withdrawn { agent: AgentId },
    /// It waited long enough for a widening step: these skills are no longer required.
    Widened { dropped_skills: Vec<String> },
    /// `agent` lost it (grace over, removed, or its join could not be stored): it is
    /// queued again at the front of its priority.
    Requeued { agent: AgentId },
}

/// The rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Best eligible agent: least loaded (load ÷ capacity), then highest total level in
    /// the required skills, then longest idle, then agent id.
    Ranking,
    /// Sticky routing: the customer's previous agent was eligible.
    PreferredAgent,
    /// An agent's slot came free: it takes the first waiting conversation it may serve,
    /// in serving order (priority, re-queued first, longest waiting).
    ServingOrder,
    /// A person named the agent (a transfer to an agent): no ranking, no skill check.
    Requested,
    /// No eligible agent: see `passed_over`.
    NoEligibleAgent,
    /// Not a choice: what an agent or the clock did (decline, expiry, widening, requeue).
    Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub agent: AgentId,
    pub load: u32,
    pub capacity: u32,
    pub level_sum: u32,
    /// Router clock of its last assignment (0: never): lower is longer idle.
    pub idle_since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedOver {
    pub agent: AgentId,
    #[serde(flatten)]
    pub reason: PassReason,
}

/// Why an agent was not a candidate; the first that applies, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PassReason {
    Offline,
    Away {
        away_reason: Option<String>,
    },
    WrapUp,
    MissingSkill {
        missing: Vec<String>,
    },
    /// It declined this conversation before.
    DeclinedBefore,
    /// It let an offer of this conversation expire before.
    ExpiredBefore,
    /// It owns the conversation (an escalation looks for someone else).
    Owner,
    AtCapacity {
        load: u32,
        capacity: u32,
    },
}

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
            Some(Exclusion::Declined) => return Some(PassReason::DeclinedBefore),
            Some(Exclusion::Expired) => return Some(PassReason::ExpiredBefore),
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

//! The routing audit's vocabulary: one explained decision, what happened, the rule that
//! decided, the candidates with their rank keys and why others were passed over. Plain
//! data (the explaining is `audit.rs`); ids are plain strings so this file stands alone.

use serde::Serialize;

/// One explained decision about one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub conversation: String,
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
    pub chosen: Option<String>,
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
    Declined { agent: String },
    /// `agent` let the offer run out; it will not be offered this conversation again.
    Expired { agent: String },
    /// `agent` can no longer hold the offer (away, offline, capacity lowered).
    Withdrawn { agent: String },
    /// It waited long enough for a widening step: these skills are no longer required.
    Widened { dropped_skills: Vec<String> },
    /// `agent` lost it (grace over, removed, or its join could not be stored): it is
    /// queued again at the front of its priority.
    Requeued { agent: String },
    /// The exclusion cooldown passed: these agents, who declined it or let it expire,
    /// may be offered it again.
    Readmitted { agents: Vec<String> },
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
    /// Taken from the queue by the agent itself, or assigned to it by a supervisor.
    Claimed,
    /// No eligible agent: see `passed_over`.
    NoEligibleAgent,
    /// Not a choice: what an agent or the clock did (decline, expiry, widening, requeue).
    Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub agent: String,
    pub load: u32,
    pub capacity: u32,
    pub level_sum: u32,
    /// Router clock of its last assignment (0: never): lower is longer idle.
    pub idle_since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedOver {
    pub agent: String,
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

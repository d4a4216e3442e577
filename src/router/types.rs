//! The router's public vocabulary: configuration, agent profiles, the commands it emits,
//! its errors and its statistics. Plain data with defaults and small helpers; no routing
//! logic lives here.

use std::collections::BTreeMap;
use std::fmt;

/// Agent ids are chosen by the admin (`[A-Za-z0-9_.-]{1,64}`).
pub type AgentId = String;
/// Conversation ids are made by the hub (`c_<16 hex>`).
pub type ConversationId = String;
/// Offer ids are made by the router (`o_<16 hex>`).
pub type OfferId = String;

/// One bullseye-widening step: once a conversation has waited `after_ms`, these skills
/// are no longer required of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expand {
    pub after_ms: u64,
    pub drop_skills: Vec<String>,
}

/// The routing rule of one topic (a `[[topic]]` of the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    pub name: String,
    /// Every listed skill is required of the agent (until widened away).
    pub skills: Vec<String>,
    /// Higher is served first.
    pub priority: i32,
    pub offer_timeout_ms: u64,
    pub transfer_timeout_ms: u64,
    pub expand: Vec<Expand>,
    /// Added to `priority` when a conversation is escalated into this topic.
    pub escalation_priority_boost: i32,
    /// After its owner closes a conversation of this topic, the owner is in wrap-up
    /// (no new offers) this long; 0: none.
    pub wrap_up_ms: u64,
    /// A customer still queued this long after it started waiting is offered to leave
    /// a message instead (`Command::LeaveMessage`); 0: never.
    pub leave_message_after_ms: u64,
}

impl TopicRule {
    /// A topic with no required skills, priority 0 and the protocol's default timeouts.
    pub fn new(name: impl Into<String>) -> Self {
        TopicRule {
            name: name.into(),
            skills: Vec::new(),
            priority: 0,
            offer_timeout_ms: 15_000,
            transfer_timeout_ms: 60_000,
            expand: Vec::new(),
            escalation_priority_boost: 0,
            wrap_up_ms: 0,
            leave_message_after_ms: 0,
        }
    }
}

/// Everything the router needs to know; see `docs/routing.md` for how each field is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    pub topics: Vec<TopicRule>,
    /// Topic for conversations naming none or an unknown one. If it names no topic, the
    /// first topic is used; with no topics at all, an empty-skill topic of this name is made.
    pub default_topic: String,
    /// Offers an agent may let expire in a row before it is set away (0: never).
    pub max_missed_offers: u32,
    /// How long an agent whose connections all dropped keeps its conversations.
    pub agent_grace_ms: u64,
    /// A customer gone this long gets its conversation abandoned.
    pub customer_idle_timeout_ms: u64,
    /// At most one queue position update per conversation per this interval.
    pub queue_update_min_interval_ms: u64,
    /// Prior for the handle-time estimate behind `eta_ms`.
    pub default_handle_ms: u64,
    /// Mixed into offer ids. Pass a random value per process so ids made after a restart
    /// cannot collide with offers a client still holds; tests pass a constant.
    pub offer_id_seed: u64,
    /// Emit a [`Command::Decision`] explaining each routing decision (the routing audit).
    /// The simulator turns it off: it costs a walk over the agents per decision.
    pub audit: bool,
    /// An agent that declined a conversation or let its offer expire is not offered it
    /// again for this long; then it may be, so nobody waits forever because everyone
    /// eligible once passed on it.
    pub exclusion_cooldown_ms: u64,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            topics: vec![TopicRule::new("general")],
            default_topic: "general".to_owned(),
            max_missed_offers: 2,
            agent_grace_ms: 60_000,
            customer_idle_timeout_ms: 600_000,
            queue_update_min_interval_ms: 1_000,
            default_handle_ms: 300_000,
            offer_id_seed: 0,
            audit: true,
            exclusion_cooldown_ms: 60_000,
        }
    }
}

/// What the router knows of an agent. A skill is held when its level is at least 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    pub id: AgentId,
    pub name: String,
    pub skills: BTreeMap<String, u32>,
    /// Conversations (assigned plus offered) the agent may hold at once.
    pub capacity: u32,
    /// Assigned directly, without an offer.
    pub auto_accept: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentStatus {
    Available,
    Away,
    /// After closing a chat of a topic with a wrap-up time: no new offers until it ends
    /// (or the agent sets itself available), then Available again.
    WrapUp,
    /// All connections gone; the grace timer runs while it still holds conversations.
    Offline,
}

impl AgentStatus {
    /// The protocol's spelling (`available`, `away`, `offline`).
    pub fn as_wire(self) -> &'static str {
        match self {
            AgentStatus::Available => "available",
            AgentStatus::Away => "away",
            AgentStatus::WrapUp => "wrap_up",
            AgentStatus::Offline => "offline",
        }
    }
}

/// The away reason the router itself gives an agent that missed too many offers.
pub const MISSED_OFFERS: &str = "missed_offers";

/// An agent's state for the time-in-state reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub agent: AgentId,
    pub status: AgentStatus,
    /// Set while Away: the reason it gave (or [`MISSED_OFFERS`]).
    pub away_reason: Option<String>,
    /// Holds at least one assigned conversation.
    pub busy: bool,
}

/// A conversation entering the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    pub id: ConversationId,
    /// Unknown names route to the default topic.
    pub topic: String,
    pub waiting_since_ms: u64,
    /// Sticky routing: offered to this agent first when it is eligible at enqueue time.
    pub preferred_agent: Option<AgentId>,
}

/// A decision for the hub to carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Offer {
        offer_id: OfferId,
        agent: AgentId,
        conversation: ConversationId,
        topic: String,
        priority: i32,
        waited_ms: u64,
        /// Milliseconds from now until the offer is withdrawn (the wire's `expires_ms`).
        expires_ms: u64,
        transfer: Option<TransferInfo>,
    },
    Revoke {
        offer_id: OfferId,
        agent: AgentId,
        conversation: ConversationId,
        reason: RevokeReason,
    },
    Assign {
        agent: AgentId,
        conversation: ConversationId,
        /// The owner before a transfer; the hub sends it `left` (reason `transferred`).
        previous_agent: Option<AgentId>,
        /// False when the agent auto-accepts.
        via_offer: bool,
    },
    QueuePosition {
        conversation: ConversationId,
        /// 1 = next.
        position: u32,
        eta_ms: u64,
    },
    /// The agent missed too many offers in a row: its status is now Away (reason
    /// [`MISSED_OFFERS`]).
    AgentAway { agent: AgentId },
    /// The agent closed a chat of a topic with a wrap-up time: its status is WrapUp for
    /// `ends_in_ms` more (a later close may extend it; each extension is sent).
    WrapUp { agent: AgentId, ends_in_ms: u64 },
    /// The wrap-up time ran out: the agent is Available again.
    WrapUpEnded { agent: AgentId },
    /// What an agent is doing changed (status, away reason, or whether it holds a chat):
    /// the time-in-state reports. Sent once per change, at the end of the operation.
    Activity(Activity),
    /// Why a conversation went where it went (the routing audit), when `audit` is on.
    Decision(Box<super::decision::Decision>),
    /// A transfer did not happen; the owner keeps the conversation.
    TransferFailed {
        conversation: ConversationId,
        requested_by: AgentId,
        reason: TransferFailReason,
    },
    /// The agent lost the conversation (grace ran out, or it was removed); the
    /// conversation is queued again at the front of its priority.
    Unassigned {
        agent: AgentId,
        conversation: ConversationId,
    },
    /// The customer has waited `leave_message_after_ms` and is still queued: the hub
    /// offers it to leave a message instead (it stays queued unless it does).
    LeaveMessage {
        conversation: ConversationId,
        waited_ms: u64,
    },
    /// The customer has been gone longer than the idle timeout; the hub closes the
    /// conversation (resolution `abandoned`) and then calls `close`.
    Abandon { conversation: ConversationId },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferInfo {
    /// Who asked for the transfer (the owner, or a supervisor).
    pub from_agent: AgentId,
    pub note: Option<String>,
    /// Set for escalations to a topic.
    pub to_topic: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// Not answered in time.
    Expired,
    /// Someone else took the conversation. The router itself never needs it (one offer
    /// per conversation); kept for the hub (another tab of the same agent accepted).
    Taken,
    /// The conversation was closed.
    Closed,
    /// The agent can no longer take it: it went away or offline, was removed, or its
    /// capacity was lowered. The protocol has no word for this; it is sent as `expired`.
    Withdrawn,
}

impl RevokeReason {
    /// The `offer_revoked.reason` the protocol allows.
    pub fn as_wire(self) -> &'static str {
        match self {
            RevokeReason::Expired | RevokeReason::Withdrawn => "expired",
            RevokeReason::Taken => "taken",
            RevokeReason::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFailReason {
    /// Nobody accepted within the transfer timeout.
    Timeout,
    /// The target agent declined.
    Declined,
    /// The target (or the owner) became unavailable while the transfer was pending.
    Unavailable,
}

impl TransferFailReason {
    /// The `transfer_failed.reason` on the wire.
    pub fn as_wire(self) -> &'static str {
        match self {
            TransferFailReason::Timeout => "timeout",
            TransferFailReason::Declined => "declined",
            TransferFailReason::Unavailable => "unavailable",
        }
    }
}

/// Why a request to the router was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// No such open offer (never made, or already accepted, declined, expired or revoked).
    UnknownOffer,
    /// The offer belongs to another agent.
    NotYourOffer,
    UnknownConversation,
    UnknownAgent,
    UnknownTopic,
    /// The conversation has no owner (it is queued).
    NotAssigned,
    /// The target agent is not available or is at capacity.
    AgentUnavailable,
    /// The target agent already owns the conversation.
    AlreadyOwner,
    /// Another transfer of this conversation is pending.
    TransferPending,
    /// The conversation is not waiting in the queue (taken, or escalating).
    NotQueued,
}

impl RouteError {
    /// The protocol error code this maps to.
    pub fn code(self) -> &'static str {
        match self {
            RouteError::UnknownOffer
            | RouteError::UnknownConversation
            | RouteError::UnknownAgent
            | RouteError::UnknownTopic => "not_found",
            RouteError::NotYourOffer => "forbidden",
            RouteError::NotAssigned
            | RouteError::AgentUnavailable
            | RouteError::AlreadyOwner
            | RouteError::TransferPending
            | RouteError::NotQueued => "conflict",
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteError::UnknownOffer => "no such open offer",
            RouteError::NotYourOffer => "the offer was made to another agent",
            RouteError::UnknownConversation => "no such open conversation",
            RouteError::UnknownAgent => "no such agent",
            RouteError::UnknownTopic => "no such topic",
            RouteError::NotAssigned => "the conversation is not assigned",
            RouteError::AgentUnavailable => "the agent is not available or is at capacity",
            RouteError::AlreadyOwner => "the agent already owns the conversation",
            RouteError::TransferPending => "a transfer of this conversation is pending",
            RouteError::NotQueued => "the conversation is not waiting in the queue",
        })
    }
}

impl std::error::Error for RouteError {}

/// A snapshot for `GET /v1/stats` and `GET /v1/agents`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouterStats {
    /// In configuration order.
    pub topics: Vec<TopicStats>,
    /// Ordered by agent id.
    pub agents: Vec<AgentStats>,
    pub totals: StatsTotals,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicStats {
    pub name: String,
    /// Queued conversations (being offered or not); escalations into it are not counted.
    pub waiting: u32,
    pub longest_wait_ms: u64,
    /// Available agents holding every skill the topic requires before widening.
    pub agents_available: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentStats {
    pub id: AgentId,
    pub status: AgentStatus,
    /// Set while Away.
    pub away_reason: Option<String>,
    /// Milliseconds of wrap-up left, while in WrapUp.
    pub wrap_up_ends_in_ms: Option<u64>,
    /// Assigned conversations plus held offers.
    pub load: u32,
    pub capacity: u32,
    pub assigned: u32,
    pub offers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatsTotals {
    pub waiting: u32,
    pub longest_wait_ms: u64,
    pub assigned: u32,
    pub open_offers: u32,
    pub pending_transfers: u32,
    pub agents: u32,
    pub agents_available: u32,
}

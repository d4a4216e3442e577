//! One enum per concept: conversation states, reasons, statuses. The router's enums are
//! the router's own (it stays free of serde); their wire spelling is given here.

use serde::{Deserialize, Serialize};

/// The router's own vocabulary, spelled on the wire by the impls below:
/// one enum per concept, never a second copy mapped by hand.
pub use crate::router::{AgentStatus, RevokeReason, TransferFailReason};

/// Where a conversation is: waiting for an agent, with one, or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    Queued,
    Assigned,
    Closed,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Queued => "queued",
            ConversationState::Assigned => "assigned",
            ConversationState::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(ConversationState::Queued),
            "assigned" => Some(ConversationState::Assigned),
            "closed" => Some(ConversationState::Closed),
            _ => None,
        }
    }

    pub fn is_open(self) -> bool {
        self != ConversationState::Closed
    }
}

/// Why an agent left a conversation (`left.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// Handed off to another agent or topic.
    Transferred,
    /// Its connections dropped and the grace period ran out.
    Disconnected,
    /// The admin deleted the agent.
    Removed,
}

/// `status.reason` when the hub made an agent available again after its wrap-up time.
/// (The other hub-made reason is `missed_offers`, with `away`; an agent's own away
/// reasons come from the configured list.)
pub const WRAP_UP_ENDED: &str = "wrap_up_ended";

/// Writes a router enum as its protocol spelling.
macro_rules! serialize_as_wire {
    ($($ty:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_wire())
            }
        }
    )*};
}

serialize_as_wire!(AgentStatus, RevokeReason, TransferFailReason);

impl<'de> Deserialize<'de> for AgentStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        [
            AgentStatus::Available,
            AgentStatus::Away,
            AgentStatus::WrapUp,
            AgentStatus::Offline,
        ]
        .into_iter()
        .find(|status| status.as_wire() == text)
        .ok_or_else(|| {
            serde::de::Error::unknown_variant(&text, &["available", "away", "wrap_up", "offline"])
        })
    }
}

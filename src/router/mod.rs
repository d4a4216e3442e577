//! The routing core: which agent gets which conversation, and when.
//!
//! Pure and synchronous: no I/O, no tasks, no clock. Every operation takes the caller's
//! `now_ms` (a monotonic clock) and returns the [`Command`]s the hub must carry out, in
//! order; timers fire only in [`Router::tick`], which the hub calls at
//! [`Router::next_deadline`]. The same input sequence always gives the same commands.
//! It must not know about sockets, Redis or the wire format (the hub maps commands to
//! protocol messages). The rules are written out in `docs/routing.md`.
//!
//! Map of the files:
//! - `types.rs` — the public vocabulary (config, profiles, commands, errors, stats);
//! - `rank.rs` — the two orderings: agent selection and serving order (change rules here);
//! - `topics.rs` — topics compiled to requirement groups, which topics compete for the
//!   same agents, and the group/topic indexes;
//! - `state.rs` — internal records (agents, conversations, offers, timers);
//! - `engine.rs` — the `Router` value, construction, accessors, offer ids;
//! - `index.rs` — keeping indexes in step with the records;
//! - `matching.rs` — agent↔conversation matching (who gets what, from the indexes);
//! - `handover.rs` — carrying a match out: offers, assignments, completed transfers;
//! - `agents.rs`, `conversations.rs`, `offers.rs`, `transfer.rs` — the operations;
//! - `timers.rs` — `tick` and widening; `positions.rs` — queue positions (across
//!   competing topics) and eta;
//! - `stats.rs` — snapshots for the admin endpoints;
//! - `stranded.rs` — nobody waits forever: exclusions that cool down, taking or
//!   assigning a queued conversation, the offer to leave a message.
//! - `decision.rs`, `audit.rs` — the routing audit: its vocabulary, and explaining a
//!   decision where it is made (candidates, who was passed over and why, the rule).
//!
//! This module is self-contained (only `super::`/`self::` paths, only `std`) so it can be
//! built on its own as a crate root.

mod agents;
mod audit;
mod conversations;
mod decision;
mod engine;
mod handover;
mod index;
mod matching;
mod offers;
mod positions;
mod rank;
mod state;
mod stats;
mod stranded;
mod timers;
mod topics;
mod transfer;
mod types;

#[cfg(test)]
mod check;
#[cfg(test)]
mod tests;

pub use decision::{Candidate, Decision, DecisionEvent, PassReason, PassedOver, Rule};
pub use engine::Router;
pub use types::{
    Activity, AgentId, AgentProfile, AgentStats, AgentStatus, Command, ConversationId, Expand,
    NewConversation, OfferId, RevokeReason, RouteError, RouterConfig, RouterStats, StatsTotals,
    TopicRule, TopicStats, TransferFailReason, TransferInfo, MISSED_OFFERS,
};

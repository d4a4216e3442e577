//! Flood control for customers: limits per client address and per visitor, counted in
//! Redis (`store::limits`) so they hold across reconnects. Exempt addresses
//! (`flood.exempt`) skip them. Must not decide what happens to a refused hello (the
//! caller closes) or keep counters in memory.

use std::net::IpAddr;

use crate::{
    config::FloodRule,
    error::{Error, Result},
    hub::Hub,
    store::{FloodKind, FloodSubject},
};

/// Counts one `kind` request from `client` (and `visitor`, when given) against the
/// configured limits; `Err(RateLimited)` when any is exceeded.
pub async fn check(
    hub: &Hub,
    client: IpAddr,
    visitor: Option<&str>,
    kind: FloodKind,
) -> Result<()> {
    let flood = &hub.config.flood;
    if !flood.applies_to(client) {
        return Ok(());
    }
    let (per_address, per_visitor) = match kind {
        FloodKind::NewVisitor => (flood.new_visitors_per_address, None),
        FloodKind::Start => (flood.starts_per_address, Some(flood.starts_per_visitor)),
        FloodKind::Message => (flood.messages_per_address, Some(flood.messages_per_visitor)),
    };
    let hit = |subject, rule: FloodRule| {
        hub.store
            .flood_hit(kind, subject, rule.limit, rule.window_ms())
    };
    // The two counters live in different slots: two scripts, pipelined on the shared
    // connection.
    let (address_ok, visitor_ok) = match (visitor, per_visitor) {
        (Some(visitor), Some(rule)) => {
            let (a, v) = tokio::join!(
                hit(FloodSubject::Address(client), per_address),
                hit(FloodSubject::Visitor(visitor), rule)
            );
            (a?, v?)
        }
        _ => (hit(FloodSubject::Address(client), per_address).await?, true),
    };
    let scope = match (address_ok, visitor_ok) {
        (true, true) => return Ok(()),
        (false, _) => "address",
        (true, false) => "visitor",
    };
    hub.metrics
        .flood_refusals
        .with_label_values(&[kind.as_str(), scope])
        .inc();
    // Counted in metrics; logged at debug only, so a flood cannot flood the log too.
    tracing::debug!(%client, visitor_id = visitor.unwrap_or(""), kind = kind.as_str(), scope, "flood limit reached");
    Err(Error::RateLimitedBecause(format!(
        "too many {} from this {scope}, slow down",
        match kind {
            FloodKind::NewVisitor => "new visitors",
            FloodKind::Start => "new chats",
            FloodKind::Message => "messages",
        }
    )))
}

//! The what-if simulator (issue 17): replays a day of traffic through the same router
//! core the hub runs, on a virtual clock, and reports per topic the waits, abandonment,
//! SLA % met and agent occupancy, optionally for two setups side by side.
//!
//! It uses the router core ([`crate::router`]) exactly as the routing task does, the
//! hub's config ([`crate::config`], [`crate::routing::rules`]) and, for `--from-redis`,
//! the stored tickets ([`crate::store`]). It must not reach into the router's state or
//! change its rules: a simulated decision is the hub's decision. Formats, model and
//! limits: `docs/simulate.md`.
//!
//! - `input.rs` — the config, agents JSON and traffic JSON lines, parsed with clear errors;
//! - `history.rs` — traffic derived from stored tickets;
//! - `engine.rs` — the discrete-event loop around the router;
//! - `measure.rs` — the figures of a run;
//! - `report.rs` — the text table (one run, or "A → B") and the JSON output;
//! - `command.rs` — `switchboard simulate`: reading the inputs, running, printing.

mod command;
mod engine;
pub mod history;
pub mod input;
pub mod measure;
pub mod report;

pub use command::{run_command, SimulateArgs};
pub use input::{Arrival, Routing, Shift, SimAgent};
pub use measure::{percentile, Summary};

/// Why a simulation could not be run; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: {cause}")]
    Input { path: String, cause: String },
    #[error("{0}")]
    Usage(String),
    #[error("reading stored tickets: {0}")]
    Store(String),
}

/// How the scripted agents behave and how first replies are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// From an offer to its accept.
    pub response_ms: u64,
    /// From `joined` to the agent's first message, for the first-response SLA.
    pub first_reply_ms: u64,
}

/// Runs one setup over the traffic and returns its figures.
pub fn simulate(
    routing: &Routing,
    agents: &[SimAgent],
    traffic: &[Arrival],
    behaviour: Behaviour,
) -> Result<Summary, SimError> {
    if let Some(topic) = routing
        .router
        .topics
        .iter()
        .find(|t| t.offer_timeout_ms <= behaviour.response_ms)
    {
        return Err(SimError::Usage(format!(
            "--response-ms {} is not below topic {}'s offer_timeout_ms {}: no offer would \
             ever be accepted",
            behaviour.response_ms, topic.name, topic.offer_timeout_ms
        )));
    }
    for arrival in traffic {
        input::check_topic(&arrival.topic, routing).map_err(SimError::Usage)?;
        let timeout = routing
            .router
            .topics
            .iter()
            .find(|t| t.name == arrival.topic);
        if let (Some(response), Some(topic)) = (arrival.response_ms, timeout) {
            if response >= topic.offer_timeout_ms {
                return Err(SimError::Usage(format!(
                    "a {} chat at {} ms has response_ms {response}, not below the topic's \
                     offer_timeout_ms {}",
                    topic.name, arrival.at_ms, topic.offer_timeout_ms
                )));
            }
        }
    }
    let recorded = engine::run(routing, agents, traffic, behaviour.response_ms);
    Ok(measure::summarize(
        routing,
        agents,
        &recorded,
        behaviour.first_reply_ms,
    ))
}

#[cfg(test)]
mod tests;

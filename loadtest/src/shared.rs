//! What every simulated client of one run shares: the scenario, the hubs, the metrics,
//! connection ids, the verifier and the failover timings. Its own module so the simulators and
//! the run that starts them do not import each other.

use std::sync::Arc;

use crate::{
    failover::Failover, hubs::Hubs, metrics::Metrics, scenario::Scenario, verify::Verifier,
    ws::ConnIds,
};

/// What every simulated client of one run shares.
#[derive(Debug)]
pub struct Shared {
    pub scenario: Arc<Scenario>,
    /// Which hub each client starts on, and where it goes when that one is gone.
    pub hubs: Hubs,
    pub metrics: Arc<Metrics>,
    pub ids: ConnIds,
    /// Where clients hand in their records of each conversation.
    pub verifier: Verifier,
    /// How clients came back after `--kill-node-after` (inert without it).
    pub failover: Failover,
}

//! What every simulated client of one run shares: the scenario, the hub's endpoints,
//! the metrics, connection ids and the verifier. Its own module so the simulators and
//! the run that starts them do not import each other.

use std::sync::Arc;

use crate::{
    admin::Endpoints, metrics::Metrics, scenario::Scenario, verify::Verifier, ws::ConnIds,
};

/// What every simulated client of one run shares.
#[derive(Debug)]
pub struct Shared {
    pub scenario: Arc<Scenario>,
    pub endpoints: Endpoints,
    pub metrics: Arc<Metrics>,
    pub ids: ConnIds,
    /// Where clients hand in their records of each conversation.
    pub verifier: Verifier,
}

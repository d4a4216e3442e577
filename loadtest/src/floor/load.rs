//! The measured load of a floor run: one pair of clients per customer of the scenario,
//! through one relay server or two relay nodes, with this process, the relays' threads
//! and Redis sampled beside it.

use std::{sync::Arc, time::Duration};

use tokio::{task::JoinSet, time::Instant};

use super::{clients, FloorServer, RELAY_THREADS};
use crate::{
    metrics::{Clock, Metrics},
    procfs::{Samplers, Watched},
    progress::Progress,
    report::LoadFigures,
    scenario::Scenario,
};

/// Runs the scenario's shape through a fresh raw relay: one pair per customer.
pub async fn run_floor(scenario: &Scenario, show_progress: bool) -> anyhow::Result<LoadFigures> {
    let server = FloorServer::start(relay_threads())?;
    load(Relays::One(server), scenario, "floor", &[], show_progress).await
}

/// The relay servers a load runs through.
pub(crate) enum Relays {
    /// Both ends of every pair on one server.
    One(FloorServer),
    /// Two nodes: each pair's agent end on the first, its customer end on the second.
    Two {
        agents: FloorServer,
        customers: FloorServer,
    },
}

impl Relays {
    /// The URLs of pair `pair`'s agent end and customer end.
    fn urls(&self, pair: usize) -> (String, String) {
        match self {
            Relays::One(server) => (server.url(pair), server.url(pair)),
            Relays::Two { agents, customers } => (agents.url(pair), customers.url(pair)),
        }
    }

    fn stop(self) {
        match self {
            Relays::One(server) => server.stop(),
            Relays::Two { agents, customers } => {
                customers.stop();
                agents.stop();
            }
        }
    }
}

/// The relay's worker threads, as many as the hub has: `FLOOR_RELAY_THREADS` when it is
/// set (`bench.sh` sets it from `HUB_WORKERS`), else one per core, the hub's default.
pub fn relay_threads() -> usize {
    std::env::var("FLOOR_RELAY_THREADS")
        .ok()
        .and_then(|threads| threads.parse::<usize>().ok())
        .filter(|&threads| threads > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Runs the scenario's pairs through `relays`, samples this process, the relays' threads
/// and `also` (the durable floor's Redis), then stops the relays.
pub(crate) async fn load(
    relays: Relays,
    scenario: &Scenario,
    label: &str,
    also: &[(&str, Watched)],
    show_progress: bool,
) -> anyhow::Result<LoadFigures> {
    let metrics = Arc::new(Metrics::new(Clock::new()));
    let progress = Progress::start(
        label,
        Arc::clone(&metrics),
        scenario.duration(),
        show_progress,
    );
    // The relay runs in this process: the process's CPU is clients and relay together,
    // and the relay's own runtime threads are sampled apart (both nodes' when there are
    // two: their threads have the one name).
    let mut watched = vec![
        ("harness+relay", Watched::Process(std::process::id())),
        ("relay", Watched::Threads(std::process::id(), RELAY_THREADS)),
    ];
    watched.extend_from_slice(also);
    let samplers = Samplers::watch(&watched, Duration::from_secs(1));
    let scenario = Arc::new(scenario.clone());
    let t0 = Instant::now() + Duration::from_millis(50);
    let deadline = scenario.duration().map(|d| t0 + d);
    let mut pairs = JoinSet::new();
    for i in 0..scenario.customers {
        let urls = relays.urls(i);
        let start = t0 + scenario.start_offset(i);
        pairs.spawn(clients::pair(
            i,
            urls,
            Arc::clone(&scenario),
            Arc::clone(&metrics),
            start,
            deadline,
        ));
    }
    let mut failures = Vec::new();
    while let Some(joined) = pairs.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failures.push(format!("{err:#}")),
            Err(err) => failures.push(format!("a floor pair panicked: {err}")),
        }
    }
    progress.finish();
    // Sample before the relay's threads exit: an exited thread's CPU no longer shows.
    let processes = samplers.stop().await;
    relays.stop();
    let mut figures = LoadFigures::from_metrics(label, &metrics);
    figures.client_failures = failures;
    figures.processes = processes;
    Ok(figures)
}

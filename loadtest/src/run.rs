//! The `run` subcommand as a library call: create the run's agents over REST (on the
//! first hub), bring them online (spread over the hubs, see [`crate::hubs`]), start the
//! customers over the ramp-up, kill a node on the way if told to ([`crate::failover`]),
//! wait for the customers, stop the agents, delete them, verify what everyone saw (conversation by conversation as they end, through the
//! shared [`Verifier`], and whatever is left at the end), wait for a local hub and Redis to
//! settle ([`crate::quiet`]), then run the floor with the same shape, then (settled again)
//! the durable floor on the hub's Redis ([`floor::durable`]), and put all in one report.
//! Tests call [`run`] directly.

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use anyhow::{bail, Context};
use tokio::{sync::oneshot, task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    admin::Admin,
    agent::{run_agent, AgentSpec},
    customer::run_customer,
    failover::{Failover, FailoverFigures, KillPlan},
    floor::{
        self,
        durable::{run_durable_floor, DurableFloor, DurableTarget, Obligations},
    },
    hubs::Hubs,
    metrics::{Clock, Metrics},
    procfs::Samplers,
    progress::Progress,
    report::{LoadFigures, Report},
    scenario::Scenario,
    shared::Shared,
    tickets::TicketCounter,
    verify::{Verdict, Verifier},
    ws::ConnIds,
};

/// How long a run waits after the load for the hubs to flush every closed chat's ticket
/// (at saturation, 200 chats of ~10,000 messages take a few seconds).
const TICKETS_PATIENCE: Duration = Duration::from_secs(60);

/// The hub under test.
#[derive(Debug, Clone)]
pub struct HubTarget {
    /// Base URL, e.g. `http://127.0.0.1:8080`, or the comma-separated base URLs of
    /// several nodes of one deployment (see [`crate::hubs`]).
    pub hub: String,
    pub admin_token: String,
    /// The hub's pid, for RSS and CPU from `/proc` (local hubs only).
    pub hub_pid: Option<u32>,
    /// Redis's pid, likewise (where the persistence cost shows).
    pub redis_pid: Option<u32>,
    /// The hub's Redis (one server), where the durable floor appends unless it has one of
    /// its own; without either the run has no durable floor.
    pub redis_url: Option<String>,
    /// A Redis of the durable floor's own (one server, fresh, with the hub's settings) and
    /// its pid. The hub's Redis holds the hub's run by the time the floor runs (hundreds
    /// of MB, AOF rewrites), which slows the floor's tail latency.
    pub floor_redis: Option<FloorRedis>,
}

/// The durable floor's own Redis.
#[derive(Debug, Clone)]
pub struct FloorRedis {
    pub url: String,
    pub pid: Option<u32>,
}

impl HubTarget {
    /// Where the durable floor appends, and the pid of that Redis: its own Redis when
    /// given, else the hub's.
    pub fn durable_floor_redis(&self) -> Option<(&str, Option<u32>)> {
        match &self.floor_redis {
            Some(own) => Some((own.url.as_str(), own.pid)),
            None => self.redis_url.as_deref().map(|url| (url, self.redis_pid)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Also run the floor with the same shape and report ratios.
    pub floor: bool,
    /// Then the durable floor too (needs [`HubTarget::redis_url`]; not without `floor`).
    pub durable_floor: bool,
    /// Show the live progress line (it hides itself when stdout is not a terminal).
    pub progress: bool,
    /// Prefix of the agent ids; a random one when `None`.
    pub run_id: Option<String>,
    /// Kill one hub process this long after the first customer starts.
    pub kill: Option<KillPlan>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            floor: true,
            durable_floor: true,
            progress: true,
            run_id: None,
            kill: None,
        }
    }
}

#[derive(Debug)]
pub struct RunOutcome {
    pub report: Report,
    pub verdict: Verdict,
    /// Conversations still waiting for records once every customer was done and the
    /// agents were about to stop: what incremental verification did not free while the
    /// load ran (0 when every client hands its records in as it should).
    pub unverified_at_agent_stop: usize,
}

fn random_run_id() -> String {
    format!("lt{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The longest the floor waits for a local hub and Redis to finish the hub run's work
/// (closing and flushing every chat) before it starts regardless.
const FLOOR_SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// Runs the scenario against the hub (and the floor, unless told not to).
pub async fn run(
    scenario: &Scenario,
    target: &HubTarget,
    options: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    scenario.validate()?;
    let run_id = options.run_id.clone().unwrap_or_else(random_run_id);
    let hubs = Hubs::parse(&target.hub)?;
    if let Some(plan) = &options.kill {
        plan.validate()?;
        if hubs.len() < 2 {
            warn!("a node will be killed but --hub lists one hub: its clients have nowhere to go");
        }
    }
    let admins = hubs
        .all()
        .iter()
        .map(|hub| Admin::new(&hub.http, &target.admin_token))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let admin = &admins[0];
    let started_at = crate::report::unix_ms();
    warn_if_busy();

    // Agents first, so that a bad token or a hub that is down fails before any load.
    let ids: Vec<String> = (0..scenario.agents)
        .map(|i| format!("{run_id}-a{i}"))
        .collect();
    let skills = scenario.agent_skills();
    let mut tokens = Vec::with_capacity(ids.len());
    let mut created = Vec::new();
    for id in &ids {
        match admin.create_agent(id, &skills, scenario.capacity).await {
            Ok(token) => {
                tokens.push(token);
                created.push(id.clone());
            }
            Err(err) => {
                delete_agents(&admins, &created).await;
                return Err(err).context("creating the run's agents");
            }
        }
    }
    info!(run_id = %run_id, agents = ids.len(), "agents created");

    let outcome = hub_load(scenario, target, hubs, &ids, tokens, options).await;
    delete_agents(&admins, &created).await;
    let (hub, verdict, unverified_at_agent_stop, failover) = outcome?;

    let floor = if options.floor {
        settle(target).await;
        Some(floor::run_floor(scenario, options.progress).await?)
    } else {
        None
    };
    let durable = durable_floor(scenario, target, options).await;
    let mut report = Report::for_run(scenario.clone(), started_at, run_id, hub, floor, &verdict);
    report.set_durable_floor(durable);
    report.failover = failover;
    Ok(RunOutcome {
        report,
        verdict,
        unverified_at_agent_stop,
    })
}

/// Waits until a local hub and Redis are done with the previous load's work.
async fn settle(target: &HubTarget) {
    let watched: Vec<(&str, u32)> = [("hub", target.hub_pid), ("redis", target.redis_pid)]
        .into_iter()
        .filter_map(|(name, pid)| Some((name, pid?)))
        .collect();
    crate::quiet::wait_until_settled(&watched, FLOOR_SETTLE_LIMIT).await;
}

/// The durable floor after the raw floor, on its own Redis or else the hub's, once the hub
/// and Redis are quiet again; or why there is none. A failure does not fail the run: the hub's figures
/// are measured by then and stay worth reporting.
async fn durable_floor(
    scenario: &Scenario,
    target: &HubTarget,
    options: &RunOptions,
) -> Result<DurableFloor, String> {
    if !options.floor {
        return Err("skipped with the floor (--no-floor)".into());
    }
    if !options.durable_floor {
        return Err("skipped (--no-durable-floor)".into());
    }
    let Some((redis_url, redis_pid)) = target.durable_floor_redis() else {
        return Err(
            "skipped: no --redis-url (the hub's Redis) nor --floor-redis-url was given".into(),
        );
    };
    if redis_url.contains(',') {
        return Err("skipped: the durable floor appends to one Redis server, not a cluster".into());
    }
    settle(target).await;
    let durable = DurableTarget {
        redis_url: redis_url.to_string(),
        redis_pid,
        keep_streams: false,
        obligations: Obligations::Relay,
        two_nodes: None,
        relay_threads: None,
    };
    run_durable_floor(scenario, &durable, options.progress)
        .await
        .map_err(|err| {
            warn!(cause = %format!("{err:#}"), "the durable floor failed");
            format!("failed: {err:#}")
        })
}

/// Other work on the machine skews every figure: say so before measuring.
pub fn warn_if_busy() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if let Some(load) = crate::procfs::load_average() {
        if load > cores * 0.5 {
            warn!(
                load_average = load,
                cores, "the machine is busy with other work; figures will be skewed"
            );
        }
    }
}

/// Deletes the run's agents on the first hub, or on the next when one cannot be reached
/// (it may be the node that was killed).
async fn delete_agents(admins: &[Admin], ids: &[String]) {
    for id in ids {
        let mut last = None;
        for admin in admins {
            match admin.delete_agent(id).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(err) => last = Some(err),
            }
        }
        if let Some(err) = last {
            warn!(agent_id = %id, cause = %format!("{err:#}"), "could not delete a run agent");
        }
    }
}

type HubResult = (LoadFigures, Verdict, usize, Option<FailoverFigures>);

async fn hub_load(
    scenario: &Scenario,
    target: &HubTarget,
    hubs: Hubs,
    ids: &[String],
    tokens: Vec<String>,
    options: &RunOptions,
) -> anyhow::Result<HubResult> {
    let clock = Clock::new();
    let metrics = Arc::new(Metrics::new(clock));
    let shared = Arc::new(Shared {
        scenario: Arc::new(scenario.clone()),
        hubs,
        metrics: Arc::clone(&metrics),
        ids: ConnIds::default(),
        verifier: Verifier::new(),
        failover: Failover::new(clock),
    });
    let samplers = Samplers::start(
        &[
            ("hub", target.hub_pid),
            ("redis", target.redis_pid),
            ("harness", Some(std::process::id())),
        ],
        Duration::from_secs(1),
    );
    let progress = Progress::start(
        "hub",
        Arc::clone(&metrics),
        scenario.duration(),
        options.progress,
    );

    // Agents: connect, go available, wait until all are.
    let stop_agents = CancellationToken::new();
    let mut agents = JoinSet::new();
    let mut readiness = Vec::new();
    for (i, (id, token)) in ids.iter().zip(tokens).enumerate() {
        let spec = AgentSpec {
            id: id.clone(),
            token,
            hub: shared.hubs.for_agent(i),
            transfer_peer: (ids.len() > 1).then(|| ids[(i + 1) % ids.len()].clone()),
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        readiness.push((id.clone(), ready_rx));
        agents.spawn(run_agent(
            spec,
            Arc::clone(&shared),
            ready_tx,
            stop_agents.clone(),
        ));
    }
    let mut not_ready = None;
    for (id, ready) in readiness {
        match tokio::time::timeout(Duration::from_secs(30), ready).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => not_ready = Some(format!("agent {id}: {err:#}")),
            Ok(Err(_)) => not_ready = Some(format!("agent {id} stopped before it was available")),
            Err(_) => not_ready = Some(format!("agent {id} not available within 30 s")),
        }
        if not_ready.is_some() {
            break;
        }
    }
    if let Some(why) = not_ready {
        stop_agents.cancel();
        while agents.join_next().await.is_some() {}
        progress.finish();
        bail!("agents could not go online: {why}");
    }

    // Tickets the hubs had stored before this run's chats (a hub may serve several runs).
    let tickets = TicketCounter::new(shared.hubs.all())?;
    let tickets_before = tickets.stored().await;

    // Customers, spread over the ramp-up.
    let t0 = Instant::now() + Duration::from_millis(50);
    let deadline = scenario.duration().map(|d| t0 + d);
    let killer = options.kill.map(|plan| {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            tokio::time::sleep_until(t0 + plan.after).await;
            info!(pid = plan.pid, "killing a hub node");
            shared.failover.kill(&plan);
        })
    });
    let mut customers = JoinSet::new();
    for index in 0..scenario.customers {
        let start = t0 + scenario.start_offset(index);
        customers.spawn(run_customer(index, Arc::clone(&shared), start, deadline));
    }
    let mut failures = Vec::new();
    while let Some(joined) = customers.join_next().await {
        match joined {
            Ok(outcome) => {
                if let Some(err) = outcome.error {
                    failures.push(format!("customer {}: {err}", outcome.index));
                }
            }
            Err(err) => failures.push(format!("a customer task panicked: {err}")),
        }
    }
    if let Some(killer) = killer {
        // The load is over: a kill still due would measure nothing.
        killer.abort();
    }
    // Let the last events (closed, late replies) reach the agents before they stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let unverified_at_agent_stop = shared.verifier.pending();
    debug!(
        pending = unverified_at_agent_stop,
        "conversations still waiting for records when the agents stop"
    );
    stop_agents.cancel();
    while let Some(joined) = agents.join_next().await {
        match joined {
            Ok(outcome) => {
                if let Some(err) = outcome.error {
                    failures.push(format!("agent {}: {err}", outcome.id));
                }
            }
            Err(err) => failures.push(format!("an agent task panicked: {err}")),
        }
    }
    progress.finish();
    // Every closed chat's ticket, before the CPU is read; not with a node killed, whose
    // unflushed chats wait for a restart's recovery.
    let settled = match options.kill {
        Some(_) => None,
        None => {
            let closed = metrics
                .counters
                .conversations_closed
                .load(Ordering::Relaxed);
            Some(
                tickets
                    .settle(tickets_before, closed, TICKETS_PATIENCE)
                    .await,
            )
        }
    };
    let processes = samplers.stop().await;
    for failure in failures.iter().take(10) {
        warn!(cause = %failure, "client failure");
    }
    let verdict = shared.verifier.verdict();
    let mut figures = LoadFigures::from_metrics("hub", &metrics);
    figures.client_failures = failures;
    figures.processes = processes;
    figures.tickets = settled;
    let failover = shared.failover.figures(options.kill.as_ref());
    Ok((figures, verdict, unverified_at_agent_stop, failover))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_durable_floor_appends_to_its_own_redis_when_it_has_one() {
        let mut target = HubTarget {
            hub: "http://127.0.0.1:1".into(),
            admin_token: String::new(),
            hub_pid: None,
            redis_pid: Some(7),
            redis_url: Some("redis://127.0.0.1:2/0".into()),
            floor_redis: None,
        };
        assert_eq!(
            target.durable_floor_redis(),
            Some(("redis://127.0.0.1:2/0", Some(7))),
            "the hub's Redis by default"
        );
        target.floor_redis = Some(FloorRedis {
            url: "redis://127.0.0.1:3/0".into(),
            pid: Some(9),
        });
        assert_eq!(
            target.durable_floor_redis(),
            Some(("redis://127.0.0.1:3/0", Some(9)))
        );
        target.redis_url = None;
        assert_eq!(
            target.durable_floor_redis(),
            Some(("redis://127.0.0.1:3/0", Some(9))),
            "its own Redis even without the hub's URL"
        );
    }
}

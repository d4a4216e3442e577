//! Recording a real run for the what-if simulator (issue 17, `docs/simulate.md`): scripted
//! customers start chats on a schedule (the simulator's traffic format), scripted agents
//! accept every offer after a fixed response time and close each chat after its handle
//! time; what the hub did is written back in the simulator's format (arrivals as the hub
//! acknowledged them, handle times as the customer saw them) with each chat's observed
//! wait (`start` ack → `joined`), so `switchboard simulate` can be checked against it.
//! The agents file is the simulator's too (`id`, `skills`, `capacity`, `count`).

mod bots;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use bots::{customer, ms, start_text, AgentBot};

use crate::{
    admin::{Admin, Endpoints},
    ws::ConnIds,
};

/// One chat of a schedule or a recording: the simulator's traffic line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficLine {
    pub at_ms: u64,
    pub topic: String,
    pub handle_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience_ms: Option<u64>,
    /// How long the offer took to become a `joined` (a recording sets it per chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<u64>,
}

/// One entry of the simulator's agents file, as far as a recording can stage it.
#[derive(Debug, Clone, Deserialize)]
pub struct TeamEntry {
    pub id: String,
    #[serde(default)]
    pub skills: BTreeMap<String, u32>,
    pub capacity: u32,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub auto_accept: bool,
    #[serde(default)]
    pub shift: Option<serde::de::IgnoredAny>,
}

/// What the hub did with one scheduled chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Index in the schedule.
    pub chat: usize,
    pub topic: String,
    /// `start` ack → `joined`, as the customer saw it; `None` when it gave up.
    pub wait_ms: Option<u64>,
}

/// A recorded run: the traffic as the hub saw it, and the waits it gave.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub traffic: Vec<TrafficLine>,
    pub observed: Vec<Observed>,
    /// Per answered chat: from the agent receiving the offer it accepted to the customer
    /// receiving `joined` (one process, one clock). The scripted response time plus the
    /// hub's own work to carry the accept out (reserve, store and deliver the join),
    /// which grows when the machine is loaded: the response time the router saw, bar
    /// the offer's own delivery. Also written into each chat's `response_ms`.
    pub accept_ms: Vec<u64>,
    /// Per slot freed while a chat waited: from the agent seeing `closed` to its next
    /// offer (the hub storing the close, freeing the reservation, the router offering
    /// the slot, the offer's delivery). Its mean is added to every answered chat's
    /// `handle_ms` in `traffic`: the router holds the slot that much past the close.
    pub release_ms: Vec<u64>,
}

fn mean(values: &[u64]) -> Option<u64> {
    let count = u64::try_from(values.len()).ok().filter(|n| *n > 0)?;
    Some(values.iter().sum::<u64>() / count)
}

impl Recording {
    /// The traffic as JSON lines, for `switchboard simulate --traffic`.
    pub fn traffic_jsonl(&self) -> anyhow::Result<String> {
        let mut out = String::new();
        for line in &self.traffic {
            out.push_str(&serde_json::to_string(line)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// The mean of `accept_ms`: the response time to give the simulator. The mean, not
    /// the median, because a slot's mean holding time is what sets the queue.
    pub fn effective_response_ms(&self) -> Option<u64> {
        let count = u64::try_from(self.accept_ms.len())
            .ok()
            .filter(|n| *n > 0)?;
        Some(self.accept_ms.iter().sum::<u64>() / count)
    }

    /// Observed waits of the answered chats, sorted.
    pub fn sorted_waits(&self) -> Vec<u64> {
        let mut waits: Vec<u64> = self.observed.iter().filter_map(|o| o.wait_ms).collect();
        waits.sort_unstable();
        waits
    }
}

/// How to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub hub: String,
    pub admin_token: String,
    /// From an offer to the agent's accept.
    pub response_ms: u64,
    /// Prefixes the agents' ids on the hub (`<run_id>-<id>`).
    pub run_id: String,
}

/// One scripted agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamAgent {
    pub id: String,
    pub skills: BTreeMap<String, u32>,
    pub capacity: u32,
}

/// Parses the simulator's agents file, expanding `count` as the simulator does.
pub fn parse_team(text: &str) -> anyhow::Result<Vec<TeamAgent>> {
    let entries: Vec<TeamEntry> = serde_json::from_str(text).context("agents file")?;
    let mut team = Vec::new();
    for entry in entries {
        if entry.auto_accept || entry.shift.is_some() {
            bail!(
                "agent {}: a recording stages no auto_accept or shift",
                entry.id
            );
        }
        match entry.count {
            None => team.push(TeamAgent {
                id: entry.id,
                skills: entry.skills,
                capacity: entry.capacity,
            }),
            Some(n) => team.extend((1..=n).map(|i| TeamAgent {
                id: format!("{}-{i}", entry.id),
                skills: entry.skills.clone(),
                capacity: entry.capacity,
            })),
        }
    }
    Ok(team)
}

/// Parses a schedule: the simulator's traffic JSON lines.
pub fn parse_schedule(text: &str) -> anyhow::Result<Vec<TrafficLine>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("schedule line {}", i + 1)))
        .collect()
}

/// How long any one answer of the hub may take before the recording gives up.
pub(crate) const ANSWER: Duration = Duration::from_secs(30);

/// Runs the schedule against the hub with the team; deletes the team at the end.
pub async fn record(
    schedule: &[TrafficLine],
    team: &[TeamAgent],
    options: &RecordOptions,
) -> anyhow::Result<Recording> {
    let endpoints = Endpoints::new(&options.hub)?;
    let admin = Admin::new(&endpoints.http, &options.admin_token)?;
    let ids = ConnIds::default();
    let stop = CancellationToken::new();
    let handles: Arc<HashMap<String, (usize, u64)>> = Arc::new(
        schedule
            .iter()
            .enumerate()
            .map(|(i, c)| (start_text(i), (i, c.handle_ms)))
            .collect(),
    );
    let mut created = Vec::new();
    let mut agents = tokio::task::JoinSet::new();
    let mut ready = Vec::new();
    // Chat index → when its customer saw `joined`.
    let mut joins: Vec<(usize, Instant)> = Vec::new();
    let outcome = async {
        for agent in team {
            let hub_id = format!("{}-{}", options.run_id, agent.id);
            let token = admin
                .create_agent(&hub_id, &agent.skills, agent.capacity)
                .await?;
            created.push(hub_id.clone());
            let (tx, rx) = tokio::sync::oneshot::channel();
            ready.push(rx);
            let bot = AgentBot {
                id: hub_id,
                url: endpoints.agent_ws.clone(),
                token,
                response: Duration::from_millis(options.response_ms),
                handles: Arc::clone(&handles),
            };
            let (ids, stop) = (ids.clone(), stop.clone());
            agents.spawn(async move { bot.run(&ids, stop, tx).await });
        }
        for rx in ready {
            tokio::time::timeout(ANSWER, rx)
                .await
                .context("an agent was not available in time")?
                .context("an agent bot ended before it was available")?;
        }
        // Every customer connects first; the schedule counts from a moment after.
        let t0 = Instant::now() + Duration::from_secs(2);
        let mut customers = tokio::task::JoinSet::new();
        for (i, chat) in schedule.iter().enumerate() {
            let (url, ids, chat) = (endpoints.customer_ws.clone(), ids.clone(), chat.clone());
            customers.spawn(async move { customer(i, chat, url, ids, t0).await });
        }
        let mut results = Vec::new();
        while let Some(joined) = customers.join_next().await {
            results.push(joined.context("a customer task panicked")??);
        }
        results.sort_by_key(|(i, _, _, _)| *i);
        let mut recording = Recording::default();
        for (i, line, wait_ms, joined_at) in results {
            joins.extend(joined_at.map(|at| (i, at)));
            recording.observed.push(Observed {
                chat: i,
                topic: line.topic.clone(),
                wait_ms,
            });
            recording.traffic.push(line);
        }
        // Arrivals as the hub saw them, from the first one.
        let first = recording.traffic.iter().map(|l| l.at_ms).min().unwrap_or(0);
        recording.traffic.iter_mut().for_each(|l| l.at_ms -= first);
        anyhow::Ok(recording)
    }
    .await;
    stop.cancel();
    // Chat index → the accepted offer's `waited_ms`.
    let mut release_ms: Vec<u64> = Vec::new();
    // Chat index → when its accepted offer reached the agent.
    let mut offered_at: HashMap<usize, Instant> = HashMap::new();
    while let Some(ended) = agents.join_next().await {
        match ended {
            Ok(Ok((joins, released))) => {
                offered_at.extend(joins);
                release_ms.extend(released);
            }
            Ok(Err(err)) => tracing::warn!(cause = %err, "an agent bot failed"),
            Err(err) => tracing::warn!(cause = %err, "an agent bot panicked"),
        }
    }
    let outcome = outcome.map(|mut recording| {
        // The router holds a slot until it has the close and offers the slot again:
        // that tail belongs to the handle time as the router saw it.
        let release = mean(&release_ms).unwrap_or(0);
        for line in recording
            .traffic
            .iter_mut()
            .filter(|l| l.patience_ms.is_none())
        {
            line.handle_ms += release;
        }
        recording.release_ms = release_ms;
        // Each answered chat's own response time, as the router saw it.
        for (chat, joined) in &joins {
            let Some(offered) = offered_at.get(chat) else {
                continue;
            };
            let accept = ms(joined.saturating_duration_since(*offered));
            recording.accept_ms.push(accept);
            if let Some(line) = recording.traffic.get_mut(*chat) {
                line.response_ms = Some(accept);
            }
        }
        recording
    });
    for id in created {
        if let Err(err) = admin.delete_agent(&id).await {
            tracing::warn!(cause = %err, agent = %id, "could not delete a recording agent");
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulators_files_are_read_alike() {
        let team = parse_team(
            r#"[{"id":"b","skills":{"billing":2},"capacity":1,"count":2},{"id":"g","capacity":2}]"#,
        )
        .expect("team");
        let ids: Vec<&str> = team.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["b-1", "b-2", "g"]);
        assert!(parse_team(r#"[{"id":"a","capacity":1,"auto_accept":true}]"#).is_err());
        let schedule = parse_schedule(
            "{\"at_ms\":5,\"topic\":\"general\",\"handle_ms\":9}\n\n{\"at_ms\":7,\"topic\":\"billing\",\"handle_ms\":1,\"patience_ms\":3}\n",
        )
        .expect("schedule");
        assert_eq!(schedule.len(), 2);
        assert_eq!(schedule[1].patience_ms, Some(3));
        let err = parse_schedule("{\"at_ms\":5}").expect_err("incomplete");
        assert!(format!("{err:#}").contains("schedule line 1"), "{err:#}");
    }

    #[test]
    fn means_of_nothing_are_none() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[400, 500]), Some(450));
    }
}

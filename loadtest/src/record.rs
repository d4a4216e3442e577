//! Recording a real run for the what-if simulator (issue 17, `docs/simulate.md`): scripted
//! customers start chats on a schedule (the simulator's traffic format), scripted agents
//! accept every offer after a fixed response time and close each chat after its handle
//! time; what the hub did is written back in the simulator's format (arrivals as the hub
//! acknowledged them, handle times as the customer saw them) with each chat's observed
//! wait (`start` ack → `joined`), so `switchboard simulate` can be checked against it.
//! The agents file is the simulator's too (`id`, `skills`, `capacity`, `count`).

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    admin::{Admin, Endpoints},
    wire::{In, Out},
    ws::{ConnIds, Recv, Ws},
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
    /// the offer's own delivery.
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
const ANSWER: Duration = Duration::from_secs(30);

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
        recording.accept_ms = joins
            .iter()
            .filter_map(|(chat, at)| Some(ms(at.saturating_duration_since(*offered_at.get(chat)?))))
            .collect();
        recording
    });
    for id in created {
        if let Err(err) = admin.delete_agent(&id).await {
            tracing::warn!(cause = %err, agent = %id, "could not delete a recording agent");
        }
    }
    outcome
}

fn start_text(chat: usize) -> String {
    format!("recorded chat {chat}")
}

/// One scheduled customer: starts at its time, waits for `joined` (or gives up after its
/// patience), then for `closed`. Returns its traffic line as observed and its wait.
async fn customer(
    index: usize,
    chat: TrafficLine,
    url: String,
    ids: ConnIds,
    t0: Instant,
) -> anyhow::Result<(usize, TrafficLine, Option<u64>, Option<Instant>)> {
    let mut ws = tokio::time::timeout(ANSWER, Ws::connect(&url, &ids)).await??;
    let name = format!("rec-c{index}");
    ws.send(&Out::Hello {
        role: "customer",
        token: None,
        session: None,
        name: Some(&name),
    })
    .await?;
    wait_for(&mut ws, ANSWER, |f| matches!(f, In::Welcome { .. })).await?;
    tokio::time::sleep_until(t0 + Duration::from_millis(chat.at_ms)).await;
    let req = ws.req();
    let text = start_text(index);
    ws.send(&Out::Start {
        req: &req,
        topic: &chat.topic,
        text: &text,
    })
    .await?;
    let mut conversation = None;
    wait_for(&mut ws, ANSWER, |f| match f {
        In::Ack {
            req: r,
            conversation_id,
            ..
        } if *r == req => {
            conversation = conversation_id.clone();
            true
        }
        _ => false,
    })
    .await?;
    let acked = Instant::now();
    let conversation = conversation.context("start ack without conversation_id")?;
    let patience = chat.patience_ms.map_or(ANSWER * 20, Duration::from_millis);
    let joined = wait_for(&mut ws, patience, |f| is_event(f, &conversation, "joined")).await;
    let (wait_ms, handle_from) = match joined {
        Ok(()) => (Some(ms(acked.elapsed())), Instant::now()),
        Err(_) if chat.patience_ms.is_some() => {
            let req = ws.req();
            ws.send(&Out::Close {
                req: &req,
                conversation_id: &conversation,
            })
            .await?;
            (None, acked)
        }
        Err(err) => return Err(err.context(format!("chat {index} was never joined"))),
    };
    let limit = Duration::from_millis(chat.handle_ms) + ANSWER;
    wait_for(&mut ws, limit, |f| is_event(f, &conversation, "closed")).await?;
    let closed = Instant::now();
    ws.close().await;
    let line = TrafficLine {
        at_ms: ms(acked.saturating_duration_since(t0)),
        topic: chat.topic,
        handle_ms: if wait_ms.is_some() {
            ms(closed - handle_from)
        } else {
            0
        },
        patience_ms: wait_ms.is_none().then(|| ms(closed - acked)),
    };
    let joined_at = wait_ms.is_some().then_some(handle_from);
    Ok((index, line, wait_ms, joined_at))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn is_event(frame: &In, conversation: &str, kind: &str) -> bool {
    matches!(frame, In::Event(e) if e.conversation_id == conversation && e.kind == kind)
}

/// Reads frames until `want` says yes, within `limit`.
async fn wait_for(
    ws: &mut Ws,
    limit: Duration,
    mut want: impl FnMut(&In) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, ws.recv()).await {
            Err(_) => bail!("no answer within {limit:?}"),
            Ok(received) => match received? {
                Recv::Frame(In::Error { code, message, .. }) => {
                    bail!("hub error: {code} {message}")
                }
                Recv::Frame(frame) if want(&frame) => return Ok(()),
                Recv::Frame(_) => continue,
                Recv::Closed(code) => bail!("the hub closed the connection ({code:?})"),
            },
        }
    }
}

/// A scripted agent: accepts every offer `response` after it came, closes each chat it
/// joined after that chat's handle time (looked up by the start text the offer previews).
struct AgentBot {
    id: String,
    url: String,
    token: String,
    response: Duration,
    /// Start text → (chat index, handle ms).
    handles: Arc<HashMap<String, (usize, u64)>>,
}

enum Due {
    Accept(String),
    Close(String),
}

impl AgentBot {
    async fn run(
        self,
        ids: &ConnIds,
        stop: CancellationToken,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<(Vec<(usize, Instant)>, Vec<u64>)> {
        let mut ws = tokio::time::timeout(ANSWER, Ws::connect(&self.url, ids)).await??;
        ws.send(&Out::Hello {
            role: "agent",
            token: Some(&self.token),
            session: None,
            name: None,
        })
        .await?;
        wait_for(&mut ws, ANSWER, |f| matches!(f, In::Welcome { .. })).await?;
        let req = ws.req();
        ws.send(&Out::Status {
            req: &req,
            status: "available",
        })
        .await?;
        wait_for(
            &mut ws,
            ANSWER,
            |f| matches!(f, In::Ack { req: r, .. } if *r == req),
        )
        .await?;
        if ready.send(()).is_err() {
            return Ok((Vec::new(), Vec::new()));
        }
        // Per conversation offered: (chat index, when the offer came); per join: the
        // same, handed back at the end.
        let mut offers: HashMap<String, (usize, Instant)> = HashMap::new();
        let mut joins = Vec::new();
        let mut last_closed: Option<Instant> = None;
        let mut release_ms = Vec::new();
        // Due actions, earliest first (seq keeps equal times in order).
        let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
        let mut actions: HashMap<u64, Due> = HashMap::new();
        let mut seq = 0u64;
        let mut handles_of: HashMap<String, u64> = HashMap::new();
        loop {
            let next = due.peek().map(|Reverse((at, _))| *at);
            let timer = tokio::time::sleep_until(next.unwrap_or_else(|| Instant::now() + ANSWER));
            tokio::select! {
                () = stop.cancelled() => break,
                () = timer, if next.is_some() => {
                    let Some(Reverse((_, key))) = due.pop() else { continue };
                    let Some(action) = actions.remove(&key) else { continue };
                    let req = ws.req();
                    match &action {
                        Due::Accept(offer_id) => ws.send(&Out::Accept { req: &req, offer_id }).await?,
                        Due::Close(conversation_id) => {
                            ws.send(&Out::Close { req: &req, conversation_id }).await?
                        }
                    }
                }
                received = ws.recv() => {
                    let frame = match received? {
                        Recv::Frame(frame) => frame,
                        Recv::Closed(code) => bail!("agent {}: the hub closed ({code:?})", self.id),
                    };
                    let (at, action) = match frame {
                        In::Offer { offer_id, conversation_id, preview, waited_ms, .. } => {
                            // A slot freed while this chat waited: the hub's time from
                            // the close to the offer of the freed slot.
                            if let Some(closed) = last_closed.take() {
                                let gap = ms(closed.elapsed());
                                if waited_ms > gap {
                                    release_ms.push(gap);
                                }
                            }
                            if let Some((chat, handle)) = self.handles.get(&preview) {
                                handles_of.insert(conversation_id.clone(), *handle);
                                offers.insert(conversation_id, (*chat, Instant::now()));
                            }
                            (Instant::now() + self.response, Due::Accept(offer_id))
                        }
                        In::Event(e) if e.kind == "closed" => {
                            last_closed = Some(Instant::now());
                            continue;
                        }
                        In::Event(e) if e.kind == "joined"
                            && e.agent.as_ref().is_some_and(|a| a.id == self.id) =>
                        {
                            let handle = handles_of.remove(&e.conversation_id).unwrap_or(0);
                            joins.extend(offers.remove(&e.conversation_id));
                            let at = Instant::now() + Duration::from_millis(handle);
                            (at, Due::Close(e.conversation_id))
                        }
                        _ => continue,
                    };
                    seq += 1;
                    due.push(Reverse((at, seq)));
                    actions.insert(seq, action);
                }
            }
        }
        ws.close().await;
        Ok((joins, release_ms))
    }
}

//! The figures of one run, from what the engine recorded: per topic the chats, answered,
//! abandoned, waits (exact percentiles of every recorded wait), SLA % met, and agent
//! occupancy (time holding at least one chat ÷ time available). No routing here.

use serde::{Deserialize, Serialize};

use super::input::{Routing, SimAgent};

/// What became of one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// An agent joined after this wait.
    Answered { wait_ms: u64 },
    /// The customer gave up after this wait.
    Abandoned { wait_ms: u64 },
    /// Still waiting when nothing more could happen (no agent could ever take it).
    Unserved,
}

/// One chat as the engine saw it.
#[derive(Debug, Clone, Copy)]
pub struct ChatRecord {
    /// Index into `Routing::topics`.
    pub topic: usize,
    pub fate: Fate,
}

/// One agent's clock: time on shift, and the part of it holding at least one chat.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentTime {
    pub available_ms: u64,
    pub busy_ms: u64,
}

/// Everything the engine hands over at the end of a run.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub chats: Vec<ChatRecord>,
    /// In the order of the agents given to the engine.
    pub agents: Vec<AgentTime>,
    pub end_ms: u64,
    /// `AgentAway` from the router: offers missed in a row (response time ≥ offer timeout).
    pub agents_set_away: u32,
}

/// The figures of one topic (or of all, `topic` = `"all"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub topic: String,
    pub chats: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub unserved: u64,
    pub abandoned_pct: f64,
    /// Waits of answered chats (start → joined), nearest-rank percentiles.
    pub wait_p50_ms: Option<u64>,
    pub wait_p90_ms: Option<u64>,
    pub wait_mean_ms: Option<u64>,
    /// Chats answered within the topic's `sla.wait_ms`, of all its chats.
    pub sla_wait_pct: Option<f64>,
    /// Chats whose first reply (wait + `first_reply_ms`) came within
    /// `sla.first_response_ms`, of all its chats.
    pub sla_first_response_pct: Option<f64>,
    /// Of the agents holding every skill the topic requires (all agents for "all").
    pub occupancy_pct: Option<f64>,
}

/// The figures of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub topics: Vec<Figures>,
    pub overall: Figures,
    pub agents: usize,
    pub simulated_ms: u64,
    pub agents_set_away: u32,
}

/// The value at quantile `q` of sorted values, nearest rank (`q` = 0.5: the median).
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub fn summarize(
    routing: &Routing,
    agents: &[SimAgent],
    recorded: &Recorded,
    first_reply_ms: u64,
) -> Summary {
    let topics = routing
        .topics
        .iter()
        .enumerate()
        .map(|(index, topic)| {
            let chats: Vec<&ChatRecord> =
                recorded.chats.iter().filter(|c| c.topic == index).collect();
            let qualified: Vec<bool> = agents
                .iter()
                .map(|a| {
                    topic
                        .skills
                        .iter()
                        .all(|s| a.profile.skills.get(s).is_some_and(|l| *l >= 1))
                })
                .collect();
            figures(
                &topic.name,
                &chats,
                |_| (topic.sla.wait_ms, topic.sla.first_response_ms),
                occupancy(&recorded.agents, |i| qualified[i]),
                first_reply_ms,
            )
        })
        .collect();
    let all: Vec<&ChatRecord> = recorded.chats.iter().collect();
    let overall = figures(
        "all",
        &all,
        |chat| {
            let sla = routing.topics[chat.topic].sla;
            (sla.wait_ms, sla.first_response_ms)
        },
        occupancy(&recorded.agents, |_| true),
        first_reply_ms,
    );
    Summary {
        topics,
        overall,
        agents: agents.len(),
        simulated_ms: recorded.end_ms,
        agents_set_away: recorded.agents_set_away,
    }
}

fn occupancy(agents: &[AgentTime], include: impl Fn(usize) -> bool) -> Option<f64> {
    let (busy, available) = agents
        .iter()
        .enumerate()
        .filter(|(i, _)| include(*i))
        .fold((0u64, 0u64), |(b, a), (_, t)| {
            (b + t.busy_ms, a + t.available_ms)
        });
    (available > 0).then(|| 100.0 * busy as f64 / available as f64)
}

/// `targets` gives a chat's (wait, first response) targets; a chat without one is not
/// counted for that SLA.
fn figures(
    name: &str,
    chats: &[&ChatRecord],
    targets: impl Fn(&ChatRecord) -> (Option<u64>, Option<u64>),
    occupancy_pct: Option<f64>,
    first_reply_ms: u64,
) -> Figures {
    let mut waits = Vec::new();
    let (mut abandoned, mut unserved) = (0, 0);
    // (met, counted) for the wait and the first-response targets.
    let mut sla = [(0u64, 0u64); 2];
    for chat in chats {
        let answered_after = match chat.fate {
            Fate::Answered { wait_ms } => {
                waits.push(wait_ms);
                Some(wait_ms)
            }
            Fate::Abandoned { .. } => {
                abandoned += 1;
                None
            }
            Fate::Unserved => {
                unserved += 1;
                None
            }
        };
        let (wait_target, response_target) = targets(chat);
        for (slot, target, extra) in [(0, wait_target, 0), (1, response_target, first_reply_ms)] {
            if let Some(target) = target {
                sla[slot].1 += 1;
                if answered_after.is_some_and(|w| w.saturating_add(extra) <= target) {
                    sla[slot].0 += 1;
                }
            }
        }
    }
    waits.sort_unstable();
    let count = chats.len() as u64;
    let pct =
        |(met, counted): (u64, u64)| (counted > 0).then(|| 100.0 * met as f64 / counted as f64);
    Figures {
        topic: name.to_owned(),
        chats: count,
        answered: waits.len() as u64,
        abandoned,
        unserved,
        abandoned_pct: if count == 0 {
            0.0
        } else {
            100.0 * abandoned as f64 / count as f64
        },
        wait_p50_ms: percentile(&waits, 0.5),
        wait_p90_ms: percentile(&waits, 0.9),
        wait_mean_ms: (!waits.is_empty()).then(|| waits.iter().sum::<u64>() / waits.len() as u64),
        sla_wait_pct: pct(sla[0]),
        sla_first_response_pct: pct(sla[1]),
        occupancy_pct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.5), Some(5));
        assert_eq!(percentile(&v, 0.9), Some(9));
        assert_eq!(percentile(&v, 1.0), Some(10));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn sla_counts_abandoned_chats_as_missed() {
        let chats = [
            ChatRecord {
                topic: 0,
                fate: Fate::Answered { wait_ms: 10 },
            },
            ChatRecord {
                topic: 0,
                fate: Fate::Answered { wait_ms: 50 },
            },
            ChatRecord {
                topic: 0,
                fate: Fate::Abandoned { wait_ms: 5 },
            },
            ChatRecord {
                topic: 0,
                fate: Fate::Unserved,
            },
        ];
        let refs: Vec<&ChatRecord> = chats.iter().collect();
        let f = figures("t", &refs, |_| (Some(20), Some(20)), None, 5);
        assert_eq!((f.chats, f.answered, f.abandoned, f.unserved), (4, 2, 1, 1));
        assert_eq!(f.sla_wait_pct, Some(25.0));
        assert_eq!(f.sla_first_response_pct, Some(25.0));
        assert_eq!(f.wait_mean_ms, Some(30));
        assert_eq!(f.abandoned_pct, 25.0);
    }
}

//! The hash fields of a report bucket, both ways: the increments one ticket, rating or
//! stretch of agent time adds, and the figures (`Figures`, the wire JSON of one group)
//! computed from the fields of many buckets added together.
//!
//! Field names (one hash per hour and topic, one per hour and agent):
//! `started answered abandoned transferred escalated handled owned`;
//! `h:<metric>:<bin>`, `n:<metric>`, `s:<metric>` for the histograms of `wait`,
//! `first_response`, `handle`, `resolution`; `sla:<target>:met|missed`;
//! `r:csat:<score>`, `r:nps:<score>`; `t:available`, `t:busy_available`, `t:away`,
//! `t:away:<reason>`, `t:wrap_up`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{
    facts::{AgentFacts, RatingFacts, TicketFacts},
    histogram::Histogram,
};
use crate::{config::SurveyKind, protocol::AgentStatus};

/// Field increments for one hash.
pub type Increments = Vec<(String, i64)>;

fn count(out: &mut Increments, field: &str, n: u64) {
    if n > 0 {
        out.push((field.to_string(), n as i64));
    }
}

fn duration(out: &mut Increments, metric: &str, ms: Option<u64>) {
    if let Some(ms) = ms {
        let bin = super::histogram::bin_of(ms);
        out.push((format!("h:{metric}:{bin}"), 1));
        out.push((format!("n:{metric}"), 1));
        out.push((format!("s:{metric}"), ms.min(i64::MAX as u64) as i64));
    }
}

fn sla(out: &mut Increments, target: &str, met: Option<bool>) {
    match met {
        Some(true) => out.push((format!("sla:{target}:met"), 1)),
        Some(false) => out.push((format!("sla:{target}:missed"), 1)),
        None => {}
    }
}

/// What a chat adds to its topic's hour.
pub fn of_ticket(facts: &TicketFacts) -> Increments {
    let mut out = Vec::new();
    count(&mut out, "started", 1);
    count(&mut out, "answered", u64::from(facts.answered));
    count(&mut out, "abandoned", u64::from(facts.abandoned_in_queue));
    count(&mut out, "transferred", facts.transferred);
    count(&mut out, "escalated", facts.escalated);
    count(&mut out, "handled", facts.agents.len() as u64);
    count(&mut out, "owned", u64::from(facts.answered));
    duration(&mut out, "wait", facts.wait_ms);
    duration(&mut out, "first_response", facts.first_response_ms);
    duration(&mut out, "handle", facts.handle_ms);
    duration(&mut out, "resolution", Some(facts.resolution_ms));
    sla(&mut out, "wait", facts.sla_wait);
    sla(&mut out, "first_response", facts.sla_first_response);
    out
}

/// What an agent's share of a chat adds to the agent's hour.
pub fn of_agent(facts: &AgentFacts) -> Increments {
    let mut out = Vec::new();
    count(&mut out, "handled", 1);
    count(&mut out, "transferred", facts.transferred);
    count(&mut out, "escalated", facts.escalated);
    count(&mut out, "owned", u64::from(facts.owned_at_close));
    duration(&mut out, "handle", Some(facts.handle_ms));
    out
}

/// What a rating adds (to the topic's hour and the owning agent's).
pub fn of_rating(rating: &RatingFacts) -> Increments {
    vec![(
        format!("r:{}:{}", survey_name(rating.survey), rating.score),
        1,
    )]
}

fn survey_name(kind: SurveyKind) -> &'static str {
    match kind {
        SurveyKind::Csat => "csat",
        SurveyKind::Nps => "nps",
    }
}

/// The fields that a stretch of `ms` in `status` adds (offline adds nothing).
pub fn of_state_time(status: AgentStatus, reason: Option<&str>, busy: bool, ms: u64) -> Increments {
    let ms = ms.min(i64::MAX as u64) as i64;
    let mut out = Vec::new();
    match status {
        AgentStatus::Available => {
            out.push(("t:available".to_string(), ms));
            if busy {
                out.push(("t:busy_available".to_string(), ms));
            }
        }
        AgentStatus::Away => {
            out.push(("t:away".to_string(), ms));
            if let Some(reason) = reason {
                out.push((format!("t:away:{reason}"), ms));
            }
        }
        AgentStatus::WrapUp => out.push(("t:wrap_up".to_string(), ms)),
        AgentStatus::Offline => {}
    }
    out
}

/// Fields of many buckets added together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters(pub BTreeMap<String, i64>);

impl Counters {
    pub fn add(&mut self, fields: &HashMap<String, i64>) {
        for (field, n) in fields {
            *self.0.entry(field.clone()).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: &Counters) {
        for (field, n) in &other.0 {
            *self.0.entry(field.clone()).or_default() += n;
        }
    }

    fn get(&self, field: &str) -> u64 {
        self.0.get(field).copied().unwrap_or(0).max(0) as u64
    }

    fn histogram(&self, metric: &str) -> Histogram {
        let prefix = format!("h:{metric}:");
        let bins = self
            .0
            .iter()
            .filter_map(|(field, n)| {
                let bin = field.strip_prefix(&prefix)?.parse::<u32>().ok()?;
                Some((bin, (*n).max(0) as u64))
            })
            .collect();
        Histogram {
            bins,
            count: self.get(&format!("n:{metric}")),
            sum: self.get(&format!("s:{metric}")),
        }
    }

    fn stat(&self, metric: &str) -> Stat {
        let h = self.histogram(metric);
        Stat {
            count: h.count,
            p50: h.percentile(0.5).map(|v| v.round() as u64),
            p90: h.percentile(0.9).map(|v| v.round() as u64),
            mean: h.mean(),
        }
    }

    fn sla(&self, target: &str) -> SlaFigure {
        let met = self.get(&format!("sla:{target}:met"));
        let missed = self.get(&format!("sla:{target}:missed"));
        SlaFigure {
            met,
            missed,
            pct_met: pct(met, met + missed),
        }
    }

    fn scores(&self, kind: SurveyKind, scale: std::ops::RangeInclusive<u8>) -> BTreeMap<u8, u64> {
        scale
            .map(|score| (score, self.get(&format!("r:{}:{score}", survey_name(kind)))))
            .collect()
    }

    /// The figures of one group; `surveys` are the kinds to show even without answers.
    pub fn figures(&self, group: &str, surveys: &[SurveyKind], agent: bool) -> Figures {
        let chats = Chats {
            started: self.get("started"),
            answered: self.get("answered"),
            abandoned_in_queue: self.get("abandoned"),
            transferred: self.get("transferred"),
            escalated: self.get("escalated"),
            handled: self.get("handled"),
            owned_at_close: self.get("owned"),
        };
        // Surveys go to every closed chat: a topic's rate is over the chats started, an
        // agent's over the chats it held at close.
        let surveyed = if agent {
            chats.owned_at_close
        } else {
            chats.started
        };
        let csat = self.scores(SurveyKind::Csat, 1..=5);
        let csat_n: u64 = csat.values().sum();
        let csat = (csat_n > 0 || surveys.contains(&SurveyKind::Csat)).then(|| Csat {
            responses: csat_n,
            response_rate_pct: pct(csat_n, surveyed),
            mean: mean(&csat),
            distribution: csat.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        });
        let nps = self.scores(SurveyKind::Nps, 0..=10);
        let nps_n: u64 = nps.values().sum();
        let nps = (nps_n > 0 || surveys.contains(&SurveyKind::Nps)).then(|| {
            let band = |r: std::ops::RangeInclusive<u8>| -> u64 {
                nps.iter()
                    .filter(|(s, _)| r.contains(s))
                    .map(|(_, n)| n)
                    .sum()
            };
            let (promoters, passives, detractors) = (band(9..=10), band(7..=8), band(0..=6));
            Nps {
                responses: nps_n,
                response_rate_pct: pct(nps_n, surveyed),
                score: (nps_n > 0)
                    .then(|| (promoters as f64 - detractors as f64) * 100.0 / nps_n as f64),
                promoters,
                passives,
                detractors,
                mean: mean(&nps),
                distribution: nps.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            }
        });
        let agent_time = agent.then(|| {
            let available_ms = self.get("t:available");
            let busy_ms = self.get("t:busy_available");
            AgentTime {
                available_ms,
                busy_ms,
                away_ms: self.get("t:away"),
                away_by_reason: self
                    .0
                    .iter()
                    .filter_map(|(f, n)| Some((f.strip_prefix("t:away:")?.to_string(), *n as u64)))
                    .collect(),
                wrap_up_ms: self.get("t:wrap_up"),
                occupancy_pct: pct(busy_ms, available_ms),
            }
        });
        Figures {
            group: group.to_string(),
            chats,
            wait_ms: self.stat("wait"),
            first_response_ms: self.stat("first_response"),
            handle_ms: self.stat("handle"),
            resolution_ms: self.stat("resolution"),
            sla: Sla {
                wait: self.sla("wait"),
                first_response: self.sla("first_response"),
            },
            csat,
            nps,
            agent_time,
        }
    }
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn mean(scores: &BTreeMap<u8, u64>) -> Option<f64> {
    let n: u64 = scores.values().sum();
    let sum: u64 = scores.iter().map(|(s, k)| u64::from(*s) * k).sum();
    (n > 0).then(|| sum as f64 / n as f64)
}

/// One group's figures over one bucket (or the whole period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// The topic name or agent id.
    pub group: String,
    pub chats: Chats,
    pub wait_ms: Stat,
    pub first_response_ms: Stat,
    pub handle_ms: Stat,
    pub resolution_ms: Stat,
    pub sla: Sla,
    /// Present for a CSAT topic (for agents: when any topic is CSAT) or any answer.
    pub csat: Option<Csat>,
    /// Present for an NPS topic (for agents: when any topic is NPS) or any answer.
    pub nps: Option<Nps>,
    /// Agents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_time: Option<AgentTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chats {
    pub started: u64,
    pub answered: u64,
    pub abandoned_in_queue: u64,
    pub transferred: u64,
    pub escalated: u64,
    /// Topic: agent shares of its chats (a transferred chat counts once per agent);
    /// agent: chats it joined.
    pub handled: u64,
    /// Chats held by an agent at close (topic: the answered ones).
    pub owned_at_close: u64,
}

/// A duration's count, percentiles (within the stated precision) and exact mean, in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub count: u64,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub mean: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sla {
    pub wait: SlaFigure,
    pub first_response: SlaFigure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaFigure {
    pub met: u64,
    pub missed: u64,
    /// `met ÷ (met + missed)` in %, `None` when nothing was measured.
    pub pct_met: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Csat {
    pub responses: u64,
    pub response_rate_pct: Option<f64>,
    pub mean: Option<f64>,
    /// Score ("1" to "5") → answers.
    pub distribution: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nps {
    pub responses: u64,
    pub response_rate_pct: Option<f64>,
    /// % promoters (9–10) − % detractors (0–6), −100 to 100.
    pub score: Option<f64>,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub mean: Option<f64>,
    /// Score ("0" to "10") → answers.
    pub distribution: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTime {
    pub available_ms: u64,
    /// Available while holding at least one chat.
    pub busy_ms: u64,
    pub away_ms: u64,
    pub away_by_reason: BTreeMap<String, u64>,
    pub wrap_up_ms: u64,
    /// `busy_ms ÷ available_ms` in %.
    pub occupancy_pct: Option<f64>,
}

//! The simulator's inputs, parsed once with clear errors: the routing config (the hub's
//! own TOML), the team (agents JSON) and the traffic (JSON lines). Nothing here routes.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

use super::SimError;
use crate::config::{Config, TopicConfig};
use crate::router::{AgentProfile, RouterConfig};

/// The routing configuration a run uses: what the core takes, plus the per-topic
/// targets it is measured against.
#[derive(Debug, Clone)]
pub struct Routing {
    pub router: RouterConfig,
    pub topics: Vec<TopicConfig>,
}

impl Routing {
    /// From the hub's TOML config file. A simulation needs no secrets, so a file without
    /// `admin_token` (a routing-only file) is accepted.
    pub fn from_toml(path: &Path) -> Result<Routing, SimError> {
        let text = read(path)?;
        Routing::from_toml_text(&text).map_err(|cause| SimError::Input {
            path: path.display().to_string(),
            cause,
        })
    }

    pub fn from_toml_text(text: &str) -> Result<Routing, String> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        table
            .entry("admin_token")
            .or_insert_with(|| "simulate-needs-no-token".into());
        let config = Config::from_toml(&table.to_string(), "").map_err(|e| e.to_string())?;
        Ok(Routing::from_config(&config))
    }

    pub fn from_config(config: &Config) -> Routing {
        let mut router = crate::routing::rules::router_config(config);
        // The same input must give the same run.
        router.offer_id_seed = 0;
        // Decision records cost a walk over the agents each; a rehearsal needs none.
        router.audit = false;
        Routing {
            router,
            topics: config.topics.clone(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// When an agent is available, in ms of the simulation's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub from_ms: u64,
    pub to_ms: u64,
}

/// One entry of the agents file; `count` stands for that many agents alike.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentEntry {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    skills: BTreeMap<String, u32>,
    capacity: u32,
    #[serde(default)]
    auto_accept: bool,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    shift: Option<Shift>,
}

/// One simulated agent: its router profile and when it works (always, without a shift).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAgent {
    pub profile: AgentProfile,
    pub shift: Option<Shift>,
}

/// Reads the agents file: a JSON list of agents.
pub fn agents_from_file(path: &Path) -> Result<Vec<SimAgent>, SimError> {
    let text = read(path)?;
    parse_agents(&text).map_err(|cause| SimError::Input {
        path: path.display().to_string(),
        cause,
    })
}

pub fn parse_agents(text: &str) -> Result<Vec<SimAgent>, String> {
    let entries: Vec<AgentEntry> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut agents = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        if entry.capacity == 0 {
            return Err(format!("agent {:?}: capacity must be at least 1", entry.id));
        }
        if let Some(shift) = entry.shift.filter(|s| s.from_ms >= s.to_ms) {
            return Err(format!(
                "agent {:?}: shift from_ms {} must be before to_ms {}",
                entry.id, shift.from_ms, shift.to_ms
            ));
        }
        let ids: Vec<String> = match entry.count {
            None => vec![entry.id.clone()],
            Some(0) => return Err(format!("agent {:?}: count must be at least 1", entry.id)),
            Some(n) => (1..=n).map(|i| format!("{}-{i}", entry.id)).collect(),
        };
        for id in ids {
            if id.is_empty() || !seen.insert(id.clone()) {
                return Err(format!("agent ids must be non-empty and unique: {id:?}"));
            }
            agents.push(SimAgent {
                profile: AgentProfile {
                    name: entry.name.clone().unwrap_or_else(|| id.clone()),
                    id,
                    skills: entry.skills.clone(),
                    capacity: entry.capacity,
                    auto_accept: entry.auto_accept,
                },
                shift: entry.shift,
            });
        }
    }
    if agents.is_empty() {
        return Err("no agents".into());
    }
    Ok(agents)
}

/// One chat of the traffic: when it arrives, its topic, how long an agent holds it once
/// joined, how long its customer waits before giving up (never, when absent), and how
/// long an agent takes to accept its offer (`--response-ms`, when absent).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    pub at_ms: u64,
    pub topic: String,
    pub handle_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<u64>,
}

/// Reads a traffic file: one JSON object per line (blank lines skipped).
pub fn traffic_from_file(path: &Path, routing: &Routing) -> Result<Vec<Arrival>, SimError> {
    let text = read(path)?;
    parse_traffic(&text, routing).map_err(|cause| SimError::Input {
        path: path.display().to_string(),
        cause,
    })
}

pub fn parse_traffic(text: &str, routing: &Routing) -> Result<Vec<Arrival>, String> {
    let mut traffic = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let arrival: Arrival = serde_json::from_str(line).map_err(|e| {
            // serde_json says "at line 1 column N" of the one line it was given.
            let text = e.to_string();
            let cause = text.split(" at line ").next().unwrap_or(&text);
            format!("line {}, column {}: {cause}", index + 1, e.column())
        })?;
        check_topic(&arrival.topic, routing).map_err(|e| format!("line {}: {e}", index + 1))?;
        traffic.push(arrival);
    }
    Ok(traffic)
}

/// Every topic of the traffic must be one of the config's: a typo would otherwise route
/// silently to the default topic.
pub fn check_topic(topic: &str, routing: &Routing) -> Result<(), String> {
    if routing.topic(topic).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = routing.topics.iter().map(|t| t.name.as_str()).collect();
    Err(format!(
        "unknown topic {topic:?} (the config has {})",
        known.join(", ")
    ))
}

fn read(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(|cause| SimError::Read {
        path: path.display().to_string(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing() -> Routing {
        Routing::from_toml_text(
            "[[topic]]\nname = \"general\"\n\n[[topic]]\nname = \"billing\"\nskills = [\"billing\"]\n",
        )
        .expect("valid routing")
    }

    #[test]
    fn count_expands_ids() {
        let agents = parse_agents(
            r#"[{"id":"b","skills":{"billing":3},"capacity":2,"count":3},
                {"id":"g","capacity":1,"shift":{"from_ms":0,"to_ms":1000}}]"#,
        )
        .expect("valid");
        let ids: Vec<&str> = agents.iter().map(|a| a.profile.id.as_str()).collect();
        assert_eq!(ids, ["b-1", "b-2", "b-3", "g"]);
        assert_eq!(agents[0].profile.skills["billing"], 3);
        assert!(agents[3].shift.is_some());
    }

    #[test]
    fn bad_agents_are_refused() {
        for bad in [
            r#"[{"id":"a","capacity":0}]"#,
            r#"[{"id":"a","capacity":1},{"id":"a","capacity":1}]"#,
            r#"[{"id":"a","capacity":1,"shift":{"from_ms":5,"to_ms":5}}]"#,
            r#"[{"id":"a","capacity":1,"colour":"red"}]"#,
            "[]",
        ] {
            assert!(parse_agents(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn traffic_errors_name_the_line() {
        let routing = routing();
        let ok = "{\"at_ms\":0,\"topic\":\"billing\",\"handle_ms\":5}\n\n\
                  {\"at_ms\":9,\"topic\":\"general\",\"handle_ms\":5,\"patience_ms\":7}\n";
        let traffic = parse_traffic(ok, &routing).expect("valid");
        assert_eq!(traffic[1].patience_ms, Some(7));
        let err = parse_traffic(
            "{\"at_ms\":0,\"topic\":\"billing\",\"handle_ms\":5}\n{oops",
            &routing,
        )
        .expect_err("bad json");
        assert!(err.starts_with("line 2, column "), "{err}");
        let err = parse_traffic(
            "{\"at_ms\":0,\"topic\":\"sales\",\"handle_ms\":5}",
            &routing,
        )
        .expect_err("unknown topic");
        assert!(err.contains("line 1: unknown topic \"sales\""), "{err}");
    }

    #[test]
    fn a_routing_file_needs_no_token() {
        let routing = routing();
        assert_eq!(routing.router.topics.len(), 2);
        assert_eq!(routing.router.offer_id_seed, 0);
    }
}

//! Read-only snapshots for the stats and agents endpoints. Walks the state (that is fine
//! for an admin request); never used on the decision path.

use super::state::{Conv, Phase};
use super::types::{AgentStats, AgentStatus, RouterStats, StatsTotals, TopicStats};
use super::Router;

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Router {
    /// Per topic: waiting, longest wait, available agents; per agent: status and load;
    /// totals.
    pub fn stats(&self, now_ms: u64) -> RouterStats {
        let mut topics: Vec<TopicStats> = self
            .topics
            .iter()
            .map(|t| TopicStats {
                name: t.rule.name.clone(),
                waiting: 0,
                longest_wait_ms: 0,
                agents_available: self.groups[t.levels[0].group].available_agents,
            })
            .collect();
        let mut totals = StatsTotals {
            waiting: 0,
            longest_wait_ms: 0,
            assigned: 0,
            open_offers: count(self.offers.len()),
            pending_transfers: 0,
            agents: count(self.agents.len()),
            agents_available: count(
                self.agents
                    .values()
                    .filter(|a| a.status == AgentStatus::Available)
                    .count(),
            ),
        };
        for conv in self.convs.values() {
            match &conv.phase {
                Phase::Queued(_) => {
                    let waited = now_ms.saturating_sub(conv.waiting_since_ms);
                    let t = &mut topics[conv.topic];
                    t.waiting += 1;
                    t.longest_wait_ms = t.longest_wait_ms.max(waited);
                    totals.waiting += 1;
                    totals.longest_wait_ms = totals.longest_wait_ms.max(waited);
                }
                Phase::Assigned(a) => {
                    totals.assigned += 1;
                    if a.transfer.is_some() {
                        totals.pending_transfers += 1;
                    }
                }
            }
        }
        let agents = self
            .agents
            .values()
            .map(|a| AgentStats {
                id: a.profile.id.clone(),
                status: a.status,
                away_reason: a.away_reason.clone(),
                wrap_up_ends_in_ms: a.wrap_up_until.map(|at| at.saturating_sub(now_ms)),
                load: a.load(),
                capacity: a.profile.capacity,
                assigned: count(a.active.len()),
                offers: count(a.offers.len()),
            })
            .collect();
        RouterStats {
            topics,
            agents,
            totals,
        }
    }

    /// Whether any agent is Available (the `online` flag of the customer's `welcome`).
    /// Conversations waiting in `topic`'s queue (offered or not); 0 for an unknown topic.
    pub fn waiting(&self, topic: &str) -> usize {
        self.topic_ids
            .get(topic)
            .and_then(|&id| self.topics.get(id))
            .map_or(0, |t| t.order.len())
    }

    /// An agent in wrap-up counts: it takes chats again within seconds, and a customer
    /// should not be shown the offline form meanwhile.
    pub fn online(&self) -> bool {
        self.agents
            .values()
            .any(|a| matches!(a.status, AgentStatus::Available | AgentStatus::WrapUp))
    }

    /// Per topic, whether someone could take its chats now: an Available agent (or one
    /// in wrap-up, back within seconds) holding every skill of the topic's widest level
    /// (what it requires once every widening step applied). What the widget's "online"
    /// means for that topic. Available agents are counted per group already; wrap-up
    /// agents (few, and only while nobody available qualifies) are looked at one by one.
    pub fn staffed_topics(&self) -> Vec<(String, bool)> {
        self.topics
            .iter()
            .map(|topic| {
                let widest = topic.levels.last().map(|l| l.group);
                let staffed = widest.is_some_and(|group| {
                    self.groups[group].available_agents > 0
                        || self.agents.values().any(|a| {
                            a.status == AgentStatus::WrapUp
                                && a.groups.iter().any(|(g, _)| *g == group)
                        })
                });
                (topic.rule.name.clone(), staffed)
            })
            .collect()
    }

    /// Queued conversations in serving order of their topic, lazily: `GET /v1/queue`
    /// takes the first few of a queue that may be long.
    pub fn queued(&self) -> impl Iterator<Item = &str> + '_ {
        self.topics
            .iter()
            .flat_map(|t| t.order.keys())
            .filter(|k| {
                self.convs
                    .get(&*k.id)
                    .is_some_and(|c: &Conv| c.assigned().is_none())
            })
            .map(|k| &*k.id)
    }
}

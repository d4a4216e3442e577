//! The `Router` value: its fields, construction, read-only accessors, offer ids and the
//! timer plumbing shared by the operation modules. It owns all routing state; nothing in
//! here does I/O or reads a clock: every time is the caller's `now_ms`.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{Agent, Conv, Offer, Timer};
use super::topics::{self, Group, Topic};
use super::types::{
    Activity, AgentId, AgentStatus, Command, ConversationId, OfferId, RouterConfig,
};

/// The settings the operations read (the topics live compiled in `Router::topics`).
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) max_missed_offers: u32,
    pub(super) agent_grace_ms: u64,
    pub(super) customer_idle_timeout_ms: u64,
    pub(super) queue_update_min_interval_ms: u64,
    pub(super) offer_id_seed: u64,
    pub(super) audit: bool,
    pub(super) exclusion_cooldown_ms: u64,
}

/// How long a conversation whose assignment could not be stored is kept out of matching,
/// so a failing store is not hammered by an offer/assign loop (auto-accept agents).
pub(super) const ASSIGN_RETRY_MS: u64 = 1_000;

/// The routing core. Every mutating call takes the caller's `now_ms` (a monotonic clock)
/// and returns the commands the hub must carry out, in order. Timers only fire in
/// [`Router::tick`]; call it at [`Router::next_deadline`].
#[derive(Debug)]
pub struct Router {
    pub(super) settings: Settings,
    pub(super) topics: Vec<Topic>,
    pub(super) topic_ids: BTreeMap<String, usize>,
    pub(super) default_topic: usize,
    pub(super) groups: Vec<Group>,
    pub(super) agents: BTreeMap<AgentId, Agent>,
    pub(super) convs: BTreeMap<ConversationId, Conv>,
    pub(super) offers: BTreeMap<OfferId, Offer>,
    /// Every pending timer, earliest first. Each owner records the time it scheduled so the
    /// exact entry can be removed when the timer is cancelled.
    pub(super) timers: BTreeSet<(u64, Timer)>,
    /// Topics whose queue positions must be recomputed before the call returns.
    pub(super) dirty_topics: BTreeSet<usize>,
    pub(super) offer_counter: u64,
    pub(super) next_seq: u64,
    /// Agents whose activity (status, away reason, busy) changed during the operation:
    /// reported once each when it returns.
    pub(super) activity_changed: BTreeSet<AgentId>,
}

impl Router {
    pub fn new(config: RouterConfig) -> Self {
        let compiled = topics::compile(&config);
        Router {
            settings: Settings {
                max_missed_offers: config.max_missed_offers,
                agent_grace_ms: config.agent_grace_ms,
                customer_idle_timeout_ms: config.customer_idle_timeout_ms,
                queue_update_min_interval_ms: config.queue_update_min_interval_ms,
                offer_id_seed: config.offer_id_seed,
                audit: config.audit,
                exclusion_cooldown_ms: config.exclusion_cooldown_ms,
            },
            topics: compiled.topics,
            topic_ids: compiled.by_name,
            default_topic: compiled.default_topic,
            groups: compiled.groups,
            agents: BTreeMap::new(),
            convs: BTreeMap::new(),
            offers: BTreeMap::new(),
            timers: BTreeSet::new(),
            dirty_topics: BTreeSet::new(),
            offer_counter: 0,
            next_seq: 0,
            activity_changed: BTreeSet::new(),
        }
    }

    /// The earliest `now_ms` at which [`Router::tick`] has work (offer expiry, widening,
    /// grace, a held-back queue update, a transfer deadline, abandonment).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// (assigned + held offers, capacity).
    pub fn agent_load(&self, id: &str) -> Option<(u32, u32)> {
        self.agents.get(id).map(|a| (a.load(), a.profile.capacity))
    }

    pub fn agent_status(&self, id: &str) -> Option<AgentStatus> {
        self.agents.get(id).map(|a| a.status)
    }

    /// The display name of an agent, as its profile gives it.
    pub fn agent_name(&self, id: &str) -> Option<&str> {
        self.agents.get(id).map(|a| a.profile.name.as_str())
    }

    /// The current owner (during a transfer, still the old one).
    pub fn agent_of(&self, conversation: &str) -> Option<&str> {
        self.convs.get(conversation).and_then(Conv::owner)
    }

    /// The conversations an agent owns, in id order.
    pub fn conversations_of(&self, agent: &str) -> Vec<&str> {
        self.agents
            .get(agent)
            .map(|a| a.active.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// True while the conversation waits in the queue (with or without an open offer).
    pub fn is_queued(&self, conversation: &str) -> bool {
        self.convs
            .get(conversation)
            .is_some_and(|c| c.assigned().is_none())
    }

    /// The open offer for a conversation, if any: (offer id, agent).
    pub fn open_offer(&self, conversation: &str) -> Option<(&str, &str)> {
        self.offers
            .iter()
            .find(|(_, o)| o.conversation == conversation)
            .map(|(id, o)| (id.as_str(), o.agent.as_str()))
    }

    /// The name of the topic a conversation belongs to (after an accepted escalation, the
    /// target topic).
    pub fn topic_of(&self, conversation: &str) -> Option<&str> {
        self.convs
            .get(conversation)
            .map(|c| self.topics[c.topic].rule.name.as_str())
    }

    /// The topic a name routes to: unknown names go to the default topic.
    pub(super) fn topic_index(&self, name: &str) -> usize {
        self.topic_ids
            .get(name)
            .copied()
            .unwrap_or(self.default_topic)
    }

    /// A fresh offer id: `o_` + 16 hex digits of a bijective mix of the seed and a counter,
    /// so ids are unique for a seed, deterministic, and unguessable in order.
    pub(super) fn next_offer_id(&mut self) -> OfferId {
        self.offer_counter += 1;
        let mut z = self
            .settings
            .offer_id_seed
            .wrapping_add(self.offer_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        format!("o_{z:016x}")
    }

    pub(super) fn schedule(&mut self, at: u64, timer: Timer) {
        self.timers.insert((at, timer));
    }

    pub(super) fn unschedule(&mut self, at: u64, timer: Timer) {
        self.timers.remove(&(at, timer));
    }

    /// Work every public operation ends with: send the queue positions that changed.
    pub(super) fn finish(&mut self, now_ms: u64, out: &mut Vec<Command>) {
        while let Some(topic) = self.dirty_topics.pop_first() {
            self.flush_positions(now_ms, topic, out);
        }
        while let Some(id) = self.activity_changed.pop_first() {
            let activity = match self.agents.get(&id) {
                Some(a) => Activity {
                    status: a.status,
                    away_reason: a.away_reason.clone(),
                    busy: !a.active.is_empty(),
                    agent: id,
                },
                None => Activity {
                    agent: id,
                    status: AgentStatus::Offline,
                    away_reason: None,
                    busy: false,
                },
            };
            out.push(Command::Activity(activity));
        }
    }
}

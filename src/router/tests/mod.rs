//! Unit tests of the routing rules, driven by an injected clock. `Harness` runs the
//! internal consistency check after every call, so each test also checks the indexes.

mod desk;
mod grace;
mod lifecycle;
mod offers;
mod positions;
mod prop;
mod selection;
mod stranded;
mod transfer;
mod widening;

use super::{
    AgentProfile, AgentStatus, Command, Expand, NewConversation, RevokeReason, RouteError, Router,
    RouterConfig, TopicRule,
};

/// Topics used by most tests:
/// - `general`: no skills, priority 0 (default);
/// - `billing`: needs billing, priority 0;
/// - `billing_fr`: needs billing + fr, priority 5, drops fr after 30 s;
/// - `tier2`: needs tier2, priority 1, escalation boost 10, transfer timeout 20 s;
/// - `vip`: no skills, priority 10.
pub(super) fn config() -> RouterConfig {
    let mut billing = TopicRule::new("billing");
    billing.skills = vec!["billing".into()];
    let mut billing_fr = TopicRule::new("billing_fr");
    billing_fr.skills = vec!["billing".into(), "fr".into()];
    billing_fr.priority = 5;
    billing_fr.expand = vec![Expand {
        after_ms: 30_000,
        drop_skills: vec!["fr".into()],
    }];
    let mut tier2 = TopicRule::new("tier2");
    tier2.skills = vec!["tier2".into()];
    tier2.priority = 1;
    tier2.escalation_priority_boost = 10;
    tier2.transfer_timeout_ms = 20_000;
    let mut vip = TopicRule::new("vip");
    vip.priority = 10;
    RouterConfig {
        topics: vec![TopicRule::new("general"), billing, billing_fr, tier2, vip],
        default_topic: "general".into(),
        ..RouterConfig::default()
    }
}

pub(super) fn profile(id: &str, skills: &[(&str, u32)], capacity: u32) -> AgentProfile {
    AgentProfile {
        id: id.into(),
        name: id.to_uppercase(),
        skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
        capacity,
        auto_accept: false,
    }
}

/// Drops the reporting commands (activity, decisions) from a call's output.
pub(super) fn routing_only(out: Vec<Command>) -> Vec<Command> {
    out.into_iter()
        .filter(|c| !matches!(c, Command::Activity(_) | Command::Decision(_)))
        .collect()
}

pub(super) struct Harness {
    pub(super) r: Router,
    pub(super) now: u64,
}

impl Harness {
    pub(super) fn new() -> Self {
        Self::with(config())
    }

    pub(super) fn with(config: RouterConfig) -> Self {
        Harness {
            r: Router::new(config),
            now: 0,
        }
    }

    /// The routing commands of a call; the reporting ones (activity, decisions) are
    /// tested on their own (`desk.rs`), so the rule tests compare only what routes.
    fn checked(&self, out: Vec<Command>) -> Vec<Command> {
        self.r.check(self.now);
        routing_only(out)
    }

    /// Moves the clock (never backwards).
    pub(super) fn at(&mut self, now: u64) -> &mut Self {
        assert!(now >= self.now);
        self.now = now;
        self
    }

    /// Upserts the agent and makes it Available; returns the commands of both calls.
    pub(super) fn agent(&mut self, p: AgentProfile) -> Vec<Command> {
        let id = p.id.clone();
        let mut out = self.r.upsert_agent(self.now, p);
        out.extend(self.r.set_status(self.now, &id, AgentStatus::Available));
        self.checked(out)
    }

    pub(super) fn upsert(&mut self, p: AgentProfile) -> Vec<Command> {
        let out = self.r.upsert_agent(self.now, p);
        self.checked(out)
    }

    pub(super) fn status(&mut self, id: &str, status: AgentStatus) -> Vec<Command> {
        let out = self.r.set_status(self.now, id, status);
        self.checked(out)
    }

    pub(super) fn remove(&mut self, id: &str) -> Vec<Command> {
        let out = self.r.remove_agent(self.now, id);
        self.checked(out)
    }

    pub(super) fn enqueue(&mut self, id: &str, topic: &str) -> Vec<Command> {
        self.enqueue_full(id, topic, self.now, None)
    }

    pub(super) fn enqueue_full(
        &mut self,
        id: &str,
        topic: &str,
        since: u64,
        preferred: Option<&str>,
    ) -> Vec<Command> {
        let conv = NewConversation {
            id: id.into(),
            topic: topic.into(),
            waiting_since_ms: since,
            preferred_agent: preferred.map(str::to_owned),
        };
        let out = self.r.enqueue(self.now, conv);
        self.checked(out)
    }

    pub(super) fn accept(&mut self, agent: &str, offer: &str) -> Result<Vec<Command>, RouteError> {
        let out = self.r.accept(self.now, agent, offer);
        self.r.check(self.now);
        out.map(routing_only)
    }

    pub(super) fn decline(&mut self, agent: &str, offer: &str) -> Result<Vec<Command>, RouteError> {
        let out = self.r.decline(self.now, agent, offer);
        self.r.check(self.now);
        out.map(routing_only)
    }

    pub(super) fn close(&mut self, conv: &str) -> Vec<Command> {
        let out = self.r.close(self.now, conv);
        self.checked(out)
    }

    pub(super) fn tick(&mut self, now: u64) -> Vec<Command> {
        self.at(now);
        let out = self.r.tick(now);
        self.checked(out)
    }

    /// Enqueues and accepts at once: the conversation ends up assigned to `agent`, which
    /// must be the one offered it.
    pub(super) fn assign(&mut self, conv: &str, topic: &str, agent: &str) {
        let out = self.enqueue(conv, topic);
        let (offer, to) = offer_of(&out, conv).expect("an offer");
        assert_eq!(to, agent, "offered to the expected agent");
        self.accept(agent, &offer).expect("accept");
        assert_eq!(self.r.agent_of(conv), Some(agent));
    }
}

/// The (offer id, agent) of the Offer for `conv` among the commands.
pub(super) fn offer_of(out: &[Command], conv: &str) -> Option<(String, String)> {
    out.iter().find_map(|c| match c {
        Command::Offer {
            offer_id,
            agent,
            conversation,
            ..
        } if conversation == conv => Some((offer_id.clone(), agent.clone())),
        _ => None,
    })
}

/// Every Offer among the commands as (conversation, agent).
pub(super) fn offers(out: &[Command]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Offer {
                agent,
                conversation,
                ..
            } => Some((conversation.clone(), agent.clone())),
            _ => None,
        })
        .collect()
}

/// Every QueuePosition among the commands as (conversation, position).
pub(super) fn positions(out: &[Command]) -> Vec<(String, u32)> {
    out.iter()
        .filter_map(|c| match c {
            Command::QueuePosition {
                conversation,
                position,
                ..
            } => Some((conversation.clone(), *position)),
            _ => None,
        })
        .collect()
}

/// The commands other than queue positions (most tests are about decisions).
pub(super) fn decisions(out: &[Command]) -> Vec<Command> {
    out.iter()
        .filter(|c| {
            !matches!(
                c,
                Command::QueuePosition { .. } | Command::Activity(_) | Command::Decision(_)
            )
        })
        .cloned()
        .collect()
}

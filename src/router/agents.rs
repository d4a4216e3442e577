//! Agent lifecycle: joining and profile changes, removal, status changes, the grace
//! period of an agent whose connections all dropped, and taking conversations away from
//! an agent that is gone (they are queued again at the front of their priority).

use super::decision::{DecisionEvent, Rule};
use super::handover::Lapse;
use super::rank::Lane;
use super::state::{Agent, Conv, Phase, Timer};
use super::topics;
use super::types::{
    AgentProfile, AgentStatus, Command, ConversationId, OfferId, RevokeReason, TransferFailReason,
};
use super::Router;

impl Router {
    /// Adds an agent (status Offline until `set_status`) or changes its profile. A lowered
    /// capacity gives back the newest offers first (revoke reason Withdrawn); assigned
    /// conversations are never taken back. Offers already made stay valid when skills
    /// change. A raised capacity or new skills let the agent take waiting conversations.
    pub fn upsert_agent(&mut self, now_ms: u64, profile: AgentProfile) -> Vec<Command> {
        let mut out = Vec::new();
        let id = profile.id.clone();
        let groups = topics::qualifying_groups(&self.groups, &profile.skills);
        if !self.agents.contains_key(&id) {
            self.agents.insert(id.clone(), Agent::new(profile, groups));
            return out;
        }
        self.update_agent(&id, |a| {
            a.profile = profile;
            a.groups = groups;
        });
        while let Some(offer_id) = self.excess_offer(&id) {
            self.lapse_offer(now_ms, &offer_id, Lapse::Withdrawn, &mut out);
        }
        self.seek_work(now_ms, &id, &mut out);
        self.finish(now_ms, &mut out);
        out
    }

    /// The newest offer of an agent holding more than its capacity.
    pub(super) fn excess_offer(&self, id: &str) -> Option<OfferId> {
        let agent = self.agents.get(id)?;
        if agent.load() <= agent.profile.capacity {
            return None;
        }
        agent
            .offers
            .iter()
            .max_by_key(|o| self.offers.get(*o).map(|offer| offer.serial))
            .cloned()
    }

    /// Removes an agent: its offers are withdrawn and re-offered, each of its conversations
    /// gets `Unassigned` and is queued again at the front of its priority.
    pub fn remove_agent(&mut self, now_ms: u64, id: &str) -> Vec<Command> {
        let mut out = Vec::new();
        if self
            .update_agent(id, |a| a.status = AgentStatus::Offline)
            .is_none()
        {
            return out;
        }
        self.cancel_grace(id);
        self.cancel_wrap_up(id);
        self.withdraw_offers(now_ms, id, &mut out);
        let conversations: Vec<ConversationId> = self
            .agents
            .get(id)
            .map(|a| a.active.iter().cloned().collect())
            .unwrap_or_default();
        self.take_away(now_ms, &conversations, &mut out);
        self.unindex_agent(id);
        self.agents.remove(id);
        self.finish(now_ms, &mut out);
        out
    }

    /// Available: receives offers (the missed-offer count restarts). Away: keeps its
    /// conversations, gets no offers, its open offers are withdrawn. Offline (all
    /// connections gone): offers withdrawn and the grace timer starts; Available or Away
    /// before it ends cancels it.
    /// WrapUp set here (a rebuild restoring it) has no timer: it lasts until Available.
    /// Any other status ends a running wrap-up.
    pub fn set_status(&mut self, now_ms: u64, id: &str, status: AgentStatus) -> Vec<Command> {
        self.change_status(now_ms, id, status, None)
    }

    /// Away with the reason the agent gave (from the hub's configured list).
    pub fn set_away(&mut self, now_ms: u64, id: &str, reason: Option<String>) -> Vec<Command> {
        self.change_status(now_ms, id, AgentStatus::Away, reason)
    }

    fn change_status(
        &mut self,
        now_ms: u64,
        id: &str,
        status: AgentStatus,
        away_reason: Option<String>,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        if status != AgentStatus::WrapUp {
            self.cancel_wrap_up(id);
        }
        let reason = away_reason.filter(|_| status == AgentStatus::Away);
        let Some((previous, reason_changed)) = self.update_agent(id, |a| {
            let changed = a.away_reason != reason;
            a.away_reason = reason;
            (std::mem::replace(&mut a.status, status), changed)
        }) else {
            return out;
        };
        if reason_changed {
            self.activity_changed.insert(id.to_owned());
        }
        match status {
            AgentStatus::Available => {
                self.cancel_grace(id);
                if previous != AgentStatus::Available {
                    if let Some(agent) = self.agents.get_mut(id) {
                        agent.missed = 0;
                    }
                }
                self.seek_work(now_ms, id, &mut out);
            }
            AgentStatus::Away | AgentStatus::WrapUp => {
                self.cancel_grace(id);
                self.withdraw_offers(now_ms, id, &mut out);
            }
            AgentStatus::Offline => {
                if let Some(agent) = self
                    .agents
                    .get_mut(id)
                    .filter(|_| previous != AgentStatus::Offline)
                {
                    // A wrap-up does not outlive the connection: back as available.
                    agent.resume_status = match previous {
                        AgentStatus::WrapUp => AgentStatus::Available,
                        other => other,
                    };
                }
                self.withdraw_offers(now_ms, id, &mut out);
                self.start_grace(now_ms, id);
            }
        }
        self.finish(now_ms, &mut out);
        out
    }

    /// A connection of the agent arrived. After all its connections had dropped it takes
    /// back the status it had before (Away if it never was online), cancelling the grace
    /// period; a further tab changes nothing. Returns the status it has now.
    pub fn agent_connected(&mut self, now_ms: u64, id: &str) -> (AgentStatus, Vec<Command>) {
        let Some(agent) = self.agents.get(id) else {
            // Not routed (yet): it gets no offers, as if away.
            return (AgentStatus::Away, Vec::new());
        };
        if agent.status != AgentStatus::Offline {
            return (agent.status, Vec::new());
        }
        let resume = agent.resume_status;
        (resume, self.set_status(now_ms, id, resume))
    }

    /// Rebuilding routing on another node: the status an Offline agent takes back when a
    /// connection arrives is the one it chose before (saved in Redis), not the default.
    pub fn restore_resume_status(&mut self, id: &str, status: AgentStatus) {
        let status = match status {
            AgentStatus::Offline => return,
            AgentStatus::WrapUp => AgentStatus::Available,
            other => other,
        };
        if let Some(agent) = self
            .agents
            .get_mut(id)
            .filter(|a| a.status == AgentStatus::Offline)
        {
            agent.resume_status = status;
        }
    }

    /// The agent's last connection closed: Offline (offers withdrawn, grace starts), and
    /// the status it had is kept for [`Router::agent_connected`].
    pub fn agent_disconnected(&mut self, now_ms: u64, id: &str) -> Vec<Command> {
        self.set_status(now_ms, id, AgentStatus::Offline)
    }

    /// Withdraws every open offer of an agent that can no longer take them; each
    /// conversation is offered elsewhere at once.
    pub(super) fn withdraw_offers(&mut self, now_ms: u64, id: &str, out: &mut Vec<Command>) {
        let offers: Vec<OfferId> = self
            .agents
            .get(id)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for offer_id in offers {
            self.lapse_offer(now_ms, &offer_id, Lapse::Withdrawn, out);
        }
    }

    /// Starts the grace timer of an Offline agent holding conversations (if not running).
    fn start_grace(&mut self, now_ms: u64, id: &str) {
        let grace = self.settings.agent_grace_ms;
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if agent.active.is_empty() || agent.grace_until.is_some() {
            return;
        }
        let at = now_ms.saturating_add(grace);
        agent.grace_until = Some(at);
        self.schedule(at, Timer::Grace(id.to_owned()));
    }

    /// The owner of a closed conversation of a topic with a wrap-up time: no new offers
    /// until it ends (a later close may extend it, never shorten it). Only an Available
    /// (or already wrapping-up) agent enters it; Away and Offline stay as they are.
    pub(super) fn start_wrap_up(
        &mut self,
        now_ms: u64,
        id: &str,
        wrap_up_ms: u64,
        out: &mut Vec<Command>,
    ) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        if wrap_up_ms == 0 || !matches!(agent.status, AgentStatus::Available | AgentStatus::WrapUp)
        {
            return;
        }
        let until = now_ms.saturating_add(wrap_up_ms);
        if agent.wrap_up_until.is_some_and(|at| at >= until) {
            return;
        }
        self.cancel_wrap_up(id);
        self.update_agent(id, |a| {
            a.status = AgentStatus::WrapUp;
            a.wrap_up_until = Some(until);
        });
        self.schedule(until, Timer::WrapUpEnd(id.to_owned()));
        self.withdraw_offers(now_ms, id, out);
        out.push(Command::WrapUp {
            agent: id.to_owned(),
            ends_in_ms: wrap_up_ms,
        });
    }

    pub(super) fn cancel_wrap_up(&mut self, id: &str) {
        if let Some(at) = self.agents.get_mut(id).and_then(|a| a.wrap_up_until.take()) {
            self.unschedule(at, Timer::WrapUpEnd(id.to_owned()));
        }
    }

    /// The wrap-up timer fired: Available again, looking for work.
    pub(super) fn wrap_up_over(&mut self, now_ms: u64, id: &str, at: u64, out: &mut Vec<Command>) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if agent.wrap_up_until != Some(at) {
            return;
        }
        agent.wrap_up_until = None;
        if agent.status != AgentStatus::WrapUp {
            return;
        }
        self.update_agent(id, |a| {
            a.status = AgentStatus::Available;
            a.missed = 0;
        });
        out.push(Command::WrapUpEnded {
            agent: id.to_owned(),
        });
        self.seek_work(now_ms, id, out);
    }

    fn cancel_grace(&mut self, id: &str) {
        if let Some(at) = self.agents.get_mut(id).and_then(|a| a.grace_until.take()) {
            self.unschedule(at, Timer::Grace(id.to_owned()));
        }
    }

    /// The grace timer fired: the agent loses its conversations.
    pub(super) fn grace_expired(&mut self, now_ms: u64, id: &str, at: u64, out: &mut Vec<Command>) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if agent.grace_until != Some(at) {
            return;
        }
        agent.grace_until = None;
        if agent.status != AgentStatus::Offline {
            return;
        }
        let conversations: Vec<ConversationId> = agent.active.iter().cloned().collect();
        self.take_away(now_ms, &conversations, out);
    }

    /// Takes conversations from their owner: `Unassigned` for each, queued again at the
    /// front of their priority, then matched, best first. A pending transfer of one of
    /// them is cancelled (the target is told via the revoke, the requester via
    /// TransferFailed Unavailable).
    fn take_away(&mut self, now_ms: u64, conversations: &[ConversationId], out: &mut Vec<Command>) {
        let mut freed = Vec::new();
        for conv_id in conversations {
            let Some(owner) = self.agent_of(conv_id).map(str::to_owned) else {
                continue;
            };
            freed.extend(self.cancel_transfer(
                conv_id,
                RevokeReason::Withdrawn,
                Some(TransferFailReason::Unavailable),
                out,
            ));
            self.update_agent(&owner, |a| a.active.remove(conv_id));
            out.push(Command::Unassigned {
                agent: owner.clone(),
                conversation: conv_id.clone(),
            });
            self.requeue(now_ms, conv_id, Lane::Requeued, None);
            let event = DecisionEvent::Requeued { agent: owner };
            let decision = self.explain(now_ms, conv_id, event, None, Rule::Event);
            self.record(decision, out);
        }
        let mut keys: Vec<_> = conversations
            .iter()
            .filter_map(|c| {
                self.convs
                    .get(c)
                    .and_then(Conv::seek)
                    .map(|s| s.key.clone())
            })
            .collect();
        keys.sort();
        for key in keys {
            self.seek_agent(now_ms, &key.id, out);
        }
        for agent in freed {
            self.seek_work(now_ms, &agent, out);
        }
    }

    /// Puts an assigned conversation (owner already released, no transfer pending) back
    /// in the queue of its topic, keeping its waiting time. Matching is left to the caller.
    pub(super) fn requeue(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        lane: Lane,
        hold_until: Option<u64>,
    ) {
        let Some(conv) = self.convs.get(conv_id) else {
            return;
        };
        let mut seek = self.new_seek(
            now_ms,
            conv.topic,
            conv_id,
            conv.priority,
            lane,
            conv.waiting_since_ms,
            conv.seq,
            conv.waiting_since_ms,
        );
        seek.hold_until = hold_until;
        let sent_at = conv.pos_sent_at;
        self.index_seek(conv_id, &mut seek, true, sent_at);
        if let Some(conv) = self.convs.get_mut(conv_id) {
            conv.phase = Phase::Queued(seek);
        }
    }
}

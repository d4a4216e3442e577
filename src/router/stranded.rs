//! Nobody waits forever: an agent that declined a conversation or let its offer expire
//! may be offered it again once the exclusion cooldown has passed; an agent may take a
//! queued conversation itself, and a supervisor may assign one (`claim`); a customer
//! queued for its topic's `leave_message_after_ms` is offered to leave a message.

use super::decision::{DecisionEvent, Rule};
use super::state::{Conv, Phase, Timer};
use super::types::{AgentStatus, Command, RevokeReason, RouteError};
use super::Router;

impl Router {
    /// Gives a queued conversation to `agent` directly: the agent took it from the queue,
    /// or a supervisor assigned it. No skill check (a person chose); the agent must be
    /// connected (not Offline) and below capacity. An open offer of the conversation to
    /// another agent is revoked (`Taken`); one to this agent is simply ended.
    pub fn claim(
        &mut self,
        now_ms: u64,
        conversation: &str,
        agent: &str,
    ) -> Result<Vec<Command>, RouteError> {
        let conv = self
            .convs
            .get(conversation)
            .ok_or(RouteError::UnknownConversation)?;
        let Phase::Queued(seek) = &conv.phase else {
            return Err(RouteError::NotQueued);
        };
        let open_offer = seek.offer.clone();
        let target = self.agents.get(agent).ok_or(RouteError::UnknownAgent)?;
        let own_offer = open_offer
            .as_ref()
            .and_then(|o| self.offers.get(o))
            .is_some_and(|o| o.agent == agent);
        // Its own offer of this conversation already holds one of its slots.
        let load = target.load() - u32::from(own_offer);
        if target.status == AgentStatus::Offline || load >= target.profile.capacity {
            return Err(RouteError::AgentUnavailable);
        }
        let mut out = Vec::new();
        if let Some(offer_id) = open_offer {
            if let Some(offer) = self.end_offer(&offer_id) {
                if offer.agent != agent {
                    out.push(Command::Revoke {
                        offer_id,
                        agent: offer.agent.clone(),
                        conversation: conversation.to_owned(),
                        reason: RevokeReason::Taken,
                    });
                    self.seek_work(now_ms, &offer.agent, &mut out);
                }
            }
            if let Some(seek) = self.convs.get_mut(conversation).and_then(Conv::seek_mut) {
                seek.offer = None;
            }
            self.relist_seek(conversation);
        }
        let decision = self.explain(
            now_ms,
            conversation,
            DecisionEvent::Assigned,
            Some(agent),
            Rule::Claimed,
        );
        self.record(decision, &mut out);
        self.assign_from_queue(now_ms, conversation, agent, false, &mut out);
        self.finish(now_ms, &mut out);
        Ok(out)
    }

    /// (Re)schedules the readmission of a seek's earliest decline or expiry exclusion.
    pub(super) fn schedule_readmit(&mut self, conv_id: &str) {
        let cooldown = self.settings.exclusion_cooldown_ms;
        let Some(seek) = self.convs.get_mut(conv_id).and_then(Conv::seek_mut) else {
            return;
        };
        let next = seek
            .excluded
            .values()
            .filter_map(|e| e.ends_at(cooldown))
            .min();
        if next == seek.readmit_at {
            return;
        }
        let previous = std::mem::replace(&mut seek.readmit_at, next);
        if let Some(at) = previous {
            self.unschedule(at, Timer::Readmit(conv_id.to_owned()));
        }
        if let Some(at) = next {
            self.schedule(at, Timer::Readmit(conv_id.to_owned()));
        }
    }

    /// The cooldown of some exclusions passed: those agents may be offered it again.
    pub(super) fn readmit(&mut self, now_ms: u64, conv_id: &str, at: u64, out: &mut Vec<Command>) {
        let cooldown = self.settings.exclusion_cooldown_ms;
        let Some(seek) = self.convs.get_mut(conv_id).and_then(Conv::seek_mut) else {
            return;
        };
        if seek.readmit_at != Some(at) {
            return;
        }
        seek.readmit_at = None;
        let agents: Vec<String> = seek
            .excluded
            .iter()
            .filter(|(_, e)| e.ends_at(cooldown).is_some_and(|end| end <= now_ms))
            .map(|(agent, _)| agent.clone())
            .collect();
        for agent in &agents {
            seek.excluded.remove(agent);
        }
        self.schedule_readmit(conv_id);
        if agents.is_empty() {
            return;
        }
        let event = DecisionEvent::Readmitted { agents };
        let decision = self.explain(now_ms, conv_id, event, None, Rule::Event);
        self.record(decision, out);
        self.seek_agent(now_ms, conv_id, out);
    }

    /// Schedules the offer to leave a message of a conversation just queued.
    pub(super) fn schedule_leave_message(&mut self, conv_id: &str) {
        let Some(conv) = self.convs.get(conv_id) else {
            return;
        };
        let after = self.topics[conv.topic].rule.leave_message_after_ms;
        if after == 0 {
            return;
        }
        let at = conv.waiting_since_ms.saturating_add(after);
        if let Some(conv) = self.convs.get_mut(conv_id) {
            conv.leave_message_at = Some(at);
        }
        self.schedule(at, Timer::LeaveMessage(conv_id.to_owned()));
    }

    /// The customer waited long enough: if it is still queued, offer to leave a message.
    pub(super) fn leave_message_due(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        at: u64,
        out: &mut Vec<Command>,
    ) {
        let Some(conv) = self.convs.get_mut(conv_id) else {
            return;
        };
        if conv.leave_message_at != Some(at) {
            return;
        }
        conv.leave_message_at = None;
        if matches!(conv.phase, Phase::Queued(_)) {
            out.push(Command::LeaveMessage {
                conversation: conv_id.to_owned(),
                waited_ms: now_ms.saturating_sub(conv.waiting_since_ms),
            });
        }
    }
}

//! Conversation lifecycle: entering the queue (with sticky routing), closing, rebuilding
//! assignments after a restart, customer presence and abandonment, and undoing an
//! assignment the hub could not store.

use super::decision::{DecisionEvent, Rule};
use super::engine::ASSIGN_RETRY_MS;
use super::handover::Lapse;
use super::rank::Lane;
use super::state::{Agent, Assigned, Conv, Phase, Timer};
use super::topics;
use super::types::{AgentProfile, Command, NewConversation, RevokeReason, TransferFailReason};
use super::Router;

impl Router {
    /// Queues a conversation and looks for its agent: the preferred agent first if it is
    /// eligible now, otherwise the best by the ranking. Sends its first queue position.
    /// An id already known is ignored.
    pub fn enqueue(&mut self, now_ms: u64, conv: NewConversation) -> Vec<Command> {
        let mut out = Vec::new();
        if self.convs.contains_key(&conv.id) {
            return out;
        }
        let topic = self.topic_index(&conv.topic);
        let priority = self.topics[topic].rule.priority;
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut seek = self.new_seek(
            now_ms,
            topic,
            &conv.id,
            priority,
            Lane::New,
            conv.waiting_since_ms,
            seq,
            conv.waiting_since_ms,
        );
        self.index_seek(&conv.id, &mut seek, true, None);
        self.convs.insert(
            conv.id.clone(),
            Conv {
                seq,
                topic,
                priority,
                waiting_since_ms: conv.waiting_since_ms,
                phase: Phase::Queued(seek),
                absent_until: None,
                pos_sent_at: None,
                leave_message_at: None,
            },
        );
        self.schedule_leave_message(&conv.id);
        match conv
            .preferred_agent
            .filter(|agent| self.eligible_for(agent, &conv.id))
        {
            Some(agent) => {
                self.offer_to(now_ms, &conv.id, &agent, Rule::PreferredAgent, &mut out);
            }
            None => self.seek_agent(now_ms, &conv.id, &mut out),
        }
        self.finish(now_ms, &mut out);
        out
    }

    /// Closed by anyone. A queued conversation leaves the queue (its open offer is revoked
    /// with reason Closed); an assigned one frees its owner's slot, records the handle time
    /// for the eta, and cancels a pending transfer. Freed agents look for work.
    pub fn close(&mut self, now_ms: u64, conv_id: &str) -> Vec<Command> {
        let mut out = Vec::new();
        let Some(conv) = self.convs.get_mut(conv_id) else {
            return out;
        };
        let absent_until = conv.absent_until.take();
        let leave_message_at = conv.leave_message_at.take();
        let mut freed = Vec::new();
        // Only a queued conversation's own offer; an escalation's is cancel_transfer's.
        let open_offer = match &mut conv.phase {
            Phase::Queued(seek) => seek.offer.take(),
            Phase::Assigned(_) => None,
        };
        let owner = conv.assigned().map(|a| (a.owner.clone(), a.since_ms));
        let topic = conv.topic;
        let wrap_up_ms = self.topics[topic].rule.wrap_up_ms;
        if let Some(at) = absent_until {
            self.unschedule(at, Timer::Abandon(conv_id.to_owned()));
        }
        if let Some(at) = leave_message_at {
            self.unschedule(at, Timer::LeaveMessage(conv_id.to_owned()));
        }
        if let Some((owner, since_ms)) = owner {
            freed.extend(self.cancel_transfer(conv_id, RevokeReason::Closed, None, &mut out));
            if let Some(since) = since_ms {
                self.topics[topic].record_handle_time(now_ms.saturating_sub(since));
            }
            self.update_agent(&owner, |a| a.active.remove(conv_id));
            self.start_wrap_up(now_ms, &owner, wrap_up_ms, &mut out);
            freed.push(owner);
        } else if let Some(offer_id) = open_offer {
            if let Some(offer) = self.end_offer(&offer_id) {
                out.push(Command::Revoke {
                    offer_id,
                    agent: offer.agent.clone(),
                    conversation: conv_id.to_owned(),
                    reason: RevokeReason::Closed,
                });
                freed.push(offer.agent);
            }
        }
        if let Some(conv) = self.convs.remove(conv_id) {
            if let Phase::Queued(seek) = conv.phase {
                self.drop_seek(conv_id, seek);
            }
        }
        for agent in freed {
            self.seek_work(now_ms, &agent, &mut out);
        }
        self.finish(now_ms, &mut out);
        out
    }

    /// Rebuilds an assignment after a restart so load counts are right. Call it after
    /// upserting the agents and before routing starts (before enqueueing or setting
    /// agents available), so no offer is open; a known conversation is left alone. It
    /// may leave an agent above its capacity (it then gets nothing new until below). An unknown agent gets a placeholder (Offline, capacity
    /// 0) that a later `upsert_agent` fills in. To start the grace of an agent that does
    /// not reconnect, call `set_status(now, agent, Offline)` afterwards.
    pub fn restore_assignment(
        &mut self,
        agent: &str,
        conversation: &str,
        topic: &str,
        waiting_since_ms: u64,
    ) {
        if self.convs.contains_key(conversation) {
            return;
        }
        if !self.agents.contains_key(agent) {
            let profile = AgentProfile {
                id: agent.to_owned(),
                name: agent.to_owned(),
                skills: Default::default(),
                capacity: 0,
                auto_accept: false,
            };
            let groups = topics::qualifying_groups(&self.groups, &profile.skills);
            self.agents
                .insert(agent.to_owned(), Agent::new(profile, groups));
        }
        let topic = self.topic_index(topic);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.convs.insert(
            conversation.to_owned(),
            Conv {
                seq,
                topic,
                priority: self.topics[topic].rule.priority,
                waiting_since_ms,
                phase: Phase::Assigned(Assigned {
                    owner: agent.to_owned(),
                    since_ms: None,
                    transfer: None,
                    undo: None,
                }),
                absent_until: None,
                pos_sent_at: None,
                leave_message_at: None,
            },
        );
        self.update_agent(agent, |a| a.active.insert(conversation.to_owned()));
        // A rebuild restores facts, it does not change what the agent does: its next
        // real change reports its whole activity.
        self.activity_changed.remove(agent);
    }

    /// The customer left (`present` false: the idle timer starts, unless running) or came
    /// back (cancels it). Past `customer_idle_timeout_ms`, tick emits `Abandon`.
    pub fn customer_presence(&mut self, now_ms: u64, conv_id: &str, present: bool) -> Vec<Command> {
        let timeout = self.settings.customer_idle_timeout_ms;
        let Some(conv) = self.convs.get_mut(conv_id) else {
            return Vec::new();
        };
        match (present, conv.absent_until) {
            (true, Some(at)) => {
                conv.absent_until = None;
                self.unschedule(at, Timer::Abandon(conv_id.to_owned()));
            }
            (false, None) => {
                let at = now_ms.saturating_add(timeout);
                conv.absent_until = Some(at);
                self.schedule(at, Timer::Abandon(conv_id.to_owned()));
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn abandon_due(&mut self, conv_id: &str, at: u64, out: &mut Vec<Command>) {
        if let Some(conv) = self.convs.get_mut(conv_id) {
            if conv.absent_until == Some(at) {
                conv.absent_until = None;
                out.push(Command::Abandon {
                    conversation: conv_id.to_owned(),
                });
            }
        }
    }

    /// The hub could not store the join of the latest `Assign` to `agent`: undo it. After
    /// a transfer the previous owner gets the conversation back (TransferFailed
    /// Unavailable to the requester); otherwise it is queued again, held out of matching
    /// for a second so a failing store is not hit in a loop. Anything else is ignored.
    pub fn assignment_failed(&mut self, now_ms: u64, agent: &str, conv_id: &str) -> Vec<Command> {
        let mut out = Vec::new();
        if self.agent_of(conv_id) != Some(agent) {
            return out;
        }
        let mut freed: Vec<String> = self
            .cancel_transfer(
                conv_id,
                RevokeReason::Withdrawn,
                Some(TransferFailReason::Unavailable),
                &mut out,
            )
            .into_iter()
            .collect();
        let undo = self
            .convs
            .get_mut(conv_id)
            .and_then(Conv::assigned_mut)
            .and_then(|a| a.undo.take());
        self.update_agent(agent, |a| a.active.remove(conv_id));
        let previous = undo
            .as_ref()
            .and_then(|u| u.previous_owner.clone())
            .filter(|p| self.agents.contains_key(p));
        let Some(conv) = self.convs.get_mut(conv_id) else {
            return out;
        };
        if let Some(undo) = &undo {
            conv.topic = undo.topic;
            conv.priority = undo.priority;
        }
        match previous {
            Some(previous) => {
                if let Phase::Assigned(a) = &mut conv.phase {
                    a.owner = previous.clone();
                    a.since_ms = None;
                }
                self.update_agent(&previous, |a| a.active.insert(conv_id.to_owned()));
                // Its freed slot may have been offered meanwhile: the offer gives way.
                while let Some(offer_id) = self.excess_offer(&previous) {
                    self.lapse_offer(now_ms, &offer_id, Lapse::Withdrawn, &mut out);
                }
                let requested_by = undo
                    .and_then(|u| u.requested_by)
                    .unwrap_or_else(|| previous.clone());
                out.push(Command::TransferFailed {
                    conversation: conv_id.to_owned(),
                    requested_by,
                    reason: TransferFailReason::Unavailable,
                });
            }
            None => {
                let lane = undo.map_or(Lane::Requeued, |u| u.lane);
                let hold = now_ms.saturating_add(ASSIGN_RETRY_MS);
                self.requeue(now_ms, conv_id, lane, Some(hold));
                let event = DecisionEvent::Requeued {
                    agent: agent.to_owned(),
                };
                let decision = self.explain(now_ms, conv_id, event, None, Rule::Event);
                self.record(decision, &mut out);
            }
        }
        freed.push(agent.to_owned());
        for agent in freed {
            self.seek_work(now_ms, &agent, &mut out);
        }
        self.finish(now_ms, &mut out);
        out
    }

    /// The hold after a failed assignment is over: the conversation competes again.
    pub(super) fn hold_over(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        at: u64,
        out: &mut Vec<Command>,
    ) {
        let Some(seek) = self.convs.get_mut(conv_id).and_then(Conv::seek_mut) else {
            return;
        };
        if seek.hold_until != Some(at) {
            return;
        }
        seek.hold_until = None;
        self.relist_seek(conv_id);
        self.seek_agent(now_ms, conv_id, out);
    }
}

//! The mechanics of giving a conversation to an agent: making, ending and lapsing offers,
//! assigning from the queue, and completing a transfer. No choosing happens here (that is
//! `matching.rs`); these functions carry out a choice and keep the records consistent.

use std::mem;

use super::decision::{DecisionEvent, Rule};
use super::rank::Lane;
use super::state::{
    Assigned, Conv, Exclusion, Offer, OfferKind, Phase, Seek, Timer, Transfer, Undo,
};
use super::types::{AgentId, Command, OfferId, RevokeReason, TransferFailReason, TransferInfo};
use super::Router;

/// How an offer ended without being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lapse {
    /// The agent said no: it is excluded for this conversation.
    Declined,
    /// Not answered in time: the agent is excluded for this conversation.
    Expired,
    /// The agent can no longer take it (away, offline, removed, capacity lowered); it is
    /// not excluded, it may get the conversation again once it is back.
    Withdrawn,
}

impl Router {
    /// Gives a seeking conversation to an agent with room: an offer, or the assignment
    /// itself if the agent auto-accepts, explained by `rule`. False if nothing was done.
    pub(super) fn offer_to(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        agent_id: &str,
        rule: Rule,
        out: &mut Vec<Command>,
    ) -> bool {
        let Some(auto_accept) = self.agents.get(agent_id).map(|a| a.profile.auto_accept) else {
            return false;
        };
        let Some(conv) = self.convs.get(conv_id) else {
            return false;
        };
        let Some(seek) = conv.seek() else {
            return false;
        };
        // The offer of an escalation names the agent handing off (the owner), whoever
        // asked for it.
        let escalation = match conv.assigned() {
            Some(Assigned {
                owner,
                transfer:
                    Some(Transfer::ToTopic {
                        note, deadline_ms, ..
                    }),
                ..
            }) => Some((owner.clone(), note.clone(), *deadline_ms)),
            _ => None,
        };
        let event = if auto_accept {
            DecisionEvent::Assigned
        } else {
            DecisionEvent::Offered
        };
        let decision = self.explain(now_ms, conv_id, event, Some(agent_id), rule);
        self.record(decision, out);
        if auto_accept {
            if escalation.is_some() {
                self.complete_transfer(now_ms, conv_id, agent_id, false, out);
            } else {
                self.assign_from_queue(now_ms, conv_id, agent_id, false, out);
            }
            return true;
        }

        let rule = &self.topics[seek.topic].rule;
        let (kind, expires_at, transfer) = match escalation {
            None => (
                OfferKind::Queue,
                now_ms.saturating_add(rule.offer_timeout_ms),
                None,
            ),
            Some((from_agent, note, deadline_ms)) => (
                OfferKind::ToTopic,
                now_ms
                    .saturating_add(rule.offer_timeout_ms)
                    .min(deadline_ms),
                Some(TransferInfo {
                    from_agent,
                    note,
                    to_topic: Some(rule.name.clone()),
                }),
            ),
        };
        let topic_name = rule.name.clone();
        let priority = seek.priority();
        let waited_ms = now_ms.saturating_sub(conv.waiting_since_ms);
        let (group, key) = (seek.group, seek.key.clone());

        let offer_id = self.create_offer(agent_id, conv_id, expires_at, kind);
        self.groups[group].waiting.remove(&key);
        if let Some(seek) = self.convs.get_mut(conv_id).and_then(Conv::seek_mut) {
            seek.offer = Some(offer_id.clone());
        }
        out.push(Command::Offer {
            offer_id,
            agent: agent_id.to_owned(),
            conversation: conv_id.to_owned(),
            topic: topic_name,
            priority,
            waited_ms,
            expires_ms: expires_at.saturating_sub(now_ms),
            transfer,
        });
        true
    }

    /// Records a new open offer: it holds one of the agent's slots until it ends.
    pub(super) fn create_offer(
        &mut self,
        agent_id: &str,
        conv_id: &str,
        expires_at: u64,
        kind: OfferKind,
    ) -> OfferId {
        let id = self.next_offer_id();
        self.update_agent(agent_id, |a| a.offers.insert(id.clone()));
        self.offers.insert(
            id.clone(),
            Offer {
                serial: self.offer_counter,
                agent: agent_id.to_owned(),
                conversation: conv_id.to_owned(),
                expires_at,
                kind,
            },
        );
        self.schedule(expires_at, Timer::OfferExpiry(id.clone()));
        id
    }

    /// Forgets an open offer and frees the agent's slot. The conversation side (its seek or
    /// transfer) is the caller's business.
    pub(super) fn end_offer(&mut self, offer_id: &str) -> Option<Offer> {
        let offer = self.offers.remove(offer_id)?;
        self.unschedule(offer.expires_at, Timer::OfferExpiry(offer_id.to_owned()));
        self.update_agent(&offer.agent, |a| a.offers.remove(offer_id));
        Some(offer)
    }

    /// An offer ends without being accepted. Sends the revoke (unless the agent declined
    /// it itself) and moves the conversation on: a queued or escalating conversation is
    /// offered to its next agent at once, a transfer to this agent fails. Returns the
    /// agent, whose slot is now free (the caller decides whether it looks for work).
    pub(super) fn lapse_offer(
        &mut self,
        now_ms: u64,
        offer_id: &str,
        lapse: Lapse,
        out: &mut Vec<Command>,
    ) -> Option<AgentId> {
        let offer = self.end_offer(offer_id)?;
        let agent = offer.agent.clone();
        let event = match lapse {
            Lapse::Declined => DecisionEvent::Declined { agent },
            Lapse::Expired => DecisionEvent::Expired { agent },
            Lapse::Withdrawn => DecisionEvent::Withdrawn { agent },
        };
        let revoke = match lapse {
            Lapse::Declined => None,
            Lapse::Expired => Some(RevokeReason::Expired),
            Lapse::Withdrawn => Some(RevokeReason::Withdrawn),
        };
        if let Some(reason) = revoke {
            out.push(Command::Revoke {
                offer_id: offer_id.to_owned(),
                agent: offer.agent.clone(),
                conversation: offer.conversation.clone(),
                reason,
            });
        }
        match offer.kind {
            OfferKind::Queue | OfferKind::ToTopic => {
                if let Some(seek) = self
                    .convs
                    .get_mut(&offer.conversation)
                    .and_then(Conv::seek_mut)
                {
                    seek.offer = None;
                    match lapse {
                        Lapse::Declined => {
                            seek.excluded
                                .insert(offer.agent.clone(), Exclusion::Declined { at: now_ms });
                        }
                        Lapse::Expired => {
                            seek.excluded
                                .insert(offer.agent.clone(), Exclusion::Expired { at: now_ms });
                        }
                        Lapse::Withdrawn => {}
                    }
                }
                self.schedule_readmit(&offer.conversation);
                let decision = self.explain(now_ms, &offer.conversation, event, None, Rule::Event);
                self.record(decision, out);
                self.relist_seek(&offer.conversation);
                self.seek_agent(now_ms, &offer.conversation, out);
            }
            OfferKind::ToAgent => {
                let decision = self.explain(now_ms, &offer.conversation, event, None, Rule::Event);
                self.record(decision, out);
                let reason = match lapse {
                    Lapse::Declined => TransferFailReason::Declined,
                    Lapse::Expired => TransferFailReason::Timeout,
                    Lapse::Withdrawn => TransferFailReason::Unavailable,
                };
                let assigned = self
                    .convs
                    .get_mut(&offer.conversation)
                    .and_then(Conv::assigned_mut);
                if let Some(a) = assigned {
                    let ours = matches!(&a.transfer, Some(Transfer::ToAgent { offer, .. }) if offer == offer_id);
                    if let Some(transfer) = a.transfer.take_if(|_| ours) {
                        out.push(Command::TransferFailed {
                            conversation: offer.conversation.clone(),
                            requested_by: transfer.requested_by().to_owned(),
                            reason,
                        });
                    }
                }
            }
        }
        Some(offer.agent)
    }

    /// Assigns a queued conversation (its offer, if any, already ended).
    pub(super) fn assign_from_queue(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        agent_id: &str,
        via_offer: bool,
        out: &mut Vec<Command>,
    ) {
        let Some(conv) = self.convs.get_mut(conv_id) else {
            return;
        };
        let Phase::Queued(seek) = &conv.phase else {
            return;
        };
        let undo = Undo {
            previous_owner: None,
            requested_by: None,
            topic: conv.topic,
            priority: conv.priority,
            lane: seek.key.lane,
        };
        let assigned = Phase::Assigned(Assigned {
            owner: agent_id.to_owned(),
            since_ms: Some(now_ms),
            transfer: None,
            undo: Some(undo),
        });
        let seek = match mem::replace(&mut conv.phase, assigned) {
            Phase::Queued(seek) => seek,
            other => {
                conv.phase = other;
                return;
            }
        };
        self.drop_seek(conv_id, seek);
        self.update_agent(agent_id, |a| {
            a.active.insert(conv_id.to_owned());
            a.idle_since_ms = now_ms;
        });
        out.push(Command::Assign {
            agent: agent_id.to_owned(),
            conversation: conv_id.to_owned(),
            previous_agent: None,
            via_offer,
        });
    }

    /// Completes the pending transfer of an assigned conversation to `new_owner` (its
    /// offer, if any, already ended).
    pub(super) fn complete_transfer(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        new_owner: &str,
        via_offer: bool,
        out: &mut Vec<Command>,
    ) {
        let Some(a) = self.convs.get_mut(conv_id).and_then(Conv::assigned_mut) else {
            return;
        };
        let Some(transfer) = a.transfer.take() else {
            return;
        };
        let requested_by = transfer.requested_by().to_owned();
        let seek = match transfer {
            Transfer::ToAgent { .. } => None,
            Transfer::ToTopic {
                seek, deadline_ms, ..
            } => {
                self.unschedule(deadline_ms, Timer::TransferDeadline(conv_id.to_owned()));
                Some(seek)
            }
        };
        self.hand_over(
            now_ms,
            conv_id,
            new_owner,
            &requested_by,
            seek,
            via_offer,
            out,
        );
    }

    /// Moves an assigned conversation to a new owner; the old owner's slot is freed and
    /// it looks for work. An escalation's seek makes the target topic the conversation's.
    #[allow(clippy::too_many_arguments)] // each argument is a distinct fact of the handover
    pub(super) fn hand_over(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        new_owner: &str,
        requested_by: &str,
        seek: Option<Seek>,
        via_offer: bool,
        out: &mut Vec<Command>,
    ) {
        let Some(conv) = self.convs.get_mut(conv_id) else {
            return;
        };
        let (old_topic, old_priority) = (conv.topic, conv.priority);
        if let Some(seek) = &seek {
            conv.topic = seek.topic;
            conv.priority = seek.priority();
        }
        let Phase::Assigned(a) = &mut conv.phase else {
            return;
        };
        let previous = mem::replace(&mut a.owner, new_owner.to_owned());
        a.since_ms = Some(now_ms);
        a.undo = Some(Undo {
            previous_owner: Some(previous.clone()),
            requested_by: Some(requested_by.to_owned()),
            topic: old_topic,
            priority: old_priority,
            lane: Lane::New,
        });
        if let Some(seek) = seek {
            self.drop_seek(conv_id, seek);
        }
        self.update_agent(&previous, |a| a.active.remove(conv_id));
        self.update_agent(new_owner, |a| {
            a.active.insert(conv_id.to_owned());
            a.idle_since_ms = now_ms;
        });
        out.push(Command::Assign {
            agent: new_owner.to_owned(),
            conversation: conv_id.to_owned(),
            previous_agent: Some(previous.clone()),
            via_offer,
        });
        self.seek_work(now_ms, &previous, out);
    }
}

//! Transfers of an assigned conversation, to a named agent or to a topic (escalation).
//! The owner keeps the conversation and its slot until someone accepts; a failure leaves
//! it with the owner and tells the requester.

use super::decision::{DecisionEvent, Rule};
use super::rank::Lane;
use super::state::{Assigned, Conv, Exclusion, OfferKind, Timer, Transfer};
use super::types::{Command, RevokeReason, RouteError, TransferFailReason, TransferInfo};
use super::Router;

impl Router {
    /// Offers the conversation to `to_agent`, which must be Available and below capacity
    /// (no skill check: a person chose it). The offer expires after
    /// min(offer_timeout, transfer_timeout) of the conversation's topic; decline →
    /// TransferFailed Declined, expiry → TransferFailed Timeout. An auto-accept target is
    /// assigned at once. `requested_by` is who asked (the owner or a supervisor; the hub
    /// checks the permission): it hears of a failure. The offer names the owner.
    pub fn transfer_to_agent(
        &mut self,
        now_ms: u64,
        conversation: &str,
        requested_by: &str,
        to_agent: &str,
        note: Option<String>,
    ) -> Result<Vec<Command>, RouteError> {
        let (conv, assigned) = self.transferable(conversation)?;
        let target = self.agents.get(to_agent).ok_or(RouteError::UnknownAgent)?;
        if assigned.owner == to_agent {
            return Err(RouteError::AlreadyOwner);
        }
        if !target.has_room() {
            return Err(RouteError::AgentUnavailable);
        }

        let owner = assigned.owner.clone();
        let auto_accept = target.profile.auto_accept;
        let mut out = Vec::new();
        let event = if auto_accept {
            DecisionEvent::Assigned
        } else {
            DecisionEvent::Offered
        };
        let decision = self.explain(now_ms, conversation, event, Some(to_agent), Rule::Requested);
        self.record(decision, &mut out);
        if auto_accept {
            self.hand_over(
                now_ms,
                conversation,
                to_agent,
                requested_by,
                None,
                false,
                &mut out,
            );
        } else {
            let rule = &self.topics[conv.topic].rule;
            let timeout = rule.offer_timeout_ms.min(rule.transfer_timeout_ms);
            let expires_at = now_ms.saturating_add(timeout);
            let topic = rule.name.clone();
            let priority = conv.priority;
            let waited_ms = now_ms.saturating_sub(conv.waiting_since_ms);
            let offer_id =
                self.create_offer(to_agent, conversation, expires_at, OfferKind::ToAgent);
            if let Some(a) = self
                .convs
                .get_mut(conversation)
                .and_then(Conv::assigned_mut)
            {
                a.transfer = Some(Transfer::ToAgent {
                    requested_by: requested_by.to_owned(),
                    offer: offer_id.clone(),
                });
            }
            out.push(Command::Offer {
                offer_id,
                agent: to_agent.to_owned(),
                conversation: conversation.to_owned(),
                topic,
                priority,
                waited_ms,
                expires_ms: timeout,
                transfer: Some(TransferInfo {
                    from_agent: owner,
                    note,
                    to_topic: None,
                }),
            });
        }
        self.finish(now_ms, &mut out);
        Ok(out)
    }

    /// Escalates the conversation to `topic`: it is offered among the eligible agents of
    /// that topic (never the owner), with priority = topic priority + escalation boost and
    /// its original waiting time; decline or expiry moves on to the next agent. Nobody
    /// accepting within the topic's transfer_timeout → TransferFailed Timeout. If no agent
    /// is eligible now it waits, competing in that topic's queue, until the deadline.
    pub fn transfer_to_topic(
        &mut self,
        now_ms: u64,
        conversation: &str,
        requested_by: &str,
        topic: &str,
        note: Option<String>,
    ) -> Result<Vec<Command>, RouteError> {
        let (conv, assigned) = self.transferable(conversation)?;
        let target = *self.topic_ids.get(topic).ok_or(RouteError::UnknownTopic)?;
        let rule = &self.topics[target].rule;
        let priority = rule.priority.saturating_add(rule.escalation_priority_boost);
        let deadline_ms = now_ms.saturating_add(rule.transfer_timeout_ms);
        let owner = assigned.owner.clone();
        // Widening is measured from the escalation: the original wait must not drop the
        // target topic's skills at once.
        let mut seek = self.new_seek(
            now_ms,
            target,
            conversation,
            priority,
            Lane::New,
            conv.waiting_since_ms,
            conv.seq,
            now_ms,
        );
        seek.excluded.insert(owner, Exclusion::Owner);
        self.index_seek(conversation, &mut seek, false, None);
        self.schedule(
            deadline_ms,
            Timer::TransferDeadline(conversation.to_owned()),
        );
        if let Some(a) = self
            .convs
            .get_mut(conversation)
            .and_then(Conv::assigned_mut)
        {
            a.transfer = Some(Transfer::ToTopic {
                requested_by: requested_by.to_owned(),
                note,
                seek,
                deadline_ms,
            });
        }
        let mut out = Vec::new();
        self.seek_agent(now_ms, conversation, &mut out);
        self.finish(now_ms, &mut out);
        Ok(out)
    }

    /// Cancels a pending transfer: its open offer is revoked with `revoke`, the escalation
    /// leaves the target queue, and `fail` (if any) is reported to the requester. Returns
    /// the agent whose offer was revoked (it has a free slot now).
    pub(super) fn cancel_transfer(
        &mut self,
        conv_id: &str,
        revoke: RevokeReason,
        fail: Option<TransferFailReason>,
        out: &mut Vec<Command>,
    ) -> Option<String> {
        let assigned = self.convs.get_mut(conv_id).and_then(Conv::assigned_mut)?;
        let transfer = assigned.transfer.take()?;
        let requested_by = transfer.requested_by().to_owned();
        let (offer, seek) = match transfer {
            Transfer::ToAgent { offer, .. } => (Some(offer), None),
            Transfer::ToTopic {
                mut seek,
                deadline_ms,
                ..
            } => {
                self.unschedule(deadline_ms, Timer::TransferDeadline(conv_id.to_owned()));
                (seek.offer.take(), Some(seek))
            }
        };
        let mut freed = None;
        if let Some(offer_id) = offer {
            if let Some(offer) = self.end_offer(&offer_id) {
                out.push(Command::Revoke {
                    offer_id,
                    agent: offer.agent.clone(),
                    conversation: conv_id.to_owned(),
                    reason: revoke,
                });
                freed = Some(offer.agent);
            }
        }
        if let Some(seek) = seek {
            self.drop_seek(conv_id, seek);
        }
        if let Some(reason) = fail {
            out.push(Command::TransferFailed {
                conversation: conv_id.to_owned(),
                requested_by,
                reason,
            });
        }
        freed
    }

    /// An escalation's deadline passed: revoke its open offer (not counted as a miss) and
    /// report the timeout; the owner keeps the conversation.
    pub(super) fn transfer_deadline(
        &mut self,
        now_ms: u64,
        conv_id: &str,
        at: u64,
        out: &mut Vec<Command>,
    ) {
        let due = self
            .convs
            .get(conv_id)
            .and_then(Conv::assigned)
            .is_some_and(|a| matches!(a.transfer, Some(Transfer::ToTopic { deadline_ms, .. }) if deadline_ms == at));
        if !due {
            return;
        }
        let freed = self.cancel_transfer(
            conv_id,
            RevokeReason::Expired,
            Some(TransferFailReason::Timeout),
            out,
        );
        if let Some(agent) = freed {
            self.seek_work(now_ms, &agent, out);
        }
    }

    /// The conversation and its assignment, if it can be handed off now: assigned, and
    /// no other transfer pending.
    fn transferable(&self, conversation: &str) -> Result<(&Conv, &Assigned), RouteError> {
        let conv = self
            .convs
            .get(conversation)
            .ok_or(RouteError::UnknownConversation)?;
        let assigned = conv.assigned().ok_or(RouteError::NotAssigned)?;
        if assigned.transfer.is_some() {
            return Err(RouteError::TransferPending);
        }
        Ok((conv, assigned))
    }
}

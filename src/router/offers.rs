//! Answers to offers: accept, decline, and expiry (with the missed-offer count that sets
//! an agent away). Decline and expiry re-offer the conversation at once.

use super::handover::Lapse;
use super::state::{Conv, OfferKind};
use super::types::{AgentStatus, Command, RouteError, MISSED_OFFERS};
use super::Router;

impl Router {
    /// The agent takes the offer: `Assign` (with `previous_agent` for a transfer, whose
    /// owner's slot is freed). Resets the agent's missed-offer count.
    pub fn accept(
        &mut self,
        now_ms: u64,
        agent: &str,
        offer_id: &str,
    ) -> Result<Vec<Command>, RouteError> {
        self.check_offer(agent, offer_id)?;
        let mut out = Vec::new();
        let offer = self.end_offer(offer_id).ok_or(RouteError::UnknownOffer)?;
        if let Some(a) = self.agents.get_mut(agent) {
            a.missed = 0;
        }
        if let Some(seek) = self
            .convs
            .get_mut(&offer.conversation)
            .and_then(Conv::seek_mut)
        {
            seek.offer = None;
        }
        match offer.kind {
            OfferKind::Queue => {
                self.assign_from_queue(now_ms, &offer.conversation, agent, true, &mut out);
            }
            OfferKind::ToAgent | OfferKind::ToTopic => {
                self.complete_transfer(now_ms, &offer.conversation, agent, true, &mut out);
            }
        }
        self.finish(now_ms, &mut out);
        Ok(out)
    }

    /// The agent refuses the offer: the conversation goes to the next eligible agent at
    /// once (a transfer to this agent fails with Declined). Resets the missed-offer count.
    pub fn decline(
        &mut self,
        now_ms: u64,
        agent: &str,
        offer_id: &str,
    ) -> Result<Vec<Command>, RouteError> {
        self.check_offer(agent, offer_id)?;
        let mut out = Vec::new();
        if let Some(a) = self.agents.get_mut(agent) {
            a.missed = 0;
        }
        self.lapse_offer(now_ms, offer_id, Lapse::Declined, &mut out);
        self.seek_work(now_ms, agent, &mut out);
        self.finish(now_ms, &mut out);
        Ok(out)
    }

    fn check_offer(&self, agent: &str, offer_id: &str) -> Result<(), RouteError> {
        let offer = self.offers.get(offer_id).ok_or(RouteError::UnknownOffer)?;
        if offer.agent != agent {
            return Err(RouteError::NotYourOffer);
        }
        Ok(())
    }

    /// An offer was not answered in time: revoke it, re-offer the conversation, and count
    /// the miss; `max_missed_offers` in a row set the agent Away.
    pub(super) fn offer_expired(&mut self, now_ms: u64, offer_id: &str, out: &mut Vec<Command>) {
        let Some(agent) = self.lapse_offer(now_ms, offer_id, Lapse::Expired, out) else {
            return;
        };
        let max = self.settings.max_missed_offers;
        let Some(missed) = self.agents.get_mut(&agent).map(|a| {
            a.missed += 1;
            a.missed
        }) else {
            return;
        };
        if max > 0 && missed >= max {
            self.cancel_wrap_up(&agent);
            self.update_agent(&agent, |a| {
                a.status = AgentStatus::Away;
                a.away_reason = Some(MISSED_OFFERS.to_owned());
                a.missed = 0;
            });
            out.push(Command::AgentAway {
                agent: agent.clone(),
            });
            self.withdraw_offers(now_ms, &agent, out);
        } else {
            self.seek_work(now_ms, &agent, out);
        }
    }
}

//! `tick`: firing every timer that is due, in (time, kind) order, and bullseye widening.
//! Timers never fire anywhere else, so a caller sees the effects of time only here.

use super::decision::{DecisionEvent, Rule};
use super::state::{Conv, Timer};
use super::types::Command;
use super::Router;

impl Router {
    /// Does everything due at or before `now_ms`: offer expiries, widening steps, grace
    /// ends, held-back queue updates, transfer deadlines, abandonment.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Command> {
        let mut out = Vec::new();
        while let Some((at, timer)) = self.pop_due(now_ms) {
            match timer {
                Timer::Grace(agent) => self.grace_expired(now_ms, &agent, at, &mut out),
                Timer::WrapUpEnd(agent) => self.wrap_up_over(now_ms, &agent, at, &mut out),
                Timer::TransferDeadline(conv) => {
                    self.transfer_deadline(now_ms, &conv, at, &mut out)
                }
                Timer::OfferExpiry(offer) => self.offer_expired(now_ms, &offer, &mut out),
                Timer::Widen(conv) => self.widen(now_ms, &conv, at, &mut out),
                Timer::Hold(conv) => self.hold_over(now_ms, &conv, at, &mut out),
                Timer::Readmit(conv) => self.readmit(now_ms, &conv, at, &mut out),
                Timer::LeaveMessage(conv) => self.leave_message_due(now_ms, &conv, at, &mut out),
                Timer::Abandon(conv) => self.abandon_due(&conv, at, &mut out),
                Timer::Positions(topic) => self.positions_due(now_ms, topic, at, &mut out),
            }
        }
        self.finish(now_ms, &mut out);
        out
    }

    fn pop_due(&mut self, now_ms: u64) -> Option<(u64, Timer)> {
        if self.timers.first()?.0 > now_ms {
            return None;
        }
        self.timers.pop_first()
    }

    /// Applies the widening steps reached (at exactly `after_ms` a step applies), moves the
    /// conversation to its new group and tries to offer it.
    fn widen(&mut self, now_ms: u64, conv_id: &str, at: u64, out: &mut Vec<Command>) {
        let Some(seek) = self.convs.get_mut(conv_id).and_then(Conv::seek_mut) else {
            return;
        };
        if seek.widen_at != Some(at) {
            return;
        }
        let topic = &self.topics[seek.topic];
        let level = topic.level_at(now_ms.saturating_sub(seek.widen_from_ms));
        let old_group = seek.group;
        let new_group = topic.levels[level].group;
        seek.level = level;
        seek.group = new_group;
        seek.widen_at = topic
            .next_widen_after(level)
            .map(|after| seek.widen_from_ms.saturating_add(after));
        let (key, listed, topic_index, next) =
            (seek.key.clone(), seek.listed(), seek.topic, seek.widen_at);
        if new_group != old_group {
            if listed {
                self.groups[old_group].waiting.remove(&key);
                self.groups[new_group].waiting.insert(key.clone());
            }
            if let Some(slot) = self.topics[topic_index].order.get_mut(&key) {
                slot.group = new_group;
            }
        }
        if let Some(next) = next {
            self.schedule(next, Timer::Widen(conv_id.to_owned()));
        }
        if new_group != old_group {
            let now_required = &self.groups[new_group].skills;
            let dropped_skills = self.groups[old_group]
                .skills
                .iter()
                .filter(|s| !now_required.contains(s))
                .cloned()
                .collect();
            let event = DecisionEvent::Widened { dropped_skills };
            let decision = self.explain(now_ms, conv_id, event, None, Rule::Event);
            self.record(decision, out);
        }
        self.seek_agent(now_ms, conv_id, out);
    }
}

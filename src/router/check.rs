//! Test-only: recomputes every index from the records and panics on any disagreement,
//! plus the "no idle match" invariant (a conversation waiting for an offer has no free
//! eligible agent). The property tests call it after every step.

use std::collections::{BTreeMap, BTreeSet};

use super::rank::AgentRank;
use super::state::{Assigned, Conv, OfferKind, Phase, Seek, Timer, Transfer};
use super::topics::qualifying_groups;
use super::types::AgentStatus;
use super::Router;

impl Router {
    pub(super) fn check(&self, now_ms: u64) {
        assert!(
            self.dirty_topics.is_empty(),
            "dirty topics left after an operation"
        );
        self.check_agents();
        let seeks = self.check_conversations();
        self.check_groups(&seeks);
        self.check_offers();
        self.check_timers();
        self.check_no_idle_match(now_ms, &seeks);
    }

    fn check_agents(&self) {
        for (id, a) in &self.agents {
            assert_eq!(a.profile.id, *id);
            assert_eq!(
                a.groups,
                qualifying_groups(&self.groups, &a.profile.skills),
                "groups of {id}"
            );
            assert_eq!(
                a.indexed.is_some(),
                a.status == AgentStatus::Available,
                "indexed iff available: {id}"
            );
            if let Some(ix) = a.indexed {
                assert_eq!(ix.load, a.load(), "indexed load of {id}");
                assert_eq!(ix.capacity, a.profile.capacity);
                assert_eq!(ix.idle_since_ms, a.idle_since_ms);
                assert_eq!(ix.free, a.has_room());
            }
            for o in &a.offers {
                assert_eq!(
                    self.offers.get(o).map(|o| o.agent.as_str()),
                    Some(id.as_str()),
                    "offer {o} of {id}"
                );
            }
            for c in &a.active {
                assert_eq!(
                    self.convs.get(c).and_then(Conv::owner),
                    Some(id.as_str()),
                    "{c} owned by {id}"
                );
            }
            if let Some(at) = a.grace_until {
                assert_eq!(a.status, AgentStatus::Offline);
                assert!(self.timers.contains(&(at, Timer::Grace(id.clone()))));
            }
            if let Some(at) = a.wrap_up_until {
                assert_eq!(a.status, AgentStatus::WrapUp, "wrap-up timer of {id}");
                assert!(self.timers.contains(&(at, Timer::WrapUpEnd(id.clone()))));
            }
            if a.away_reason.is_some() {
                assert_eq!(a.status, AgentStatus::Away, "away reason of {id}");
            }
            assert!(
                self.activity_changed.is_empty(),
                "activity changes left unreported"
            );
        }
    }

    /// Returns every active seek by conversation.
    fn check_conversations(&self) -> BTreeMap<String, (&Seek, bool)> {
        let mut seeks = BTreeMap::new();
        for (id, c) in &self.convs {
            match &c.phase {
                Phase::Queued(seek) => {
                    assert_eq!(seek.topic, c.topic);
                    if let Some(o) = &seek.offer {
                        let offer = self
                            .offers
                            .get(o)
                            .expect("queued conversation's offer exists");
                        assert_eq!(offer.kind, OfferKind::Queue);
                        assert_eq!(&offer.conversation, id);
                    }
                    seeks.insert(id.clone(), (seek, true));
                }
                Phase::Assigned(Assigned {
                    owner, transfer, ..
                }) => {
                    let agent = self.agents.get(owner).expect("owner exists");
                    assert!(agent.active.contains(id));
                    match transfer {
                        Some(Transfer::ToAgent { offer, .. }) => {
                            let offer = self.offers.get(offer).expect("transfer offer exists");
                            assert_eq!(offer.kind, OfferKind::ToAgent);
                            assert_eq!(&offer.conversation, id);
                        }
                        Some(Transfer::ToTopic {
                            seek, deadline_ms, ..
                        }) => {
                            assert!(
                                seek.excluded.contains_key(owner),
                                "escalation excludes its owner"
                            );
                            assert!(self
                                .timers
                                .contains(&(*deadline_ms, Timer::TransferDeadline(id.clone()))));
                            if let Some(o) = &seek.offer {
                                let offer = self.offers.get(o).expect("escalation offer exists");
                                assert_eq!(offer.kind, OfferKind::ToTopic);
                                assert_eq!(&offer.conversation, id);
                            }
                            seeks.insert(id.clone(), (seek, false));
                        }
                        None => {}
                    }
                }
            }
            if let Some(at) = c.absent_until {
                assert!(self.timers.contains(&(at, Timer::Abandon(id.clone()))));
            }
        }
        for (id, (seek, notify)) in &seeks {
            let t = &self.topics[seek.topic];
            let slot = t.order.get(&seek.key).expect("seek in its topic queue");
            assert_eq!(slot.notify, *notify);
            assert_eq!(slot.group, seek.group);
            assert_eq!(seek.group, t.levels[seek.level].group);
            if let Some(at) = seek.widen_at {
                assert!(
                    self.timers.contains(&(at, Timer::Widen(id.clone()))),
                    "widen timer of {id}"
                );
            } else {
                assert!(
                    t.next_widen_after(seek.level).is_none(),
                    "{id} has a widening step left but no timer"
                );
            }
            if let Some(at) = seek.hold_until {
                assert!(self.timers.contains(&(at, Timer::Hold(id.clone()))));
            }
        }
        let entries: usize = self.topics.iter().map(|t| t.order.len()).sum();
        assert_eq!(
            entries,
            seeks.len(),
            "topic queues hold exactly the active seeks"
        );
        for (topic, t) in self.topics.iter().enumerate() {
            assert!(t.dirty_from.is_none());
            assert!(t.own_dirty_from.is_none());
            assert!(t.moves.is_empty());
            // Competition, from first principles: one requirement contains the other.
            let skills = |t: &super::topics::Topic| -> BTreeSet<&String> {
                self.groups[t.levels[0].group].skills.iter().collect()
            };
            let mine = skills(t);
            let competing: Vec<usize> = (0..self.topics.len())
                .filter(|&o| {
                    let theirs = skills(&self.topics[o]);
                    mine.is_subset(&theirs) || theirs.is_subset(&mine)
                })
                .collect();
            assert_eq!(t.competing, competing, "topics competing with {topic}");
            for (own, (key, slot)) in t.order.iter().enumerate() {
                assert_eq!(slot.own as usize, own, "own index of {}", key.id);
                let before: usize = competing
                    .iter()
                    .map(|&o| self.topics[o].order.range(..key).count())
                    .sum();
                assert_eq!(slot.rank as usize, before + 1, "position of {}", key.id);
            }
            assert_eq!(
                t.held_timer,
                t.held.first().map(|(due, _)| *due),
                "positions timer at the first held time"
            );
            if let Some(at) = t.held_timer {
                assert!(self.timers.contains(&(at, Timer::Positions(topic))));
            }
            let interval = self.settings.queue_update_min_interval_ms;
            for (key, slot) in &t.order {
                if slot.notify && slot.rank != slot.sent_pos {
                    assert!(
                        slot.held,
                        "{} has an unsent position but is not held",
                        key.id
                    );
                }
                let due = slot.sent_at.unwrap_or(0).saturating_add(interval);
                assert_eq!(
                    slot.held,
                    t.held.contains(&(due, key.clone())),
                    "held flag of {}",
                    key.id
                );
            }
            assert_eq!(t.held.len(), t.order.values().filter(|s| s.held).count());
        }
        seeks
    }

    fn check_groups(&self, seeks: &BTreeMap<String, (&Seek, bool)>) {
        for (g, group) in self.groups.iter().enumerate() {
            let mut agents = BTreeSet::new();
            let (mut available, mut capacity, mut free) = (0u32, 0u64, 0u64);
            for a in self.agents.values() {
                let Some(&(_, level)) = a.groups.iter().find(|(x, _)| *x == g) else {
                    continue;
                };
                if a.status != AgentStatus::Available {
                    continue;
                }
                available += 1;
                capacity += u64::from(a.profile.capacity);
                free += u64::from(a.profile.capacity.saturating_sub(a.load()));
                if a.has_room() {
                    agents.insert(AgentRank::new(
                        &a.rank_id,
                        a.load(),
                        a.profile.capacity,
                        level,
                        a.idle_since_ms,
                    ));
                }
            }
            assert_eq!(group.available_agents, available, "group {g} available");
            assert_eq!(group.available_capacity, capacity, "group {g} capacity");
            assert_eq!(group.free_capacity, free, "group {g} free");
            let got: Vec<_> = group
                .agents
                .iter()
                .map(|r| (&r.id, r.load, r.level, r.idle_since_ms))
                .collect();
            let want: Vec<_> = agents
                .iter()
                .map(|r| (&r.id, r.load, r.level, r.idle_since_ms))
                .collect();
            assert_eq!(got, want, "group {g} agent set");
            let waiting: BTreeSet<_> = seeks
                .values()
                .filter(|(s, _)| s.group == g && s.listed())
                .map(|(s, _)| s.key.clone())
                .collect();
            assert_eq!(group.waiting, waiting, "group {g} waiting set");
        }
    }

    fn check_offers(&self) {
        for (id, o) in &self.offers {
            let agent = self.agents.get(&o.agent).expect("offer's agent exists");
            assert!(agent.offers.contains(id));
            assert_eq!(
                agent.status,
                AgentStatus::Available,
                "offer {id} to a non-available agent"
            );
            assert!(self
                .timers
                .contains(&(o.expires_at, Timer::OfferExpiry(id.clone()))));
            let conv = self
                .convs
                .get(&o.conversation)
                .expect("offer's conversation exists");
            let referenced = match &conv.phase {
                Phase::Queued(seek) => seek.offer.as_ref() == Some(id),
                Phase::Assigned(a) => match &a.transfer {
                    Some(Transfer::ToAgent { offer, .. }) => offer == id,
                    Some(Transfer::ToTopic { seek, .. }) => seek.offer.as_ref() == Some(id),
                    None => false,
                },
            };
            assert!(referenced, "offer {id} not referenced by its conversation");
        }
    }

    fn check_timers(&self) {
        for (at, timer) in &self.timers {
            let ok = match timer {
                Timer::Grace(a) => self.agents.get(a).and_then(|a| a.grace_until) == Some(*at),
                Timer::WrapUpEnd(a) => self.agents.get(a).and_then(|a| a.wrap_up_until) == Some(*at),
                Timer::TransferDeadline(c) => self.convs.get(c).and_then(Conv::assigned).is_some_and(
                    |a| matches!(a.transfer, Some(Transfer::ToTopic { deadline_ms, .. }) if deadline_ms == *at),
                ),
                Timer::OfferExpiry(o) => self.offers.get(o).map(|o| o.expires_at) == Some(*at),
                Timer::Widen(c) => self.convs.get(c).and_then(Conv::seek).and_then(|s| s.widen_at) == Some(*at),
                Timer::Hold(c) => self.convs.get(c).and_then(Conv::seek).and_then(|s| s.hold_until) == Some(*at),
                Timer::Readmit(c) => self.convs.get(c).and_then(Conv::seek).and_then(|s| s.readmit_at) == Some(*at),
                Timer::LeaveMessage(c) => self.convs.get(c).and_then(|c| c.leave_message_at) == Some(*at),
                Timer::Abandon(c) => self.convs.get(c).and_then(|c| c.absent_until) == Some(*at),
                Timer::Positions(t) => self.topics[*t].held_timer == Some(*at),
            };
            assert!(ok, "stale timer {timer:?} at {at}");
        }
    }

    fn check_no_idle_match(&self, now_ms: u64, seeks: &BTreeMap<String, (&Seek, bool)>) {
        for (id, (seek, _)) in seeks {
            if !seek.listed() {
                continue;
            }
            let open = self.convs.get(id).and_then(Conv::assigned).is_none_or(|a| {
                !matches!(a.transfer, Some(Transfer::ToTopic { deadline_ms, .. }) if deadline_ms <= now_ms)
            });
            if !open {
                continue;
            }
            let idle = self.groups[seek.group]
                .agents
                .iter()
                .find(|r| !seek.excluded.contains_key(&*r.id));
            assert!(
                idle.is_none(),
                "{id} waits while {:?} could take it",
                idle.map(|r| &r.id)
            );
        }
    }
}

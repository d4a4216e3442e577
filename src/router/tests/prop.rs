//! Property test: random sequences of operations (agents joining, changing, leaving and
//! changing status; conversations entering, being accepted, declined, transferred,
//! closed, abandoned; time advancing) keep the router's invariants after every step,
//! and the same sequence always produces the same commands.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::super::{AgentStatus, DecisionEvent, Rule};
use super::*;

const AGENTS: u8 = 6;
const SKILLS: [&str; 3] = ["billing", "fr", "tier2"];
const TOPICS: [&str; 6] = [
    "general",
    "billing",
    "billing_fr",
    "tier2",
    "vip",
    "unknown",
];

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        agent: u8,
        skills: u8,
        level: u32,
        capacity: u32,
        auto_accept: bool,
    },
    Remove(u8),
    Status(u8, u8),
    /// A connection arrives (takes back the status from before the last disconnect).
    Connect(u8),
    /// The last connection closes.
    Disconnect(u8),
    Enqueue {
        topic: u8,
        preferred: Option<u8>,
        waited_ms: u64,
    },
    Restore {
        agent: u8,
        topic: u8,
    },
    Accept(usize),
    Decline(usize),
    AcceptWrong(u8, usize),
    Close(usize),
    TransferToAgent(usize, u8),
    TransferToTopic(usize, u8),
    Presence(usize, bool),
    AssignmentFailed(usize),
    /// An agent takes a queued conversation, or a supervisor assigns it to one.
    Claim(usize, u8),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..AGENTS, 0u8..8, prop_oneof![1 => Just(0u32), 4 => 1u32..4], 0u32..5, proptest::bool::weighted(0.15)).prop_map(
            |(agent, skills, level, capacity, auto_accept)| Op::Upsert { agent, skills, level, capacity, auto_accept }
        ),
        1 => (0..AGENTS).prop_map(Op::Remove),
        // Mostly Available, so offers flow.
        4 => (0..AGENTS, prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)]).prop_map(|(a, s)| Op::Status(a, s)),
        2 => (0..AGENTS).prop_map(Op::Connect),
        2 => (0..AGENTS).prop_map(Op::Disconnect),
        5 => (0..6u8, proptest::option::weighted(0.2, 0..AGENTS), 0u64..40_000)
            .prop_map(|(topic, preferred, waited_ms)| Op::Enqueue { topic, preferred, waited_ms }),
        1 => (0..AGENTS, 0..6u8).prop_map(|(agent, topic)| Op::Restore { agent, topic }),
        5 => any::<usize>().prop_map(Op::Accept),
        3 => any::<usize>().prop_map(Op::Decline),
        1 => (0..AGENTS, any::<usize>()).prop_map(|(a, i)| Op::AcceptWrong(a, i)),
        3 => any::<usize>().prop_map(Op::Close),
        3 => (any::<usize>(), 0..AGENTS).prop_map(|(c, a)| Op::TransferToAgent(c, a)),
        3 => (any::<usize>(), 0..6u8).prop_map(|(c, t)| Op::TransferToTopic(c, t)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(c, p)| Op::Presence(c, p)),
        1 => any::<usize>().prop_map(Op::AssignmentFailed),
        2 => (any::<usize>(), 0..AGENTS).prop_map(|(c, a)| Op::Claim(c, a)),
        5 => prop_oneof![0u64..2_000, 0u64..70_000].prop_map(Op::Advance),
    ]
}

fn agent_id(i: u8) -> String {
    format!("a{i}")
}

fn pick<T: Clone>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()].clone())
}

/// A small, fast configuration so timers (offers 15 s, grace 60 s, idle 600 s,
/// escalation 20 s, widening 30 s) fire within a sequence.
fn prop_config() -> RouterConfig {
    let mut cfg = config();
    cfg.customer_idle_timeout_ms = 90_000;
    // Wrap-up after billing (5 s) and tier2 (20 s) chats.
    cfg.topics[1].wrap_up_ms = 5_000;
    cfg.topics[3].wrap_up_ms = 20_000;
    // Long waits in general are offered to leave a message; exclusions cool down
    // within a sequence.
    cfg.topics[0].leave_message_after_ms = 45_000;
    cfg.exclusion_cooldown_ms = 30_000;
    cfg
}

/// Runs the sequence, asserting the invariants after each step; returns every command.
fn run(ops: &[Op]) -> Vec<Vec<Command>> {
    let mut h = Harness::with(prop_config());
    let mut log = Vec::new();
    let mut next_conv = 0u32;
    let mut open: BTreeSet<String> = BTreeSet::new();
    // The model of the disconnect rule: each agent's status before it last went Offline.
    let mut resume: BTreeMap<String, AgentStatus> = BTreeMap::new();
    for op in ops {
        let statuses: BTreeMap<String, AgentStatus> =
            h.r.agents
                .iter()
                .map(|(id, a)| (id.clone(), a.status))
                .collect();
        let offers: Vec<(String, String)> =
            h.r.offers
                .iter()
                .map(|(id, o)| (id.clone(), o.agent.clone()))
                .collect();
        let convs: Vec<String> = open.iter().cloned().collect();
        let assigned: Vec<String> = convs
            .iter()
            .filter(|c| h.r.agent_of(c).is_some())
            .cloned()
            .collect();
        let before: BTreeMap<String, (u32, u32)> =
            h.r.agents
                .iter()
                .map(|(id, a)| {
                    (
                        id.clone(),
                        (
                            u32::try_from(a.active.len()).unwrap_or(u32::MAX),
                            a.profile.capacity,
                        ),
                    )
                })
                .collect();
        let activity_before = activity_of(&h);
        // The owner and wrap-up of the conversation a Close is about to close.
        let closing = match op {
            Op::Close(i) => pick(&convs, *i).and_then(|c| {
                let owner = h.r.agent_of(&c)?.to_owned();
                let wrap =
                    h.r.topic_of(&c)
                        .is_some_and(|t| t == "billing" || t == "tier2");
                let available = h.r.agent_status(&owner) == Some(AgentStatus::Available);
                Some((owner, wrap && available))
            }),
            _ => None,
        };
        let now = h.now;
        // Restores and undone transfers hand back work regardless of capacity (facts from the store).
        let mut restored = false;
        let out: Vec<Command> = match op.clone() {
            Op::Upsert {
                agent,
                skills,
                level,
                capacity,
                auto_accept,
            } => {
                let skills: Vec<(&str, u32)> = SKILLS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| skills & (1 << i) != 0)
                    .map(|(_, s)| (*s, level))
                    .collect();
                let mut p = profile(&agent_id(agent), &skills, capacity);
                p.auto_accept = auto_accept;
                h.r.upsert_agent(now, p)
            }
            Op::Remove(a) => {
                resume.remove(&agent_id(a));
                h.r.remove_agent(now, &agent_id(a))
            }
            Op::Connect(a) => {
                let id = agent_id(a);
                let expected = match statuses.get(&id) {
                    // Not routed: no offers, as if away.
                    None => AgentStatus::Away,
                    Some(AgentStatus::Offline) => {
                        resume.get(&id).copied().unwrap_or(AgentStatus::Away)
                    }
                    Some(online) => *online,
                };
                let (status, out) = h.r.agent_connected(now, &id);
                assert_eq!(status, expected, "{id} connected");
                if statuses.contains_key(&id) {
                    assert_eq!(h.r.agent_status(&id), Some(expected));
                }
                out
            }
            Op::Disconnect(a) => h.r.agent_disconnected(now, &agent_id(a)),
            Op::Status(a, 3) => h.r.set_away(now, &agent_id(a), Some("lunch".into())),
            Op::Status(a, s) => {
                let status = [
                    AgentStatus::Available,
                    AgentStatus::Away,
                    AgentStatus::Offline,
                ][usize::from(s)];
                h.r.set_status(now, &agent_id(a), status)
            }
            Op::Enqueue {
                topic,
                preferred,
                waited_ms,
            } => {
                next_conv += 1;
                let id = format!("c{next_conv}");
                open.insert(id.clone());
                h.r.enqueue(
                    now,
                    NewConversation {
                        id,
                        topic: TOPICS[usize::from(topic)].into(),
                        waiting_since_ms: now.saturating_sub(waited_ms),
                        preferred_agent: preferred.map(agent_id),
                    },
                )
            }
            // Restoring is for rebuilding before routing starts: an agent holding offers
            // is not restored onto (documented precondition).
            Op::Restore { agent, .. }
                if h.r
                    .agents
                    .get(&agent_id(agent))
                    .is_some_and(|a| !a.offers.is_empty()) =>
            {
                Vec::new()
            }
            Op::Restore { agent, topic } => {
                next_conv += 1;
                let id = format!("c{next_conv}");
                open.insert(id.clone());
                restored = true;
                h.r.restore_assignment(&agent_id(agent), &id, TOPICS[usize::from(topic)], now);
                Vec::new()
            }
            Op::Accept(i) => pick(&offers, i)
                .map(|(o, a)| h.r.accept(now, &a, &o).expect("own open offer"))
                .unwrap_or_default(),
            Op::Decline(i) => pick(&offers, i)
                .map(|(o, a)| h.r.decline(now, &a, &o).expect("own open offer"))
                .unwrap_or_default(),
            Op::AcceptWrong(a, i) => {
                if let Some((o, owner)) = pick(&offers, i) {
                    let agent = agent_id(a);
                    if agent != owner {
                        assert_eq!(h.r.accept(now, &agent, &o), Err(RouteError::NotYourOffer));
                    }
                }
                assert_eq!(
                    h.r.accept(now, &agent_id(a), "o_none"),
                    Err(RouteError::UnknownOffer)
                );
                Vec::new()
            }
            Op::Close(i) => match pick(&convs, i) {
                Some(c) => {
                    open.remove(&c);
                    h.r.close(now, &c)
                }
                None => Vec::new(),
            },
            Op::TransferToAgent(i, a) => pick(&assigned, i)
                .and_then(|c| {
                    let from = h.r.agent_of(&c).unwrap_or("sup").to_owned();
                    h.r.transfer_to_agent(now, &c, &from, &agent_id(a), Some("n".into()))
                        .ok()
                })
                .unwrap_or_default(),
            Op::TransferToTopic(i, t) => pick(&assigned, i)
                .and_then(|c| {
                    let from = h.r.agent_of(&c).unwrap_or("sup").to_owned();
                    h.r.transfer_to_topic(now, &c, &from, TOPICS[usize::from(t)], None)
                        .ok()
                })
                .unwrap_or_default(),
            Op::Presence(i, present) => pick(&convs, i)
                .map(|c| h.r.customer_presence(now, &c, present))
                .unwrap_or_default(),
            Op::AssignmentFailed(i) => {
                restored = true;
                pick(&convs, i)
                    .and_then(|c| {
                        h.r.agent_of(&c)
                            .map(str::to_owned)
                            .map(|a| h.r.assignment_failed(now, &a, &c))
                    })
                    .unwrap_or_default()
            }
            Op::Claim(i, a) => pick(&convs, i)
                .map(|c| {
                    let agent = agent_id(a);
                    let queued = h.r.is_queued(&c);
                    let room = h.r.agents.get(&agent).map(|x| {
                        let own = h.r.open_offer(&c).is_some_and(|(_, to)| to == agent);
                        (x.status, x.load() - u32::from(own) < x.profile.capacity)
                    });
                    let escalating = h.r.agent_of(&c).is_some();
                    match h.r.claim(now, &c, &agent) {
                        Ok(out) => {
                            assert!(queued && !escalating, "claimed a conversation not queued");
                            assert!(
                                matches!(room, Some((s, true)) if s != AgentStatus::Offline),
                                "claimed by an agent offline or without room: {room:?}"
                            );
                            assert_eq!(h.r.agent_of(&c), Some(agent.as_str()));
                            out
                        }
                        Err(err) => {
                            let expected = match room {
                                _ if !h.r.convs.contains_key(&c) => RouteError::UnknownConversation,
                                _ if !queued || escalating => RouteError::NotQueued,
                                None => RouteError::UnknownAgent,
                                Some(_) => RouteError::AgentUnavailable,
                            };
                            assert_eq!(err, expected, "claim of {c} by {agent}");
                            Vec::new()
                        }
                    }
                })
                .unwrap_or_default(),
            Op::Advance(ms) => {
                h.now += ms;
                let mut out = h.r.tick(h.now);
                // The hub closes abandoned conversations.
                let abandoned: Vec<String> = out
                    .iter()
                    .filter_map(|c| match c {
                        Command::Abandon { conversation } => Some(conversation.clone()),
                        _ => None,
                    })
                    .collect();
                for c in abandoned {
                    open.remove(&c);
                    h.r.check(h.now);
                    out.extend(h.r.close(h.now, &c));
                }
                out
            }
        };
        for (id, agent) in &h.r.agents {
            if let Some(&was) = statuses.get(id) {
                if was != AgentStatus::Offline && agent.status == AgentStatus::Offline {
                    // A wrap-up does not outlive the connection.
                    let back = match was {
                        AgentStatus::WrapUp => AgentStatus::Available,
                        other => other,
                    };
                    resume.insert(id.clone(), back);
                }
            }
        }
        assert_invariants(&h, &before, restored, &out);
        let rebuilt = matches!(op, Op::Restore { .. });
        assert_desk(&h, &activity_before, closing, rebuilt, &out);
        log.push(out);
    }
    log
}

fn assert_invariants(
    h: &Harness,
    before: &BTreeMap<String, (u32, u32)>,
    restored: bool,
    out: &[Command],
) {
    h.r.check(h.now);
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, a) in &h.r.agents {
        let (active, offers) = (a.active.len() as u64, a.offers.len() as u64);
        let capacity = u64::from(a.profile.capacity);
        if offers > 0 {
            assert!(
                active + offers <= capacity,
                "{id}: {active} + {offers} offers > capacity {capacity}"
            );
        }
        // Over capacity only by lowering it (or restoring): never grows while over.
        if active > capacity && !restored {
            let (was, _) = before.get(id).copied().unwrap_or((0, 0));
            assert!(
                active <= u64::from(was),
                "{id} got more work while over capacity"
            );
        }
        for c in &a.active {
            assert!(owners.insert(c, id).is_none(), "{c} assigned to two agents");
            assert_eq!(h.r.agent_of(c), Some(id.as_str()));
        }
    }
    let mut offered: BTreeSet<&str> = BTreeSet::new();
    for o in h.r.offers.values() {
        assert!(
            offered.insert(&o.conversation),
            "two open offers for {}",
            o.conversation
        );
        assert_eq!(
            h.r.agent_status(&o.agent),
            Some(AgentStatus::Available),
            "offer to a non-available agent"
        );
    }
    // Every Offer command names an offer that was open when it was made (it may already
    // have lapsed within the same call, e.g. its agent went away).
    for c in out {
        if let Command::QueuePosition { position, .. } = c {
            assert!(*position >= 1);
        }
    }
}

type ActivityOf = BTreeMap<String, (AgentStatus, Option<String>, bool)>;

fn activity_of(h: &Harness) -> ActivityOf {
    h.r.agents
        .iter()
        .map(|(id, a)| {
            (
                id.clone(),
                (a.status, a.away_reason.clone(), !a.active.is_empty()),
            )
        })
        .collect()
}

/// The desk's side of a step: every change of an agent's activity is reported once,
/// as it now is; a close by an available agent of a topic with wrap-up starts one; and
/// every decision record is consistent with the choice it explains.
fn assert_desk(
    h: &Harness,
    before: &ActivityOf,
    closing: Option<(String, bool)>,
    rebuilt: bool,
    out: &[Command],
) {
    let after = activity_of(h);
    let mut reported: BTreeMap<&str, &super::super::Activity> = BTreeMap::new();
    for c in out {
        if let Command::Activity(a) = c {
            reported.insert(&a.agent, a);
        }
    }
    for (id, now) in &after {
        let changed = before.get(id) != Some(now);
        match reported.get(id.as_str()) {
            Some(a) => assert_eq!(
                (a.status, a.away_reason.clone(), a.busy),
                now.clone(),
                "last activity of {id} is its state"
            ),
            // A new agent (Offline, idle) or a restored one reports at its next change.
            None => assert!(
                !changed || rebuilt || !before.contains_key(id),
                "{id} changed {:?} -> {now:?} unreported",
                before.get(id)
            ),
        }
    }
    if let Some((owner, true)) = closing {
        assert!(
            out.iter()
                .any(|c| matches!(c, Command::WrapUp { agent, .. } if *agent == owner)),
            "closing {owner}'s chat of a wrap-up topic starts its wrap-up"
        );
    }
    for c in out {
        let Command::Decision(d) = c else { continue };
        let ids: BTreeSet<&str> = d.candidates.iter().map(|c| c.agent.as_str()).collect();
        assert!(
            d.passed_over
                .iter()
                .all(|p| !ids.contains(p.agent.as_str())),
            "a candidate also passed over: {d:?}"
        );
        let sorted = d.candidates.windows(2).all(|w| {
            let key = |c: &super::super::Candidate| {
                (
                    u64::from(c.load) * 1_000_000 / u64::from(c.capacity.max(1)),
                    std::cmp::Reverse(c.level_sum),
                    c.idle_since_ms,
                )
            };
            key(&w[0]) <= key(&w[1])
        });
        assert!(sorted, "candidates in rank order: {d:?}");
        match (&d.event, d.rule) {
            (DecisionEvent::Offered | DecisionEvent::Assigned, Rule::Ranking) => {
                assert_eq!(
                    d.chosen.as_deref(),
                    d.candidates.first().map(|c| c.agent.as_str())
                );
            }
            (DecisionEvent::Offered | DecisionEvent::Assigned, Rule::Requested) => {
                assert!(d.chosen.is_some() && d.candidates.is_empty(), "{d:?}");
            }
            // A person chose the agent: it need not be a candidate of the ranking.
            (DecisionEvent::Assigned, Rule::Claimed) => assert!(d.chosen.is_some(), "{d:?}"),
            (DecisionEvent::Offered | DecisionEvent::Assigned, _) => {
                let chosen = d.chosen.as_deref().expect("a chosen agent");
                assert!(ids.contains(chosen), "chosen among the candidates: {d:?}");
            }
            (DecisionEvent::Queued, rule) => {
                assert_eq!(rule, Rule::NoEligibleAgent);
                assert_eq!(d.candidates_total, 0, "queued with a candidate: {d:?}");
            }
            _ => assert_eq!(d.chosen, None),
        }
    }
}

proptest! {
    // Failure seeds go next to this file (`prop.regressions`), not to a
    // `proptest-regressions/` directory at the repository root.
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_keep_invariants_and_are_deterministic(ops in proptest::collection::vec(op(), 1..80)) {
        let first = run(&ops);
        let second = run(&ops);
        prop_assert_eq!(first, second);
    }
}

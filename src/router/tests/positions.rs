//! Queue positions: counted across competing topics, sent on entry and on change, at
//! most once per interval per conversation, held-back changes sent by a later tick that
//! next_deadline announces.

use super::*;

#[test]
fn every_entry_gets_its_position() {
    let mut h = Harness::new();
    assert_eq!(
        positions(&h.enqueue("c1", "general")),
        vec![("c1".into(), 1)]
    );
    assert_eq!(
        positions(&h.enqueue("c2", "general")),
        vec![("c2".into(), 2)]
    );
    // general needs no skill, so it competes with billing: its customers count.
    assert_eq!(
        positions(&h.enqueue("b1", "billing")),
        vec![("b1".into(), 3)]
    );
}

#[test]
fn changes_are_throttled_and_sent_by_a_later_tick() {
    let mut h = Harness::new(); // interval 1000 ms
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    h.enqueue("c3", "general");
    h.at(500);
    let out = h.close("c1");
    assert!(positions(&out).is_empty(), "c2 and c3 were told 500 ms ago");
    assert_eq!(h.r.next_deadline(), Some(1_000));
    assert!(h.tick(999).is_empty());
    assert_eq!(
        positions(&h.tick(1_000)),
        vec![("c2".into(), 1), ("c3".into(), 2)]
    );
    assert_eq!(h.r.next_deadline(), None);
    // Past the interval a change goes out at once.
    h.at(2_000);
    assert_eq!(positions(&h.close("c2")), vec![("c3".into(), 1)]);
}

#[test]
fn a_change_back_to_the_sent_position_sends_nothing() {
    let mut h = Harness::new();
    h.at(1_000);
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    h.enqueue("c3", "general");
    h.at(1_100);
    assert!(
        positions(&h.close("c1")).is_empty(),
        "c2 → 1 and c3 → 2 held back"
    );
    h.at(1_200);
    // An older conversation (e.g. re-entered after a restart) goes in front: c2 and c3
    // are back where they were last told.
    let out = h.enqueue_full("older", "general", 0, None);
    assert_eq!(positions(&out), vec![("older".into(), 1)]);
    assert!(positions(&h.tick(2_000)).is_empty());
}

#[test]
fn an_entry_in_front_moves_everyone_behind() {
    let mut h = Harness::new();
    h.at(1_000);
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    h.at(5_000);
    let out = h.enqueue_full("older", "general", 0, None);
    assert_eq!(
        positions(&out),
        vec![("older".into(), 1), ("c1".into(), 2), ("c2".into(), 3)]
    );
}

#[test]
fn offered_conversations_keep_their_place() {
    let mut h = Harness::new();
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    h.at(2_000);
    let out = h.agent(profile("a", &[], 1));
    assert_eq!(offers(&out), vec![("c1".into(), "a".into())]);
    assert!(positions(&out).is_empty(), "an offer does not move anyone");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    let out = h.accept("a", &offer).expect("accept");
    assert_eq!(positions(&out), vec![("c2".into(), 1)]);
}

#[test]
fn eta_uses_handle_time_and_capacity() {
    let mut h = Harness::with(RouterConfig {
        default_handle_ms: 100_000,
        ..config()
    });
    // No agents at all: one slot assumed.
    let out = h.enqueue("c1", "general");
    assert_eq!(
        out,
        vec![Command::QueuePosition {
            conversation: "c1".into(),
            position: 1,
            eta_ms: 100_000
        }]
    );
    // One busy agent of capacity 2: position 2 → 2 * 100 s / 2 slots.
    h.close("c1");
    h.agent(profile("a", &[], 2));
    h.assign("x1", "general", "a");
    h.assign("x2", "general", "a");
    h.enqueue("w1", "general");
    let out = h.enqueue("w2", "general");
    assert_eq!(
        out,
        vec![Command::QueuePosition {
            conversation: "w2".into(),
            position: 2,
            eta_ms: 100_000
        }]
    );
    // A 10 s conversation pulls the EWMA down by a fifth of the difference.
    h.at(10_000);
    h.close("x1"); // w1 offered
    h.at(20_000);
    let out = h.enqueue("w3", "general");
    // handle = 100000 - 20000 + 2000 = 82000; position 3 (w1 offered, w2, w3), free 0.
    assert_eq!(
        out,
        vec![Command::QueuePosition {
            conversation: "w3".into(),
            position: 3,
            eta_ms: 123_000
        }]
    );
}

#[test]
fn requeued_conversation_is_told_its_new_position() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.assign("c1", "general", "a");
    h.enqueue("c2", "general");
    h.at(5_000);
    h.status("a", AgentStatus::Offline);
    let out = h.tick(65_000);
    assert!(out.contains(&Command::Unassigned {
        agent: "a".into(),
        conversation: "c1".into()
    }));
    // c1 goes in front of c2.
    assert_eq!(positions(&out), vec![("c1".into(), 1), ("c2".into(), 2)]);
}

// --- Positions across competing topics ---

/// One agent who can serve every topic (no skills), busy with `c0`: whoever is first in
/// line, in any topic, is next.
fn busy_alice() -> Harness {
    let mut h = Harness::new();
    h.agent(profile("alice", &[], 1));
    h.assign("c0", "general", "alice");
    h
}

#[test]
fn a_higher_priority_customer_of_a_competing_topic_moves_the_customer_back() {
    // The scenario of tests/router_queue.rs: general (priority 0) and vip (priority 10)
    // both need no skill, so they wait for the same agents.
    let mut h = busy_alice();
    assert_eq!(
        positions(&h.enqueue("low", "general")),
        vec![("low".into(), 1)]
    );
    h.at(1_000);
    let out = h.enqueue("high", "vip");
    // eta: one agent of capacity 1, none free: position × 300 s.
    assert_eq!(
        out,
        vec![
            Command::QueuePosition {
                conversation: "low".into(),
                position: 2,
                eta_ms: 600_000
            },
            Command::QueuePosition {
                conversation: "high".into(),
                position: 1,
                eta_ms: 300_000
            },
        ]
    );
    // A later entry behind both moves nobody; it counts both topics' customers.
    assert_eq!(
        positions(&h.enqueue("low2", "general")),
        vec![("low2".into(), 3)]
    );
    assert_eq!(
        positions(&h.enqueue("high2", "vip")),
        vec![("high2".into(), 2)]
    );
}

#[test]
fn the_cross_topic_change_is_throttled_and_sent_by_tick() {
    let mut h = busy_alice();
    h.enqueue("low", "general");
    h.at(300);
    let out = h.enqueue("high", "vip");
    assert_eq!(
        positions(&out),
        vec![("high".into(), 1)],
        "low was told 300 ms ago"
    );
    assert_eq!(h.r.next_deadline(), Some(1_000));
    assert!(h.tick(999).is_empty());
    assert_eq!(positions(&h.tick(1_000)), vec![("low".into(), 2)]);
    assert_eq!(h.r.next_deadline(), None);
    // Held back, then back where it was last told by the time it may be sent: nothing.
    h.at(1_500);
    assert_eq!(positions(&h.close("high")), Vec::new());
    h.at(1_600);
    assert_eq!(
        positions(&h.enqueue("high2", "vip")),
        vec![("high2".into(), 1)]
    );
    assert_eq!(h.r.next_deadline(), Some(2_000));
    assert!(positions(&h.tick(2_000)).is_empty());
    assert_eq!(h.r.next_deadline(), None);
}

#[test]
fn accepting_or_closing_a_competing_conversation_moves_the_others_up() {
    let mut h = busy_alice();
    h.enqueue("low", "general");
    h.enqueue("high", "vip");
    h.enqueue("high2", "vip");
    assert_eq!(positions(&h.tick(1_000)), vec![("low".into(), 3)]);
    // alice frees up: high is offered (an offer moves nobody), then accepted.
    h.at(5_000);
    let out = h.close("c0");
    assert_eq!(offers(&out), vec![("high".into(), "alice".into())]);
    assert!(positions(&out).is_empty());
    let (offer, _) = offer_of(&out, "high").expect("offer");
    let out = h.accept("alice", &offer).expect("accept");
    assert_eq!(
        positions(&out),
        vec![("low".into(), 2), ("high2".into(), 1)]
    );
    // The customer of high2 leaves: low is next.
    h.at(7_000);
    assert_eq!(positions(&h.close("high2")), vec![("low".into(), 1)]);
}

#[test]
fn a_topic_that_does_not_compete_is_not_affected() {
    // billing and tier2 need different skills: neither counts the other.
    let mut h = Harness::new();
    assert_eq!(
        positions(&h.enqueue("b1", "billing")),
        vec![("b1".into(), 1)]
    );
    h.at(2_000);
    assert_eq!(positions(&h.enqueue("t1", "tier2")), vec![("t1".into(), 1)]);
    assert_eq!(positions(&h.close("t1")), Vec::new());
    assert_eq!(h.r.next_deadline(), None);
    // A vip customer (no skills, priority 10) goes ahead in both: a topic needing no
    // skill competes with every topic.
    h.at(4_000);
    h.enqueue("t2", "tier2");
    h.at(5_000);
    assert_eq!(
        positions(&h.enqueue("v1", "vip")),
        vec![("b1".into(), 2), ("t2".into(), 2), ("v1".into(), 1)]
    );
}

/// billing ⊂ billing_fr ⊃ fr, all priority 0 so only the wait orders them.
fn subset_config() -> RouterConfig {
    let mut billing = TopicRule::new("billing");
    billing.skills = vec!["billing".into()];
    let mut billing_fr = TopicRule::new("billing_fr");
    billing_fr.skills = vec!["billing".into(), "fr".into()];
    let mut fr = TopicRule::new("fr");
    fr.skills = vec!["fr".into()];
    RouterConfig {
        topics: vec![billing, billing_fr, fr],
        default_topic: "billing".into(),
        ..RouterConfig::default()
    }
}

#[test]
fn subset_topics_compete_both_ways() {
    let mut h = Harness::with(subset_config());
    h.at(1_000);
    assert_eq!(
        positions(&h.enqueue("b1", "billing")),
        vec![("b1".into(), 1)]
    );
    assert_eq!(
        positions(&h.enqueue("f1", "fr")),
        vec![("f1".into(), 1)],
        "fr does not compete with billing"
    );
    // billing_fr contains both: its customer counts both in front.
    assert_eq!(
        positions(&h.enqueue("bf1", "billing_fr")),
        vec![("bf1".into(), 3)]
    );
    // Superset → subset: an older billing_fr customer moves billing and fr back.
    h.at(3_000);
    let out = h.enqueue_full("bf0", "billing_fr", 0, None);
    assert_eq!(
        positions(&out),
        vec![
            ("b1".into(), 2),
            ("bf0".into(), 1),
            ("bf1".into(), 4),
            ("f1".into(), 2)
        ]
    );
    // Subset → superset: an older billing customer moves billing_fr, not fr.
    h.at(5_000);
    let out = h.enqueue_full("b0", "billing", 500, None);
    assert_eq!(
        positions(&out),
        vec![("b0".into(), 2), ("b1".into(), 3), ("bf1".into(), 5)]
    );
}

#[test]
fn an_escalation_into_a_competing_topic_counts() {
    // An escalation competes (and is never told positions itself).
    let mut h = Harness::new();
    h.agent(profile("alice", &[], 1));
    h.assign("c0", "general", "alice");
    h.enqueue("g1", "general");
    h.at(2_000);
    let out =
        h.r.transfer_to_topic(h.now, "c0", "alice", "vip", None)
            .expect("escalation");
    h.r.check(h.now);
    assert_eq!(positions(&out), vec![("g1".into(), 2)]);
    // vip's transfer timeout (60 s) passes: the escalation leaves the queue.
    let out = h.tick(62_000);
    assert!(out
        .iter()
        .any(|c| matches!(c, Command::TransferFailed { .. })));
    assert_eq!(positions(&out), vec![("g1".into(), 1)]);
}

#[test]
fn long_and_sparse_competing_queues_keep_exact_positions_and_tell_everyone() {
    // No agents: everything waits. Random entries (often in the middle, by an older
    // waiting_since), closes and time steps over topics that compete in different ways;
    // the harness checks every kept position against a recount after each call, and
    // once the throttle has passed every customer must have been told where it is.
    let mut h = Harness::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let topics = ["general", "billing", "billing_fr", "tier2", "vip"];
    // Mostly billing, so general and billing_fr entries sit between long billing runs.
    let weights = [1, 12, 2, 3, 1];
    let mut told: std::collections::BTreeMap<String, u32> = Default::default();
    let mut open: Vec<String> = Vec::new();
    let record = |out: &[Command], told: &mut std::collections::BTreeMap<String, u32>| {
        for (c, p) in positions(out) {
            told.insert(c, p);
        }
    };
    for i in 0..400 {
        let now = h.now + next(400);
        let out = h.tick(now);
        record(&out, &mut told);
        if next(4) == 0 && !open.is_empty() {
            let c = open.swap_remove(next(open.len() as u64) as usize);
            told.remove(&c);
            let out = h.close(&c);
            record(&out, &mut told);
        } else {
            let mut pick = next(weights.iter().sum());
            let topic = topics
                .iter()
                .zip(weights)
                .find(|(_, w)| {
                    let hit = pick < *w;
                    pick = pick.saturating_sub(*w);
                    hit
                })
                .map(|(t, _)| *t)
                .expect("a topic");
            let id = format!("c{i}");
            let since = h.now.saturating_sub(next(3) * next(h.now + 1));
            let out = h.enqueue_full(&id, topic, since, None);
            record(&out, &mut told);
            open.push(id);
        }
    }
    let out = h.tick(h.now + 1_000);
    record(&out, &mut told);
    assert!(
        h.r.topics.iter().all(|t| t.held.is_empty()),
        "nothing held back"
    );
    for t in &h.r.topics {
        for (key, slot) in &t.order {
            assert_eq!(told.get(&*key.id), Some(&slot.rank), "told {}", key.id);
        }
    }
    assert!(
        h.r.topics[1].order.len() > 100,
        "a long billing queue was built"
    );
}

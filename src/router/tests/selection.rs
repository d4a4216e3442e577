//! Who gets a conversation: eligibility, each tie-break level of the agent ranking, the
//! serving order of waiting conversations, capacity edges, sticky routing, auto-accept,
//! and matching from both sides.

use super::*;

#[test]
fn least_loaded_agent_wins_by_ratio() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 4));
    h.agent(profile("b", &[], 2));
    h.assign("c1", "general", "a"); // a: 1/4, b: 0/2
    h.assign("c2", "general", "b"); // a: 1/4, b: 1/2
    let out = h.enqueue("c3", "general");
    assert_eq!(
        offer_of(&out, "c3").map(|o| o.1).as_deref(),
        Some("a"),
        "1/4 < 1/2"
    );
}

#[test]
fn held_offers_count_as_load() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.agent(profile("b", &[], 2));
    let out = h.enqueue("c1", "general");
    assert_eq!(offer_of(&out, "c1").map(|o| o.1).as_deref(), Some("a"));
    assert_eq!(h.r.agent_load("a"), Some((1, 2)));
    let out = h.enqueue("c2", "general");
    assert_eq!(offer_of(&out, "c2").map(|o| o.1).as_deref(), Some("b"));
}

#[test]
fn equal_load_then_highest_level_in_required_skills() {
    let mut h = Harness::new();
    h.agent(profile("a", &[("billing", 3), ("fr", 5)], 1));
    h.agent(profile("b", &[("billing", 4), ("fr", 3)], 1));
    h.agent(profile("c", &[("billing", 5)], 1));
    // billing alone: c (5) > b (4) > a (3).
    let out = h.enqueue("c1", "billing");
    assert_eq!(offer_of(&out, "c1").map(|o| o.1).as_deref(), Some("c"));
    // billing + fr: a (8) > b (7); c lacks fr.
    let out = h.enqueue("c2", "billing_fr");
    assert_eq!(offer_of(&out, "c2").map(|o| o.1).as_deref(), Some("a"));
}

#[test]
fn equal_load_and_level_then_longest_idle() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    h.at(10).assign("c1", "general", "a"); // a idle since 10
    h.at(20).assign("c2", "general", "b"); // b idle since 20
    h.at(30);
    h.close("c2");
    h.close("c1");
    let out = h.enqueue("c3", "general");
    assert_eq!(offer_of(&out, "c3").map(|o| o.1).as_deref(), Some("a"));

    // Now b has been idle longer.
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    h.at(10).assign("c1", "general", "a");
    h.at(20).assign("c2", "general", "b");
    h.at(25).close("c1");
    h.at(26).assign("c4", "general", "a"); // a idle since 26
    h.at(30);
    h.close("c4");
    h.close("c2");
    let out = h.enqueue("c3", "general");
    assert_eq!(offer_of(&out, "c3").map(|o| o.1).as_deref(), Some("b"));
}

#[test]
fn full_tie_goes_to_the_smallest_agent_id() {
    let mut h = Harness::new();
    h.agent(profile("bob", &[("billing", 2)], 2));
    h.agent(profile("amy", &[("billing", 2)], 2));
    let out = h.enqueue("c1", "billing");
    assert_eq!(offer_of(&out, "c1").map(|o| o.1).as_deref(), Some("amy"));
}

#[test]
fn ineligible_agents_are_skipped() {
    let mut h = Harness::new();
    h.agent(profile("away", &[("billing", 5)], 5));
    h.status("away", AgentStatus::Away);
    h.upsert(profile("offline", &[("billing", 5)], 5)); // never set available
    h.agent(profile("noskill", &[("fr", 5)], 5));
    h.agent(profile("zero", &[("billing", 0)], 5)); // level 0 is not holding the skill
    h.agent(profile("nocap", &[("billing", 1)], 0));
    let out = h.enqueue("c1", "billing");
    assert!(offers(&out).is_empty(), "{out:?}");
    h.agent(profile("ok", &[("billing", 1)], 1));
    assert_eq!(h.r.open_offer("c1").map(|o| o.1), Some("ok"));
}

#[test]
fn capacity_one_with_a_held_offer_gets_nothing_more() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    let out = h.enqueue("c1", "general");
    let (o1, _) = offer_of(&out, "c1").expect("offer");
    assert_eq!(h.r.agent_load("a"), Some((1, 1)));
    let out = h.enqueue("c2", "general");
    assert!(
        offers(&out).is_empty(),
        "the held offer fills the only slot"
    );
    // Declining frees the slot: c2 is offered at once, c1 waits (a declined it).
    let out = h.decline("a", &o1).expect("decline");
    assert_eq!(offers(&out), vec![("c2".to_owned(), "a".to_owned())]);
    assert!(h.r.is_queued("c1"));
    assert_eq!(h.r.open_offer("c1"), None);
}

#[test]
fn one_offer_at_a_time_per_conversation() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 3));
    h.agent(profile("b", &[], 3));
    let out = h.enqueue("c1", "general");
    assert_eq!(offers(&out).len(), 1);
    assert_eq!(h.r.agent_load("a"), Some((1, 3)));
    assert_eq!(h.r.agent_load("b"), Some((0, 3)));
}

#[test]
fn free_agent_takes_highest_priority_then_oldest() {
    let mut h = Harness::new();
    h.enqueue_full("low_old", "general", 0, None);
    h.at(100);
    h.enqueue_full("high", "vip", 100, None);
    h.enqueue_full("low_new", "general", 50, None);
    h.agent(profile("a", &[], 1));
    assert_eq!(h.r.open_offer("high").map(|o| o.1), Some("a"));
    let (offer, _) =
        h.r.open_offer("high")
            .map(|(o, a)| (o.to_owned(), a.to_owned()))
            .expect("offer");
    h.accept("a", &offer).expect("accept");
    h.close("high");
    assert_eq!(
        h.r.open_offer("low_old").map(|o| o.1),
        Some("a"),
        "oldest waiting_since first"
    );
}

#[test]
fn free_agent_serves_across_its_groups() {
    let mut h = Harness::new();
    // Waiting: a billing_fr (priority 5) and a billing conversation (priority 0).
    h.enqueue("plain", "billing");
    h.enqueue("fr", "billing_fr");
    // An agent without fr only qualifies for billing.
    h.agent(profile("a", &[("billing", 1)], 1));
    assert_eq!(h.r.open_offer("plain").map(|o| o.1), Some("a"));
    assert_eq!(h.r.open_offer("fr"), None);
    // A bilingual one gets the higher priority billing_fr.
    h.agent(profile("b", &[("billing", 1), ("fr", 1)], 1));
    assert_eq!(h.r.open_offer("fr").map(|o| o.1), Some("b"));
}

#[test]
fn raising_capacity_and_adding_skills_pull_work() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    h.enqueue("c3", "billing");
    let out = h.upsert(profile("a", &[("billing", 2)], 3));
    let mut got = offers(&out);
    got.sort();
    assert_eq!(
        got,
        vec![("c2".into(), "a".into()), ("c3".into(), "a".into())]
    );
}

#[test]
fn lowering_capacity_withdraws_the_newest_offers_only() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 3));
    h.assign("c1", "general", "a");
    h.enqueue("c2", "general");
    h.enqueue("c3", "general");
    let out = h.upsert(profile("a", &[], 1));
    let revoked: Vec<_> = out
        .iter()
        .filter_map(|c| match c {
            Command::Revoke {
                conversation,
                reason,
                ..
            } => Some((conversation.clone(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        revoked,
        vec![
            ("c3".into(), super::super::RevokeReason::Withdrawn),
            ("c2".into(), super::super::RevokeReason::Withdrawn)
        ]
    );
    assert_eq!(h.r.agent_load("a"), Some((1, 1)));
    assert_eq!(h.r.agent_of("c1"), Some("a"));
}

#[test]
fn sticky_preferred_agent_first_even_if_not_best() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.agent(profile("b", &[], 2));
    h.assign("c1", "general", "a"); // a busier than b
    let out = h.enqueue_full("c2", "general", 0, Some("a"));
    assert_eq!(offer_of(&out, "c2").map(|o| o.1).as_deref(), Some("a"));
    // If the preferred agent declines, normal routing.
    let (offer, _) = offer_of(&out, "c2").expect("offer");
    let out = h.decline("a", &offer).expect("decline");
    assert_eq!(offer_of(&out, "c2").map(|o| o.1).as_deref(), Some("b"));
}

#[test]
fn sticky_ineligible_preferred_agent_falls_back() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.agent(profile("b", &[("billing", 1)], 2));
    h.status("a", AgentStatus::Away);
    let out = h.enqueue_full("c1", "general", 0, Some("a"));
    assert_eq!(offer_of(&out, "c1").map(|o| o.1).as_deref(), Some("b"));
    // Preferred but lacking the skill.
    h.status("a", AgentStatus::Available);
    let out = h.enqueue_full("c2", "billing", 0, Some("a"));
    assert_eq!(offer_of(&out, "c2").map(|o| o.1).as_deref(), Some("b"));
    // Unknown preferred agent.
    let out = h.enqueue_full("c3", "general", 0, Some("ghost"));
    assert_eq!(offer_of(&out, "c3").map(|o| o.1).as_deref(), Some("a"));
}

#[test]
fn auto_accept_agents_are_assigned_without_offer() {
    let mut h = Harness::new();
    let mut p = profile("bot", &[], 2);
    p.auto_accept = true;
    h.agent(p);
    let out = h.enqueue("c1", "general");
    assert_eq!(
        decisions(&out),
        vec![Command::Assign {
            agent: "bot".into(),
            conversation: "c1".into(),
            previous_agent: None,
            via_offer: false
        }]
    );
    assert!(
        positions(&out).is_empty(),
        "never waited, so no queue position"
    );
    assert_eq!(h.r.agent_of("c1"), Some("bot"));
}

#[test]
fn unknown_topic_routes_to_default() {
    let mut h = Harness::new();
    h.enqueue("c1", "nope");
    assert_eq!(h.r.topic_of("c1"), Some("general"));
    let out = h.enqueue("c1", "billing");
    assert!(out.is_empty(), "a known id is ignored");
}

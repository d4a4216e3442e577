//! Nobody waits forever: exclusions cool down, agents take queued chats, supervisors
//! assign them, and long-waiting customers are offered to leave a message.

use super::super::{DecisionEvent, Rule};
use super::*;

/// The walkthrough's stranded customer: one agent, who lets the offer expire. After the
/// cooldown the same agent is offered it again.
#[test]
fn an_expired_offer_is_made_again_after_the_cooldown() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    let out = h.enqueue("c1", "general");
    assert_eq!(offers(&out), [("c1".to_string(), "a".to_string())]);
    let out = h.tick(15_000);
    assert!(offers(&out).is_empty(), "excluded right after the expiry");
    assert!(h.tick(74_999).is_empty());
    let out = h.r.tick(75_000);
    h.r.check(75_000);
    assert_eq!(offers(&out), [("c1".to_string(), "a".to_string())]);
    assert!(out.iter().any(|c| matches!(c, Command::Decision(d)
        if d.event == DecisionEvent::Readmitted { agents: vec!["a".into()] })));
}

#[test]
fn another_agent_is_offered_first_and_the_cooldown_only_readmits() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    let out = h.enqueue("c1", "general");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    h.decline("a", &offer).expect("decline");
    h.agent(profile("b", &[], 1));
    let offered_b = h.r.open_offer("c1").map(|(_, a)| a.to_owned());
    assert_eq!(offered_b.as_deref(), Some("b"), "b, who never passed on it");
    // b's offer is open at the cooldown's end: nothing is offered twice.
    let out = h.tick(14_000);
    assert!(offers(&out).is_empty());
}

#[test]
fn an_agent_takes_a_queued_chat_offered_to_someone_else() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    let out = h.enqueue("c1", "general");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    h.agent(profile("b", &[], 1));
    let out = h.r.claim(h.now, "c1", "b").expect("claim");
    h.r.check(h.now);
    let out = routing_only(out);
    assert_eq!(
        out,
        [
            Command::Revoke {
                offer_id: offer,
                agent: "a".into(),
                conversation: "c1".into(),
                reason: RevokeReason::Taken,
            },
            Command::Assign {
                agent: "b".into(),
                conversation: "c1".into(),
                previous_agent: None,
                via_offer: false,
            },
        ]
    );
    assert_eq!(h.r.agent_of("c1"), Some("b"));
    assert_eq!(h.r.claim(h.now, "c1", "a"), Err(RouteError::NotQueued));
}

#[test]
fn claims_respect_capacity_and_presence_but_not_skills() {
    let mut h = Harness::new();
    h.agent(profile("full", &[], 1));
    h.assign("c0", "general", "full");
    h.enqueue("c1", "billing");
    assert_eq!(
        h.r.claim(h.now, "c1", "full"),
        Err(RouteError::AgentUnavailable)
    );
    h.upsert(profile("gone", &[], 1));
    assert_eq!(
        h.r.claim(h.now, "c1", "gone"),
        Err(RouteError::AgentUnavailable)
    );
    assert_eq!(
        h.r.claim(h.now, "c1", "nobody"),
        Err(RouteError::UnknownAgent)
    );
    assert_eq!(
        h.r.claim(h.now, "c9", "full"),
        Err(RouteError::UnknownConversation)
    );
    // Away but connected, without the billing skill: a person chose it.
    h.upsert(profile("sam", &[], 2));
    h.status("sam", AgentStatus::Away);
    let out = h.r.claim(h.now, "c1", "sam").expect("claim");
    h.r.check(h.now);
    let decision = out.iter().find_map(|c| match c {
        Command::Decision(d) => Some(d.clone()),
        _ => None,
    });
    assert_eq!(decision.map(|d| d.rule), Some(Rule::Claimed));
    assert_eq!(h.r.agent_of("c1"), Some("sam"));
}

#[test]
fn a_long_wait_offers_to_leave_a_message_once() {
    let mut cfg = config();
    cfg.topics[0].leave_message_after_ms = 30_000;
    let mut h = Harness::with(cfg);
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    let out = h.agent(profile("a", &[], 1));
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    h.accept("a", &offer).expect("accept");
    let out = h.tick(30_000);
    let leave: Vec<&Command> = out
        .iter()
        .filter(|c| matches!(c, Command::LeaveMessage { .. }))
        .collect();
    assert_eq!(
        leave,
        [&Command::LeaveMessage {
            conversation: "c2".into(),
            waited_ms: 30_000
        }],
        "c1 is with a, c2 still waits"
    );
    assert!(h
        .tick(90_000)
        .iter()
        .all(|c| !matches!(c, Command::LeaveMessage { .. })));
}

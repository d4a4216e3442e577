//! Offer answers: accept, decline and expiry re-offer at once; missed offers in a row set
//! an agent away; closing revokes; errors leave nothing changed.

use super::super::RevokeReason;
use super::*;

#[test]
fn accept_assigns_via_offer() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    let out = h.enqueue("c1", "general");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    let out = h.accept("a", &offer).expect("accept");
    assert_eq!(
        decisions(&out),
        vec![Command::Assign {
            agent: "a".into(),
            conversation: "c1".into(),
            previous_agent: None,
            via_offer: true
        }]
    );
    assert_eq!(h.r.agent_load("a"), Some((1, 2)));
    assert!(!h.r.is_queued("c1"));
}

#[test]
fn offer_carries_topic_priority_wait_and_expiry() {
    let mut h = Harness::new();
    h.agent(profile("a", &[("billing", 1), ("fr", 1)], 1));
    h.at(5_000);
    let out = h.enqueue_full("c1", "billing_fr", 1_000, None);
    let offer = out
        .iter()
        .find(|c| matches!(c, Command::Offer { .. }))
        .expect("offer");
    let Command::Offer {
        topic,
        priority,
        waited_ms,
        expires_ms,
        transfer,
        offer_id,
        ..
    } = offer
    else {
        unreachable!()
    };
    assert_eq!(
        (topic.as_str(), *priority, *waited_ms, *expires_ms),
        ("billing_fr", 5, 4_000, 15_000)
    );
    assert!(transfer.is_none());
    assert!(offer_id.starts_with("o_") && offer_id.len() == 18);
    assert_eq!(h.r.next_deadline(), Some(20_000));
}

#[test]
fn decline_reoffers_to_next_agent_in_the_same_call() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    let out = h.enqueue("c1", "general");
    let (offer, agent) = offer_of(&out, "c1").expect("offer");
    assert_eq!(agent, "a");
    let out = h.decline("a", &offer).expect("decline");
    assert!(
        !out.iter().any(|c| matches!(c, Command::Revoke { .. })),
        "no revoke for a decline"
    );
    assert_eq!(offers(&out), vec![("c1".into(), "b".into())]);
    // b declines too: nobody left, it waits; a is not asked again.
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    let out = h.decline("b", &offer).expect("decline");
    assert!(offers(&out).is_empty());
    assert!(h.r.is_queued("c1"));
    // A new agent gets it.
    let out = h.agent(profile("c", &[], 1));
    assert_eq!(offers(&out), vec![("c1".into(), "c".into())]);
}

#[test]
fn expiry_revokes_and_reoffers_exactly_at_the_timeout() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    let out = h.enqueue("c1", "general");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    assert!(h.tick(14_999).is_empty());
    let out = h.tick(15_000);
    assert_eq!(
        out[0],
        Command::Revoke {
            offer_id: offer.clone(),
            agent: "a".into(),
            conversation: "c1".into(),
            reason: RevokeReason::Expired
        }
    );
    assert_eq!(offers(&out), vec![("c1".into(), "b".into())]);
    assert_eq!(h.accept("a", &offer), Err(RouteError::UnknownOffer));
}

#[test]
fn missed_offers_in_a_row_set_the_agent_away() {
    let mut h = Harness::new(); // max_missed_offers = 2
    h.agent(profile("a", &[], 1));
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    h.enqueue("c3", "general");
    let out = h.tick(15_000); // c1 missed: a gets c2
    assert_eq!(offers(&out), vec![("c2".into(), "a".into())]);
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::Available));
    let out = h.tick(30_000); // c2 missed: away
    assert!(out.contains(&Command::AgentAway { agent: "a".into() }));
    assert!(offers(&out).is_empty());
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::Away));
    assert_eq!(h.r.agent_load("a"), Some((0, 1)));
    // Back to available: a gets c3 (c1 and c2 exclude it), and the count restarted.
    let out = h.status("a", AgentStatus::Available);
    assert_eq!(offers(&out), vec![("c3".into(), "a".into())]);
    let out = h.tick(45_000);
    assert!(
        !out.contains(&Command::AgentAway { agent: "a".into() }),
        "one miss only"
    );
}

#[test]
fn accept_or_decline_resets_the_missed_count() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    for i in 0..4 {
        h.enqueue(&format!("c{i}"), "general");
    }
    h.tick(15_000); // miss 1 (c0), c1 offered
    let (offer, _) =
        h.r.open_offer("c1")
            .map(|(o, a)| (o.to_owned(), a.to_owned()))
            .expect("offer");
    let out = h.decline("a", &offer).expect("decline"); // reset, c2 offered
    assert_eq!(offers(&out), vec![("c2".into(), "a".into())]);
    let out = h.tick(30_000); // miss 1 again, c3 offered
    assert!(!out.iter().any(|c| matches!(c, Command::AgentAway { .. })));
    assert_eq!(h.r.open_offer("c3").map(|o| o.1), Some("a"));
}

#[test]
fn zero_max_missed_never_sets_away() {
    let mut h = Harness::with(RouterConfig {
        max_missed_offers: 0,
        ..config()
    });
    h.agent(profile("a", &[], 1));
    for i in 0..3 {
        h.enqueue(&format!("c{i}"), "general");
    }
    h.tick(15_000);
    h.tick(30_000);
    h.tick(45_000);
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::Available));
}

#[test]
fn offer_errors_change_nothing() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    let out = h.enqueue("c1", "general");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    assert_eq!(h.accept("b", &offer), Err(RouteError::NotYourOffer));
    assert_eq!(h.decline("b", &offer), Err(RouteError::NotYourOffer));
    assert_eq!(h.accept("a", "o_nope"), Err(RouteError::UnknownOffer));
    assert_eq!(h.r.open_offer("c1").map(|o| o.1), Some("a"));
    h.accept("a", &offer).expect("accept");
    assert_eq!(
        h.accept("a", &offer),
        Err(RouteError::UnknownOffer),
        "accepted once"
    );
}

#[test]
fn closing_a_queued_offered_conversation_revokes_and_frees() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    let out = h.enqueue("c1", "general");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    h.enqueue("c2", "general");
    let out = h.close("c1");
    assert_eq!(
        out[0],
        Command::Revoke {
            offer_id: offer,
            agent: "a".into(),
            conversation: "c1".into(),
            reason: RevokeReason::Closed
        }
    );
    assert_eq!(
        offers(&out),
        vec![("c2".into(), "a".into())],
        "the freed slot goes to c2"
    );
    assert!(h.close("c1").is_empty(), "closing twice is harmless");
}

#[test]
fn closing_an_assigned_conversation_offers_the_next() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.assign("c1", "general", "a");
    h.enqueue("c2", "general");
    let out = h.close("c1");
    assert_eq!(offers(&out), vec![("c2".into(), "a".into())]);
}

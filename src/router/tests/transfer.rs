//! Transfers to a named agent and escalations to a topic.

use super::super::{RevokeReason, TransferFailReason, TransferInfo};
use super::*;

fn failed(out: &[Command]) -> Vec<TransferFailReason> {
    out.iter()
        .filter_map(|c| match c {
            Command::TransferFailed { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// `a` owns c1 (general); `b` and `c` are available.
fn setup() -> Harness {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.assign("c1", "general", "a");
    h.agent(profile("b", &[("tier2", 2)], 1));
    h.agent(profile("c", &[("tier2", 4)], 1));
    h
}

#[test]
fn to_agent_offer_accept_hands_over() {
    let mut h = setup();
    h.at(1_000);
    let out =
        h.r.transfer_to_agent(h.now, "c1", "a", "b", Some("refund".into()))
            .map(routing_only)
            .expect("transfer");
    h.r.check(h.now);
    let Some(Command::Offer {
        offer_id,
        agent,
        expires_ms,
        transfer,
        ..
    }) = out.first().cloned()
    else {
        panic!("{out:?}")
    };
    assert_eq!(agent, "b");
    assert_eq!(expires_ms, 15_000, "min(offer 15 s, transfer 60 s)");
    assert_eq!(
        transfer,
        Some(TransferInfo {
            from_agent: "a".into(),
            note: Some("refund".into()),
            to_topic: None
        })
    );
    // The owner keeps the conversation and its slot meanwhile.
    assert_eq!(h.r.agent_of("c1"), Some("a"));
    assert_eq!(h.r.agent_load("a"), Some((1, 2)));
    assert_eq!(h.r.agent_load("b"), Some((1, 1)));
    assert_eq!(
        h.r.transfer_to_agent(h.now, "c1", "a", "c", None),
        Err(RouteError::TransferPending)
    );

    let out = h.accept("b", &offer_id).expect("accept");
    assert_eq!(
        decisions(&out),
        vec![Command::Assign {
            agent: "b".into(),
            conversation: "c1".into(),
            previous_agent: Some("a".into()),
            via_offer: true
        }]
    );
    assert_eq!(h.r.agent_load("a"), Some((0, 2)));
    assert_eq!(h.r.agent_of("c1"), Some("b"));
}

#[test]
fn to_agent_decline_and_timeout_fail_and_owner_keeps_it() {
    let mut h = setup();
    let out =
        h.r.transfer_to_agent(h.now, "c1", "a", "b", None)
            .map(routing_only)
            .expect("transfer");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    let out = h.decline("b", &offer).expect("decline");
    assert_eq!(failed(&out), vec![TransferFailReason::Declined]);
    assert_eq!(h.r.agent_of("c1"), Some("a"));

    let out =
        h.r.transfer_to_agent(h.now, "c1", "a", "b", None)
            .map(routing_only)
            .expect("transfer");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    let out = h.tick(15_000);
    assert_eq!(
        out[0],
        Command::Revoke {
            offer_id: offer,
            agent: "b".into(),
            conversation: "c1".into(),
            reason: RevokeReason::Expired
        }
    );
    assert_eq!(
        out[1],
        Command::TransferFailed {
            conversation: "c1".into(),
            requested_by: "a".into(),
            reason: TransferFailReason::Timeout
        }
    );
    assert_eq!(h.r.agent_of("c1"), Some("a"));
}

#[test]
fn to_agent_uses_the_shorter_transfer_timeout() {
    let mut cfg = config();
    cfg.topics[0].transfer_timeout_ms = 5_000;
    let mut h = Harness::with(cfg);
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    h.assign("c1", "general", "a");
    let out =
        h.r.transfer_to_agent(0, "c1", "a", "b", None)
            .map(routing_only)
            .expect("transfer");
    assert!(matches!(
        out[0],
        Command::Offer {
            expires_ms: 5_000,
            ..
        }
    ));
}

#[test]
fn to_agent_refusals() {
    let mut h = setup();
    h.status("c", AgentStatus::Away);
    let now = h.now;
    assert_eq!(
        h.r.transfer_to_agent(now, "c1", "a", "c", None),
        Err(RouteError::AgentUnavailable)
    );
    h.status("c", AgentStatus::Offline);
    assert_eq!(
        h.r.transfer_to_agent(now, "c1", "a", "c", None),
        Err(RouteError::AgentUnavailable)
    );
    assert_eq!(
        h.r.transfer_to_agent(now, "c1", "a", "ghost", None),
        Err(RouteError::UnknownAgent)
    );
    assert_eq!(
        h.r.transfer_to_agent(now, "c1", "a", "a", None),
        Err(RouteError::AlreadyOwner)
    );
    assert_eq!(
        h.r.transfer_to_agent(now, "nope", "a", "b", None),
        Err(RouteError::UnknownConversation)
    );
    h.enqueue("q", "general");
    assert_eq!(
        h.r.transfer_to_agent(now, "q", "a", "b", None),
        Err(RouteError::NotAssigned)
    );
    // b is at capacity with the offer of q.
    assert_eq!(h.r.open_offer("q").map(|o| o.1), Some("b"));
    assert_eq!(
        h.r.transfer_to_agent(now, "c1", "a", "b", None),
        Err(RouteError::AgentUnavailable)
    );
    assert_eq!(
        h.r.transfer_to_topic(now, "c1", "a", "nope", None),
        Err(RouteError::UnknownTopic)
    );
    h.r.check(now);
}

#[test]
fn to_agent_target_going_offline_fails_unavailable() {
    let mut h = setup();
    h.r.transfer_to_agent(h.now, "c1", "a", "b", None)
        .map(routing_only)
        .expect("transfer");
    let out = h.status("b", AgentStatus::Offline);
    assert_eq!(failed(&out), vec![TransferFailReason::Unavailable]);
    assert_eq!(h.r.agent_of("c1"), Some("a"));
}

#[test]
fn to_auto_accept_agent_assigns_at_once() {
    let mut h = setup();
    let mut bot = profile("bot", &[], 1);
    bot.auto_accept = true;
    h.agent(bot);
    let out =
        h.r.transfer_to_agent(h.now, "c1", "a", "bot", None)
            .map(routing_only)
            .expect("transfer");
    assert_eq!(
        out,
        vec![Command::Assign {
            agent: "bot".into(),
            conversation: "c1".into(),
            previous_agent: Some("a".into()),
            via_offer: false
        }]
    );
    h.r.check(h.now);
}

#[test]
fn to_topic_offers_best_eligible_with_boosted_priority_and_original_wait() {
    let mut h = setup();
    h.at(7_000);
    let out =
        h.r.transfer_to_topic(h.now, "c1", "a", "tier2", Some("hard".into()))
            .map(routing_only)
            .expect("escalate");
    h.r.check(h.now);
    let Some(Command::Offer {
        offer_id,
        agent,
        topic,
        priority,
        waited_ms,
        expires_ms,
        transfer,
        ..
    }) = out.first().cloned()
    else {
        panic!("{out:?}")
    };
    assert_eq!(agent, "c", "higher tier2 level");
    assert_eq!(
        (topic.as_str(), priority, waited_ms, expires_ms),
        ("tier2", 11, 7_000, 15_000)
    );
    assert_eq!(transfer.and_then(|t| t.to_topic).as_deref(), Some("tier2"));
    // Decline moves on to the next agent.
    let out = h.decline("c", &offer_id).expect("decline");
    let (offer_id, agent) = offer_of(&out, "c1").expect("next offer");
    assert_eq!(agent, "b");
    assert!(failed(&out).is_empty());
    let out = h.accept("b", &offer_id).expect("accept");
    assert!(out.contains(&Command::Assign {
        agent: "b".into(),
        conversation: "c1".into(),
        previous_agent: Some("a".into()),
        via_offer: true
    }));
    assert_eq!(h.r.topic_of("c1"), Some("tier2"));
    assert_eq!(h.r.agent_load("a"), Some((0, 2)));
}

#[test]
fn to_topic_never_offers_to_the_owner() {
    let mut h = Harness::new();
    h.agent(profile("a", &[("tier2", 5)], 3));
    h.assign("c1", "tier2", "a");
    let out =
        h.r.transfer_to_topic(0, "c1", "a", "tier2", None)
            .map(routing_only)
            .expect("escalate");
    h.r.check(0);
    assert!(offers(&out).is_empty());
}

#[test]
fn to_topic_times_out_after_the_target_transfer_timeout() {
    let mut h = setup();
    h.status("b", AgentStatus::Away);
    h.status("c", AgentStatus::Away);
    let out =
        h.r.transfer_to_topic(0, "c1", "a", "tier2", None)
            .map(routing_only)
            .expect("escalate");
    assert!(out.is_empty(), "nobody eligible yet: it waits");
    assert_eq!(h.r.next_deadline(), Some(20_000));
    // An agent becoming available within the window gets it...
    h.at(10_000);
    let out = h.status("b", AgentStatus::Available);
    let (_, agent) = offer_of(&out, "c1").expect("offer");
    assert_eq!(agent, "b");
    assert!(
        matches!(
            out[0],
            Command::Offer {
                expires_ms: 10_000,
                ..
            }
        ),
        "capped by the deadline"
    );
    // ...but nobody accepts: at 20 s the offer is revoked and the transfer fails.
    let out = h.tick(20_000);
    assert_eq!(
        decisions(&out),
        vec![
            Command::Revoke {
                offer_id: match &out[0] {
                    Command::Revoke { offer_id, .. } => offer_id.clone(),
                    other => panic!("{other:?}"),
                },
                agent: "b".into(),
                conversation: "c1".into(),
                reason: RevokeReason::Expired
            },
            Command::TransferFailed {
                conversation: "c1".into(),
                requested_by: "a".into(),
                reason: TransferFailReason::Timeout
            },
        ]
    );
    assert_eq!(
        h.r.agent_status("b"),
        Some(AgentStatus::Available),
        "the deadline is not b's miss"
    );
    assert_eq!(h.r.agent_of("c1"), Some("a"));
    assert_eq!(h.r.topic_of("c1"), Some("general"));
}

#[test]
fn closing_during_a_transfer_revokes_the_offer() {
    let mut h = setup();
    let out =
        h.r.transfer_to_topic(0, "c1", "a", "tier2", None)
            .map(routing_only)
            .expect("escalate");
    let (offer, agent) = offer_of(&out, "c1").expect("offer");
    let out = h.close("c1");
    assert_eq!(
        out[0],
        Command::Revoke {
            offer_id: offer,
            agent,
            conversation: "c1".into(),
            reason: RevokeReason::Closed
        }
    );
    assert!(failed(&out).is_empty());
}

#[test]
fn owner_lost_during_a_transfer_cancels_it() {
    let mut h = Harness::with(RouterConfig {
        agent_grace_ms: 10_000,
        ..config()
    });
    h.agent(profile("a", &[], 2));
    h.assign("c1", "general", "a");
    h.agent(profile("b", &[], 1));
    h.r.transfer_to_agent(0, "c1", "a", "b", None)
        .map(routing_only)
        .expect("transfer");
    h.status("a", AgentStatus::Offline);
    let out = h.tick(10_000);
    assert!(matches!(
        out[0],
        Command::Revoke {
            reason: RevokeReason::Withdrawn,
            ..
        }
    ));
    assert_eq!(failed(&out), vec![TransferFailReason::Unavailable]);
    assert!(out.contains(&Command::Unassigned {
        agent: "a".into(),
        conversation: "c1".into()
    }));
}

#[test]
fn supervisor_may_request_a_transfer() {
    let mut h = setup();
    let out =
        h.r.transfer_to_agent(0, "c1", "sup", "b", None)
            .map(routing_only)
            .expect("transfer");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    let out = h.decline("b", &offer).expect("decline");
    assert!(out.contains(&Command::TransferFailed {
        conversation: "c1".into(),
        requested_by: "sup".into(),
        reason: TransferFailReason::Declined
    }));
}

#[test]
fn escalation_widening_counts_from_the_escalation() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("mono", &[("billing", 5)], 1));
    h.assign("c1", "general", "a");
    h.at(100_000); // long past billing_fr's 30 s widening step
    let out =
        h.r.transfer_to_topic(h.now, "c1", "a", "billing_fr", None)
            .map(routing_only)
            .expect("escalate");
    h.r.check(h.now);
    assert!(
        offers(&out).is_empty(),
        "fr still required right after the escalation"
    );
    assert!(offers(&h.tick(129_999)).is_empty());
    let out = h.tick(130_000);
    assert_eq!(offers(&out), vec![("c1".into(), "mono".into())]);
}

#[test]
fn a_supervisors_transfer_names_the_owner_and_reports_to_the_supervisor() {
    let mut h = setup();
    let out =
        h.r.transfer_to_agent(0, "c1", "sup", "b", Some("vip".into()))
            .map(routing_only)
            .expect("transfer");
    let transfer = out.iter().find_map(|c| match c {
        Command::Offer { transfer, .. } => transfer.clone(),
        _ => None,
    });
    assert_eq!(
        transfer,
        Some(TransferInfo {
            from_agent: "a".into(),
            note: Some("vip".into()),
            to_topic: None
        }),
        "the offer names who hands off, not who asked"
    );
    let escalated = {
        let mut h = setup();
        let out =
            h.r.transfer_to_topic(0, "c1", "sup", "tier2", None)
                .map(routing_only)
                .expect("escalate");
        out.iter().find_map(|c| match c {
            Command::Offer { transfer, .. } => transfer.clone(),
            _ => None,
        })
    };
    assert_eq!(
        escalated.map(|t| t.from_agent),
        Some("a".to_string()),
        "an escalation's offer names the owner too"
    );
}

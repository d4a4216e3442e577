//! The team lead's desk in the core: wrap-up after a close, away reasons, the activity
//! reports and the routing audit's decision records. These call the router directly
//! (the harness drops reporting commands) and check every call's consistency.

use super::super::{Activity, Decision, DecisionEvent, PassReason, Rule, MISSED_OFFERS};
use super::*;

/// `general` with a 10 s wrap-up.
fn wrap_config() -> RouterConfig {
    let mut cfg = config();
    cfg.topics[0].wrap_up_ms = 10_000;
    cfg
}

fn activities(out: &[Command]) -> Vec<Activity> {
    out.iter()
        .filter_map(|c| match c {
            Command::Activity(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn audit(out: &[Command]) -> Vec<Decision> {
    out.iter()
        .filter_map(|c| match c {
            Command::Decision(d) => Some((**d).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn wrap_up_holds_offers_back_until_it_ends() {
    let mut h = Harness::with(wrap_config());
    h.agent(profile("a", &[], 1));
    h.assign("c1", "general", "a");
    h.at(1_000);
    let out = h.r.close(1_000, "c1");
    h.r.check(1_000);
    assert!(out.contains(&Command::WrapUp {
        agent: "a".into(),
        ends_in_ms: 10_000
    }));
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::WrapUp));
    assert!(h.r.online(), "customers still see the desk as open");
    assert!(
        offers(&h.enqueue("c2", "general")).is_empty(),
        "no offer in wrap-up"
    );
    assert!(offers(&h.tick(10_999)).is_empty());
    let out = h.tick(11_000);
    assert_eq!(
        out.first(),
        Some(&Command::WrapUpEnded { agent: "a".into() })
    );
    assert_eq!(offers(&out), vec![("c2".to_string(), "a".to_string())]);
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::Available));
}

#[test]
fn an_agent_may_end_its_wrap_up_early() {
    let mut h = Harness::with(wrap_config());
    h.agent(profile("a", &[], 1));
    h.assign("c1", "general", "a");
    h.close("c1");
    h.enqueue("c2", "general");
    let out = h.status("a", AgentStatus::Available);
    assert_eq!(offers(&out), vec![("c2".to_string(), "a".to_string())]);
    // The wrap-up timer is gone: the next deadline is the offer's expiry.
    assert_eq!(h.r.next_deadline(), Some(15_000));
}

#[test]
fn a_later_close_extends_wrap_up_and_topics_without_one_leave_it_alone() {
    let mut h = Harness::with(wrap_config());
    h.agent(profile("a", &[], 3));
    h.assign("c1", "general", "a");
    h.assign("c2", "general", "a");
    h.assign("c3", "vip", "a");
    h.close("c1");
    h.at(4_000);
    let out = h.r.close(4_000, "c2");
    h.r.check(4_000);
    assert!(out.contains(&Command::WrapUp {
        agent: "a".into(),
        ends_in_ms: 10_000
    }));
    assert!(h.tick(10_000).is_empty(), "extended to 14 s");
    // Closing a topic without wrap-up neither starts nor ends one.
    h.close("c3");
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::WrapUp));
    let out = h.tick(14_000);
    assert_eq!(out, vec![Command::WrapUpEnded { agent: "a".into() }]);
}

#[test]
fn away_agents_do_not_enter_wrap_up_and_a_disconnect_ends_it() {
    let mut h = Harness::with(wrap_config());
    h.agent(profile("a", &[], 2));
    h.agent(profile("b", &[], 2));
    h.assign("c1", "general", "a");
    h.assign("c2", "general", "b");
    h.r.set_away(h.now, "a", Some("lunch".into()));
    h.close("c1");
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::Away));
    h.close("c2");
    assert_eq!(h.r.agent_status("b"), Some(AgentStatus::WrapUp));
    h.r.agent_disconnected(h.now, "b");
    h.r.check(h.now);
    let (status, _) = h.r.agent_connected(h.now, "b");
    assert_eq!(
        status,
        AgentStatus::Available,
        "wrap-up does not outlive a connection"
    );
}

#[test]
fn away_reasons_are_kept_reported_and_cleared() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    let out = h.r.set_away(0, "a", Some("lunch".into()));
    h.r.check(0);
    assert_eq!(
        activities(&out),
        vec![Activity {
            agent: "a".into(),
            status: AgentStatus::Away,
            away_reason: Some("lunch".into()),
            busy: false
        }]
    );
    let stats = h.r.stats(0);
    assert_eq!(stats.agents[0].away_reason.as_deref(), Some("lunch"));
    // Another reason is a change of its own; the same one is not.
    let out = h.r.set_away(0, "a", Some("meeting".into()));
    assert_eq!(activities(&out).len(), 1);
    let out = h.r.set_away(0, "a", Some("meeting".into()));
    assert!(activities(&out).is_empty());
    let out = h.r.set_status(0, "a", AgentStatus::Available);
    h.r.check(0);
    assert_eq!(activities(&out)[0].away_reason, None);
    assert_eq!(h.r.stats(0).agents[0].away_reason, None);
}

#[test]
fn missed_offers_set_away_with_their_reason() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.enqueue("c1", "general");
    h.enqueue("c2", "general");
    h.tick(15_000);
    let out = h.r.tick(30_000);
    h.r.check(30_000);
    assert!(out.contains(&Command::AgentAway { agent: "a".into() }));
    let last = activities(&out).pop().expect("activity");
    assert_eq!(last.away_reason.as_deref(), Some(MISSED_OFFERS));
}

#[test]
fn activity_reports_when_an_agent_starts_and_stops_holding_chats() {
    let mut h = Harness::new();
    h.r.upsert_agent(0, profile("a", &[], 2));
    let out = h.r.set_status(0, "a", AgentStatus::Available);
    assert_eq!(activities(&out).len(), 1);
    let offer = h.r.enqueue(0, new_conv("c1", "general"));
    let (offer_id, _) = offer_of(&offer, "c1").expect("offer");
    let out = h.r.accept(0, "a", &offer_id).expect("accept");
    assert!(activities(&out)[0].busy, "busy with its first chat");
    let offer = h.r.enqueue(0, new_conv("c2", "general"));
    let (offer_id, _) = offer_of(&offer, "c2").expect("offer");
    let out = h.r.accept(0, "a", &offer_id).expect("accept");
    assert!(activities(&out).is_empty(), "a second chat changes nothing");
    assert!(activities(&h.r.close(0, "c1")).is_empty());
    assert!(!activities(&h.r.close(0, "c2"))[0].busy);
    h.r.check(0);
}

fn new_conv(id: &str, topic: &str) -> NewConversation {
    NewConversation {
        id: id.into(),
        topic: topic.into(),
        waiting_since_ms: 0,
        preferred_agent: None,
    }
}

#[test]
fn an_offer_is_explained_with_candidates_and_who_was_passed_over() {
    let mut h = Harness::new();
    h.agent(profile("a", &[("billing", 2)], 2));
    h.agent(profile("b", &[("billing", 5)], 2));
    h.agent(profile("c", &[], 2));
    h.agent(profile("d", &[("billing", 1)], 1));
    h.agent(profile("e", &[("billing", 1)], 1));
    h.r.set_away(0, "e", Some("training".into()));
    h.assign("c0", "billing", "b");
    let out = h.r.enqueue(0, new_conv("c1", "billing"));
    h.r.check(0);
    let decision = audit(&out).pop().expect("a decision");
    assert_eq!(decision.event, DecisionEvent::Offered);
    assert_eq!(decision.rule, Rule::Ranking);
    // a (0/2) and d (0/1) tie on load; a has the higher level. b holds 1/2.
    let ranked: Vec<&str> = decision
        .candidates
        .iter()
        .map(|c| c.agent.as_str())
        .collect();
    assert_eq!(ranked, ["a", "d", "b"]);
    assert_eq!(decision.chosen.as_deref(), Some("a"));
    assert_eq!(decision.required_skills, ["billing"]);
    let passed: Vec<(&str, &PassReason)> = decision
        .passed_over
        .iter()
        .map(|p| (p.agent.as_str(), &p.reason))
        .collect();
    assert_eq!(
        passed,
        [
            (
                "c",
                &PassReason::MissingSkill {
                    missing: vec!["billing".into()]
                }
            ),
            (
                "e",
                &PassReason::Away {
                    away_reason: Some("training".into())
                }
            ),
        ]
    );
    // a declines: the decline is recorded, then the next offer, to d, without a.
    let (offer_id, _) = offer_of(&out, "c1").expect("offer");
    let out = h.r.decline(0, "a", &offer_id).expect("decline");
    let records = audit(&out);
    assert_eq!(
        records[0].event,
        DecisionEvent::Declined { agent: "a".into() }
    );
    assert_eq!(records[1].chosen.as_deref(), Some("d"));
    assert!(records[1]
        .passed_over
        .iter()
        .any(|p| p.agent == "a" && p.reason == PassReason::DeclinedBefore));
}

#[test]
fn waiting_and_widening_are_explained() {
    let mut h = Harness::new();
    h.agent(profile("a", &[("billing", 1)], 1));
    h.assign("c0", "general", "a");
    let out = h.r.enqueue(0, new_conv("c1", "billing_fr"));
    let queued = audit(&out).pop().expect("decision");
    assert_eq!(queued.event, DecisionEvent::Queued);
    assert_eq!(queued.rule, Rule::NoEligibleAgent);
    assert_eq!(
        queued.passed_over[0].reason,
        PassReason::MissingSkill {
            missing: vec!["fr".into()]
        }
    );
    let out = h.r.tick(30_000);
    h.r.check(30_000);
    let widened = audit(&out);
    assert_eq!(
        widened[0].event,
        DecisionEvent::Widened {
            dropped_skills: vec!["fr".into()]
        }
    );
    assert_eq!(widened[0].level, 1);
    assert_eq!(
        widened[1].passed_over[0].reason,
        PassReason::AtCapacity {
            load: 1,
            capacity: 1
        }
    );
}

#[test]
fn the_audit_can_be_turned_off() {
    let mut cfg = config();
    cfg.audit = false;
    let mut h = Harness::with(cfg);
    h.agent(profile("a", &[], 1));
    let out = h.r.enqueue(0, new_conv("c1", "general"));
    assert!(audit(&out).is_empty());
    assert_eq!(offers(&out).len(), 1);
}

#[test]
fn a_topic_is_staffed_only_by_agents_who_could_take_it() {
    let mut h = Harness::with(wrap_config());
    let staffed = |h: &Harness| -> Vec<(String, bool)> { h.r.staffed_topics() };
    assert!(staffed(&h).iter().all(|(_, s)| !s), "nobody yet");
    h.agent(profile("gen", &[], 1));
    let now = staffed(&h);
    assert!(now.contains(&("general".into(), true)));
    assert!(
        now.contains(&("billing".into(), false)),
        "no billing skill: {now:?}"
    );
    // billing_fr drops `fr` after 30 s: a billing agent can take it in the end.
    h.agent(profile("bill", &[("billing", 3)], 1));
    let now = staffed(&h);
    assert!(now.contains(&("billing".into(), true)));
    assert!(now.contains(&("billing_fr".into(), true)));
    assert!(now.contains(&("tier2".into(), false)));
    // In wrap-up after a general chat, the billing agent still counts (back within seconds);
    // away, it does not.
    h.status("gen", AgentStatus::Away);
    h.assign("c1", "general", "bill");
    h.at(1_000);
    let _ = h.r.close(1_000, "c1");
    assert_eq!(h.r.agent_status("bill"), Some(AgentStatus::WrapUp));
    assert!(staffed(&h).contains(&("billing".into(), true)));
    h.status("bill", AgentStatus::Away);
    assert!(staffed(&h).iter().all(|(_, s)| !s), "{:?}", staffed(&h));
}

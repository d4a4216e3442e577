//! Abandonment, failed assignments, restored assignments, stats, offer ids and
//! determinism.

use super::super::TransferFailReason;
use super::*;

#[test]
fn absent_customer_is_abandoned_after_the_idle_timeout() {
    let mut h = Harness::new(); // idle timeout 600 s
    h.enqueue("c1", "general");
    h.at(1_000);
    assert!(h.r.customer_presence(h.now, "c1", false).is_empty());
    h.at(2_000);
    h.r.customer_presence(h.now, "c1", false); // still the first absence that counts
    assert_eq!(h.r.next_deadline(), Some(601_000));
    assert!(h.tick(600_999).is_empty());
    assert_eq!(
        h.tick(601_000),
        vec![Command::Abandon {
            conversation: "c1".into()
        }]
    );
    assert!(h.tick(700_000).is_empty(), "once");
    h.close("c1");
}

#[test]
fn returning_customer_cancels_abandonment() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.assign("c1", "general", "a");
    h.r.customer_presence(0, "c1", false);
    h.at(599_999);
    h.r.customer_presence(h.now, "c1", true);
    assert_eq!(h.r.next_deadline(), None);
    assert!(h.tick(600_000).is_empty());
    // Closing while absent leaves no timer behind.
    h.r.customer_presence(h.now, "c1", false);
    h.close("c1");
    assert_eq!(h.r.next_deadline(), None);
}

#[test]
fn failed_queue_assignment_requeues_with_a_hold() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.assign("c1", "general", "a");
    h.at(100);
    let out = h.r.assignment_failed(h.now, "a", "c1");
    h.r.check(h.now);
    assert!(offers(&out).is_empty(), "held back for a second");
    assert!(h.r.is_queued("c1"));
    assert_eq!(h.r.agent_load("a"), Some((0, 2)));
    // Its re-entry position is held back until 1000 (it was told at 0), the hold ends at 1100.
    assert_eq!(h.r.next_deadline(), Some(1_000));
    assert_eq!(
        h.tick(1_000),
        vec![Command::QueuePosition {
            conversation: "c1".into(),
            position: 1,
            eta_ms: 0
        }],
        "a is free: no wait expected"
    );
    assert_eq!(h.r.next_deadline(), Some(1_100));
    let out = h.tick(1_100);
    assert_eq!(offers(&out), vec![("c1".into(), "a".into())]);
    // Anything that does not match the current owner is ignored.
    assert!(h.r.assignment_failed(h.now, "b", "c1").is_empty());
    assert!(h.r.assignment_failed(h.now, "a", "nope").is_empty());
}

#[test]
fn failed_transfer_assignment_returns_to_the_previous_owner() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[("tier2", 1)], 1));
    h.assign("c1", "general", "a");
    let out =
        h.r.transfer_to_topic(0, "c1", "a", "tier2", None)
            .map(routing_only)
            .expect("escalate");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    h.accept("b", &offer).expect("accept");
    assert_eq!(h.r.topic_of("c1"), Some("tier2"));
    let out = routing_only(h.r.assignment_failed(0, "b", "c1"));
    h.r.check(0);
    assert_eq!(
        out,
        vec![Command::TransferFailed {
            conversation: "c1".into(),
            requested_by: "a".into(),
            reason: TransferFailReason::Unavailable
        }]
    );
    assert_eq!(h.r.agent_of("c1"), Some("a"));
    assert_eq!(h.r.topic_of("c1"), Some("general"));
    assert_eq!(h.r.agent_load("b"), Some((0, 1)));
}

#[test]
fn restored_assignments_count_toward_load() {
    let mut h = Harness::new();
    h.upsert(profile("a", &[], 1));
    h.r.restore_assignment("a", "c1", "billing", 0);
    h.r.restore_assignment("ghost", "c2", "general", 0);
    h.r.restore_assignment("a", "c1", "general", 0); // known: ignored
    h.r.check(0);
    assert_eq!(h.r.agent_load("a"), Some((1, 1)));
    assert_eq!(h.r.topic_of("c1"), Some("billing"));
    h.status("a", AgentStatus::Available);
    assert!(offers(&h.enqueue("c3", "general")).is_empty(), "a is full");
    // The placeholder agent is filled in by a later upsert, and its grace can be started.
    h.upsert(profile("ghost", &[], 2));
    h.status("ghost", AgentStatus::Offline);
    assert_eq!(h.r.next_deadline(), Some(60_000));
    let out = h.tick(60_000);
    assert!(out.contains(&Command::Unassigned {
        agent: "ghost".into(),
        conversation: "c2".into()
    }));
    // Closing a restored conversation (no handle time: unknown start) frees a, which
    // serves the re-queued c2 before c3.
    let out = h.close("c1");
    assert_eq!(offers(&out), vec![("c2".into(), "a".into())]);
}

#[test]
fn stats_per_topic_and_agent() {
    let mut h = Harness::new();
    h.agent(profile("a", &[("billing", 1)], 2));
    h.upsert(profile("b", &[], 1));
    h.assign("c1", "billing", "a");
    h.at(1_000);
    h.enqueue_full("w1", "billing_fr", 200, None);
    h.enqueue("w2", "general"); // offered to a
    let s = h.r.stats(5_000);
    let billing_fr = s
        .topics
        .iter()
        .find(|t| t.name == "billing_fr")
        .expect("topic");
    assert_eq!(
        (
            billing_fr.waiting,
            billing_fr.longest_wait_ms,
            billing_fr.agents_available
        ),
        (1, 4_800, 0)
    );
    let billing = s
        .topics
        .iter()
        .find(|t| t.name == "billing")
        .expect("topic");
    assert_eq!((billing.waiting, billing.agents_available), (0, 1));
    assert_eq!(s.agents.len(), 2);
    assert_eq!(
        (s.agents[0].load, s.agents[0].assigned, s.agents[0].offers),
        (2, 1, 1)
    );
    assert_eq!(s.agents[1].status, AgentStatus::Offline);
    assert_eq!(
        (
            s.totals.waiting,
            s.totals.assigned,
            s.totals.open_offers,
            s.totals.agents_available
        ),
        (2, 1, 1, 1)
    );
    assert!(h.r.online());
    assert_eq!(h.r.queued().collect::<Vec<_>>(), vec!["w2", "w1"]);
}

#[test]
fn offer_ids_are_unique_and_depend_on_the_seed() {
    let run = |seed: u64| {
        let mut h = Harness::with(RouterConfig {
            offer_id_seed: seed,
            ..config()
        });
        h.agent(profile("a", &[], 50));
        (0..40)
            .filter_map(|i| {
                offer_of(&h.enqueue(&format!("c{i}"), "general"), &format!("c{i}")).map(|o| o.0)
            })
            .collect::<Vec<_>>()
    };
    let a = run(1);
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 40);
    assert_eq!(a, run(1), "deterministic");
    assert_ne!(a, run(2));
}

#[test]
fn errors_and_codes_read_well() {
    assert_eq!(RouteError::NotYourOffer.code(), "forbidden");
    assert_eq!(RouteError::UnknownOffer.code(), "not_found");
    assert_eq!(RouteError::TransferPending.code(), "conflict");
    assert_eq!(
        RouteError::AgentUnavailable.to_string(),
        "the agent is not available or is at capacity"
    );
    assert_eq!(super::super::RevokeReason::Withdrawn.as_wire(), "expired");
    assert_eq!(TransferFailReason::Timeout.as_wire(), "timeout");
}

#[test]
fn router_can_move_to_the_hub_task() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Router>();
}

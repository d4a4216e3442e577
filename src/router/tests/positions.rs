//! Queue positions: sent on entry and on change, at most once per interval per
//! conversation, held-back changes sent by a later tick that next_deadline announces.

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
    // Other topics have their own order.
    assert_eq!(
        positions(&h.enqueue("b1", "billing")),
        vec![("b1".into(), 1)]
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

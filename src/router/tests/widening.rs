//! Bullseye widening: a step applies at exactly `after_ms` of waiting, not one ms before.

use super::*;

#[test]
fn widening_applies_at_exactly_after_ms() {
    let mut h = Harness::new();
    h.agent(profile("billing_only", &[("billing", 3)], 1));
    h.at(1_000);
    let out = h.enqueue("c1", "billing_fr");
    assert!(offers(&out).is_empty(), "fr is required at first");
    assert_eq!(h.r.next_deadline(), Some(31_000));
    assert!(offers(&h.tick(30_999)).is_empty(), "one ms before");
    let out = h.tick(31_000);
    assert_eq!(offers(&out), vec![("c1".into(), "billing_only".into())]);
}

#[test]
fn bilingual_agent_still_preferred_before_widening() {
    let mut h = Harness::new();
    h.agent(profile("mono", &[("billing", 5)], 1));
    h.agent(profile("bi", &[("billing", 1), ("fr", 1)], 1));
    let out = h.enqueue("c1", "billing_fr");
    assert_eq!(offers(&out), vec![("c1".into(), "bi".into())]);
}

#[test]
fn late_entry_is_widened_on_enqueue() {
    let mut h = Harness::new();
    h.agent(profile("billing_only", &[("billing", 3)], 1));
    h.at(40_000);
    let out = h.enqueue_full("c1", "billing_fr", 10_000, None); // waited exactly 30 s
    assert_eq!(offers(&out), vec![("c1".into(), "billing_only".into())]);
}

#[test]
fn widened_conversation_is_found_by_a_freed_agent() {
    let mut h = Harness::new();
    h.agent(profile("a", &[("billing", 3)], 1));
    h.assign("busy", "billing", "a");
    h.enqueue("c1", "billing_fr");
    assert!(offers(&h.tick(30_000)).is_empty(), "widened but a is busy");
    let out = h.close("busy");
    assert_eq!(offers(&out), vec![("c1".into(), "a".into())]);
}

#[test]
fn several_steps_apply_in_turn() {
    let mut t = TopicRule::new("deep");
    t.skills = vec!["x".into(), "y".into(), "z".into()];
    t.expand = vec![
        Expand {
            after_ms: 10,
            drop_skills: vec!["z".into()],
        },
        Expand {
            after_ms: 20,
            drop_skills: vec!["y".into()],
        },
    ];
    let mut h = Harness::with(RouterConfig {
        topics: vec![t],
        default_topic: "deep".into(),
        ..RouterConfig::default()
    });
    h.agent(profile("xy", &[("x", 1), ("y", 1)], 1));
    h.agent(profile("x", &[("x", 1)], 1));
    h.enqueue("c1", "deep");
    h.enqueue("c2", "deep");
    let out = h.tick(10);
    assert_eq!(offers(&out), vec![("c1".into(), "xy".into())]);
    assert_eq!(h.r.next_deadline(), Some(20));
    let out = h.tick(20);
    assert_eq!(offers(&out), vec![("c2".into(), "x".into())]);
}

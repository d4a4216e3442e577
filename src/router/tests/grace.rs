//! Agents going offline, coming back within the grace period, losing their
//! conversations when it runs out, and being removed.

use super::super::RevokeReason;
use super::*;

#[test]
fn coming_back_within_grace_keeps_conversations() {
    let mut h = Harness::new(); // grace 60 s
    h.agent(profile("a", &[], 2));
    h.assign("c1", "general", "a");
    h.at(1_000);
    assert!(decisions(&h.status("a", AgentStatus::Offline)).is_empty());
    assert_eq!(h.r.next_deadline(), Some(61_000));
    h.at(60_999);
    h.status("a", AgentStatus::Available);
    assert_eq!(h.r.next_deadline(), None, "grace cancelled");
    assert!(h.tick(61_000).is_empty());
    assert_eq!(h.r.agent_of("c1"), Some("a"));
}

#[test]
fn away_also_cancels_grace() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.assign("c1", "general", "a");
    h.status("a", AgentStatus::Offline);
    h.at(30_000);
    h.status("a", AgentStatus::Away);
    assert!(h.tick(60_000).is_empty());
    assert_eq!(h.r.agent_of("c1"), Some("a"));
}

#[test]
fn grace_expiry_unassigns_and_requeues_at_the_front() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.at(100);
    h.assign("c1", "general", "a");
    h.at(200);
    h.assign("c2", "general", "a");
    h.at(300);
    h.enqueue_full("waiting", "general", 0, None); // older than c1 and c2, but new
    h.status("a", AgentStatus::Offline);
    assert!(decisions(&h.tick(60_299)).is_empty(), "one ms before");
    let out = h.tick(60_300);
    assert_eq!(
        decisions(&out),
        vec![
            Command::Unassigned {
                agent: "a".into(),
                conversation: "c1".into()
            },
            Command::Unassigned {
                agent: "a".into(),
                conversation: "c2".into()
            },
        ]
    );
    assert_eq!(h.r.agent_load("a"), Some((0, 2)));
    // A free agent serves the re-queued ones first, oldest first, then the new one.
    let out = h.agent(profile("b", &[], 3));
    assert_eq!(
        offers(&out),
        vec![
            ("c1".into(), "b".into()),
            ("c2".into(), "b".into()),
            ("waiting".into(), "b".into())
        ]
    );
}

#[test]
fn requeued_conversation_is_offered_elsewhere_at_once() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    h.assign("c1", "general", "a");
    h.status("a", AgentStatus::Offline);
    let out = h.tick(60_000);
    assert_eq!(offers(&out), vec![("c1".into(), "b".into())]);
}

#[test]
fn offline_and_away_withdraw_open_offers_and_reoffer() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 1));
    h.agent(profile("b", &[], 1));
    let out = h.enqueue("c1", "general");
    let (offer, _) = offer_of(&out, "c1").expect("offer");
    let out = h.status("a", AgentStatus::Offline);
    assert_eq!(
        out[0],
        Command::Revoke {
            offer_id: offer,
            agent: "a".into(),
            conversation: "c1".into(),
            reason: RevokeReason::Withdrawn
        }
    );
    assert_eq!(offers(&out), vec![("c1".into(), "b".into())]);
    assert_eq!(
        h.r.next_deadline(),
        Some(15_000),
        "no grace: a held no conversation"
    );

    let out = h.status("b", AgentStatus::Away);
    assert!(matches!(
        out[0],
        Command::Revoke {
            reason: RevokeReason::Withdrawn,
            ..
        }
    ));
    // Withdrawal does not exclude: a back online gets it.
    let out = h.status("a", AgentStatus::Available);
    assert_eq!(offers(&out), vec![("c1".into(), "a".into())]);
}

#[test]
fn removing_an_agent_unassigns_and_revokes() {
    let mut h = Harness::new();
    h.agent(profile("a", &[], 2));
    h.assign("c1", "general", "a");
    let out = h.enqueue("c2", "general");
    let (offer, _) = offer_of(&out, "c2").expect("offer");
    h.status("a", AgentStatus::Offline); // revokes c2's offer, starts grace
    h.status("a", AgentStatus::Available); // c2 offered again
    let (offer2, _) =
        h.r.open_offer("c2")
            .map(|(o, a)| (o.to_owned(), a.to_owned()))
            .expect("offer");
    assert_ne!(offer, offer2);
    let out = h.remove("a");
    assert_eq!(
        decisions(&out),
        vec![
            Command::Revoke {
                offer_id: offer2,
                agent: "a".into(),
                conversation: "c2".into(),
                reason: RevokeReason::Withdrawn
            },
            Command::Unassigned {
                agent: "a".into(),
                conversation: "c1".into()
            },
        ]
    );
    assert_eq!(h.r.agent_load("a"), None);
    assert!(h.r.is_queued("c1") && h.r.is_queued("c2"));
    assert!(
        !h.tick(60_000)
            .iter()
            .any(|c| matches!(c, Command::Unassigned { .. })),
        "no grace timer left behind"
    );
    assert!(h.remove("a").is_empty());
}

#[test]
fn a_reconnecting_agent_takes_back_the_status_it_had() {
    let mut h = Harness::new();
    h.upsert(profile("a", &[], 2));
    // Never online before: it comes in away, and a second tab changes nothing.
    assert_eq!(h.r.agent_connected(0, "a").0, AgentStatus::Away);
    assert_eq!(h.r.agent_connected(0, "a").0, AgentStatus::Away);
    h.status("a", AgentStatus::Available);
    assert_eq!(h.r.agent_connected(0, "a").0, AgentStatus::Available);
    h.assign("c1", "general", "a");
    h.at(1_000);
    h.r.agent_disconnected(h.now, "a");
    assert_eq!(h.r.agent_status("a"), Some(AgentStatus::Offline));
    assert_eq!(h.r.next_deadline(), Some(61_000), "grace runs");
    h.at(5_000);
    let (status, _) = h.r.agent_connected(h.now, "a");
    assert_eq!(status, AgentStatus::Available, "back as it left");
    assert_eq!(h.r.next_deadline(), None, "grace cancelled");
    // Away before the drop: away after it, even past the grace period.
    h.status("a", AgentStatus::Away);
    h.r.agent_disconnected(h.now, "a");
    h.at(200_000);
    h.tick(200_000);
    assert_eq!(h.r.agent_connected(h.now, "a").0, AgentStatus::Away);
}

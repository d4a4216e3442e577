//! `Reports` on a real `redis-server`, alone and as a one-node cluster (which refuses
//! any script or pipeline spanning two slots): a ticket and its rating count once
//! however often they are recorded, and agent state time is split across hours.

use std::time::Duration;

use super::{
    facts::tests::{agent, closed, event, message, ticket},
    *,
};
use crate::{
    protocol::{EventBody, Role},
    store::{cluster_tests, AgentRecord},
    tickets::Rating,
};

const MIN: u64 = 60_000;

async fn reports(port: u16) -> (Store, Reports) {
    let store = Store::connect(&format!("redis://127.0.0.1:{port}"), Duration::from_secs(5))
        .await
        .expect("connect");
    let mut config = Config::default();
    config.topics[0].sla.wait_ms = Some(30_000);
    store
        .create_agent(&AgentRecord {
            id: "ann".into(),
            name: "Ann".into(),
            skills: Default::default(),
            capacity: 2,
            supervisor: false,
            auto_accept: false,
            token_hash: "x".into(),
        })
        .await
        .expect("agent");
    let reports = Reports::new(store.clone(), &config);
    (store, reports)
}

/// A `general` chat opened at `opened`, answered by ann after 20 s, rated 4.
fn rated_chat(id: &str, opened: u64) -> Ticket {
    let mut t = ticket(
        vec![
            message(Role::Customer, opened),
            event(
                opened + 20_000,
                EventBody::Joined {
                    agent: agent("ann"),
                },
            ),
            message(Role::Agent, opened + 25_000),
            closed(opened + 5 * MIN),
        ],
        opened + 5 * MIN,
    );
    t.ticket_id = id.into();
    t.topic = "general".into();
    t.opened_at = opened;
    t.rating = Some(Rating {
        score: 4,
        comment: None,
    });
    t
}

async fn exactly_once_and_state_time(port: u16) {
    let (_store, reports) = reports(port).await;
    let now = crate::clock::now_ms();
    let h = hour_of(now) - 5 * HOUR_MS;
    let chat = rated_chat("t_1", h + 10 * MIN);
    for _ in 0..2 {
        reports.record_ticket(&chat).await.expect("record");
        reports.record_rating(&chat).await.expect("rate");
    }
    let query = ReportQuery::new(h, h + 4 * HOUR_MS, BucketSize::Hour, GroupBy::Topic).unwrap();
    let report = reports.report(&query, now).await.expect("report");
    let general = &report.buckets[0].groups[0];
    assert_eq!(general.group, "general");
    assert_eq!(general.chats.started, 1);
    assert_eq!(general.chats.answered, 1);
    assert_eq!(general.wait_ms.count, 1);
    let p50 = general.wait_ms.p50.expect("a wait") as f64;
    assert!((p50 - 20_000.0).abs() <= 20_000.0 * histogram::RELATIVE_PRECISION);
    assert_eq!(general.wait_ms.mean, Some(20_000.0));
    assert_eq!(general.sla.wait.met, 1);
    let csat = general.csat.as_ref().expect("a CSAT topic");
    assert_eq!((csat.responses, csat.mean), (1, Some(4.0)));
    assert_eq!(report.totals[0].chats.started, 1);

    // ann: available from h+30m, busy from h+50m, away (lunch) at h+1h20m, offline at
    // h+2h10m; every sample sent twice.
    let sample = |status: AgentStatus, reason: Option<&str>, busy: bool| AgentStateSample {
        status,
        reason: reason.map(String::from),
        busy,
    };
    for (s, at) in [
        (sample(AgentStatus::Available, None, false), h + 30 * MIN),
        (sample(AgentStatus::Available, None, false), h + 40 * MIN),
        (sample(AgentStatus::Available, None, true), h + 50 * MIN),
        (
            sample(AgentStatus::Away, Some("lunch"), false),
            h + 80 * MIN,
        ),
        (sample(AgentStatus::Offline, None, false), h + 130 * MIN),
    ] {
        reports
            .record_agent_state("ann", s.clone(), at)
            .await
            .expect("state");
        reports
            .record_agent_state("ann", s, at)
            .await
            .expect("again");
    }
    // An older sample changes nothing.
    reports
        .record_agent_state(
            "ann",
            sample(AgentStatus::Available, None, false),
            h + 100 * MIN,
        )
        .await
        .expect("late sample");
    let query = ReportQuery::new(h, h + 4 * HOUR_MS, BucketSize::Hour, GroupBy::Agent).unwrap();
    let report = reports.report(&query, now).await.expect("report");
    assert_eq!(report.groups, vec!["ann".to_string()]);
    let time = |b: usize| report.buckets[b].groups[0].agent_time.clone().unwrap();
    assert_eq!(
        (time(0).available_ms, time(0).busy_ms),
        (30 * MIN, 10 * MIN)
    );
    assert_eq!(
        (time(1).available_ms, time(1).busy_ms),
        (20 * MIN, 20 * MIN)
    );
    assert_eq!((time(1).away_ms, time(2).away_ms), (40 * MIN, 10 * MIN));
    assert_eq!(time(2).away_by_reason.get("lunch"), Some(&(10 * MIN)));
    assert_eq!(time(3).available_ms + time(3).away_ms, 0);
    let ann = &report.totals[0];
    assert_eq!(ann.chats.handled, 1);
    assert_eq!(ann.handle_ms.mean, Some((5 * MIN - 20_000) as f64));
    assert_eq!(ann.csat.as_ref().map(|c| c.responses), Some(1));
    let total = ann.agent_time.as_ref().unwrap();
    assert_eq!((total.available_ms, total.busy_ms), (50 * MIN, 30 * MIN));
    assert_eq!(total.occupancy_pct, Some(60.0));
    assert_eq!(total.away_ms, 50 * MIN);
}

#[tokio::test]
async fn on_one_server() {
    let server = cluster_tests::start(false).await;
    exactly_once_and_state_time(server.port).await;
}

#[tokio::test]
async fn on_a_cluster() {
    let master = cluster_tests::lone_master().await;
    exactly_once_and_state_time(master.port).await;
}

#[test]
fn state_time_is_split_at_hour_edges() {
    let old = StateRecord {
        status: AgentStatus::Away,
        reason: Some("break".into()),
        busy: false,
        since: 3 * HOUR_MS - 5 * MIN,
    };
    let spans = spans_of(&old, 5 * HOUR_MS + MIN, 400 * 24 * HOUR_MS);
    let minutes: Vec<(u64, i64)> = spans
        .iter()
        .map(|s| (s.hour / HOUR_MS, s.increments[0].1 / MIN as i64))
        .collect();
    assert_eq!(minutes, vec![(2, 5), (3, 60), (4, 60), (5, 1)]);
    assert_eq!(spans[0].increments[1].0, "t:away:break");
    // Only what is still kept is added.
    let kept: i64 = spans_of(&old, 5 * HOUR_MS + MIN, 30 * MIN)
        .iter()
        .map(|s| s.increments[0].1)
        .sum();
    assert_eq!(kept, 30 * MIN as i64);
}

#[tokio::test]
async fn a_report_too_large_is_refused_before_any_read() {
    let server = cluster_tests::start(false).await;
    let (store, _) = reports(server.port).await;
    let mut config = Config::default();
    let topic = config.topics[0].clone();
    config.topics = (0..6)
        .map(|i| crate::config::TopicConfig {
            name: format!("t{i}"),
            default: i == 0,
            ..topic.clone()
        })
        .collect();
    let reports = Reports::new(store, &config);
    let now = crate::clock::now_ms();
    let from = hour_of(now) - 9_999 * HOUR_MS;
    let query = ReportQuery::new(
        from,
        hour_of(now) + HOUR_MS,
        BucketSize::Hour,
        GroupBy::Topic,
    )
    .expect("10,000 buckets");
    let refused = reports.report(&query, now).await;
    assert!(
        matches!(refused, Err(crate::error::Error::BadRequest(_))),
        "{refused:?}"
    );
}

/// Records stored by earlier versions spell the status as the protocol does (they were
/// written from a string); the enum reads and writes the same spelling.
#[test]
fn a_stored_status_keeps_the_protocols_spelling() {
    for (status, text) in [
        (AgentStatus::Available, "available"),
        (AgentStatus::Away, "away"),
        (AgentStatus::WrapUp, "wrap_up"),
        (AgentStatus::Offline, "offline"),
    ] {
        let stored = format!(r#"{{"status":"{text}","busy":false,"since":5}}"#);
        let record: StateRecord = serde_json::from_str(&stored).expect("an earlier record");
        assert_eq!(record.status, status);
        assert_eq!(serde_json::to_string(&record).expect("json"), stored);
    }
}

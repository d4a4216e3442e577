//! Reports (issue 17) end to end: a scripted day of known tickets, ratings and agent
//! states is recorded through the library's `Reports` into the hub's Redis (explicit
//! timestamps over one UTC day two days ago, every record sent twice), then
//! `GET /v1/reports` of the real hub is checked figure by figure: hour, day and week
//! buckets, by topic and by agent, JSON and CSV; counts and means exact, percentiles
//! within the stated precision. Plus the 401/403/400 cases, and one real chat over
//! WebSockets (start, accept, message, close, rate) showing up in the current hour.

mod common;
mod reports_data;

use std::time::Duration;

use common::cluster::RedisCluster;
use common::extra::{setup_hub, HubConfig};
use common::*;
use reports_data::{scripted_day, scripted_states, DAY, HOUR, MIN};
use serde_json::json;
use switchboard::{
    config::Config,
    reports::{time, AgentStateSample, Figures, Report, Reports},
    store::Store,
};

fn hub_config() -> HubConfig {
    HubConfig::new(TestConfig::default())
        .topic_key(
            "general",
            "sla",
            "{ wait_ms = 30000, first_response_ms = 60000 }",
        )
        .topic_key("billing", "sla", "{ wait_ms = 60000 }")
        .topic_key("billing", "survey", "\"nps\"")
}

/// Within the stated precision of the true value.
fn near(shown: Option<u64>, truth: u64, report: &Report) {
    let shown = shown.unwrap_or_else(|| panic!("no percentile where {truth} was expected"));
    let allowed = truth as f64 * report.precision.percentile_relative + 0.5;
    assert!(
        (shown as f64 - truth as f64).abs() <= allowed,
        "{shown} is not within precision of {truth}"
    );
}

fn mean(shown: Option<f64>, truth: f64) {
    let shown = shown.unwrap_or_else(|| panic!("no mean where {truth} was expected"));
    assert!(
        (shown - truth).abs() < 1e-6,
        "mean {shown}, expected {truth}"
    );
}

async fn get_report(hub: &Hub, query: &str) -> Report {
    let (status, text) = hub
        .http(
            "GET",
            &format!("/v1/reports?{query}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "GET /v1/reports?{query}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report JSON ({e}): {text}"))
}

fn group<'a>(figures: &'a [Figures], name: &str) -> &'a Figures {
    figures
        .iter()
        .find(|f| f.group == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

fn check_general(g: &Figures, r: &Report) {
    let c = &g.chats;
    assert_eq!((c.started, c.answered, c.abandoned_in_queue), (5, 3, 2));
    assert_eq!(
        (c.transferred, c.escalated, c.handled, c.owned_at_close),
        (1, 0, 4, 3)
    );
    assert_eq!(g.wait_ms.count, 3);
    near(g.wait_ms.p50, 10_000, r);
    near(g.wait_ms.p90, 50_000, r);
    mean(g.wait_ms.mean, 65_000.0 / 3.0);
    near(g.first_response_ms.p50, 40_000, r);
    near(g.first_response_ms.p90, 70_000, r);
    mean(g.first_response_ms.mean, 118_000.0 / 3.0);
    near(g.handle_ms.p50, 355_000, r);
    near(g.handle_ms.p90, 590_000, r);
    mean(g.handle_ms.mean, 1_195_000.0 / 3.0);
    assert_eq!(g.resolution_ms.count, 5);
    near(g.resolution_ms.p50, 300_000, r);
    near(g.resolution_ms.p90, 600_000, r);
    mean(g.resolution_ms.mean, 280_000.0);
    assert_eq!((g.sla.wait.met, g.sla.wait.missed), (2, 2));
    assert_eq!(g.sla.wait.pct_met, Some(50.0));
    assert_eq!(
        (g.sla.first_response.met, g.sla.first_response.missed),
        (2, 2)
    );
    let csat = g.csat.as_ref().expect("general is a CSAT topic");
    assert_eq!(csat.responses, 3);
    mean(csat.mean, 4.0);
    mean(csat.response_rate_pct, 60.0);
    let dist: Vec<u64> = (1..=5).map(|s| csat.distribution[&s.to_string()]).collect();
    assert_eq!(dist, vec![0, 0, 1, 1, 1]);
    assert!(g.nps.is_none());
}

fn check_billing(b: &Figures, r: &Report) {
    let c = &b.chats;
    assert_eq!((c.started, c.answered, c.abandoned_in_queue), (2, 2, 0));
    assert_eq!((c.transferred, c.escalated, c.handled), (0, 1, 3));
    near(b.wait_ms.p50, 30_000, r);
    near(b.wait_ms.p90, 90_000, r);
    mean(b.wait_ms.mean, 60_000.0);
    assert_eq!(b.first_response_ms.count, 1);
    mean(b.handle_ms.mean, 360_000.0);
    mean(b.resolution_ms.mean, 420_000.0);
    assert_eq!((b.sla.wait.met, b.sla.wait.missed), (1, 1));
    assert_eq!(b.sla.first_response.pct_met, None);
    assert!(b.csat.is_none());
    let nps = b.nps.as_ref().expect("billing is an NPS topic");
    assert_eq!(
        (nps.responses, nps.promoters, nps.passives, nps.detractors),
        (2, 1, 0, 1)
    );
    mean(nps.score, 0.0);
    mean(nps.mean, 7.5);
    mean(nps.response_rate_pct, 100.0);
}

/// Records the scripted day (two days ago, every record twice) through the library,
/// into the Redis at `redis_url`; returns the day's start. The hub must know ann and bob.
async fn record_scripted_day(redis_url: &str) -> u64 {
    let lib_config = Config::from_toml(&hub_config().to_toml(), redis_url).expect("config");
    let store = Store::connect(redis_url, Duration::from_secs(10))
        .await
        .expect("store");
    let reports = Reports::new(store, &lib_config);
    let now = now_ms();
    let d = now - now % DAY - 2 * DAY;
    for _ in 0..2 {
        for ticket in scripted_day(d) {
            reports.record_ticket(&ticket).await.expect("ticket");
            reports.record_rating(&ticket).await.expect("rating");
        }
        for (agent, status, reason, busy, at) in scripted_states(d) {
            let sample = AgentStateSample {
                status,
                reason: reason.map(String::from),
                busy,
            };
            reports
                .record_agent_state(agent, sample, at)
                .await
                .expect("state");
        }
    }
    d
}

fn day_query(d: u64, bucket: &str, by: &str) -> String {
    format!("from={d}&to={}&bucket={bucket}&by={by}", d + DAY)
}

/// The scripted day as the hub reports it: by topic and agent, hour, day and week.
async fn check_scripted_day(hub: &Hub, d: u64) {
    let day = |bucket: &str, by: &str| day_query(d, bucket, by);
    // By topic, one day bucket.
    let r = get_report(hub, &day("day", "topic")).await;
    assert_eq!((r.from, r.to, r.buckets.len()), (d, d + DAY, 1));
    assert_eq!(r.groups, vec!["general", "billing", "billing_fr", "urgent"]);
    check_general(group(&r.buckets[0].groups, "general"), &r);
    check_billing(group(&r.buckets[0].groups, "billing"), &r);
    check_general(group(&r.totals, "general"), &r);
    assert_eq!(group(&r.totals, "urgent").chats.started, 0);
    assert_eq!(group(&r.totals, "urgent").wait_ms.p50, None);

    // Hour buckets: each chat in the hour it opened.
    let r = get_report(hub, &day("hour", "topic")).await;
    assert_eq!(r.buckets.len(), 24);
    let started = |hour: usize, topic: &str| group(&r.buckets[hour].groups, topic).chats.started;
    assert_eq!(
        (
            started(9, "general"),
            started(14, "general"),
            started(20, "general")
        ),
        (2, 2, 1)
    );
    assert_eq!(
        (
            started(10, "billing"),
            started(23, "billing"),
            started(11, "billing")
        ),
        (1, 1, 0)
    );
    let all: u64 = r
        .buckets
        .iter()
        .flat_map(|b| &b.groups)
        .map(|f| f.chats.started)
        .sum();
    assert_eq!(all, 7, "the offline message is not a chat");
    assert_eq!(r.buckets[9].start, d + 9 * HOUR);
    assert_eq!(r.buckets[9].end_iso, time::format_iso(d + 10 * HOUR));
    check_general(group(&r.totals, "general"), &r);

    // Week buckets over eight days: only the week holding the day has chats.
    let r = get_report(
        hub,
        &format!("from={}&to={}&bucket=week", d - 7 * DAY, d + DAY),
    )
    .await;
    let with_chats: Vec<_> = r
        .buckets
        .iter()
        .filter(|b| group(&b.groups, "general").chats.started > 0)
        .collect();
    assert_eq!(with_chats.len(), 1);
    let monday = d - ((d / DAY + 3) % 7) * DAY;
    assert_eq!(with_chats[0].start, monday.max(r.from));
    check_general(group(&with_chats[0].groups, "general"), &r);

    // By agent.
    let r = get_report(hub, &day("day", "agent")).await;
    assert_eq!(r.groups, vec!["ann", "bob"]);
    let ann = group(&r.totals, "ann");
    assert_eq!(
        (
            ann.chats.handled,
            ann.chats.transferred,
            ann.chats.owned_at_close
        ),
        (4, 1, 3)
    );
    mean(ann.handle_ms.mean, 240_000.0);
    assert_eq!(ann.csat.as_ref().map(|c| c.responses), Some(2));
    mean(ann.csat.as_ref().and_then(|c| c.mean), 4.0);
    mean(ann.nps.as_ref().and_then(|n| n.score), 100.0);
    let t = ann.agent_time.as_ref().expect("agent time");
    assert_eq!(
        (t.available_ms, t.busy_ms, t.away_ms, t.wrap_up_ms),
        (8 * HOUR, 90 * MIN, HOUR, 15 * MIN)
    );
    mean(t.occupancy_pct, 18.75);
    assert_eq!(t.away_by_reason.get("lunch"), Some(&HOUR));
    let bob = group(&r.totals, "bob");
    assert_eq!(
        (
            bob.chats.handled,
            bob.chats.escalated,
            bob.chats.owned_at_close
        ),
        (3, 1, 2)
    );
    mean(bob.handle_ms.mean, 895_000.0 / 3.0);
    mean(bob.nps.as_ref().and_then(|n| n.score), -100.0);
    let t = bob.agent_time.as_ref().expect("agent time");
    assert_eq!(
        (t.available_ms, t.busy_ms, t.away_ms),
        (45 * MIN, 45 * MIN, 15 * MIN)
    );
    mean(t.occupancy_pct, 100.0);
    let r = get_report(hub, &day("hour", "agent")).await;
    let ann_at = |h: usize| {
        group(&r.buckets[h].groups, "ann")
            .agent_time
            .clone()
            .unwrap()
    };
    assert_eq!((ann_at(9).available_ms, ann_at(9).busy_ms), (HOUR, HOUR));
    assert_eq!(
        (ann_at(10).available_ms, ann_at(10).busy_ms),
        (HOUR, 30 * MIN)
    );
    assert_eq!(
        (
            ann_at(12).away_ms,
            ann_at(17).wrap_up_ms,
            ann_at(18).available_ms
        ),
        (HOUR, 15 * MIN, 0)
    );
}

#[tokio::test]
async fn a_scripted_day_reported_by_the_hub() {
    let (redis, hub) = setup_hub(&hub_config()).await;
    hub.create_agent("ann", "Ann", &[], 3, false).await;
    let bob_token = hub.create_agent("bob", "Bob", &[], 3, false).await;
    let d = record_scripted_day(&redis.url()).await;
    check_scripted_day(&hub, d).await;
    let day = |bucket: &str, by: &str| day_query(d, bucket, by);

    // CSV: the same figures, one line per bucket and group, then the totals.
    let response = reqwest::Client::new()
        .get(hub.http_url(&format!("/v1/reports?{}", day("day", "topic"))))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = response.text().await.expect("csv body");
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(lines.len(), 1 + 4 + 4, "{text}");
    let col = |name: &str| {
        lines[0]
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let general = lines
        .iter()
        .find(|l| l[0] == "total" && l[col("group")] == "general")
        .expect("general total");
    assert_eq!(general[col("started")], "5");
    assert_eq!(general[col("abandoned_in_queue")], "2");
    assert_eq!(general[col("resolution_ms_mean")], "280000.000");
    assert_eq!(general[col("sla_wait_pct_met")], "50.000");
    assert_eq!(general[col("csat_mean")], "4.000");
    assert_eq!(general[col("csat_5")], "1");
    assert_eq!(general[col("nps_score")], "");
    let billing = lines
        .iter()
        .find(|l| l[0] == "bucket" && l[col("group")] == "billing")
        .expect("billing bucket");
    assert_eq!(billing[col("nps_score")], "0.000");
    assert_eq!(billing[col("bucket_start")], time::format_iso(d));

    // Who may ask, and what is refused.
    let (status, _) = hub.http("GET", "/v1/reports", None, None).await;
    assert_eq!(status, 401);
    let (status, body) = hub
        .http_json("GET", "/v1/reports", Some(&bob_token), None)
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let lead = hub.create_supervisor("lead", "Lead").await;
    let (status, _) = hub.http("GET", "/v1/reports", Some(&lead), None).await;
    assert_eq!(status, 200);
    for bad in [
        "bucket=month".to_string(),
        "by=team".into(),
        "from=yesterday".into(),
        format!("from={}&to={d}", d + DAY),
        "from=2024-01-01&to=2026-01-01&bucket=hour".into(),
    ] {
        let (status, body) = hub
            .http_json(
                "GET",
                &format!("/v1/reports?{bad}"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }
}

/// A chat through the hub (start, accept, message, close, rate 5) shows in the report
/// of the current hour, for its topic and its agent.
async fn a_rated_chat_is_counted(hub: &Hub) {
    let mut chat = chat(hub).await;
    let id = chat.conversation_id.clone();
    chat.agent.say(&id, "Sure, let me look").await;
    chat.agent
        .ok(json!({"type": "close", "conversation_id": id, "resolution": "resolved"}))
        .await;
    chat.customer.wait_event(&id, "closed").await;
    chat.customer
        .ok(json!({"type": "rate", "conversation_id": id, "score": 5}))
        .await;
    let now = now_ms();
    let query = format!("from={}&to={}&bucket=hour", now - HOUR, now + HOUR);
    let r = eventually("the chat and its rating in the report", WAIT, || async {
        let r = get_report(hub, &query).await;
        let general = group(&r.totals, "general");
        let rated = general.csat.as_ref().is_some_and(|c| c.responses == 1);
        (general.chats.started == 1 && rated).then_some(r)
    })
    .await;
    let general = group(&r.totals, "general");
    assert_eq!(
        (general.chats.answered, general.chats.abandoned_in_queue),
        (1, 0)
    );
    assert_eq!(general.first_response_ms.count, 1);
    assert_eq!(general.csat.as_ref().map(|c| c.distribution["5"]), Some(1));
    let r = get_report(hub, &format!("{query}&by=agent")).await;
    let alice = group(&r.totals, "alice");
    assert_eq!((alice.chats.handled, alice.chats.owned_at_close), (1, 1));
    assert_eq!(alice.csat.as_ref().map(|c| c.responses), Some(1));
}

#[tokio::test]
async fn a_real_chat_shows_in_the_current_hour() {
    let (_redis, hub) = setup_hub(&hub_config()).await;
    a_rated_chat_is_counted(&hub).await;
}

/// On a Redis Cluster of three masters: the counting scripts keep to one slot each, and
/// a report's reads (a pipeline per hour or per agent) find every hour on its master.
#[tokio::test]
async fn on_a_cluster_chats_count_and_reports_read_every_master() {
    let cluster = RedisCluster::start(3, 0).await;
    let hub = Hub::start_url(&cluster.url_list(), &hub_config().to_toml()).await;
    hub.create_agent("ann", "Ann", &[], 3, false).await;
    hub.create_agent("bob", "Bob", &[], 3, false).await;
    let d = record_scripted_day(&cluster.url_list()).await;
    check_scripted_day(&hub, d).await;
    a_rated_chat_is_counted(&hub).await;
}

/// A hub killed after storing a ticket, before or after counting it: the restarted hub
/// flushes again, and the chat still counts once.
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (the test command enables it)"
)]
#[tokio::test]
async fn a_flush_repeated_after_a_crash_counts_once() {
    for point in ["after_ticket_stored", "after_ticket_counted"] {
        let redis = RedisServer::start().await;
        let toml = hub_config().to_toml();
        let mut hub = Hub::start_with_env(&redis, &toml, &[("SWITCHBOARD_FAILPOINT", point)]).await;
        let mut chat = chat(&hub).await;
        let id = chat.conversation_id.clone();
        chat.agent.say(&id, "Done").await;
        chat.agent
            .send(json!({"type": "close", "conversation_id": id, "resolution": "resolved"}))
            .await;
        let status = hub.wait_exited(WAIT).await;
        assert!(
            !status.success(),
            "{point}: the hub should have aborted: {status}"
        );
        assert!(
            hub.output().contains("failpoint"),
            "{point}: {}",
            hub.log_tail(20)
        );
        hub.restart().await;
        let store = Store::connect(&redis.url(), Duration::from_secs(10))
            .await
            .expect("store");
        eventually(
            &format!("{point}: the repeated flush"),
            Duration::from_secs(12),
            || async {
                let record = store.conversation(&id).await.ok().flatten()?;
                record.flushed.then_some(())
            },
        )
        .await;
        let now = now_ms();
        let query = format!("from={}&to={}", now - HOUR, now + HOUR);
        let r = get_report(&hub, &query).await;
        let general = group(&r.totals, "general");
        assert_eq!(
            (general.chats.started, general.chats.answered),
            (1, 1),
            "{point}"
        );
        assert_eq!(general.first_response_ms.count, 1, "{point}");
        let r = get_report(&hub, &format!("{query}&by=agent")).await;
        assert_eq!(group(&r.totals, "alice").chats.handled, 1, "{point}");
    }
}

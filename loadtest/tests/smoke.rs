//! One short smoke run against the real hub: a private `redis-server` on a free port in a
//! temp dir, the `switchboard` binary on `127.0.0.1:0`, then a tiny scenario (with
//! transfers and reconnects) through the library API. It must finish with zero loss, and
//! its floor and durable floor (on the hub's Redis) must deliver everything too.
//!
//! The hub binary is taken from the workspace target dir (`$CARGO_TARGET_DIR`, else
//! `<workspace>/target`), `debug/switchboard`. `cargo test --workspace` builds it before
//! running tests; when it is missing (e.g. `cargo test -p switchboard-loadtest` on a fresh
//! checkout) the test builds it with `cargo build -p switchboard --bin switchboard`.

mod common;

use std::time::Duration;

use common::{load_config, start_hub, start_redis, ADMIN_TOKEN};
use switchboard_loadtest::{floor::durable, run, HubTarget, RunOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_against_the_real_hub_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (redis, redis_port) = start_redis(dir.path());
    let redis_url = format!("redis://127.0.0.1:{redis_port}/0");
    let (_hub, url, pid) = start_hub(dir.path(), redis_port, &load_config());

    let scenario = Scenario {
        customers: 6,
        agents: 3,
        capacity: 3,
        messages: 6,
        rate: 20.0,
        think_ms: 5,
        ramp_up_s: 0.3,
        transfer_ratio: 0.5,
        reconnect_ratio: 0.5,
        topics: vec![
            switchboard_loadtest::scenario::parse_topic("general:2").expect("topic"),
            switchboard_loadtest::scenario::parse_topic("billing:1:billing").expect("topic"),
        ],
        seed: 7,
        ..Scenario::default()
    };
    let target = HubTarget {
        hub: url,
        admin_token: ADMIN_TOKEN.into(),
        hub_pid: Some(pid),
        redis_pid: Some(redis.0.id()),
        redis_url: Some(redis_url.clone()),
        floor_redis: None,
    };
    let options = RunOptions {
        floor: true,
        progress: false,
        run_id: Some("smoke".into()),
        ..RunOptions::default()
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), run(&scenario, &target, &options))
        .await
        .expect("the smoke run finishes within 2 minutes")
        .expect("the smoke run completes");
    let summary = outcome.report.text_summary();
    assert!(outcome.verdict.is_clean(), "loss or duplicates:\n{summary}");
    let hub = outcome.report.hub.as_ref().expect("hub figures");
    assert_eq!(hub.conversations.started, 6, "{summary}");
    assert_eq!(hub.conversations.joined, 6, "{summary}");
    assert_eq!(hub.conversations.closed, 6, "{summary}");
    assert_eq!(hub.replies_missing, 0, "{summary}");
    let tickets = hub
        .tickets
        .as_ref()
        .expect("the run waited for the tickets");
    assert_eq!((tickets.expected, tickets.flushed), (6, 6), "{summary}");
    assert!(hub.client_failures.is_empty(), "{summary}");
    // 6 chats × 7 customer messages, each with a reply: 84 acknowledged messages.
    assert_eq!(outcome.verdict.messages_checked, 84, "{summary}");
    // Every conversation was checked, and its records freed, as the chats ended: none
    // waited for the agents to stop, nor for the end of the run.
    assert_eq!(outcome.unverified_at_agent_stop, 0, "{summary}");
    assert_eq!(
        outcome.verdict.verified_early, outcome.verdict.conversations,
        "{summary}"
    );
    assert!(outcome.report.ratios.is_some(), "floor ran: {summary}");
    let sampled: Vec<&str> = hub.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        sampled,
        ["hub", "redis", "harness"],
        "processes sampled: {summary}"
    );

    // The durable floor ran after the floor, on the hub's Redis, and lost nothing.
    let durable = outcome
        .report
        .durable_floor
        .as_ref()
        .expect("durable floor figures");
    let journal = outcome
        .report
        .durable_journal
        .as_ref()
        .expect("durable floor journal");
    assert!(journal.is_clean(), "{summary}");
    assert_eq!(durable.replies_missing, 0, "{summary}");
    assert!(durable.client_failures.is_empty(), "{summary}");
    assert_eq!(
        durable.messages.delivered, durable.messages.sent,
        "{summary}"
    );
    assert_eq!(journal.appended, durable.messages.delivered, "{summary}");
    assert_eq!(journal.stored, journal.appended, "{summary}");
    assert_eq!(journal.streams, 6, "{summary}");
    assert!(journal.deleted, "{summary}");
    assert_eq!(journal.appendonly.as_deref(), Some("yes"), "{summary}");
    let sampled: Vec<&str> = durable.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        sampled,
        ["harness+relay", "relay", "redis"],
        "durable floor processes sampled: {summary}"
    );
    let ratios = outcome
        .report
        .durable_ratios
        .as_ref()
        .expect("hub ÷ durable floor");
    assert!(ratios.throughput > 0.0, "{summary}");
    // Both sides sampled (the tiny run may be too short for CPU samples to differ).
    assert!(ratios.hub_server_cpu_us.is_some(), "{summary}");
    assert!(ratios.durable_server_cpu_us.is_some(), "{summary}");
    assert!(summary.contains("[durable floor] delivered"), "{summary}");
    assert!(summary.contains("hub vs durable floor"), "{summary}");
    let json = outcome.report.to_json().expect("json");
    assert!(json.contains("\"durable_floor\""), "{json}");
    // Its streams were deleted at the end.
    let mut conn = durable::connect_redis(&redis_url).await.expect("redis");
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("floor:*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(left.is_empty(), "durable floor streams left: {left:?}");
}

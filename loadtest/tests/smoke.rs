//! One short smoke run against the real hub: a private `redis-server` on a free port in a
//! temp dir, the `switchboard` binary on `127.0.0.1:0`, then a tiny scenario (with
//! transfers and reconnects) through the library API. It must finish with zero loss.
//!
//! The hub binary is taken from the workspace target dir (`$CARGO_TARGET_DIR`, else
//! `<workspace>/target`), `debug/switchboard`. `cargo test --workspace` builds it before
//! running tests; when it is missing (e.g. `cargo test -p switchboard-loadtest` on a fresh
//! checkout) the test builds it with `cargo build -p switchboard --bin switchboard`.

mod common;

use std::time::Duration;

use common::{load_config, start_hub, start_redis, ADMIN_TOKEN};
use switchboard_loadtest::{run, HubTarget, RunOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_against_the_real_hub_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
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
        redis_pid: None,
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
    assert_eq!(sampled, ["hub", "harness"], "processes sampled: {summary}");
}

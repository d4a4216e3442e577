//! The harness against several nodes of one deployment (`docs/protocol.md`, "Several
//! nodes"): a private `redis-server` and two `switchboard` binaries on it (`--node-id a`,
//! `--node-id b`), started as the other tests start one (see `common`). With two hubs
//! every agent is on the first and every customer on the second, so every message
//! crosses nodes.
//! The one hub listed twice (`--hub URL,URL`) runs today.

mod common;

use std::time::Duration;

use common::{load_config, start_hub_node, start_redis, ADMIN_TOKEN};
use switchboard_loadtest::{
    failover::KillPlan, run, scenario::parse_topic, HubTarget, RunOptions, RunOutcome, Scenario,
};

fn scenario(duration_s: f64, reconnect_ratio: f64) -> Scenario {
    Scenario {
        customers: 6,
        agents: 3,
        capacity: 3,
        messages: 6,
        rate: 20.0,
        think_ms: 5,
        ramp_up_s: 0.3,
        duration_s,
        transfer_ratio: 0.5,
        reconnect_ratio,
        topics: vec![
            parse_topic("general:2").expect("topic"),
            parse_topic("billing:1:billing").expect("topic"),
        ],
        seed: 11,
        ..Scenario::default()
    }
}

async fn run_on(hub: String, scenario: &Scenario, kill: Option<KillPlan>) -> RunOutcome {
    let target = HubTarget {
        hub,
        admin_token: ADMIN_TOKEN.into(),
        hub_pid: None,
        redis_pid: None,
        redis_url: None,
        floor_redis: None,
    };
    let options = RunOptions {
        floor: false,
        progress: false,
        run_id: Some("nodes".into()),
        kill,
        ..RunOptions::default()
    };
    tokio::time::timeout(Duration::from_secs(120), run(scenario, &target, &options))
        .await
        .expect("the run finishes within 2 minutes")
        .expect("the run completes")
}

/// Every chat started, was joined and closed, nothing was lost, no client gave up.
fn assert_clean(outcome: &RunOutcome) {
    let summary = outcome.report.text_summary();
    assert!(outcome.verdict.is_clean(), "loss or duplicates:\n{summary}");
    let hub = outcome.report.hub.as_ref().expect("hub figures");
    assert!(hub.client_failures.is_empty(), "{summary}");
    assert!(hub.conversations.started >= 6, "{summary}");
    assert_eq!(
        hub.conversations.joined, hub.conversations.started,
        "{summary}"
    );
    assert_eq!(hub.replies_missing, 0, "{summary}");
    assert!(outcome.verdict.messages_checked > 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hub_listed_twice_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
    let (_hub, url, _pid) = start_hub_node(dir.path(), redis_port, &load_config(), Some("a"));
    // With the contract's echo (`--echo`): the other runs cover the default, without.
    let echoing = Scenario {
        echo: true,
        ..scenario(0.0, 0.5)
    };
    let outcome = run_on(format!("{url},{url}"), &echoing, None).await;
    assert_clean(&outcome);
    // 6 chats × 7 customer messages, each with a reply.
    assert_eq!(outcome.verdict.messages_checked, 84);
    assert!(outcome.report.failover.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn two_nodes_on_one_redis_lose_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
    let (_a, url_a, _) = start_hub_node(dir.path(), redis_port, &load_config(), Some("a"));
    let (_b, url_b, _) = start_hub_node(dir.path(), redis_port, &load_config(), Some("b"));
    let outcome = run_on(format!("{url_a},{url_b}"), &scenario(0.0, 0.5), None).await;
    assert_clean(&outcome);
    assert_eq!(outcome.verdict.messages_checked, 84);
}

/// Kills one of two nodes mid-run (`killed`: 0 the agents' node, 1 the customers'), and
/// checks that its clients moved to the other, had traffic again, and lost nothing.
async fn kill_one_of_two(killed: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
    let (_a, url_a, pid_a) = start_hub_node(dir.path(), redis_port, &load_config(), Some("a"));
    let (_b, url_b, pid_b) = start_hub_node(dir.path(), redis_port, &load_config(), Some("b"));
    let plan = KillPlan {
        after: Duration::from_secs(2),
        pid: [pid_a, pid_b][killed],
    };
    let outcome = run_on(format!("{url_a},{url_b}"), &scenario(6.0, 0.0), Some(plan)).await;
    let summary = outcome.report.text_summary();
    // Shown with `--nocapture`: the `kill:` line says how long the clients took to come back.
    eprintln!("{summary}");
    assert_clean(&outcome);
    let failover = outcome.report.failover.as_ref().expect("failover figures");
    assert!(failover.killed, "{summary}");
    // Every client of the killed node: 3 agents or 6 customers.
    let expected = [3, 6][killed];
    assert_eq!(failover.clients_moved, expected, "{summary}");
    assert_eq!(failover.reconnected, expected, "{summary}");
    assert!(failover.traffic_resumed >= 1, "{summary}");
    let hub = outcome.report.hub.as_ref().expect("hub figures");
    assert!(hub.reconnects >= expected, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn killing_the_customers_node_moves_them_and_loses_nothing() {
    kill_one_of_two(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn killing_the_agents_node_moves_them_and_loses_nothing() {
    kill_one_of_two(0).await;
}

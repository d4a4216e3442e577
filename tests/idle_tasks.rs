//! A conversation task kept alive for the clients still connected to it waits quietly.
//! After its idle time it looks again an idle time later; it used to reset its timer to
//! the deadline already past and spin, so a closed chat whose customer kept the page
//! open held a core (found by the 10-minute soak, issue 19). A closed chat's task ends
//! after its idle time even while its customer stays. (A node's own batch no longer comes
//! back from Redis at all: `tests/nodes_listeners.rs`.)

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// The process's CPU time so far, in clock ticks (1/100 s), from `/proc`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|err| panic!("read /proc/{pid}/stat: {err}"));
    // Fields after the command name (which may hold spaces) start after its ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("field {i} of {stat}"))
    };
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
    field(11) + field(12)
}

#[tokio::test]
async fn a_closed_chat_whose_customer_stays_costs_no_cpu() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    agent
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    customer.wait_event(&conv, "closed").await;

    // A closed chat's task has an idle time of 5 s; the customer's tab stays open, so
    // the task stays. Not a wait for an event: the state under test needs time to pass.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = cpu_ticks(hub.pid());
    let window = Duration::from_secs(2);
    tokio::time::sleep(window).await;
    let used = cpu_ticks(hub.pid()) - before;
    // A spinning task takes a whole core (200 ticks in 2 s); an idle hub a few ticks.
    assert!(
        used < 60,
        "the hub used {used} ticks of CPU in {window:?} with nothing to do"
    );
    // Nor does the closed chat keep a task for the customer who stays (its visitor
    // starts new chats; a task kept for each old one was a leak the soak found).
    assert_eq!(
        hub.metric("switchboard_conversation_tasks", &[]).await,
        0.0,
        "the closed chat's task ended"
    );
    // And the customer is still answered: a request starts a task again.
    customer
        .ok(json!({"type": "history", "conversation_id": conv, "after_seq": 0}))
        .await;
}

//! Redis hung (SIGSTOP: sockets open, no answers): readers queued for a turn at the
//! history connection all hear `unavailable` within about two store timeouts, instead of
//! one after another, and history works again once Redis answers.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::time::Instant;

/// More tabs than history reads run at once (four), so most of them queue.
const TABS: usize = 40;

#[tokio::test]
async fn queued_history_reads_fail_promptly_while_redis_hangs_and_work_after() {
    let config = TestConfig::default().limit("store_timeout_ms", 400);
    let (redis, hub) = setup_with(config).await;
    let Chat {
        customer,
        conversation_id: conv,
        welcome,
        ..
    } = chat(&hub).await;
    let session = welcome["session"].clone();
    let mut tabs = vec![customer];
    while tabs.len() < TABS {
        let (tab, _welcome) = hub.customer(json!({ "session": session })).await;
        tabs.push(tab);
    }
    // Membership is loaded while Redis still answers; only the page read is left.
    tabs[0]
        .ok(json!({"type": "history", "conversation_id": conv, "after_seq": 0}))
        .await;

    redis.stop();
    let asked = Instant::now();
    let history = json!({"type": "history", "req": "h", "conversation_id": conv, "after_seq": 0});
    for tab in &mut tabs {
        tab.send(history.clone()).await;
    }
    // Without a bound on the wait for a turn, the last of 40 readers (ten rounds of four,
    // 400 ms each) would hear back after 4 s.
    let bound = Duration::from_secs(3);
    for tab in &mut tabs {
        let left = bound.saturating_sub(asked.elapsed());
        let reply = tab
            .wait_for_within("the history answer", left, |f| f["req"] == "h")
            .await;
        assert_eq!(ty(&reply), "error", "history with Redis hung: {reply}");
        assert_eq!(reply["code"], "unavailable", "{reply}");
    }
    redis.cont();

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = tabs[0]
            .request(json!({"type": "history", "conversation_id": conv, "after_seq": 0}))
            .await;
        if ty(&reply) == "ack" {
            let kinds: Vec<_> = reply["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["kind"].clone())
                .collect();
            assert_eq!(kinds, vec![json!("message"), json!("joined")], "{reply}");
            break;
        }
        assert_eq!(reply["code"], "unavailable", "{reply}");
        assert!(
            Instant::now() < deadline,
            "history did not work again after Redis resumed: {reply}"
        );
        // A client's retry interval; nothing announces that Redis answers again.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

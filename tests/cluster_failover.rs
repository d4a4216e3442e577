//! A master of a Redis Cluster dies under a stream of messages (issue 16): once a replica
//! has taken over its slots, the hub carries on, and no message it acknowledged is lost
//! or leaves a gap in the `seq`s. Requests while the slot has no master may answer
//! `unavailable`; the customer resends them with the same `client_msg_id`, which the
//! append script makes idempotent, as a widget does.

mod common;

use std::time::Duration;

use common::{cluster::RedisCluster, *};
use serde_json::{json, Value};
use tokio::time::Instant;

/// How long one message may take to be acknowledged, retries through a failover included.
const ONE_MESSAGE: Duration = Duration::from_secs(40);

/// Sends message `n` until it is acknowledged, resending after `unavailable`; returns
/// its seq and how many tries it took.
async fn say_until_acked(hub: &Hub, customer: &mut Ws, conv: &str, n: usize) -> (u64, usize) {
    let deadline = Instant::now() + ONE_MESSAGE;
    let frame = json!({"type": "message", "conversation_id": conv,
                       "text": format!("message {n}"), "client_msg_id": format!("m-{n}")});
    for tries in 1.. {
        let reply = customer.request_within(frame.clone(), WAIT * 2).await;
        match ty(&reply) {
            "ack" => return (seq_of(&reply), tries),
            "error" if reply["code"] == "unavailable" => {}
            _ => panic!("message {n}: unexpected reply {reply}"),
        }
        assert!(
            Instant::now() < deadline,
            "message {n} still unavailable after {ONE_MESSAGE:?}: {reply}\nhub output:\n{}",
            hub.log_tail(40)
        );
        // Resend pacing, not synchronization: there is no event that says the slot has a
        // master again other than a write going through.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!("the loop above returns or panics")
}

#[tokio::test]
async fn acknowledged_messages_survive_a_master_failover() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let config = TestConfig::default()
        .limit("replicated_acks", true)
        .limit("messages_per_10s", 10_000);
    let hub = Hub::start_url(&cluster.url_list(), &config.to_toml()).await;
    let Chat {
        mut customer,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let master = cluster
        .master_for_key(&format!("sb:{{{conv}}}:events"))
        .await;

    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut retried = 0;
    for n in 1..=60 {
        if n == 21 {
            cluster.kill(master);
        }
        let (seq, tries) = say_until_acked(&hub, &mut customer, &conv, n).await;
        retried += tries - 1;
        acked.push((seq, format!("message {n}")));
        if n == 21 {
            // The old master comes back as a replica of the new one, so acks (which
            // need a replica) go through at once again.
            cluster.wait_failover(master).await;
            cluster.restart(master).await;
        }
    }
    assert!(retried > 0, "no message waited for the failover");
    cluster.wait_failover(master).await;
    let new_master = cluster
        .master_for_key(&format!("sb:{{{conv}}}:events"))
        .await;
    assert_ne!(new_master, master, "the slot moved to a replica");
    // And after it, messages are acknowledged again. (With `replicated_acks`, an ack
    // needs a replica: while the promoted master has none in sync, a resend may be
    // needed; that is the setting's trade-off, durability before availability.)
    for n in 61..=65 {
        let (seq, _tries) = say_until_acked(&hub, &mut customer, &conv, n).await;
        acked.push((seq, format!("message {n}")));
    }

    let history = customer.history(&conv, 0).await;
    let last = seqs(&history).last().copied().unwrap_or(0);
    assert_eq!(
        seqs(&history),
        (1..=last).collect::<Vec<_>>(),
        "gapless seqs after the failover ({retried} resends)"
    );
    for (seq, text) in &acked {
        let event: &Value = history
            .iter()
            .find(|e| seq_of(e) == *seq)
            .unwrap_or_else(|| panic!("acked seq {seq} ({text}) missing from history"));
        assert_eq!(event["text"], text.as_str(), "{event}");
    }
    // Each message is stored once: resends with the same client_msg_id were absorbed.
    let texts: Vec<&str> = history.iter().filter_map(|e| e["text"].as_str()).collect();
    for n in 1..=65 {
        let text = format!("message {n}");
        assert_eq!(
            texts.iter().filter(|t| **t == text).count(),
            1,
            "{text} in {texts:?}"
        );
    }
}

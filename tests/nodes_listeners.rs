//! Who hears a conversation's live events (issue 19): an append publishes its batch only
//! to the other nodes listed among the conversation's listeners, each on its own channel.
//! A node alone publishes nothing; with two, each stored batch goes to the other node
//! only, never back to the one that stored it; and a node whose listing Redis lost is
//! listed again when its feed comes back, so live delivery never goes quiet.
//!
//! What Redis published is read by a test subscriber on the conversation's channels; a
//! marker the test publishes last says it has read everything published before it.

mod common;

use std::time::Duration;

use common::nodes::node_id;
use common::*;
use futures_util::StreamExt;
use serde_json::json;

/// The conversation's channels as the hub names them, `sb:{c_…}:live:<node>`, and as
/// it named them before (`sb:{c_…}:live`).
fn live_pattern(conversation: &str) -> String {
    format!("sb:{{{conversation}}}:live*")
}

async fn connect(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

/// Every message published on the conversation's live channels since `subscriber`
/// subscribed, as (channel, payload), read up to a marker this publishes now.
async fn published_so_far(
    redis: &RedisServer,
    subscriber: &mut redis::aio::PubSub,
    conversation: &str,
) -> Vec<(String, String)> {
    let marker_channel = format!("sb:{{{conversation}}}:live:~marker");
    redis::cmd("PUBLISH")
        .arg(&marker_channel)
        .arg("end")
        .query_async::<i64>(&mut connect(redis).await)
        .await
        .expect("publish the marker");
    let mut seen = Vec::new();
    let mut messages = subscriber.on_message();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the marker comes back within 10 s")
            .expect("the subscription stays open");
        let channel = message.get_channel_name().to_string();
        if channel == marker_channel {
            return seen;
        }
        let payload: String = message.get_payload().expect("a text payload");
        seen.push((channel, payload));
    }
}

async fn subscribe(redis: &RedisServer, conversation: &str) -> redis::aio::PubSub {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut subscriber = client.get_async_pubsub().await.expect("pubsub connection");
    subscriber
        .psubscribe(live_pattern(conversation))
        .await
        .expect("psubscribe");
    subscriber
}

/// The nodes listed as listening to `conversation`, sorted.
async fn listeners(redis: &RedisServer, conversation: &str) -> Vec<String> {
    let mut listed: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("sb:{{{conversation}}}:listeners"))
        .query_async(&mut connect(redis).await)
        .await
        .expect("SMEMBERS");
    listed.sort();
    listed
}

/// Two nodes on `redis` and a chat between an agent on the first and a customer on the
/// second: (the hubs, their node ids, the agent, the customer, the conversation).
async fn chat_across(redis: &RedisServer) -> ([Hub; 2], [String; 2], Ws, Ws, String) {
    let config = TestConfig::default().to_toml();
    let (a, b) = (
        Hub::start(redis, &config).await,
        Hub::start(redis, &config).await,
    );
    let ids = [node_id(&a).await, node_id(&b).await];
    let (mut agent, _) = a.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conv = customer.start_chat("general", "hello from node b").await;
    let offer = agent.wait_offer_for(&conv).await;
    agent.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;
    let mut both = ids.to_vec();
    both.sort();
    assert_eq!(listeners(redis, &conv).await, both, "both nodes listen");
    ([a, b], ids, agent, customer, conv)
}

#[tokio::test]
async fn a_node_alone_publishes_nothing() {
    let (redis, hub) = setup().await;
    let mut chat = chat(&hub).await;
    let conv = chat.conversation_id.clone();
    let mut subscriber = subscribe(&redis, &conv).await;
    for i in 0..5 {
        chat.customer.say(&conv, &format!("customer {i}")).await;
        let last = chat.agent.say(&conv, &format!("agent {i}")).await;
        chat.customer.wait_seq(&conv, last).await;
    }
    assert_eq!(listeners(&redis, &conv).await, vec![node_id(&hub).await]);
    let published = published_so_far(&redis, &mut subscriber, &conv).await;
    assert!(
        published.is_empty(),
        "a node alone published its own batches: {published:?}"
    );
}

#[tokio::test]
async fn each_batch_goes_to_the_other_node_only() {
    let redis = RedisServer::start().await;
    let (_hubs, [id_a, id_b], mut agent, mut customer, conv) = chat_across(&redis).await;
    let mut subscriber = subscribe(&redis, &conv).await;
    let mut last = 0;
    for i in 0..5 {
        customer.say(&conv, &format!("from the customer {i}")).await;
        last = agent.say(&conv, &format!("from the agent {i}")).await;
    }
    customer.wait_seq(&conv, last).await;
    agent.wait_seq(&conv, last).await;

    let published = published_so_far(&redis, &mut subscriber, &conv).await;
    let to = |node: &str| format!("sb:{{{conv}}}:live:{node}");
    let mut heard = (0, 0);
    for (channel, payload) in &published {
        // The customer's messages are stored by node b, the agent's by node a.
        if payload.contains("from the customer") {
            assert_eq!(channel, &to(&id_a), "{payload}");
            heard.0 += 1;
        }
        if payload.contains("from the agent") {
            assert_eq!(channel, &to(&id_b), "{payload}");
            heard.1 += 1;
        }
    }
    assert!(
        heard.0 > 0 && heard.1 > 0,
        "each side's messages reach the other node live: {published:?}"
    );
}

/// Redis forgets who listens (here the set is deleted; a failover to a replica that
/// had not received it does the same) and the feed drops: the node lists itself again
/// once its feed is back, and the chat goes on live.
#[tokio::test]
async fn a_lost_listing_is_restored_when_the_feed_comes_back() {
    let redis = RedisServer::start().await;
    let (_hubs, ids, mut agent, mut customer, conv) = chat_across(&redis).await;
    let mut conn = connect(&redis).await;
    redis::cmd("DEL")
        .arg(format!("sb:{{{conv}}}:listeners"))
        .query_async::<i64>(&mut conn)
        .await
        .expect("DEL");
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async::<i64>(&mut conn)
        .await
        .expect("CLIENT KILL");
    let mut both = ids.to_vec();
    both.sort();
    eventually(
        "both nodes listed again",
        Duration::from_secs(10),
        || async { (listeners(&redis, &conv).await == both).then_some(()) },
    )
    .await;
    let last = agent.say(&conv, "after the feed came back").await;
    customer.wait_seq(&conv, last).await;
}

/// A node that has not heard of a close (Redis lost its listing, so nothing reached it
/// live) appends on top of the stream it read, not on top of the close: the stream's
/// fence refuses its customer's next message, the node reads the `closed`, and the
/// message is refused as on a closed chat instead of being stored after the close.
#[tokio::test]
async fn a_message_behind_a_close_it_has_not_heard_is_refused() {
    let redis = RedisServer::start().await;
    let (_hubs, [_, id_b], mut agent, mut customer, conv) = chat_across(&redis).await;
    let last = customer.say(&conv, "before the close").await;
    agent.wait_seq(&conv, last).await;
    redis::cmd("SREM")
        .arg(format!("sb:{{{conv}}}:listeners"))
        .arg(&id_b)
        .query_async::<i64>(&mut connect(&redis).await)
        .await
        .expect("SREM");
    let close = agent
        .ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    let closed_seq = seq_of(&close);
    customer
        .err(
            json!({"type": "message", "conversation_id": conv, "text": "after the close"}),
            "conflict",
        )
        .await;
    // Refused after reading the close, which the customer then gets.
    customer.wait_seq(&conv, closed_seq).await;
    let events = agent.history(&conv, 0).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds.last(), Some(&"closed"), "{kinds:?}");
    assert_eq!(
        events.last().map(seq_of),
        Some(closed_seq),
        "nothing stored after the close"
    );
}

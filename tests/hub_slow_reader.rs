//! A client too slow to read is disconnected instead of growing the hub's memory, and
//! loses nothing: it resumes from its last `seq` and finds every acknowledged event.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// Reads text frames until one satisfies `pick`.
async fn read_until<S>(stream: &mut S, what: &str, pick: impl Fn(&Value) -> bool) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).expect("server frames are JSON");
                if pick(&frame) {
                    return frame;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("socket ended while waiting for {what}: {other:?}"),
        }
    }
}

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;
type Stream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// A customer on a raw socket (so a test can stop reading it) in a chat `agent` accepted.
struct RawCustomer {
    sink: Sink,
    stream: Stream,
    session: String,
    conv: String,
}

async fn raw_customer_in_chat(hub: &Hub, agent: &mut Ws) -> RawCustomer {
    let (socket, _) = connect_async(hub.ws_url("/v1/customer/ws"))
        .await
        .expect("connect");
    let (mut sink, mut stream) = socket.split();
    sink.send(Message::Text(
        json!({"type": "hello", "role": "customer"})
            .to_string()
            .into(),
    ))
    .await
    .expect("send hello");
    let welcome = read_until(&mut stream, "welcome", |f| ty(f) == "welcome").await;
    let session = welcome["session"].as_str().expect("session").to_string();
    let start = json!({"type": "start", "req": "s1", "topic": "general", "text": "hello"});
    sink.send(Message::Text(start.to_string().into()))
        .await
        .expect("send start");
    let ack = read_until(&mut stream, "the start ack", |f| f["req"] == "s1").await;
    let conv = ack["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    assert_eq!(agent.accept_next_offer().await, conv);
    RawCustomer {
        sink,
        stream,
        session,
        conv,
    }
}

#[tokio::test]
async fn slow_reader_is_disconnected_and_resumes_without_loss() {
    const MESSAGES: usize = 800;
    let config = TestConfig::default()
        .limit("send_queue", 8)
        .limit("messages_per_10s", 100_000);
    let (_redis, hub) = setup_with(config).await;
    let (mut alice, _) = hub.available_agent("alice", "Alice", &[], 1).await;

    // The slow customer speaks through a raw socket that we can stop reading (its
    // sending half is kept, unused, so that the socket stays open).
    let RawCustomer {
        sink: _sink,
        mut stream,
        session,
        conv,
    } = raw_customer_in_chat(&hub, &mut alice).await;

    // From here on the customer reads nothing while the agent writes a lot (reading its
    // own acks: a pipelining client that never reads is a slow reader too).
    send_long_messages(&mut alice, &conv, MESSAGES).await;
    slow_reader_closed(&hub).await;

    // The socket is gone: after whatever was buffered, the stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the slow reader's socket was not closed");

    // It comes back with its session and finds every message, in order, once.
    let (mut again, welcome) = hub.customer(json!({"session": session})).await;
    assert_eq!(
        welcome["conversations"][0]["conversation_id"],
        conv.as_str(),
        "{welcome}"
    );
    let mut texts = Vec::new();
    let mut after = 0;
    loop {
        let reply = again
            .ok(json!({"type": "history", "conversation_id": conv, "after_seq": after, "limit": 1000}))
            .await;
        let events = reply["events"].as_array().expect("events").clone();
        for event in &events {
            after = seq_of(event);
            if event["kind"] == "message" && event["from"]["role"] == "agent" {
                texts.push(event["text"].as_str().unwrap_or_default().to_string());
            }
        }
        if reply["more"] != true {
            break;
        }
    }
    assert_eq!(
        texts.len(),
        MESSAGES,
        "every acknowledged agent message is stored once"
    );
    for (i, text) in texts.iter().enumerate() {
        assert!(
            text.starts_with(&format!("{i} ")),
            "message {i} out of order: {}",
            &text[..10]
        );
    }
}

/// A client that asks for history page after page and reads none of them fills its
/// queue by bytes long before it has 512 frames queued: it is closed as a slow reader
/// (1013) instead of holding hundreds of pages in the hub's memory. (Since issue 15 a
/// page waits for the previous ones to reach the socket, so the close comes when that
/// wait runs out, `history_drain_timeout_ms`.)
#[tokio::test]
async fn unread_history_pages_close_the_reader_by_bytes() {
    const LONG_MESSAGES: usize = 60;
    const PAGE_REQUESTS: usize = 300;
    let config = TestConfig::default()
        .limit("send_queue_bytes", 1024 * 1024)
        .limit("history_drain_timeout_ms", 2000)
        .limit("messages_per_10s", 100_000);
    let (_redis, hub) = setup_with(config).await;
    let (mut alice, _) = hub.available_agent("alice", "Alice", &[], 1).await;

    let RawCustomer {
        mut sink,
        mut stream,
        conv,
        ..
    } = raw_customer_in_chat(&hub, &mut alice).await;
    // A history page of this chat is ≈ 60 × 7 KB = 420 KB.
    send_long_messages(&mut alice, &conv, LONG_MESSAGES).await;

    // 300 pages (≈ 126 MB) asked for, none read: far fewer frames than `send_queue`.
    for i in 0..PAGE_REQUESTS {
        let request = json!({"type": "history", "req": format!("h{i}"),
                             "conversation_id": conv, "after_seq": 0, "limit": 1000});
        if sink
            .send(Message::Text(request.to_string().into()))
            .await
            .is_err()
        {
            break; // Closed already.
        }
    }
    slow_reader_closed(&hub).await;
    // What was already on the wire drains, then the socket ends. The close frame says
    // why when the hub could still send it (it waits 2 s for the reader to make room;
    // a test machine under load may take longer to start reading).
    let close = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("the slow reader's socket was closed");
    if let Some(code) = close {
        assert_eq!(code, 1013, "close code");
    }
}

/// `agent` sends `count` messages of ≈ 7 KB into `conv`, each acknowledged; message `i`
/// starts with `"{i} "`.
async fn send_long_messages(agent: &mut Ws, conv: &str, count: usize) {
    let text = "x".repeat(7_000);
    for i in 0..count {
        agent
            .ok(json!({"type": "message", "conversation_id": conv,
                       "text": format!("{i} {text}"), "client_msg_id": format!("a-{i}")}))
            .await;
    }
}

/// Waits until the hub's metrics count a slow-reader close.
async fn slow_reader_closed(hub: &Hub) {
    eventually(
        "a slow-reader close in the metrics",
        Duration::from_secs(10),
        || async {
            (hub.metric("switchboard_slow_reader_closes_total", &[])
                .await
                >= 1.0)
                .then_some(())
        },
    )
    .await;
}

//! The durable floor (issue 19) against a real `redis-server` (AOF on) in a temp dir:
//! every message is delivered, Redis holds exactly what the relay appended (read here on
//! the test's own connection), in each socket's order, and `floor --durable` reports it.

mod common;

use std::{process::Command, time::Duration};

use common::start_redis;
use futures_util::{SinkExt, StreamExt};
use redis::streams::StreamRangeReply;
use switchboard_loadtest::floor::{durable::JournalSpec, FloorServer};
use switchboard_loadtest::{
    floor::durable::{self, hop::HopPublish, run_durable_floor, DurableTarget, Obligations},
    payload, Scenario,
};
use tokio_tungstenite::tungstenite::Message;

fn tiny() -> Scenario {
    Scenario {
        customers: 3,
        messages: 5,
        rate: 50.0,
        think_ms: 1,
        ramp_up_s: 0.1,
        ..Scenario::default()
    }
}

/// The ids of the load texts in a stream's entries (field `field`), in stream order.
fn ids_in(reply: &StreamRangeReply, field: &str) -> Vec<String> {
    reply
        .ids
        .iter()
        .map(|entry| {
            let frame: String = entry.get(field).expect("the field holds the frame");
            let json: serde_json::Value = serde_json::from_str(&frame).expect("a JSON frame");
            let text = json["text"].as_str().expect("a message text");
            payload::decode(text).expect("a load text").id.to_string()
        })
        .collect()
}

/// Every entry of stream `key`.
async fn whole_stream(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> StreamRangeReply {
    redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .expect("XRANGE")
}

/// (chat, n) of each id that starts with `prefix`, in order.
fn chats_and_ns(ids: &[String], prefix: &str) -> Vec<(u32, u32)> {
    ids.iter()
        .filter(|id| id.starts_with(prefix))
        .map(|id| chat_and_n(id))
        .collect()
}

/// `c<customer>.<chat>.<n>` (or `rc…` for a reply) → (chat, n).
fn chat_and_n(id: &str) -> (u32, u32) {
    let mut parts = id.trim_start_matches('r').split('.').skip(1);
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a load id")
    };
    (next(), next())
}

/// The durable floor on one node, on the test's Redis at `url`, its streams kept for
/// the test to read.
fn kept(url: &str, redis: &common::Guard, obligations: Obligations) -> DurableTarget {
    DurableTarget {
        redis_url: url.to_string(),
        redis_pid: Some(redis.0.id()),
        keep_streams: true,
        obligations,
        two_nodes: None,
        relay_threads: None,
    }
}

async fn run_within_a_minute(scenario: &Scenario, target: &DurableTarget) -> durable::DurableFloor {
    tokio::time::timeout(
        Duration::from_secs(60),
        run_durable_floor(scenario, target, false),
    )
    .await
    .expect("the durable floor finishes within a minute")
    .expect("the durable floor runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_every_relayed_message_in_each_sockets_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (redis, port) = start_redis(dir.path());
    let url = format!("redis://127.0.0.1:{port}/0");
    let target = kept(&url, &redis, Obligations::Relay);
    let scenario = tiny();
    let outcome = run_within_a_minute(&scenario, &target).await;
    let (figures, journal) = (&outcome.figures, &outcome.journal);
    // 3 pairs × 6 messages, each answered: 36 deliveries.
    assert_eq!(figures.messages.delivered, 36, "{figures:?}");
    assert_eq!(figures.replies_missing, 0);
    assert!(figures.client_failures.is_empty(), "{figures:?}");
    assert_eq!(journal.appended, 36, "{journal:?}");
    assert_eq!(journal.failed, 0, "{journal:?}");
    assert_eq!(journal.stored, 36, "{journal:?}");
    assert!(!journal.deleted);
    assert!(
        figures.processes.iter().any(|p| p.name == "redis"),
        "Redis sampled"
    );

    // Read back on the test's own connection: each pair's stream holds its 12 messages,
    // the customer's and the agent's each in the order they were sent.
    let mut conn = durable::connect_redis(&url).await.expect("redis");
    let keys: Vec<String> = (0..scenario.customers)
        .map(|pair| durable::stream_key(&journal.tag, pair))
        .collect();
    let mut total = 0;
    for (pair, key) in keys.iter().enumerate() {
        let len: u64 = redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("XLEN");
        total += len;
        let reply = whole_stream(&mut conn, key).await;
        let ids = ids_in(&reply, "m");
        let customer = format!("c{pair}.");
        let sent = chats_and_ns(&ids, &customer);
        let replies = chats_and_ns(&ids, &format!("r{customer}"));
        let expected: Vec<(u32, u32)> = (0..6).map(|n| (0, n)).collect();
        assert_eq!(sent, expected, "pair {pair}'s customer side: {ids:?}");
        assert_eq!(replies, expected, "pair {pair}'s agent side: {ids:?}");
    }
    assert_eq!(total, journal.appended);
    durable::delete(&mut conn, &keys).await.expect("delete");
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("floor:*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(left.is_empty(), "{left:?}");
}

/// The durable floor across two nodes: each pair's agent end on one relay and its
/// customer end on the other, so every frame crosses through Redis (there is no other
/// way from one end to the other). Published by a pipeline or by a script, everything is
/// delivered, each pair's stream holds both sides' messages in the order sent, and each
/// batch was published once to the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_relay_every_message_through_redis_from_one_to_the_other() {
    for (publish, label) in [
        (HopPublish::Pipeline, "durable floor, two nodes"),
        (
            HopPublish::Script,
            "durable floor, two nodes, publishing by script",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (redis, port) = start_redis(dir.path());
        let url = format!("redis://127.0.0.1:{port}/0");
        let target = DurableTarget {
            two_nodes: Some(publish),
            relay_threads: Some(1),
            ..kept(&url, &redis, Obligations::Relay)
        };
        let scenario = tiny();
        let outcome = run_within_a_minute(&scenario, &target).await;
        let (figures, journal) = (&outcome.figures, &outcome.journal);
        assert_eq!(figures.label, label);
        assert_eq!(figures.messages.delivered, 36, "{publish:?}: {figures:?}");
        assert_eq!(figures.replies_missing, 0, "{publish:?}");
        assert!(figures.client_failures.is_empty(), "{figures:?}");
        assert!(journal.is_clean(), "{publish:?}: {journal:?}");
        assert_eq!(journal.appended, 36, "{publish:?}: {journal:?}");

        let mut conn = durable::connect_redis(&url).await.expect("redis");
        for pair in 0..scenario.customers {
            let key = durable::stream_key(&journal.tag, pair);
            let ids = ids_in(&whole_stream(&mut conn, &key).await, "m");
            let customer = format!("c{pair}.");
            let expected: Vec<(u32, u32)> = (0..6).map(|n| (0, n)).collect();
            assert_eq!(
                chats_and_ns(&ids, &customer),
                expected,
                "pair {pair}: {ids:?}"
            );
            assert_eq!(
                chats_and_ns(&ids, &format!("r{customer}")),
                expected,
                "pair {pair}: {ids:?}"
            );
        }
        // One PUBLISH per round trip of appends (inside the script too), and one more as
        // each of a pair's two ends closed.
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("INFO");
        // Calls that ran: the first `EVALSHA` of a connection fails with NOSCRIPT, and the
        // crate loads the script and calls again.
        let calls = |command: &str| -> u64 {
            let Some(line) = stats
                .lines()
                .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:")))
            else {
                return 0;
            };
            let field = |name: &str| -> u64 {
                line.split(',')
                    .find_map(|part| part.strip_prefix(&format!("{name}=")))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            field("calls") - field("failed_calls")
        };
        assert_eq!(
            calls("publish"),
            journal.pipelines + 2 * scenario.customers as u64,
            "{stats}"
        );
        let scripted = calls("evalsha") + calls("eval");
        match publish {
            HopPublish::Pipeline => assert_eq!(scripted, 0, "{stats}"),
            HopPublish::Script => assert_eq!(scripted, journal.pipelines, "{stats}"),
        }
    }
}

#[test]
fn the_floor_subcommand_runs_the_durable_floor_and_reports_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (redis, port) = start_redis(dir.path());
    let json = dir.path().join("durable.json");
    let binary = env!("CARGO_BIN_EXE_switchboard-loadtest");
    let output = Command::new(binary)
        .args(["floor", "--durable", "--redis-url"])
        .arg(format!("redis://127.0.0.1:{port}/0"))
        .arg("--redis-pid")
        .arg(redis.0.id().to_string())
        .args([
            "--customers",
            "2",
            "--messages",
            "3",
            "--rate",
            "50",
            "--think-ms",
            "1",
            "--ramp-up",
            "0.1",
            "--no-progress",
            "--report-json",
        ])
        .arg(&json)
        .output()
        .expect("run the harness");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("[durable floor] delivered 16 msgs"),
        "{stdout}"
    );
    assert!(stdout.contains("durable: 16 frames appended"), "{stdout}");
    assert!(stdout.contains("redis"), "Redis's CPU line: {stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("JSON");
    assert_eq!(report["kind"], "durable-floor");
    assert_eq!(report["durable_floor"]["messages"]["delivered"], 16);
    assert_eq!(report["durable_journal"]["stored"], 16);
    assert_eq!(report["durable_journal"]["deleted"], true);
    assert!(report["floor"].is_null());

    // --durable needs to know where Redis is.
    let refused = Command::new(binary)
        .args(["floor", "--durable", "--customers", "1"])
        .output()
        .expect("run the harness");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--redis-url"));
}

/// The protocol floor's steps (`--obligations acks|sequenced`) deliver everything too,
/// and with `sequenced` each pair's stream holds both sides' messages under the ids
/// `1-0`, `2-0`, … in the protocol's stored form, each side in the order it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_steps_deliver_everything_and_sequence_each_pair() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (redis, port) = start_redis(dir.path());
    let url = format!("redis://127.0.0.1:{port}/0");
    let scenario = tiny();
    for obligations in [Obligations::Acks, Obligations::Sequenced] {
        let target = kept(&url, &redis, obligations);
        let outcome = run_within_a_minute(&scenario, &target).await;
        let (figures, journal) = (&outcome.figures, &outcome.journal);
        assert_eq!(
            figures.messages.delivered, 36,
            "{obligations:?}: {figures:?}"
        );
        assert_eq!(figures.replies_missing, 0, "{obligations:?}");
        assert!(figures.client_failures.is_empty(), "{figures:?}");
        assert!(journal.is_clean(), "{obligations:?}: {journal:?}");
        assert_eq!(journal.stored, 36, "{obligations:?}: {journal:?}");
        let mut conn = durable::connect_redis(&url).await.expect("redis");
        let keys: Vec<String> = (0..scenario.customers)
            .map(|pair| durable::stream_key(&journal.tag, pair))
            .collect();
        if obligations == Obligations::Sequenced {
            for (pair, key) in keys.iter().enumerate() {
                let reply = whole_stream(&mut conn, key).await;
                let entry_ids: Vec<&str> = reply.ids.iter().map(|e| e.id.as_str()).collect();
                let expected_ids: Vec<String> = (1..=12).map(|seq| format!("{seq}-0")).collect();
                assert_eq!(entry_ids, expected_ids, "pair {pair}");
                let ids = ids_in(&reply, "e");
                let customer = format!("c{pair}.");
                let sent = chats_and_ns(&ids, &customer);
                let expected: Vec<(u32, u32)> = (0..6).map(|n| (0, n)).collect();
                assert_eq!(sent, expected, "pair {pair}: {ids:?}");
                let first: String = reply.ids[0].get("e").expect("field e");
                let stored: serde_json::Value = serde_json::from_str(&first).expect("JSON");
                assert_eq!(stored["kind"], "message");
                assert_eq!(stored["from"]["role"], "customer");
                assert!(stored["ts"].as_u64().is_some(), "{stored}");
            }
        }
        durable::delete(&mut conn, &keys).await.expect("delete");
    }
}

/// The next text frame of `socket` as JSON, within 5 s.
async fn next_json(socket: &mut switchboard_loadtest::ws::Stream) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("a JSON frame");
        }
    }
}

fn message(req: &str, text: &str, id: &str) -> Message {
    let json = serde_json::json!({
        "type": "message", "req": req, "conversation_id": "p", "text": text, "client_msg_id": id
    });
    Message::Text(json.to_string().into())
}

/// Frame by frame: with `acks` the author gets an ack naming its `req` and the partner
/// the frame as sent; with `sequenced` the author's ack carries the pair's next seq and
/// the partner gets an `event` frame with the same seq, whichever end wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_answers_the_author_and_the_partner_as_the_protocol_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, port) = start_redis(dir.path());
    for (n, obligations) in [Obligations::Acks, Obligations::Sequenced]
        .into_iter()
        .enumerate()
    {
        let spec = JournalSpec {
            redis_url: format!("redis://127.0.0.1:{port}/0"),
            tag: format!("t{n}"),
            obligations,
            hop: None,
        };
        let (server, _journal) = FloorServer::start_durable(1, spec).await.expect("relay");
        let mut first = switchboard_loadtest::ws::connect(&server.url(1))
            .await
            .expect("a");
        let mut second = switchboard_loadtest::ws::connect(&server.url(1))
            .await
            .expect("b");
        first
            .send(message("r1", "hello", "m1"))
            .await
            .expect("send");
        let ack = next_json(&mut first).await;
        let delivered = next_json(&mut second).await;
        assert_eq!(ack["type"], "ack", "{obligations:?}: {ack}");
        assert_eq!(ack["req"], "r1");
        assert_eq!(delivered["text"], "hello", "{obligations:?}: {delivered}");
        second
            .send(message("r9", "back", "m2"))
            .await
            .expect("send");
        let ack = next_json(&mut second).await;
        let delivered = next_json(&mut first).await;
        assert_eq!(ack["req"], "r9", "{obligations:?}: {ack}");
        assert_eq!(delivered["text"], "back", "{obligations:?}: {delivered}");
        if obligations == Obligations::Sequenced {
            assert_eq!(ack["seq"], 2, "{ack}");
            assert_eq!(delivered["type"], "event");
            assert_eq!(delivered["seq"], 2);
            assert_eq!(delivered["conversation_id"], "p1");
            assert_eq!(delivered["client_msg_id"], "m2");
            assert_eq!(delivered["from"]["role"], "customer");
        } else {
            assert!(ack["seq"].is_null(), "{ack}");
            assert_eq!(delivered["type"], "message");
        }
        // One end closing closes the other, as in the relay.
        first.close(None).await.expect("close");
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(frame)) = second.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{obligations:?}: the partner's socket did not close"
        );
        server.stop();
    }
}

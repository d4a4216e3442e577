//! Memory under abuse (issue 15, part A): the attack of the issue — a chat of a
//! thousand 8 KB messages, then 40 sockets each asking three `history` pages of 1,000
//! and never reading — must not grow the hub by more than a stated bound, and a
//! legitimate customer keeps chatting meanwhile. Before the fix the hub grew by
//! ~885 MB (pages of 8.5 MB, 32 MiB queued per connection).

mod common;
#[path = "common/loopback.rs"]
mod loopback;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use common::*;
use futures_util::SinkExt;
use loopback::*;
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// The bound on the hub's growth during the attack. The hub holds at most one page per
/// connection (a quarter of `send_queue_bytes` = 256 KiB) plus what Redis replies
/// weigh while being read (four at a time, ≈ 8.5 MB each): 40 × 0.3 + 4 × 3 × 8.5 ≈
/// 115 MB at the very worst, usually far less.
const GROWTH_BOUND_MIB: u64 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_reading_history_requests_hold_little_and_chat_goes_on() {
    let config = TestConfig::default().limit("history_drain_timeout_ms", 3000);
    let (_redis, hub) = setup_with(config).await;
    let pid = hub.pid();

    // A chat of a thousand 8 KB messages, built in batches its author reads.
    let (mut author, welcome) = hub.customer(json!({})).await;
    let session = welcome["session"].as_str().expect("session").to_string();
    let long = "x".repeat(8000);
    let conversation_id = author.start_chat("general", &long).await;
    for _ in 0..20 {
        for _ in 0..49 {
            author
                .send(json!({"type": "message", "conversation_id": conversation_id, "text": long}))
                .await;
        }
        author.say(&conversation_id, &long).await;
    }
    let baseline = rss_kib(pid);

    // Sample the hub's RSS until told to stop.
    let peak = Arc::new(AtomicU64::new(baseline));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(20));
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
            }
        })
    };

    // 40 sockets from four other addresses, each asking three pages, never reading.
    let attack_started = Instant::now();
    let mut attackers = Vec::new();
    for n in 0..40 {
        let from = format!("127.0.0.{}", 2 + n % 4);
        let mut ws = ws_from(&from, &hub, "/v1/customer/ws", &[], Some(4096))
            .await
            .expect("attacker admitted");
        let hello = json!({"type": "hello", "role": "customer", "session": session});
        ws.send(Message::text(hello.to_string()))
            .await
            .expect("hello");
        for r in 0..3 {
            let history = json!({"type": "history", "req": format!("h{r}"),
                "conversation_id": conversation_id, "after_seq": 0, "limit": 1000});
            ws.send(Message::text(history.to_string()))
                .await
                .expect("history");
        }
        attackers.push(ws);
    }

    // Meanwhile a legitimate customer chats, each ack in time.
    let (mut legit, _) = hub.customer(json!({})).await;
    let chat = legit.start_chat("general", "hello, anyone?").await;
    let mut slowest_ack = Duration::ZERO;
    for i in 0..20 {
        let asked = Instant::now();
        legit.say(&chat, &format!("message {i}")).await;
        slowest_ack = slowest_ack.max(asked.elapsed());
    }

    // The attack has landed once every attacker had a page read; then watch a while
    // longer than the drain timeout (a measurement window, not a synchronization).
    eventually(
        "a page read for every attacker",
        Duration::from_secs(30),
        || async {
            let reads = metric(&hub, "switchboard_store_seconds_count{op=\"history\"}").await;
            (reads >= 40.0).then_some(())
        },
    )
    .await;
    let watch_until = Instant::now() + Duration::from_secs(4);
    let mut every = tokio::time::interval(Duration::from_millis(250));
    while Instant::now() < watch_until {
        every.tick().await;
        legit.ping().await;
    }
    stop.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");
    let peak = peak.load(Ordering::Relaxed);
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    let queued = metric(&hub, "switchboard_send_queue_bytes").await;
    let closes = metric(&hub, "switchboard_slow_reader_closes_total").await;
    let reads = metric(&hub, "switchboard_store_seconds_count{op=\"history\"}").await;
    eprintln!(
        "history attack: RSS {} MiB before, peak {} MiB (+{growth_mib} MiB) over {:?}; \
         {reads} pages read, {closes} slow readers closed, {queued} bytes queued at the end; \
         legit ack p100 {slowest_ack:?}; fds {}",
        baseline / 1024,
        peak / 1024,
        attack_started.elapsed(),
        open_fds(pid)
    );
    assert!(
        growth_mib < GROWTH_BOUND_MIB,
        "the hub grew by {growth_mib} MiB (bound {GROWTH_BOUND_MIB} MiB)"
    );
    assert!(
        slowest_ack < Duration::from_secs(2),
        "legit ack took {slowest_ack:?}"
    );
    drop(attackers);
}

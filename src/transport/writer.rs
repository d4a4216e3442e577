//! The writer half of a connection: drains its bounded queue in batches, sends the
//! server's pings, and ends every connection with a Close frame saying why.

use std::{collections::VecDeque, time::Duration};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{stream::SplitSink, SinkExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::registry::{ConnRx, ConnTx, Kick};

pub(super) async fn close_now(mut sink: SplitSink<WebSocket, Message>, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The peer may already be gone; there is nobody left to tell.
    let _peer_gone = tokio::time::timeout(
        Duration::from_secs(2),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

/// A writer's batch buffer that a burst grew past this many frames (a slow reader's
/// backlog reaches `send_queue` frames, 32 bytes each) is shrunk to a quarter of it
/// after the batch, so a burst's room is not kept for the connection's lifetime. The
/// gap between the two sizes keeps a buffer near the limit from being freed and
/// regrown batch after batch.
const MAX_KEPT_BATCH_CAPACITY: usize = 256;

pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: ConnRx,
    conn: ConnTx,
    ping_every: Duration,
    shutdown: CancellationToken,
) {
    // Frames taken off the queue and not yet fed to the socket: its buffer trades places
    // with the queue's (`ConnRx::take`), so neither allocates in the steady state.
    let mut batch = VecDeque::new();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let killed_token = conn.killed().clone();
    // The connection's token is a child of `shutdown`: waiting on it alone covers both.
    let killed = killed_token.cancelled();
    tokio::pin!(killed);
    loop {
        tokio::select! {
            biased;
            _ = &mut killed => break,
            () = rx.take(&mut batch) => {
                // Whatever else is queued while this batch is fed goes into the same
                // flush. The batch's bytes stay counted against the budgets until
                // flushed (or dropped), and a kill ends the batch wherever it blocks
                // (feeding or flushing).
                let mut batch_bytes = 0;
                let send = async {
                    loop {
                        while let Some(text) = batch.pop_front() {
                            batch_bytes += text.len();
                            sink.feed(Message::Text(text)).await?;
                        }
                        if !rx.take_now(&mut batch) {
                            break;
                        }
                    }
                    sink.flush().await
                };
                let flushed = tokio::select! {
                    flushed = send => flushed.is_ok(),
                    _ = &mut killed => false,
                };
                let dropped: usize = batch.drain(..).map(|text| text.len()).sum();
                conn.taken(batch_bytes + dropped);
                if batch.capacity() > MAX_KEPT_BATCH_CAPACITY {
                    batch.shrink_to(MAX_KEPT_BATCH_CAPACITY / 4);
                }
                if !flushed {
                    // Still try to say why (bounded by `close_now`): a slow reader that
                    // reads again gets its 1013 after what was already on the wire.
                    conn.killed().cancel();
                    break;
                }
            }
            _ = ping.tick() => {
                let pinged = tokio::select! {
                    sent = sink.send(Message::Ping(Default::default())) => sent.is_ok(),
                    _ = &mut killed => false,
                };
                if !pinged {
                    conn.killed().cancel();
                    break;
                }
            }
        }
    }
    // What is still queued will never be sent: give its bytes back to the budgets.
    let unsent: usize = rx.close().iter().map(|text| text.len()).sum();
    conn.taken(unsent);
    if shutdown.is_cancelled() {
        conn.kick(Kick::ShuttingDown); // a reason set before the shutdown stays first
    }
    let (code, reason) = conn
        .kick_reason()
        .map(Kick::close_code)
        .unwrap_or((1000, "bye"));
    close_now(sink, code, reason).await;
}

//! The writer half of a connection: drains its bounded queue in batches, sends the
//! server's pings, and ends every connection with a Close frame saying why.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{stream::SplitSink, SinkExt};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    protocol::FrameText,
    registry::{ConnTx, Kick},
};

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

pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<FrameText>,
    conn: ConnTx,
    ping_every: Duration,
    shutdown: CancellationToken,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let killed_token = conn.killed().clone();
    let killed = killed_token.cancelled();
    tokio::pin!(killed);
    let shutting_down = shutdown.cancelled();
    tokio::pin!(shutting_down);
    loop {
        tokio::select! {
            biased;
            _ = &mut killed => break,
            _ = &mut shutting_down => {
                conn.kick(Kick::ShuttingDown);
                break;
            }
            next = rx.recv() => {
                let Some(text) = next else { break };
                // Batch whatever else is queued into one flush. The batch's bytes stay
                // counted against the budgets until flushed (or dropped), and a kill
                // ends the batch wherever it blocks (feeding or flushing).
                let mut batch_bytes = text.len();
                let batch = async {
                    sink.feed(Message::Text(text)).await?;
                    while let Ok(more) = rx.try_recv() {
                        batch_bytes += more.len();
                        sink.feed(Message::Text(more)).await?;
                    }
                    sink.flush().await
                };
                let flushed = tokio::select! {
                    flushed = batch => flushed.is_ok(),
                    _ = &mut killed => false,
                };
                conn.taken(batch_bytes);
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
    rx.close();
    while let Ok(text) = rx.try_recv() {
        conn.taken(text.len());
    }
    let (code, reason) = conn
        .kick_reason()
        .map(Kick::close_code)
        .unwrap_or((1000, "bye"));
    close_now(sink, code, reason).await;
}

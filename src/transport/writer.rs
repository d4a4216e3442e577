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
                // Batch whatever else is queued into one flush.
                conn.taken(text.len());
                let mut write = sink.feed(Message::Text(text)).await;
                while write.is_ok() {
                    match rx.try_recv() {
                        Ok(more) => {
                            conn.taken(more.len());
                            write = sink.feed(Message::Text(more)).await;
                        }
                        Err(_) => break,
                    }
                }
                let flushed = tokio::select! {
                    flushed = async { write?; sink.flush().await } => flushed.is_ok(),
                    _ = &mut killed => false,
                };
                if !flushed {
                    // Still try to say why (bounded by `close_now`): a slow reader that
                    // reads again gets its 1013 after what was already on the wire.
                    conn.killed().cancel();
                    break;
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    conn.killed().cancel();
                    return;
                }
            }
        }
    }
    let (code, reason) = conn
        .kick_reason()
        .map(Kick::close_code)
        .unwrap_or((1000, "bye"));
    close_now(sink, code, reason).await;
}

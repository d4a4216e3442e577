//! Non-reading history: a customer builds a chat of many ~8 KB messages, then sockets
//! from the attacker addresses resume that visitor's session, each ask several `history`
//! pages of 1,000 events with a tiny receive buffer, and never read. A hub that queues
//! whole pages for such a reader holds pages × sockets × the chat's size; one that sends
//! pages only as the client reads holds little. After the hold each socket reads for a
//! moment, to see whether the hub had closed it (and with which code) or still serves it.
//!
//! The chat is built from the legitimate address, over as many connections as the
//! per-connection message limit needs: it stands for a chat an attacker built slowly,
//! within every rate limit, before the attack. What is attacked is the hub's memory.

use std::time::Duration;

use tokio::{task::JoinSet, time::Instant};
use tokio_tungstenite::tungstenite::Message;

use super::{
    client::{answer, close_label, customer, start, Answer, Target},
    net::{anyhow_kind, ws_error_kind},
    report::{AttackReport, Tally},
};
use crate::{payload, wire::Out, ws::Ws};

/// Messages one builder connection sends before it reconnects: under the default
/// per-connection limit (`messages_per_10s = 50`), which a reconnect resets.
const PER_CONNECTION: usize = 45;
/// The receive buffer of the non-reading sockets, so the bytes stay with the hub.
const RECV_BUFFER: u32 = 4096;
/// How long each socket reads after the hold.
const READ_AFTER: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySize {
    pub messages: usize,
    pub text_bytes: usize,
    pub sockets: usize,
    pub pages: usize,
    pub hold: Duration,
}

/// The chat built: session, conversation and how many messages it holds.
struct Built {
    session: String,
    conversation_id: String,
    messages: usize,
    refusals: Tally,
}

async fn build(target: &Target, size: &HistorySize) -> Result<Built, String> {
    let local = target.addrs.legit_ip();
    let (mut ws, session) = customer(target, local, None, None).await?;
    let opening = payload::encode(0, "h.0", payload::FLAG_PLAIN, size.text_bytes);
    let conversation_id = start(&mut ws, "abuse-history", &opening).await?;
    let mut built = Built {
        session,
        conversation_id,
        messages: 1,
        refusals: Tally::default(),
    };
    let mut on_this_connection = 1;
    let mut failures_in_a_row = 0;
    while built.messages < size.messages && failures_in_a_row < 3 {
        if on_this_connection >= PER_CONNECTION {
            ws.close().await;
            ws = match customer(target, local, Some(&built.session), None).await {
                Ok((ws, _)) => ws,
                Err(kind) => {
                    built.refusals.add(format!("builder reconnect: {kind}"));
                    return Ok(built);
                }
            };
            on_this_connection = 0;
        }
        let id = format!("h.{}", built.messages);
        let text = payload::encode(0, &id, payload::FLAG_PLAIN, size.text_bytes);
        let req = ws.req();
        on_this_connection += 1;
        let sent = ws
            .send(&Out::Message {
                req: &req,
                conversation_id: &built.conversation_id,
                text: &text,
                client_msg_id: &id,
            })
            .await;
        if let Err(err) = sent {
            built
                .refusals
                .add(format!("builder message: {}", anyhow_kind(&err)));
            return Ok(built);
        }
        match answer(&mut ws, Some(&req)).await {
            Answer::Ack { .. } => {
                built.messages += 1;
                failures_in_a_row = 0;
            }
            Answer::Error(code) => {
                built.refusals.add(format!("builder message: error {code}"));
                failures_in_a_row += 1;
                // Perhaps the per-connection limit: a new connection resets it.
                on_this_connection = PER_CONNECTION;
            }
            other => {
                built
                    .refusals
                    .add(format!("builder message: {}", other.kind()));
                return Ok(built);
            }
        }
    }
    ws.close().await;
    Ok(built)
}

/// Reads for a moment after the hold: whether the hub had closed the socket (what came
/// before the Close is skipped), or still serves it. Frames are not parsed: a page of a
/// big chat costs the harness's CPU, which the legitimate chat shares.
async fn read_after(mut ws: Ws) -> String {
    let deadline = Instant::now() + READ_AFTER;
    let mut bytes = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, ws.next_message()).await {
            Err(_) => break,
            Ok(None) => return "closed without a Close frame".into(),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return close_label(frame.map(|f| u16::from(f.code)))
            }
            Ok(Some(Ok(message))) => {
                bytes += message.len();
                // Served: the hub still sends to it. Enough to know.
                if bytes >= 64 * 1024 {
                    break;
                }
            }
            Ok(Some(Err(err))) => return ws_error_kind(&err),
        }
    }
    if bytes == 0 {
        format!("still open, nothing read in {} s", READ_AFTER.as_secs())
    } else {
        "still open and served".into()
    }
}

pub async fn run(target: &Target, size: &HistorySize) -> AttackReport {
    let started = Instant::now();
    let mut report = AttackReport {
        name: "non-reading history".into(),
        ..AttackReport::default()
    };
    let built = match build(target, size).await {
        Ok(built) => built,
        Err(kind) => {
            report.sent = "nothing: the chat could not be built".into();
            report.answers.add(format!("builder: {kind}"));
            report.seconds = started.elapsed().as_secs_f64();
            return report;
        }
    };
    let chat_mb = (built.messages * size.text_bytes) as f64 / 1e6;
    report.notes.push(format!(
        "chat built with {} of {} messages ({chat_mb:.1} MB of text) in {:.1} s",
        built.messages,
        size.messages,
        started.elapsed().as_secs_f64()
    ));
    report.answers.merge(&built.refusals);

    let mut held = Vec::with_capacity(size.sockets);
    for i in 0..size.sockets {
        let local = target.addrs.attacker(i);
        let (mut ws, _) =
            match customer(target, local, Some(&built.session), Some(RECV_BUFFER)).await {
                Ok(opened) => opened,
                Err(kind) => {
                    report.answers.add(format!("open: {kind}"));
                    continue;
                }
            };
        let mut asked = 0;
        for _ in 0..size.pages {
            let req = ws.req();
            let request = Out::History {
                req: &req,
                conversation_id: &built.conversation_id,
                after_seq: 0,
                limit: 1000,
            };
            if ws.send(&request).await.is_err() {
                break;
            }
            asked += 1;
        }
        report
            .answers
            .add(format!("asked {asked} pages, then stopped reading"));
        held.push(ws);
    }
    report.sent = format!(
        "{} sockets from {} addresses, each {} × `history` (limit 1000) of a {chat_mb:.1} MB chat, never reading (receive buffer {RECV_BUFFER} B)",
        size.sockets,
        target.addrs.attacker_count(),
        size.pages
    );
    tokio::time::sleep(size.hold).await;

    let mut reads = JoinSet::new();
    for ws in held {
        reads.spawn(read_after(ws));
    }
    while let Some(outcome) = reads.join_next().await {
        match outcome {
            Ok(kind) => report.answers.add(format!("after the hold: {kind}")),
            Err(err) => report
                .answers
                .add(format!("after the hold: task failed: {err}")),
        }
    }

    // The chat is closed, so it does not sit in the queue for the next attacks.
    if let Ok((mut ws, _)) =
        customer(target, target.addrs.legit_ip(), Some(&built.session), None).await
    {
        let req = ws.req();
        if ws
            .send(&Out::Close {
                req: &req,
                conversation_id: &built.conversation_id,
            })
            .await
            .is_ok()
        {
            let _ = answer(&mut ws, Some(&req)).await;
        }
        ws.close().await;
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

//! The scripted clients of a recording: a customer that starts its chat at its time and
//! waits for `joined` (or gives up), and an agent that accepts every offer after its
//! response time and closes each chat after its handle time.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{TrafficLine, ANSWER};
use crate::{
    wire::{In, Out},
    ws::{ConnIds, Recv, Ws},
};

pub(super) fn start_text(chat: usize) -> String {
    format!("recorded chat {chat}")
}

/// One scheduled customer: starts at its time, waits for `joined` (or gives up after its
/// patience), then for `closed`. Returns its traffic line as observed and its wait.
pub(super) async fn customer(
    index: usize,
    chat: TrafficLine,
    url: String,
    ids: ConnIds,
    t0: Instant,
) -> anyhow::Result<(usize, TrafficLine, Option<u64>, Option<Instant>)> {
    let mut ws = tokio::time::timeout(ANSWER, Ws::connect(&url, &ids)).await??;
    let name = format!("rec-c{index}");
    ws.send(&Out::Hello {
        role: "customer",
        token: None,
        session: None,
        name: Some(&name),
        echo: None,
    })
    .await?;
    wait_for(&mut ws, ANSWER, |f| matches!(f, In::Welcome { .. })).await?;
    tokio::time::sleep_until(t0 + Duration::from_millis(chat.at_ms)).await;
    let req = ws.req();
    let text = start_text(index);
    ws.send(&Out::Start {
        req: &req,
        topic: &chat.topic,
        text: &text,
    })
    .await?;
    let mut conversation = None;
    wait_for(&mut ws, ANSWER, |f| match f {
        In::Ack {
            req: r,
            conversation_id,
            ..
        } if *r == req => {
            conversation = conversation_id.clone();
            true
        }
        _ => false,
    })
    .await?;
    let acked = Instant::now();
    let conversation = conversation.context("start ack without conversation_id")?;
    let patience = chat.patience_ms.map_or(ANSWER * 20, Duration::from_millis);
    let joined = wait_for(&mut ws, patience, |f| is_event(f, &conversation, "joined")).await;
    let (wait_ms, handle_from) = match joined {
        Ok(()) => (Some(ms(acked.elapsed())), Instant::now()),
        Err(_) if chat.patience_ms.is_some() => {
            let req = ws.req();
            ws.send(&Out::Close {
                req: &req,
                conversation_id: &conversation,
            })
            .await?;
            (None, acked)
        }
        Err(err) => return Err(err.context(format!("chat {index} was never joined"))),
    };
    let limit = Duration::from_millis(chat.handle_ms) + ANSWER;
    wait_for(&mut ws, limit, |f| is_event(f, &conversation, "closed")).await?;
    let closed = Instant::now();
    ws.close().await;
    let line = TrafficLine {
        at_ms: ms(acked.saturating_duration_since(t0)),
        topic: chat.topic,
        handle_ms: if wait_ms.is_some() {
            ms(closed - handle_from)
        } else {
            0
        },
        patience_ms: wait_ms.is_none().then(|| ms(closed - acked)),
        response_ms: None,
    };
    let joined_at = wait_ms.is_some().then_some(handle_from);
    Ok((index, line, wait_ms, joined_at))
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn is_event(frame: &In, conversation: &str, kind: &str) -> bool {
    matches!(frame, In::Event(e) if e.conversation_id == conversation && e.kind == kind)
}

/// Reads frames until `want` says yes, within `limit`.
async fn wait_for(
    ws: &mut Ws,
    limit: Duration,
    mut want: impl FnMut(&In) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, ws.recv()).await {
            Err(_) => bail!("no answer within {limit:?}"),
            Ok(received) => match received? {
                Recv::Frame(In::Error { code, message, .. }) => {
                    bail!("hub error: {code} {message}")
                }
                Recv::Frame(frame) if want(&frame) => return Ok(()),
                Recv::Frame(_) => continue,
                Recv::Closed(code) => bail!("the hub closed the connection ({code:?})"),
            },
        }
    }
}

/// A scripted agent: accepts every offer `response` after it came, closes each chat it
/// joined after that chat's handle time (looked up by the start text the offer previews).
pub(super) struct AgentBot {
    pub(super) id: String,
    pub(super) url: String,
    pub(super) token: String,
    pub(super) response: Duration,
    /// Start text → (chat index, handle ms).
    pub(super) handles: Arc<HashMap<String, (usize, u64)>>,
}

enum Due {
    Accept(String),
    Close(String),
}

impl AgentBot {
    pub(super) async fn run(
        self,
        ids: &ConnIds,
        stop: CancellationToken,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<(Vec<(usize, Instant)>, Vec<u64>)> {
        let mut ws = tokio::time::timeout(ANSWER, Ws::connect(&self.url, ids)).await??;
        ws.send(&Out::Hello {
            role: "agent",
            token: Some(&self.token),
            session: None,
            name: None,
            echo: None,
        })
        .await?;
        wait_for(&mut ws, ANSWER, |f| matches!(f, In::Welcome { .. })).await?;
        let req = ws.req();
        ws.send(&Out::Status {
            req: &req,
            status: "available",
        })
        .await?;
        wait_for(
            &mut ws,
            ANSWER,
            |f| matches!(f, In::Ack { req: r, .. } if *r == req),
        )
        .await?;
        if ready.send(()).is_err() {
            return Ok((Vec::new(), Vec::new()));
        }
        // Per conversation offered: (chat index, when the offer came); per join: the
        // same, handed back at the end.
        let mut offers: HashMap<String, (usize, Instant)> = HashMap::new();
        let mut joins = Vec::new();
        let mut last_closed: Option<Instant> = None;
        let mut release_ms = Vec::new();
        // Due actions, earliest first (seq keeps equal times in order).
        let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
        let mut actions: HashMap<u64, Due> = HashMap::new();
        let mut seq = 0u64;
        let mut handles_of: HashMap<String, u64> = HashMap::new();
        loop {
            let next = due.peek().map(|Reverse((at, _))| *at);
            let timer = tokio::time::sleep_until(next.unwrap_or_else(|| Instant::now() + ANSWER));
            tokio::select! {
                () = stop.cancelled() => break,
                () = timer, if next.is_some() => {
                    let Some(Reverse((_, key))) = due.pop() else { continue };
                    let Some(action) = actions.remove(&key) else { continue };
                    let req = ws.req();
                    match &action {
                        Due::Accept(offer_id) => ws.send(&Out::Accept { req: &req, offer_id }).await?,
                        Due::Close(conversation_id) => {
                            ws.send(&Out::Close { req: &req, conversation_id }).await?
                        }
                    }
                }
                received = ws.recv() => {
                    let frame = match received? {
                        Recv::Frame(frame) => frame,
                        Recv::Closed(code) => bail!("agent {}: the hub closed ({code:?})", self.id),
                    };
                    let (at, action) = match frame {
                        In::Offer { offer_id, conversation_id, preview, waited_ms, .. } => {
                            // A slot freed while this chat waited: the hub's time from
                            // the close to the offer of the freed slot.
                            if let Some(closed) = last_closed.take() {
                                let gap = ms(closed.elapsed());
                                if waited_ms > gap {
                                    release_ms.push(gap);
                                }
                            }
                            if let Some((chat, handle)) = self.handles.get(&preview) {
                                handles_of.insert(conversation_id.clone(), *handle);
                                offers.insert(conversation_id, (*chat, Instant::now()));
                            }
                            (Instant::now() + self.response, Due::Accept(offer_id))
                        }
                        In::Event(e) if e.kind == "closed" => {
                            last_closed = Some(Instant::now());
                            continue;
                        }
                        In::Event(e) if e.kind == "joined"
                            && e.agent.as_ref().is_some_and(|a| a.id == self.id) =>
                        {
                            let handle = handles_of.remove(&e.conversation_id).unwrap_or(0);
                            joins.extend(offers.remove(&e.conversation_id));
                            let at = Instant::now() + Duration::from_millis(handle);
                            (at, Due::Close(e.conversation_id))
                        }
                        _ => continue,
                    };
                    seq += 1;
                    due.push(Reverse((at, seq)));
                    actions.insert(seq, action);
                }
            }
        }
        ws.close().await;
        Ok((joins, release_ms))
    }
}

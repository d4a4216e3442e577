//! Anonymous chat flood: many new visitors from the attacker addresses each say `hello`
//! without a session and `start` a chat, and stay connected so their chats keep waiting.
//! Then a legitimate newcomer starts a chat from the legitimate address and reads its
//! queue position: behind the whole flood on a hub without flood control. Counts how the
//! hub answered each visitor (welcome refused, start acked or refused by code). At the
//! end each visitor closes its chat, so that the queue is empty again.

use std::{sync::Arc, time::Duration};

use tokio::{sync::Semaphore, task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    client::{answer, customer, start, Target},
    report::AttackReport,
};
use crate::{
    wire::{In, Out},
    ws::Recv,
};

/// Visitors connecting at once.
const CONNECTING: usize = 64;

/// The legitimate newcomer: its queue position (or why it has none).
async fn newcomer(target: &Target) -> String {
    let (mut ws, _) = match customer(target, target.addrs.legit_ip(), None, None).await {
        Ok(opened) => opened,
        Err(kind) => return format!("a legitimate newcomer could not connect: {kind}"),
    };
    let conversation_id = match start(&mut ws, "abuse-newcomer", "hello, is anyone there?").await {
        Ok(id) => id,
        Err(kind) => return format!("a legitimate newcomer's start was refused: {kind}"),
    };
    let position = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.recv().await {
                Ok(Recv::Frame(In::Queue { position, .. })) => return position,
                Ok(Recv::Frame(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    let req = ws.req();
    if ws
        .send(&Out::Close {
            req: &req,
            conversation_id: &conversation_id,
        })
        .await
        .is_ok()
    {
        let _ = answer(&mut ws, Some(&req)).await;
    }
    ws.close().await;
    match position {
        Some(position) => {
            format!(
                "a legitimate newcomer starting after the flood waits at queue position {position}"
            )
        }
        None => "a legitimate newcomer got no queue position within 3 s".into(),
    }
}

pub async fn run(target: &Target, visitors: usize, hold: Duration) -> AttackReport {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let stop = CancellationToken::new();
    let (done, mut attempts) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut tasks = JoinSet::new();
    for i in 0..visitors {
        let (gate, stop, done, target) = (
            Arc::clone(&gate),
            stop.clone(),
            done.clone(),
            target.clone(),
        );
        tasks.spawn(async move {
            let attempt = {
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                match customer(&target, target.addrs.attacker(i), None, None).await {
                    Err(kind) => Err(kind),
                    Ok((mut ws, _)) => match start(&mut ws, "abuse-flood", "flood").await {
                        Ok(id) => Ok((ws, id)),
                        Err(kind) => Err(format!("start: {kind}")),
                    },
                }
            };
            match attempt {
                Ok((mut ws, conversation_id)) => {
                    // The orchestrator collects every attempt; it outlives this send.
                    let _ = done.send("start acked".into());
                    // Keep reading (pings, queue updates) until the attack ends.
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            received = ws.recv() => match received {
                                Ok(Recv::Frame(_)) => {}
                                _ => return,
                            },
                        }
                    }
                    // Closed, not left waiting: a later run against the same hub should
                    // not find this queue.
                    let req = ws.req();
                    let close = Out::Close {
                        req: &req,
                        conversation_id: &conversation_id,
                    };
                    if ws.send(&close).await.is_ok() {
                        let _ = answer(&mut ws, Some(&req)).await;
                    }
                    ws.drop_abruptly();
                }
                Err(kind) => {
                    let _ = done.send(kind);
                }
            }
        });
    }
    drop(done);
    let mut report = AttackReport {
        name: "anonymous chat flood".into(),
        sent: format!(
            "{visitors} new visitors from {} addresses, each `hello` without a session then `start`, staying connected",
            target.addrs.attacker_count()
        ),
        ..AttackReport::default()
    };
    for _ in 0..visitors {
        match attempts.recv().await {
            Some(kind) => report.answers.add(kind),
            None => break,
        }
    }
    report.notes.push(format!(
        "all {visitors} attempts answered in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    report.notes.push(newcomer(target).await);
    tokio::time::sleep(hold).await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    report.seconds = started.elapsed().as_secs_f64();
    report
}

//! The floor's clients: one pair per customer of the scenario, a customer end and an agent
//! end on two sockets of the relay. They send the same `message` frames (same JSON, same
//! size) as the hub's customers and agents, at the same rate and window, and parse what
//! they receive, so the client-side cost is the same in every run and a ratio speaks
//! about the server.

use std::{
    collections::VecDeque,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use rustc_hash::FxHashSet;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    metrics::{Lat, Metrics},
    pacer::{rearm, Pacer},
    payload,
    scenario::Scenario,
    wire::Out,
    ws,
};

/// A relayed `message` frame or `event` frame (both have the message's `text` at the top
/// level), as far as the floor's clients read it; an `ack` has no text.
#[derive(Deserialize)]
struct Relayed {
    #[serde(default)]
    text: String,
}

pub(super) async fn pair(
    index: usize,
    (agent_url, customer_url): (String, String),
    scenario: Arc<Scenario>,
    metrics: Arc<Metrics>,
    start: Instant,
    deadline: Option<Instant>,
) -> anyhow::Result<()> {
    tokio::time::sleep_until(start).await;
    // The agent end first: on one relay it waits there for its partner; across two nodes
    // it is in place before the customer end sends anything.
    let agent_side = ws::connect(&agent_url).await?;
    metrics.connection_opened();
    let customer_side = ws::connect(&customer_url).await?;
    metrics.connection_opened();
    let agent = tokio::spawn(floor_agent(
        agent_side,
        Arc::clone(&scenario),
        Arc::clone(&metrics),
    ));
    let result = floor_customer(index, customer_side, &scenario, &metrics, deadline).await;
    metrics.connection_closed();
    let agent_result = agent.await.context("floor agent task")?;
    metrics.connection_closed();
    result.and(agent_result)
}

fn message_frame(conversation: &str, req: u64, text: &str, id: &str) -> anyhow::Result<Message> {
    let req = format!("r{req}");
    let json = Out::Message {
        req: &req,
        conversation_id: conversation,
        text,
        client_msg_id: id,
    }
    .to_text()?;
    Ok(Message::Text(json.into()))
}

/// The customer end of a pair: chats of `messages + 1` messages at the scenario's rate.
async fn floor_customer(
    index: usize,
    mut socket: ws::Stream,
    scenario: &Scenario,
    metrics: &Metrics,
    deadline: Option<Instant>,
) -> anyhow::Result<()> {
    let conversation = format!("p{index}");
    let per_chat = scenario.messages + 1;
    let reply_timeout = Duration::from_millis(scenario.reply_timeout_ms);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    // Two timers for the pair, not two per frame read (see `rearm`), as the hub's customers.
    let send_timer = tokio::time::sleep_until(far);
    let drain_timer = tokio::time::sleep_until(far);
    tokio::pin!(send_timer, drain_timer);
    let mut req = 0u64;
    let mut chat = 0u32;
    loop {
        let mut pacer = Pacer::new(
            scenario.interval(),
            scenario.effective_window(),
            Instant::now(),
        );
        let mut awaiting: FxHashSet<String> = FxHashSet::default();
        let mut n = 0u32;
        let mut drain_until: Option<Instant> = None;
        loop {
            let stop_sending = n >= per_chat || deadline.is_some_and(|d| Instant::now() >= d);
            if stop_sending {
                if awaiting.is_empty() {
                    break;
                }
                let until = *drain_until.get_or_insert_with(|| Instant::now() + reply_timeout);
                if Instant::now() >= until {
                    metrics
                        .counters
                        .replies_missing
                        .fetch_add(awaiting.len() as u64, Ordering::Relaxed);
                    break;
                }
            }
            let send_at = if stop_sending {
                None
            } else {
                pacer.next_send()
            };
            rearm(send_timer.as_mut(), send_at);
            rearm(drain_timer.as_mut(), drain_until);
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let relayed: Relayed = serde_json::from_str(text.as_str()).context("floor frame")?;
                        if let Some(stamp) = payload::decode(&relayed.text) {
                            metrics.record(Lat::AgentToCustomer, metrics.clock.since(stamp.sent_us));
                            if stamp.replies_to().is_some_and(|id| awaiting.remove(id)) {
                                pacer.on_reply();
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return Err(err).context("floor customer read"),
                    None => bail!("the floor relay closed pair {index}"),
                },
                () = &mut send_timer, if send_at.is_some() => {
                    let id = payload::customer_msg_id(index, chat, n);
                    n += 1;
                    req += 1;
                    let text = payload::encode(metrics.clock.now_us(), &id, payload::FLAG_PLAIN, scenario.message_size);
                    socket.send(message_frame(&conversation, req, &text, &id)?).await.context("floor customer send")?;
                    metrics.sent();
                    awaiting.insert(id);
                    pacer.on_sent(Instant::now());
                }
                () = &mut drain_timer, if drain_until.is_some() => {}
            }
        }
        chat += 1;
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    // Closing our side ends the relay of both sockets; the agent end then sees the close.
    socket.close(None).await.ok();
    while let Some(Ok(_)) = socket.next().await {}
    Ok(())
}

/// The agent end of a pair: answer each message after the think time.
async fn floor_agent(
    mut socket: ws::Stream,
    scenario: Arc<Scenario>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let think = Duration::from_millis(scenario.think_ms);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut due: VecDeque<(Instant, String)> = VecDeque::new();
    let mut req = 0u64;
    // One reply timer, not one per frame read (see `rearm`).
    let reply_timer = tokio::time::sleep_until(far);
    tokio::pin!(reply_timer);
    loop {
        let next = due.front().map(|d| d.0);
        rearm(reply_timer.as_mut(), next);
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let relayed: Relayed = serde_json::from_str(text.as_str()).context("floor frame")?;
                    if let Some(stamp) = payload::decode(&relayed.text) {
                        metrics.record(Lat::CustomerToAgent, metrics.clock.since(stamp.sent_us));
                        due.push_back((Instant::now() + think, stamp.id.to_string()));
                    }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err).context("floor agent read"),
            },
            () = &mut reply_timer, if next.is_some() => {
                if let Some((_, customer_msg)) = due.pop_front() {
                    let id = payload::reply_id(&customer_msg);
                    req += 1;
                    let text = payload::encode(metrics.clock.now_us(), &id, payload::FLAG_PLAIN, scenario.message_size);
                    socket.send(message_frame("p", req, &text, &id)?).await.context("floor agent send")?;
                    metrics.sent();
                }
            }
        }
    }
    socket.close(None).await.ok();
    Ok(())
}

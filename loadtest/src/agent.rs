//! A simulated agent: `hello` with its token, `status available`, accept every offer,
//! read the history on joining, answer each customer message after the think time, and
//! hand the conversation off when the customer's message asks for it (flag `T`, see
//! [`crate::payload`]). It keeps a [`SeenLog`] per conversation for verification and
//! hands it to the run's [`Verifier`](crate::verify::Verifier) as soon as it is done
//! with the conversation (it heard its own `left` or the `closed`, and no request of its
//! about it is unanswered), so what it holds follows its open conversations. It records
//! customer→agent latency, offer wait and ack latency. If the hub drops its socket it
//! reconnects and catches up through `history`, as the console does: to the same hub, or,
//! when that one cannot be reached (a killed node), to the next of the run's hubs
//! ([`crate::hubs`]).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use anyhow::Context;
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::{sync::oneshot, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    failover::Moving,
    metrics::{Lat, Metrics},
    pacer::rearm,
    payload,
    scenario::TransferTo,
    shared::Shared,
    verify::{Acked, AgentRecord, SeenLog},
    wire::{Event, In, Out},
    ws::{Recv, Ws},
};

/// Who the agent is.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub id: String,
    pub token: String,
    /// The hub it starts on (an index into the run's hubs).
    pub hub: usize,
    /// The agent it transfers to with `transfer_to = "agent"`.
    pub transfer_peer: Option<String>,
}

/// What an agent hands back at the end (its records went to the run's verifier).
#[derive(Debug)]
pub struct AgentOutcome {
    pub id: String,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// How often an agent reconnects after the hub dropped it before it gives up.
const MAX_RECONNECTS: u32 = 20;

struct Conv {
    record: AgentRecord,
    topic: String,
    /// A member: joined and neither left nor closed.
    active: bool,
    /// It heard its own `left` or the `closed`: nothing more of this membership will come.
    ended: bool,
    /// Customer message ids with a reply seen in the conversation (by anyone).
    replied: FxHashSet<String>,
    /// Customer message ids this agent scheduled an answer for.
    scheduled: FxHashSet<String>,
    transferred: bool,
}

enum Pending {
    Status,
    Accept {
        conversation_id: String,
        topic: String,
    },
    Reply(Due, u64),
    History {
        conversation_id: String,
        after: u64,
    },
    Transfer {
        conversation_id: String,
    },
}

impl Pending {
    /// Whether the answer to this request still belongs in the conversation's record.
    fn concerns(&self, conversation: &str) -> bool {
        match self {
            Pending::Status => false,
            Pending::Accept {
                conversation_id, ..
            }
            | Pending::History {
                conversation_id, ..
            }
            | Pending::Transfer { conversation_id } => conversation_id == conversation,
            Pending::Reply(due, _) => due.conversation_id == conversation,
        }
    }
}

/// A reply to send once the think time has passed.
#[derive(Debug, Clone)]
struct Due {
    at: Instant,
    conversation_id: String,
    customer_msg: String,
    transfer_after: bool,
}

struct Agent {
    spec: AgentSpec,
    shared: Arc<Shared>,
    convs: FxHashMap<String, Conv>,
    pending: FxHashMap<String, Pending>,
    due: VecDeque<Due>,
    ready: Option<oneshot::Sender<anyhow::Result<()>>>,
    think: Duration,
    /// The hub it is on now.
    hub: usize,
    /// Set while it comes back from a killed node.
    moving: Option<Moving>,
    /// History reads whose answer died with a connection (conversation → after which
    /// seq), read again on the next one: the events before the resume point may be
    /// ones it never saw (the opening message read on `joined`).
    unread: FxHashMap<String, u64>,
}

/// Runs one agent until `stop`; `ready` fires once it is available (or failed to be).
pub async fn run_agent(
    spec: AgentSpec,
    shared: Arc<Shared>,
    ready: oneshot::Sender<anyhow::Result<()>>,
    stop: CancellationToken,
) -> AgentOutcome {
    let think = Duration::from_millis(shared.scenario.think_ms);
    let mut agent = Agent {
        shared,
        convs: FxHashMap::default(),
        pending: FxHashMap::default(),
        due: VecDeque::new(),
        ready: Some(ready),
        think,
        hub: spec.hub,
        moving: None,
        unread: FxHashMap::default(),
        spec,
    };
    let error = agent.run(&stop).await.err().map(|e| format!("{e:#}"));
    if let Some(error) = &error {
        warn!(agent_id = %agent.spec.id, cause = %error, "agent stopped early");
        if let Some(ready) = agent.ready.take() {
            // The run is waiting for this agent; tell it why it will never be ready.
            if ready.send(Err(anyhow::anyhow!("{error}"))).is_err() {
                debug!("nobody waits for agent readiness any more");
            }
        }
    }
    // Whatever is left: conversations still held, or whose end the agent never heard.
    for conv in agent.convs.into_values() {
        agent.shared.verifier.agent(conv.record);
    }
    AgentOutcome {
        id: agent.spec.id,
        error,
    }
}

impl Agent {
    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    async fn run(&mut self, stop: &CancellationToken) -> anyhow::Result<()> {
        let mut reconnects = 0;
        loop {
            let mut ws = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                ws = self.connect_failover() => ws?,
            };
            self.metrics().connection_opened();
            let outcome = self.session(&mut ws, stop).await;
            self.metrics().connection_closed();
            match outcome {
                Ok(true) => {
                    ws.close().await;
                    return Ok(());
                }
                Ok(false) => self.shared.failover.lost(&mut self.moving),
                Err(err) => {
                    warn!(agent_id = %self.spec.id, cause = %err, "agent connection failed");
                    self.metrics().error("agent_connection_failed");
                    self.shared.failover.lost(&mut self.moving);
                }
            }
            reconnects += 1;
            if reconnects > MAX_RECONNECTS {
                anyhow::bail!("agent {}: connection lost {reconnects} times", self.spec.id);
            }
            Metrics::count(&self.metrics().counters.reconnects);
            // Replies sent without an ack may or may not be stored: send them again with
            // the same client_msg_id, as a console would.
            let now = Instant::now();
            let mut resend: Vec<Due> = Vec::new();
            for (_, pending) in std::mem::take(&mut self.pending) {
                match pending {
                    Pending::Reply(due, _) => resend.push(Due { at: now, ..due }),
                    Pending::History {
                        conversation_id,
                        after,
                    } => self.owe_history(conversation_id, after),
                    _ => {}
                }
            }
            resend.extend(self.due.drain(..));
            self.due = resend.into();
            // The dropped requests may have been all that kept ended conversations open.
            let ended: Vec<String> = self
                .convs
                .iter()
                .filter(|(_, c)| c.ended)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ended {
                self.finish_if_done(&id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Connects to its hub, or to the next ones in turn while they cannot be reached.
    async fn connect_failover(&mut self) -> anyhow::Result<Ws> {
        let mut failures = 0;
        loop {
            let err = match self.connect().await {
                Ok(ws) => return Ok(ws),
                Err(err) => err,
            };
            failures += 1;
            self.metrics().error("agent_connect_failed");
            let Some(pause) = self.shared.hubs.retry_pause(failures) else {
                return Err(err.context(format!("no hub answered {failures} attempts")));
            };
            debug!(agent_id = %self.spec.id, hub = self.hub, cause = %format!("{err:#}"), "agent cannot connect; trying the next hub");
            self.hub = self.shared.hubs.after(self.hub);
            tokio::time::sleep(pause).await;
        }
    }

    async fn connect(&mut self) -> anyhow::Result<Ws> {
        let shared = Arc::clone(&self.shared);
        let url = &shared.hubs.get(self.hub).agent_ws;
        let mut ws = tokio::time::timeout(Duration::from_secs(10), Ws::connect(url, &shared.ids))
            .await
            .context("no connection within 10 s")??;
        ws.send(&Out::Hello {
            role: "agent",
            token: Some(&self.spec.token),
            session: None,
            name: None,
            echo: (!self.shared.scenario.echo).then_some(false),
        })
        .await?;
        let conversations = loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.recv())
                .await
                .context("no welcome within 10 s")??
            {
                Recv::Frame(In::Welcome { conversations, .. }) => {
                    self.shared.failover.reconnected(&mut self.moving);
                    break conversations;
                }
                Recv::Frame(In::Error { code, message, .. }) => {
                    anyhow::bail!("hello refused: {code} {message}")
                }
                Recv::Frame(_) => continue,
                Recv::Closed(code) => anyhow::bail!("closed before welcome (code {code:?})"),
            }
        };
        let req = ws.req();
        ws.send(&Out::Status {
            req: &req,
            status: "available",
        })
        .await?;
        self.pending.insert(req, Pending::Status);
        // After a reconnect: catch up on the conversations the agent still holds.
        // A conversation it does not know yet was assigned while it was away (its
        // accept's answer died with its hub): read it whole, as a console would.
        // A history read that died with the last connection is read again from where
        // it started (owed until this one has it asked).
        for summary in conversations {
            let resume = self
                .convs
                .get(&summary.conversation_id)
                .map_or(0, |conv| conv.record.seen.resume_after());
            let after = self
                .unread
                .get(&summary.conversation_id)
                .map_or(resume, |&from| from.min(resume));
            // The welcome says it holds the conversation: it is a member before its history
            // is read, so the customer's messages before a `joined` it never heard (taken
            // over while its node was down) are answered too.
            let conv = self.conv(&summary.conversation_id);
            conv.active = true;
            conv.ended = false;
            self.request_history(&mut ws, &summary.conversation_id, after)
                .await?;
            self.unread.remove(&summary.conversation_id);
        }
        // One it no longer holds (closed meanwhile, say) is read all the same: what it
        // was a member for is what it would have seen.
        let owed: Vec<(String, u64)> = self.unread.iter().map(|(c, &a)| (c.clone(), a)).collect();
        for (conversation_id, after) in owed {
            self.request_history(&mut ws, &conversation_id, after)
                .await?;
            self.unread.remove(&conversation_id);
        }
        Ok(ws)
    }

    /// One connection's life. `Ok(true)`: stopped on request; `Ok(false)`: the hub closed it.
    async fn session(&mut self, ws: &mut Ws, stop: &CancellationToken) -> anyhow::Result<bool> {
        // One stop waiter and one reply timer for the connection, not one of each per
        // frame read (see `rearm`).
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let stopped = stop.cancelled();
        let reply_timer = tokio::time::sleep_until(far);
        tokio::pin!(stopped, reply_timer);
        loop {
            let next_due = self.due.front().map(|d| d.at);
            rearm(reply_timer.as_mut(), next_due);
            tokio::select! {
                () = &mut stopped => return Ok(true),
                received = ws.recv() => match received? {
                    Recv::Frame(frame) => self.on_frame(ws, frame).await?,
                    Recv::Closed(code) => {
                        self.metrics().error(&format!("agent_ws_closed_{}", code.unwrap_or(0)));
                        return Ok(false);
                    }
                },
                () = &mut reply_timer, if next_due.is_some() => {
                    if let Some(due) = self.due.pop_front() {
                        self.send_reply(ws, due).await?;
                    }
                }
            }
        }
    }

    async fn on_frame(&mut self, ws: &mut Ws, frame: In) -> anyhow::Result<()> {
        match frame {
            In::Offer {
                offer_id,
                conversation_id,
                topic,
                preview,
                transfer,
                ..
            } => {
                Metrics::count(&self.metrics().counters.offers);
                if transfer.is_none() {
                    if let Some(stamp) = payload::decode(&preview) {
                        let waited = self.metrics().clock.since(stamp.sent_us);
                        self.metrics().record(Lat::FirstOffer, waited);
                    }
                }
                let req = ws.req();
                ws.send(&Out::Accept {
                    req: &req,
                    offer_id: &offer_id,
                })
                .await?;
                self.pending.insert(
                    req,
                    Pending::Accept {
                        conversation_id,
                        topic,
                    },
                );
            }
            In::Ack {
                req,
                seq,
                ts,
                events,
                more,
                ..
            } => match self.pending.remove(&req) {
                Some(Pending::Status) => {
                    if let Some(ready) = self.ready.take() {
                        if ready.send(Ok(())).is_err() {
                            debug!("nobody waits for agent readiness any more");
                        }
                    }
                }
                Some(Pending::Accept {
                    conversation_id,
                    topic,
                }) => {
                    self.conv(&conversation_id).topic = topic;
                    self.finish_if_done(&conversation_id);
                }
                Some(Pending::Reply(due, sent_us)) => {
                    let latency = self.metrics().clock.since(sent_us);
                    self.metrics().record(Lat::Ack, latency);
                    Metrics::count(&self.metrics().counters.messages_acked);
                    self.shared.failover.traffic(&mut self.moving);
                    let id = payload::reply_id(&due.customer_msg);
                    let conn = ws.conn;
                    let conv = self.conv(&due.conversation_id);
                    match seq {
                        Some(seq) => {
                            // With `ts` the ack stands for the event (no echo): what
                            // reading our reply would have noted, noted now.
                            if ts.is_some() {
                                conv.record.seen.acked(conn, seq);
                                conv.replied.insert(due.customer_msg.clone());
                            }
                            conv.record.acked.push(Acked { seq, id });
                        }
                        None => self.metrics().error("ack_without_seq"),
                    }
                    if due.transfer_after {
                        self.transfer(ws, &due.conversation_id).await?;
                    }
                    self.finish_if_done(&due.conversation_id);
                }
                Some(Pending::History {
                    conversation_id, ..
                }) => {
                    let events = events.unwrap_or_default();
                    let last = events.last().map(|e| e.seq);
                    for event in &events {
                        self.on_event(event, None);
                    }
                    if let (Some(true), Some(last)) = (more, last) {
                        self.request_history(ws, &conversation_id, last).await?;
                    }
                    self.finish_if_done(&conversation_id);
                }
                Some(Pending::Transfer { conversation_id }) => {
                    self.finish_if_done(&conversation_id);
                }
                None => {}
            },
            In::Error { req, code, message } => {
                let what = req.as_ref().and_then(|r| self.pending.remove(r));
                match what {
                    // Another agent (or tab) took the offer first: normal.
                    Some(Pending::Accept {
                        conversation_id, ..
                    }) if code == "conflict" => self.finish_if_done(&conversation_id),
                    Some(Pending::Status) => {
                        anyhow::bail!("status available refused: {code} {message}")
                    }
                    Some(Pending::Reply(due, _)) => {
                        let still_member = self
                            .convs
                            .get(&due.conversation_id)
                            .is_some_and(|c| c.active);
                        self.metrics().error(&format!("agent_reply_{code}"));
                        // Retry what the hub says may be retried, while still a member.
                        if still_member && (code == "unavailable" || code == "rate_limited") {
                            self.due.push_back(Due {
                                at: Instant::now() + Duration::from_millis(100),
                                ..due
                            });
                        } else {
                            self.finish_if_done(&due.conversation_id);
                        }
                    }
                    Some(Pending::Transfer { conversation_id }) => {
                        Metrics::count(&self.metrics().counters.transfers_failed);
                        self.metrics().error(&format!("transfer_{code}"));
                        self.finish_if_done(&conversation_id);
                    }
                    // Named by request, so a report says which answer was refused.
                    Some(Pending::Accept {
                        conversation_id, ..
                    }) => {
                        self.metrics().error(&format!("accept_{code}"));
                        self.finish_if_done(&conversation_id);
                    }
                    Some(Pending::History {
                        conversation_id, ..
                    }) => {
                        self.metrics().error(&format!("history_{code}"));
                        self.finish_if_done(&conversation_id);
                    }
                    None => self.metrics().error(&code),
                }
            }
            In::Event(event) => {
                let joined_me = event.kind == "joined"
                    && event.agent.as_ref().is_some_and(|a| a.id == self.spec.id);
                self.on_event(&event, Some(ws.conn));
                if joined_me {
                    // Read what was said before (at least the opening text).
                    self.request_history(ws, &event.conversation_id, 0).await?;
                }
                self.finish_if_done(&event.conversation_id);
            }
            In::TransferFailed { reason, .. } => {
                Metrics::count(&self.metrics().counters.transfers_failed);
                self.metrics().error(&format!("transfer_failed_{reason}"));
            }
            In::Status { status } if status != "available" => {
                // The router set us away (e.g. missed offers): come back.
                self.metrics().error(&format!("agent_set_{status}"));
                let req = ws.req();
                ws.send(&Out::Status {
                    req: &req,
                    status: "available",
                })
                .await?;
                self.pending.insert(req, Pending::Status);
            }
            In::Welcome { .. }
            | In::Queue { .. }
            | In::OfferRevoked { .. }
            | In::Status { .. }
            | In::Other => {}
        }
        Ok(())
    }

    /// Hands the conversation's record to the verifier and forgets the conversation once
    /// the agent is done with it: it heard the end of its membership and no answer to a
    /// request about it is still due (a late ack would belong in the record). Offered the
    /// conversation again later, it starts a new record, which the verifier joins to this one.
    fn finish_if_done(&mut self, conversation_id: &str) {
        // Most calls are for conversations in full swing: look at the flag before the
        // requests in flight.
        if !self.convs.get(conversation_id).is_some_and(|c| c.ended) {
            return;
        }
        // A history read that died with a connection is owed too (read on the next one).
        if self.unread.contains_key(conversation_id)
            || self.pending.values().any(|p| p.concerns(conversation_id))
        {
            return;
        }
        if let Some(conv) = self.convs.remove(conversation_id) {
            self.shared.verifier.agent(conv.record);
        }
    }

    fn conv(&mut self, conversation_id: &str) -> &mut Conv {
        // Nearly every call (one per event read) is for a conversation already held: look
        // it up before making a key, rather than copying the ids for `entry` every time.
        if !self.convs.contains_key(conversation_id) {
            let conv = Conv {
                record: AgentRecord {
                    conversation_id: conversation_id.to_string(),
                    agent: self.spec.id.clone(),
                    acked: Vec::new(),
                    seen: SeenLog::default(),
                },
                topic: String::new(),
                active: false,
                ended: false,
                replied: FxHashSet::default(),
                scheduled: FxHashSet::default(),
                transferred: false,
            };
            self.convs.insert(conversation_id.to_string(), conv);
        }
        self.convs
            .get_mut(conversation_id)
            .expect("the conversation was inserted above")
    }

    /// Applies one event, live (`conn`) or from `history` (`None`).
    fn on_event(&mut self, event: &Event, conn: Option<u64>) {
        let about_me = event.agent.as_ref().is_some_and(|a| a.id == self.spec.id);
        let think = self.think;
        let clock = self.shared.metrics.clock;
        let conv = self.conv(&event.conversation_id);
        let new = match conn {
            Some(conn) => conv.record.seen.live(conn, event.seq),
            None => conv.record.seen.history(event.seq),
        };
        let mut schedule = None;
        let mut latency = None;
        match event.kind.as_str() {
            "joined" if about_me => {
                conv.active = true;
                conv.ended = false;
            }
            "left" if about_me => {
                conv.active = false;
                conv.ended = true;
            }
            "closed" => {
                conv.active = false;
                conv.ended = true;
            }
            "transfer" => {
                if let Some(topic) = &event.to_topic {
                    conv.topic.clone_from(topic);
                }
            }
            "message" => {
                let stamp = event.text.as_deref().and_then(payload::decode);
                if let Some(stamp) = stamp {
                    if event.is_message_from("customer") {
                        if new && conn.is_some() {
                            latency = Some(clock.since(stamp.sent_us));
                        }
                        if conv.active
                            && !conv.replied.contains(stamp.id)
                            && conv.scheduled.insert(stamp.id.to_string())
                        {
                            schedule = Some(Due {
                                at: Instant::now() + think,
                                conversation_id: event.conversation_id.clone(),
                                customer_msg: stamp.id.to_string(),
                                transfer_after: stamp.flag == payload::FLAG_TRANSFER
                                    && !conv.transferred,
                            });
                        }
                    } else if let Some(customer_msg) = stamp.replies_to() {
                        conv.replied.insert(customer_msg.to_string());
                    }
                }
            }
            _ => {}
        }
        if let Some(us) = latency {
            self.shared.metrics.record(Lat::CustomerToAgent, us);
            self.shared.failover.traffic(&mut self.moving);
        }
        if let Some(due) = schedule {
            self.due.push_back(due);
        }
    }

    /// Notes a history read (from after `after`) to ask on the next connection.
    fn owe_history(&mut self, conversation_id: String, after: u64) {
        let unread = self.unread.entry(conversation_id).or_insert(after);
        *unread = (*unread).min(after);
    }

    async fn request_history(
        &mut self,
        ws: &mut Ws,
        conversation_id: &str,
        after: u64,
    ) -> anyhow::Result<()> {
        let req = ws.req();
        let sent = ws
            .send(&Out::History {
                req: &req,
                conversation_id,
                after_seq: after,
                limit: 1000,
            })
            .await;
        if let Err(err) = sent {
            self.owe_history(conversation_id.to_string(), after);
            return Err(err);
        }
        self.pending.insert(
            req,
            Pending::History {
                conversation_id: conversation_id.to_string(),
                after,
            },
        );
        Ok(())
    }

    async fn send_reply(&mut self, ws: &mut Ws, due: Due) -> anyhow::Result<()> {
        // Skip conversations we no longer hold, and messages someone answered meanwhile
        // (the previous agent around a transfer, or a reply further down a history page).
        let wanted = self
            .convs
            .get(&due.conversation_id)
            .is_some_and(|c| c.active && !c.replied.contains(&due.customer_msg));
        if !wanted {
            return Ok(());
        }
        let id = payload::reply_id(&due.customer_msg);
        let sent_us = self.metrics().clock.now_us();
        let text = payload::encode(
            sent_us,
            &id,
            payload::FLAG_PLAIN,
            self.shared.scenario.message_size,
        );
        let req = ws.req();
        let conversation_id = due.conversation_id.clone();
        // Pending before it is sent: a send that fails on a dying connection leaves it
        // to be sent again on the next one.
        self.pending
            .insert(req.clone(), Pending::Reply(due, sent_us));
        ws.send(&Out::Message {
            req: &req,
            conversation_id: &conversation_id,
            text: &text,
            client_msg_id: &id,
        })
        .await?;
        self.metrics().sent();
        Ok(())
    }

    async fn transfer(&mut self, ws: &mut Ws, conversation_id: &str) -> anyhow::Result<()> {
        let conv = self.conv(conversation_id);
        if !conv.active || conv.transferred {
            return Ok(());
        }
        conv.transferred = true;
        let topic = conv.topic.clone();
        let to_agent = match self.shared.scenario.transfer_to {
            TransferTo::Agent => self.spec.transfer_peer.clone(),
            TransferTo::Topic => None,
        };
        // A conversation taken over while its node was down came without its offer, so
        // its queue may be unknown: then there is nowhere to hand it to.
        if to_agent.is_none() && topic.is_empty() {
            return Ok(());
        }
        let to_topic = to_agent.is_none().then_some(topic);
        let req = ws.req();
        ws.send(&Out::Transfer {
            req: &req,
            conversation_id,
            to_agent: to_agent.as_deref(),
            to_topic: to_topic.as_deref(),
        })
        .await?;
        Metrics::count(&self.metrics().counters.transfers_requested);
        self.pending.insert(
            req,
            Pending::Transfer {
                conversation_id: conversation_id.to_string(),
            },
        );
        Ok(())
    }
}

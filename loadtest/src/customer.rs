//! A simulated customer: `hello`, `start` a chat on a topic of the mix, wait for an agent
//! to join, send messages at the scenario's rate (never more than its window awaiting a
//! reply), wait for the last replies, `close`, and read the stored history for
//! verification; then start the next chat while the run's duration lasts.
//!
//! Chats picked for a reconnect drop the socket mid-chat without a Close frame, come back
//! with `hello` + `session`, catch up with `history after_seq`, and resend every message
//! not yet acknowledged with the same `client_msg_id`. The same resume runs whenever the
//! hub closes the socket (e.g. 1013, slow reader).
//!
//! With several hubs ([`crate::hubs`]) a customer starts on its own hub, comes back to
//! it after a drop, and moves on to the next hub of the list when that one cannot be
//! reached (a killed node); the resume is the same on any node.
//!
//! Everything a chat keeps (acks, seqs read, the stored history, requests in flight) lives
//! in that chat's state; when the chat is over its record goes to the run's
//! [`Verifier`](crate::verify::Verifier) and the rest is dropped, so a customer holds one
//! chat's worth of bookkeeping however long the run.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{bail, Context};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::{
    failover::Moving,
    metrics::{Lat, Metrics},
    pacer::{rearm, Pacer},
    payload,
    shared::Shared,
    verify::{Acked, CustomerRecord, SeenLog, Stored},
    wire::{ConversationSummary, Event, In, Out},
    ws::{Recv, Ws},
};

/// What a customer hands back at the end (its records went to the run's verifier).
#[derive(Debug)]
pub struct CustomerOutcome {
    pub index: usize,
    pub chats: u32,
    pub error: Option<String>,
}

/// How long a customer waits for a plain answer (start, close, history) from the hub.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the whole stored history may take to read for verification: a chat that
/// lasted the whole run is thousands of events over several pages, and every customer
/// reads its own at the same moment when a timed run ends.
const STORED_HISTORY_TIMEOUT: Duration = Duration::from_secs(90);
/// Resumes in a row after which the customer gives up.
const MAX_RESUMES: u32 = 10;

enum Pending {
    Start,
    Message { n: u32, sent_us: u64 },
    Close,
    History { last: bool },
}

struct Unacked {
    id: String,
    flag: char,
}

/// One chat in progress.
struct Chat {
    number: u32,
    topic: String,
    conversation_id: Option<String>,
    start_id: String,
    start_text: String,
    start_sent_us: u64,
    acked: Vec<Acked>,
    seen: SeenLog,
    /// Events that arrived before the `start` ack named the conversation.
    early: Vec<(Event, u64)>,
    joined: bool,
    pending: FxHashMap<String, Pending>,
    unacked: BTreeMap<u32, Unacked>,
    awaiting_reply: FxHashSet<String>,
    pacer: Pacer,
    next_n: u32,
    transfer_at: Option<u32>,
    reconnect_at: Option<u32>,
    close_acked: bool,
    closed_event: bool,
    history: Vec<Stored>,
    stored: Option<Result<Vec<Stored>, String>>,
}

impl Chat {
    fn record(self, customer: usize, failure: Option<String>) -> Option<CustomerRecord> {
        let conversation_id = self.conversation_id?;
        let stored = match (failure, self.stored) {
            (Some(why), _) => Err(format!("the chat failed: {why}")),
            (None, Some(stored)) => stored,
            (None, None) => Err("the stored history was never read".into()),
        };
        Some(CustomerRecord {
            conversation_id,
            customer: customer.to_string(),
            acked: self.acked,
            seen: self.seen,
            stored,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only read and answer frames.
    Wait,
    /// Also send the chat's messages when the pacer allows.
    Send,
}

struct Customer {
    index: usize,
    shared: Arc<Shared>,
    rng: StdRng,
    ws: Option<Ws>,
    session: Option<String>,
    deadline: Option<Instant>,
    resumes_in_a_row: u32,
    /// Requests noted while no connection was up (see `req`).
    unsent: u64,
    /// The hub it is on (an index into the run's hubs).
    hub: usize,
    /// Set while it comes back from a killed node.
    moving: Option<Moving>,
}

/// Runs one customer from `start` until its chats are done.
pub async fn run_customer(
    index: usize,
    shared: Arc<Shared>,
    start: Instant,
    deadline: Option<Instant>,
) -> CustomerOutcome {
    let seed = shared.scenario.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut customer = Customer {
        index,
        shared,
        rng: StdRng::seed_from_u64(seed),
        ws: None,
        session: None,
        deadline,
        resumes_in_a_row: 0,
        unsent: 0,
        hub: 0,
        moving: None,
    };
    customer.hub = customer.shared.hubs.for_customer(index);
    tokio::time::sleep_until(start).await;
    let mut chats = 0;
    let mut error = None;
    if let Err(err) = customer.connect_failover().await {
        error = Some(format!("{err:#}"));
    }
    while error.is_none() {
        let mut chat = customer.new_chat(chats);
        chats += 1;
        let outcome = customer.chat(&mut chat).await;
        let failure = outcome.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(record) = chat.record(index, failure.clone()) {
            customer.shared.verifier.customer(record);
        }
        if let Some(failure) = failure {
            warn!(customer = index, cause = %failure, "customer chat failed");
            customer.shared.metrics.error("customer_chat_failed");
            error = Some(failure);
            break;
        }
        let more_time = customer.deadline.is_some_and(|d| Instant::now() < d);
        if !more_time {
            break;
        }
    }
    if let Some(ws) = customer.ws.take() {
        ws.close().await;
        customer.shared.metrics.connection_closed();
    }
    CustomerOutcome {
        index,
        chats,
        error,
    }
}

impl Customer {
    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn new_chat(&mut self, number: u32) -> Chat {
        let scenario = &self.shared.scenario;
        let topic = scenario.pick_topic(self.rng.random::<f64>()).to_string();
        let messages = scenario.messages;
        let transfer_at = (scenario.transfer_ratio > 0.0
            && self.rng.random_bool(scenario.transfer_ratio))
        .then_some((messages / 2).max(1));
        let reconnect_at = (scenario.reconnect_ratio > 0.0
            && self.rng.random_bool(scenario.reconnect_ratio))
        .then_some((messages / 2 + 1).min(messages).max(1));
        let start_id = payload::customer_msg_id(self.index, number, 0);
        Chat {
            number,
            topic,
            conversation_id: None,
            start_text: String::new(),
            start_id,
            start_sent_us: 0,
            acked: Vec::new(),
            seen: SeenLog::default(),
            early: Vec::new(),
            joined: false,
            pending: FxHashMap::default(),
            unacked: BTreeMap::new(),
            awaiting_reply: FxHashSet::default(),
            pacer: Pacer::new(
                scenario.interval(),
                scenario.effective_window(),
                Instant::now(),
            ),
            next_n: 1,
            transfer_at,
            reconnect_at,
            close_acked: false,
            closed_event: false,
            history: Vec::new(),
            stored: None,
        }
    }

    /// Connects to its hub, or to the next ones in turn while they cannot be reached.
    async fn connect_failover(&mut self) -> anyhow::Result<Vec<ConversationSummary>> {
        let mut failures = 0;
        loop {
            let err = match self.connect().await {
                Ok(conversations) => return Ok(conversations),
                Err(err) => err,
            };
            failures += 1;
            self.metrics().error("customer_connect_failed");
            let Some(pause) = self.shared.hubs.retry_pause(failures) else {
                return Err(err.context(format!("no hub answered {failures} attempts")));
            };
            debug!(customer = self.index, hub = self.hub, cause = %format!("{err:#}"), "customer cannot connect; trying the next hub");
            self.hub = self.shared.hubs.after(self.hub);
            tokio::time::sleep(pause).await;
        }
    }

    /// Opens the socket to its hub and says hello (with the session when coming back).
    async fn connect(&mut self) -> anyhow::Result<Vec<ConversationSummary>> {
        let shared = Arc::clone(&self.shared);
        let url = &shared.hubs.get(self.hub).customer_ws;
        let mut ws = tokio::time::timeout(ANSWER_TIMEOUT, Ws::connect(url, &shared.ids))
            .await
            .context("no connection in time")??;
        self.metrics().connection_opened();
        let name = format!("lt-c{}", self.index);
        ws.send(&Out::Hello {
            role: "customer",
            token: None,
            session: self.session.as_deref(),
            name: Some(&name),
            echo: (!shared.scenario.echo).then_some(false),
        })
        .await?;
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let received = tokio::time::timeout_at(deadline, ws.recv())
                .await
                .context("no welcome in time")??;
            match received {
                Recv::Frame(In::Welcome {
                    session,
                    conversations,
                }) => {
                    if session.is_some() {
                        self.session = session;
                    }
                    self.shared.failover.reconnected(&mut self.moving);
                    self.ws = Some(ws);
                    return Ok(conversations);
                }
                Recv::Frame(In::Error { code, message, .. }) => {
                    bail!("hello refused: {code} {message}")
                }
                Recv::Frame(_) => continue,
                Recv::Closed(code) => bail!("closed before welcome (code {code:?})"),
            }
        }
    }

    /// Sends a request. A connection that dies under the send is dropped, not reported:
    /// the caller notes the request as pending all the same, and the next read finds no
    /// connection and resumes, which sends what is pending again (as a widget would).
    async fn send(&mut self, frame: &Out<'_>) -> anyhow::Result<()> {
        let Some(ws) = self.ws.as_mut() else {
            return Ok(());
        };
        if let Err(err) = ws.send(frame).await {
            debug!(customer = self.index, cause = %err, "customer send failed");
            self.metrics().error("customer_send_failed");
            if let Some(ws) = self.ws.take() {
                ws.drop_abruptly();
                self.metrics().connection_closed();
            }
        }
        Ok(())
    }

    /// The next request id; without a connection (it died under a send) one no
    /// connection hands out, dropped with the pending requests at the resume.
    fn req(&mut self) -> String {
        match self.ws.as_mut() {
            Some(ws) => ws.req(),
            None => {
                self.unsent += 1;
                format!("unsent{}", self.unsent)
            }
        }
    }

    async fn chat(&mut self, chat: &mut Chat) -> anyhow::Result<()> {
        let scenario = Arc::clone(&self.shared.scenario);
        // 1. start
        self.send_start(chat).await?;
        Metrics::count(&self.metrics().counters.conversations_started);
        if !self
            .pump(chat, Instant::now() + ANSWER_TIMEOUT, Mode::Wait, |c| {
                c.conversation_id.is_some()
            })
            .await?
        {
            bail!("start was not acknowledged within {ANSWER_TIMEOUT:?}");
        }
        // 2. wait for an agent
        let join_limit = Instant::now() + Duration::from_millis(scenario.join_timeout_ms);
        let joined = self
            .pump(chat, join_limit, Mode::Wait, |c| c.joined)
            .await?;
        if joined {
            // 3. the messages
            let far = Instant::now() + Duration::from_secs(86_400);
            let deadline = self.deadline;
            let messages = scenario.messages;
            self.pump(chat, far, Mode::Send, move |c| {
                c.next_n > messages
                    || deadline.is_some_and(|d| Instant::now() >= d)
                    || c.closed_event
            })
            .await?;
            // 4. the last acks and replies
            let reply_limit = Instant::now() + Duration::from_millis(scenario.reply_timeout_ms);
            self.pump(chat, reply_limit, Mode::Wait, |c| {
                (c.unacked.is_empty() && c.awaiting_reply.is_empty()) || c.closed_event
            })
            .await?;
            let missing = chat.awaiting_reply.len() as u64;
            self.metrics()
                .counters
                .replies_missing
                .fetch_add(missing, std::sync::atomic::Ordering::Relaxed);
            if !chat.unacked.is_empty() {
                self.metrics().error("message_never_acked");
            }
        } else {
            Metrics::count(&self.metrics().counters.conversations_unassigned);
        }
        // 5. close
        if !chat.closed_event {
            self.send_close(chat).await?;
            if !self
                .pump(chat, Instant::now() + ANSWER_TIMEOUT, Mode::Wait, |c| {
                    c.close_acked
                })
                .await?
            {
                bail!("close was not acknowledged within {ANSWER_TIMEOUT:?}");
            }
        }
        // 6. the stored history, for verification
        self.request_history(chat, 0, true).await?;
        if !self
            .pump(
                chat,
                Instant::now() + STORED_HISTORY_TIMEOUT,
                Mode::Wait,
                |c| c.stored.is_some(),
            )
            .await?
        {
            bail!("the stored history was not read within {STORED_HISTORY_TIMEOUT:?}");
        }
        Ok(())
    }

    /// Reads frames (and, in `Send` mode, sends the chat's messages) until `done` holds
    /// or `limit` passes. Returns whether `done` holds. Resumes a dropped connection.
    async fn pump(
        &mut self,
        chat: &mut Chat,
        limit: Instant,
        mode: Mode,
        done: impl Fn(&Chat) -> bool,
    ) -> anyhow::Result<bool> {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let messages = self.shared.scenario.messages;
        // Two timers for the whole call, not two per frame read (see `rearm`).
        let send_timer = tokio::time::sleep_until(far);
        let limit_timer = tokio::time::sleep_until(limit);
        tokio::pin!(send_timer, limit_timer);
        loop {
            if done(chat) {
                return Ok(true);
            }
            if Instant::now() >= limit {
                return Ok(false);
            }
            let send_at = if mode == Mode::Send && chat.next_n <= messages {
                chat.pacer.next_send()
            } else {
                None
            };
            rearm(send_timer.as_mut(), send_at);
            let Some(ws) = self.ws.as_mut() else {
                self.resume(chat, false).await?;
                continue;
            };
            let conn = ws.conn;
            tokio::select! {
                received = ws.recv() => match received {
                    Ok(Recv::Frame(frame)) => self.on_frame(chat, frame, conn).await?,
                    Ok(Recv::Closed(code)) => {
                        self.metrics().error(&format!("customer_ws_closed_{}", code.unwrap_or(0)));
                        self.resume(chat, false).await?;
                    }
                    Err(err) => {
                        debug!(customer = self.index, cause = %err, "customer connection failed");
                        self.metrics().error("customer_ws_error");
                        self.resume(chat, false).await?;
                    }
                },
                () = &mut send_timer, if send_at.is_some() => {
                    let n = chat.next_n;
                    chat.next_n += 1;
                    let id = payload::customer_msg_id(self.index, chat.number, n);
                    let flag = if chat.transfer_at == Some(n) { payload::FLAG_TRANSFER } else { payload::FLAG_PLAIN };
                    chat.unacked.insert(n, Unacked { id: id.clone(), flag });
                    chat.awaiting_reply.insert(id);
                    chat.pacer.on_sent(Instant::now());
                    self.send_message(chat, n).await?;
                    if chat.reconnect_at == Some(n) {
                        // Drop mid-chat, the message possibly unacknowledged.
                        if let Some(ws) = self.ws.take() {
                            ws.drop_abruptly();
                            self.metrics().connection_closed();
                        }
                        self.resume(chat, true).await?;
                    }
                }
                () = &mut limit_timer => {}
            }
        }
    }

    async fn send_start(&mut self, chat: &mut Chat) -> anyhow::Result<()> {
        chat.start_sent_us = self.metrics().clock.now_us();
        chat.start_text = payload::encode(
            chat.start_sent_us,
            &chat.start_id,
            payload::FLAG_PLAIN,
            self.shared.scenario.message_size,
        );
        let req = self.req();
        self.send(&Out::Start {
            req: &req,
            topic: &chat.topic,
            text: &chat.start_text,
        })
        .await?;
        chat.awaiting_reply.insert(chat.start_id.clone());
        chat.pending.insert(req, Pending::Start);
        Ok(())
    }

    /// Sends (or resends) message `n` of the chat with a fresh stamp.
    async fn send_message(&mut self, chat: &mut Chat, n: u32) -> anyhow::Result<()> {
        let (Some(conversation_id), Some(unacked)) =
            (chat.conversation_id.as_deref(), chat.unacked.get(&n))
        else {
            return Ok(());
        };
        let sent_us = self.metrics().clock.now_us();
        let text = payload::encode(
            sent_us,
            &unacked.id,
            unacked.flag,
            self.shared.scenario.message_size,
        );
        let req = self.req();
        self.send(&Out::Message {
            req: &req,
            conversation_id,
            text: &text,
            client_msg_id: &unacked.id,
        })
        .await?;
        self.metrics().sent();
        chat.pending.insert(req, Pending::Message { n, sent_us });
        Ok(())
    }

    async fn send_close(&mut self, chat: &mut Chat) -> anyhow::Result<()> {
        let Some(conversation_id) = chat.conversation_id.as_deref() else {
            return Ok(());
        };
        let req = self.req();
        self.send(&Out::Close {
            req: &req,
            conversation_id,
        })
        .await?;
        chat.pending.insert(req, Pending::Close);
        Ok(())
    }

    async fn request_history(
        &mut self,
        chat: &mut Chat,
        after: u64,
        last: bool,
    ) -> anyhow::Result<()> {
        let Some(conversation_id) = chat.conversation_id.as_deref() else {
            return Ok(());
        };
        if last && after == 0 {
            chat.history.clear();
        }
        let req = self.req();
        self.send(&Out::History {
            req: &req,
            conversation_id,
            after_seq: after,
            limit: 1000,
        })
        .await?;
        chat.pending.insert(req, Pending::History { last });
        Ok(())
    }

    /// Comes back after a dropped socket: `hello` with the session, `history` after the
    /// highest seq applied, then every unacknowledged request again.
    async fn resume(&mut self, chat: &mut Chat, planned: bool) -> anyhow::Result<()> {
        if let Some(ws) = self.ws.take() {
            ws.drop_abruptly();
            self.metrics().connection_closed();
        }
        self.resumes_in_a_row += 1;
        if self.resumes_in_a_row > MAX_RESUMES {
            bail!("connection lost {MAX_RESUMES} times in a row");
        }
        if !planned {
            self.shared.failover.lost(&mut self.moving);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Metrics::count(&self.metrics().counters.reconnects);
        let conversations = self.connect_failover().await?;
        let pending: Vec<Pending> = chat.pending.drain().map(|(_, p)| p).collect();
        if chat.conversation_id.is_none() {
            // The start went out but its ack did not come back: the welcome names the
            // conversation if it was stored; otherwise start again.
            match conversations.first() {
                Some(summary) => {
                    chat.conversation_id = Some(summary.conversation_id.clone());
                    self.flush_early(chat);
                }
                None => {
                    let req = self.req();
                    self.send(&Out::Start {
                        req: &req,
                        topic: &chat.topic,
                        text: &chat.start_text,
                    })
                    .await?;
                    chat.pending.insert(req, Pending::Start);
                }
            }
        }
        let after = chat.seen.resume_after();
        self.request_history(chat, after, false).await?;
        let unacked: Vec<u32> = chat.unacked.keys().copied().collect();
        for n in unacked {
            Metrics::count(&self.metrics().counters.resends);
            self.send_message(chat, n).await?;
        }
        for p in pending {
            match p {
                Pending::Close => self.send_close(chat).await?,
                Pending::History { last: true } => self.request_history(chat, 0, true).await?,
                Pending::Start | Pending::Message { .. } | Pending::History { last: false } => {}
            }
        }
        Ok(())
    }

    async fn on_frame(&mut self, chat: &mut Chat, frame: In, conn: u64) -> anyhow::Result<()> {
        match frame {
            In::Ack {
                req,
                conversation_id,
                seq,
                ts,
                events,
                more,
            } => {
                self.resumes_in_a_row = 0;
                match chat.pending.remove(&req) {
                    Some(Pending::Start) => {
                        let Some(conversation_id) = conversation_id else {
                            bail!("start ack without conversation_id");
                        };
                        chat.conversation_id = Some(conversation_id);
                        match seq {
                            Some(seq) => chat.acked.push(Acked {
                                seq,
                                id: chat.start_id.clone(),
                            }),
                            None => self.metrics().error("ack_without_seq"),
                        }
                        self.flush_early(chat);
                    }
                    Some(Pending::Message { n, sent_us }) => {
                        let latency = self.metrics().clock.since(sent_us);
                        self.metrics().record(Lat::Ack, latency);
                        Metrics::count(&self.metrics().counters.messages_acked);
                        self.shared.failover.traffic(&mut self.moving);
                        if let Some(unacked) = chat.unacked.remove(&n) {
                            match seq {
                                Some(seq) => {
                                    // With `ts` the ack stands for the event (no echo); a
                                    // resend's ack has none and its event may be long past.
                                    if ts.is_some() {
                                        chat.seen.acked(conn, seq);
                                    }
                                    chat.acked.push(Acked {
                                        seq,
                                        id: unacked.id,
                                    })
                                }
                                None => self.metrics().error("ack_without_seq"),
                            }
                        }
                    }
                    Some(Pending::Close) => {
                        chat.close_acked = true;
                        Metrics::count(&self.metrics().counters.conversations_closed);
                    }
                    Some(Pending::History { last }) => {
                        let events = events.unwrap_or_default();
                        let last_seq = events.last().map(|e| e.seq);
                        for event in &events {
                            self.apply(chat, event, None);
                            if last {
                                chat.history.push(Stored::from_event(event));
                            }
                        }
                        match (more, last_seq) {
                            (Some(true), Some(after)) => {
                                self.request_history(chat, after, last).await?
                            }
                            _ if last => chat.stored = Some(Ok(std::mem::take(&mut chat.history))),
                            _ => {}
                        }
                    }
                    None => {}
                }
            }
            In::Error { req, code, message } => {
                self.metrics().error(&code);
                match req.and_then(|r| chat.pending.remove(&r)) {
                    Some(Pending::Start) => bail!("start refused: {code} {message}"),
                    Some(Pending::Message { n, .. }) => {
                        if code == "unavailable" || code == "rate_limited" {
                            // Not applied: send it again shortly, same client_msg_id.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Metrics::count(&self.metrics().counters.resends);
                            self.send_message(chat, n).await?;
                        } else if let Some(unacked) = chat.unacked.remove(&n) {
                            if chat.awaiting_reply.remove(&unacked.id) {
                                chat.pacer.on_reply();
                            }
                        }
                    }
                    // Closed already (by the hub or an earlier attempt): nothing to wait for.
                    Some(Pending::Close) => chat.close_acked = true,
                    Some(Pending::History { last: true }) => {
                        chat.stored = Some(Err(format!("{code}: {message}")));
                    }
                    Some(Pending::History { last: false }) | None => {}
                }
            }
            In::Event(event) => match chat.conversation_id.as_deref() {
                Some(id) if id == event.conversation_id => self.apply(chat, &event, Some(conn)),
                // Before the start ack: keep it until we know our conversation's id.
                None => chat.early.push((event, conn)),
                Some(_) => {} // an earlier chat's late event
            },
            In::Welcome { .. }
            | In::Queue { .. }
            | In::Offer { .. }
            | In::OfferRevoked { .. }
            | In::TransferFailed { .. }
            | In::Status { .. }
            | In::Other => {}
        }
        Ok(())
    }

    fn flush_early(&mut self, chat: &mut Chat) {
        let early = std::mem::take(&mut chat.early);
        for (event, conn) in early {
            if chat.conversation_id.as_deref() == Some(event.conversation_id.as_str()) {
                self.apply(chat, &event, Some(conn));
            }
        }
    }

    /// Applies one event of our conversation, live on `conn` or from `history`.
    fn apply(&mut self, chat: &mut Chat, event: &Event, conn: Option<u64>) {
        let new = match conn {
            Some(conn) => chat.seen.live(conn, event.seq),
            None => chat.seen.history(event.seq),
        };
        if !new {
            return;
        }
        let metrics = &self.shared.metrics;
        match event.kind.as_str() {
            "joined" if !chat.joined => {
                chat.joined = true;
                metrics.record(Lat::Joined, metrics.clock.since(chat.start_sent_us));
                Metrics::count(&metrics.counters.conversations_joined);
            }
            "closed" => chat.closed_event = true,
            "message" if event.is_message_from("agent") => {
                if let Some(stamp) = event.text.as_deref().and_then(payload::decode) {
                    if conn.is_some() {
                        metrics.record(Lat::AgentToCustomer, metrics.clock.since(stamp.sent_us));
                        self.shared.failover.traffic(&mut self.moving);
                    }
                    if let Some(answered) = stamp.replies_to() {
                        if chat.awaiting_reply.remove(answered) && answered != chat.start_id {
                            chat.pacer.on_reply();
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

//! One task per active conversation owns its membership and the order of delivery.
//!
//! Appends for a conversation go through its task, so events reach members strictly in
//! `seq` order, the requester's `ack` is queued before the event it acknowledges, and a
//! Redis failure with an unknown outcome is repaired by re-reading the stream before the
//! next delivery. Different conversations run in parallel and their writes are
//! pipelined on the shared Redis connection.

use std::{sync::Arc, time::Duration};

use dashmap::DashMap;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tracing::Instrument;

use super::registry::{ConnId, ConnTx, Registry};
use crate::{
    error::{Error, Result},
    metrics::Metrics,
    protocol::{AckBody, Audience, CustomerView, Event, EventBody, FrameText, ServerFrame},
    store::{
        event_frame_from_stored, stored_event_json, AppendItem, AppendOutcome, Requirement, Store,
    },
};

/// How long an idle conversation task lives before it hands its slot back (a later
/// command simply starts a new one).
const IDLE_EXIT: Duration = Duration::from_secs(60);

/// The same for a closed conversation: only a rating may still come, and a busy hub
/// closes hundreds of chats a second, so their tasks should not linger.
const CLOSED_IDLE_EXIT: Duration = Duration::from_secs(5);

/// Who asks, for the membership check.
#[derive(Debug, Clone)]
pub enum Author {
    Visitor(String),
    Agent {
        id: String,
        supervisor: bool,
    },
    /// The hub itself (router decisions, timeouts): always allowed.
    System,
}

/// What an append requires of the author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The customer, the owning agent, or a supervisor.
    Member,
    /// The owning agent or a supervisor (notes, transfers).
    Staff,
    /// Only the customer (ratings).
    Customer,
}

pub struct AppendRequest {
    pub author: Author,
    pub permission: Permission,
    pub body: EventBody,
    pub client_msg_id: Option<String>,
    pub requirement: Requirement,
    pub updates: Vec<(&'static str, String)>,
    /// Queue this ack (with the stored seq filled in) before the event goes out.
    pub ack: Option<(ConnTx, String, AckBody)>,
    /// When set, failures are answered here (with the ack's `req`) by the conversation
    /// task itself, so the requester need not wait: a connection can pipeline messages.
    pub errors_to: Option<ConnTx>,
}

/// Membership as the conversation task knows it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub visitor_id: String,
    /// The owning agent.
    pub agent: Option<String>,
    /// Agents who hear the conversation: from their `joined` until their `left`, so an
    /// outgoing agent of a hand-off still gets everything stored before its `left`.
    pub present: Vec<String>,
    pub state: String,
    pub last_seq: u64,
    pub topic: String,
}

impl Membership {
    fn allows(&self, author: &Author, permission: Permission) -> bool {
        match (author, permission) {
            (Author::System, _) => true,
            (Author::Visitor(v), Permission::Member | Permission::Customer) => {
                *v == self.visitor_id
            }
            (Author::Visitor(_), Permission::Staff) => false,
            (
                Author::Agent {
                    supervisor: true, ..
                },
                Permission::Member | Permission::Staff,
            ) => true,
            (Author::Agent { id, .. }, Permission::Member | Permission::Staff) => {
                self.agent.as_deref() == Some(id)
            }
            (Author::Agent { .. }, Permission::Customer) => false,
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T>>;

/// Appends handled in one Redis round trip at most.
const MAX_BATCH: usize = 64;

enum Command {
    Append(Box<AppendRequest>, Reply<AppendOutcome>),
    /// Check the author and return the membership (for history, typing, read).
    Members(Author, Permission, oneshot::Sender<Result<Membership>>),
    /// Check the author, then relay a non-stored frame (typing, read) to the other
    /// members.
    Relay {
        author: Author,
        permission: Permission,
        text: FrameText,
        from_conn: ConnId,
        staff_only: bool,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Events may have been stored without this task (a new conversation): deliver them.
    Resync,
}

/// The set of running conversation tasks.
pub struct Conversations {
    tasks: DashMap<String, mpsc::UnboundedSender<Command>>,
    store: Store,
    registry: Arc<Registry>,
    metrics: Metrics,
    shutdown: tokio_util::sync::CancellationToken,
    tracker: tokio_util::task::TaskTracker,
}

impl Conversations {
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        metrics: Metrics,
        shutdown: tokio_util::sync::CancellationToken,
        tracker: tokio_util::task::TaskTracker,
    ) -> Arc<Self> {
        Arc::new(Conversations {
            tasks: DashMap::new(),
            store,
            registry,
            metrics,
            shutdown,
            tracker,
        })
    }

    /// Queues a command for the conversation's task, starting one if needed. The queue
    /// is unbounded because its producers are bounded: each connection waits for its
    /// own request, and the router sends a handful per decision.
    fn send(self: &Arc<Self>, id: &str, mut command: Command) -> Result<()> {
        // A task that just exited for idleness refuses the command; spawn a fresh one.
        for _ in 0..3 {
            // Look up by `&str` first: a busy conversation's task exists, and `entry`
            // would allocate the key on every message.
            let running = self.tasks.get(id).map(|tx| tx.clone());
            let tx = match running {
                Some(tx) => tx,
                None => self
                    .tasks
                    .entry(id.to_string())
                    .or_insert_with(|| self.spawn(id))
                    .clone(),
            };
            match tx.send(command) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(back)) => {
                    command = back;
                    self.tasks
                        .remove_if(id, |_, current| current.same_channel(&tx));
                }
            }
        }
        Err(Error::Unavailable)
    }

    fn spawn(self: &Arc<Self>, id: &str) -> mpsc::UnboundedSender<Command> {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = ConversationTask {
            id: id.to_string(),
            members: None,
            delivered: 0,
            needs_resync: false,
            owner: Arc::clone(self),
            me: tx.clone(),
        };
        let span = tracing::info_span!("conversation", conversation_id = %id);
        self.tracker.spawn(task.run(rx).instrument(span));
        tx
    }

    pub async fn append(
        self: &Arc<Self>,
        id: &str,
        request: AppendRequest,
    ) -> Result<AppendOutcome> {
        self.submit(id, request).await
    }

    /// Queues an append now (fixing its order among this conversation's appends) and
    /// returns a future of its outcome.
    pub fn submit(
        self: &Arc<Self>,
        id: &str,
        request: AppendRequest,
    ) -> impl std::future::Future<Output = Result<AppendOutcome>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self.send(id, Command::Append(Box::new(request), reply));
        async move {
            queued?;
            answer.await.map_err(|_| Error::Unavailable)?
        }
    }

    /// Queues an append whose ack or error the conversation task sends itself
    /// (`ack` and `errors_to` set); the caller moves on at once.
    pub fn submit_detached(self: &Arc<Self>, id: &str, request: AppendRequest) -> Result<()> {
        let (reply, _nobody_waits) = oneshot::channel();
        self.send(id, Command::Append(Box::new(request), reply))
    }

    pub async fn members(
        self: &Arc<Self>,
        id: &str,
        author: Author,
        permission: Permission,
    ) -> Result<Membership> {
        let (reply, answer) = oneshot::channel();
        self.send(id, Command::Members(author, permission, reply))?;
        answer.await.map_err(|_| Error::Unavailable)?
    }

    /// Relays `frame` from `from_conn` to the conversation's other connections (staff
    /// only when `staff_only`), once the author is found to be a member.
    pub async fn relay(
        self: &Arc<Self>,
        id: &str,
        author: Author,
        permission: Permission,
        frame: &ServerFrame,
        from_conn: ConnId,
        staff_only: bool,
    ) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(
            id,
            Command::Relay {
                author,
                permission,
                text: frame.to_text(),
                from_conn,
                staff_only,
                reply,
            },
        )?;
        answer.await.map_err(|_| Error::Unavailable)?
    }

    pub async fn resync(self: &Arc<Self>, id: &str) -> Result<()> {
        self.send(id, Command::Resync)
    }
}

struct ConversationTask {
    id: String,
    members: Option<Membership>,
    /// Highest seq delivered to members.
    delivered: u64,
    needs_resync: bool,
    owner: Arc<Conversations>,
    me: mpsc::UnboundedSender<Command>,
}

impl ConversationTask {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        // One timer and one shutdown waiter for the task's life, not one per command:
        // the timer is only moved when it fires early.
        let shutdown = self.owner.shutdown.clone();
        let shutting_down = shutdown.cancelled();
        tokio::pin!(shutting_down);
        let idle = tokio::time::sleep(IDLE_EXIT);
        tokio::pin!(idle);
        let mut last_active = Instant::now();
        loop {
            let command = tokio::select! {
                command = rx.recv() => command,
                _ = &mut idle => {
                    let deadline = last_active + self.idle_exit();
                    if Instant::now() < deadline {
                        idle.as_mut().reset(deadline);
                        continue;
                    }
                    None
                }
                _ = &mut shutting_down => None,
            };
            last_active = Instant::now();
            match command {
                Some(Command::Append(request, reply)) => {
                    // Appends already queued behind this one go to Redis in the same
                    // round trip.
                    let mut batch = vec![(request, reply)];
                    let mut held = None;
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Command::Append(request, reply)) => batch.push((request, reply)),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append_batch(batch).await;
                    if let Some(command) = held {
                        self.handle(command).await;
                    }
                }
                Some(command) => self.handle(command).await,
                None => break,
            }
            if self.members.is_none() {
                // Unknown conversation or Redis down: hold nothing for it; the next
                // command starts a fresh task.
                break;
            }
            if idle.deadline() > last_active + self.idle_exit() {
                idle.as_mut().reset(last_active + self.idle_exit());
            }
        }
        // Hand the slot back first so new commands go to a fresh task, then finish what
        // was already queued here.
        self.owner
            .tasks
            .remove_if(&self.id, |_, tx| tx.same_channel(&self.me));
        rx.close();
        while let Some(command) = rx.recv().await {
            self.handle(command).await;
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Append(request, reply) => self.append_batch(vec![(request, reply)]).await,
            Command::Members(author, permission, reply) => {
                let outcome = self.check(&author, permission).await;
                let _ignored_if_requester_left = reply.send(outcome);
            }
            Command::Relay {
                author,
                permission,
                text,
                from_conn,
                staff_only,
                reply,
            } => {
                let outcome = self.permit(&author, permission).await.map(|()| {
                    self.for_each_recipient(|conn| {
                        if conn.id != from_conn && (!staff_only || conn.audience == Audience::Staff)
                        {
                            conn.push(text.clone());
                        }
                    });
                });
                let _ignored_if_requester_left = reply.send(outcome);
            }
            Command::Resync => {
                if self.members.is_none() {
                    // A conversation created just now: nothing of it was delivered yet.
                    if self.load(true).await.is_ok() {
                        self.needs_resync = true;
                    }
                } else {
                    self.needs_resync = true;
                }
                if let Err(err) = self.catch_up(u64::MAX).await {
                    tracing::warn!(cause = %err, "resync failed; will retry on the next event");
                }
            }
        }
    }

    fn idle_exit(&self) -> Duration {
        match &self.members {
            Some(members) if members.state == "closed" => CLOSED_IDLE_EXIT,
            _ => IDLE_EXIT,
        }
    }

    /// Loads membership from Redis once. `fresh`: start delivery from seq 1.
    async fn load(&mut self, fresh: bool) -> Result<&mut Membership> {
        if self.members.is_none() {
            let record = self
                .owner
                .store
                .conversation(&self.id)
                .await?
                .ok_or_else(|| Error::not_found(format!("no conversation {}", self.id)))?;
            self.delivered = if fresh { 0 } else { record.last_seq };
            self.members = Some(Membership {
                visitor_id: record.visitor_id,
                present: record.agent.iter().cloned().collect(),
                agent: record.agent,
                state: record.state,
                last_seq: record.last_seq,
                topic: record.topic,
            });
        }
        self.members
            .as_mut()
            .ok_or_else(|| Error::not_found("conversation not loaded"))
    }

    async fn check(&mut self, author: &Author, permission: Permission) -> Result<Membership> {
        self.permit(author, permission).await?;
        self.load(false).await.map(|members| members.clone())
    }

    /// Whether `author` may do what `permission` covers (loading membership once).
    async fn permit(&mut self, author: &Author, permission: Permission) -> Result<()> {
        if self.load(false).await?.allows(author, permission) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("not a member of {}", self.id)))
        }
    }

    /// Stores a batch of appends in one round trip and answers each in order.
    async fn append_batch(&mut self, batch: Vec<(Box<AppendRequest>, Reply<AppendOutcome>)>) {
        let mut allowed = Vec::with_capacity(batch.len());
        for (request, reply) in batch {
            match self.permit(&request.author, request.permission).await {
                Ok(()) => allowed.push((request, reply)),
                Err(err) => self.answer(&request, Err(err), reply),
            }
        }
        if allowed.is_empty() {
            return;
        }
        if self.needs_resync {
            if let Err(err) = self.catch_up(u64::MAX).await {
                for (request, reply) in allowed {
                    self.answer(&request, Err(err.clone()), reply);
                }
                return;
            }
        }
        let ts = crate::now_ms();
        // Each event is serialized once: the stored form goes to Redis and the frame
        // members get is spliced from it.
        let mut stored_forms = Vec::with_capacity(allowed.len());
        for (request, _) in &allowed {
            match stored_event_json(ts, &request.body) {
                Ok(json) => stored_forms.push(json),
                Err(err) => {
                    let err = Error::from(err);
                    for (request, reply) in allowed {
                        self.answer(&request, Err(err.clone()), reply);
                    }
                    return;
                }
            }
        }
        let items: Vec<AppendItem<'_>> = allowed
            .iter()
            .zip(&stored_forms)
            .map(|((request, _), stored)| AppendItem {
                stored,
                client_msg_id: request.client_msg_id.as_deref(),
                requirement: request.requirement,
                updates: &request.updates,
            })
            .collect();
        let outcomes = self.owner.store.append_batch(&self.id, &items).await;
        drop(items);
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // The scripts may or may not have run: re-read before delivering more.
                self.needs_resync = true;
                let err = Error::from(err);
                for (request, reply) in allowed {
                    self.answer(&request, Err(err.clone()), reply);
                }
                return;
            }
        };
        for (((request, reply), outcome), stored) in
            allowed.into_iter().zip(outcomes).zip(stored_forms)
        {
            let outcome = self.stored(*request, ts, &stored, outcome).await;
            // `stored` consumed the request; answer failures from what the outcome says.
            let _ignored_if_requester_left = reply.send(outcome);
        }
    }

    /// Acks and delivers one stored append (or reports why it was not stored).
    async fn stored(
        &mut self,
        request: AppendRequest,
        ts: u64,
        stored: &str,
        outcome: AppendOutcome,
    ) -> Result<AppendOutcome> {
        let failure = match outcome {
            AppendOutcome::Stored(seq) => {
                self.owner.metrics.events_stored.inc();
                if seq > self.delivered + 1 {
                    // Someone else stored events in between (another node, a lost reply).
                    if let Err(err) = self.catch_up(seq - 1).await {
                        self.needs_resync = true;
                        tracing::warn!(cause = %err, "catch-up before delivery failed");
                    }
                }
                self.ack(request.ack, seq);
                self.apply_updates(&request.updates, seq);
                let event = Event {
                    conversation_id: self.id.clone(),
                    seq,
                    ts,
                    body: request.body,
                };
                let frame = event_frame_from_stored(&self.id, seq, stored).map(FrameText::from);
                self.deliver(&event, frame);
                return Ok(outcome);
            }
            AppendOutcome::Duplicate(seq) => {
                self.ack(request.ack, seq);
                return Ok(outcome);
            }
            AppendOutcome::NotFound => Error::not_found(format!("no conversation {}", self.id)),
            AppendOutcome::WrongState => Error::conflict(format!("{} is closed", self.id)),
        };
        self.report(&request, &failure);
        Ok(outcome)
    }

    /// Answers a request that was not stored.
    fn answer(
        &self,
        request: &AppendRequest,
        outcome: Result<AppendOutcome>,
        reply: Reply<AppendOutcome>,
    ) {
        if let Err(err) = &outcome {
            self.report(request, err);
        }
        let _ignored_if_requester_left = reply.send(outcome);
    }

    /// Sends the requester the error for its request, when it asked the task to answer.
    fn report(&self, request: &AppendRequest, err: &Error) {
        let Some(conn) = &request.errors_to else {
            return;
        };
        self.owner
            .metrics
            .errors
            .with_label_values(&[err.code().as_str()])
            .inc();
        let req = request.ack.as_ref().map(|(_, req, _)| req.clone());
        conn.send(&ServerFrame::error(req, err));
    }

    fn ack(&self, ack: Option<(ConnTx, String, AckBody)>, seq: u64) {
        if let Some((conn, req, mut body)) = ack {
            body.seq = Some(seq);
            self.owner.metrics.acks.inc();
            conn.send(&ServerFrame::ack(req, body));
        }
    }

    fn apply_updates(&mut self, updates: &[(&'static str, String)], seq: u64) {
        let Some(members) = self.members.as_mut() else {
            return;
        };
        members.last_seq = members.last_seq.max(seq);
        for (field, value) in updates {
            match *field {
                "state" => members.state = value.clone(),
                "agent" => members.agent = Some(value.clone()).filter(|v| !v.is_empty()),
                "topic" => members.topic = value.clone(),
                _ => {}
            }
        }
    }

    /// Delivers stored events after `delivered` up to `until` (inclusive), in order.
    async fn catch_up(&mut self, until: u64) -> Result<()> {
        loop {
            let (events, more) = self
                .owner
                .store
                .history_in_order(&self.id, self.delivered, 200)
                .await?;
            let mut progressed = false;
            for event in events.into_iter().filter(|e| e.seq <= until) {
                // Replayed events may change state (stored by another node).
                if let (EventBody::Closed { .. }, Some(m)) = (&event.body, self.members.as_mut()) {
                    m.state = "closed".into();
                }
                if let Some(m) = self.members.as_mut() {
                    m.last_seq = m.last_seq.max(event.seq);
                }
                self.deliver(&event, None);
                progressed = true;
            }
            if !more || !progressed || self.delivered >= until {
                break;
            }
        }
        self.needs_resync = false;
        Ok(())
    }

    /// Calls `visit` once for each connection that hears this conversation: the
    /// customer's tabs, present agents' tabs, then monitoring supervisors not already
    /// among them. In place, without collecting: this runs for every event.
    fn for_each_recipient(&self, mut visit: impl FnMut(&ConnTx)) {
        let Some(members) = &self.members else {
            return;
        };
        let registry = &self.owner.registry;
        let monitored = registry.is_monitored(&self.id);
        let mut visited: Vec<ConnId> = Vec::new();
        let mut member = |conn: &ConnTx| {
            if monitored {
                visited.push(conn.id);
            }
            visit(conn);
        };
        registry.for_each_visitor_conn(&members.visitor_id, &mut member);
        for agent in &members.present {
            registry.for_each_agent_conn(agent, &mut member);
        }
        if monitored {
            registry.for_each_monitor(&self.id, |conn| {
                if !visited.contains(&conn.id) {
                    visit(conn);
                }
            });
        }
    }

    /// Fans `event` out to its recipients; `frame` is its `event` frame when the caller
    /// has it already.
    fn deliver(&mut self, event: &Event, frame: Option<FrameText>) {
        if event.seq <= self.delivered {
            return;
        }
        self.delivered = event.seq;
        // A joining agent hears its own `joined`; a leaving one its own `left`, after
        // which it hears nothing more.
        if let (EventBody::Joined { agent }, Some(m)) = (&event.body, self.members.as_mut()) {
            m.agent = Some(agent.id.clone());
            if !m.present.contains(&agent.id) {
                m.present.push(agent.id.clone());
            }
        }
        let staff_text = frame.unwrap_or_else(|| event.frame_text());
        let customer_text = match event.customer_view() {
            CustomerView::Same => Some(staff_text.clone()),
            CustomerView::Redacted(redacted) => Some(redacted.frame_text()),
            CustomerView::Hidden => None,
        };
        self.for_each_recipient(|conn| match conn.audience {
            Audience::Staff => {
                conn.push(staff_text.clone());
            }
            Audience::Customer => {
                if let Some(text) = &customer_text {
                    conn.push(text.clone());
                }
            }
        });
        // Recipients were taken before this: a leaving agent hears its own `left`.
        if let (EventBody::Left { agent, .. }, Some(m)) = (&event.body, self.members.as_mut()) {
            m.present.retain(|a| *a != agent.id);
            if m.agent.as_deref() == Some(agent.id.as_str()) {
                m.agent = None;
            }
        }
    }
}

//! The task of one conversation: it batches appends into one Redis round trip, acks each
//! stored event before delivering it, delivers in `seq` order to every connection that
//! hears the conversation, and repairs unknown outcomes by reading the stream back.

use std::{sync::Arc, time::Duration};

use tokio::{sync::mpsc, time::Instant};

use super::{
    seen::SeenIds, Ack, AppendReply, AppendRequest, Author, Command, Conversations, DeliveredSeq,
    Membership, Permission,
};
use crate::{
    error::{Error, Result},
    protocol::{Audience, ConversationState, Event, EventBody, ServerFrame, StoredEvent},
    store::{AppendOutcome, NewConversation, Reservation},
    tickets::MilestoneLog,
};

/// How long an idle conversation task lives before it hands its slot back (a later
/// command simply starts a new one).
const IDLE_EXIT: Duration = Duration::from_secs(60);

/// The same for a closed conversation: only a rating may still come, and a busy hub
/// closes hundreds of chats a second, so their tasks should not linger.
const CLOSED_IDLE_EXIT: Duration = Duration::from_secs(5);

/// How often a task with local clients checks the stream for anything it missed (the
/// net under a missed live hint, see `live`).
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// Appends handled in one Redis round trip at most.
const MAX_BATCH: usize = 64;

pub(super) struct ConversationTask {
    pub(super) id: String,
    pub(super) members: Option<Membership>,
    /// Highest seq delivered to members (read through [`Self::delivered`]).
    delivered_seq: DeliveredSeq,
    pub(super) needs_resync: bool,
    /// This node is known to be among the conversation's listeners. Until it is (the
    /// conversation did not exist yet, or Redis failed), the next load or reconcile
    /// lists it.
    pub(super) listed: bool,
    pub(super) owner: Arc<Conversations>,
    me: mpsc::UnboundedSender<Command>,
    /// For each present agent, the first seq this task delivered to it: an agent already
    /// present when the task loaded, or whose `joined` was stored before the load, heard
    /// nothing before it (see `live::watch`).
    pub(super) heard_from: std::collections::HashMap<String, u64>,
    /// The `client_msg_id`s stored so far, once an append with one needed them (`seen`).
    pub(super) seen: Option<SeenIds>,
    /// The conversation's milestones, for its ticket, kept when this task created it and
    /// has seen every event since (`tickets::MilestoneLog`).
    pub(super) milestones: Option<MilestoneLog>,
    /// Another node listened at this task's last plain append: the next one publishes
    /// in its own call (`Store::append_plain_batch`). It only chooses the path: Redis
    /// publishes to whoever is listed when the append runs, either way.
    pub(super) others_listen: bool,
}

impl ConversationTask {
    pub(super) fn new(
        id: &str,
        owner: Arc<Conversations>,
        me: mpsc::UnboundedSender<Command>,
        delivered_seq: DeliveredSeq,
    ) -> Self {
        ConversationTask {
            id: id.to_string(),
            members: None,
            delivered_seq,
            needs_resync: false,
            listed: false,
            owner,
            me,
            heard_from: std::collections::HashMap::new(),
            seen: None,
            milestones: None,
            others_listen: false,
        }
    }

    /// Highest seq delivered to members.
    pub(super) fn delivered(&self) -> u64 {
        self.delivered_seq.get()
    }

    pub(super) fn set_delivered(&self, seq: u64) {
        self.delivered_seq.set(seq);
    }

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let running = self.owner.deps.metrics.conversation_tasks.clone();
        running.inc();
        self.serve(&mut rx).await;
        running.dec();
    }

    async fn serve(&mut self, rx: &mut mpsc::UnboundedReceiver<Command>) {
        // Subscribed before anything is read, and listed before the record is (`load`):
        // whatever another node stores from then on reaches this task, and what came
        // before is in the record it loads.
        let channel = crate::store::keys::live(&self.id, &self.owner.deps.node_id);
        self.owner.subscribe(&channel).await;
        // The first reconcile a whole period on, not at once (an interval's first tick
        // is immediate): reconciling releases an agent held back for its joined-watch,
        // which is then on its way (`live`), and would lose it its `joined`.
        let mut reconcile =
            tokio::time::interval_at(Instant::now() + RECONCILE_EVERY, RECONCILE_EVERY);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One timer and one shutdown waiter for the task's life, not one per command:
        // the timer is only moved when it fires early.
        let shutdown = self.owner.deps.shutdown.clone();
        let shutting_down = shutdown.cancelled();
        tokio::pin!(shutting_down);
        let idle = tokio::time::sleep(IDLE_EXIT);
        tokio::pin!(idle);
        let mut last_active = Instant::now();
        loop {
            let command = tokio::select! {
                command = rx.recv() => command,
                _ = reconcile.tick() => {
                    self.reconcile().await;
                    continue;
                }
                _ = &mut idle => {
                    let now = Instant::now();
                    let deadline = last_active + self.idle_exit();
                    if now < deadline {
                        idle.as_mut().reset(deadline);
                        continue;
                    }
                    // An open chat stays while clients here hear it (another node may
                    // store its next event); a closed one does not: its clients' visitor
                    // lives on in new chats, and a task kept for each would never end.
                    let closed = self
                        .members
                        .as_ref()
                        .is_some_and(|members| members.state == ConversationState::Closed);
                    if !closed && self.has_local_recipients() {
                        // Kept for the clients here; asked again a whole idle time on
                        // (a deadline in the past would fire at once, for ever).
                        idle.as_mut().reset(now + self.idle_exit());
                        continue;
                    }
                    None
                }
                _ = &mut shutting_down => None,
            };
            // A hint from the feed is not local activity: a node whose own clients left
            // lets the task go even while others chat on.
            if !matches!(command, Some(Command::Live(_) | Command::CatchUp)) {
                last_active = Instant::now();
            }
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
            // A shorter idle time (the chat closed) brings the exit nearer, but never
            // into the past: a task kept for its clients is asked again later.
            let wanted = last_active + self.idle_exit();
            if idle.deadline() > wanted && wanted > Instant::now() {
                idle.as_mut().reset(wanted);
            }
        }
        // Hand the slot back first so new commands go to a fresh task, then finish what
        // was already queued here.
        // Unsubscribed first: a task started after the removal subscribes after this.
        self.owner.deps.feed.unsubscribe(channel);
        self.owner
            .tasks
            .remove_if(&self.id, |_, task| task.tx.same_channel(&self.me));
        rx.close();
        while let Some(command) = rx.recv().await {
            self.handle(command).await;
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Live(payload) => self.live(&payload).await,
            Command::Watch(from_seq, agent, ack, reply) => {
                let outcome = self.watch(from_seq, agent, ack).await;
                let _ignored_if_requester_left = reply.send(outcome);
            }
            Command::CatchUp => {
                // The feed came back: Redis may have lost this node's listing with it, so
                // the reconcile lists it again before it reads.
                self.listed = false;
                self.reconcile().await;
            }
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
            Command::Create(new, ack, reply) => {
                let outcome = self.create(*new, ack).await;
                let _ignored_if_requester_left = reply.send(outcome);
            }
            Command::Close {
                author,
                build,
                reply,
            } => {
                let outcome = self.close(author, build).await;
                let _ignored_if_requester_left = reply.send(outcome);
            }
        }
    }

    /// A close: refused before a ticket number is taken when the closer is not a member
    /// or the conversation is closed already; otherwise numbered and appended.
    async fn close(
        &mut self,
        author: Author,
        build: super::BuildClose,
    ) -> Result<(AppendOutcome, String)> {
        let members = self.check(&author, Permission::Member).await?;
        if members.state == ConversationState::Closed {
            return Ok((AppendOutcome::WrongState, String::new()));
        }
        let number = self
            .owner
            .deps
            .store
            .reserve_ticket_number(&self.id)
            .await?;
        let ticket_id = format!("t_{number}");
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.append_batch(vec![(
            Box::new(build(ticket_id.clone())),
            AppendReply(Some(reply)),
        )])
        .await;
        let outcome = answer.await.map_err(|_| Error::Unavailable)??;
        Ok((outcome, ticket_id))
    }

    /// Stores the conversation with its first event as seq 1, then acks and delivers it.
    async fn create(&mut self, new: NewConversation, mut ack: Option<Ack>) -> Result<()> {
        if self.members.is_some() {
            return Err(Error::conflict(format!("{} exists already", self.id)));
        }
        let node = &self.owner.deps.node_id;
        if !self
            .owner
            .deps
            .store
            .create_conversation(&new, node)
            .await?
        {
            return Err(Error::conflict(format!("{} exists already", self.id)));
        }
        // Listed by the same script, after this task subscribed.
        self.listed = true;
        self.owner.deps.metrics.events_stored.inc();
        self.members = Some(Membership::created(new.visitor_id));
        // Nothing came before seq 1: the index of ids and the milestones start complete.
        self.seen = Some(SeenIds::default());
        self.milestones = Some(MilestoneLog::default());
        self.ack(&mut ack, 1);
        let event = Event {
            conversation_id: new.id,
            seq: 1,
            ts: new.created_at,
            body: new.first_message,
        };
        self.deliver(&event, None);
        Ok(())
    }

    fn idle_exit(&self) -> Duration {
        match &self.members {
            Some(members) if members.state == ConversationState::Closed => CLOSED_IDLE_EXIT,
            _ => IDLE_EXIT,
        }
    }

    /// Loads membership from Redis once; delivery goes on from the stored `last_seq`.
    pub(super) async fn load(&mut self) -> Result<&mut Membership> {
        if self.members.is_none() {
            if !self.listed {
                self.listen().await;
            }
            let record = self
                .owner
                .deps
                .store
                .conversation(&self.id)
                .await?
                .ok_or_else(|| Error::not_found(format!("no conversation {}", self.id)))?;
            self.set_delivered(record.last_seq);
            if let Some(agent) = &record.agent {
                self.heard_from.insert(agent.clone(), record.last_seq + 1);
            }
            self.members = Some(Membership::from_record(record));
        }
        self.members
            .as_mut()
            .ok_or_else(|| Error::not_found("conversation not loaded"))
    }

    async fn check(&mut self, author: &Author, permission: Permission) -> Result<Membership> {
        self.permit(author, permission).await?;
        self.load().await.map(|members| members.clone())
    }

    /// Whether `author` may do what `permission` covers (loading membership once).
    pub(super) async fn permit(&mut self, author: &Author, permission: Permission) -> Result<()> {
        if self.load().await?.allows(author, permission) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("not a member of {}", self.id)))
        }
    }

    /// Acks and delivers one stored append (or reports why it was not stored).
    /// `request` stays boxed: it was built on the reader's core, and moving its ~700
    /// bytes out would read every line of it, where delivery reads a few.
    pub(super) async fn stored(
        &mut self,
        mut request: Box<AppendRequest>,
        ts: u64,
        stored: &str,
        outcome: AppendOutcome,
    ) -> Result<AppendOutcome> {
        let failure = match outcome {
            AppendOutcome::Stored(seq) => {
                self.owner.deps.metrics.events_stored.inc();
                if seq > self.delivered() + 1 {
                    // Someone else stored events in between (another node, a lost reply).
                    if let Err(err) = self.catch_up(seq - 1).await {
                        self.needs_resync = true;
                        tracing::warn!(cause = %err, "catch-up before delivery failed");
                    }
                }
                let skip = self.ack_stored(&mut request.ack, seq, ts);
                if let Some(members) = self.members.as_mut() {
                    members.apply(&request.updates, seq);
                }
                let closed = matches!(request.body, EventBody::Closed { .. });
                let event = Event {
                    conversation_id: self.id.clone(),
                    seq,
                    ts,
                    body: request.body, // the one field moved out of the box
                };
                let frame = StoredEvent::event_frame(&self.id, seq, stored);
                self.deliver_except(&event, frame, skip);
                if closed {
                    (self.owner.deps.on_closed)(&self.id, self.milestones.take());
                }
                return Ok(outcome);
            }
            AppendOutcome::Duplicate(seq) => {
                self.ack(&mut request.ack, seq);
                return Ok(outcome);
            }
            AppendOutcome::NotFound => Error::not_found(format!("no conversation {}", self.id)),
            AppendOutcome::WrongState => Error::conflict(format!("{} is closed", self.id)),
        };
        self.report(&request, &failure);
        Ok(outcome)
    }

    /// A routing write goes on only once Redis accepts its epoch and the agent's room.
    pub(super) async fn fenced(&self, request: &AppendRequest) -> Result<()> {
        let Some(fence) = &request.fence else {
            return Ok(());
        };
        match self
            .owner
            .deps
            .store
            .reserve(fence.epoch, &self.id, &fence.agent, fence.capacity)
            .await?
        {
            Reservation::Reserved => {
                // A hand-off's `joined` (the conversation has an owner): the routing node
                // dies between the reservation and the append.
                #[cfg(feature = "failpoints")]
                if self.members.as_ref().is_some_and(|m| m.agent.is_some()) {
                    crate::failpoint::hit(
                        self.owner.deps.armed.as_deref(),
                        "after_transfer_reserved",
                    );
                }
                Ok(())
            }
            Reservation::Stale => Err(Error::conflict("another node routes now")),
            Reservation::Full => Err(Error::conflict(format!(
                "{} has no room for another conversation",
                fence.agent
            ))),
        }
    }

    /// Answers a request that was not stored.
    pub(super) fn answer(
        &self,
        request: &AppendRequest,
        outcome: Result<AppendOutcome>,
        reply: AppendReply,
    ) {
        if let Err(err) = &outcome {
            self.report(request, err);
        }
        reply.send(outcome);
    }

    /// Sends the requester the error for its request, when it asked the task to answer.
    fn report(&self, request: &AppendRequest, err: &Error) {
        let Some(conn) = &request.errors_to else {
            return;
        };
        self.owner
            .deps
            .metrics
            .errors
            .with_label_values(&[err.code().as_str()])
            .inc();
        let req = request.ack.as_ref().map(|ack| ack.req.clone());
        conn.send(&ServerFrame::error(req, err));
    }

    /// Acks with `seq`. By reference: the ack is read where the request was built,
    /// not moved.
    pub(super) fn ack(&self, ack: &mut Option<Ack>, seq: u64) {
        if let Some(ack) = ack {
            ack.body.seq = Some(seq);
            self.owner.deps.metrics.acks.inc();
            ack.conn
                .push(crate::protocol::ack_text(&ack.req, &ack.body));
        }
    }
}

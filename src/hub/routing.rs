//! The routing task: it owns the pure router core (`crate::router`), feeds it what
//! happens (agents connecting, status changes, new conversations, answers to offers,
//! the clock) and carries out its commands: offers and revocations to agent
//! connections, queue positions to customers, joins and hand-offs stored through the
//! conversation tasks. It never waits on Redis itself, so a slow store cannot stall
//! routing decisions for everyone.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::{
    agent::Target,
    conversation::{AppendRequest, Author, Permission},
    registry::{ConnTx, Kick, PartyKey},
    throttle::Throttle,
    Hub,
};
use crate::{
    error::{Error, Result},
    protocol::{
        AckBody, AgentRef, AgentStatus, CustomerInfo, EventBody, Party, RevokeReason, Role,
        ServerFrame, TransferOfferInfo,
    },
    router::{self, Command as RouterCommand, Router},
    store::{AgentRecord, AppendOutcome, Requirement},
};

/// A conversation handed to the router, with what offers show about it.
#[derive(Debug, Clone)]
pub struct QueuedConversation {
    pub id: String,
    pub visitor_id: String,
    pub topic: String,
    pub customer: CustomerInfo,
    pub preview: String,
    /// Wall-clock ms when the wait started (kept through re-queues and transfers).
    pub waiting_since_ms: u64,
    pub preferred_agent: Option<String>,
    pub customer_present: bool,
}

type AckTo = Option<(ConnTx, String)>;

enum Msg {
    AgentConnected {
        agent: String,
        first: bool,
        reply: oneshot::Sender<(AgentStatus, Vec<String>)>,
    },
    AgentDisconnected {
        agent: String,
    },
    SetStatus {
        agent: String,
        status: AgentStatus,
        reply: oneshot::Sender<Result<AgentStatus>>,
    },
    UpsertAgent(AgentRecord),
    RemoveAgent(String),
    Enqueue(Box<QueuedConversation>),
    Restore {
        conversation: Box<QueuedConversation>,
        agent: Option<String>,
    },
    Accept {
        agent: String,
        offer_id: String,
        ack: AckTo,
        reply: oneshot::Sender<Result<()>>,
    },
    Decline {
        agent: String,
        offer_id: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Closed {
        conversation: String,
    },
    Transfer {
        conversation: String,
        owner: String,
        requester: String,
        target: Target,
        note: Option<String>,
    },
    CustomerPresence {
        conversation: String,
        present: bool,
    },
    AssignmentFailed {
        agent: String,
        conversation: String,
    },
    Online {
        reply: oneshot::Sender<bool>,
    },
    Stats {
        reply: oneshot::Sender<router::RouterStats>,
    },
    Snapshot {
        reply: oneshot::Sender<Vec<AgentSnapshot>>,
    },
}

/// An agent's routing state for `GET /v1/agents`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentSnapshot {
    pub id: String,
    pub status: AgentStatus,
    pub load: u32,
    pub capacity: u32,
}

/// Cheap handle to the routing task.
#[derive(Clone)]
pub struct RouterHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

/// The receiving end, consumed when the task starts.
pub struct RouterInbox(mpsc::UnboundedReceiver<Msg>);

pub fn channel() -> (RouterHandle, RouterInbox) {
    // Unbounded on purpose: every message is small and produced by a client request
    // that is itself rate limited; a bounded queue would let one slow decision block
    // unrelated connections' reader loops.
    let (tx, rx) = mpsc::unbounded_channel();
    (RouterHandle { tx }, RouterInbox(rx))
}

impl RouterHandle {
    fn tell(&self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            tracing::debug!("router task has stopped (shutting down)");
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Msg) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tell(make(reply));
        answer.await.ok()
    }

    pub async fn agent_connected(&self, agent: &str, first: bool) -> (AgentStatus, Vec<String>) {
        let agent = agent.to_string();
        self.ask(|reply| Msg::AgentConnected {
            agent,
            first,
            reply,
        })
        .await
        .unwrap_or((AgentStatus::Away, Vec::new()))
    }

    pub fn agent_disconnected(&self, agent: &str) {
        self.tell(Msg::AgentDisconnected {
            agent: agent.to_string(),
        });
    }

    pub async fn set_status(&self, agent: &str, status: AgentStatus) -> Result<AgentStatus> {
        let agent = agent.to_string();
        self.ask(|reply| Msg::SetStatus {
            agent,
            status,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
    }

    pub fn upsert_agent(&self, agent: AgentRecord) {
        self.tell(Msg::UpsertAgent(agent));
    }

    pub fn remove_agent(&self, agent: &str) {
        self.tell(Msg::RemoveAgent(agent.to_string()));
    }

    pub fn enqueue(&self, conversation: QueuedConversation) {
        self.tell(Msg::Enqueue(Box::new(conversation)));
    }

    pub fn restore(&self, conversation: QueuedConversation, agent: Option<String>) {
        self.tell(Msg::Restore {
            conversation: Box::new(conversation),
            agent,
        });
    }

    pub async fn accept(&self, agent: &str, offer_id: &str, ack: AckTo) -> Result<()> {
        let (agent, offer_id) = (agent.to_string(), offer_id.to_string());
        self.ask(|reply| Msg::Accept {
            agent,
            offer_id,
            ack,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
    }

    pub async fn decline(&self, agent: &str, offer_id: &str) -> Result<()> {
        let (agent, offer_id) = (agent.to_string(), offer_id.to_string());
        self.ask(|reply| Msg::Decline {
            agent,
            offer_id,
            reply,
        })
        .await
        .unwrap_or(Err(Error::Unavailable))
    }

    pub fn closed(&self, conversation: &str) {
        self.tell(Msg::Closed {
            conversation: conversation.to_string(),
        });
    }

    pub fn transfer(
        &self,
        conversation: String,
        owner: String,
        requester: String,
        target: Target,
        note: Option<String>,
    ) {
        self.tell(Msg::Transfer {
            conversation,
            owner,
            requester,
            target,
            note,
        });
    }

    pub fn customer_presence(&self, conversation: &str, present: bool) {
        self.tell(Msg::CustomerPresence {
            conversation: conversation.to_string(),
            present,
        });
    }

    pub async fn online(&self) -> bool {
        self.ask(|reply| Msg::Online { reply })
            .await
            .unwrap_or(false)
    }

    pub async fn stats(&self) -> Option<router::RouterStats> {
        self.ask(|reply| Msg::Stats { reply }).await
    }

    pub async fn agents(&self) -> Vec<AgentSnapshot> {
        self.ask(|reply| Msg::Snapshot { reply })
            .await
            .unwrap_or_default()
    }
}

/// What offers and queue updates need to know about a conversation.
struct ConversationInfo {
    visitor_id: String,
    topic: String,
    customer: CustomerInfo,
    preview: String,
    waiting_since_ms: u64,
}

pub struct RoutingTask {
    hub: Arc<Hub>,
    core: Router,
    clock: Clock,
    conversations: HashMap<String, ConversationInfo>,
    assigned: HashMap<String, BTreeSet<String>>,
    /// Status before the last disconnect, restored when the agent is back within grace.
    status_before_disconnect: HashMap<String, AgentStatus>,
    status: HashMap<String, AgentStatus>,
    /// The last queue position told to each waiting customer, repeated when it
    /// reconnects so a reloaded widget shows its place at once.
    last_queue: HashMap<String, (u32, u64)>,
    /// Who asked for each pending transfer (told if it fails).
    transfers: HashMap<String, String>,
    /// Where to send the ack of an accept being carried out.
    accepting: Option<(String, String, AckTo, oneshot::Sender<Result<()>>)>,
    handle: RouterHandle,
    gauges: Throttle,
}

/// How often the queue gauges are recomputed at most (a Prometheus scrape is seconds apart).
const GAUGES_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The router's clock: wall-clock milliseconds at start plus monotonic time since, so
/// stored wall-clock wait starts compare directly and tests can pause tokio's time.
struct Clock {
    wall_at_start: u64,
    started: tokio::time::Instant,
}

impl Clock {
    fn now_ms(&self) -> u64 {
        self.wall_at_start + self.started.elapsed().as_millis() as u64
    }
}

pub fn router_config(config: &crate::config::Config) -> router::RouterConfig {
    router::RouterConfig {
        topics: config
            .topics
            .iter()
            .map(|t| router::TopicRule {
                name: t.name.clone(),
                skills: t.skills.clone(),
                priority: t.priority,
                offer_timeout_ms: t.offer_timeout_ms,
                transfer_timeout_ms: t.transfer_timeout_ms,
                expand: t
                    .expand
                    .iter()
                    .map(|e| router::Expand {
                        after_ms: e.after_ms,
                        drop_skills: e.drop_skills.clone(),
                    })
                    .collect(),
                escalation_priority_boost: t.escalation_priority_boost,
            })
            .collect(),
        default_topic: config.default_topic().name.clone(),
        max_missed_offers: config.router.max_missed_offers,
        agent_grace_ms: config.router.agent_grace_ms,
        customer_idle_timeout_ms: config.router.customer_idle_timeout_ms,
        queue_update_min_interval_ms: 1_000,
        default_handle_ms: config.router.default_handle_ms,
        offer_id_seed: rand::random(),
    }
}

fn profile(agent: &AgentRecord) -> router::AgentProfile {
    router::AgentProfile {
        id: agent.id.clone(),
        name: agent.name.clone(),
        skills: agent.skills.clone(),
        capacity: agent.capacity,
        auto_accept: agent.auto_accept,
    }
}

fn to_core_status(status: AgentStatus) -> router::AgentStatus {
    match status {
        AgentStatus::Available => router::AgentStatus::Available,
        AgentStatus::Away => router::AgentStatus::Away,
        AgentStatus::Offline => router::AgentStatus::Offline,
    }
}

fn route_error(err: router::RouteError) -> Error {
    use router::RouteError as E;
    match err {
        E::UnknownOffer => Error::not_found("no such offer (expired, taken or withdrawn)"),
        E::NotYourOffer => Error::forbidden("that offer was made to someone else"),
        E::UnknownConversation => Error::not_found("the conversation is not routed"),
        E::UnknownAgent => Error::not_found("unknown agent"),
        E::NotAssigned => Error::conflict("the conversation is not assigned"),
        E::AgentUnavailable => Error::conflict("that agent cannot take it now"),
        E::TransferPending => Error::conflict("a transfer is already pending"),
        other => Error::conflict(format!("{other:?}")),
    }
}

impl RoutingTask {
    pub fn new(hub: Arc<Hub>, handle: RouterHandle) -> Self {
        let core = Router::new(router_config(&hub.config));
        RoutingTask {
            hub,
            core,
            clock: Clock {
                wall_at_start: crate::now_ms(),
                started: tokio::time::Instant::now(),
            },
            conversations: HashMap::new(),
            assigned: HashMap::new(),
            status_before_disconnect: HashMap::new(),
            status: HashMap::new(),
            transfers: HashMap::new(),
            last_queue: HashMap::new(),
            accepting: None,
            handle,
            gauges: Throttle::new(GAUGES_EVERY),
        }
    }

    pub async fn run(mut self, RouterInbox(mut rx): RouterInbox) {
        let shutdown = self.hub.shutdown.clone();
        loop {
            let deadline = self.core.next_deadline().map(|at| {
                let wait = at.saturating_sub(self.clock.now_ms());
                tokio::time::Instant::now() + std::time::Duration::from_millis(wait)
            });
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break,
                },
                _ = sleep_until(deadline) => {
                    let commands = self.core.tick(self.clock.now_ms());
                    self.execute(commands);
                }
                _ = sleep_until(self.gauges.due()) => {}
                _ = shutdown.cancelled() => break,
            }
            if self.gauges.changed(tokio::time::Instant::now()) {
                self.publish_gauges();
            }
        }
    }

    fn publish_gauges(&self) {
        let stats = self.core.stats(self.clock.now_ms());
        for topic in &stats.topics {
            self.hub
                .metrics
                .queue_waiting
                .with_label_values(&[topic.name.as_str()])
                .set(topic.waiting as i64);
        }
    }

    fn handle(&mut self, msg: Msg) {
        let now = self.clock.now_ms();
        match msg {
            Msg::AgentConnected {
                agent,
                first,
                reply,
            } => {
                let status = if first {
                    // Back within the grace period: carry on as before the drop.
                    let status = self
                        .status_before_disconnect
                        .remove(&agent)
                        .unwrap_or(AgentStatus::Away);
                    let commands = self.core.set_status(now, &agent, to_core_status(status));
                    self.status.insert(agent.clone(), status);
                    self.execute(commands);
                    status
                } else {
                    self.status
                        .get(&agent)
                        .copied()
                        .unwrap_or(AgentStatus::Away)
                };
                let conversations = self
                    .assigned
                    .get(&agent)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                let _requester_gone = reply.send((status, conversations));
            }
            Msg::AgentDisconnected { agent } => {
                if self.hub.registry.count(&PartyKey::Agent(agent.clone())) > 0 {
                    return; // a new tab connected in the meantime
                }
                let before = self
                    .status
                    .insert(agent.clone(), AgentStatus::Offline)
                    .unwrap_or(AgentStatus::Away);
                if before != AgentStatus::Offline {
                    self.status_before_disconnect.insert(agent.clone(), before);
                }
                let commands = self
                    .core
                    .set_status(now, &agent, router::AgentStatus::Offline);
                self.execute(commands);
            }
            Msg::SetStatus {
                agent,
                status,
                reply,
            } => {
                if status == AgentStatus::Offline {
                    let _requester_gone =
                        reply.send(Err(Error::bad_request("status must be available or away")));
                    return;
                }
                self.status.insert(agent.clone(), status);
                let commands = self.core.set_status(now, &agent, to_core_status(status));
                let _requester_gone = reply.send(Ok(status));
                self.execute(commands);
            }
            Msg::UpsertAgent(agent) => {
                self.status
                    .entry(agent.id.clone())
                    .or_insert(AgentStatus::Offline);
                let commands = self.core.upsert_agent(now, profile(&agent));
                self.execute(commands);
            }
            Msg::RemoveAgent(agent) => {
                let commands = self.core.remove_agent(now, &agent);
                self.status.remove(&agent);
                self.status_before_disconnect.remove(&agent);
                self.execute_with_reason(commands, "removed");
                self.hub
                    .registry
                    .kick_party(&PartyKey::Agent(agent), Kick::AgentRemoved);
            }
            Msg::Enqueue(conversation) => {
                let commands = self.queue(*conversation, now);
                self.execute(commands);
            }
            Msg::Restore {
                conversation,
                agent,
            } => match agent {
                Some(agent) => {
                    self.core.restore_assignment(
                        &agent,
                        &conversation.id,
                        &conversation.topic,
                        conversation.waiting_since_ms,
                    );
                    self.assigned
                        .entry(agent)
                        .or_default()
                        .insert(conversation.id.clone());
                    let present = conversation.customer_present;
                    let id = conversation.id.clone();
                    self.remember(*conversation);
                    if !present {
                        let commands = self.core.customer_presence(now, &id, false);
                        self.execute(commands);
                    }
                }
                None => {
                    let commands = self.queue(*conversation, now);
                    self.execute(commands);
                }
            },
            Msg::Accept {
                agent,
                offer_id,
                ack,
                reply,
            } => match self.core.accept(now, &agent, &offer_id) {
                Ok(commands) => {
                    self.accepting = Some((agent, offer_id, ack, reply));
                    self.execute(commands);
                    if let Some((_, _, _, reply)) = self.accepting.take() {
                        // Accepted but nothing to carry out: should not happen; answer anyway.
                        let _requester_gone =
                            reply.send(Err(Error::conflict("offer could not be taken")));
                    }
                }
                Err(err) => {
                    let _requester_gone = reply.send(Err(route_error(err)));
                }
            },
            Msg::Decline {
                agent,
                offer_id,
                reply,
            } => match self.core.decline(now, &agent, &offer_id) {
                Ok(commands) => {
                    self.hub
                        .metrics
                        .offers
                        .with_label_values(&["declined"])
                        .inc();
                    let _requester_gone = reply.send(Ok(()));
                    self.execute(commands);
                }
                Err(err) => {
                    let _requester_gone = reply.send(Err(route_error(err)));
                }
            },
            Msg::Closed { conversation } => {
                self.forget(&conversation);
                let commands = self.core.close(now, &conversation);
                self.execute(commands);
            }
            Msg::Transfer {
                conversation,
                owner,
                requester,
                target,
                note,
            } => {
                let result = match &target {
                    Target::Agent(to) => {
                        self.core
                            .transfer_to_agent(now, &conversation, &owner, to, note)
                    }
                    Target::Topic(topic) => {
                        self.core
                            .transfer_to_topic(now, &conversation, &owner, topic, note)
                    }
                };
                match result {
                    Ok(commands) => {
                        self.transfers.insert(conversation.clone(), requester);
                        self.execute(commands);
                    }
                    Err(err) => {
                        tracing::info!(conversation_id = %conversation, cause = ?err, "transfer refused");
                        let frame = ServerFrame::TransferFailed {
                            conversation_id: conversation,
                            reason: "unavailable".into(),
                        };
                        self.hub
                            .registry
                            .send_to(&PartyKey::Agent(requester), &frame);
                    }
                }
            }
            Msg::CustomerPresence {
                conversation,
                present,
            } => {
                if present {
                    if let (Some(&(position, eta_ms)), Some(info)) = (
                        self.last_queue.get(&conversation),
                        self.conversations.get(&conversation),
                    ) {
                        let frame = ServerFrame::Queue {
                            conversation_id: conversation.clone(),
                            position,
                            eta_ms,
                        };
                        self.hub
                            .registry
                            .send_to(&PartyKey::Visitor(info.visitor_id.clone()), &frame);
                    }
                }
                let commands = self.core.customer_presence(now, &conversation, present);
                self.execute(commands);
            }
            Msg::AssignmentFailed {
                agent,
                conversation,
            } => {
                if let Some(set) = self.assigned.get_mut(&agent) {
                    set.remove(&conversation);
                }
                let commands = self.core.assignment_failed(now, &agent, &conversation);
                self.execute(commands);
            }
            Msg::Online { reply } => {
                let _requester_gone = reply.send(self.core.online());
            }
            Msg::Stats { reply } => {
                let _requester_gone = reply.send(self.core.stats(now));
            }
            Msg::Snapshot { reply } => {
                let snapshot = self
                    .status
                    .iter()
                    .map(|(id, status)| {
                        let (load, capacity) = self.core.agent_load(id).unwrap_or((0, 0));
                        AgentSnapshot {
                            id: id.clone(),
                            status: *status,
                            load,
                            capacity,
                        }
                    })
                    .collect();
                let _requester_gone = reply.send(snapshot);
            }
        }
    }

    fn queue(&mut self, conversation: QueuedConversation, now: u64) -> Vec<RouterCommand> {
        let new = router::NewConversation {
            id: conversation.id.clone(),
            topic: conversation.topic.clone(),
            waiting_since_ms: conversation.waiting_since_ms,
            preferred_agent: conversation.preferred_agent.clone(),
        };
        let present = conversation.customer_present;
        let id = conversation.id.clone();
        self.remember(conversation);
        let mut commands = self.core.enqueue(now, new);
        if !present {
            commands.extend(self.core.customer_presence(now, &id, false));
        }
        commands
    }

    fn remember(&mut self, conversation: QueuedConversation) {
        self.conversations.insert(
            conversation.id.clone(),
            ConversationInfo {
                visitor_id: conversation.visitor_id,
                topic: conversation.topic,
                customer: conversation.customer,
                preview: conversation.preview,
                waiting_since_ms: conversation.waiting_since_ms,
            },
        );
    }

    /// Drops what this task kept about a closed conversation. Call before the core's
    /// `close`, which forgets the owner.
    fn forget(&mut self, conversation: &str) {
        self.conversations.remove(conversation);
        self.last_queue.remove(conversation);
        self.transfers.remove(conversation);
        if let Some(owner) = self.core.agent_of(conversation) {
            if let Some(set) = self.assigned.get_mut(owner) {
                set.remove(conversation);
            }
        }
    }

    fn execute(&mut self, commands: Vec<RouterCommand>) {
        self.execute_with_reason(commands, "disconnected");
    }

    fn execute_with_reason(&mut self, commands: Vec<RouterCommand>, unassign_reason: &str) {
        for command in commands {
            self.execute_one(command, unassign_reason);
        }
    }

    fn execute_one(&mut self, command: RouterCommand, unassign_reason: &str) {
        let hub = Arc::clone(&self.hub);
        match command {
            RouterCommand::Offer {
                offer_id,
                agent,
                conversation,
                topic,
                priority,
                waited_ms,
                expires_ms,
                transfer,
            } => {
                let Some(info) = self.conversations.get(&conversation) else {
                    tracing::warn!(conversation_id = %conversation, "offer for an unknown conversation");
                    return;
                };
                let transfer = transfer.map(|t| TransferOfferInfo {
                    from_agent: t.from_agent,
                    note: t.note,
                    to_topic: t.to_topic,
                });
                let frame = ServerFrame::Offer {
                    offer_id,
                    conversation_id: conversation,
                    topic,
                    priority,
                    customer: info.customer.clone(),
                    preview: info.preview.clone(),
                    waited_ms,
                    expires_ms,
                    transfer,
                };
                hub.metrics.offers.with_label_values(&["made"]).inc();
                if !hub
                    .registry
                    .send_to(&PartyKey::Agent(agent.clone()), &frame)
                {
                    tracing::warn!(agent_id = %agent, "offer to an agent with no connection");
                }
            }
            RouterCommand::Revoke {
                offer_id,
                agent,
                conversation: _,
                reason,
            } => {
                let reason = match reason {
                    // The protocol has no word for "you can no longer take it".
                    router::RevokeReason::Expired | router::RevokeReason::Withdrawn => {
                        RevokeReason::Expired
                    }
                    router::RevokeReason::Taken => RevokeReason::Taken,
                    router::RevokeReason::Closed => RevokeReason::Closed,
                };
                if reason == RevokeReason::Expired {
                    hub.metrics.offers.with_label_values(&["expired"]).inc();
                }
                hub.registry.send_to(
                    &PartyKey::Agent(agent),
                    &ServerFrame::OfferRevoked { offer_id, reason },
                );
            }
            RouterCommand::Assign {
                agent,
                conversation,
                previous_agent,
                via_offer,
            } => self.assign(agent, conversation, previous_agent, via_offer),
            RouterCommand::QueuePosition {
                conversation,
                position,
                eta_ms,
            } => {
                self.last_queue
                    .insert(conversation.clone(), (position, eta_ms));
                if let Some(info) = self.conversations.get(&conversation) {
                    let frame = ServerFrame::Queue {
                        conversation_id: conversation,
                        position,
                        eta_ms,
                    };
                    hub.registry
                        .send_to(&PartyKey::Visitor(info.visitor_id.clone()), &frame);
                }
            }
            RouterCommand::AgentAway { agent } => {
                self.status.insert(agent.clone(), AgentStatus::Away);
                let frame = ServerFrame::Status {
                    status: AgentStatus::Away,
                    reason: Some("missed_offers".into()),
                };
                hub.registry.send_to(&PartyKey::Agent(agent), &frame);
            }
            RouterCommand::TransferFailed {
                conversation,
                requested_by,
                reason,
            } => {
                let requester = self.transfers.remove(&conversation).unwrap_or(requested_by);
                let reason = match reason {
                    router::TransferFailReason::Timeout => "timeout",
                    router::TransferFailReason::Declined => "declined",
                    router::TransferFailReason::Unavailable => "unavailable",
                };
                let frame = ServerFrame::TransferFailed {
                    conversation_id: conversation,
                    reason: reason.into(),
                };
                hub.registry.send_to(&PartyKey::Agent(requester), &frame);
            }
            RouterCommand::Unassigned {
                agent,
                conversation,
            } => {
                if let Some(set) = self.assigned.get_mut(&agent) {
                    set.remove(&conversation);
                }
                let name = hub.agent_name(&agent);
                let request = AppendRequest {
                    author: Author::System,
                    permission: Permission::Member,
                    body: EventBody::Left {
                        agent: AgentRef { id: agent, name },
                        reason: unassign_reason.to_string(),
                    },
                    client_msg_id: None,
                    requirement: Requirement::Open,
                    updates: vec![("state", "queued".into()), ("agent", String::new())],
                    ack: None,
                    errors_to: None,
                };
                self.store_in_order(conversation, request, |_| {});
            }
            RouterCommand::Abandon { conversation } => {
                let hub = Arc::clone(&self.hub);
                self.hub.tracker.spawn(
                    async move {
                        let by = Party {
                            role: Role::System,
                            id: "router".into(),
                            name: None,
                        };
                        if let Err(err) = hub
                            .close_conversation(&conversation, Author::System, by, "abandoned".into(), vec![], None)
                            .await
                        {
                            tracing::warn!(conversation_id = %conversation, cause = %err, "could not close abandoned conversation");
                        }
                    }
                    .in_current_span(),
                );
            }
        }
    }

    /// Hands an append to the conversation's task now (so appends for one conversation
    /// keep the order the router decided) and waits for its outcome elsewhere.
    fn store_in_order(
        &self,
        conversation: String,
        request: AppendRequest,
        then: impl FnOnce(Result<AppendOutcome>) + Send + 'static,
    ) {
        let conversations = Arc::clone(&self.hub.conversations);
        let pending = conversations.submit(&conversation, request);
        self.hub.tracker.spawn(async move {
            then(pending.await);
        });
    }

    fn assign(
        &mut self,
        agent: String,
        conversation: String,
        previous_agent: Option<String>,
        via_offer: bool,
    ) {
        let reply = match self.accepting.take() {
            Some((accepting_agent, offer, ack, reply)) if accepting_agent == agent && via_offer => {
                Some((offer, ack, reply))
            }
            other => {
                self.accepting = other;
                None
            }
        };
        let (ack, reply) = match reply {
            Some((offer_id, ack, reply)) => {
                // The agent's other tabs still show the offer: it is taken now.
                let accepting_conn = ack.as_ref().map(|(conn, _)| conn.id);
                let taken = ServerFrame::OfferRevoked {
                    offer_id,
                    reason: RevokeReason::Taken,
                }
                .to_text();
                self.hub.registry.for_each_agent_conn(&agent, |conn| {
                    if Some(conn.id) != accepting_conn {
                        conn.push(taken.clone());
                    }
                });
                (ack, Some(reply))
            }
            None => (None, None),
        };
        self.hub
            .metrics
            .offers
            .with_label_values(&["accepted"])
            .inc();
        self.last_queue.remove(&conversation);
        self.assigned
            .entry(agent.clone())
            .or_default()
            .insert(conversation.clone());
        if let Some(previous) = &previous_agent {
            if let Some(set) = self.assigned.get_mut(previous) {
                set.remove(&conversation);
            }
        }
        self.transfers.remove(&conversation);
        let Some(info) = self.conversations.get(&conversation) else {
            if let Some(reply) = reply {
                let _requester_gone = reply.send(Err(Error::not_found("conversation is gone")));
            }
            return;
        };
        let first_join = previous_agent.is_none();
        let waited_ms = crate::now_ms().saturating_sub(info.waiting_since_ms);
        let topic = info.topic.clone();
        let visitor_id = info.visitor_id.clone();
        let name = self.hub.agent_name(&agent);
        let request = AppendRequest {
            author: Author::System,
            permission: Permission::Member,
            body: EventBody::Joined {
                agent: AgentRef {
                    id: agent.clone(),
                    name,
                },
            },
            client_msg_id: None,
            requirement: Requirement::Open,
            updates: vec![("state", "assigned".into()), ("agent", agent.clone())],
            ack: ack.map(|(conn, req)| {
                (
                    conn,
                    req,
                    AckBody {
                        conversation_id: Some(conversation.clone()),
                        ..AckBody::default()
                    },
                )
            }),
            errors_to: None,
        };
        let hub = Arc::clone(&self.hub);
        let handle = self.handle.clone();
        let joined_agent = agent.clone();
        let joined_conversation = conversation.clone();
        self.store_in_order(conversation.clone(), request, move |outcome| {
            let result = match outcome {
                Ok(AppendOutcome::Stored(_)) => {
                    if first_join {
                        hub.metrics
                            .queue_wait_seconds
                            .with_label_values(&[topic.as_str()])
                            .observe(waited_ms as f64 / 1000.0);
                    }
                    let store = hub.store.clone();
                    let ticket_s = hub.config.retention.ticket_s;
                    let ttl_ms = (ticket_s > 0).then(|| ticket_s.saturating_mul(1000));
                    hub.tracker.spawn(async move {
                        if let Err(err) = store
                            .set_last_agent(&visitor_id, &joined_agent, ttl_ms)
                            .await
                        {
                            tracing::debug!(cause = %err, "sticky routing hint not saved");
                        }
                    });
                    Ok(())
                }
                Ok(AppendOutcome::Duplicate(_)) => Ok(()),
                Ok(AppendOutcome::NotFound | AppendOutcome::WrongState) => {
                    Err(Error::conflict("the conversation closed before the join"))
                }
                Err(err) => {
                    handle.tell(Msg::AssignmentFailed {
                        agent: joined_agent,
                        conversation: joined_conversation,
                    });
                    Err(err)
                }
            };
            if let Some(reply) = reply {
                let _requester_gone = reply.send(result);
            }
        });
        if let Some(previous) = previous_agent {
            let name = self.hub.agent_name(&previous);
            let request = AppendRequest {
                author: Author::System,
                permission: Permission::Member,
                body: EventBody::Left {
                    agent: AgentRef { id: previous, name },
                    reason: "transferred".into(),
                },
                client_msg_id: None,
                requirement: Requirement::Open,
                updates: vec![],
                ack: None,
                errors_to: None,
            };
            self.store_in_order(conversation, request, |_| {});
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

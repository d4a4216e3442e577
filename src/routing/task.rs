//! The routing task's loop: one message at a time into the core, the core's commands out
//! through `effects`. It never waits on Redis itself, so a slow store cannot stall
//! routing decisions for everyone.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use tokio::sync::oneshot;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    bus::Party, rules::profile, throttle::Throttle, Msg, QueuedConversation, RouterHandle,
    RouterInbox, Target,
};
use crate::{
    config::Config,
    conversation::{Ack, Conversations},
    error::{Error, Result},
    metrics::Metrics,
    protocol::{AgentStatus, LeftReason, ServerFrame, TransferFailReason},
    registry::{Kick, PartyKey, Registry},
    router::{self, Command as RouterCommand, Router},
    store::Store,
};

/// How often the queue gauges are recomputed at most (a Prometheus scrape is seconds apart).
const GAUGES_EVERY: Duration = Duration::from_millis(250);

/// What the routing task carries its decisions out with.
#[derive(Clone)]
pub struct RoutingDeps {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Metrics,
    pub registry: Arc<Registry>,
    pub conversations: Arc<Conversations>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// Time-in-state reports: every agent activity change goes there.
    pub reports: crate::reports::Reports,
}

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

/// An accept being carried out: its ack and answer go with the core's `Assign`.
pub(super) struct Accepting {
    pub(super) agent: String,
    pub(super) offer_id: String,
    pub(super) ack: Option<Ack>,
    pub(super) remote_ack: Option<crate::conversation::RemoteAck>,
    pub(super) reply: oneshot::Sender<Result<(String, u64)>>,
}

pub struct RoutingTask {
    pub(super) deps: RoutingDeps,
    pub(super) core: Router,
    clock: Clock,
    /// What offers and queue updates show of each routed conversation.
    pub(super) conversations: HashMap<String, QueuedConversation>,
    /// The last queue position told to each waiting customer, repeated when it
    /// reconnects so a reloaded widget shows its place at once.
    pub(super) last_queue: HashMap<String, (u32, u64)>,
    pub(super) handle: RouterHandle,
    gauges: Throttle,
    /// The epoch this task routes with (the fencing token of its writes).
    pub(super) epoch: u64,
    /// The nodes at which each agent has connections.
    pub(super) presence: HashMap<String, HashSet<String>>,
    /// The routing audit's and the time-in-state reports' writer.
    pub(super) desk: super::desk::DeskLog,
}

impl RoutingTask {
    pub fn new(deps: RoutingDeps, handle: RouterHandle, epoch: u64) -> Self {
        let core = Router::new(super::router_config(&deps.config));
        let desk =
            super::desk::DeskLog::start(deps.store.clone(), deps.reports.clone(), &deps.tracker);
        RoutingTask {
            deps,
            core,
            clock: Clock {
                wall_at_start: crate::clock::now_ms(),
                started: tokio::time::Instant::now(),
            },
            conversations: HashMap::new(),
            last_queue: HashMap::new(),
            handle,
            gauges: Throttle::new(GAUGES_EVERY),
            epoch,
            presence: HashMap::new(),
            desk,
        }
    }

    pub async fn run(mut self, RouterInbox(mut rx): RouterInbox) {
        let shutdown = self.deps.shutdown.clone();
        loop {
            let deadline = self.core.next_deadline().map(|at| {
                let wait = at.saturating_sub(self.clock.now_ms());
                tokio::time::Instant::now() + Duration::from_millis(wait)
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
            self.deps
                .metrics
                .queue_waiting
                .with_label_values(&[topic.name.as_str()])
                .set(topic.waiting as i64);
        }
    }

    fn handle(&mut self, msg: Msg) {
        let now = self.clock.now_ms();
        match msg {
            Msg::AgentConnected { agent, node, reply } => {
                self.presence.entry(agent.clone()).or_default().insert(node);
                let (status, commands) = self.core.agent_connected(now, &agent);
                let conversations = self
                    .core
                    .conversations_of(&agent)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let _requester_gone = reply.send((status, conversations));
                self.execute(commands);
            }
            Msg::AgentDisconnected { agent, node } => {
                if node == self.handle.node_id()
                    && self.deps.registry.count(&PartyKey::Agent(agent.clone())) > 0
                {
                    return; // a new tab connected here in the meantime
                }
                let nodes = self.presence.entry(agent.clone()).or_default();
                nodes.remove(&node);
                if !nodes.is_empty() {
                    return; // tabs at other nodes remain
                }
                self.presence.remove(&agent);
                let commands = self.core.agent_disconnected(now, &agent);
                self.execute(commands);
            }
            Msg::Nodes(live) => self.follow_nodes(now, live),
            Msg::Reconcile { conversation } => self.reconcile(conversation),
            Msg::Unknown { ids, reply } => {
                let unknown = ids
                    .into_iter()
                    .filter(|id| !self.conversations.contains_key(id))
                    .collect();
                let _requester_gone = reply.send(unknown);
            }
            Msg::Reconciled {
                conversation,
                owner,
            } => self.reconciled(now, conversation, owner),
            Msg::RestoreStatus { agent, status } => {
                self.core.restore_resume_status(&agent, status);
            }
            Msg::SetStatus {
                agent,
                status,
                reason,
                reply,
            } => {
                if matches!(status, AgentStatus::Offline | AgentStatus::WrapUp) {
                    let _requester_gone =
                        reply.send(Err(Error::bad_request("status must be available or away")));
                    return;
                }
                let commands = match status {
                    AgentStatus::Away => self.core.set_away(now, &agent, reason),
                    _ => self.core.set_status(now, &agent, status),
                };
                let _requester_gone = reply.send(Ok(status));
                self.save_status(&agent, status);
                self.execute(commands);
            }
            Msg::UpsertAgent(agent) => {
                let commands = self.core.upsert_agent(now, profile(&agent));
                self.execute(commands);
            }
            Msg::RemoveAgent(agent) => {
                let commands = self.core.remove_agent(now, &agent);
                self.execute_with_reason(commands, LeftReason::Removed);
                // Every node kicks its own tabs of the agent (`BusMessage::Agent`).
                self.deps
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
                    let present = conversation.customer_present;
                    let id = conversation.id.clone();
                    self.conversations.insert(id.clone(), *conversation);
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
                remote_ack,
                reply,
            } => match self.core.accept(now, &agent, &offer_id) {
                Ok(commands) => {
                    let mut accepting = Some(Accepting {
                        agent,
                        offer_id,
                        ack: ack.map(|ack| *ack),
                        remote_ack,
                        reply,
                    });
                    for command in commands {
                        self.execute_one(command, LeftReason::Disconnected, &mut accepting);
                    }
                    if let Some(accepting) = accepting {
                        // Accepted but nothing to carry out: should not happen; answer anyway.
                        let _requester_gone = accepting
                            .reply
                            .send(Err(Error::conflict("offer could not be taken")));
                    }
                }
                Err(err) => {
                    let _requester_gone = reply.send(Err(err.into()));
                }
            },
            Msg::Claim {
                conversation,
                agent,
                reply,
            } => match self.core.claim(now, &conversation, &agent) {
                Ok(commands) => {
                    let _requester_gone = reply.send(Ok(()));
                    self.execute(commands);
                }
                Err(err) => {
                    let _requester_gone = reply.send(Err(err.into()));
                }
            },
            Msg::Decline {
                agent,
                offer_id,
                reply,
            } => match self.core.decline(now, &agent, &offer_id) {
                Ok(commands) => {
                    self.deps
                        .metrics
                        .offers
                        .with_label_values(&["declined"])
                        .inc();
                    let _requester_gone = reply.send(Ok(()));
                    self.execute(commands);
                }
                Err(err) => {
                    let _requester_gone = reply.send(Err(err.into()));
                }
            },
            Msg::Closed { conversation } => {
                self.conversations.remove(&conversation);
                self.last_queue.remove(&conversation);
                let commands = self.core.close(now, &conversation);
                self.execute(commands);
            }
            Msg::Transfer {
                conversation,
                requester,
                target,
                note,
            } => {
                let result = match &target {
                    Target::Agent(to) => {
                        self.core
                            .transfer_to_agent(now, &conversation, &requester, to, note)
                    }
                    Target::Topic(topic) => {
                        self.core
                            .transfer_to_topic(now, &conversation, &requester, topic, note)
                    }
                };
                match result {
                    Ok(commands) => self.execute(commands),
                    Err(err) => {
                        tracing::info!(conversation_id = %conversation, cause = %err, "transfer refused");
                        let frame = ServerFrame::TransferFailed {
                            conversation_id: conversation,
                            reason: TransferFailReason::Unavailable,
                        };
                        self.send_to(Party::Agent(requester), &frame);
                    }
                }
            }
            Msg::CustomerPresence {
                conversation,
                present,
            } => {
                if present {
                    self.repeat_queue_position(&conversation);
                }
                let commands = self.core.customer_presence(now, &conversation, present);
                self.execute(commands);
            }
            Msg::AssignmentFailed {
                agent,
                conversation,
            } => {
                let commands = self.core.assignment_failed(now, &agent, &conversation);
                self.execute(commands);
            }
            Msg::Joined {
                agent,
                conversation,
                seq,
                ack,
            } => self.watch_for(&agent, &conversation, seq, ack),
            Msg::Online { reply } => {
                let _requester_gone = reply.send(super::Staffing {
                    any: self.core.online(),
                    topics: self.core.staffed_topics(),
                });
            }
            Msg::Queued { limit, reply } => {
                let queued = self.core.queued().take(limit);
                let _requester_gone = reply.send(queued.map(str::to_owned).collect());
            }
            Msg::Stats { reply } => {
                let _requester_gone = reply.send(self.core.stats(now));
            }
            Msg::Waiting { topic, reply } => {
                let _requester_gone = reply.send(self.core.waiting(&topic));
            }
        }
    }

    fn repeat_queue_position(&self, conversation: &str) {
        if let (Some(&(position, eta_ms)), Some(info)) = (
            self.last_queue.get(conversation),
            self.conversations.get(conversation),
        ) {
            let frame = ServerFrame::Queue {
                conversation_id: conversation.to_string(),
                position,
                eta_ms,
            };
            self.send_to(Party::Visitor(info.visitor_id.clone()), &frame);
        }
    }

    pub(super) fn queue(
        &mut self,
        conversation: QueuedConversation,
        now: u64,
    ) -> Vec<RouterCommand> {
        let new = router::NewConversation {
            id: conversation.id.clone(),
            topic: conversation.topic.clone(),
            waiting_since_ms: conversation.waiting_since_ms,
            preferred_agent: conversation.preferred_agent.clone(),
        };
        let present = conversation.customer_present;
        let id = conversation.id.clone();
        self.conversations.insert(id.clone(), conversation);
        let mut commands = self.core.enqueue(now, new);
        if !present {
            commands.extend(self.core.customer_presence(now, &id, false));
        }
        commands
    }

    pub(super) fn execute(&mut self, commands: Vec<RouterCommand>) {
        self.execute_with_reason(commands, LeftReason::Disconnected);
    }

    fn execute_with_reason(&mut self, commands: Vec<RouterCommand>, unassigned: LeftReason) {
        for command in commands {
            self.execute_one(command, unassigned, &mut None);
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

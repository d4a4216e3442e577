//! Carrying out the router core's commands: offers and revocations to agent
//! connections, queue positions to customers, joins and hand-offs stored through the
//! conversation tasks, abandoned chats closed.

use std::sync::Arc;

use tracing::Instrument;

use super::{
    bus::Party as Recipient,
    task::{Accepting, RoutingTask},
    Msg,
};
use crate::{
    conversation::{AppendRequest, Author, Close, Conversations, Fence, Permission},
    error::{Error, Result},
    protocol::{
        AckBody, AgentRef, AgentStatus, ConversationState, EventBody, LeftReason, Party,
        RevokeReason, Role, ServerFrame, TransferOfferInfo, WRAP_UP_ENDED,
    },
    router::{Command as RouterCommand, MISSED_OFFERS},
    store::{AppendOutcome, Requirement, Update},
};

impl RoutingTask {
    /// Carries out one command. `unassigned` is why an `Unassigned` agent leaves;
    /// `accepting` is the accept being answered, if any: its `Assign` carries the ack.
    pub(super) fn execute_one(
        &mut self,
        command: RouterCommand,
        unassigned: LeftReason,
        accepting: &mut Option<Accepting>,
    ) {
        let metrics = self.deps.metrics.clone();
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
                let frame = ServerFrame::Offer {
                    offer_id,
                    conversation_id: conversation,
                    topic,
                    priority,
                    customer: info.customer.clone(),
                    preview: info.preview.clone(),
                    waited_ms,
                    expires_ms,
                    transfer: transfer.map(|t| TransferOfferInfo {
                        from_agent: t.from_agent,
                        note: t.note,
                        to_topic: t.to_topic,
                    }),
                };
                metrics.offers.with_label_values(&["made"]).inc();
                // Nodes with the agent's tabs start hearing the conversation now, so
                // its `joined` reaches them with the accept's ack.
                let watch = Some((conversation_id_of(&frame), None));
                if !self.send_except(Recipient::Agent(agent.clone()), &frame, None, watch) {
                    tracing::warn!(agent_id = %agent, "offer to an agent with no connection");
                }
            }
            RouterCommand::Revoke {
                offer_id,
                agent,
                reason,
                ..
            } => {
                // Withdrawn offers are told as expired too: the protocol has no other word.
                if matches!(reason, RevokeReason::Expired | RevokeReason::Withdrawn) {
                    metrics.offers.with_label_values(&["expired"]).inc();
                }
                self.send_to(
                    Recipient::Agent(agent),
                    &ServerFrame::OfferRevoked { offer_id, reason },
                );
            }
            RouterCommand::Assign {
                agent,
                conversation,
                previous_agent,
                via_offer,
            } => {
                let accepted = match accepting.take() {
                    Some(a) if a.agent == agent && via_offer => Some(a),
                    other => {
                        *accepting = other;
                        None
                    }
                };
                self.assign(agent, conversation, previous_agent, accepted);
            }
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
                    self.send_to(Recipient::Visitor(info.visitor_id.clone()), &frame);
                }
            }
            RouterCommand::AgentAway { agent } => {
                let frame = ServerFrame::Status {
                    status: AgentStatus::Away,
                    reason: Some(MISSED_OFFERS.to_owned()),
                    ends_in_ms: None,
                };
                self.save_status(&agent, AgentStatus::Away);
                self.send_to(Recipient::Agent(agent), &frame);
            }
            // The saved status stays `available`: a wrap-up does not outlive a takeover.
            RouterCommand::WrapUp { agent, ends_in_ms } => {
                let frame = ServerFrame::Status {
                    status: AgentStatus::WrapUp,
                    reason: None,
                    ends_in_ms: Some(ends_in_ms),
                };
                self.send_to(Recipient::Agent(agent), &frame);
            }
            RouterCommand::WrapUpEnded { agent } => {
                let frame = ServerFrame::Status {
                    status: AgentStatus::Available,
                    reason: Some(WRAP_UP_ENDED.to_owned()),
                    ends_in_ms: None,
                };
                self.send_to(Recipient::Agent(agent), &frame);
            }
            RouterCommand::LeaveMessage {
                conversation,
                waited_ms,
            } => {
                if let Some(info) = self.conversations.get(&conversation) {
                    let frame = ServerFrame::LeaveMessage {
                        conversation_id: conversation,
                        waited_ms,
                    };
                    self.send_to(Recipient::Visitor(info.visitor_id.clone()), &frame);
                }
            }
            RouterCommand::Activity(activity) => self.desk.activity(activity),
            RouterCommand::Decision(decision) => self.desk.decision(*decision),
            RouterCommand::TransferFailed {
                conversation,
                requested_by,
                reason,
            } => {
                let frame = ServerFrame::TransferFailed {
                    conversation_id: conversation,
                    reason,
                };
                self.send_to(Recipient::Agent(requested_by), &frame);
            }
            RouterCommand::Unassigned {
                agent,
                conversation,
            } => {
                let name = self.agent_name(&agent);
                let mut request = AppendRequest::new(
                    Author::System,
                    Permission::Member,
                    EventBody::Left {
                        agent: AgentRef { id: agent, name },
                        reason: unassigned,
                    },
                );
                request.updates = vec![
                    Update::State(ConversationState::Queued),
                    Update::Agent(None),
                ];
                self.free_reservation(&conversation);
                self.store_in_order(conversation, request, log_left);
            }
            RouterCommand::Abandon { conversation } => {
                let conversations = Arc::clone(&self.deps.conversations);
                self.deps.tracker.spawn(
                    async move {
                        let close = Close {
                            author: Author::System,
                            by: Party {
                                role: Role::System,
                                id: "router".into(),
                                name: None,
                            },
                            resolution: "abandoned".into(),
                            tags: Vec::new(),
                        };
                        if let Err(err) = conversations.close(&conversation, close, None).await {
                            tracing::warn!(conversation_id = %conversation, cause = %err, "could not close abandoned conversation");
                        }
                    }
                    .in_current_span(),
                );
            }
        }
    }

    /// The conversation went back to the queue: its agent's room is free again.
    fn free_reservation(&self, conversation: &str) {
        let store = self.deps.store.clone();
        let id = conversation.to_string();
        self.deps.tracker.spawn(async move {
            if let Err(err) = store.free_reservation(&id).await {
                tracing::warn!(conversation_id = %id, cause = %err, "reservation not freed");
            }
        });
    }

    /// The name shown for an agent in `joined` and `left` events.
    fn agent_name(&self, agent: &str) -> String {
        self.core
            .agent_name(agent)
            .map_or_else(|| agent.to_string(), str::to_owned)
    }

    /// Hands an append to the conversation's task now (so appends for one conversation
    /// keep the order the router decided) and waits for its outcome elsewhere.
    fn store_in_order(
        &self,
        conversation: String,
        request: AppendRequest,
        then: impl FnOnce(&str, Result<AppendOutcome>) + Send + 'static,
    ) {
        let pending = Conversations::submit(&self.deps.conversations, &conversation, request);
        self.deps.tracker.spawn(async move {
            then(&conversation, pending.await);
        });
    }

    fn assign(
        &mut self,
        agent: String,
        conversation: String,
        previous_agent: Option<String>,
        accepted: Option<Accepting>,
    ) {
        let (ack, remote_ack, reply) = match accepted {
            Some(Accepting {
                offer_id,
                ack,
                remote_ack,
                reply,
                ..
            }) => {
                // The agent's other tabs, at any node, still show the offer: it is taken.
                let accepting = match (&ack, &remote_ack) {
                    (Some(ack), _) => Some((self.handle.node_id().to_string(), ack.conn.id)),
                    (None, Some(remote)) => Some((remote.node.clone(), remote.conn)),
                    (None, None) => None,
                };
                let taken = ServerFrame::OfferRevoked {
                    offer_id,
                    reason: RevokeReason::Taken,
                };
                self.send_except(Recipient::Agent(agent.clone()), &taken, accepting, None);
                (ack, remote_ack, Some(reply))
            }
            None => (None, None, None),
        };
        self.deps
            .metrics
            .offers
            .with_label_values(&["accepted"])
            .inc();
        self.last_queue.remove(&conversation);
        let Some(info) = self.conversations.get(&conversation) else {
            if let Some(reply) = reply {
                let _requester_gone = reply.send(Err(Error::not_found("conversation is gone")));
            }
            return;
        };
        let first_join = previous_agent.is_none();
        let waited_ms = crate::clock::now_ms().saturating_sub(info.waiting_since_ms);
        let topic = info.topic.clone();
        let visitor_id = info.visitor_id.clone();
        let mut request = AppendRequest::new(
            Author::System,
            Permission::Member,
            EventBody::Joined {
                agent: AgentRef {
                    id: agent.clone(),
                    name: self.agent_name(&agent),
                },
            },
        );
        request.updates = vec![
            Update::State(ConversationState::Assigned),
            Update::Agent(Some(agent.clone())),
        ];
        request.ack = ack.map(|ack| {
            ack.with(AckBody {
                conversation_id: Some(conversation.clone()),
                ..AckBody::default()
            })
        });
        let joined_ack = remote_ack.clone();
        request.remote_ack = remote_ack;
        // The owner this router believes in must still be the owner in Redis.
        request.requirement = Requirement::OwnedBy(previous_agent.clone());
        // Checked by Redis: this node still routes (epoch) and the agent has room,
        // whatever a paused node elsewhere believes.
        request.fence = Some(Fence {
            epoch: self.epoch,
            agent: agent.clone(),
            capacity: self
                .core
                .agent_load(&agent)
                .map_or(0, |(_, capacity)| capacity),
        });
        let deps = Joined {
            metrics: self.deps.metrics.clone(),
            store: self.deps.store.clone(),
            tracker: self.deps.tracker.clone(),
            ticket_s: self.deps.config.retention.ticket_s,
            handle: self.handle.clone(),
        };
        let joined_owner = agent.clone();
        let joined_agent = agent;
        self.store_in_order(
            conversation.clone(),
            request,
            move |conversation, outcome| {
                let result = match outcome {
                    Ok(AppendOutcome::Stored(seq)) => {
                        deps.handle.tell(Msg::Joined {
                            agent: joined_agent.clone(),
                            conversation: conversation.to_string(),
                            seq,
                            ack: joined_ack.clone(),
                        });
                        if first_join {
                            deps.metrics
                                .queue_wait_seconds
                                .with_label_values(&[topic.as_str()])
                                .observe(waited_ms as f64 / 1000.0);
                        }
                        deps.remember_agent(visitor_id, joined_agent);
                        Ok((conversation.to_string(), seq))
                    }
                    Ok(AppendOutcome::Duplicate(seq)) => Ok((conversation.to_string(), seq)),
                    Ok(AppendOutcome::NotFound | AppendOutcome::WrongState) => {
                        // Closed, or owned by someone this router did not know of
                        // (another router acted): learn the truth from the record.
                        deps.handle.tell(Msg::Reconcile {
                            conversation: conversation.to_string(),
                        });
                        Err(Error::conflict(
                            "the conversation was closed or taken before the join",
                        ))
                    }
                    Err(err) => {
                        deps.handle.tell(Msg::AssignmentFailed {
                            agent: joined_agent,
                            conversation: conversation.to_string(),
                        });
                        Err(err)
                    }
                };
                if let Some(reply) = reply {
                    let _requester_gone = reply.send(result);
                }
            },
        );
        if let Some(previous) = previous_agent {
            let name = self.agent_name(&previous);
            let mut request = AppendRequest::new(
                Author::System,
                Permission::Member,
                EventBody::Left {
                    agent: AgentRef { id: previous, name },
                    reason: LeftReason::Transferred,
                },
            );
            // Only once the new owner's `joined` is stored: a refused join leaves the
            // previous agent in charge.
            request.requirement = Requirement::OwnedBy(Some(joined_owner));
            self.store_in_order(conversation, request, log_left);
        }
    }
}

/// What the outcome of a stored `joined` is followed up with.
struct Joined {
    metrics: crate::metrics::Metrics,
    store: crate::store::Store,
    tracker: tokio_util::task::TaskTracker,
    ticket_s: u64,
    handle: super::RouterHandle,
}

impl Joined {
    /// The sticky-routing hint: this visitor's next chat is offered to this agent first.
    fn remember_agent(&self, visitor_id: String, agent: String) {
        let store = self.store.clone();
        let ttl_ms = (self.ticket_s > 0).then(|| self.ticket_s.saturating_mul(1000));
        self.tracker.spawn(async move {
            if let Err(err) = store.set_last_agent(&visitor_id, &agent, ttl_ms).await {
                tracing::debug!(cause = %err, "sticky routing hint not saved");
            }
        });
    }
}

/// A `left` that could not be stored is logged: the member list is already changed in
/// the router, and the conversation's members learn it from the next stored event.
fn log_left(conversation: &str, outcome: Result<AppendOutcome>) {
    match outcome {
        Ok(AppendOutcome::Stored(_) | AppendOutcome::Duplicate(_)) => {}
        Ok(AppendOutcome::NotFound | AppendOutcome::WrongState) => {
            tracing::debug!(conversation_id = %conversation, "left not stored: the conversation is closed or gone");
        }
        Err(err) => {
            tracing::warn!(conversation_id = %conversation, cause = %err, "left not stored");
        }
    }
}

/// The conversation an offer frame is about.
fn conversation_id_of(frame: &ServerFrame) -> String {
    match frame {
        ServerFrame::Offer {
            conversation_id, ..
        } => conversation_id.clone(),
        _ => String::new(),
    }
}

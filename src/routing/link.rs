//! How a node reaches the one routing task of the deployment: straight to its inbox when
//! this node routes, over the router channel otherwise (requests with an id, answered
//! by id, `unavailable` after [`ASK_TIMEOUT`]).
//!
//! Which node routes is decided by a Redis lease (`store::coordination`): each node tries
//! to take it every [`LEASE_TICK`]; the holder renews it, and stops routing on its own
//! once [`STEP_DOWN_AFTER`] has passed on its monotonic clock without a renewal, before
//! the lease can expire and another node take over. A node taking over gets a new epoch,
//! which every routing write is checked against in Redis, so a paused node that wakes up
//! still believing it routes has its writes refused.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    bus::{wire, BusMessage, Reply, Request},
    Msg,
};
use crate::{
    error::Error,
    protocol::{AckBody, ServerFrame},
    registry::Registry,
    store::Store,
};

/// How long a request to the routing node may take before `unavailable`.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How many more times a repeatable request may be asked because routing changed hands
/// while it waited (within the same overall time).
const MAX_REASKS_ON_NEW_LEADER: u32 = 3;
/// The routing lease's time to live.
pub const LEASE_TTL: Duration = Duration::from_millis(2500);
/// How often the lease is renewed (holder) or tried (others).
pub const LEASE_TICK: Duration = Duration::from_millis(500);
/// The holder stops routing after this long without a successful renewal: well before
/// the lease expires for the others.
pub const STEP_DOWN_AFTER: Duration = Duration::from_millis(1500);

/// The routing task of this node, while it routes.
pub(crate) struct Leading {
    #[allow(dead_code)] // shown in logs (Debug) and kept with the inbox it belongs to
    pub(crate) epoch: u64,
    pub(crate) inbox: mpsc::UnboundedSender<Msg>,
}

pub(crate) struct Link {
    pub(crate) node_id: String,
    pub(crate) store: Store,
    registry: Arc<Registry>,
    /// Held only to copy or swap the sender, never across an await.
    leading: RwLock<Option<Arc<Leading>>>,
    pending: DashMap<u64, oneshot::Sender<Reply>>,
    next_id: AtomicU64,
    /// The epoch of the last routing node heard of (`BusMessage::Leader`): a request
    /// asked while routing changed hands may have reached nobody, and is asked again.
    leader: watch::Sender<u64>,
}

impl Link {
    pub(crate) fn new(node_id: String, store: Store, registry: Arc<Registry>) -> Link {
        Link {
            node_id,
            store,
            registry,
            leading: RwLock::new(None),
            pending: DashMap::new(),
            next_id: AtomicU64::new(1),
            leader: watch::Sender::new(0),
        }
    }

    /// A node announced that it routes now, at `epoch`.
    pub(crate) fn leader_announced(&self, epoch: u64) {
        self.leader.send_if_modified(|known| {
            let newer = epoch > *known;
            if newer {
                *known = epoch;
            }
            newer
        });
    }

    pub(crate) fn leading(&self) -> Option<Arc<Leading>> {
        self.leading
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_leading(&self, leading: Option<Arc<Leading>>) {
        *self
            .leading
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = leading;
    }

    /// Sends `msg` to the routing task, wherever it runs.
    pub(crate) fn tell(self: &Arc<Self>, msg: Msg) {
        let msg = match self.leading() {
            Some(leading) => match leading.inbox.send(msg) {
                Ok(()) => return,
                Err(mpsc::error::SendError(msg)) => msg,
            },
            None => msg,
        };
        self.remote(msg);
    }

    /// Publishes a bus message (in the background: callers never wait on Redis here).
    pub(crate) fn publish(&self, message: &BusMessage) {
        let Ok(text) = serde_json::to_string(message) else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store
                .publish(&crate::store::keys::router_channel(), &text)
                .await
            {
                tracing::debug!(cause = %err, "router bus message not published");
            }
        });
    }

    /// An answer from the routing node.
    pub(crate) fn replied(&self, id: u64, reply: Reply) {
        if let Some((_, waiter)) = self.pending.remove(&id) {
            let _gave_up = waiter.send(reply);
        }
    }

    fn ask_remote(self: &Arc<Self>, request: Request, answer: impl FnOnce(Reply) + Send + 'static) {
        let link = Arc::clone(self);
        tokio::spawn(async move {
            // A repeatable request is asked once more when unanswered: the routing node
            // may be changing hands, and the next one answers within a lease's time. It
            // is asked again at once when a new routing node announces itself, which may
            // never have heard it (asked while nobody routed).
            let repeatable = request.is_repeatable();
            let attempts = if repeatable { 2 } else { 1 };
            let give_up = tokio::time::Instant::now() + ASK_TIMEOUT * attempts;
            let mut leader = link.leader.subscribe();
            let mut asked = 0;
            while asked < attempts + MAX_REASKS_ON_NEW_LEADER {
                asked += 1;
                let id = link.next_id.fetch_add(1, Ordering::Relaxed);
                let (waiter, reply) = oneshot::channel();
                link.pending.insert(id, waiter);
                leader.mark_unchanged();
                link.publish(&BusMessage::Request {
                    from: link.node_id.clone(),
                    id,
                    request: request.clone(),
                });
                let this_try = (tokio::time::Instant::now() + ASK_TIMEOUT).min(give_up);
                let new_leader = async {
                    if !repeatable || leader.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    reply = reply => {
                        if let Ok(reply) = reply {
                            return answer(reply);
                        }
                    }
                    () = tokio::time::sleep_until(this_try) => {}
                    () = new_leader => {}
                }
                link.pending.remove(&id);
                // Only a repeatable request is asked again, and only in its time.
                if !repeatable || tokio::time::Instant::now() >= give_up {
                    break;
                }
            }
            // `answer` is dropped with its reply sender: the asker hears `unavailable`.
        });
    }

    fn tell_remote(self: &Arc<Self>, request: Request) {
        self.publish(&BusMessage::Request {
            from: self.node_id.clone(),
            id: 0,
            request,
        });
    }

    /// Carries `msg` to the routing node over the bus.
    fn remote(self: &Arc<Self>, msg: Msg) {
        let node = self.node_id.clone();
        match msg {
            Msg::AgentConnected { agent, reply, .. } => {
                self.ask_remote(Request::AgentConnected { agent, node }, move |r| {
                    if let Reply::Connected {
                        status,
                        conversations,
                    } = r
                    {
                        let _gone = reply.send((status, conversations));
                    }
                })
            }
            Msg::AgentDisconnected { agent, .. } => {
                self.tell_remote(Request::AgentGone { agent, node })
            }
            Msg::SetStatus {
                agent,
                status,
                reason,
                reply,
            } => self.ask_remote(
                Request::SetStatus {
                    agent,
                    status,
                    reason,
                },
                move |r| {
                    if let Reply::Status { result } = r {
                        let _gone = reply.send(result.map_err(Error::from));
                    }
                },
            ),
            Msg::UpsertAgent(record) => self.tell_remote(Request::UpsertAgent {
                record: Box::new(record),
            }),
            Msg::RemoveAgent(agent) => self.tell_remote(Request::RemoveAgent { agent }),
            Msg::Enqueue(conversation) => self.tell_remote(Request::Enqueue { conversation }),
            // Only the routing node restores, into its own task.
            Msg::Restore { .. }
            | Msg::AssignmentFailed { .. }
            | Msg::Joined { .. }
            | Msg::Nodes(_)
            | Msg::RestoreStatus { .. }
            | Msg::Reconcile { .. }
            | Msg::Unknown { .. }
            | Msg::Reconciled { .. } => {}
            Msg::Accept {
                agent,
                offer_id,
                ack,
                remote_ack,
                reply,
            } => {
                // A local ack becomes one the routing node publishes with `joined`.
                let remote_ack = remote_ack.or_else(|| {
                    ack.as_ref().map(|ack| crate::conversation::RemoteAck {
                        node: node.clone(),
                        agent: agent.clone(),
                        conn: ack.conn.id,
                        req: ack.req.clone(),
                    })
                });
                if let Some(ack) = &ack {
                    self.registry.expect_ack(ack.conn.id, &ack.req);
                }
                let registry = Arc::clone(&self.registry);
                self.ask_remote(
                    Request::Accept {
                        agent,
                        offer_id,
                        ack: remote_ack,
                    },
                    move |r| {
                        if let Reply::Accepted { result } = r {
                            // The `joined` hint carries the ack; when it was missed, the
                            // ack goes now.
                            if let (Ok((conversation, seq)), Some(ack)) = (&result, ack) {
                                if registry.claim_ack(ack.conn.id, &ack.req) {
                                    ack.conn.send(&ServerFrame::ack(
                                        ack.req,
                                        AckBody {
                                            conversation_id: Some(conversation.clone()),
                                            seq: Some(*seq),
                                            ..AckBody::default()
                                        },
                                    ));
                                }
                            }
                            let _gone = reply.send(result.map_err(Error::from));
                        }
                    },
                )
            }
            Msg::Decline {
                agent,
                offer_id,
                reply,
            } => self.ask_remote(Request::Decline { agent, offer_id }, move |r| {
                if let Reply::Done { result } = r {
                    let _gone = reply.send(result.map_err(Error::from));
                }
            }),
            Msg::Claim {
                conversation,
                agent,
                reply,
            } => self.ask_remote(
                Request::Claim {
                    conversation,
                    agent,
                },
                move |r| {
                    if let Reply::Done { result } = r {
                        let _gone = reply.send(result.map_err(Error::from));
                    }
                },
            ),
            Msg::Closed { conversation } => self.tell_remote(Request::Closed { conversation }),
            Msg::Transfer {
                conversation,
                requester,
                target,
                note,
            } => self.tell_remote(Request::Transfer {
                conversation,
                requester,
                target,
                note,
            }),
            Msg::CustomerPresence {
                conversation,
                present,
            } => self.tell_remote(Request::CustomerPresence {
                conversation,
                present,
            }),
            Msg::Online { reply } => self.ask_remote(Request::Online, move |r| {
                if let Reply::Online { staffing } = r {
                    let _gone = reply.send(staffing);
                }
            }),
            Msg::Queued { limit, reply } => self.ask_remote(Request::Queued { limit }, move |r| {
                if let Reply::Queued { queued } = r {
                    let _gone = reply.send(queued);
                }
            }),
            Msg::Stats { reply } => self.ask_remote(Request::Stats, move |r| {
                if let Reply::Stats { stats } = r {
                    let _gone = reply.send(*stats);
                }
            }),
            Msg::Waiting { topic, reply } => {
                self.ask_remote(Request::Waiting { topic }, move |r| {
                    if let Reply::Waiting { waiting } = r {
                        let _gone = reply.send(waiting);
                    }
                })
            }
        }
    }

    /// On the routing node: a request from another node, into the local task; the
    /// answer goes back by the request's id.
    pub(crate) fn serve(self: &Arc<Self>, from: String, id: u64, request: Request) {
        let Some(leading) = self.leading() else {
            return; // not routing (any more): the asker times out
        };
        let link = Arc::clone(self);
        let answer = move |reply: Reply| {
            if id != 0 {
                link.publish(&BusMessage::Reply {
                    to: from.clone(),
                    id,
                    reply,
                });
            }
        };
        let send = |msg: Msg| {
            let _stopped = leading.inbox.send(msg);
        };
        match request {
            Request::AgentConnected { agent, node } => {
                let (reply, rx) = oneshot::channel();
                send(Msg::AgentConnected { agent, node, reply });
                tokio::spawn(async move {
                    if let Ok((status, conversations)) = rx.await {
                        answer(Reply::Connected {
                            status,
                            conversations,
                        });
                    }
                });
            }
            Request::AgentGone { agent, node } => send(Msg::AgentDisconnected { agent, node }),
            Request::SetStatus {
                agent,
                status,
                reason,
            } => {
                let (reply, rx) = oneshot::channel();
                send(Msg::SetStatus {
                    agent,
                    status,
                    reason,
                    reply,
                });
                tokio::spawn(async move {
                    let result = rx.await.unwrap_or(Err(Error::Unavailable));
                    answer(Reply::Status {
                        result: wire(result),
                    });
                });
            }
            Request::UpsertAgent { record } => send(Msg::UpsertAgent(*record)),
            Request::RemoveAgent { agent } => send(Msg::RemoveAgent(agent)),
            Request::Enqueue { conversation } => send(Msg::Enqueue(conversation)),
            Request::Accept {
                agent,
                offer_id,
                ack,
            } => {
                let (reply, rx) = oneshot::channel();
                send(Msg::Accept {
                    agent,
                    offer_id,
                    ack: None,
                    remote_ack: ack,
                    reply,
                });
                tokio::spawn(async move {
                    let result = rx.await.unwrap_or(Err(Error::Unavailable));
                    answer(Reply::Accepted {
                        result: wire(result),
                    });
                });
            }
            Request::Decline { agent, offer_id } => {
                let (reply, rx) = oneshot::channel();
                send(Msg::Decline {
                    agent,
                    offer_id,
                    reply,
                });
                tokio::spawn(async move {
                    let result = rx.await.unwrap_or(Err(Error::Unavailable));
                    answer(Reply::Done {
                        result: wire(result),
                    });
                });
            }
            Request::Claim {
                conversation,
                agent,
            } => {
                let (reply, rx) = oneshot::channel();
                send(Msg::Claim {
                    conversation,
                    agent,
                    reply,
                });
                tokio::spawn(async move {
                    let result = rx.await.unwrap_or(Err(Error::Unavailable));
                    answer(Reply::Done {
                        result: wire(result),
                    });
                });
            }
            Request::Closed { conversation } => send(Msg::Closed { conversation }),
            Request::Transfer {
                conversation,
                requester,
                target,
                note,
            } => send(Msg::Transfer {
                conversation,
                requester,
                target,
                note,
            }),
            Request::CustomerPresence {
                conversation,
                present,
            } => send(Msg::CustomerPresence {
                conversation,
                present,
            }),
            Request::Online => {
                let (reply, rx) = oneshot::channel();
                send(Msg::Online { reply });
                tokio::spawn(async move {
                    if let Ok(staffing) = rx.await {
                        answer(Reply::Online { staffing });
                    }
                });
            }
            Request::Queued { limit } => {
                let (reply, rx) = oneshot::channel();
                send(Msg::Queued { limit, reply });
                tokio::spawn(async move {
                    if let Ok(queued) = rx.await {
                        answer(Reply::Queued { queued });
                    }
                });
            }
            Request::Stats => {
                let (reply, rx) = oneshot::channel();
                send(Msg::Stats { reply });
                tokio::spawn(async move {
                    if let Ok(stats) = rx.await {
                        answer(Reply::Stats {
                            stats: Box::new(stats),
                        });
                    }
                });
            }
            Request::Waiting { topic } => {
                let (reply, rx) = oneshot::channel();
                send(Msg::Waiting { topic, reply });
                tokio::spawn(async move {
                    if let Ok(waiting) = rx.await {
                        answer(Reply::Waiting { waiting });
                    }
                });
            }
        }
    }
}

//! Conversations: one task per active conversation owns its membership and is the only
//! writer of its events, the first one included.
//!
//! Appends for a conversation go through its task, so events reach members strictly in
//! `seq` order, the requester's `ack` is queued before the event it acknowledges, and a
//! Redis failure with an unknown outcome is repaired by re-reading the stream before the
//! next delivery. Different conversations run in parallel and their writes are
//! pipelined on the shared Redis connection.
//!
//! - `membership` — who belongs and what each may do (plain data);
//! - `task` — the per-conversation task: its loop, acking, fan-out;
//! - `append` — its appends: checks, duplicates, one script call per batch, retries;
//! - `seen` — the `client_msg_id`s it has stored, for answering a repeated one.
//!
//! This module does not route: when a conversation closes it tells whoever was given as
//! [`OnClosed`] (the server wires it to the router and the ticket flush).

mod append;
mod delivery;
mod live;
mod membership;
mod seen;
mod task;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

pub use self::live::RemoteAck;
pub use self::membership::{Author, Membership, Permission};
use self::task::ConversationTask;
use crate::{
    error::{Error, Result},
    metrics::Metrics,
    protocol::{AckBody, ConversationState, EventBody, FrameText, Party, ServerFrame},
    registry::{ConnId, ConnTx, Registry},
    store::{AppendOutcome, Feed, NewConversation, Requirement, Store, Update},
    tickets::MilestoneLog,
};

/// Told the id of each conversation whose `closed` event was just stored and delivered,
/// with the milestones its task kept (`None` when it did not see every event: it came to
/// the conversation later, or missed one), which spare the ticket flush reading the chat
/// back.
pub type OnClosed = Arc<dyn Fn(&str, Option<MilestoneLog>) + Send + Sync>;

pub struct AppendRequest {
    pub author: Author,
    pub permission: Permission,
    pub body: EventBody,
    pub client_msg_id: Option<String>,
    pub requirement: Requirement,
    pub updates: Vec<Update>,
    /// Queue this ack (with the stored seq filled in) before the event goes out.
    pub ack: Option<Ack>,
    /// When set, failures are answered here (with the ack's `req`) by the conversation
    /// task itself, so the requester need not wait: a connection can pipeline messages.
    pub errors_to: Option<ConnTx>,
    /// An ack owed to a connection on another node, published with the event.
    pub remote_ack: Option<RemoteAck>,
    /// A routing write: stored only once Redis has recorded the agent as serving the
    /// conversation under the router's current epoch and within its capacity.
    pub fence: Option<Fence>,
}

/// What a routing write is checked against in Redis (`store::coordination`).
#[derive(Debug, Clone)]
pub struct Fence {
    pub epoch: u64,
    pub agent: String,
    pub capacity: u32,
}

impl AppendRequest {
    /// An append by `author` that needs an open conversation and changes nothing else.
    pub fn new(author: Author, permission: Permission, body: EventBody) -> Self {
        AppendRequest {
            author,
            permission,
            body,
            client_msg_id: None,
            requirement: Requirement::Open,
            updates: Vec::new(),
            ack: None,
            errors_to: None,
            remote_ack: None,
            fence: None,
        }
    }
}

/// Where the ack of a request goes, with its request id and the fields it carries
/// besides the stored seq.
pub struct Ack {
    pub conn: ConnTx,
    pub req: String,
    pub body: AckBody,
    /// `false` for a `message` from a connection that said `echo: false` (issue 19): the
    /// ack then carries the event's `ts`, and the event goes to every recipient but
    /// `conn`. Only a stored message reads it.
    pub echo: bool,
}

impl Ack {
    pub fn to(conn: &ConnTx, req: String) -> Self {
        Ack {
            conn: conn.clone(),
            req,
            body: AckBody::default(),
            echo: true,
        }
    }

    pub fn with(mut self, body: AckBody) -> Self {
        self.body = body;
        self
    }
}

type Reply<T> = oneshot::Sender<Result<T>>;

/// Where an append's outcome goes: to a requester that waits for it, or nowhere for a
/// detached append, whose ack or error the task sends itself; no channel is made for
/// one of those, the most frequent request.
struct AppendReply(Option<Reply<AppendOutcome>>);

impl AppendReply {
    /// Hands the outcome to the requester, if one waits (one that left is no error).
    fn send(self, outcome: Result<AppendOutcome>) {
        if let Some(reply) = self.0 {
            let _ignored_if_requester_left = reply.send(outcome);
        }
    }
}

enum Command {
    /// Store the conversation and its first event (seq 1), ack, deliver.
    Create(Box<NewConversation>, Option<Ack>, Reply<()>),
    Append(Box<AppendRequest>, AppendReply),
    /// Check the closer and the state, number the ticket, then append the `closed`
    /// event built for that number.
    Close {
        author: Author,
        build: BuildClose,
        reply: Reply<(AppendOutcome, String)>,
    },
    /// Check the author and return the membership (for history, monitor, transfer).
    Members(Author, Permission, Reply<Membership>),
    /// Check the author, then relay a non-stored frame (typing, read) to the other
    /// members.
    Relay {
        author: Author,
        permission: Permission,
        text: FrameText,
        from_conn: ConnId,
        staff_only: bool,
        reply: Reply<()>,
    },
    /// A hint from the live feed (`live`).
    Live(String),
    /// Hear the conversation on this node from now on (`live`); the agent, if any,
    /// joined at that seq and hears everything from it.
    Watch(Option<u64>, Option<String>, Option<RemoteAck>, Reply<()>),
    /// Read the stream for anything missed (the feed came back).
    CatchUp,
}

/// The set of running conversation tasks, and what they work with.
pub struct Conversations {
    /// Looked up for every message: foldhash, several times cheaper than SipHash for
    /// ids this short, and seeded at random, as a map whose keys a client names must be.
    tasks: DashMap<String, TaskHandle, foldhash::fast::RandomState>,
    deps: ConversationDeps,
}

/// How others reach a running conversation task.
#[derive(Clone)]
struct TaskHandle {
    tx: mpsc::UnboundedSender<Command>,
    delivered: DeliveredSeq,
}

/// The highest seq a conversation task has delivered. The task alone writes it; the
/// feed's dispatch reads it to drop, without waking the task, a live hint the task would
/// skip anyway: events it delivered already, read from the stream before their hint came
/// (`Conversations::live`).
#[derive(Clone, Default)]
pub(super) struct DeliveredSeq(Arc<AtomicU64>);

impl DeliveredSeq {
    pub(super) fn get(&self) -> u64 {
        // Any value the task once held will do: a reader only drops what was delivered.
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, seq: u64) {
        self.0.store(seq, Ordering::Relaxed);
    }
}

/// What the conversation tasks of a node work with.
pub struct ConversationDeps {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub metrics: Metrics,
    pub on_closed: OnClosed,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub feed: Feed,
    pub node_id: String,
    pub replicated_acks: bool,
    /// The crash point armed for this process (tests of a takeover mid-assignment).
    pub armed: Option<String>,
}

impl Conversations {
    pub fn new(deps: ConversationDeps) -> Arc<Self> {
        Arc::new(Conversations {
            tasks: DashMap::default(),
            deps,
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
            let running = self.tasks.get(id).map(|task| task.tx.clone());
            let tx = match running {
                Some(tx) => tx,
                None => self
                    .tasks
                    .entry(id.to_string())
                    .or_insert_with(|| self.spawn(id))
                    .tx
                    .clone(),
            };
            match tx.send(command) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(back)) => {
                    command = back;
                    self.tasks
                        .remove_if(id, |_, current| current.tx.same_channel(&tx));
                }
            }
        }
        Err(Error::Unavailable)
    }

    fn spawn(self: &Arc<Self>, id: &str) -> TaskHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let delivered = DeliveredSeq::default();
        let task = ConversationTask::new(id, Arc::clone(self), tx.clone(), delivered.clone());
        let span = tracing::info_span!("conversation", conversation_id = %id);
        self.deps.tracker.spawn(task.run(rx).instrument(span));
        TaskHandle { tx, delivered }
    }

    async fn ask<T>(
        self: &Arc<Self>,
        id: &str,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(id, make(reply))?;
        answer.await.map_err(|_| Error::Unavailable)?
    }

    /// Stores a new conversation with its first message as seq 1, through its task: the
    /// ack (carrying the id and seq 1) goes out before the event reaches the customer.
    pub async fn create(self: &Arc<Self>, new: NewConversation, ack: Option<Ack>) -> Result<()> {
        let id = new.id.clone();
        self.ask(&id, |reply| Command::Create(Box::new(new), ack, reply))
            .await
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
        let queued = self.send(
            id,
            Command::Append(Box::new(request), AppendReply(Some(reply))),
        );
        async move {
            queued?;
            answer.await.map_err(|_| Error::Unavailable)?
        }
    }

    /// Queues an append whose ack or error the conversation task sends itself
    /// (`ack` and `errors_to` set); the caller moves on at once.
    pub fn submit_detached(self: &Arc<Self>, id: &str, request: AppendRequest) -> Result<()> {
        self.send(id, Command::Append(Box::new(request), AppendReply(None)))
    }

    pub async fn members(
        self: &Arc<Self>,
        id: &str,
        author: Author,
        permission: Permission,
    ) -> Result<Membership> {
        self.ask(id, |reply| Command::Members(author, permission, reply))
            .await
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
        let text = frame.to_text();
        self.ask(id, |reply| Command::Relay {
            author,
            permission,
            text,
            from_conn,
            staff_only,
            reply,
        })
        .await
    }

    /// Closes a conversation: once its task finds the closer a member and the
    /// conversation open, it numbers the ticket (a number reserved on the conversation,
    /// so a refused close uses none) and stores the `closed` event; [`OnClosed`] hears
    /// of it. The ack (if any) carries the seq and ticket id.
    pub async fn close(
        self: &Arc<Self>,
        conversation_id: &str,
        close: Close,
        ack: Option<Ack>,
    ) -> Result<(u64, String)> {
        let Close {
            author,
            by,
            resolution,
            tags,
        } = close;
        let closer = author.clone();
        let build: BuildClose = Box::new(move |ticket_id: String| {
            let mut request = AppendRequest::new(
                author,
                Permission::Member,
                EventBody::Closed {
                    by,
                    resolution: resolution.clone(),
                    ticket_id: ticket_id.clone(),
                },
            );
            request.updates = vec![
                Update::State(ConversationState::Closed),
                Update::ClosedAt(crate::clock::now_ms()),
                Update::TicketId(ticket_id.clone()),
                Update::Resolution(resolution),
                Update::Tags(tags),
            ];
            request.ack = ack.map(|ack| {
                ack.with(AckBody {
                    ticket_id: Some(ticket_id),
                    ..AckBody::default()
                })
            });
            request
        });
        let (outcome, ticket_id) = self
            .ask(conversation_id, |reply| Command::Close {
                author: closer,
                build,
                reply,
            })
            .await?;
        match outcome {
            AppendOutcome::Stored(seq) | AppendOutcome::Duplicate(seq) => Ok((seq, ticket_id)),
            AppendOutcome::NotFound => Err(Error::not_found(format!(
                "no conversation {conversation_id}"
            ))),
            AppendOutcome::WrongState => Err(Error::conflict(format!(
                "{conversation_id} is already closed"
            ))),
        }
    }
}

/// Builds a close's append once its ticket id is known.
type BuildClose = Box<dyn FnOnce(String) -> AppendRequest + Send>;

/// Who closes a conversation, and how it ended.
pub struct Close {
    pub author: Author,
    pub by: Party,
    pub resolution: String,
    pub tags: Vec<String>,
}

/// The answer to a request stored through a conversation task, when nothing but its
/// success matters.
pub fn expect_stored(outcome: AppendOutcome, conversation_id: &str) -> Result<()> {
    match outcome {
        AppendOutcome::Stored(_) | AppendOutcome::Duplicate(_) => Ok(()),
        AppendOutcome::NotFound => Err(Error::not_found(format!(
            "no conversation {conversation_id}"
        ))),
        AppendOutcome::WrongState => Err(Error::conflict(format!("{conversation_id} is closed"))),
    }
}

//! Tickets: a closed conversation is flushed to one ticket, exactly once, even when a
//! hub dies during the flush (the open-conversations index keeps it until the ticket
//! is stored; storing is `SET NX`). The ticket is stored referring to the
//! conversation's events for its transcript (`store::ticket_form`); readers get it
//! whole. Offline messages become tickets at once. When a webhook is configured, every
//! ticket also enters the outbox (`webhook`).
//!
//! Every stored ticket and every rating is also told to a [`TicketSink`] (the reports),
//! after the flush stored it and on every repeat; a sink's failure is logged and never
//! fails the flush (the sink counts each ticket once however often it is told).
//!
//! Retention (`[retention]`): a ticket expires `ticket_s` after it is stored, and so do
//! the conversation's events, its transcript; the conversation's other keys expire
//! `closed_conversation_s` after its flush. The expiry is
//! set by every flush, the first or a repeat after a crash, before the conversation
//! leaves the open index, so no flushed conversation is left without one.

pub mod history;
pub mod transcript;
pub mod webhook;

pub use transcript::MilestoneLog;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    config::{Config, RetentionSettings},
    error::{Error, Result},
    metrics::Metrics,
    protocol::{AgentRef, Event, EventBody, Party, Role},
    store::{keys, ticket_form::StoredTicket, ConversationRecord, Store, StoreResult},
};

/// What else learns of stored tickets (the reports, wired in `lib.rs`): defined here so
/// that `tickets` never imports the module that reads its tickets. Each call must be
/// safe to repeat: a flush repeated after a crash tells it again.
pub trait TicketSink: Send + Sync {
    /// A ticket was stored by a flush (or found stored by a repeated flush); it may
    /// already carry a rating. From a flush, its `transcript` holds only the events the
    /// reports read: every event but the messages, and the first message from an agent
    /// (the stored ticket holds every event).
    fn ticket_stored<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> futures_util::future::BoxFuture<'a, StoreResult<()>>;
    /// A rating was put on a stored ticket. Its `transcript` may hold only the events
    /// the reports read, as above.
    fn rating_attached<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> futures_util::future::BoxFuture<'a, StoreResult<()>>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    pub score: u8,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: String,
    pub conversation_id: Option<String>,
    pub topic: String,
    pub customer: TicketCustomer,
    pub agents: Vec<AgentRef>,
    pub resolution: String,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    pub opened_at: u64,
    pub closed_at: u64,
    pub wait_ms: Option<u64>,
    pub first_response_ms: Option<u64>,
    pub rating: Option<Rating>,
    pub transcript: Vec<Event>,
}

impl Ticket {
    /// Builds the ticket of a closed conversation from its state and its events: every
    /// event, or only the milestones (`transcript::milestones`), which give the same
    /// figures.
    pub fn from_conversation(record: &ConversationRecord, events: Vec<Event>) -> Ticket {
        let mut agents: Vec<AgentRef> = Vec::new();
        let mut wait_ms = None;
        let mut first_response_ms = None;
        let mut rating = None;
        let mut resolution = record.resolution.clone();
        let mut closed_at = record.closed_at;
        let mut ticket_id = record.ticket_id.clone();
        for event in &events {
            match &event.body {
                EventBody::Joined { agent } => {
                    wait_ms.get_or_insert(event.ts.saturating_sub(record.created_at));
                    if !agents.iter().any(|a| a.id == agent.id) {
                        agents.push(agent.clone());
                    }
                }
                EventBody::Message {
                    from:
                        Party {
                            role: Role::Agent, ..
                        },
                    ..
                } => {
                    first_response_ms.get_or_insert(event.ts.saturating_sub(record.created_at));
                }
                EventBody::Rating { score, comment } => {
                    rating.get_or_insert(Rating {
                        score: *score,
                        comment: comment.clone(),
                    });
                }
                EventBody::Closed {
                    resolution: r,
                    ticket_id: t,
                    ..
                } => {
                    resolution.get_or_insert(r.clone());
                    ticket_id.get_or_insert(t.clone());
                    // The event's own time, so the ticket and the transcript agree.
                    closed_at = Some(event.ts);
                }
                _ => {}
            }
        }
        Ticket {
            ticket_id: ticket_id.unwrap_or_default(),
            conversation_id: Some(record.id.clone()),
            topic: record.topic.clone(),
            customer: TicketCustomer {
                id: record.visitor_id.clone(),
                name: record.customer_name.clone(),
                email: record.customer_email.clone(),
                verified: record.verified,
            },
            agents,
            resolution: resolution.unwrap_or_else(|| "resolved".into()),
            tags: record.tags.clone(),
            metadata: record.metadata.clone(),
            opened_at: record.created_at,
            closed_at: closed_at.unwrap_or(record.created_at),
            wait_ms,
            first_response_ms,
            rating,
            transcript: events,
        }
    }
}

#[derive(Clone)]
pub struct Tickets {
    store: Store,
    metrics: Metrics,
    webhook_enabled: bool,
    retention: RetentionSettings,
    /// Closed conversations whose flush failed; the sweep retries them.
    deferred: std::sync::Arc<dashmap::DashMap<String, ()>>,
    /// A flush holds the whole transcript in memory (and its JSON): together, flushes
    /// hold at most this many events' worth (a wave of closes of long chats must not hold
    /// them all at once; short chats, nearly all of them, flush side by side).
    transcript_budget: std::sync::Arc<tokio::sync::Semaphore>,
    budget_events: u32,
    /// The most events held at once so far (diagnostics and tests).
    peak_events_held: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Told of every stored ticket and rating (the reports).
    sink: Option<std::sync::Arc<dyn TicketSink>>,
    /// The crash point armed for this process (tests of the repeated flush).
    #[cfg(feature = "failpoints")]
    armed: Option<String>,
}

/// Events that all flushes together may hold in memory at once (≈ 1 KB each with the
/// ticket's JSON): a transcript longer than this is flushed alone.
pub const TRANSCRIPT_BUDGET_EVENTS: u32 = 50_000;

/// A flush's share of the transcript budget, given back on drop.
struct TranscriptHold<'a> {
    _permits: tokio::sync::SemaphorePermit<'a>,
    events: i64,
    held: &'a prometheus::IntGauge,
}

impl Drop for TranscriptHold<'_> {
    fn drop(&mut self) {
        self.held.sub(self.events);
    }
}

impl Tickets {
    /// With the default retention; the server uses [`Tickets::from_config`].
    pub fn new(store: Store, metrics: Metrics, webhook_enabled: bool) -> Self {
        Tickets {
            store,
            metrics,
            webhook_enabled,
            retention: RetentionSettings::default(),
            deferred: Default::default(),
            transcript_budget: std::sync::Arc::new(tokio::sync::Semaphore::new(
                TRANSCRIPT_BUDGET_EVENTS as usize,
            )),
            budget_events: TRANSCRIPT_BUDGET_EVENTS,
            peak_events_held: Default::default(),
            sink: None,
            #[cfg(feature = "failpoints")]
            armed: None,
        }
    }

    /// The same, telling `sink` of every stored ticket and rating.
    pub fn with_sink(mut self, sink: std::sync::Arc<dyn TicketSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Tells the sink of a stored ticket; a failure is only logged.
    async fn tell_stored(&self, ticket: &Ticket) {
        if let Some(sink) = &self.sink {
            if let Err(err) = sink.ticket_stored(ticket).await {
                tracing::warn!(ticket_id = %ticket.ticket_id, cause = %err, "ticket not counted in the reports");
            }
        }
    }

    /// Tells the sink of a rating; a failure is only logged.
    async fn tell_rated(&self, ticket: &Ticket) {
        if let Some(sink) = &self.sink {
            if let Err(err) = sink.rating_attached(ticket).await {
                tracing::warn!(ticket_id = %ticket.ticket_id, cause = %err, "rating not counted in the reports");
            }
        }
    }

    /// The same with a smaller transcript budget (tests).
    pub fn with_transcript_budget(mut self, events: u32) -> Self {
        let events = events.max(1);
        self.transcript_budget = std::sync::Arc::new(tokio::sync::Semaphore::new(events as usize));
        self.budget_events = events;
        self
    }

    /// The most transcript events flushes have held at once since start.
    pub fn peak_events_held(&self) -> u64 {
        self.peak_events_held
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until a transcript of `events` events fits in the budget.
    async fn hold(&self, events: u64) -> Result<TranscriptHold<'_>> {
        let weight = events.clamp(1, u64::from(self.budget_events)) as u32;
        // The semaphore is never closed; a closed one would mean shutting down.
        let permits = self
            .transcript_budget
            .acquire_many(weight)
            .await
            .map_err(|_| Error::Unavailable)?;
        let held = &self.metrics.ticket_flush_events_held;
        held.add(i64::from(weight));
        self.peak_events_held.fetch_max(
            held.get().max(0) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(TranscriptHold {
            _permits: permits,
            events: i64::from(weight),
            held,
        })
    }

    pub fn from_config(store: Store, metrics: Metrics, config: &Config) -> Self {
        Tickets {
            retention: config.retention.clone(),
            #[cfg(feature = "failpoints")]
            armed: config.failpoint.clone(),
            ..Tickets::new(store, metrics, config.webhook_url.is_some())
        }
    }

    /// Flushes a closed conversation to its ticket and retires the conversation (sets
    /// its expiry, frees the visitor, leaves the open index). Safe to call any number
    /// of times: a ticket already stored is kept, an expiry already set is not extended.
    pub async fn flush(&self, conversation_id: &str) -> Result<()> {
        self.flush_with(conversation_id, None).await
    }

    /// [`Tickets::flush`], with the milestones the conversation's task kept as the
    /// events went by: when they cover every event, the chat is not read back.
    pub async fn flush_with(
        &self,
        conversation_id: &str,
        known: Option<MilestoneLog>,
    ) -> Result<()> {
        let record = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no conversation {conversation_id}")))?;
        if record.is_open() {
            return Err(Error::conflict("only a closed conversation is flushed"));
        }
        if !record.flushed {
            // Events stored after the task's last one (a rating) are read back.
            let (ticket, json) = match known.filter(|log| log.through() == record.last_seq) {
                Some(log) => self.ticket_from_milestones(&record, log).await?,
                None => self.ticket_from_stream(&record).await?,
            };
            if self
                .store
                .store_ticket(
                    &ticket.ticket_id,
                    &json,
                    self.webhook_enabled,
                    self.retention.ticket_ms(),
                )
                .await?
            {
                self.metrics.tickets.inc();
                tracing::info!(conversation_id, ticket_id = %ticket.ticket_id, "ticket stored");
            }
            #[cfg(feature = "failpoints")]
            crate::failpoint::hit(self.armed.as_deref(), "after_ticket_stored");
            // Also when it was stored already: a crash may have come before this. The
            // indexes before `flushed` is set, so a failure here is retried.
            history::index(&self.store, &ticket, self.retention.ticket_ms()).await?;
            self.tell_stored(&ticket).await;
            #[cfg(feature = "failpoints")]
            crate::failpoint::hit(self.armed.as_deref(), "after_ticket_counted");
        }
        // Also on a repeated flush: the index is what export and erasure find the
        // customer's data by (`store/privacy.rs`).
        if let Some(ticket_id) = &record.ticket_id {
            self.store
                .index_visitor_ticket(
                    &record.visitor_id,
                    ticket_id,
                    Some(&record.id),
                    self.retention.ticket_ms(),
                )
                .await?;
        }
        // Also when the ticket was already stored (a flush repeated after a crash): the
        // crash may have come before the expiry was set.
        self.store
            .retire_conversation(
                &record,
                self.retention.closed_conversation_ms(),
                self.retention.ticket_ms(),
            )
            .await?;
        // The conversation's files live as long as its ticket (from the same close
        // time, so a repeated flush sets the same deadline); tickets kept for ever keep
        // their files.
        if let Some(keep_ms) = self.retention.ticket_ms() {
            let closed_at = record.closed_at.unwrap_or_else(crate::clock::now_ms);
            self.store
                .schedule_attachments(&record.id, closed_at.saturating_add(keep_ms))
                .await?;
        }
        Ok(())
    }

    /// A closed conversation's ticket and its stored form from the milestones its task
    /// kept: nothing of the chat is read.
    async fn ticket_from_milestones(
        &self,
        record: &ConversationRecord,
        log: MilestoneLog,
    ) -> Result<(Ticket, String)> {
        let mut ticket = Ticket::from_conversation(record, log.into_milestones());
        match transcript::reference_form(&mut ticket, &record.id)? {
            Some(json) => Ok((ticket, json)),
            // Stored whole: the events are needed after all.
            None => self.ticket_from_stream(record).await,
        }
    }

    /// A closed conversation's ticket and its stored form, its milestones read back
    /// from the stream.
    async fn ticket_from_stream(&self, record: &ConversationRecord) -> Result<(Ticket, String)> {
        self.metrics.ticket_flushes_read_back.inc();
        let _hold = self.hold(record.last_seq).await?;
        let stored = self.store.all_stored_events(&record.id).await?;
        let milestones = transcript::milestones(&record.id, &stored)?;
        let mut ticket = Ticket::from_conversation(record, milestones);
        let json = transcript::stored_form(&mut ticket, &record.id, &stored, true)?;
        Ok((ticket, json))
    }

    /// Puts a rating given after close on the ticket (flushing first if needed). Once
    /// the conversation or its ticket has expired there is nothing to rate: `not_found`,
    /// and nothing is written (a write would recreate the key without a TTL).
    pub async fn attach_rating(&self, conversation_id: &str) -> Result<()> {
        let record = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no conversation {conversation_id}")))?;
        let ticket_id = record
            .ticket_id
            .clone()
            .ok_or_else(|| Error::conflict("not closed"))?;
        let stored_ticket = match self.store.stored_ticket(&ticket_id).await? {
            Some(stored_ticket) => stored_ticket,
            None => {
                self.flush(conversation_id).await?;
                self.store
                    .stored_ticket(&ticket_id)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("ticket {ticket_id} has expired")))?
            }
        };
        // Stored as it was: by reference, or whole (an older hub's).
        let form = StoredTicket::read(&stored_ticket);
        let refers = matches!(form, StoredTicket::Referring { .. });
        let mut ticket: Ticket =
            serde_json::from_str(&form.head()).map_err(|_| Error::Unavailable)?;
        // The sink reads the milestones (who owned the chat at its close): a ticket stored
        // by reference has none in it.
        let _hold = self.hold(record.last_seq).await?;
        let stored = self.store.all_stored_events(conversation_id).await?;
        let milestones = transcript::milestones(conversation_id, &stored)?;
        let rated = Ticket::from_conversation(&record, milestones);
        ticket.transcript = rated.transcript;
        if ticket.rating.is_some() {
            // Told again: a crash may have come between storing and telling.
            history::index(&self.store, &ticket, self.retention.ticket_ms()).await?;
            self.tell_rated(&ticket).await;
            return Ok(());
        }
        ticket.rating = rated.rating;
        let json = transcript::stored_form(&mut ticket, conversation_id, &stored, refers)?;
        drop(stored);
        if !self.store.replace_ticket(&ticket_id, &json).await? {
            return Err(Error::not_found(format!("ticket {ticket_id} has expired")));
        }
        history::index(&self.store, &ticket, self.retention.ticket_ms()).await?;
        self.tell_rated(&ticket).await;
        Ok(())
    }

    /// An offline message becomes a ticket at once.
    pub async fn offline_message(
        &self,
        visitor_id: &str,
        name: Option<String>,
        email: String,
        verified: bool,
        topic: String,
        text: String,
    ) -> Result<String> {
        let ticket_id = format!("t_{}", self.store.next_id(&keys::ticket_counter()).await?);
        let now = crate::clock::now_ms();
        let event = Event {
            conversation_id: String::new(),
            seq: 1,
            ts: now,
            body: EventBody::Message {
                from: Party {
                    role: Role::Customer,
                    id: visitor_id.to_string(),
                    name: name.clone(),
                },
                text,
                client_msg_id: None,
                attachment: None,
            },
        };
        let ticket = Ticket {
            ticket_id: ticket_id.clone(),
            conversation_id: None,
            topic,
            customer: TicketCustomer {
                id: visitor_id.to_string(),
                name,
                email: Some(email),
                verified,
            },
            agents: vec![],
            resolution: "offline_message".into(),
            tags: vec![],
            metadata: Map::new(),
            opened_at: now,
            closed_at: now,
            wait_ms: None,
            first_response_ms: None,
            rating: None,
            transcript: vec![event],
        };
        let json = serde_json::to_string(&ticket).map_err(|_| Error::Unavailable)?;
        if self
            .store
            .store_ticket(
                &ticket_id,
                &json,
                self.webhook_enabled,
                self.retention.ticket_ms(),
            )
            .await?
        {
            self.metrics.tickets.inc();
        }
        // The ticket is stored: failing the request now would make the customer send it
        // again as a second ticket, so a missing index entry is only logged.
        if let Err(err) = self
            .store
            .index_visitor_ticket(visitor_id, &ticket_id, None, self.retention.ticket_ms())
            .await
        {
            tracing::warn!(ticket_id = %ticket_id, cause = %err, "offline ticket not indexed for its customer");
        }
        if let Err(err) = history::index(&self.store, &ticket, self.retention.ticket_ms()).await {
            tracing::warn!(ticket_id = %ticket_id, cause = %err, "offline ticket not in the history indexes");
        }
        if let Err(err) = self
            .store
            .inbox_add(&ticket_id, now, self.retention.ticket_ms())
            .await
        {
            tracing::warn!(ticket_id = %ticket_id, cause = %err, "offline ticket not in the agents' inbox");
        }
        Ok(ticket_id)
    }

    /// Flushes now (with the milestones the conversation's task kept, if any), or leaves
    /// it to the sweep when that fails.
    pub async fn flush_or_defer(&self, conversation_id: &str, known: Option<MilestoneLog>) {
        if let Err(err) = self.flush_with(conversation_id, known).await {
            tracing::warn!(conversation_id, cause = %err, "ticket flush deferred");
            self.deferred.insert(conversation_id.to_string(), ());
        }
    }
}

/// Retries flushes that failed (Redis was down at close time) until they succeed.
/// Flushes lost to a crash are found by recovery at the next start instead.
pub async fn sweep(tickets: Tickets, shutdown: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let pending: Vec<String> = tickets.deferred.iter().map(|e| e.key().clone()).collect();
        for id in pending {
            match tickets.flush(&id).await {
                Ok(()) => {
                    tickets.deferred.remove(&id);
                }
                Err(crate::error::Error::Unavailable) => break,
                Err(err) => {
                    tracing::warn!(conversation_id = %id, cause = %err, "dropping a deferred flush");
                    tickets.deferred.remove(&id);
                }
            }
        }
    }
}

//! `/v1/conversations` and `/v1/stats`: read-only views for admins, supervisors and
//! (for their own conversations) agents. Tickets are `history.rs`.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{auth, ApiResult};
use crate::{error::Error, hub::Hub, store::ConversationRecord};

fn summary(hub: &Hub, record: &ConversationRecord) -> Value {
    let topic = hub.config.topic(&record.topic);
    let survey = topic.map(|t| t.survey).unwrap_or_default();
    let sla = topic.map(|topic| {
        topic.sla.marks(
            record.created_at,
            record.answered_at,
            record.first_response_at,
            crate::clock::now_ms(),
        )
    });
    json!({
        "conversation_id": record.id,
        "state": record.state,
        "topic": record.topic,
        "agent": record.agent,
        "customer": {
            "id": record.visitor_id, "name": record.customer_name,
            "email": record.customer_email, "verified": record.verified,
        },
        "metadata": record.metadata,
        "preview": record.preview,
        "created_at": record.created_at,
        "waiting_since": record.waiting_since,
        "last_seq": record.last_seq,
        "closed_at": record.closed_at,
        "ticket_id": record.ticket_id,
        "answered_at": record.answered_at,
        "first_response_at": record.first_response_at,
        "sla": sla,
        "survey": survey,
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<crate::protocol::ConversationState>,
}

pub async fn list(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    let mut conversations = Vec::new();
    for id in hub.store.open_conversation_ids().await? {
        if let Some(record) = hub.store.conversation(&id).await? {
            let wanted = match &query.state {
                Some(state) => record.state == *state,
                None => record.is_open(),
            };
            if wanted {
                conversations.push(summary(&hub, &record));
            }
        }
    }
    Ok(Json(json!({ "conversations": conversations })))
}

/// Events per page of `GET /v1/conversations/{id}`: the reply is streamed a page at a
/// time as the client reads it, so a long chat never sits whole in memory.
const SHOW_PAGE: usize = 200;

/// State and every event of one conversation. Membership comes first, from the state
/// hash alone: admins, supervisors and the owning agent. An agent who left the chat (a
/// hand-off away) is refused, as WebSocket `history` refuses it. The events are then
/// streamed page by page; a Redis failure after the first page cuts the reply short
/// (the client sees an incomplete body, never a wrong one).
pub async fn show(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let caller = auth::caller(&hub, &headers).await?;
    let record = hub
        .store
        .conversation(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no conversation {id}")))?;
    if let auth::Caller::Agent(agent) = &caller {
        let owner = record.agent.as_deref() == Some(agent.id.as_str());
        if !agent.supervisor && !owner {
            return Err(Error::forbidden(format!("not a member of {id}")).into());
        }
    }
    let (first, more) = hub.store.history(&id, 0, SHOW_PAGE).await?;
    let mut head =
        format!(r#"{{"conversation":{},"events":["#, summary(&hub, &record)).into_bytes();
    let mut pages = EventPages {
        store: hub.store.clone(),
        conversation_id: id,
        after: first.last().map_or(0, |e| e.seq),
        more: more && !first.is_empty(),
        any: false,
    };
    pages
        .encode(&first, &mut head)
        .map_err(|_| Error::Unavailable)?;
    let rest = futures_util::stream::unfold(Some(pages), |state| async move {
        let mut pages = state?;
        if !pages.more {
            return None;
        }
        match pages.next_chunk().await {
            Ok(chunk) => Some((Ok(chunk), Some(pages))),
            Err(err) => {
                tracing::warn!(conversation_id = %pages.conversation_id, cause = %err, "conversation reply cut short");
                Some((Err(std::io::Error::other("storage unavailable")), None))
            }
        }
    });
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(head))])
        .chain(rest)
        .chain(futures_util::stream::iter([Ok(Bytes::from_static(b"]}"))]));
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// The pages of a conversation's events still to send, after the first.
struct EventPages {
    store: crate::store::Store,
    conversation_id: String,
    after: u64,
    more: bool,
    /// An event was written already (the next one needs a comma).
    any: bool,
}

impl EventPages {
    fn encode(
        &mut self,
        events: &[crate::protocol::Event],
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        for event in events {
            if self.any {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, event)?;
            self.any = true;
        }
        Ok(())
    }

    async fn next_chunk(&mut self) -> Result<Bytes, Error> {
        let (events, more) = self
            .store
            .history(&self.conversation_id, self.after, SHOW_PAGE)
            .await?;
        self.more = more && !events.is_empty();
        self.after = events.last().map_or(self.after, |e| e.seq);
        let mut out = Vec::new();
        self.encode(&events, &mut out)
            .map_err(|_| Error::Unavailable)?;
        Ok(Bytes::from(out))
    }
}

pub async fn stats(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    let stats = hub.router.stats().await.ok_or(Error::Unavailable)?;
    let dead_letters = hub.store.dead_letters().await?;
    let outbox_pending = hub.store.outbox_pending().await.unwrap_or(0);
    let topics: Vec<Value> = stats
        .topics
        .iter()
        .map(|t| {
            json!({
                "topic": t.name, "waiting": t.waiting, "longest_wait_ms": t.longest_wait_ms,
                "agents_available": t.agents_available,
            })
        })
        .collect();
    let waiting: usize = stats.topics.iter().map(|t| t.waiting as usize).sum();
    let agents = hub.router.agents().await;
    Ok(Json(json!({
        "topics": topics,
        "totals": {
            "waiting": waiting,
            "agents_available": agents.iter().filter(|a| a.status == crate::protocol::AgentStatus::Available).count(),
            "agents_online": agents.iter().filter(|a| a.status != crate::protocol::AgentStatus::Offline).count(),
            "active_conversations": agents.iter().map(|a| a.load as usize).sum::<usize>(),
        },
        "webhook": { "pending": outbox_pending, "dead_letters": dead_letters },
    })))
}

/// The routing audit of one conversation: every decision the router made about it,
/// oldest first, with its reasons. Admins and supervisors; kept as long as the
/// conversation is.
pub async fn routing(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    if hub.store.conversation(&id).await?.is_none() {
        return Err(Error::not_found(format!("no conversation {id}")).into());
    }
    let decisions = hub
        .store
        .decisions(&id)
        .await?
        .iter()
        .map(|json| serde_json::from_str::<Value>(json))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Unavailable)?;
    Ok(Json(
        json!({ "conversation_id": id, "decisions": decisions }),
    ))
}

/// The most queued conversations `GET /v1/queue` lists (each is one Redis read, and
/// every console asks every few seconds).
const QUEUE_LISTED: usize = 50;

/// The queue for any agent, so it can take a chat from it (`take`): queued conversations
/// in serving order with what an offer would show. (`GET /v1/conversations` stays for
/// admins and supervisors, as the contract says.)
pub async fn queue(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    auth::caller(&hub, &headers).await?;
    let ids = hub
        .router
        .queued(QUEUE_LISTED)
        .await
        .ok_or(Error::Unavailable)?;
    // Read together (the multiplexed connection pipelines them), not one round trip each.
    let records =
        futures_util::future::try_join_all(ids.iter().map(|id| hub.store.conversation(id))).await?;
    let queued: Vec<_> = records
        .into_iter()
        .flatten()
        .filter(|record| record.state == crate::protocol::ConversationState::Queued)
        .map(|record| {
            json!({
                "conversation_id": record.id,
                "topic": record.topic,
                "customer": { "id": record.visitor_id, "name": record.customer_name, "verified": record.verified },
                "preview": record.preview,
                "waiting_since": record.waiting_since,
            })
        })
        .collect();
    Ok(Json(json!({ "queue": queued })))
}

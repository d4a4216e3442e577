//! `/v1/conversations`, `/v1/tickets` and `/v1/stats`: read-only views for admins,
//! supervisors and (for their own conversations) agents.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::HeaderMap,
    response::IntoResponse,
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{auth, ApiResult};
use crate::{error::Error, hub::Hub, store::ConversationRecord};

fn summary(record: &ConversationRecord) -> Value {
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
                conversations.push(summary(&record));
            }
        }
    }
    Ok(Json(json!({ "conversations": conversations })))
}

pub async fn show(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    let record = hub
        .store
        .conversation(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no conversation {id}")))?;
    let events = hub.store.all_events(&id).await?;
    if let auth::Caller::Agent(agent) = &caller {
        let member = record.agent.as_deref() == Some(agent.id.as_str())
            || events.iter().any(|e| matches!(&e.body, crate::protocol::EventBody::Joined { agent: a } if a.id == agent.id));
        if !agent.supervisor && !member {
            return Err(Error::forbidden(format!("not a member of {id}")).into());
        }
    }
    Ok(Json(
        json!({ "conversation": summary(&record), "events": events }),
    ))
}

#[derive(Deserialize)]
pub struct TicketQuery {
    after: Option<String>,
    limit: Option<usize>,
}

pub async fn tickets(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<TicketQuery>,
) -> ApiResult<impl IntoResponse> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let after = query.after.filter(|a| !a.is_empty());
    if let Some(cursor) = &after {
        let valid = cursor
            .split_once('-')
            .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok());
        if !valid {
            return Err(Error::bad_request("bad cursor").into());
        }
    }
    let page = hub.store.tickets(after.as_deref(), limit).await?;
    let tickets = page
        .tickets
        .iter()
        .map(|json| serde_json::from_str::<Value>(json))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Unavailable)?;
    Ok(Json(json!({ "tickets": tickets, "next": page.next })))
}

pub async fn ticket(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    let json = hub
        .store
        .ticket(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no ticket {id}")))?;
    let ticket: Value = serde_json::from_str(&json).map_err(|_| Error::Unavailable)?;
    Ok(Json(ticket))
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

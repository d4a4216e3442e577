//! The inbox of offline messages (issue 18), for the console:
//! - `GET /v1/inbox?state=open|done&limit=N` — the newest messages of one list, and how
//!   many are open;
//! - `PATCH /v1/inbox/{ticket_id}` `{"handled": true|false}` — mark one handled, or
//!   open it again.
//!
//! Supervisors and admins see every topic's messages; an agent sees those of the topics
//! it could be offered (it has every skill the topic asks for).

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
use crate::{
    error::Error,
    hub::Hub,
    store::{InboxEntry, InboxState, Marked},
};

#[derive(Deserialize, Default)]
pub struct InboxQuery {
    state: Option<String>,
    limit: Option<String>,
}

/// Whether `caller` may see messages left on `topic`.
fn sees(hub: &Hub, caller: &auth::Caller, topic: &str) -> bool {
    match caller {
        auth::Caller::Admin => true,
        auth::Caller::Agent(agent) if agent.supervisor => true,
        auth::Caller::Agent(agent) => hub.config.topic(topic).is_none_or(|t| {
            t.skills
                .iter()
                .all(|skill| agent.skills.contains_key(skill))
        }),
    }
}

/// The console's view of one message: who left it, where to answer, what it says.
fn view(entry: &InboxEntry) -> Option<Value> {
    let ticket: Value = serde_json::from_str(&entry.ticket).ok()?;
    let text = ticket["transcript"]
        .as_array()
        .and_then(|events| events.first())
        .map(|event| event["text"].clone())
        .unwrap_or(Value::Null);
    let mut out = json!({
        "ticket_id": entry.ticket_id,
        "topic": ticket["topic"],
        "customer": ticket["customer"],
        "text": text,
        "left_at": entry.left_at,
    });
    if let Some(handled) = entry
        .handled
        .as_deref()
        .and_then(|h| serde_json::from_str::<Value>(h).ok())
    {
        out["handled_by"] = handled["by"].clone();
        out["handled_at"] = handled["at"].clone();
    }
    Some(out)
}

pub async fn list(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    let state = match query.state.as_deref() {
        None | Some("open") => InboxState::Open,
        Some("done") => InboxState::Done,
        Some(other) => {
            return Err(Error::bad_request(format!("state={other}: use `open` or `done`")).into())
        }
    };
    let limit = match query.limit {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| Error::bad_request("limit: a number from 1 to 200"))?
            .clamp(1, 200),
    };
    let (entries, open) = hub.store.inbox_page(state, limit).await?;
    let messages: Vec<Value> = entries
        .iter()
        .filter_map(view)
        .filter(|m| sees(&hub, &caller, m["topic"].as_str().unwrap_or_default()))
        .collect();
    Ok(Json(json!({ "messages": messages, "open": open })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkBody {
    handled: bool,
}

pub async fn mark(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(ticket_id): Path<String>,
    body: Result<Json<MarkBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    let Json(body) =
        body.map_err(|err| Error::bad_request(format!("expected {{\"handled\": bool}}: {err}")))?;
    let not_found = || Error::not_found(format!("no message {ticket_id} in the inbox"));
    let ticket = hub.store.ticket(&ticket_id).await?.ok_or_else(not_found)?;
    let topic = serde_json::from_str::<Value>(&ticket)
        .ok()
        .and_then(|t| t["topic"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if !sees(&hub, &caller, &topic) {
        return Err(Error::forbidden("not a message of your topics").into());
    }
    let by = match &caller {
        auth::Caller::Admin => "admin".to_string(),
        auth::Caller::Agent(agent) => agent.id.clone(),
    };
    let at = crate::clock::now_ms();
    let handling = json!({ "by": by, "at": at }).to_string();
    match hub
        .store
        .inbox_mark(&ticket_id, body.handled, handling)
        .await?
    {
        Marked::NotInInbox => Err(not_found().into()),
        Marked::Moved | Marked::Already => Ok(Json(json!({
            "ticket_id": ticket_id,
            "handled": body.handled,
        }))),
    }
}

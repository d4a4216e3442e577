//! `GET /v1/tickets` (filters, order, cursor) and `GET /v1/tickets/{id}`: customer
//! history (issue 18). Parses and checks the query once (clear 400s) and decides who may
//! ask; the paging itself is `tickets::history`.
//!
//! Admins and supervisors see every ticket. A plain agent may list tickets only by
//! `customer=` or `visitor=`, and read one ticket only, of a customer it serves now
//! (the agent of the visitor's open conversation) or served before (it joined one of
//! the visitor's tickets still kept): the history of the customer it is chatting with.

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
    store::{IndexCursor, IndexRange, StreamCursor},
    tickets::history::{ticket_customer, HistoryQuery},
};

/// The query as sent: every value a string, checked by [`TicketQuery::parse`].
#[derive(Deserialize, Default)]
pub struct TicketQuery {
    customer: Option<String>,
    visitor: Option<String>,
    agent: Option<String>,
    topic: Option<String>,
    tag: Option<String>,
    rating: Option<String>,
    from: Option<String>,
    to: Option<String>,
    order: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// The longest customer (user) id, visitor id or tag taken.
const MAX_ID_CHARS: usize = 256;

fn text(name: &str, value: Option<String>) -> Result<Option<String>, Error> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() || v.chars().count() > MAX_ID_CHARS => Err(Error::bad_request(
            format!("{name}: 1 to {MAX_ID_CHARS} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => {
            Err(Error::bad_request(format!("{name}: no control characters")))
        }
        Some(v) => Ok(Some(v)),
    }
}

fn millis(name: &str, value: Option<String>) -> Result<Option<u64>, Error> {
    value
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                Error::bad_request(format!(
                    "{name}: Unix time in milliseconds, e.g. 1764700000000"
                ))
            })
        })
        .transpose()
}

impl TicketQuery {
    /// The query, and the cursor as given (its form depends on whether it is filtered).
    fn parse(self, hub: &Hub) -> Result<(HistoryQuery, Option<String>), Error> {
        let customer = text("customer", self.customer)?;
        let visitor = text("visitor", self.visitor)?;
        if visitor.as_ref().is_some_and(|v| !v.starts_with("v_")) {
            return Err(Error::bad_request("visitor: a visitor id (v_…)"));
        }
        let by_customer = match customer {
            None => None,
            Some(user_id) => {
                let secret = hub.config.identity_secret.as_ref().ok_or_else(|| {
                    Error::bad_request("customer: no identity_secret is configured; use visitor=")
                })?;
                Some(crate::auth::verified_visitor_id(secret.expose(), &user_id))
            }
        };
        let visitor = match (by_customer, visitor) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::bad_request(
                    "customer and visitor name different customers: give one",
                ))
            }
            (a, b) => a.or(b),
        };
        let agent = text("agent", self.agent)?;
        if agent.as_ref().is_some_and(|a| {
            a.len() > 64
                || !a
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        }) {
            return Err(Error::bad_request(
                "agent: an agent id ([A-Za-z0-9_.-]{1,64})",
            ));
        }
        let topic = text("topic", self.topic)?;
        if let Some(topic) = &topic {
            if hub.config.topic(topic).is_none() {
                return Err(Error::bad_request(format!("topic: no topic {topic}")));
            }
        }
        let rating = self
            .rating
            .map(|r| {
                r.parse::<u8>()
                    .ok()
                    .filter(|s| *s <= 10)
                    .ok_or_else(|| Error::bad_request("rating: a score from 0 to 10"))
            })
            .transpose()?;
        let (from, to) = (millis("from", self.from)?, millis("to", self.to)?);
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(Error::bad_request("from must be before to"));
            }
        }
        let newest_first = match self.order.as_deref() {
            None | Some("oldest") => false,
            Some("newest") => true,
            Some(other) => {
                return Err(Error::bad_request(format!(
                    "order={other}: use `newest` or `oldest`"
                )))
            }
        };
        let limit = match self.limit {
            None => 50,
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| Error::bad_request("limit: a number from 1 to 500"))?
                .clamp(1, 500),
        };
        let query = HistoryQuery {
            visitor,
            agent,
            topic,
            tag: text("tag", self.tag)?,
            rating,
            range: IndexRange {
                from,
                to,
                newest_first,
            },
            after: None,
            limit,
        };
        Ok((query, self.after.filter(|a| !a.is_empty())))
    }
}

async fn may_see(hub: &Hub, caller: &auth::Caller, visitor: Option<&str>) -> Result<(), Error> {
    let auth::Caller::Agent(agent) = caller else {
        return Ok(());
    };
    if agent.supervisor {
        return Ok(());
    }
    let Some(visitor) = visitor else {
        return Err(Error::forbidden(
            "agents list tickets by customer= or visitor= only",
        ));
    };
    if auth::serves(hub, &agent.id, visitor).await? {
        Ok(())
    } else {
        Err(Error::forbidden("not a customer you serve or served"))
    }
}

fn to_values(tickets: &[String]) -> Result<Vec<Value>, Error> {
    tickets
        .iter()
        .map(|json| serde_json::from_str::<Value>(json))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Unavailable)
}

pub async fn tickets(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(raw): Query<TicketQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    let (mut query, after) = raw.parse(&hub)?;
    may_see(&hub, &caller, query.visitor.as_deref()).await?;
    let bad_cursor = || Error::bad_request("bad cursor: use the `next` of a page");
    let (tickets, next) = if query.is_filtered() {
        query.after = after
            .map(|text| IndexCursor::parse(&text).ok_or_else(bad_cursor))
            .transpose()?;
        let page = query.page(&hub.store).await?;
        (page.tickets, page.next)
    } else {
        // No filter: the ticket log, in flush order, its entry ids the cursor.
        let after = after
            .map(|text| StreamCursor::parse(&text).ok_or_else(bad_cursor))
            .transpose()?;
        let page = if query.range.newest_first {
            hub.store
                .tickets_newest(after.as_ref(), query.limit)
                .await?
        } else {
            hub.store.tickets(after.as_ref(), query.limit).await?
        };
        (page.tickets, page.next)
    };
    Ok(Json(
        json!({ "tickets": to_values(&tickets)?, "next": next }),
    ))
}

pub async fn ticket(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    let json = hub
        .store
        .ticket(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no ticket {id}")))?;
    if !caller.is_admin_or_supervisor() {
        let customer = ticket_customer(&json).ok_or(Error::Unavailable)?;
        let allowed = match &caller {
            auth::Caller::Agent(agent) => auth::serves(&hub, &agent.id, &customer).await?,
            auth::Caller::Admin => true,
        };
        if !allowed {
            return Err(Error::forbidden("not a ticket of a customer you serve or served").into());
        }
    }
    let ticket: Value = serde_json::from_str(&json).map_err(|_| Error::Unavailable)?;
    Ok(Json(ticket))
}

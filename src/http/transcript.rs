//! `GET /v1/transcript/{conversation_id}?expires=&sig=&format=txt|html`: a customer
//! downloads the transcript of its own closed chat, made by the hub from the stored
//! events as the customer saw them (no internal notes, ratings or transfer notes). The
//! link comes from the customer's `transcript` request: signed, valid a minute, so no
//! token travels in a URL and a plain link works from any site (no CORS).

use std::{fmt::Write as _, sync::Arc};

use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::ApiResult;
use crate::{
    error::Error,
    hub::Hub,
    protocol::{Audience, ConversationState, Event, EventBody, Role},
};

/// Events read per page while building a transcript.
const PAGE: usize = 500;
/// A transcript stops here (a very long chat is cut, and says so).
const MAX_EVENTS: usize = 20_000;

#[derive(Deserialize)]
pub struct TranscriptQuery {
    format: Option<String>,
    expires: Option<u64>,
    sig: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Html,
}

pub async fn transcript(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    Query(query): Query<TranscriptQuery>,
) -> ApiResult<Response> {
    let format = match query.format.as_deref() {
        None | Some("txt") => Format::Text,
        Some("html") => Format::Html,
        Some(other) => {
            return Err(
                Error::bad_request(format!("format must be txt or html, not {other:?}")).into(),
            )
        }
    };
    let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
        return Err(
            Error::Unauthorized("a signed link is needed (ask with `transcript`)".into()).into(),
        );
    };
    if !crate::auth::verify_transcript(&hub.session_secret, &id, expires, sig) {
        return Err(Error::forbidden("the link is not valid").into());
    }
    if crate::clock::now_ms() > expires {
        return Err(Error::forbidden("the link has expired: ask for a new one").into());
    }
    let record = hub
        .store
        .conversation(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no conversation {id}")))?;
    if record.state != ConversationState::Closed {
        return Err(
            Error::conflict("the chat is still open: its transcript comes after it ends").into(),
        );
    }
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = hub.store.history(&id, after, PAGE).await?;
        after = page.last().map_or(after, |e| e.seq);
        events.extend(
            page.into_iter()
                .filter_map(|e| e.visible_to(Audience::Customer)),
        );
        if !more || events.len() >= MAX_EVENTS {
            break;
        }
    }
    let cut = events.len() >= MAX_EVENTS;
    events.truncate(MAX_EVENTS);
    let name = record.customer_name.as_deref().unwrap_or("You");
    let body = render(format, &id, name, &events, cut);
    let (mime, ext) = match format {
        Format::Text => ("text/plain; charset=utf-8", "txt"),
        Format::Html => ("text/html; charset=utf-8", "html"),
    };
    let disposition = format!("attachment; filename=\"transcript-{id}.{ext}\"");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// One line per event: `[2026-12-03T14:05:09Z] Ann: hello`.
fn lines(customer: &str, events: &[Event]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter_map(|e| {
            let (who, text) = match &e.body {
                EventBody::Message {
                    from,
                    text,
                    attachment,
                    ..
                } => {
                    let who = match from.role {
                        Role::Customer => customer.to_owned(),
                        _ => from.name.clone().unwrap_or_else(|| from.id.clone()),
                    };
                    let text = match attachment {
                        // The file itself is not in the transcript: its name and size.
                        Some(file) if text.is_empty() => {
                            format!("[file: {} ({} bytes)]", file.name, file.size)
                        }
                        Some(file) => format!("{text} [file: {} ({} bytes)]", file.name, file.size),
                        None => text.clone(),
                    };
                    (who, text)
                }
                EventBody::Joined { agent } => {
                    (String::new(), format!("{} joined the chat", agent.name))
                }
                EventBody::Left { agent, .. } => {
                    (String::new(), format!("{} left the chat", agent.name))
                }
                EventBody::Transfer { .. } => {
                    (String::new(), "Transferred to another agent".into())
                }
                EventBody::Closed { .. } => (String::new(), "The chat ended".into()),
                _ => return None,
            };
            Some((crate::reports::time::format_iso(e.ts), who, text))
        })
        .collect()
}

fn render(format: Format, id: &str, customer: &str, events: &[Event], cut: bool) -> String {
    let mut out = String::new();
    let rows = lines(customer, events);
    match format {
        Format::Text => {
            let _ = writeln!(out, "Chat transcript {id}\n");
            for (at, who, text) in rows {
                let _ = if who.is_empty() {
                    writeln!(out, "[{at}] — {text}")
                } else {
                    writeln!(out, "[{at}] {who}: {text}")
                };
            }
            if cut {
                let _ = writeln!(out, "\n(transcript cut at {MAX_EVENTS} events)");
            }
        }
        Format::Html => {
            let _ = write!(
                out,
                "<!doctype html><meta charset=\"utf-8\"><title>Chat transcript {}</title><h1>Chat transcript {}</h1><ol>",
                escape(id),
                escape(id)
            );
            for (at, who, text) in rows {
                let _ = write!(
                    out,
                    "<li><time>{}</time> <b>{}</b> {}</li>",
                    escape(&at),
                    escape(&who),
                    escape(&text)
                );
            }
            out.push_str("</ol>");
            if cut {
                let _ = write!(out, "<p>(transcript cut at {MAX_EVENTS} events)</p>");
            }
        }
    }
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}

//! Requests both roles make the same way: messages, history, typing and read
//! receipts, and the text checks in front of them.

use std::sync::Arc;

use super::{
    connection::Reply,
    conversation::{AppendRequest, Author, Permission},
    registry::ConnTx,
    Hub,
};
use crate::{
    error::{Error, Result},
    protocol::{AckBody, Audience, ClientFrame, EventBody, Party, ServerFrame},
    store::{AppendOutcome, Requirement},
};

/// Who is speaking on a connection, as the shared requests need it.
pub struct Speaker {
    pub author: Author,
    pub party: Party,
    pub audience: Audience,
}

/// Handles the requests both roles make the same way; hands any other frame back.
pub async fn shared(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    req: Option<String>,
    frame: ClientFrame,
    speaker: Speaker,
) -> std::result::Result<Result<Reply>, ClientFrame> {
    let Speaker {
        author,
        party,
        audience,
    } = speaker;
    // A customer's typing goes to staff only: its own other tabs need no indicator.
    let customer = audience == Audience::Customer;
    Ok(match frame {
        ClientFrame::Ping {} => Ok(Reply::Ack(AckBody::default())),
        ClientFrame::Message {
            conversation_id,
            text,
            client_msg_id,
        } => {
            message(
                hub,
                conn,
                req,
                &conversation_id,
                author,
                party,
                text,
                client_msg_id,
            )
            .await
        }
        ClientFrame::History {
            conversation_id,
            after_seq,
            limit,
        } => history(hub, &conversation_id, author, audience, after_seq, limit).await,
        ClientFrame::Typing {
            conversation_id,
            on,
        } => {
            let frame = ServerFrame::Typing {
                conversation_id: conversation_id.clone(),
                from: party,
                on,
            };
            relay(hub, conn, &conversation_id, author, frame, customer).await
        }
        ClientFrame::Read {
            conversation_id,
            seq,
        } => {
            let frame = ServerFrame::Read {
                conversation_id: conversation_id.clone(),
                from: party,
                seq,
            };
            relay(hub, conn, &conversation_id, author, frame, false).await
        }
        other => return Err(other),
    })
}

/// Rejects empty texts and texts over `limits.max_text_bytes`.
pub fn check_text(hub: &Hub, text: &str) -> Result<()> {
    let max_text = hub.config.limits.max_text_bytes;
    if text.len() > max_text {
        return Err(Error::TooLarge(format!("text is over {max_text} bytes")));
    }
    if text.trim().is_empty() {
        return Err(Error::bad_request("text must not be empty"));
    }
    Ok(())
}

pub fn expect_stored(outcome: AppendOutcome, conversation_id: &str) -> Result<Reply> {
    match outcome {
        AppendOutcome::Stored(_) | AppendOutcome::Duplicate(_) => Ok(Reply::Done),
        AppendOutcome::NotFound => Err(Error::not_found(format!(
            "no conversation {conversation_id}"
        ))),
        AppendOutcome::WrongState => Err(Error::conflict(format!("{conversation_id} is closed"))),
    }
}

/// `message` from either role: stored (idempotently by `client_msg_id`), acked with its
/// seq, then delivered to every member.
#[allow(clippy::too_many_arguments)]
async fn message(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    req: Option<String>,
    conversation_id: &str,
    author: Author,
    from: Party,
    text: String,
    client_msg_id: Option<String>,
) -> Result<Reply> {
    check_text(hub, &text)?;
    if client_msg_id.as_ref().is_some_and(|id| id.len() > 128) {
        return Err(Error::bad_request("client_msg_id is too long"));
    }
    let request = AppendRequest {
        author,
        permission: Permission::Member,
        body: EventBody::Message {
            from,
            text,
            client_msg_id: client_msg_id.clone(),
        },
        client_msg_id,
        requirement: Requirement::Open,
        updates: vec![],
        ack: req.map(|r| (conn.clone(), r, AckBody::default())),
        errors_to: Some(conn.clone()),
    };
    // The conversation task answers (ack or error); reading the next frame need not
    // wait for Redis, so one connection's messages are pipelined, in order.
    hub.conversations
        .submit_detached(conversation_id, request)?;
    Ok(Reply::Done)
}

/// `history`: the events the asker may see after `after_seq`, oldest first.
async fn history(
    hub: &Arc<Hub>,
    conversation_id: &str,
    author: Author,
    audience: Audience,
    after_seq: u64,
    limit: Option<usize>,
) -> Result<Reply> {
    hub.conversations
        .members(conversation_id, author, Permission::Member)
        .await?;
    let limit = limit
        .unwrap_or(200)
        .clamp(1, hub.config.limits.history_limit_max);
    let (events, more) = hub.store.history(conversation_id, after_seq, limit).await?;
    let events = events
        .into_iter()
        .filter_map(|e| e.visible_to(audience))
        .collect();
    Ok(Reply::Ack(AckBody {
        events: Some(events),
        more: Some(more),
        ..AckBody::default()
    }))
}

/// `typing` or `read` from a member, relayed to the others (to staff only when
/// `staff_only`).
async fn relay(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    conversation_id: &str,
    author: Author,
    frame: ServerFrame,
    staff_only: bool,
) -> Result<Reply> {
    hub.conversations
        .relay(
            conversation_id,
            author,
            Permission::Member,
            &frame,
            conn.id,
            staff_only,
        )
        .await?;
    Ok(Reply::Ack(AckBody::default()))
}

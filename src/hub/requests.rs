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
    protocol::{AckBody, Audience, EventBody, Party, ServerFrame},
    store::{AppendOutcome, Requirement},
};

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
pub async fn message(
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
    };
    expect_stored(
        hub.conversations.append(conversation_id, request).await?,
        conversation_id,
    )
}

/// `history`: the events the asker may see after `after_seq`, oldest first.
pub async fn history(
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

/// `typing` or `read` from a member, relayed to the others (a customer's only to staff
/// and for `typing`; its other tabs need no typing indicator of itself).
pub async fn relay(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    conversation_id: &str,
    author: Author,
    permission: Permission,
    frame: ServerFrame,
    staff_only: bool,
) -> Result<Reply> {
    hub.conversations
        .relay(
            conversation_id,
            author,
            permission,
            &frame,
            conn.id,
            staff_only,
        )
        .await?;
    Ok(Reply::Ack(AckBody::default()))
}

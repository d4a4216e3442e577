//! Requests both roles make the same way: messages, history, typing and read
//! receipts, and the text checks in front of them.

use std::sync::Arc;

use super::Reply;
use crate::{
    conversation::{Ack, AppendRequest, Author, Permission},
    error::{Error, Result},
    hub::Hub,
    protocol::{AckBody, Audience, EventBody, Party, ServerFrame},
    registry::ConnTx,
};

/// Who is speaking on a connection, as the shared requests need it.
pub struct Speaker {
    pub author: Author,
    pub party: Party,
    pub audience: Audience,
}

/// Rejects texts that show nothing (whitespace, zero-width and control characters only)
/// and texts over `limits.max_text_bytes`.
pub fn check_text(hub: &Hub, text: &str) -> Result<()> {
    let max_text = hub.config.limits.max_text_bytes;
    if text.len() > max_text {
        return Err(Error::TooLarge(format!("text is over {max_text} bytes")));
    }
    if super::input::blank_looking(text) {
        return Err(Error::bad_request(
            "text must not be empty or blank-looking",
        ));
    }
    Ok(())
}

/// `message` from either role: stored (idempotently by `client_msg_id`), acked with its
/// seq, then delivered to every member.
pub fn message(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    req: Option<String>,
    conversation_id: &str,
    speaker: Speaker,
    text: String,
    client_msg_id: Option<String>,
) -> Result<Reply> {
    check_text(hub, &text)?;
    if client_msg_id.as_ref().is_some_and(|id| id.len() > 128) {
        return Err(Error::bad_request("client_msg_id is too long"));
    }
    let mut request = AppendRequest::new(
        speaker.author,
        Permission::Member,
        EventBody::Message {
            from: speaker.party,
            text,
            client_msg_id: client_msg_id.clone(),
        },
    );
    request.client_msg_id = client_msg_id;
    request.ack = req.map(|req| Ack::to(conn, req));
    request.errors_to = Some(conn.clone());
    // The conversation task answers (ack or error); reading the next frame need not
    // wait for Redis, so one connection's messages are pipelined, in order.
    hub.conversations
        .submit_detached(conversation_id, request)?;
    Ok(Reply::Done)
}

/// `history`: the events the asker may see after `after_seq`, oldest first.
pub async fn history(
    hub: &Arc<Hub>,
    conversation_id: &str,
    speaker: Speaker,
    after_seq: u64,
    limit: Option<usize>,
) -> Result<Reply> {
    hub.conversations
        .members(conversation_id, speaker.author, Permission::Member)
        .await?;
    let limit = limit
        .unwrap_or(200)
        .clamp(1, hub.config.limits.history_limit_max);
    let (events, more) = hub.store.history(conversation_id, after_seq, limit).await?;
    let events = events
        .into_iter()
        .filter_map(|e| e.visible_to(speaker.audience))
        .collect();
    Ok(Reply::Ack(AckBody {
        events: Some(events),
        more: Some(more),
        ..AckBody::default()
    }))
}

/// `typing`: relayed to the other members. A customer's typing goes to staff only: its
/// own other tabs need no indicator.
pub async fn typing(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    conversation_id: String,
    speaker: Speaker,
    on: bool,
) -> Result<Reply> {
    let staff_only = speaker.audience == Audience::Customer;
    let frame = ServerFrame::Typing {
        conversation_id: conversation_id.clone(),
        from: speaker.party,
        on,
    };
    relay(
        hub,
        conn,
        &conversation_id,
        speaker.author,
        frame,
        staff_only,
    )
    .await
}

/// `read`: relayed to the other members.
pub async fn read(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    conversation_id: String,
    speaker: Speaker,
    seq: u64,
) -> Result<Reply> {
    let frame = ServerFrame::Read {
        conversation_id: conversation_id.clone(),
        from: speaker.party,
        seq,
    };
    relay(hub, conn, &conversation_id, speaker.author, frame, false).await
}

/// A non-stored frame from a member, relayed to the others (to staff only when
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

//! Requests both roles make the same way: messages, history, typing and read
//! receipts, and the text checks in front of them.

use std::sync::Arc;

use super::Reply;
use crate::{
    conversation::{Ack, AppendRequest, Author, Permission},
    error::{Error, Result},
    hub::Hub,
    protocol::{
        AckBody, Attachment, Audience, EventBody, HistoryPage, PageEntry, Party, ServerFrame,
        StoredEvent,
    },
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

/// What a `message` says: its text, the client's id for it, and maybe a file; and
/// whether its connection wants its event back (`hello`'s `echo`, issue 19).
pub struct Said {
    pub text: String,
    pub client_msg_id: Option<String>,
    pub attachment: Option<Attachment>,
    pub echo: bool,
}

/// The file a `message` names: uploaded to this conversation by this same speaker.
pub async fn attachment_of(
    hub: &Hub,
    conversation_id: &str,
    attachment_id: &str,
    speaker: &Party,
) -> Result<Attachment> {
    let unknown = || {
        Error::not_found(format!(
            "no file {attachment_id} of yours in this conversation: upload it first"
        ))
    };
    let stored = crate::attachments::find(&hub.store, conversation_id, attachment_id)
        .await?
        .ok_or_else(unknown)?;
    if stored.by_role != speaker.role || stored.by_id != speaker.id {
        return Err(unknown());
    }
    Ok(stored.attachment)
}

/// `message` from either role: stored (idempotently by `client_msg_id`), acked with its
/// seq, then delivered to every member. A message with a file may have no text.
///
/// Without echo, the sending connection is skipped: its ack (with the event's `ts`)
/// stands for the event. A message without `req` has no ack to stand for it, so it is
/// echoed whatever `hello` said.
pub fn message(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    req: Option<String>,
    conversation_id: &str,
    speaker: Speaker,
    said: Said,
) -> Result<Reply> {
    let Said {
        mut text,
        client_msg_id,
        attachment,
        echo,
    } = said;
    if attachment.is_some() && super::input::blank_looking(&text) {
        text.clear(); // a file alone
    } else {
        check_text(hub, &text)?;
    }
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
            attachment,
        },
    );
    request.client_msg_id = client_msg_id;
    request.ack = req.map(|req| Ack {
        echo,
        ..Ack::to(conn, req)
    });
    request.errors_to = Some(conn.clone());
    // The conversation task answers (ack or error); reading the next frame need not
    // wait for Redis, so one connection's messages are pipelined, in order.
    hub.conversations
        .submit_detached(conversation_id, request)?;
    Ok(Reply::Done)
}

/// `history`: the events the asker may see after `after_seq`, oldest first.
///
/// A page goes out only once the connection's earlier frames have reached its socket
/// (queue below a quarter of `send_queue_bytes`), so a client that asks for pages and
/// stops reading holds one page at most: the next request waits here, without reading
/// Redis, and after `history_drain_timeout_ms` the connection is closed with 1013 as
/// a slow reader. A page also stops at about a quarter of `send_queue_bytes` (with
/// `more: true`), whatever `limit` asks: the WebSocket keeps a write buffer as large as
/// the largest frame it ever sent, for as long as the connection lives.
pub async fn history(
    hub: &Arc<Hub>,
    conn: &ConnTx,
    conversation_id: &str,
    speaker: Speaker,
    after_seq: u64,
    limit: Option<usize>,
) -> Result<Reply> {
    hub.conversations
        .members(conversation_id, speaker.author, Permission::Member)
        .await?;
    let limits = &hub.config.limits;
    let drain_timeout = std::time::Duration::from_millis(limits.history_drain_timeout_ms);
    if !conn
        .drained_below(limits.send_queue_bytes / 4, drain_timeout)
        .await
    {
        conn.close_slow_reader();
        return Ok(Reply::Done);
    }
    let limit = limit.unwrap_or(200).clamp(1, limits.history_limit_max);
    let page_bytes = limits.send_queue_bytes / 4;
    let page = page(
        hub,
        conversation_id,
        speaker.audience,
        after_seq,
        limit,
        page_bytes,
    )
    .await?;
    Ok(Reply::Page(page))
}

/// Reads up to `limit` events after `after_seq` and keeps those `audience` may see,
/// stopping at about `page_bytes`. Redis is read in chunks sized from the events seen
/// so far, so a page of long messages does not read a thousand of them to send thirty.
/// Each event's JSON is spliced from its stored form (`HistoryPage`).
async fn page(
    hub: &Hub,
    conversation_id: &str,
    audience: Audience,
    mut after_seq: u64,
    limit: usize,
    page_bytes: usize,
) -> Result<HistoryPage> {
    let mut page = HistoryPage::default();
    let mut bytes = 0;
    let mut remaining = limit;
    let mut chunk = limit.min(64);
    loop {
        let (entries, more) = hub
            .store
            .stored_history(conversation_id, after_seq, chunk)
            .await?;
        for entry in entries {
            if !page.events.is_empty() && bytes >= page_bytes {
                page.more = true;
                return Ok(page);
            }
            after_seq = entry.seq;
            remaining -= 1;
            match StoredEvent::page_json(conversation_id, entry.seq, &entry.json, audience) {
                PageEntry::Visible(json) => {
                    bytes += json.len();
                    page.events.push(json);
                }
                PageEntry::Hidden => {}
                PageEntry::Unreadable => {
                    return Err(crate::store::StoreError::Corrupt(format!(
                        "event {} of {conversation_id} does not parse",
                        entry.seq
                    ))
                    .into())
                }
            }
        }
        if !more || remaining == 0 {
            page.more = more;
            return Ok(page);
        }
        let per_event = (bytes / page.events.len().max(1)).max(64);
        chunk = (page_bytes.saturating_sub(bytes) / per_event + 1).clamp(1, remaining);
    }
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

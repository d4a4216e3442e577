//! Data protection: what Redis holds about one customer (a visitor id), read out for an
//! export and deleted for an erasure, and the audit log of both.
//!
//! A customer's tickets and finished conversations are found through a per-visitor
//! index (`keys::visitor_records`) that every ticket flush and offline message writes
//! and that expires with the visitor's latest ticket; the open conversation through the
//! visitor's open slot. Must not decide who may ask (the HTTP layer does) or whether an
//! erasure is allowed now (the caller checks the open slot first).

use std::collections::HashMap;

use redis::streams::StreamRangeReply;
use serde::Serialize;
use serde_json::Value as Json;

use super::{keys, tickets::StreamCursor, Store, StoreError, StoreResult};
use crate::protocol::Event;

/// Audit entries kept (approximately): older ones are trimmed as new ones arrive.
const AUDIT_KEEP: u64 = 100_000;

/// One conversation as held in Redis: its state hash, every event, its idempotency keys
/// (`client_msg_id` → seq, from the events).
#[derive(Debug, Serialize)]
pub struct HeldConversation {
    pub conversation_id: String,
    pub state: HashMap<String, String>,
    pub events: Vec<Event>,
    pub client_msg_ids: HashMap<String, String>,
}

/// Everything held about one visitor.
#[derive(Debug, Serialize)]
pub struct CustomerData {
    pub visitor_id: String,
    /// The conversation holding the visitor's open slot (open, or closed and not yet
    /// flushed to a ticket).
    pub open_conversation: Option<String>,
    /// The sticky-routing hint: the agent who last served the visitor.
    pub last_agent: Option<String>,
    /// The session revocation marker, if sessions of this visitor were revoked.
    pub sessions_revoked: Option<String>,
    pub conversations: Vec<HeldConversation>,
    pub tickets: Vec<Json>,
}

/// What an erasure deleted.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Erased {
    pub conversations: usize,
    pub tickets: usize,
    pub outbox_entries: usize,
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// The stream entry id (also the paging cursor).
    pub id: String,
    pub at: u64,
    pub who: String,
    pub action: String,
    pub customer: String,
    pub address: String,
    pub detail: Json,
}

/// A page of the audit log, oldest first.
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

/// Ticket ids and conversation ids in a visitor's index.
#[derive(Debug, Default)]
pub struct VisitorRecords {
    pub tickets: Vec<String>,
    pub conversations: Vec<String>,
}

impl Store {
    /// Adds a ticket (and its conversation) to the visitor's index, which then expires
    /// with this ticket (`keep_ms`; `None`: tickets are kept forever, so is the index).
    /// Idempotent: a repeated flush adds nothing new.
    pub async fn index_visitor_ticket(
        &self,
        visitor_id: &str,
        ticket_id: &str,
        conversation_id: Option<&str>,
        keep_ms: Option<u64>,
    ) -> StoreResult<()> {
        let key = keys::visitor_records(visitor_id);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("SADD")
            .arg(&key)
            .arg(format!("t:{ticket_id}"))
            .ignore();
        if let Some(conversation_id) = conversation_id {
            pipe.cmd("SADD")
                .arg(&key)
                .arg(format!("c:{conversation_id}"))
                .ignore();
        }
        match keep_ms {
            Some(ms) => pipe.cmd("PEXPIRE").arg(&key).arg(ms.max(1)).ignore(),
            None => pipe.cmd("PERSIST").arg(&key).ignore(),
        };
        let mut conn = self.conn();
        self.run("index_visitor_ticket", async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// The tickets and conversations in a visitor's index.
    pub async fn visitor_records(&self, visitor_id: &str) -> StoreResult<VisitorRecords> {
        let conn = self.conn();
        let key = keys::visitor_records(visitor_id);
        let members: Vec<String> = self
            .run_read("visitor_records", || {
                let mut conn = conn.clone();
                let key = key.clone();
                async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await }
            })
            .await?;
        let mut records = VisitorRecords::default();
        for member in members {
            if let Some(id) = member.strip_prefix("t:") {
                records.tickets.push(id.to_string());
            } else if let Some(id) = member.strip_prefix("c:") {
                records.conversations.push(id.to_string());
            }
        }
        records.tickets.sort();
        records.conversations.sort();
        Ok(records)
    }

    async fn get_string(&self, op: &'static str, key: String) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        self.run(op, async move {
            redis::cmd("GET").arg(key).query_async(&mut conn).await
        })
        .await
    }

    async fn hash(&self, op: &'static str, key: String) -> StoreResult<HashMap<String, String>> {
        let mut conn = self.conn();
        self.run(op, async move {
            redis::cmd("HGETALL").arg(key).query_async(&mut conn).await
        })
        .await
    }

    /// Everything held about a visitor. Reads whole transcripts: for admins, one
    /// customer at a time, not for a hot path.
    pub async fn customer_data(&self, visitor_id: &str) -> StoreResult<CustomerData> {
        let records = self.visitor_records(visitor_id).await?;
        let open_conversation = self.visitor_open_conversation(visitor_id).await?;
        let last_agent = self
            .get_string("privacy_last_agent", keys::visitor_last_agent(visitor_id))
            .await?;
        let sessions_revoked = self
            .get_string(
                "privacy_sessions_revoked",
                keys::visitor_revoked(visitor_id),
            )
            .await?;
        let mut ids = records.conversations.clone();
        ids.extend(open_conversation.iter().cloned());
        ids.sort();
        ids.dedup();
        let mut conversations = Vec::new();
        for id in ids {
            let state = self
                .hash("privacy_conversation", keys::conversation(&id))
                .await?;
            if state.is_empty() {
                continue; // expired since it was indexed
            }
            let events = self.all_events(&id).await?;
            // The idempotency keys are the ids the events carry (the first one's seq).
            let mut client_msg_ids = HashMap::new();
            for event in &events {
                if let Some(msg_id) = event.body.client_msg_id() {
                    client_msg_ids
                        .entry(msg_id.to_string())
                        .or_insert_with(|| event.seq.to_string());
                }
            }
            conversations.push(HeldConversation {
                conversation_id: id,
                state,
                events,
                client_msg_ids,
            });
        }
        let mut tickets = Vec::new();
        for id in &records.tickets {
            if let Some(json) = self.ticket(id).await? {
                tickets.push(serde_json::from_str::<Json>(&json)?);
            }
        }
        Ok(CustomerData {
            visitor_id: visitor_id.to_string(),
            open_conversation,
            last_agent,
            sessions_revoked,
            conversations,
            tickets,
        })
    }

    /// Deletes what is held about a visitor: its indexed conversations (state, events,
    /// idempotency keys, open-index entry, uploaded files: their descriptions now, their
    /// bytes at the next attachment sweep), its tickets (with their pending webhook
    /// deliveries and dead letters), its routing hint and its index. The open slot is
    /// not touched: the caller refuses an erasure while it is held. The session
    /// revocation marker is kept, so a revoked session stays revoked.
    pub async fn erase_customer(&self, visitor_id: &str) -> StoreResult<Erased> {
        let records = self.visitor_records(visitor_id).await?;
        let mut erased = Erased::default();
        for id in &records.conversations {
            let mut conn = self.conn();
            let id = id.clone();
            let deleted: i64 = self
                .run("erase_conversation", async move {
                    let deleted: i64 = redis::cmd("DEL")
                        .arg(keys::conversation(&id))
                        .arg(keys::events(&id))
                        .arg(keys::client_msg_ids(&id))
                        .arg(keys::decisions(&id))
                        .arg(keys::listeners(&id))
                        .arg(keys::attachments(&id))
                        .query_async(&mut conn)
                        .await?;
                    // Its files (if any) are due now: the next sweep deletes their bytes.
                    redis::cmd("ZADD")
                        .arg(keys::attachments_due())
                        .arg("XX")
                        .arg(0)
                        .arg(&id)
                        .query_async::<i64>(&mut conn)
                        .await?;
                    redis::cmd("ZREM")
                        .arg(keys::open_conversations())
                        .arg(&id)
                        .query_async::<i64>(&mut conn)
                        .await?;
                    Ok(deleted)
                })
                .await?;
            if deleted > 0 {
                erased.conversations += 1;
            }
        }
        if !records.tickets.is_empty() {
            let ticket_keys: Vec<String> =
                records.tickets.iter().map(|t| keys::ticket(t)).collect();
            let mut conn = self.conn();
            let deleted: i64 = self
                .run("erase_tickets", async move {
                    redis::cmd("DEL")
                        .arg(ticket_keys)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            erased.tickets = usize::try_from(deleted).unwrap_or(0);
            erased.outbox_entries = self.forget_deliveries(&records.tickets).await?;
        }
        let mut conn = self.conn();
        // The visitor's keys share its tag: one `DEL`. Its tickets' entries in the other
        // history indexes (agent, topic, …) are skipped and removed when read.
        let visitor_keys = [
            keys::visitor_last_agent(visitor_id),
            keys::visitor_records(visitor_id),
            keys::visitor_tickets(visitor_id),
            keys::visitor_served(visitor_id),
        ];
        self.run("erase_visitor", async move {
            redis::cmd("DEL")
                .arg(&visitor_keys[..])
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await?;
        Ok(erased)
    }

    /// Drops pending webhook deliveries and dead letters of erased tickets: their
    /// ticket is gone, so a delivery would only fail until it gave up. The outbox holds
    /// only undelivered entries, so reading it whole stays small.
    async fn forget_deliveries(&self, ticket_ids: &[String]) -> StoreResult<usize> {
        let mut conn = self.conn();
        let reply: StreamRangeReply = self
            .run("erase_outbox_scan", async move {
                redis::cmd("XRANGE")
                    .arg(keys::webhook_outbox())
                    .arg("-")
                    .arg("+")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut entry_ids = Vec::new();
        for entry in &reply.ids {
            let ticket: Option<String> = entry
                .map
                .get("ticket_id")
                .and_then(|v| redis::from_redis_value_ref(v).ok());
            if ticket.is_some_and(|t| ticket_ids.contains(&t)) {
                entry_ids.push(entry.id.clone());
            }
        }
        let ids = entry_ids.clone();
        let tickets = ticket_ids.to_vec();
        let mut conn = self.conn();
        self.run("erase_outbox", async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            if !ids.is_empty() {
                pipe.cmd("XDEL")
                    .arg(keys::webhook_outbox())
                    .arg(&ids)
                    .ignore();
                pipe.cmd("HDEL")
                    .arg(keys::webhook_retries())
                    .arg(&ids)
                    .ignore();
            }
            for ticket in &tickets {
                pipe.cmd("LREM")
                    .arg(keys::webhook_dead_letters())
                    .arg(0)
                    .arg(ticket)
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await
        })
        .await?;
        Ok(entry_ids.len())
    }

    /// Appends an entry to the audit log.
    pub async fn audit(
        &self,
        who: &str,
        action: &str,
        customer: &str,
        address: &str,
        detail: &Json,
    ) -> StoreResult<()> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys::audit_log())
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_KEEP)
            .arg("*")
            .arg("at")
            .arg(crate::clock::now_ms())
            .arg("who")
            .arg(who)
            .arg("action")
            .arg(action)
            .arg("customer")
            .arg(customer)
            .arg("address")
            .arg(address)
            .arg("detail")
            .arg(detail.to_string());
        let mut conn = self.conn();
        self.run("audit", async move {
            cmd.query_async::<String>(&mut conn).await.map(|_| ())
        })
        .await
    }

    /// Audit entries after the cursor, oldest first, at most `limit`.
    pub async fn audit_page(
        &self,
        after: Option<&StreamCursor>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        let Some((page, next)) = self
            .stream_page(
                "audit_page",
                keys::audit_log(),
                super::tickets::StreamOrder::Oldest,
                after,
                limit,
            )
            .await?
        else {
            return Ok(AuditPage {
                entries: Vec::new(),
                next: None,
            });
        };
        let mut entries = Vec::new();
        for entry in &page {
            let text = |name: &str| -> String {
                entry
                    .map
                    .get(name)
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                    .unwrap_or_default()
            };
            let detail = text("detail");
            entries.push(AuditEntry {
                id: entry.id.clone(),
                at: text("at").parse().unwrap_or(0),
                who: text("who"),
                action: text("action"),
                customer: text("customer"),
                address: text("address"),
                detail: if detail.is_empty() {
                    Json::Null
                } else {
                    serde_json::from_str(&detail)
                        .map_err(|err| StoreError::Corrupt(format!("audit detail: {err}")))?
                },
            });
        }
        Ok(AuditPage { entries, next })
    }
}

//! The Redis key layout, in one place. Conversation keys carry the conversation id as
//! a hash tag; global indexes have tags of their own.

pub fn conversation(id: &str) -> String {
    format!("sb:{{{id}}}:conv")
}

pub fn events(id: &str) -> String {
    format!("sb:{{{id}}}:events")
}

/// The `client_msg_id → seq` hash of versions before issue 19 (the conversation task now
/// answers repeats from the stream); still deleted with its conversation.
pub fn client_msg_ids(id: &str) -> String {
    format!("sb:{{{id}}}:msgids")
}

/// List of the conversation's routing decisions (the routing audit), oldest first.
pub fn decisions(id: &str) -> String {
    format!("sb:{{{id}}}:routing")
}

/// Sorted set (score: creation ms) of conversations not yet flushed to a ticket;
/// a restarted hub rebuilds its state from it.
pub fn open_conversations() -> String {
    "sb:{open}:conversations".into()
}

/// The one open conversation of a visitor (at most one by the contract).
pub fn visitor_open(visitor_id: &str) -> String {
    format!("sb:{{{visitor_id}}}:open")
}

/// The agent who last served a visitor (sticky routing for verified customers).
pub fn visitor_last_agent(visitor_id: &str) -> String {
    format!("sb:{{{visitor_id}}}:last_agent")
}

pub fn agents() -> String {
    "sb:{agents}:profiles".into()
}

pub fn agent_tokens() -> String {
    "sb:{agents}:tokens".into()
}

pub fn session_secret() -> String {
    "sb:{config}:session_secret".into()
}

pub fn ticket(id: &str) -> String {
    format!("sb:{{tickets}}:t:{id}")
}

/// Stream of ticket ids in flush order; its entry ids are the paging cursor.
pub fn ticket_log() -> String {
    "sb:{tickets}:log".into()
}

pub fn ticket_counter() -> String {
    "sb:{tickets}:seq".into()
}

/// Webhook outbox: a stream read through a consumer group, so pending deliveries
/// survive restarts and move between nodes.
pub fn webhook_outbox() -> String {
    "sb:{tickets}:outbox".into()
}

/// Attempts and next attempt time of failing deliveries, by outbox entry id.
pub fn webhook_retries() -> String {
    "sb:{tickets}:retries".into()
}

pub fn webhook_dead_letters() -> String {
    "sb:{tickets}:dead".into()
}

// --- Data protection (export, erase, audit): `store/privacy.rs` ---------------------

/// What is held about a visitor beyond its open slot and routing hint: a set of
/// `t:<ticket id>` and `c:<conversation id>` members, written at each ticket flush (and
/// offline message), expiring with the visitor's latest ticket.
pub fn visitor_records(visitor_id: &str) -> String {
    format!("sb:{{{visitor_id}}}:records")
}

/// Stream of admin actions on customer data (who, what, when).
pub fn audit_log() -> String {
    "sb:{audit}:log".into()
}

// --- flood control and revocation (abuse-b) ---

/// Flood counter of a client address; the address is the hash tag.
pub fn flood_address(address: &str, kind: &str) -> String {
    format!("sb:{{ip:{address}}}:flood:{kind}")
}

/// Flood counter of a visitor, in the visitor's slot.
pub fn flood_visitor(visitor_id: &str, kind: &str) -> String {
    format!("sb:{{{visitor_id}}}:flood:{kind}")
}

/// When the visitor's sessions were revoked (unix ms): sessions issued at or
/// before it are refused. Data export shows it; erase keeps it, so a revoked session
/// stays revoked.
pub fn visitor_revoked(visitor_id: &str) -> String {
    format!("sb:{{{visitor_id}}}:revoked")
}

// --- several nodes: routing lease, ledger, node heartbeats, live channels ---------------
// Everything the nodes share to route as one lives under `{router}`: one slot on a
// cluster, so each coordination script is atomic there.

/// `node|epoch` of the node that routes now; expires unless renewed.
pub fn router_lease() -> String {
    "sb:{router}:lease".into()
}

/// The last epoch handed out (the fencing token: only the latest may route).
pub fn router_epoch() -> String {
    "sb:{router}:epoch".into()
}

/// Hash conversation → agent serving it: what capacity is checked against.
pub fn router_ledger() -> String {
    "sb:{router}:ledger".into()
}

/// Hash agent → number of conversations in the ledger.
pub fn router_load() -> String {
    "sb:{router}:load".into()
}

/// Hash agent → the status it chose (available, away).
pub fn router_statuses() -> String {
    "sb:{router}:statuses".into()
}

/// A node's heartbeat record (JSON), expiring unless renewed.
pub fn node(id: &str) -> String {
    format!("sb:{{router}}:node:{id}")
}

/// Set of node ids that sent a heartbeat (expired ones are dropped when listed).
pub fn nodes() -> String {
    "sb:{router}:nodes".into()
}

/// What every live channel of a conversation starts with; the node id follows.
pub fn live_prefix(conversation_id: &str) -> String {
    format!("sb:{{{conversation_id}}}:live:")
}

/// Channel on which `node` hears a conversation's events stored by other nodes, in the
/// conversation's slot (`SPUBLISH` on a cluster).
pub fn live(conversation_id: &str, node: &str) -> String {
    format!("{}{node}", live_prefix(conversation_id))
}

/// The conversation of `node`'s live channel `sb:{c_…}:live:<node>`, if it is one.
pub fn conversation_of_live<'a>(channel: &'a str, node: &str) -> Option<&'a str> {
    let (conversation, listener) = channel.strip_prefix("sb:{")?.split_once("}:live:")?;
    (listener == node).then_some(conversation)
}

/// Set of the nodes that listen to a conversation (each on its own `live` channel): an
/// append publishes its batch to each of them but the storing node.
pub fn listeners(conversation_id: &str) -> String {
    format!("sb:{{{conversation_id}}}:listeners")
}

/// Channel every node hears: routing requests to the leader and its output to nodes.
pub fn router_channel() -> String {
    "sb:{router}:bus".into()
}

/// Channel a node checks its live feed with (a message to itself).
pub fn probe_channel(node: &str) -> String {
    format!("sb:{{router}}:probe:{node}")
}

// --- reports (issue 17): hourly aggregates, `store/reports.rs` ---------------------
// A topic's hour lives under `{rep:<hour ms>}` (one slot per hour: a ticket's topic
// facts and its done-set check are one script); an agent's hours under
// `{repa:<agent>}` (its ticket shares, ratings and state time, each with its own
// done set or state, in one slot).

/// Hash of one topic's counters for the hour starting at `hour` (unix ms).
pub fn report_topic(hour: u64, topic: &str) -> String {
    format!("sb:{{rep:{hour}}}:topic:{topic}")
}

/// Set of ticket ids already counted in the hour's topic hashes.
pub fn report_done(hour: u64) -> String {
    format!("sb:{{rep:{hour}}}:done")
}

/// Set of ticket ids whose rating is already counted in the hour's topic hashes.
pub fn report_rated(hour: u64) -> String {
    format!("sb:{{rep:{hour}}}:rated")
}

/// Hash of one agent's counters (ticket shares, ratings, state time) for an hour.
pub fn report_agent(agent: &str, hour: u64) -> String {
    format!("sb:{{repa:{agent}}}:h:{hour}")
}

/// Set of ticket ids already counted in the agent's hash of `hour`.
pub fn report_agent_done(agent: &str, hour: u64) -> String {
    format!("sb:{{repa:{agent}}}:done:{hour}")
}

/// Set of ticket ids whose rating is already counted in the agent's hash of `hour`.
pub fn report_agent_rated(agent: &str, hour: u64) -> String {
    format!("sb:{{repa:{agent}}}:rated:{hour}")
}

/// The agent's current state sample and since when (JSON).
pub fn report_agent_state(agent: &str) -> String {
    format!("sb:{{repa:{agent}}}:state")
}

// --- Canned responses (issue 18): `store/canned.rs` ----------------------------------

/// Hash: canned response id → its JSON.
pub fn canned_items() -> String {
    "sb:{canned}:items".into()
}

/// Hash: `<topic>/<shortcut>` (`/<shortcut>` for a global one) → id, so a shortcut is
/// unique per scope.
pub fn canned_shortcuts() -> String {
    "sb:{canned}:shortcuts".into()
}

/// Set once the config's `[[canned_responses]]` were offered to Redis.
pub fn canned_seeded() -> String {
    "sb:{canned}:seeded".into()
}

// --- customer history (issue 18): ticket indexes, `store/ticket_index.rs` -----------
// Sorted sets, every member `<closed_at, 16 digits>:<ticket id>` with score 0, read by
// lex range. Each index key is its own hash tag (written by separate, repeatable
// commands); the visitor's lives in the visitor's slot.

/// The visitor's tickets (customer history; a verified customer's visitor id is derived
/// from its user id, so this is also the customer's).
pub fn visitor_tickets(visitor_id: &str) -> String {
    format!("sb:{{{visitor_id}}}:tickets")
}

/// Agents who served the visitor in a ticket still kept (the agents' permission rule).
pub fn visitor_served(visitor_id: &str) -> String {
    format!("sb:{{{visitor_id}}}:served")
}

/// Tickets an agent joined.
pub fn agent_tickets(agent: &str) -> String {
    format!("sb:{{ti:agent:{agent}}}:tickets")
}

/// Tickets of a topic.
pub fn topic_tickets(topic: &str) -> String {
    format!("sb:{{ti:topic:{topic}}}:tickets")
}

/// Tickets carrying a tag.
pub fn tag_tickets(tag: &str) -> String {
    format!("sb:{{ti:tag:{tag}}}:tickets")
}

/// Tickets rated `score`.
pub fn rating_tickets(score: u8) -> String {
    format!("sb:{{ti:rating:{score}}}:tickets")
}

/// Every ticket by its close time (queries by `from`/`to` alone).
pub fn closed_tickets() -> String {
    "sb:{tickets}:closed".into()
}

// --- Attachments: `store/attachments.rs` ------------------------------------------------

/// Hash of a conversation's uploaded files: attachment id → its description (JSON).
pub fn attachments(conversation_id: &str) -> String {
    format!("sb:{{{conversation_id}}}:files")
}

/// Sorted set of conversations holding files (score: when their files are to be deleted,
/// Unix ms; open conversations wait far in the future until their ticket is stored).
pub fn attachments_due() -> String {
    "sb:{files}:due".into()
}

// --- The offline-message inbox: `store/inbox.rs` -------------------------------------

/// Offline messages not yet handled (score: when left, Unix ms), by ticket id.
pub fn inbox_open() -> String {
    "sb:{tickets}:inbox:open".into()
}

/// Offline messages handled (score: when left), by ticket id.
pub fn inbox_done() -> String {
    "sb:{tickets}:inbox:done".into()
}

/// Who handled each handled message, and when: ticket id → `{"by","at"}`.
pub fn inbox_handled() -> String {
    "sb:{tickets}:inbox:handled".into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn conversation_keys_share_a_hash_tag() {
        let id = "c_9f2";
        for key in [
            super::conversation(id),
            super::events(id),
            super::client_msg_ids(id),
            super::listeners(id),
            super::live(id, "n1"),
        ] {
            assert!(key.contains("{c_9f2}"), "{key}");
        }
    }

    #[test]
    fn a_live_channel_names_its_conversation_for_its_own_node_only() {
        let channel = super::live("c_9f2", "n1");
        assert_eq!(super::conversation_of_live(&channel, "n1"), Some("c_9f2"));
        assert_eq!(super::conversation_of_live(&channel, "n2"), None);
        assert_eq!(super::conversation_of_live("sb:{router}:bus", "n1"), None);
    }
}

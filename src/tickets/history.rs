//! Customer history (issue 18): the ticket indexes a flush (and a rating) writes, and
//! pages of tickets by filter (customer or visitor, agent, topic, tag, rating, close
//! time), newest or oldest first, with a cursor that is a position in an index.
//!
//! A query reads one index, the most selective its filters name (visitor, then agent,
//! tag, rating, topic; every ticket by close time when only `from`/`to` are given), and
//! checks the other filters on each ticket it reads. A page stops after scanning
//! [`MAX_SCANNED`] entries, so a rare combination may give short (even empty) pages
//! with a `next`; an entry whose ticket expired is skipped and removed.
//!
//! Must not know HTTP or who may ask: `http/history.rs` decides that.

use serde::Deserialize;

use super::Ticket;
use crate::store::{keys, IndexCursor, IndexRange, Store, StoreResult};

/// Index entries closed more than the ticket lifetime plus this long ago are pruned
/// at each write. The slack covers flushes that came late (a ticket lives `ticket_s`
/// from its flush, not its close); entries of expired tickets younger than that are
/// removed when a read meets them.
pub const PRUNE_GRACE_MS: u64 = 86_400_000;

/// Entries one page may scan at most (filters the index does not answer).
pub const MAX_SCANNED: usize = 2_000;

/// The index keys a ticket belongs in.
fn index_keys(ticket: &Ticket) -> Vec<String> {
    let mut out = vec![
        keys::closed_tickets(),
        keys::visitor_tickets(&ticket.customer.id),
        keys::topic_tickets(&ticket.topic),
    ];
    out.extend(ticket.agents.iter().map(|a| keys::agent_tickets(&a.id)));
    out.extend(ticket.tags.iter().map(|t| keys::tag_tickets(t)));
    out.extend(
        ticket
            .rating
            .as_ref()
            .map(|r| keys::rating_tickets(r.score)),
    );
    out.sort();
    out.dedup();
    out
}

/// Puts a stored ticket in its indexes and records who served its customer. Safe to
/// repeat (a flush after a crash, a rating told twice); `keep_ms` is `[retention]
/// ticket_s` (`None`: forever).
pub async fn index(store: &Store, ticket: &Ticket, keep_ms: Option<u64>) -> StoreResult<()> {
    let prune_before = keep_ms
        .map(|keep| crate::clock::now_ms().saturating_sub(keep.saturating_add(PRUNE_GRACE_MS)));
    store
        .index_ticket(
            &index_keys(ticket),
            ticket.closed_at,
            &ticket.ticket_id,
            keep_ms,
            prune_before,
        )
        .await?;
    let agents: Vec<String> = ticket.agents.iter().map(|a| a.id.clone()).collect();
    store
        .note_served(&ticket.customer.id, &agents, keep_ms)
        .await
}

/// What a page asks for; every filter optional (at least one, or `from`/`to`, for an
/// indexed read: see [`HistoryQuery::is_filtered`]).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// A visitor id (a verified customer's is derived from its user id).
    pub visitor: Option<String>,
    pub agent: Option<String>,
    pub topic: Option<String>,
    pub tag: Option<String>,
    pub rating: Option<u8>,
    pub range: IndexRange,
    pub after: Option<IndexCursor>,
    pub limit: usize,
}

/// The parts of a stored ticket the filters look at.
#[derive(Deserialize)]
struct Facts {
    customer: Id,
    #[serde(default)]
    agents: Vec<Id>,
    topic: String,
    #[serde(default)]
    tags: Vec<String>,
    rating: Option<Score>,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Score {
    score: u8,
}

/// A page of tickets (stored JSON) and the cursor of the next page, if any.
pub struct HistoryPage {
    pub tickets: Vec<String>,
    pub next: Option<String>,
}

impl HistoryPage {
    /// The page of the tickets chosen, as stored (filtered on their other fields), made
    /// whole: only these read their transcripts.
    async fn whole(
        store: &Store,
        chosen: Vec<String>,
        next: Option<String>,
    ) -> StoreResult<HistoryPage> {
        let whole = store
            .whole_tickets(chosen.into_iter().map(Some).collect())
            .await?;
        Ok(HistoryPage {
            tickets: whole.into_iter().flatten().collect(),
            next,
        })
    }
}

/// The customer (visitor id) a stored ticket belongs to; `None` when it cannot be read.
pub fn ticket_customer(json: &str) -> Option<String> {
    serde_json::from_str::<Facts>(json)
        .ok()
        .map(|facts| facts.customer.id)
}

impl HistoryQuery {
    /// Whether an index is needed (any filter or time bound); without one, tickets page
    /// through the ticket log as before.
    pub fn is_filtered(&self) -> bool {
        self.visitor.is_some()
            || self.agent.is_some()
            || self.topic.is_some()
            || self.tag.is_some()
            || self.rating.is_some()
            || self.range.from.is_some()
            || self.range.to.is_some()
    }

    /// The index read: the most selective filter given.
    fn driver(&self) -> String {
        if let Some(visitor) = &self.visitor {
            keys::visitor_tickets(visitor)
        } else if let Some(agent) = &self.agent {
            keys::agent_tickets(agent)
        } else if let Some(tag) = &self.tag {
            keys::tag_tickets(tag)
        } else if let Some(score) = self.rating {
            keys::rating_tickets(score)
        } else if let Some(topic) = &self.topic {
            keys::topic_tickets(topic)
        } else {
            keys::closed_tickets()
        }
    }

    fn matches(&self, json: &str) -> bool {
        let Ok(facts) = serde_json::from_str::<Facts>(json) else {
            tracing::warn!("a stored ticket could not be read for a filter");
            return false;
        };
        self.visitor
            .as_ref()
            .is_none_or(|v| facts.customer.id == *v)
            && self
                .agent
                .as_ref()
                .is_none_or(|id| facts.agents.iter().any(|a| a.id == *id))
            && self.topic.as_ref().is_none_or(|t| facts.topic == *t)
            && self.tag.as_ref().is_none_or(|t| facts.tags.contains(t))
            && self
                .rating
                .is_none_or(|s| facts.rating.as_ref().is_some_and(|r| r.score == s))
    }

    /// One page: at most `limit` tickets after the cursor, in the range's order.
    pub async fn page(&self, store: &Store) -> StoreResult<HistoryPage> {
        let key = self.driver();
        let limit = self.limit.max(1);
        let mut position = self.after.clone();
        let mut tickets = Vec::new();
        let mut scanned = 0;
        loop {
            let want = (limit - tickets.len()).saturating_add(1).min(501);
            let batch = store
                .scan_ticket_index(&key, self.range, position.as_ref(), want)
                .await?;
            let (count, full) = (batch.len(), batch.len() == want);
            scanned += count;
            for (i, entry) in batch.into_iter().enumerate() {
                position = Some(entry.cursor);
                if let Some(json) = entry.json.filter(|json| self.matches(json)) {
                    tickets.push(json);
                }
                if tickets.len() == limit {
                    let more = i + 1 < count || full;
                    let next = more.then(|| position.map(|p| p.text())).flatten();
                    return HistoryPage::whole(store, tickets, next).await;
                }
            }
            if !full {
                return HistoryPage::whole(store, tickets, None).await;
            }
            if scanned >= MAX_SCANNED {
                return HistoryPage::whole(store, tickets, position.map(|p| p.text())).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{index_keys, HistoryQuery, Ticket};

    const TICKET: &str = r#"{"ticket_id":"t_1","conversation_id":"c_1","topic":"billing",
        "customer":{"id":"v_a","name":null,"email":null,"verified":false},
        "agents":[{"id":"bob","name":"Bob"},{"id":"cat","name":"Cat"}],"resolution":"resolved",
        "tags":["vip","vip"],"metadata":{},"opened_at":1,"closed_at":2,"wait_ms":null,
        "first_response_ms":null,"rating":{"score":4,"comment":null},"transcript":[]}"#;

    #[test]
    fn a_ticket_goes_in_one_index_per_fact() {
        let ticket: Ticket = serde_json::from_str(TICKET).expect("ticket");
        let mut keys = index_keys(&ticket);
        keys.sort();
        assert_eq!(
            keys,
            [
                "sb:{ti:agent:bob}:tickets",
                "sb:{ti:agent:cat}:tickets",
                "sb:{ti:rating:4}:tickets",
                "sb:{ti:tag:vip}:tickets",
                "sb:{ti:topic:billing}:tickets",
                "sb:{tickets}:closed",
                "sb:{v_a}:tickets",
            ]
        );
    }

    #[test]
    fn every_filter_must_match() {
        let query = |f: fn(&mut HistoryQuery)| {
            let mut q = HistoryQuery::default();
            f(&mut q);
            q.matches(TICKET)
        };
        assert!(query(|_| {}));
        assert!(query(|q| q.visitor = Some("v_a".into())));
        assert!(query(|q| q.agent = Some("cat".into())));
        assert!(query(|q| {
            q.tag = Some("vip".into());
            q.rating = Some(4);
            q.topic = Some("billing".into());
        }));
        assert!(!query(|q| q.visitor = Some("v_b".into())));
        assert!(!query(|q| q.agent = Some("dan".into())));
        assert!(!query(|q| q.tag = Some("refund".into())));
        assert!(!query(|q| q.rating = Some(5)));
        assert!(!query(|q| {
            q.topic = Some("billing".into());
            q.agent = Some("dan".into());
        }));
        assert!(!HistoryQuery::default().matches("not json"));
    }
}

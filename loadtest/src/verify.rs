//! Loss and duplicate detection. Every simulated client keeps, per conversation, a
//! [`SeenLog`] of the `seq`s it read (live, per connection, or through `history`) and the
//! messages the hub acknowledged to it; the customer also keeps the conversation's stored
//! history read at the end. [`Ledger::verify`] then checks the durability rule from the
//! outside:
//!
//! - every acknowledged message is in the stored history, once, at its acknowledged `seq`;
//! - every acknowledged customer message reached every agent that was a member when it
//!   was stored (agents read the history on joining, so also the ones before);
//! - every acknowledged agent message reached the customer (live, or via `history` after
//!   a reconnect);
//! - on one live connection the `seq`s of a conversation strictly increase: a repeat is a
//!   duplicate, a step back is out of order. Replays on a *new* connection after a
//!   reconnect are fine; a client deduplicates them by `seq`, as the contract says.
//!
//! It owns the bookkeeping and the verdict; it never talks to the network.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
};

use serde::Serialize;

use crate::{payload, wire::Event};

/// A message the hub acknowledged: its `seq` and the harness's message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub seq: u64,
    pub id: String,
}

/// One event of the stored history, reduced to what verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub kind: &'static str,
    /// The harness's message id (`client_msg_id`, or the id in the text for `start`).
    pub id: Option<String>,
    /// `from.role` of a message.
    pub role: Option<&'static str>,
    /// The agent of a `joined` or `left` event.
    pub agent: Option<String>,
}

impl Stored {
    pub fn from_event(event: &Event) -> Stored {
        let id = event.client_msg_id.clone().or_else(|| {
            event
                .text
                .as_deref()
                .and_then(payload::decode)
                .map(|s| s.id.to_string())
        });
        Stored {
            seq: event.seq,
            kind: intern(&event.kind),
            id: if event.kind == "message" { id } else { None },
            role: event.from.as_ref().map(|f| intern(&f.role)),
            agent: event.agent.as_ref().map(|a| a.id.clone()),
        }
    }
}

/// Kinds and roles are a handful of words: keep one static copy, not a String per event.
pub fn intern(word: &str) -> &'static str {
    const WORDS: [&str; 11] = [
        "message",
        "joined",
        "left",
        "transfer",
        "note",
        "closed",
        "rating",
        "customer",
        "agent",
        "system",
        "supervisor",
    ];
    WORDS
        .iter()
        .find(|w| **w == word)
        .copied()
        .unwrap_or("other")
}

/// A set of seqs: a bitmap (seqs of one conversation are small and dense), with a
/// fallback for absurd values so a bogus seq cannot allocate without bound.
#[derive(Debug, Clone, Default)]
struct SeqSet {
    words: Vec<u64>,
    far: BTreeSet<u64>,
    len: usize,
}

const BITMAP_LIMIT: u64 = 1 << 22;

impl SeqSet {
    fn insert(&mut self, seq: u64) -> bool {
        let new = if seq < BITMAP_LIMIT {
            let (word, bit) = ((seq / 64) as usize, seq % 64);
            if self.words.len() <= word {
                self.words.resize(word + 1, 0);
            }
            let new = self.words[word] & (1 << bit) == 0;
            self.words[word] |= 1 << bit;
            new
        } else {
            self.far.insert(seq)
        };
        self.len += usize::from(new);
        new
    }

    fn contains(&self, seq: u64) -> bool {
        if seq < BITMAP_LIMIT {
            self.words
                .get((seq / 64) as usize)
                .is_some_and(|w| w & (1 << (seq % 64)) != 0)
        } else {
            self.far.contains(&seq)
        }
    }

    fn last(&self) -> Option<u64> {
        if let Some(&far) = self.far.last() {
            return Some(far);
        }
        let (index, word) = self
            .words
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)?;
        Some(index as u64 * 64 + 63 - u64::from(word.leading_zeros()))
    }
}

/// What one client read of one conversation.
#[derive(Debug, Clone, Default)]
pub struct SeenLog {
    seen: SeqSet,
    /// Per live connection: the last `seq` read and every `seq` read on it.
    live: HashMap<u64, (u64, SeqSet)>,
    duplicates: Vec<(u64, u64)>,
    out_of_order: Vec<(u64, u64, u64)>,
}

impl SeenLog {
    /// Notes a live event read on connection `conn`. Returns whether the client had not
    /// seen this `seq` before (the event is new to it and should be applied).
    pub fn live(&mut self, conn: u64, seq: u64) -> bool {
        let (last, on_conn) = self.live.entry(conn).or_default();
        if !on_conn.insert(seq) {
            self.duplicates.push((conn, seq));
        } else if seq <= *last {
            self.out_of_order.push((conn, *last, seq));
        }
        *last = (*last).max(seq);
        self.seen.insert(seq)
    }

    /// Notes an event read in a `history` answer. Returns whether it was new to the client.
    pub fn history(&mut self, seq: u64) -> bool {
        self.seen.insert(seq)
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.seen.contains(seq)
    }

    /// The highest `seq` applied (what a reconnecting client asks `history` after).
    pub fn highest(&self) -> u64 {
        self.seen.last().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.seen.len
    }

    pub fn is_empty(&self) -> bool {
        self.seen.len == 0
    }
}

/// The customer's side of one conversation.
#[derive(Debug, Clone)]
pub struct CustomerRecord {
    pub conversation_id: String,
    pub customer: String,
    pub acked: Vec<Acked>,
    pub seen: SeenLog,
    /// The stored history read at the end, or why it could not be read.
    pub stored: Result<Vec<Stored>, String>,
}

/// One agent's side of one conversation.
#[derive(Debug, Clone)]
pub struct AgentRecord {
    pub conversation_id: String,
    pub agent: String,
    pub acked: Vec<Acked>,
    pub seen: SeenLog,
}

/// Something verification found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// An acknowledged message never reached a member it should have.
    Lost {
        conversation_id: String,
        seq: u64,
        id: String,
        to: String,
        /// The stored events around `seq` (kind, author or agent), to tell what happened.
        #[serde(skip_serializing_if = "String::is_empty")]
        around: String,
    },
    /// An acknowledged message is missing from the stored history (or stored at another seq).
    NotStored {
        conversation_id: String,
        seq: u64,
        id: String,
    },
    /// One message id stored at several seqs (idempotent resend broken).
    StoredTwice {
        conversation_id: String,
        id: String,
        seqs: Vec<u64>,
    },
    /// One message id acknowledged with different seqs.
    AckMismatch {
        conversation_id: String,
        id: String,
        seqs: Vec<u64>,
    },
    /// A seq read twice on one live connection.
    Duplicate {
        conversation_id: String,
        seq: u64,
        observer: String,
        conn: u64,
    },
    /// A seq read after a higher one on one live connection.
    OutOfOrder {
        conversation_id: String,
        seq: u64,
        after: u64,
        observer: String,
        conn: u64,
    },
    /// The conversation could not be checked (no stored history, missing client record).
    Unverifiable {
        conversation_id: String,
        reason: String,
    },
}

impl Problem {
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Lost { .. } => "lost",
            Problem::NotStored { .. } => "not_stored",
            Problem::StoredTwice { .. } => "stored_twice",
            Problem::AckMismatch { .. } => "ack_mismatch",
            Problem::Duplicate { .. } => "duplicate",
            Problem::OutOfOrder { .. } => "out_of_order",
            Problem::Unverifiable { .. } => "unverifiable",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Lost {
                conversation_id,
                seq,
                id,
                to,
                around,
            } => {
                write!(
                    f,
                    "LOST: {conversation_id} seq {seq} ({id}) acknowledged but never delivered to {to}"
                )?;
                if !around.is_empty() {
                    write!(f, "; stored around it: {around}")?;
                }
                Ok(())
            }
            Problem::NotStored {
                conversation_id,
                seq,
                id,
            } => write!(
                f,
                "NOT STORED: {conversation_id} seq {seq} ({id}) acknowledged but not in the stored history at that seq"
            ),
            Problem::StoredTwice {
                conversation_id,
                id,
                seqs,
            } => write!(f, "STORED TWICE: {conversation_id} message {id} at seqs {seqs:?}"),
            Problem::AckMismatch {
                conversation_id,
                id,
                seqs,
            } => write!(
                f,
                "ACK MISMATCH: {conversation_id} message {id} acknowledged with seqs {seqs:?}"
            ),
            Problem::Duplicate {
                conversation_id,
                seq,
                observer,
                conn,
            } => write!(
                f,
                "DUPLICATE: {conversation_id} seq {seq} delivered twice to {observer} on connection {conn}"
            ),
            Problem::OutOfOrder {
                conversation_id,
                seq,
                after,
                observer,
                conn,
            } => write!(
                f,
                "OUT OF ORDER: {conversation_id} seq {seq} delivered after seq {after} to {observer} on connection {conn}"
            ),
            Problem::Unverifiable {
                conversation_id,
                reason,
            } => write!(f, "UNVERIFIABLE: {conversation_id}: {reason}"),
        }
    }
}

/// The outcome of verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    pub conversations: usize,
    /// Distinct acknowledged messages checked.
    pub messages_checked: u64,
    /// Conversations no agent ever joined (not a loss; reported on its own).
    pub unassigned: usize,
    pub problems: Vec<Problem>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for problem in &self.problems {
            *counts.entry(problem.kind()).or_default() += 1;
        }
        counts
    }

    /// One line: "OK …" or "FAILED …" with the counts by kind.
    pub fn summary(&self) -> String {
        if self.is_clean() {
            format!(
                "OK: {} acknowledged messages in {} conversations, each delivered exactly once in seq order and stored ({} unassigned)",
                self.messages_checked, self.conversations, self.unassigned
            )
        } else {
            let counts = self
                .counts()
                .iter()
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "FAILED: {counts} (in {} conversations, {} acknowledged messages)",
                self.conversations, self.messages_checked
            )
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    customer: Option<CustomerRecord>,
    agents: Vec<AgentRecord>,
}

/// Every client's records, gathered at the end of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    conversations: BTreeMap<String, Entry>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    pub fn add_customer(&mut self, record: CustomerRecord) {
        let entry = self
            .conversations
            .entry(record.conversation_id.clone())
            .or_default();
        entry.customer = Some(record);
    }

    pub fn add_agent(&mut self, record: AgentRecord) {
        self.conversations
            .entry(record.conversation_id.clone())
            .or_default()
            .agents
            .push(record);
    }

    pub fn verify(&self) -> Verdict {
        let mut verdict = Verdict {
            conversations: self.conversations.len(),
            ..Verdict::default()
        };
        for (conversation_id, entry) in &self.conversations {
            verify_conversation(conversation_id, entry, &mut verdict);
        }
        verdict
    }
}

fn order_problems(conversation_id: &str, observer: &str, seen: &SeenLog, out: &mut Vec<Problem>) {
    for &(conn, seq) in &seen.duplicates {
        out.push(Problem::Duplicate {
            conversation_id: conversation_id.to_string(),
            seq,
            observer: observer.to_string(),
            conn,
        });
    }
    for &(conn, after, seq) in &seen.out_of_order {
        out.push(Problem::OutOfOrder {
            conversation_id: conversation_id.to_string(),
            seq,
            after,
            observer: observer.to_string(),
            conn,
        });
    }
}

/// The stored events within 3 of `seq`, e.g. `25 joined a1, 26 message customer c0.0.4`.
fn around(stored: &[Stored], seq: u64) -> String {
    stored
        .iter()
        .filter(|e| e.seq + 3 >= seq && e.seq <= seq + 3)
        .map(|e| {
            let who = e.agent.as_deref().or(e.role).unwrap_or_default();
            let id = e.id.as_deref().unwrap_or_default();
            format!("{} {} {who} {id}", e.seq, e.kind)
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn verify_conversation(conversation_id: &str, entry: &Entry, verdict: &mut Verdict) {
    let problems = &mut verdict.problems;
    let cid = || conversation_id.to_string();

    for agent in &entry.agents {
        order_problems(
            conversation_id,
            &format!("agent {}", agent.agent),
            &agent.seen,
            problems,
        );
    }
    let Some(customer) = &entry.customer else {
        problems.push(Problem::Unverifiable {
            conversation_id: cid(),
            reason: "no customer record (the customer task failed before reporting)".into(),
        });
        return;
    };
    let customer_name = format!("customer {}", customer.customer);
    order_problems(conversation_id, &customer_name, &customer.seen, problems);

    // Acknowledged messages by side, id → seqs (several when acks disagree).
    let mut customer_acks: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for ack in &customer.acked {
        customer_acks.entry(&ack.id).or_default().insert(ack.seq);
    }
    let mut agent_acks: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for agent in &entry.agents {
        for ack in &agent.acked {
            agent_acks.entry(&ack.id).or_default().insert(ack.seq);
        }
    }
    verdict.messages_checked += (customer_acks.len() + agent_acks.len()) as u64;
    for (id, seqs) in customer_acks.iter().chain(agent_acks.iter()) {
        if seqs.len() > 1 {
            problems.push(Problem::AckMismatch {
                conversation_id: cid(),
                id: id.to_string(),
                seqs: seqs.iter().copied().collect(),
            });
        }
    }

    let stored = match &customer.stored {
        Ok(stored) => stored,
        Err(reason) => {
            problems.push(Problem::Unverifiable {
                conversation_id: cid(),
                reason: format!("stored history not readable: {reason}"),
            });
            return;
        }
    };

    // 1. Stored: each acknowledged id once, at its seq.
    let mut stored_ids: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut by_seq: HashMap<u64, &Stored> = HashMap::new();
    for event in stored {
        by_seq.insert(event.seq, event);
        if let Some(id) = &event.id {
            stored_ids.entry(id).or_default().push(event.seq);
        }
    }
    for (id, seqs) in &stored_ids {
        if seqs.len() > 1 {
            problems.push(Problem::StoredTwice {
                conversation_id: cid(),
                id: id.to_string(),
                seqs: seqs.clone(),
            });
        }
    }
    for (id, seqs) in customer_acks.iter().chain(agent_acks.iter()) {
        for &seq in seqs {
            let there = by_seq.get(&seq).and_then(|e| e.id.as_deref());
            if there != Some(*id) {
                problems.push(Problem::NotStored {
                    conversation_id: cid(),
                    seq,
                    id: id.to_string(),
                });
            }
        }
    }

    // 2. Agent side: membership windows from the stored joined/left events.
    let mut window_end: BTreeMap<&str, u64> = BTreeMap::new();
    for event in stored {
        match (event.kind, event.agent.as_deref()) {
            ("joined", Some(agent)) => {
                window_end.insert(agent, u64::MAX);
            }
            ("left", Some(agent)) => {
                window_end.insert(agent, event.seq);
            }
            _ => {}
        }
    }
    if window_end.is_empty() {
        verdict.unassigned += 1;
    }
    for (agent, &end) in &window_end {
        let Some(record) = entry.agents.iter().find(|r| r.agent == *agent) else {
            problems.push(Problem::Unverifiable {
                conversation_id: cid(),
                reason: format!("agent {agent} joined but reported no record"),
            });
            continue;
        };
        for (id, seqs) in &customer_acks {
            for &seq in seqs.iter().filter(|&&s| s < end) {
                if !record.seen.contains(seq) {
                    problems.push(Problem::Lost {
                        conversation_id: cid(),
                        seq,
                        id: id.to_string(),
                        to: format!("agent {agent}"),
                        around: around(stored, seq),
                    });
                }
            }
        }
    }

    // 3. Customer side: every acknowledged agent message.
    for (id, seqs) in &agent_acks {
        for &seq in seqs {
            if !customer.seen.contains(seq) {
                problems.push(Problem::Lost {
                    conversation_id: cid(),
                    seq,
                    id: id.to_string(),
                    to: customer_name.clone(),
                    around: around(stored, seq),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONV: &str = "c_0001";

    fn stored(
        seq: u64,
        kind: &str,
        id: Option<&str>,
        role: Option<&str>,
        agent: Option<&str>,
    ) -> Stored {
        Stored {
            seq,
            kind: intern(kind),
            id: id.map(String::from),
            role: role.map(intern),
            agent: agent.map(String::from),
        }
    }

    fn ack(seq: u64, id: &str) -> Acked {
        Acked { seq, id: id.into() }
    }

    /// A clean chat: start (1), joined (2), customer msg (3), reply (4), closed (5).
    fn clean() -> (CustomerRecord, AgentRecord) {
        let mut customer_seen = SeenLog::default();
        for seq in 1..=5 {
            customer_seen.live(1, seq);
        }
        let mut agent_seen = SeenLog::default();
        agent_seen.live(2, 2);
        agent_seen.history(1);
        agent_seen.history(2);
        for seq in 3..=5 {
            agent_seen.live(2, seq);
        }
        let customer = CustomerRecord {
            conversation_id: CONV.into(),
            customer: "0".into(),
            acked: vec![ack(1, "c0.0.0"), ack(3, "c0.0.1")],
            seen: customer_seen,
            stored: Ok(vec![
                stored(1, "message", Some("c0.0.0"), Some("customer"), None),
                stored(2, "joined", None, None, Some("a1")),
                stored(3, "message", Some("c0.0.1"), Some("customer"), None),
                stored(4, "message", Some("rc0.0.1"), Some("agent"), None),
                stored(5, "closed", None, None, None),
            ]),
        };
        let agent = AgentRecord {
            conversation_id: CONV.into(),
            agent: "a1".into(),
            acked: vec![ack(4, "rc0.0.1")],
            seen: agent_seen,
        };
        (customer, agent)
    }

    fn verdict(customer: CustomerRecord, agents: Vec<AgentRecord>) -> Verdict {
        let mut ledger = Ledger::new();
        ledger.add_customer(customer);
        for agent in agents {
            ledger.add_agent(agent);
        }
        ledger.verify()
    }

    #[test]
    fn seq_sets() {
        let mut set = SeqSet::default();
        assert_eq!(set.last(), None);
        for seq in [5, 1, 64, 200] {
            assert!(set.insert(seq));
        }
        assert!(!set.insert(64));
        assert!(set.contains(1) && set.contains(200) && !set.contains(2));
        assert_eq!((set.len, set.last()), (4, Some(200)));
        assert!(
            set.insert(u64::MAX - 1),
            "absurd seqs do not allocate a bitmap"
        );
        assert_eq!(set.last(), Some(u64::MAX - 1));
        assert!(set.words.len() < 10);
    }

    #[test]
    fn a_clean_chat_passes() {
        let (customer, agent) = clean();
        let v = verdict(customer, vec![agent]);
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!(v.messages_checked, 3);
        assert_eq!(v.unassigned, 0);
        assert!(v.summary().starts_with("OK"));
    }

    #[test]
    fn a_dropped_message_is_caught() {
        // The agent never reads the customer's message (seq 3).
        let (customer, mut agent) = clean();
        let mut seen = SeenLog::default();
        for seq in [1, 2, 4, 5] {
            seen.live(2, seq);
        }
        agent.seen = seen;
        let v = verdict(customer, vec![agent]);
        assert_eq!(
            v.problems,
            vec![Problem::Lost {
                conversation_id: CONV.into(),
                seq: 3,
                id: "c0.0.1".into(),
                to: "agent a1".into(),
                around: "1 message customer c0.0.0, 2 joined a1, 3 message customer c0.0.1, \
                         4 message agent rc0.0.1, 5 closed"
                    .into(),
            }]
        );
        assert!(v.summary().starts_with("FAILED: 1 lost"), "{}", v.summary());
    }

    #[test]
    fn a_dropped_reply_is_caught() {
        let (mut customer, agent) = clean();
        let mut seen = SeenLog::default();
        for seq in [1, 2, 3, 5] {
            seen.live(1, seq);
        }
        customer.seen = seen;
        let v = verdict(customer, vec![agent]);
        assert_eq!(v.counts().get("lost"), Some(&1), "{:?}", v.problems);
        assert!(v.problems[0].to_string().contains("customer 0"));
    }

    #[test]
    fn a_duplicate_on_one_live_connection_is_caught() {
        let (customer, mut agent) = clean();
        agent.seen.live(2, 4);
        let v = verdict(customer, vec![agent]);
        assert_eq!(
            v.problems,
            vec![Problem::Duplicate {
                conversation_id: CONV.into(),
                seq: 4,
                observer: "agent a1".into(),
                conn: 2,
            }]
        );
    }

    #[test]
    fn a_replay_after_reconnect_is_not_a_duplicate() {
        // The customer drops after seq 3 and its new connection (7) replays 2..=5.
        let (mut customer, agent) = clean();
        let mut seen = SeenLog::default();
        for seq in 1..=3 {
            seen.live(1, seq);
        }
        for seq in 2..=5 {
            seen.live(7, seq);
        }
        customer.seen = seen;
        let v = verdict(customer, vec![agent]);
        assert!(v.is_clean(), "{:?}", v.problems);
    }

    #[test]
    fn out_of_order_delivery_is_caught() {
        let (mut customer, agent) = clean();
        let mut seen = SeenLog::default();
        for seq in [1, 2, 4, 3, 5] {
            seen.live(1, seq);
        }
        customer.seen = seen;
        let v = verdict(customer, vec![agent]);
        assert_eq!(v.counts().get("out_of_order"), Some(&1), "{:?}", v.problems);
    }

    #[test]
    fn missing_and_doubled_storage_is_caught() {
        let (mut customer, agent) = clean();
        customer.stored = Ok(vec![
            stored(1, "message", Some("c0.0.0"), Some("customer"), None),
            stored(2, "joined", None, None, Some("a1")),
            stored(3, "message", Some("c0.0.1"), Some("customer"), None),
            // The reply is missing at 4, and the customer message is stored again at 5.
            stored(5, "message", Some("c0.0.1"), Some("customer"), None),
        ]);
        let v = verdict(customer, vec![agent]);
        let counts = v.counts();
        assert_eq!(counts.get("not_stored"), Some(&1), "{:?}", v.problems);
        assert_eq!(counts.get("stored_twice"), Some(&1), "{:?}", v.problems);
    }

    #[test]
    fn the_old_agent_is_only_owed_messages_before_it_left() {
        // a1 transfers to a2: joined a2 at 5, left a1 at 6, customer message at 7.
        let (mut customer, mut a1) = clean();
        if let Ok(events) = &mut customer.stored {
            events.pop(); // no close yet
            events.push(stored(5, "joined", None, None, Some("a2")));
            events.push(stored(6, "left", None, None, Some("a1")));
            events.push(stored(7, "message", Some("c0.0.2"), Some("customer"), None));
        }
        customer.acked.push(ack(7, "c0.0.2"));
        customer.seen = SeenLog::default();
        for seq in 1..=7 {
            customer.seen.live(1, seq);
        }
        a1.seen = SeenLog::default();
        for seq in 1..=6 {
            a1.seen.live(2, seq);
        }
        let mut a2 = AgentRecord {
            conversation_id: CONV.into(),
            agent: "a2".into(),
            acked: vec![],
            seen: SeenLog::default(),
        };
        a2.seen.live(3, 5);
        for seq in 1..=5 {
            a2.seen.history(seq);
        }
        let v = verdict(customer.clone(), vec![a1.clone(), a2.clone()]);
        // a2 never read seq 7; a1 was gone by then, so only a2 is owed it.
        assert_eq!(
            v.problems,
            vec![Problem::Lost {
                conversation_id: CONV.into(),
                seq: 7,
                id: "c0.0.2".into(),
                to: "agent a2".into(),
                around:
                    "4 message agent rc0.0.1, 5 joined a2, 6 left a1, 7 message customer c0.0.2"
                        .into(),
            }]
        );
        a2.seen.live(3, 6);
        a2.seen.live(3, 7);
        assert!(verdict(customer, vec![a1, a2]).is_clean());
    }

    #[test]
    fn unreadable_history_and_unassigned_chats_are_reported() {
        let (mut customer, agent) = clean();
        customer.stored = Err("forbidden".into());
        let v = verdict(customer, vec![agent]);
        assert_eq!(v.counts().get("unverifiable"), Some(&1));

        let mut lonely = SeenLog::default();
        lonely.live(1, 1);
        let customer = CustomerRecord {
            conversation_id: "c_0002".into(),
            customer: "1".into(),
            acked: vec![ack(1, "c1.0.0")],
            seen: lonely,
            stored: Ok(vec![
                stored(1, "message", Some("c1.0.0"), Some("customer"), None),
                stored(2, "closed", None, None, None),
            ]),
        };
        let v = verdict(customer, vec![]);
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!(v.unassigned, 1);
    }
}

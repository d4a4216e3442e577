//! Loss and duplicate detection. Every simulated client keeps, per conversation, a
//! [`SeenLog`] of the `seq`s it read (live, per connection, or through `history`) and the
//! messages the hub acknowledged to it; the customer also keeps the conversation's stored
//! history read at the end. The [`Ledger`] then checks the durability rule from the
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
//! Verification is incremental, so that the harness's memory follows the chats that are
//! open, not every message of the run: clients hand their records in as they finish with
//! a conversation (through the shared [`Verifier`]), and a conversation is checked and
//! its records dropped as soon as everything it needs is in — the customer's record with
//! the stored history, and a record from every agent the history names that has seen the
//! event ending its membership (its `left`, or `closed`). Only the counters and the first
//! [`PROBLEMS_KEPT`] problems (in conversation-id order, as a check of everything at once
//! would list them) are kept. [`Ledger::verify`] checks what is still pending exactly as
//! if it were checked at the end, so a conversation whose records never complete is still
//! checked and its missing parts are reported.
//!
//! It owns the bookkeeping and the verdict; it never talks to the network.

use std::{
    collections::{hash_map, BTreeMap, BTreeSet},
    fmt,
    sync::{Arc, Mutex, MutexGuard},
};

use rustc_hash::FxHashMap;
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

    /// The seqs in increasing order.
    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let near = self.words.iter().enumerate().flat_map(|(index, &word)| {
            let base = index as u64 * 64;
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = u64::from(rest.trailing_zeros());
                    rest &= rest - 1;
                    base + bit
                })
            })
        });
        near.chain(self.far.iter().copied())
    }
}

/// What one client read of one conversation.
#[derive(Debug, Clone, Default)]
pub struct SeenLog {
    seen: SeqSet,
    /// Per live connection: the last `seq` read and every `seq` read on it.
    live: FxHashMap<u64, (u64, SeqSet)>,
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

    /// Notes the ack of the client's own message on connection `conn` when the hub sends
    /// no event for it (`echo: false`, issue 19): the ack comes after every event below
    /// its seq and before any above, so it takes the event's place in that connection's
    /// order, and an echoed event after it is a duplicate.
    pub fn acked(&mut self, conn: u64, seq: u64) {
        self.live(conn, seq);
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

    /// Where a reconnecting client resumes: after the last seq it holds with nothing
    /// missing before it. Resuming after [`SeenLog::highest`] would skip for good what a
    /// dropped connection's `history` answer was still to bring (live events past a gap
    /// arrive first). Events the client may not see (notes, for a customer) keep the
    /// point low; `history` then brings some events again, which are not new.
    pub fn resume_after(&self) -> u64 {
        let mut seq = 0;
        while self.seen.contains(seq + 1) {
            seq += 1;
        }
        seq
    }

    pub fn len(&self) -> usize {
        self.seen.len
    }

    pub fn is_empty(&self) -> bool {
        self.seen.len == 0
    }

    /// Takes in what the same client read of the conversation *after* this log was handed
    /// in (an agent offered the conversation again after it left), as if it had been
    /// read into this log: a seq read again on a connection is a duplicate, and one below
    /// what that connection had already read is out of order.
    pub fn absorb(&mut self, later: SeenLog) {
        for seq in later.seen.iter() {
            self.seen.insert(seq);
        }
        for (conn, (later_last, later_set)) in later.live {
            match self.live.entry(conn) {
                hash_map::Entry::Vacant(slot) => {
                    slot.insert((later_last, later_set));
                }
                hash_map::Entry::Occupied(slot) => {
                    let (last, on_conn) = slot.into_mut();
                    let earlier_last = *last;
                    for seq in later_set.iter() {
                        if !on_conn.insert(seq) {
                            self.duplicates.push((conn, seq));
                        } else if seq <= earlier_last {
                            self.out_of_order.push((conn, earlier_last, seq));
                        }
                    }
                    *last = earlier_last.max(later_last);
                }
            }
        }
        self.duplicates.extend(later.duplicates);
        self.out_of_order.extend(later.out_of_order);
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

impl AgentRecord {
    /// Takes in a later record of the same agent and conversation (see [`SeenLog::absorb`]).
    fn absorb(&mut self, later: AgentRecord) {
        self.acked.extend(later.acked);
        self.seen.absorb(later.seen);
    }
}

/// How many problems a verdict lists (the report shows at most this many); the counts by
/// kind cover all of them.
pub const PROBLEMS_KEPT: usize = 200;

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
    /// Conversations checked as soon as their records were all in; the others were checked
    /// at the end with whatever records they had.
    pub verified_early: usize,
    /// The first problems in conversation-id order, at most [`PROBLEMS_KEPT`].
    pub problems: Vec<Problem>,
    /// Every problem found, by kind (`problems` keeps only the first ones).
    counts: BTreeMap<&'static str, usize>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.counts.is_empty()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.counts.clone()
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
    /// One per agent: a later record of the same agent is absorbed into the first.
    agents: Vec<AgentRecord>,
}

impl Entry {
    /// Whether every record the conversation needs is in: the customer's, with a readable
    /// stored history (which is complete: the customer reads it after the close), and for
    /// every agent the history names, a record that has seen the event ending the agent's
    /// last membership. An agent hears nothing of the conversation after that event, and
    /// hands its record in only once no request of its own about it is still unanswered,
    /// so no later record can change the outcome.
    fn is_complete(&self) -> bool {
        let Some(Ok(stored)) = self.customer.as_ref().map(|c| &c.stored) else {
            return false;
        };
        let closed = stored.iter().find(|e| e.kind == "closed").map(|e| e.seq);
        membership_ends(stored).into_iter().all(|(agent, end)| {
            end.or(closed).is_some_and(|end| {
                self.agents
                    .iter()
                    .find(|r| r.agent == agent)
                    .is_some_and(|r| r.seen.contains(end))
            })
        })
    }
}

/// What checking one conversation found.
#[derive(Debug, Default)]
struct Checked {
    messages: u64,
    unassigned: bool,
    problems: Vec<Problem>,
}

/// Running totals of the conversations checked so far.
#[derive(Debug, Clone, Default)]
struct Tally {
    conversations: usize,
    messages_checked: u64,
    unassigned: usize,
    verified_early: usize,
    counts: BTreeMap<&'static str, usize>,
    /// The first problems by (conversation id, order found): the order of a check of
    /// every conversation at once, whatever order the conversations completed in.
    first: BTreeMap<(String, u64), Problem>,
    found: u64,
}

impl Tally {
    fn add(&mut self, conversation_id: &str, checked: Checked, early: bool) {
        self.conversations += 1;
        self.verified_early += usize::from(early);
        self.messages_checked += checked.messages;
        self.unassigned += usize::from(checked.unassigned);
        for problem in checked.problems {
            *self.counts.entry(problem.kind()).or_default() += 1;
            self.found += 1;
            let key = (conversation_id.to_string(), self.found);
            let full = self.first.len() >= PROBLEMS_KEPT;
            if full
                && self
                    .first
                    .last_key_value()
                    .is_some_and(|(last, _)| key > *last)
            {
                continue;
            }
            self.first.insert(key, problem);
            if full {
                self.first.pop_last();
            }
        }
    }

    fn verdict(self) -> Verdict {
        Verdict {
            conversations: self.conversations,
            messages_checked: self.messages_checked,
            unassigned: self.unassigned,
            verified_early: self.verified_early,
            problems: self.first.into_values().collect(),
            counts: self.counts,
        }
    }
}

/// The records of the conversations not checked yet, and the totals of those checked.
#[derive(Debug, Default)]
pub struct Ledger {
    pending: FxHashMap<String, Entry>,
    tally: Tally,
}

impl Ledger {
    /// Conversations with records but not checked yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The verdict over everything filed: the conversations checked so far, and the
    /// pending ones checked now with whatever records they have.
    pub fn verify(&self) -> Verdict {
        let mut tally = self.tally.clone();
        let mut pending: Vec<(&String, &Entry)> = self.pending.iter().collect();
        pending.sort_unstable_by_key(|(id, _)| *id);
        for (id, entry) in pending {
            tally.add(id, verify_conversation(id, entry), false);
        }
        tally.verdict()
    }

    /// Files a record; returns the conversation's entry, taken out, once it is complete.
    fn file_customer(&mut self, record: CustomerRecord) -> Option<(String, Entry)> {
        let id = record.conversation_id.clone();
        self.pending.entry(id.clone()).or_default().customer = Some(record);
        self.take_if_complete(id)
    }

    fn file_agent(&mut self, record: AgentRecord) -> Option<(String, Entry)> {
        let id = record.conversation_id.clone();
        let entry = self.pending.entry(id.clone()).or_default();
        match entry.agents.iter_mut().find(|r| r.agent == record.agent) {
            Some(earlier) => earlier.absorb(record),
            None => entry.agents.push(record),
        }
        self.take_if_complete(id)
    }

    fn take_if_complete(&mut self, id: String) -> Option<(String, Entry)> {
        if !self.pending.get(&id)?.is_complete() {
            return None;
        }
        let entry = self.pending.remove(&id)?;
        Some((id, entry))
    }
}

/// The run's [`Ledger`], shared by every simulated client. Filing a record is a short
/// critical section; checking a completed conversation and freeing its records happen
/// outside the lock, and the lock is never held across an `.await`.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    ledger: Arc<Mutex<Ledger>>,
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier::default()
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // A panic elsewhere while filing leaves whole records behind: keep using them.
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A customer's record, handed in when its chat is over.
    pub fn customer(&self, record: CustomerRecord) {
        let done = self.lock().file_customer(record);
        self.settle(done);
    }

    /// An agent's record, handed in when it is done with the conversation (or stops).
    pub fn agent(&self, record: AgentRecord) {
        let done = self.lock().file_agent(record);
        self.settle(done);
    }

    fn settle(&self, done: Option<(String, Entry)>) {
        if let Some((id, entry)) = done {
            let checked = verify_conversation(&id, &entry);
            drop(entry);
            self.lock().tally.add(&id, checked, true);
        }
    }

    /// Conversations with records but not checked yet.
    pub fn pending(&self) -> usize {
        self.lock().pending()
    }

    /// See [`Ledger::verify`]; call it once every client has handed its records in.
    pub fn verdict(&self) -> Verdict {
        self.lock().verify()
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

/// Every agent the stored history names → the seq of the `left` that ended its last
/// membership (`None` while it lasts).
fn membership_ends(stored: &[Stored]) -> BTreeMap<&str, Option<u64>> {
    let mut ends = BTreeMap::new();
    for event in stored {
        match (event.kind, event.agent.as_deref()) {
            ("joined", Some(agent)) => {
                ends.insert(agent, None);
            }
            ("left", Some(agent)) => {
                ends.insert(agent, Some(event.seq));
            }
            _ => {}
        }
    }
    ends
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

fn verify_conversation(conversation_id: &str, entry: &Entry) -> Checked {
    let mut checked = Checked::default();
    let problems = &mut checked.problems;
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
            reason: format!(
                "no customer record (the customer task failed before reporting); agents {}",
                entry
                    .agents
                    .iter()
                    .map(|a| format!(
                        "{} (saw {} events up to seq {}, {} acked)",
                        a.agent,
                        a.seen.len(),
                        a.seen.highest(),
                        a.acked.len()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        return checked;
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
    checked.messages += (customer_acks.len() + agent_acks.len()) as u64;
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
            return checked;
        }
    };

    // 1. Stored: each acknowledged id once, at its seq.
    let mut stored_ids: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut by_seq: FxHashMap<u64, &Stored> = FxHashMap::default();
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
    let window_end = membership_ends(stored);
    checked.unassigned = window_end.is_empty();
    for (agent, end) in window_end {
        let end = end.unwrap_or(u64::MAX);
        // With no record it never heard of the conversation: its `joined` was stored as
        // its node died, and the chat closed before it was back (a closed chat is in no
        // `welcome`). Only what the customer said while it was a member is owed to it
        // then; the history before its join it never had reason to read.
        let (owed_after, to, seen) = match entry.agents.iter().find(|r| r.agent == agent) {
            Some(record) => (0, format!("agent {agent}"), Some(&record.seen)),
            None => {
                let joined_at = stored
                    .iter()
                    .rev()
                    .find(|e| e.kind == "joined" && e.agent.as_deref() == Some(agent))
                    .map_or(0, |e| e.seq);
                (joined_at, format!("agent {agent} (no record)"), None)
            }
        };
        for (id, seqs) in &customer_acks {
            for &seq in seqs.iter().filter(|&&s| s > owed_after && s < end) {
                if seen.is_some_and(|seen| seen.contains(seq)) {
                    continue;
                }
                problems.push(Problem::Lost {
                    conversation_id: cid(),
                    seq,
                    id: id.to_string(),
                    to: to.clone(),
                    around: around(stored, seq),
                });
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
    checked
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

    /// A log of `seqs` read live, in that order, on connection `conn`.
    fn read_live(conn: u64, seqs: impl IntoIterator<Item = u64>) -> SeenLog {
        let mut seen = SeenLog::default();
        for seq in seqs {
            seen.live(conn, seq);
        }
        seen
    }

    fn ack(seq: u64, id: &str) -> Acked {
        Acked { seq, id: id.into() }
    }

    /// A clean chat: start (1), joined (2), customer msg (3), reply (4), closed (5).
    fn clean() -> (CustomerRecord, AgentRecord) {
        clean_in(CONV)
    }

    fn clean_in(conversation_id: &str) -> (CustomerRecord, AgentRecord) {
        let customer_seen = read_live(1, 1..=5);
        let mut agent_seen = SeenLog::default();
        agent_seen.live(2, 2);
        agent_seen.history(1);
        agent_seen.history(2);
        for seq in 3..=5 {
            agent_seen.live(2, seq);
        }
        let customer = CustomerRecord {
            conversation_id: conversation_id.into(),
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
            conversation_id: conversation_id.into(),
            agent: "a1".into(),
            acked: vec![ack(4, "rc0.0.1")],
            seen: agent_seen,
        };
        (customer, agent)
    }

    fn verdict(customer: CustomerRecord, agents: Vec<AgentRecord>) -> Verdict {
        let verifier = Verifier::new();
        verifier.customer(customer);
        for agent in agents {
            verifier.agent(agent);
        }
        verifier.verdict()
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
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![1, 5, 64, 200, u64::MAX - 1]
        );
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
        agent.seen = read_live(2, [1, 2, 4, 5]);
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

    /// Without echo (issue 19) the customer's own message (3) reaches it as its ack, on
    /// the same connection and in the same place: clean. Echoed anyway, it is a duplicate;
    /// acked after a later event, it is out of order.
    #[test]
    fn an_ack_in_place_of_the_own_event_keeps_the_order_checks() {
        let echo_free = |customer_reads: &[(bool, u64)]| {
            let (mut customer, agent) = clean();
            customer.seen = SeenLog::default();
            for &(is_ack, seq) in customer_reads {
                if is_ack {
                    customer.seen.acked(1, seq);
                } else {
                    customer.seen.live(1, seq);
                }
            }
            verdict(customer, vec![agent])
        };
        let v = echo_free(&[(false, 1), (false, 2), (true, 3), (false, 4), (false, 5)]);
        assert!(v.is_clean(), "{:?}", v.problems);
        let v = echo_free(&[(false, 1), (false, 2), (true, 3), (false, 3), (false, 4)]);
        assert_eq!(v.counts().get("duplicate"), Some(&1), "{:?}", v.problems);
        let v = echo_free(&[(false, 1), (false, 2), (false, 4), (true, 3), (false, 5)]);
        assert_eq!(v.counts().get("out_of_order"), Some(&1), "{:?}", v.problems);
    }

    #[test]
    fn a_dropped_reply_is_caught() {
        let (mut customer, agent) = clean();
        customer.seen = read_live(1, [1, 2, 3, 5]);
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
        customer.seen = read_live(1, 1..=3);
        for seq in 2..=5 {
            customer.seen.live(7, seq);
        }
        let v = verdict(customer, vec![agent]);
        assert!(v.is_clean(), "{:?}", v.problems);
    }

    #[test]
    fn out_of_order_delivery_is_caught() {
        let (mut customer, agent) = clean();
        customer.seen = read_live(1, [1, 2, 4, 3, 5]);
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
        customer.seen = read_live(1, 1..=7);
        a1.seen = read_live(2, 1..=6);
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

        let lonely = read_live(1, [1]);
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

    fn agent_record(agent: &str, acked: Vec<Acked>, seen: SeenLog) -> AgentRecord {
        AgentRecord {
            conversation_id: CONV.into(),
            agent: agent.into(),
            acked,
            seen,
        }
    }

    /// a1 answers, transfers to a2 (joined 5, left a1 6), a2 answers the next message,
    /// the customer closes (9).
    fn transferred() -> (CustomerRecord, AgentRecord, AgentRecord) {
        let (mut customer, mut a1) = clean();
        customer.stored = Ok(vec![
            stored(1, "message", Some("c0.0.0"), Some("customer"), None),
            stored(2, "joined", None, None, Some("a1")),
            stored(3, "message", Some("c0.0.1"), Some("customer"), None),
            stored(4, "message", Some("rc0.0.1"), Some("agent"), None),
            stored(5, "joined", None, None, Some("a2")),
            stored(6, "left", None, None, Some("a1")),
            stored(7, "message", Some("c0.0.2"), Some("customer"), None),
            stored(8, "message", Some("rc0.0.2"), Some("agent"), None),
            stored(9, "closed", None, None, None),
        ]);
        customer.acked.push(ack(7, "c0.0.2"));
        customer.seen = read_live(1, 1..=9);
        a1.seen = read_live(2, 1..=6);
        let mut seen = SeenLog::default();
        seen.live(3, 5);
        for seq in 1..=5 {
            seen.history(seq);
        }
        for seq in 6..=9 {
            seen.live(3, seq);
        }
        let a2 = agent_record("a2", vec![ack(8, "rc0.0.2")], seen);
        (customer, a1, a2)
    }

    #[test]
    fn a_conversation_is_checked_and_freed_once_its_records_are_in() {
        let (customer, agent) = clean();
        let verifier = Verifier::new();
        verifier.customer(customer);
        assert_eq!(verifier.pending(), 1, "waits for the agent");
        verifier.agent(agent);
        assert_eq!(verifier.pending(), 0, "checked, and the records dropped");
        let v = verifier.verdict();
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!(
            (v.conversations, v.verified_early, v.messages_checked),
            (1, 1, 3)
        );
    }

    #[test]
    fn the_agent_record_may_come_first() {
        let (customer, agent) = clean();
        let verifier = Verifier::new();
        verifier.agent(agent);
        assert_eq!(verifier.pending(), 1, "waits for the customer");
        verifier.customer(customer);
        assert_eq!(verifier.pending(), 0);
        let v = verifier.verdict();
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!((v.conversations, v.verified_early), (1, 1));
    }

    #[test]
    fn a_loss_and_a_duplicate_are_caught_when_checked_early() {
        let (customer, mut agent) = clean();
        agent.seen = read_live(2, [1, 2, 4, 5, 5]);
        let verifier = Verifier::new();
        verifier.customer(customer);
        verifier.agent(agent);
        assert_eq!(verifier.pending(), 0, "checked early");
        let v = verifier.verdict();
        assert_eq!(v.verified_early, 1);
        assert_eq!(
            v.problems,
            vec![
                Problem::Duplicate {
                    conversation_id: CONV.into(),
                    seq: 5,
                    observer: "agent a1".into(),
                    conn: 2,
                },
                Problem::Lost {
                    conversation_id: CONV.into(),
                    seq: 3,
                    id: "c0.0.1".into(),
                    to: "agent a1".into(),
                    around: "1 message customer c0.0.0, 2 joined a1, 3 message customer c0.0.1, \
                             4 message agent rc0.0.1, 5 closed"
                        .into(),
                },
            ]
        );
        assert!(
            v.summary().starts_with("FAILED: 1 duplicate, 1 lost"),
            "{}",
            v.summary()
        );
    }

    #[test]
    fn a_transfer_waits_for_both_agents_in_any_order() {
        let (customer, a1, a2) = transferred();
        // Customer, old agent, new agent.
        let verifier = Verifier::new();
        verifier.customer(customer.clone());
        verifier.agent(a1.clone());
        assert_eq!(verifier.pending(), 1, "a2 is still missing");
        verifier.agent(a2.clone());
        assert_eq!(verifier.pending(), 0);
        let v = verifier.verdict();
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!((v.verified_early, v.messages_checked), (1, 5));
        // New agent, customer, old agent.
        let verifier = Verifier::new();
        verifier.agent(a2.clone());
        verifier.customer(customer.clone());
        assert_eq!(verifier.pending(), 1, "a1 is still missing");
        verifier.agent(a1.clone());
        assert_eq!(verifier.pending(), 0);
        assert!(verifier.verdict().is_clean());
        // A message the new agent never read is still caught.
        let mut a2_lossy = a2.clone();
        a2_lossy.seen = SeenLog::default();
        for seq in 1..=5 {
            a2_lossy.seen.history(seq);
        }
        for seq in [5, 6, 8, 9] {
            a2_lossy.seen.live(3, seq);
        }
        let verifier = Verifier::new();
        verifier.customer(customer.clone());
        verifier.agent(a2_lossy);
        verifier.agent(a1.clone());
        assert_eq!(verifier.pending(), 0);
        let v = verifier.verdict();
        assert_eq!(v.counts().get("lost"), Some(&1), "{:?}", v.problems);
        assert!(
            v.problems[0].to_string().contains("seq 7"),
            "{}",
            v.problems[0]
        );
        // Without a2's record the conversation waits for the end, and says what a2
        // missed while it was a member.
        let verifier = Verifier::new();
        verifier.customer(customer.clone());
        verifier.agent(a1.clone());
        let v = verifier.verdict();
        assert_eq!((v.conversations, v.verified_early), (1, 0));
        assert_eq!(
            v.problems,
            vec![Problem::Lost {
                conversation_id: CONV.into(),
                seq: 7,
                id: "c0.0.2".into(),
                to: "agent a2 (no record)".into(),
                around: "4 message agent rc0.0.1, 5 joined a2, 6 left a1, 7 message customer \
                         c0.0.2, 8 message agent rc0.0.2, 9 closed"
                    .into(),
            }]
        );
        // Joined as the chat closed (its node dying), with nothing said since: nothing
        // was owed to it.
        let mut closing = customer;
        if let Ok(stored) = closing.stored.as_mut() {
            stored.truncate(6);
            stored.push(super::tests::stored(7, "closed", None, None, None));
        }
        closing.acked.retain(|a| a.seq < 7);
        closing.seen = read_live(1, 1..=7);
        let mut a1_closing = a1;
        a1_closing.seen = read_live(2, 1..=7);
        let verifier = Verifier::new();
        verifier.customer(closing);
        verifier.agent(a1_closing);
        let v = verifier.verdict();
        assert!(v.is_clean(), "{:?}", v.problems);
    }

    #[test]
    fn a_record_that_did_not_see_the_end_waits_for_the_end_of_the_run() {
        // The agent stopped before it heard the close: its record may not be its last word.
        let (customer, mut agent) = clean();
        agent.seen = read_live(2, 1..=4);
        let verifier = Verifier::new();
        verifier.customer(customer);
        verifier.agent(agent);
        assert_eq!(verifier.pending(), 1);
        let v = verifier.verdict();
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!(
            (v.conversations, v.verified_early, v.messages_checked),
            (1, 0, 3)
        );
    }

    #[test]
    fn incomplete_records_are_checked_at_the_end_as_before() {
        let (mut customer, agent) = clean();
        customer.stored = Err("forbidden".into());
        let verifier = Verifier::new();
        verifier.customer(customer);
        verifier.agent(agent);
        assert_eq!(verifier.pending(), 1, "no history: the members are unknown");
        let v = verifier.verdict();
        assert_eq!(
            v.problems,
            vec![Problem::Unverifiable {
                conversation_id: CONV.into(),
                reason: "stored history not readable: forbidden".into(),
            }]
        );

        let (_, agent) = clean();
        let verifier = Verifier::new();
        verifier.agent(agent);
        let v = verifier.verdict();
        assert_eq!(v.counts().get("unverifiable"), Some(&1), "{:?}", v.problems);
        assert!(v.problems[0].to_string().contains("no customer record"));
    }

    #[test]
    fn an_agent_offered_the_conversation_again_is_one_record() {
        // a1 joins (2), hands over to a2 (joined 3, left a1 4), the customer writes (5),
        // a1 gets it back (joined 6, left a2 7), the customer closes (8). a1 hands in one
        // record per membership.
        let (mut customer, _) = clean();
        customer.stored = Ok(vec![
            stored(1, "message", Some("c0.0.0"), Some("customer"), None),
            stored(2, "joined", None, None, Some("a1")),
            stored(3, "joined", None, None, Some("a2")),
            stored(4, "left", None, None, Some("a1")),
            stored(5, "message", Some("c0.0.1"), Some("customer"), None),
            stored(6, "joined", None, None, Some("a1")),
            stored(7, "left", None, None, Some("a2")),
            stored(8, "closed", None, None, None),
        ]);
        customer.acked = vec![ack(1, "c0.0.0"), ack(5, "c0.0.1")];
        customer.seen = read_live(1, 1..=8);
        let mut first = SeenLog::default();
        first.history(1);
        for seq in 2..=4 {
            first.live(2, seq);
        }
        let mut a2 = SeenLog::default();
        a2.history(1);
        for seq in 3..=7 {
            a2.live(3, seq);
        }
        let mut second = SeenLog::default();
        for seq in 1..=6 {
            second.history(seq);
        }
        for seq in 6..=8 {
            second.live(2, seq);
        }
        let verifier = Verifier::new();
        verifier.customer(customer.clone());
        verifier.agent(agent_record("a1", vec![], first.clone()));
        verifier.agent(agent_record("a2", vec![], a2.clone()));
        assert_eq!(
            verifier.pending(),
            1,
            "a1 is a member again until the close"
        );
        verifier.agent(agent_record("a1", vec![], second.clone()));
        assert_eq!(verifier.pending(), 0);
        let v = verifier.verdict();
        assert!(v.is_clean(), "{:?}", v.problems);

        // A seq the first membership read live, read again on the same connection later,
        // is a duplicate.
        second.live(2, 4);
        let verifier = Verifier::new();
        verifier.customer(customer);
        verifier.agent(agent_record("a1", vec![], first));
        verifier.agent(agent_record("a2", vec![], a2));
        verifier.agent(agent_record("a1", vec![], second));
        let v = verifier.verdict();
        assert_eq!(
            v.counts(),
            BTreeMap::from([("duplicate", 1), ("out_of_order", 1)]),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn problems_past_the_cap_are_counted_and_the_first_ones_kept_in_order() {
        let total = PROBLEMS_KEPT + 50;
        let verifier = Verifier::new();
        // Conversations complete in the reverse of their id order.
        for i in (0..total).rev() {
            let (customer, mut agent) = clean_in(&format!("c_{i:04}"));
            agent.seen = read_live(2, [1, 2, 4, 5]);
            verifier.agent(agent);
            verifier.customer(customer);
        }
        assert_eq!(verifier.pending(), 0);
        let v = verifier.verdict();
        assert_eq!(v.counts().get("lost"), Some(&total));
        assert_eq!(v.conversations, total);
        let ids: Vec<String> = v
            .problems
            .iter()
            .map(|p| match p {
                Problem::Lost {
                    conversation_id, ..
                } => conversation_id.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..PROBLEMS_KEPT).map(|i| format!("c_{i:04}")).collect();
        assert_eq!(ids, expected);
        assert!(v.summary().starts_with(&format!("FAILED: {total} lost")));
    }

    #[test]
    fn the_shared_verifier_takes_records_from_many_threads() {
        let verifier = Verifier::new();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let verifier = verifier.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let (customer, agent) = clean_in(&format!("c_{t}_{i}"));
                        if i % 2 == 0 {
                            verifier.customer(customer);
                            verifier.agent(agent);
                        } else {
                            verifier.agent(agent);
                            verifier.customer(customer);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a filing thread");
        }
        assert_eq!(verifier.pending(), 0);
        let v = verifier.verdict();
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!(
            (v.conversations, v.verified_early, v.messages_checked),
            (200, 200, 600)
        );
    }
}

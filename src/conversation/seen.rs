//! The `client_msg_id`s a conversation has stored, so a repeated one is answered with
//! the first one's seq without Redis writing anything per message for it.
//!
//! Kept by the conversation task and complete through `through`: built from the stream
//! once, when the first append carrying an id comes, then extended by every event the
//! task delivers, in order. The append script refuses a batch when the stream holds
//! events the task has not seen (`store::Appended::Behind`), so whenever a batch is
//! stored, every id stored before it was known here: a retry that reaches another node
//! is caught as surely as one that reaches this one.
//!
//! Only a 64-bit hash of each id is kept (16 bytes per message, whatever the id's
//! length); a hit is confirmed by reading that event back, so a collision can cost a
//! read but never drop a message.

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hasher},
};

use crate::protocol::Event;

#[derive(Debug, Default)]
pub(super) struct SeenIds {
    /// Every event up to this seq is in `by_hash`.
    through: u64,
    /// Keys are hashes already: the map uses them as they are instead of hashing again.
    by_hash: HashMap<u64, u64, BuildHasherDefault<AlreadyHashed>>,
    /// foldhash, seeded at random for this index: several times cheaper than SipHash
    /// for ids this short (one is hashed for every message), and no client can craft
    /// ids that collide without knowing the seed. A collision would only cost the read
    /// that confirms a hit.
    hasher: foldhash::fast::RandomState,
}

impl SeenIds {
    /// `seen`, declared complete through `until` (built by reading the stream up to it).
    pub(super) fn covering(mut seen: SeenIds, until: u64) -> Self {
        seen.through = seen.through.max(until);
        seen
    }

    pub(super) fn through(&self) -> u64 {
        self.through
    }

    /// Takes in the next event. Answers false when `event` is not the next one (an event
    /// skipped after a failed read): the index no longer covers the stream and must be
    /// built again.
    pub(super) fn record(&mut self, event: &Event) -> bool {
        if event.seq <= self.through {
            return true;
        }
        if event.seq != self.through + 1 {
            return false;
        }
        self.through = event.seq;
        self.insert(event);
        true
    }

    /// Takes in an event read from the stream while building (gaps are real there: a
    /// failover can lose appends).
    pub(super) fn record_read(&mut self, event: &Event) {
        self.through = self.through.max(event.seq);
        self.insert(event);
    }

    fn insert(&mut self, event: &Event) {
        if let Some(id) = event.body.client_msg_id() {
            // The first one wins, as it did in Redis.
            self.by_hash
                .entry(self.hasher.hash_one(id))
                .or_insert(event.seq);
        }
    }

    /// The seq of an earlier event that may carry `id` (to be confirmed by reading it).
    pub(super) fn candidate(&self, id: &str) -> Option<u64> {
        self.by_hash.get(&self.hasher.hash_one(id)).copied()
    }
}

/// The hasher of a map keyed by hashes: the key is its own hash.
#[derive(Debug, Default)]
pub(super) struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in all the same.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EventBody, Party, Role};

    fn message(seq: u64, id: Option<&str>) -> Event {
        Event {
            conversation_id: "c_1".into(),
            seq,
            ts: 1,
            body: EventBody::Message {
                from: Party {
                    role: Role::Customer,
                    id: "v_1".into(),
                    name: None,
                },
                text: format!("m{seq}"),
                client_msg_id: id.map(str::to_owned),
                attachment: None,
            },
        }
    }

    #[test]
    fn ids_are_known_in_order_and_the_first_wins() {
        let mut seen = SeenIds::covering(SeenIds::default(), 1);
        assert!(seen.record(&message(2, Some("a"))));
        assert!(seen.record(&message(3, None)));
        assert!(seen.record(&message(4, Some("a"))));
        assert!(seen.record(&message(3, Some("b"))), "already covered");
        assert_eq!(seen.candidate("a"), Some(2));
        assert_eq!(seen.candidate("b"), None);
        assert_eq!(seen.through(), 4);
        assert!(!seen.record(&message(6, Some("c"))), "a skipped event");
    }
}

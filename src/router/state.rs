//! The router's internal records: agents, conversations (queued or assigned, with any
//! pending transfer), open offers and timers. Data and tiny accessors only; the
//! transitions between states live in the sibling modules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::rank::{Lane, QueueKey};
use super::types::{AgentId, AgentProfile, AgentStatus, ConversationId, OfferId};

#[derive(Debug)]
pub(super) struct Agent {
    pub(super) profile: AgentProfile,
    /// The id as the group indexes hold it.
    pub(super) rank_id: Arc<str>,
    pub(super) status: AgentStatus,
    /// Why it is Away, if it said (or [`super::types::MISSED_OFFERS`]); None otherwise.
    pub(super) away_reason: Option<String>,
    /// While in WrapUp: when it ends (a `Timer::WrapUpEnd` is scheduled then).
    pub(super) wrap_up_until: Option<u64>,
    /// The status to take back when a connection returns after all had dropped: what it
    /// was before it went Offline (Away for an agent never seen online).
    pub(super) resume_status: AgentStatus,
    pub(super) active: BTreeSet<ConversationId>,
    pub(super) offers: BTreeSet<OfferId>,
    /// Offers let expire in a row.
    pub(super) missed: u32,
    /// Time of the last assignment (0 if never): the "longest idle" tie-break.
    pub(super) idle_since_ms: u64,
    /// Groups the agent qualifies for, with its total level in each group's skills.
    pub(super) groups: Vec<(usize, u32)>,
    /// Set while Offline with conversations: when they are taken away.
    pub(super) grace_until: Option<u64>,
    /// What the group indexes hold for this agent (Some iff Available); kept so the exact
    /// entries can be removed even after the fields they were built from changed.
    pub(super) indexed: Option<Indexed>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Indexed {
    pub(super) load: u32,
    pub(super) capacity: u32,
    pub(super) idle_since_ms: u64,
    /// In the groups' agent sets (below capacity), not just in their aggregates.
    pub(super) free: bool,
}

impl Agent {
    pub(super) fn new(profile: AgentProfile, groups: Vec<(usize, u32)>) -> Self {
        Agent {
            rank_id: Arc::from(profile.id.as_str()),
            profile,
            status: AgentStatus::Offline,
            away_reason: None,
            wrap_up_until: None,
            resume_status: AgentStatus::Away,
            active: BTreeSet::new(),
            offers: BTreeSet::new(),
            missed: 0,
            idle_since_ms: 0,
            groups,
            grace_until: None,
            indexed: None,
        }
    }

    /// Assigned conversations plus held offers.
    pub(super) fn load(&self) -> u32 {
        u32::try_from(self.active.len() + self.offers.len()).unwrap_or(u32::MAX)
    }

    /// Available with a free slot: may receive a new offer or assignment.
    pub(super) fn has_room(&self) -> bool {
        self.status == AgentStatus::Available && self.load() < self.profile.capacity
    }

    pub(super) fn qualifies(&self, group: usize) -> bool {
        self.groups.iter().any(|&(g, _)| g == group)
    }
}

/// A conversation looking for an agent: queued, or being escalated to a topic.
#[derive(Debug, Clone)]
pub(super) struct Seek {
    pub(super) topic: usize,
    pub(super) key: QueueKey,
    pub(super) level: usize,
    /// The group of the current level.
    pub(super) group: usize,
    /// Widening is measured from here.
    pub(super) widen_from_ms: u64,
    pub(super) widen_at: Option<u64>,
    /// Agents that declined it or let it expire (and the owner, for escalations).
    pub(super) excluded: BTreeMap<AgentId, Exclusion>,
    pub(super) offer: Option<OfferId>,
    /// Kept out of matching until then (after a failed assignment).
    pub(super) hold_until: Option<u64>,
    /// When the earliest decline or expiry exclusion ends (a `Timer::Readmit` then).
    pub(super) readmit_at: Option<u64>,
}

/// Why an agent is not offered a conversation (again), and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exclusion {
    /// Until the exclusion cooldown has passed since `at`.
    Declined {
        at: u64,
    },
    Expired {
        at: u64,
    },
    /// The owner of an escalating conversation: for the whole escalation.
    Owner,
}

impl Exclusion {
    /// When it ends, for a cooldown of `cooldown_ms` (None: never).
    pub(super) fn ends_at(self, cooldown_ms: u64) -> Option<u64> {
        match self {
            Exclusion::Declined { at } | Exclusion::Expired { at } => {
                Some(at.saturating_add(cooldown_ms))
            }
            Exclusion::Owner => None,
        }
    }
}

impl Seek {
    pub(super) fn priority(&self) -> i32 {
        self.key.priority.0
    }

    /// In its group's waiting set: no open offer and not held back.
    pub(super) fn listed(&self) -> bool {
        self.offer.is_none() && self.hold_until.is_none()
    }
}

#[derive(Debug)]
pub(super) enum Transfer {
    ToAgent {
        requested_by: AgentId,
        /// The offer to the target agent (which it names).
        offer: OfferId,
    },
    ToTopic {
        requested_by: AgentId,
        note: Option<String>,
        seek: Seek,
        deadline_ms: u64,
    },
}

impl Transfer {
    pub(super) fn requested_by(&self) -> &str {
        match self {
            Transfer::ToAgent { requested_by, .. } | Transfer::ToTopic { requested_by, .. } => {
                requested_by
            }
        }
    }
}

/// How to reverse the latest assignment if the hub cannot store it.
#[derive(Debug, Clone)]
pub(super) struct Undo {
    /// Owner before a transfer; None when the conversation came from the queue.
    pub(super) previous_owner: Option<AgentId>,
    pub(super) requested_by: Option<AgentId>,
    pub(super) topic: usize,
    pub(super) priority: i32,
    pub(super) lane: Lane,
}

#[derive(Debug)]
pub(super) struct Assigned {
    pub(super) owner: AgentId,
    /// When the owner got it; None for assignments restored after a restart.
    pub(super) since_ms: Option<u64>,
    pub(super) transfer: Option<Transfer>,
    pub(super) undo: Option<Undo>,
}

#[derive(Debug)]
pub(super) enum Phase {
    Queued(Seek),
    Assigned(Assigned),
}

#[derive(Debug)]
pub(super) struct Conv {
    /// Enqueue order: the last tie-break of the serving order.
    pub(super) seq: u64,
    pub(super) topic: usize,
    pub(super) priority: i32,
    pub(super) waiting_since_ms: u64,
    pub(super) phase: Phase,
    /// Abandon deadline while the customer is away.
    pub(super) absent_until: Option<u64>,
    /// When the last queue position was sent (the throttle spans queue phases).
    pub(super) pos_sent_at: Option<u64>,
    /// When the customer, if still queued, is offered to leave a message instead.
    pub(super) leave_message_at: Option<u64>,
}

impl Conv {
    /// The active search, if any: the queue, or an escalation in progress.
    pub(super) fn seek(&self) -> Option<&Seek> {
        match &self.phase {
            Phase::Queued(seek) => Some(seek),
            Phase::Assigned(Assigned {
                transfer: Some(Transfer::ToTopic { seek, .. }),
                ..
            }) => Some(seek),
            Phase::Assigned(_) => None,
        }
    }

    pub(super) fn seek_mut(&mut self) -> Option<&mut Seek> {
        match &mut self.phase {
            Phase::Queued(seek) => Some(seek),
            Phase::Assigned(Assigned {
                transfer: Some(Transfer::ToTopic { seek, .. }),
                ..
            }) => Some(seek),
            Phase::Assigned(_) => None,
        }
    }

    pub(super) fn assigned(&self) -> Option<&Assigned> {
        match &self.phase {
            Phase::Assigned(a) => Some(a),
            Phase::Queued(_) => None,
        }
    }

    pub(super) fn assigned_mut(&mut self) -> Option<&mut Assigned> {
        match &mut self.phase {
            Phase::Assigned(a) => Some(a),
            Phase::Queued(_) => None,
        }
    }

    pub(super) fn owner(&self) -> Option<&str> {
        self.assigned().map(|a| a.owner.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OfferKind {
    /// From the queue.
    Queue,
    /// A transfer to this agent by name.
    ToAgent,
    /// An escalation to a topic.
    ToTopic,
}

#[derive(Debug)]
pub(super) struct Offer {
    /// Creation order (ids are hashed, so they do not tell).
    pub(super) serial: u64,
    pub(super) agent: AgentId,
    pub(super) conversation: ConversationId,
    pub(super) expires_at: u64,
    pub(super) kind: OfferKind,
}

/// Everything `tick` may have to do. At equal times the variant order decides, which
/// keeps a transfer deadline ahead of an offer expiring at the same instant, and the
/// queue-position flush last, after everything that moves conversations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Grace(AgentId),
    WrapUpEnd(AgentId),
    TransferDeadline(ConversationId),
    OfferExpiry(OfferId),
    Widen(ConversationId),
    Hold(ConversationId),
    Readmit(ConversationId),
    LeaveMessage(ConversationId),
    Abandon(ConversationId),
    Positions(usize),
}

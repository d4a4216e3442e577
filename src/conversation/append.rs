//! The conversation task's appends: who may append, a repeated `client_msg_id` answered
//! from what the task has seen (`seen`), one script call per batch (or a plain append for
//! messages that change no field, their open check made here), and a retry on top
//! of whatever another writer stored in between (Redis refuses an append on a stream the
//! task has not read whole: `store::Appended::Behind`, `store::PlainAppended::Behind`).

use super::{seen::SeenIds, task::ConversationTask, AppendReply, AppendRequest};
use crate::{
    error::{Error, Result},
    protocol::{ConversationState, StoredEvent},
    store::{AppendItem, AppendOutcome, Appended, PlainAppended, PlainEvent, Requirement, Update},
};

/// Tries at storing one batch while other writers keep storing in between; each try
/// first reads what they stored. Two nodes writing the same chat at once settle in two.
const MAX_ATTEMPTS: usize = 5;

/// Events read per round trip when the task builds its index of ids.
const INDEX_PAGE: usize = 500;

pub(super) type Pending = (Box<AppendRequest>, AppendReply);

impl ConversationTask {
    /// Stores a batch of appends in one round trip and answers each.
    pub(super) async fn append_batch(&mut self, batch: Vec<Pending>) {
        let mut round = batch;
        while !round.is_empty() {
            round = self.append_round(round).await;
        }
    }

    /// One round; answers what it holds back for the next (an id repeated within this
    /// round: the next one answers it from the first one's stored seq).
    async fn append_round(&mut self, batch: Vec<Pending>) -> Vec<Pending> {
        let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
        for (request, reply) in batch {
            let permitted = match self.permit(&request.author, request.permission).await {
                Ok(()) => self.fenced(&request).await,
                Err(err) => Err(err),
            };
            match permitted {
                Ok(()) => pending.push((request, reply)),
                Err(err) => self.answer(&request, Err(err), reply),
            }
        }
        if pending.is_empty() {
            return Vec::new();
        }
        if self.needs_resync {
            if let Err(err) = self.catch_up(u64::MAX).await {
                self.answer_all(pending, &err);
                return Vec::new();
            }
        }
        let mut held = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let (fresh, repeated) = match self.without_duplicates(pending).await {
                Ok(split) => split,
                Err((err, pending)) => {
                    self.answer_all(pending, &err);
                    return held;
                }
            };
            held.extend(repeated);
            pending = fresh;
            if pending.is_empty() {
                return held;
            }
            let last = match self.try_store(pending).await {
                None => return held,
                Some((behind, last)) => {
                    pending = behind;
                    last
                }
            };
            // Another writer stored events this task had not seen: read them (they may
            // hold one of these ids), then try again on top of them.
            if let Err(err) = self.catch_up(u64::MAX).await {
                self.needs_resync = true;
                self.answer_all(pending, &err);
                return held;
            }
            if self.delivered() < last {
                // The stream ends below `last_seq`: those seqs were lost with appends
                // in a failover and will never be read. Go on above them, as every
                // writer does, rather than retrying on top of a stream that cannot move.
                self.set_delivered(last);
            }
        }
        self.answer_all(pending, &Error::Unavailable);
        held
    }

    /// Stores `pending` on top of what this task has seen. Answers every request, or
    /// hands them all back with the stream's `last_seq` when it had moved on (nothing
    /// stored).
    async fn try_store(&mut self, pending: Vec<Pending>) -> Option<(Vec<Pending>, u64)> {
        let ts = crate::clock::now_ms();
        // What each request changes, plus its milestone from the membership as it stands
        // now (a retry after reading another writer's events may find none left).
        let updates: Vec<Vec<Update>> = pending
            .iter()
            .map(|(request, _)| {
                let mut updates = request.updates.clone();
                if let Some(members) = &self.members {
                    updates.extend(members.milestone(&request.body, ts));
                }
                updates
            })
            .collect();
        // Each event is serialized once: the stored form goes to Redis and the frame
        // members get is spliced from it.
        let mut stored_forms = Vec::with_capacity(pending.len());
        for (request, _) in &pending {
            match StoredEvent::json(ts, &request.body) {
                Ok(json) => stored_forms.push(json),
                Err(err) => {
                    let err = Error::from(crate::store::StoreError::from(err));
                    self.answer_all(pending, &err);
                    return None;
                }
            }
        }
        let notes: Vec<String> = pending
            .iter()
            .map(|(request, _)| {
                request
                    .remote_ack
                    .as_ref()
                    .and_then(|ack| serde_json::to_string(ack).ok())
                    .unwrap_or_default()
            })
            .collect();
        if plain(&pending, &updates, self.is_closed()) {
            return self.store_plain(pending, ts, stored_forms, notes).await;
        }
        let items: Vec<AppendItem<'_>> = pending
            .iter()
            .zip(&stored_forms)
            .zip(&notes)
            .zip(&updates)
            .map(|((((request, _), stored), note), updates)| AppendItem {
                stored,
                requirement: &request.requirement,
                updates,
                note,
            })
            .collect();
        let appended = self
            .owner
            .deps
            .store
            .append_batch(&self.id, &self.owner.deps.node_id, self.delivered(), &items)
            .await;
        drop(items);
        let outcomes = match appended {
            Ok(Appended::Behind { last }) => {
                tracing::debug!(conversation_id = %self.id, last, "stream moved on; reading it");
                return Some((pending, last));
            }
            Ok(Appended::Done(outcomes)) if self.awaits_replica(&outcomes) => {
                self.replicated().await.map(|()| outcomes)
            }
            Ok(Appended::Done(outcomes)) => Ok(outcomes),
            Err(err) => Err(Error::from(err)),
        };
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // The script may or may not have run: re-read before delivering more.
                self.needs_resync = true;
                self.answer_all(pending, &err);
                return None;
            }
        };
        for ((((mut request, reply), outcome), stored), updates) in pending
            .into_iter()
            .zip(outcomes)
            .zip(stored_forms)
            .zip(updates)
        {
            request.updates = updates;
            let outcome = self.stored(request, ts, &stored, outcome).await;
            // `stored` consumed the request; answer failures from what the outcome says.
            reply.send(outcome);
        }
        None
    }

    fn is_closed(&self) -> bool {
        self.members
            .as_ref()
            .is_some_and(|members| members.state == ConversationState::Closed)
    }

    /// [`Self::try_store`] for events that [`plain`] lets go without the append script:
    /// a lone event refused here when the chat is closed (see [`plain`] for why this
    /// task's view is enough), else stored by `Store::append_plain_batch` (one round
    /// trip for the whole batch), answered, delivered here, then published to the other
    /// listening nodes (after the local delivery: their copy is only a hint, and the
    /// author's ack should not wait for it), unless the store published it already
    /// because other nodes listened last time (one round trip instead of two).
    async fn store_plain(
        &mut self,
        pending: Vec<Pending>,
        ts: u64,
        stored_forms: Vec<String>,
        notes: Vec<String>,
    ) -> Option<(Vec<Pending>, u64)> {
        let refused = self.is_closed()
            && pending
                .iter()
                .any(|(request, _)| request.requirement == Requirement::Open);
        let (first, publication) = if refused {
            // Only ever a lone event: `plain` lets a batch through only while open.
            (None, None)
        } else {
            let store = &self.owner.deps.store;
            let node = &self.owner.deps.node_id;
            let events: Vec<PlainEvent<'_>> = stored_forms
                .iter()
                .zip(&notes)
                .map(|(stored, note)| PlainEvent { stored, note })
                .collect();
            match store
                .append_plain_batch(
                    &self.id,
                    node,
                    self.delivered(),
                    &events,
                    self.others_listen,
                )
                .await
            {
                Ok(PlainAppended::Behind { last }) => {
                    tracing::debug!(conversation_id = %self.id, last, "stream moved on; reading it");
                    return Some((pending, last));
                }
                Ok(PlainAppended::Stored { seq, publication }) => {
                    self.others_listen = publication.others_listen();
                    (Some(seq), Some(publication))
                }
                Ok(PlainAppended::NotFound) => (None, None),
                Err(err) => {
                    // It may or may not have gone in: re-read before delivering more.
                    self.needs_resync = true;
                    self.answer_all(pending, &Error::from(err));
                    return None;
                }
            }
        };
        let outcomes: Vec<AppendOutcome> = match first {
            Some(first) => (first..)
                .take(pending.len())
                .map(AppendOutcome::Stored)
                .collect(),
            None if refused => vec![AppendOutcome::WrongState; pending.len()],
            None => vec![AppendOutcome::NotFound; pending.len()],
        };
        // Checked before the wait's future is made: it is kilobytes, and moved into this
        // one's state even when it has nothing to wait for.
        if self.awaits_replica(&outcomes) {
            if let Err(err) = self.replicated().await {
                self.needs_resync = true;
                self.answer_all(pending, &err);
                return None;
            }
        }
        for (((request, reply), outcome), stored) in
            pending.into_iter().zip(outcomes).zip(stored_forms)
        {
            let answer = self.stored(request, ts, &stored, outcome).await;
            reply.send(answer);
        }
        if let Some(publication) = publication.filter(|publication| !publication.is_empty()) {
            if let Err(err) = self.owner.deps.store.publish_live(publication).await {
                // Stored and delivered here: the other nodes find it by their reconcile.
                tracing::warn!(conversation_id = %self.id, cause = %err, "live hint not published");
            }
        }
        None
    }

    /// With `[limits] replicated_acks`, a round that stored events acks them only once a
    /// replica has them ([`Self::replicated`]): a failover cannot lose them.
    fn awaits_replica(&self, outcomes: &[AppendOutcome]) -> bool {
        self.owner.deps.replicated_acks
            && outcomes
                .iter()
                .any(|outcome| matches!(outcome, AppendOutcome::Stored(_)))
    }

    async fn replicated(&self) -> Result<()> {
        let key = crate::store::keys::conversation(&self.id);
        self.owner.deps.store.wait_replicated(&key).await?;
        Ok(())
    }

    /// Answers requests whose `client_msg_id` was stored before (acked with the first
    /// one's seq, nothing stored) and sets aside a second request with the same id as an
    /// earlier one of this round. Hands back the rest.
    #[allow(clippy::type_complexity)]
    async fn without_duplicates(
        &mut self,
        pending: Vec<Pending>,
    ) -> std::result::Result<(Vec<Pending>, Vec<Pending>), (Error, Vec<Pending>)> {
        if pending
            .iter()
            .all(|(request, _)| request.client_msg_id.is_none())
        {
            return Ok((pending, Vec::new()));
        }
        if let Err(err) = self.index_ids().await {
            return Err((err, pending));
        }
        let mut fresh: Vec<Pending> = Vec::with_capacity(pending.len());
        let mut repeated = Vec::new();
        let mut pending = pending.into_iter();
        while let Some((mut request, reply)) = pending.next() {
            let Some(id) = request.client_msg_id.as_deref() else {
                fresh.push((request, reply));
                continue;
            };
            // A round holds at most `MAX_BATCH` requests: a scan beats a set of copies.
            if fresh
                .iter()
                .any(|(earlier, _)| earlier.client_msg_id.as_deref() == Some(id))
            {
                repeated.push((request, reply));
                continue;
            }
            // Almost every id is new: the index says so without a read (or a future).
            let stored = match self.seen.as_ref().and_then(|seen| seen.candidate(id)) {
                None => Ok(None),
                Some(candidate) => self.confirmed(id, candidate).await,
            };
            match stored {
                Ok(Some(seq)) => {
                    self.ack(&mut request.ack, seq);
                    reply.send(Ok(AppendOutcome::Duplicate(seq)));
                }
                Ok(None) => fresh.push((request, reply)),
                Err(err) => {
                    let mut rest = fresh;
                    rest.push((request, reply));
                    rest.extend(repeated);
                    rest.extend(pending);
                    return Err((err, rest));
                }
            }
        }
        Ok((fresh, repeated))
    }

    /// Makes the index of ids cover every event up to what this task has delivered,
    /// reading the stream once (the first append with an id, or after a skipped event).
    async fn index_ids(&mut self) -> Result<()> {
        if self
            .seen
            .as_ref()
            .is_some_and(|seen| seen.through() >= self.delivered())
        {
            return Ok(());
        }
        let mut seen = self.seen.take().unwrap_or_default();
        let until = self.delivered();
        let mut after = seen.through();
        while after < until {
            let (events, more) = self
                .owner
                .deps
                .store
                .history_in_order(&self.id, after, INDEX_PAGE)
                .await?;
            let Some(last) = events.last().map(|event| event.seq) else {
                break;
            };
            for event in events.iter().filter(|event| event.seq <= until) {
                seen.record_read(event);
            }
            after = last;
            if !more {
                break;
            }
        }
        self.seen = Some(SeenIds::covering(seen, until));
        Ok(())
    }

    /// `seq`, the index's candidate for `id`, once reading that event confirms it carries
    /// `id` (the index keeps hashes).
    async fn confirmed(&self, id: &str, seq: u64) -> Result<Option<u64>> {
        let (events, _) = self
            .owner
            .deps
            .store
            .history_in_order(&self.id, seq.saturating_sub(1), 1)
            .await?;
        let confirmed = events
            .first()
            .is_some_and(|event| event.seq == seq && event.body.client_msg_id() == Some(id));
        Ok(confirmed.then_some(seq))
    }

    fn answer_all(&self, pending: Vec<Pending>, err: &Error) {
        for (request, reply) in pending {
            self.answer(&request, Err(err.clone()), reply);
        }
    }
}

/// Whether `pending` can go as a plain append (`Store::append_plain_batch`, without the
/// append script): events that set no field and whose only requirement is an open
/// conversation. The task checks that one itself (`store_plain`), and its view is
/// enough: a close is final and comes with its `closed` event, and the fence refuses the
/// append unless the task has read every event. Also when another node listens, though
/// the publish then takes a second round trip: the script that would store and publish
/// in one call costs Redis more (`docs/performance.md`, fourth stop), and Redis is what
/// several nodes share.
fn plain(pending: &[Pending], updates: &[Vec<Update>], closed: bool) -> bool {
    let each_plain = pending.iter().zip(updates).all(|((request, _), changes)| {
        changes.is_empty() && matches!(request.requirement, Requirement::Open | Requirement::Any)
    });
    // A batch in a closed chat goes by the script, which answers each event on its own
    // requirement; a lone event is answered here.
    each_plain && !pending.is_empty() && (pending.len() == 1 || !closed)
}

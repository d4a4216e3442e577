//! Start-up: rebuild the router's and the tickets' state from Redis, so a restarted
//! hub carries on where the last one stopped. Offers in flight are not stored: their
//! conversations are simply queued again and re-offered.

use super::{QueuedConversation, RouterHandle};
use crate::{
    directory::Directory, protocol::CustomerInfo, store::Store, store::StoreResult,
    tickets::Tickets,
};

pub async fn restore(
    store: &Store,
    router: &RouterHandle,
    tickets: &Tickets,
    directory: &Directory,
) -> StoreResult<()> {
    for agent in store.agents().await? {
        directory.insert(agent.clone());
        router.upsert_agent(agent);
    }
    let mut restored = 0usize;
    for id in store.open_conversation_ids().await? {
        let Some(record) = store.conversation(&id).await? else {
            // The index was written but the create never ran.
            store.forget_open(&id).await?;
            continue;
        };
        if !record.is_open() {
            if record.flushed {
                store.finish_conversation(&record).await?;
            } else {
                tickets.flush_or_defer(&id).await;
            }
            continue;
        }
        let conversation = QueuedConversation {
            id: record.id.clone(),
            visitor_id: record.visitor_id.clone(),
            topic: record.topic.clone(),
            customer: CustomerInfo {
                id: record.visitor_id.clone(),
                name: record.customer_name.clone(),
                email: record.customer_email.clone(),
                verified: record.verified,
                verified_fields: None,
            },
            preview: record.preview.clone(),
            waiting_since_ms: record.waiting_since,
            preferred_agent: None,
            customer_present: false,
        };
        router.restore(conversation, record.agent.clone());
        restored += 1;
    }
    // Nobody is connected yet: agents holding conversations start their grace period.
    for agent in directory.ids() {
        router.agent_disconnected(&agent);
    }
    tracing::info!(
        conversations = restored,
        agents = directory.len(),
        "state restored from redis"
    );
    Ok(())
}

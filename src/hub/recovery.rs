//! Start-up: rebuild the router's and the tickets' state from Redis, so a restarted
//! hub carries on where the last one stopped. Offers in flight are not stored: their
//! conversations are simply queued again and re-offered.

use std::sync::Arc;

use super::{routing::QueuedConversation, Hub};
use crate::{protocol::CustomerInfo, store::StoreResult};

pub async fn restore(hub: &Arc<Hub>) -> StoreResult<()> {
    for agent in hub.store.agents().await? {
        hub.agents.insert(agent.id.clone(), agent.clone());
        hub.router.upsert_agent(agent);
    }
    let mut restored = 0usize;
    for id in hub.store.open_conversation_ids().await? {
        let Some(record) = hub.store.conversation(&id).await? else {
            // The index was written but the create never ran.
            hub.store.forget_open(&id).await?;
            continue;
        };
        if !record.is_open() {
            if record.flushed {
                hub.store.finish_conversation(&record).await?;
            } else {
                hub.tickets.flush_or_defer(&id).await;
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
            },
            preview: record.preview.clone(),
            waiting_since_ms: record.waiting_since,
            preferred_agent: None,
            customer_present: false,
        };
        hub.router.restore(conversation, record.agent.clone());
        restored += 1;
    }
    // Nobody is connected yet: agents holding conversations start their grace period.
    for agent in hub.agents.iter() {
        hub.router.agent_disconnected(agent.key());
    }
    tracing::info!(
        conversations = restored,
        agents = hub.agents.len(),
        "state restored from redis"
    );
    Ok(())
}

//! What the routing task tells the team lead's desk: each routing decision, as the core
//! explained it, stored with its conversation (the routing audit), and each change of
//! an agent's activity for the time-in-state reports. Both are written off the routing
//! path, in order, by one writer task each; a failure is logged and routing goes on.

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::task::RoutingTask;
use crate::{
    router::{Activity, Decision},
    store::Store,
};

/// Decisions waiting to be written; past it they are dropped (and logged), never
/// blocking routing.
const DECISION_BACKLOG: usize = 4_096;

/// The sending end of the routing audit's writer.
pub(super) struct DecisionLog {
    tx: mpsc::Sender<(String, String)>,
}

impl DecisionLog {
    /// Starts the writer: one append at a time, so a conversation's decisions are
    /// stored in the order they were made. It ends when the log is dropped.
    pub(super) fn start(store: Store, tracker: &TaskTracker) -> Self {
        let (tx, mut rx) = mpsc::channel::<(String, String)>(DECISION_BACKLOG);
        tracker.spawn(async move {
            while let Some((conversation, json)) = rx.recv().await {
                if let Err(err) = store.append_decision(&conversation, json).await {
                    tracing::debug!(conversation_id = %conversation, cause = %err, "routing decision not stored");
                }
            }
        });
        DecisionLog { tx }
    }

    fn record(&self, decision: &Decision) {
        let json = match serde_json::to_string(decision) {
            Ok(json) => json,
            Err(err) => {
                tracing::warn!(conversation_id = %decision.conversation, cause = %err, "routing decision not serialized");
                return;
            }
        };
        if self
            .tx
            .try_send((decision.conversation.clone(), json))
            .is_err()
        {
            tracing::warn!(conversation_id = %decision.conversation, "routing audit backlog full: decision dropped");
        }
    }
}

impl RoutingTask {
    pub(super) fn record_decision(&self, decision: Decision) {
        self.decisions.record(&decision);
    }

    pub(super) fn record_activity(&self, activity: Activity) {
        tracing::debug!(agent_id = %activity.agent, status = ?activity.status, busy = activity.busy, "agent activity");
    }
}

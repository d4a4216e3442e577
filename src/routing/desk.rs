//! What the routing task tells the team lead's desk: each routing decision, as the core
//! explained it, stored with its conversation (the routing audit), and each change of
//! an agent's activity for the time-in-state reports. Both are written off the routing
//! path, in the order they happened, by one writer task; a failure is logged and
//! routing goes on.

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::{
    reports::{AgentStateSample, Reports},
    router::{Activity, Decision},
    store::Store,
};

/// Writes waiting; past it they are dropped (and logged), never blocking routing.
const BACKLOG: usize = 4_096;

enum Write {
    /// A conversation's decision, as JSON.
    Decision { conversation: String, json: String },
    /// An agent's activity since `at` (Unix ms).
    Activity { activity: Activity, at: u64 },
}

/// The sending end of the desk's writer.
pub(super) struct DeskLog {
    tx: mpsc::Sender<Write>,
}

impl DeskLog {
    /// Starts the writer: one write at a time, so a conversation's decisions and an
    /// agent's states are stored in the order they happened. It ends when the log is
    /// dropped (the task stops routing).
    pub(super) fn start(store: Store, reports: Reports, tracker: &TaskTracker) -> Self {
        let (tx, mut rx) = mpsc::channel::<Write>(BACKLOG);
        tracker.spawn(async move {
            while let Some(write) = rx.recv().await {
                match write {
                    Write::Decision { conversation, json } => {
                        if let Err(err) = store.append_decision(&conversation, json).await {
                            tracing::debug!(conversation_id = %conversation, cause = %err, "routing decision not stored");
                        }
                    }
                    Write::Activity { activity, at } => {
                        let agent = activity.agent.clone();
                        let sample = AgentStateSample {
                            status: activity.status,
                            reason: activity.away_reason,
                            busy: activity.busy,
                        };
                        if let Err(err) = reports.record_agent_state(&agent, sample, at).await {
                            tracing::warn!(agent_id = %agent, cause = %err, "agent state not counted in the reports");
                        }
                    }
                }
            }
        });
        DeskLog { tx }
    }

    /// Stores a decision with its conversation.
    pub(super) fn decision(&self, decision: Decision) {
        match serde_json::to_string(&decision) {
            Ok(json) => self.send(Write::Decision {
                conversation: decision.conversation,
                json,
            }),
            Err(err) => {
                tracing::warn!(conversation_id = %decision.conversation, cause = %err, "routing decision not serialized");
            }
        }
    }

    /// Counts an agent's new activity from now on.
    pub(super) fn activity(&self, activity: Activity) {
        self.send(Write::Activity {
            activity,
            at: crate::clock::now_ms(),
        });
    }

    fn send(&self, write: Write) {
        if self.tx.try_send(write).is_err() {
            tracing::warn!("lead desk backlog full: a routing decision or agent state was dropped");
        }
    }
}

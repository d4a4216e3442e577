//! Deleting files whose conversation's retention has ended. Every node sweeps; two
//! nodes deleting the same files is harmless (a missing file is not an error), and a
//! conversation leaves the schedule only once its files are gone, so a failed sweep is
//! retried by the next.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Attachments;
use crate::{metrics::Metrics, store::Store};

/// Conversations handled per sweep; the rest wait for the next.
const PER_SWEEP: usize = 100;

pub async fn sweep(
    attachments: Attachments,
    store: Store,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let every = Duration::from_secs(attachments.settings().sweep_interval_s);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let due = match store
            .due_attachments(crate::clock::now_ms(), PER_SWEEP)
            .await
        {
            Ok(due) => due,
            Err(cause) => {
                tracing::debug!(%cause, "attachment sweep: redis unavailable");
                continue;
            }
        };
        for conversation in due {
            match attachments.delete_conversation(&conversation).await {
                Ok(deleted) => {
                    if store.forget_attachments(&conversation).await.is_ok() {
                        metrics.attachments_deleted.inc_by(deleted);
                        tracing::info!(conversation_id = %conversation, deleted, "attachments expired");
                    }
                }
                Err(_) => break,
            }
        }
    }
}

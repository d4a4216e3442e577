//! Which node routes: every node runs [`run`], which takes the routing lease when it is
//! free, keeps it renewed while this node routes, and steps down on its own when it
//! could not renew in time (see `link` for the timings). Taking over starts a fresh
//! routing task with the new epoch and rebuilds it from Redis (`recovery`) and from the
//! nodes' heartbeats (who is connected where); stepping down stops that task.
//!
//! A node shutting down gives the lease back at once and says so on the bus, so another
//! node takes over within one tick instead of waiting for the lease to expire.

use std::{sync::Arc, time::Duration};

use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    bus::BusMessage,
    link::{Leading, LEASE_TICK, LEASE_TTL, STEP_DOWN_AFTER},
    recovery, RouterHandle, RoutingDeps, RoutingTask,
};
use crate::{directory::Directory, tickets::Tickets};

/// What a node needs to route when its turn comes.
#[derive(Clone)]
pub struct Candidate {
    pub deps: RoutingDeps,
    pub router: RouterHandle,
    pub tickets: Tickets,
    pub directory: Arc<Directory>,
    /// The lease taken by [`first_election`], for the loop to keep.
    pub first: Arc<std::sync::Mutex<Option<(u64, CancellationToken)>>>,
}

/// Wakes the election loop before its next tick (the routing node left).
pub type Nudge = Arc<tokio::sync::Notify>;

/// The election loop; returns at shutdown, having given the lease back.
pub async fn run(candidate: Candidate, nudge: Nudge) {
    let shutdown = candidate.deps.shutdown.clone();
    let store = candidate.deps.store.clone();
    let node = candidate.router.node_id().to_string();
    let ttl_ms = LEASE_TTL.as_millis() as u64;
    let mut current: Option<(u64, CancellationToken, Instant)> = candidate
        .first
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .map(|(epoch, stop)| (epoch, stop, Instant::now()));
    loop {
        match current.take() {
            Some((epoch, stop, renewed_at)) => {
                match store.renew_lease(&node, epoch, ttl_ms).await {
                    Ok(true) => current = Some((epoch, stop, Instant::now())),
                    Ok(false) => {
                        tracing::warn!(epoch, "routing lease lost to another node; stepping down");
                        step_down(&candidate, stop);
                    }
                    Err(err) if renewed_at.elapsed() >= STEP_DOWN_AFTER => {
                        tracing::warn!(epoch, cause = %err, "routing lease not renewed in time; stepping down");
                        step_down(&candidate, stop);
                    }
                    Err(_) => current = Some((epoch, stop, renewed_at)),
                }
            }
            None => match store.acquire_lease(&node, ttl_ms).await {
                Ok(Some(epoch)) => {
                    let stop = take_over(&candidate, epoch).await;
                    current = Some((epoch, stop, Instant::now()));
                }
                Ok(None) => {}
                Err(err) => tracing::debug!(cause = %err, "routing lease not tried"),
            },
        }
        tokio::select! {
            _ = tokio::time::sleep(LEASE_TICK) => {}
            _ = nudge.notified() => {}
            _ = shutdown.cancelled() => break,
        }
    }
    if let Some((epoch, stop, _)) = current {
        stop.cancel();
        candidate.router.link.set_leading(None);
        // Hand over at once: the others hear it and try the lease now.
        if store.release_lease(&node, epoch).await.is_ok() {
            if let Ok(text) = serde_json::to_string(&BusMessage::Leader {
                node: node.clone(),
                epoch: 0,
            }) {
                let _best_effort = store
                    .publish(&crate::store::keys::router_channel(), &text)
                    .await;
            }
        }
    }
}

fn step_down(candidate: &Candidate, stop: CancellationToken) {
    stop.cancel();
    candidate.router.link.set_leading(None);
}

/// Starts a routing task for `epoch`, rebuilt from Redis; returns what stops it.
async fn take_over(candidate: &Candidate, epoch: u64) -> CancellationToken {
    let stop = candidate.deps.shutdown.child_token();
    let mut deps = candidate.deps.clone();
    deps.shutdown = stop.clone();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let task = RoutingTask::new(deps, candidate.router.clone(), epoch);
    candidate
        .deps
        .tracker
        .spawn(task.run(super::RouterInbox(inbox)));
    tracing::info!(epoch, "this node routes now");
    let started = Instant::now();
    if let Err(err) = recovery::rebuild(
        &candidate.deps.store,
        epoch,
        &inbox_tx,
        &candidate.tickets,
        &candidate.directory,
    )
    .await
    {
        // What could not be read is picked up by the next node or the next rebuild;
        // routing what is known beats routing nothing.
        tracing::warn!(cause = %err, "routing rebuilt only in part");
    }
    // Only now does the task take requests: it answers from the whole rebuilt state.
    candidate.router.link.set_leading(Some(Arc::new(Leading {
        epoch,
        inbox: inbox_tx,
    })));
    candidate.router.publish(&BusMessage::Leader {
        node: candidate.router.node_id().to_string(),
        epoch,
    });
    tracing::info!(
        epoch,
        took_ms = started.elapsed().as_millis() as u64,
        "routing rebuilt"
    );
    stop
}

/// How long the first election may take at start-up before serving anyway.
const FIRST_ELECTION: Duration = Duration::from_secs(2);

/// At start-up: take the lease if it is free, so a lone node routes at once. The loop
/// ([`run`]) then keeps it.
pub async fn first_election(candidate: &Candidate) {
    let store = &candidate.deps.store;
    let node = candidate.router.node_id();
    let ttl_ms = LEASE_TTL.as_millis() as u64;
    if let Ok(Ok(Some(epoch))) =
        tokio::time::timeout(FIRST_ELECTION, store.acquire_lease(node, ttl_ms)).await
    {
        let stop = take_over(candidate, epoch).await;
        *candidate.first.lock().unwrap_or_else(|p| p.into_inner()) = Some((epoch, stop));
    }
}

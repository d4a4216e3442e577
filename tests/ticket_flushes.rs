//! A flush holds a closed chat's whole transcript in memory while it builds the ticket,
//! so a wave of closes is flushed `FLUSHES_AT_ONCE` at a time, not all at once (the end
//! of a load test closed 200 chats of 10,000 events together and the hub peaked near
//! 1 GB). Redis is frozen (SIGSTOP) so that every flush that has its turn stays inside
//! it; the ones waiting for a turn must not start.

mod common;

use std::time::Duration;

use common::*;
use switchboard::{
    error::Error,
    metrics::Metrics,
    store::Store,
    tickets::{Tickets, FLUSHES_AT_ONCE},
};
use tokio::time::Instant;

const WAVE: usize = 12;

#[tokio::test]
async fn a_wave_of_closes_is_flushed_a_few_at_a_time() {
    let redis = RedisServer::start().await;
    let store = Store::connect(&redis.url(), Duration::from_secs(20))
        .await
        .unwrap_or_else(|err| panic!("connect to the test's redis: {err}"));
    let metrics = Metrics::new();
    let tickets = Tickets::new(store, metrics.clone(), false);
    let running = || metrics.ticket_flushes_running.get();

    redis.stop();
    let flushes: Vec<_> = (0..WAVE)
        .map(|i| {
            let tickets = tickets.clone();
            tokio::spawn(async move { tickets.flush(&format!("c_wave_{i}")).await })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(5);
    while running() < FLUSHES_AT_ONCE as i64 {
        assert!(
            Instant::now() < deadline,
            "only {} flushes started",
            running()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every flush task has been polled by now; the waiting ones must stay waiting while
    // the first ones are held up by Redis.
    let watch_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < watch_until {
        assert_eq!(running(), FLUSHES_AT_ONCE as i64, "flushes running at once");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    redis.cont();
    for flush in flushes {
        let outcome = tokio::time::timeout(Duration::from_secs(20), flush)
            .await
            .expect("every flush finishes once Redis is back")
            .expect("flush task");
        // No such conversations: each flush looked and found nothing to do.
        assert!(
            matches!(outcome, Err(Error::NotFound(_))),
            "flush outcome: {outcome:?}"
        );
    }
    assert_eq!(running(), 0, "every turn is given back");
}

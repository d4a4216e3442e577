//! After the load: the hubs' ticket flushes. Every chat a run closes becomes a ticket,
//! and the hub flushes a chat of 10,000 messages in milliseconds of its CPU. The run
//! waits for them before it stops sampling, so the CPU it reports holds every chat's
//! last step whole. Before, the sampler stopped once the harness's own read-back was
//! done, with most tickets still to flush (`docs/performance.md`, issue 19, eleventh
//! stop): the hub's figure held an arbitrary part of them.
//!
//! The count is the hubs' `switchboard_tickets_total`, summed over the hubs that answer.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::admin::Endpoints;

/// The counter every hub exports for the tickets it stored.
const TICKETS_METRIC: &str = "switchboard_tickets_total";

/// How the hubs' ticket flushes ended after the load.
#[derive(Debug, Clone, Serialize)]
pub struct TicketsSettled {
    /// Tickets the run's closed chats called for.
    pub expected: u64,
    /// Tickets the hubs had stored for this run when the wait ended.
    pub flushed: u64,
    /// From the end of the load (customers and agents stopped) to the last ticket, or to
    /// the end of the patience.
    pub waited_s: f64,
}

impl TicketsSettled {
    pub fn text(&self) -> String {
        let within = if self.flushed >= self.expected {
            "all"
        } else {
            "not all"
        };
        format!(
            "tickets: {} of {} flushed ({within}), {:.1} s after the clients stopped; the CPU figures include them",
            self.flushed, self.expected, self.waited_s
        )
    }
}

/// Reads the hubs' ticket counters.
pub struct TicketCounter {
    client: reqwest::Client,
    urls: Vec<String>,
}

impl TicketCounter {
    pub fn new(hubs: &[Endpoints]) -> anyhow::Result<TicketCounter> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let urls = hubs.iter().map(|h| format!("{}/metrics", h.http)).collect();
        Ok(TicketCounter { client, urls })
    }

    /// Tickets stored by the hubs that answer (a killed node counts none).
    pub async fn stored(&self) -> u64 {
        let mut total = 0;
        for url in &self.urls {
            let Ok(response) = self.client.get(url).send().await else {
                continue;
            };
            if let Ok(text) = response.text().await {
                total += tickets_in(&text);
            }
        }
        total
    }

    /// Waits until the hubs have stored `expected` tickets more than `baseline`, or
    /// `patience` has passed.
    pub async fn settle(&self, baseline: u64, expected: u64, patience: Duration) -> TicketsSettled {
        let started = Instant::now();
        loop {
            let flushed = self.stored().await.saturating_sub(baseline);
            if flushed >= expected || started.elapsed() >= patience {
                return TicketsSettled {
                    expected,
                    flushed,
                    waited_s: started.elapsed().as_secs_f64(),
                };
            }
            // A polling interval: the hubs' counters are only seen by asking.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The sum of the ticket counter's samples in a Prometheus text exposition.
fn tickets_in(exposition: &str) -> u64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(TICKETS_METRIC)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_read_from_its_samples_only() {
        let text = "# HELP switchboard_tickets_total Tickets flushed\n\
                    # TYPE switchboard_tickets_total counter\n\
                    switchboard_tickets_total{node=\"n-1\"} 197\n\
                    switchboard_tickets_total_other 5\n\
                    switchboard_ticket_flush_events_held{node=\"n-1\"} 4000\n";
        assert_eq!(tickets_in(text), 197);
        assert_eq!(tickets_in("switchboard_tickets_total 3\n"), 3);
        assert_eq!(tickets_in(""), 0);
    }
}

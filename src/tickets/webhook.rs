//! Webhook outbox delivery: every ticket is POSTed at least once to `webhook_url`,
//! signed with `Switchboard-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//! and carrying `Idempotency-Key: <ticket_id>` so receivers can drop repeats.
//!
//! The outbox is a Redis stream read through a consumer group: an entry stays pending
//! until a 2xx answer acknowledges it, so deliveries survive restarts (a node re-reads
//! its own pending entries at start) and a dead node's entries are adopted by another.
//! Failures back off exponentially with jitter; an entry still failing after
//! `give_up_after_ms` moves to the dead-letter list shown in `/v1/stats`.
//!
//! The URL's query string (often a secret) is never logged: errors are logged without
//! their URL, the URL only redacted. Redirects are not followed (the signed body must
//! go to the configured receiver only): a 3xx is a failure like any other. If the
//! outbox stream or its group disappears (the key deleted, Redis flushed), the group is
//! created again and delivery carries on.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rand::Rng;

use tokio_util::sync::CancellationToken;

use crate::{
    auth,
    config::{Config, WebhookSettings},
    metrics::Metrics,
    store::{OutboxEntry, Store},
};

const GROUP: &str = "webhook";
/// How long another node's entry must sit unacknowledged before we adopt it.
const ADOPT_AFTER_MS: u64 = 60_000;
/// How often deliveries left by nodes that are gone (no heartbeat) are taken over. Node
/// ids are new at every start, so a restarted node finds its own earlier deliveries here.
const ORPHANS_EVERY_MS: u64 = 1_000;
const BATCH: usize = 32;

/// The signature header value for `body` signed at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: u64, body: &str) -> String {
    format!(
        "t={unix_seconds},v1={}",
        auth::sign(secret, &format!("{unix_seconds}.{body}"))
    )
}

/// Delay before attempt `attempts + 1`: doubling from the initial backoff, capped,
/// with up to half of it taken off at random so retries from many tickets spread out.
pub fn backoff_ms(settings: &WebhookSettings, attempts: u32) -> u64 {
    let doubled = settings
        .initial_backoff_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
    let capped = doubled.min(settings.max_backoff_ms).max(1);
    capped - rand::rng().random_range(0..=capped / 2)
}

enum Outcome {
    Delivered,
    Failed(String),
}

struct Worker {
    config: Arc<Config>,
    store: Store,
    metrics: Metrics,
    shutdown: CancellationToken,
    client: reqwest::Client,
    url: crate::config::WebhookUrl,
    secret: String,
    /// Entries this node holds, by the time of their next attempt.
    due: BTreeMap<(u64, String), OutboxEntry>,
}

/// Delivers the outbox until shutdown (nothing to do without a webhook URL and secret).
pub async fn run(config: Arc<Config>, store: Store, metrics: Metrics, shutdown: CancellationToken) {
    let (Some(url), Some(secret)) = (config.webhook_url.clone(), config.webhook_secret.clone())
    else {
        return;
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(config.webhook.request_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(cause = %err.without_url(), "cannot build the webhook client; deliveries stay in the outbox");
            return;
        }
    };
    tracing::info!(url = %url, "webhook deliveries on");
    let mut worker = Worker {
        config,
        store,
        metrics,
        shutdown,
        client,
        url,
        secret: secret.expose().to_string(),
        due: BTreeMap::new(),
    };
    worker.run().await;
}

impl Worker {
    /// Takes over what consumers without a live node left pending, at once (a dead node
    /// never comes back under the same id).
    async fn adopt_orphans(&mut self, me: &str) {
        let Ok(consumers) = self.store.outbox_consumers(GROUP).await else {
            return;
        };
        if consumers.iter().all(|(name, _)| name == me) {
            return;
        }
        let Ok(live) = self.store.live_nodes().await else {
            return;
        };
        for (name, _) in consumers {
            if name == me || live.iter().any(|(id, _)| *id == name) {
                continue;
            }
            let Ok(adopted) = self.store.claim_outbox_of(GROUP, &name, me, BATCH).await else {
                continue;
            };
            if !adopted.is_empty() {
                tracing::info!(from = %name, deliveries = adopted.len(), "took over the deliveries of a node that is gone");
            }
            for entry in adopted {
                if !self.due.values().any(|e| e.entry_id == entry.entry_id) {
                    self.schedule(entry).await;
                }
            }
        }
    }

    async fn run(&mut self) {
        let shutdown = self.shutdown.clone();
        let consumer = self.config.node_id.clone();
        let mut ready = false;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut last_adopt = 0u64;
        let mut last_orphans = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let store = self.store.clone();
            if !ready {
                // Our own pending entries from before a restart come first.
                if store.ensure_outbox_group(GROUP).await.is_err() {
                    continue;
                }
                match store.read_outbox(GROUP, &consumer, true, 10_000).await {
                    Ok(pending) => {
                        for entry in pending {
                            self.schedule(entry).await;
                        }
                        ready = true;
                    }
                    Err(_) => continue,
                }
            }
            let now = crate::clock::now_ms();
            if now.saturating_sub(last_orphans) >= ORPHANS_EVERY_MS {
                last_orphans = now;
                self.adopt_orphans(&consumer).await;
            }
            if now.saturating_sub(last_adopt) >= ADOPT_AFTER_MS / 4 {
                last_adopt = now;
                if let Ok(adopted) = store
                    .adopt_outbox(GROUP, &consumer, ADOPT_AFTER_MS, BATCH)
                    .await
                {
                    for entry in adopted {
                        if !self.due.values().any(|e| e.entry_id == entry.entry_id) {
                            self.schedule(entry).await;
                        }
                    }
                }
            }
            match store.read_outbox(GROUP, &consumer, false, BATCH).await {
                Ok(fresh) => {
                    for entry in fresh {
                        self.due.insert((0, entry.entry_id.clone()), entry);
                    }
                }
                Err(err) if err.is_missing_group() => {
                    // Deleted or flushed: without its group nothing would be read again.
                    tracing::warn!(cause = %err, "webhook outbox or its group is gone; creating it again");
                    match store.ensure_outbox_group(GROUP).await {
                        Ok(()) => ready = false,
                        Err(err) => {
                            tracing::warn!(cause = %err, "webhook outbox group not created yet")
                        }
                    }
                }
                Err(err) => tracing::debug!(cause = %err, "outbox not readable now"),
            }
            self.deliver_due().await;
        }
    }

    async fn schedule(&mut self, entry: OutboxEntry) {
        let next_at = match self.store.outbox_retry(&entry.entry_id).await {
            Ok((_, next_at)) => next_at,
            Err(_) => 0,
        };
        self.due.insert((next_at, entry.entry_id.clone()), entry);
    }

    async fn deliver_due(&mut self) {
        let now = crate::clock::now_ms();
        let due: Vec<_> = self
            .due
            .range(..(now + 1, String::new()))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(entry) = self.due.remove(&key) else {
                continue;
            };
            match self.attempt(&entry).await {
                Outcome::Delivered => {
                    self.metrics
                        .webhook_deliveries
                        .with_label_values(&["delivered"])
                        .inc();
                    if let Err(err) = self.store.ack_outbox(GROUP, &entry.entry_id, None).await {
                        // Delivered but not yet acknowledged: retried, which the
                        // Idempotency-Key makes harmless.
                        tracing::warn!(ticket_id = %entry.ticket_id, cause = %err, "delivery not acknowledged in the outbox");
                        self.due
                            .insert((now + 1_000, entry.entry_id.clone()), entry);
                    }
                }
                Outcome::Failed(why) => {
                    self.metrics
                        .webhook_deliveries
                        .with_label_values(&["failed"])
                        .inc();
                    let settings = &self.config.webhook;
                    if now.saturating_sub(entry.added_ms) >= settings.give_up_after_ms {
                        tracing::error!(ticket_id = %entry.ticket_id, cause = %why, "webhook gave up: dead letter");
                        self.metrics
                            .webhook_deliveries
                            .with_label_values(&["dead_letter"])
                            .inc();
                        if self
                            .store
                            .ack_outbox(GROUP, &entry.entry_id, Some(&entry.ticket_id))
                            .await
                            .is_err()
                        {
                            self.due
                                .insert((now + 1_000, entry.entry_id.clone()), entry);
                        }
                        continue;
                    }
                    let attempts = self
                        .store
                        .outbox_retry(&entry.entry_id)
                        .await
                        .map(|(a, _)| a)
                        .unwrap_or(0)
                        + 1;
                    let next_at = now + backoff_ms(settings, attempts);
                    tracing::info!(ticket_id = %entry.ticket_id, attempts, cause = %why, "webhook failed; will retry");
                    let _kept_in_memory_anyway = self
                        .store
                        .set_outbox_retry(&entry.entry_id, attempts, next_at)
                        .await;
                    self.due.insert((next_at, entry.entry_id.clone()), entry);
                }
            }
        }
    }

    async fn attempt(&self, entry: &OutboxEntry) -> Outcome {
        let body = match self.store.ticket(&entry.ticket_id).await {
            Ok(Some(body)) => body,
            Ok(None) => return Outcome::Failed(format!("ticket {} not found", entry.ticket_id)),
            Err(err) => return Outcome::Failed(err.to_string()),
        };
        let now_s = crate::clock::now_ms() / 1000;
        let response = self
            .client
            .post(self.url.expose())
            .header("content-type", "application/json")
            .header(
                "Switchboard-Signature",
                signature(&self.secret, now_s, &body),
            )
            .header("Idempotency-Key", &entry.ticket_id)
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => Outcome::Delivered,
            Ok(response) if response.status().is_redirection() => Outcome::Failed(format!(
                "receiver answered {} (redirects are not followed)",
                response.status()
            )),
            Ok(response) => Outcome::Failed(format!("receiver answered {}", response.status())),
            // Without the URL: its query string may be a secret.
            Err(err) => Outcome::Failed(without_url(err)),
        }
    }
}

/// A request error and its causes, without the URL (its query string may be a secret).
fn without_url(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        let header = signature("hook-secret", 1_700_000_000, r#"{"ticket_id":"t_1"}"#);
        let expected = auth::sign("hook-secret", r#"1700000000.{"ticket_id":"t_1"}"#);
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let settings = WebhookSettings {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            ..WebhookSettings::default()
        };
        for attempts in 1..=10u32 {
            let full = (100u64 << (attempts - 1)).min(1_000);
            let delay = backoff_ms(&settings, attempts);
            assert!(
                delay <= full && delay >= full / 2,
                "attempt {attempts}: {delay} not in [{}, {full}]",
                full / 2
            );
        }
    }
}

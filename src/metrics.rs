//! Prometheus metrics of one hub instance. Each `Hub` owns its own registry (no global
//! singletons), so two servers can run in one test process.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub connections: IntGaugeVec,
    pub events_stored: IntCounter,
    pub acks: IntCounter,
    pub errors: IntCounterVec,
    pub store_seconds: HistogramVec,
    pub slow_reader_closes: IntCounter,
    pub queue_waiting: IntGaugeVec,
    pub queue_wait_seconds: HistogramVec,
    pub offers: IntCounterVec,
    pub tickets: IntCounter,
    pub ticket_flush_events_held: IntGauge,
    /// Flushes that read their chat back from Redis (the task that closed it had not
    /// kept its milestones: `tickets::transcript::MilestoneLog`).
    pub ticket_flushes_read_back: IntCounter,
    /// Conversation tasks running on this node (each holds its chat's membership and
    /// the ids it has seen; a number that only grows is a leak).
    pub conversation_tasks: IntGauge,
    /// Live-feed hints for this node's conversation tasks: those skipped whole without
    /// waking the task (`switchboard_live_hints_total{outcome="skipped"}`: events the task
    /// had already read from the stream), and those handed to the task.
    pub live_hints_skipped: IntCounter,
    pub live_hints_to_task: IntCounter,
    pub webhook_deliveries: IntCounterVec,
    /// Issue 15, part C: failed bearer tokens (`rejected`) and requests refused while
    /// their address is throttled (`throttled`).
    pub login_failures: IntCounterVec,
    // ---- admission and memory (issue 15 part A) ----
    /// Connections and upgrades refused, by reason (`admission::Refusal`).
    pub admission_refused: IntCounterVec,
    /// Plain HTTP connections open (not upgraded to WebSocket).
    pub http_connections: IntGauge,
    /// WebSocket connections upgraded and still without their `hello`.
    pub upgrading: IntGauge,
    /// Bytes queued for all connections and not yet flushed to their sockets.
    pub send_queue_bytes: IntGauge,
    // abuse-b: flood control
    /// Requests refused by a flood limit, by what was limited and whose counter.
    pub flood_refusals: IntCounterVec,
    /// Chats that missed an SLA target, by topic and target (`wait`, `first_response`),
    /// counted once per ticket when it is counted in the reports.
    pub sla_breaches: IntCounterVec,
    /// Uploads by outcome (`stored`, `too_large`, `bad_type`, `forbidden`, `busy`,
    /// `failed`), and files deleted when their retention ended.
    pub attachment_uploads: IntCounterVec,
    pub attachments_deleted: IntCounter,
}

fn must<T>(result: prometheus::Result<T>) -> T {
    // Metric definitions are static; a failure here is a programming error caught by
    // the first test that starts a hub.
    result.expect("static metric definition")
}

impl Metrics {
    pub fn new() -> Self {
        Self::labelled(None)
    }

    /// Every metric of this node carries `node="<id>"`, so a deployment's scrapes add up.
    pub fn for_node(node_id: &str) -> Self {
        let labels = std::collections::HashMap::from([("node".to_string(), node_id.to_string())]);
        Self::labelled(Some(labels))
    }

    fn labelled(labels: Option<std::collections::HashMap<String, String>>) -> Self {
        let registry =
            Registry::new_custom(Some("switchboard".into()), labels).expect("static prefix");
        let connections = must(IntGaugeVec::new(
            Opts::new("connections", "Open WebSocket connections by role"),
            &["role"],
        ));
        let events_stored = must(IntCounter::new(
            "events_stored_total",
            "Conversation events stored in Redis",
        ));
        let acks = must(IntCounter::new("acks_total", "Acks sent"));
        let errors = must(IntCounterVec::new(
            Opts::new("errors_total", "Error frames sent, by code"),
            &["code"],
        ));
        let store_seconds = must(HistogramVec::new(
            HistogramOpts::new("store_seconds", "Redis round trip latency by operation").buckets(
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0,
                ],
            ),
            &["op"],
        ));
        let slow_reader_closes = must(IntCounter::new(
            "slow_reader_closes_total",
            "Connections closed because their send queue was full",
        ));
        let queue_waiting = must(IntGaugeVec::new(
            Opts::new(
                "queue_waiting",
                "Conversations waiting for an agent, by topic",
            ),
            &["topic"],
        ));
        let queue_wait_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "queue_wait_seconds",
                "Wait from start to the first join, by topic",
            )
            .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0]),
            &["topic"],
        ));
        let offers = must(IntCounterVec::new(
            Opts::new("offers_total", "Offers by outcome"),
            &["outcome"],
        ));
        let tickets = must(IntCounter::new("tickets_total", "Tickets flushed"));
        let ticket_flushes_read_back = must(IntCounter::new(
            "ticket_flushes_read_back_total",
            "Ticket flushes that read their conversation's events back from Redis",
        ));
        let ticket_flush_events_held = must(IntGauge::new(
            "ticket_flush_events_held",
            "Transcript events held in memory by ticket flushes now",
        ));
        let conversation_tasks = must(IntGauge::new(
            "conversation_tasks",
            "Conversation tasks running on this node",
        ));
        let live_hints = must(IntCounterVec::new(
            Opts::new(
                "live_hints_total",
                "Live-feed hints for conversation tasks, skipped whole or handed to the task",
            ),
            &["outcome"],
        ));
        let live_hints_skipped = live_hints.with_label_values(&["skipped"]);
        let live_hints_to_task = live_hints.with_label_values(&["to_task"]);
        let webhook_deliveries = must(IntCounterVec::new(
            Opts::new("webhook_deliveries_total", "Webhook attempts by outcome"),
            &["outcome"],
        ));
        let login_failures = must(IntCounterVec::new(
            Opts::new(
                "login_failures_total",
                "REST bearer tokens refused (rejected) and requests refused while throttled",
            ),
            &["outcome"],
        ));
        let admission_refused = must(IntCounterVec::new(
            Opts::new(
                "admission_refused_total",
                "Connections, upgrades and requests refused by admission, by reason",
            ),
            &["reason"],
        ));
        let http_connections = must(IntGauge::new(
            "http_connections",
            "Plain HTTP connections open (not upgraded)",
        ));
        let upgrading = must(IntGauge::new(
            "upgrading_connections",
            "WebSocket connections still waiting for their hello",
        ));
        let send_queue_bytes = must(IntGauge::new(
            "send_queue_bytes",
            "Bytes queued for all connections, not yet flushed",
        ));
        for collector in [
            Box::new(connections.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(events_stored.clone()),
            Box::new(acks.clone()),
            Box::new(errors.clone()),
            Box::new(store_seconds.clone()),
            Box::new(slow_reader_closes.clone()),
            Box::new(queue_waiting.clone()),
            Box::new(queue_wait_seconds.clone()),
            Box::new(offers.clone()),
            Box::new(tickets.clone()),
            Box::new(ticket_flush_events_held.clone()),
            Box::new(ticket_flushes_read_back.clone()),
            Box::new(conversation_tasks.clone()),
            Box::new(live_hints),
            Box::new(webhook_deliveries.clone()),
            Box::new(login_failures.clone()),
            Box::new(admission_refused.clone()),
            Box::new(http_connections.clone()),
            Box::new(upgrading.clone()),
            Box::new(send_queue_bytes.clone()),
        ] {
            must(registry.register(collector));
        }
        // abuse-b: flood control
        let flood_refusals = must(IntCounterVec::new(
            Opts::new(
                "flood_refusals_total",
                "Requests refused by a flood limit, by kind and scope",
            ),
            &["kind", "scope"],
        ));
        must(registry.register(Box::new(flood_refusals.clone())));
        let sla_breaches = must(IntCounterVec::new(
            Opts::new(
                "sla_breaches_total",
                "Chats that missed an SLA target, by topic and target",
            ),
            &["topic", "target"],
        ));
        must(registry.register(Box::new(sla_breaches.clone())));
        let attachment_uploads = must(IntCounterVec::new(
            Opts::new("attachment_uploads_total", "File uploads, by outcome"),
            &["outcome"],
        ));
        must(registry.register(Box::new(attachment_uploads.clone())));
        let attachments_deleted = must(IntCounter::with_opts(Opts::new(
            "attachments_deleted_total",
            "Uploaded files deleted when their conversation's retention ended",
        )));
        must(registry.register(Box::new(attachments_deleted.clone())));

        for role in ["customer", "agent"] {
            connections.with_label_values(&[role]).set(0);
        }
        Metrics {
            registry,
            connections,
            events_stored,
            acks,
            errors,
            store_seconds,
            slow_reader_closes,
            queue_waiting,
            queue_wait_seconds,
            offers,
            tickets,
            ticket_flush_events_held,
            ticket_flushes_read_back,
            conversation_tasks,
            live_hints_skipped,
            live_hints_to_task,
            webhook_deliveries,
            login_failures,
            admission_refused,
            http_connections,
            upgrading,
            send_queue_bytes,
            flood_refusals,
            sla_breaches,
            attachment_uploads,
            attachments_deleted,
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(cause = %err, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

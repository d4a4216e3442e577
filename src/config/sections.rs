//! The sections of the TOML file (`[limits]`, `[[topic]]`, `[router]`, `[webhook]`,
//! `[retention]`, `[auth]`, `[access]`, `[[canned_responses]]`, `[flood]`, `[identity]`),
//! each with its defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_text_bytes: usize,
    pub hello_timeout_ms: u64,
    pub messages_per_10s: u32,
    /// Frames queued for one connection before it counts as a slow reader and is closed.
    pub send_queue: usize,
    /// Bytes queued for one connection before the same (a frame larger than this still
    /// goes out alone). Counted until the writer has flushed them to the socket.
    pub send_queue_bytes: usize,
    pub ping_interval_ms: u64,
    /// Close a connection from which nothing (not even a pong) arrived for this long.
    pub idle_timeout_ms: u64,
    /// Upper bound on one Redis round trip before a request answers `unavailable`.
    pub store_timeout_ms: u64,
    /// Acknowledge a stored event only once at least one replica has it too (`WAIT 1`
    /// on the master that took the write, bounded by the store timeout; no replica in
    /// time: `unavailable`). For a Redis Cluster (or a replicated Redis) whose failover
    /// must not lose an acknowledged message. Off by default: one round trip more per
    /// append, and nothing to wait for on a lone Redis.
    pub replicated_acks: bool,
    pub history_limit_max: usize,
    // ---- admission and memory (issue 15 part A) ----
    /// Open WebSocket connections, all clients together; 0 (the default): sized from the
    /// file-descriptor limit (raised to its hard limit at start), see `admission`.
    pub max_connections: usize,
    /// Plain HTTP connections (not upgraded: pages, REST, health, handshakes in
    /// progress); 0 (the default): sized from the file-descriptor limit.
    pub max_http_connections: usize,
    /// WebSocket connections from one client address, and as many plain HTTP ones.
    pub max_connections_per_ip: usize,
    /// WebSocket connections upgraded but still without their `hello`.
    pub max_upgrading: usize,
    /// A client must send a request's whole header within this; also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// Bytes queued for all connections together; a push past it closes that reader
    /// with 1013 like the per-connection budget.
    pub send_queue_bytes_total: usize,
    /// How long a `history` request waits for the connection's earlier frames to reach
    /// the socket before the connection counts as a slow reader.
    pub history_drain_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_text_bytes: 8 * 1024,
            hello_timeout_ms: 10_000,
            messages_per_10s: 50,
            send_queue: 512,
            send_queue_bytes: 1024 * 1024,
            ping_interval_ms: 20_000,
            idle_timeout_ms: 60_000,
            store_timeout_ms: 3_000,
            replicated_acks: false,
            history_limit_max: 1_000,
            max_connections: 0,
            max_http_connections: 0,
            max_connections_per_ip: 128,
            max_upgrading: 1_024,
            header_read_timeout_ms: 5_000,
            send_queue_bytes_total: 256 * 1024 * 1024,
            history_drain_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expand {
    pub after_ms: u64,
    pub drop_skills: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub name: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "default_offer_timeout_ms")]
    pub offer_timeout_ms: u64,
    #[serde(default = "default_transfer_timeout_ms")]
    pub transfer_timeout_ms: u64,
    #[serde(default)]
    pub expand: Vec<Expand>,
    /// Added to the priority of a conversation escalated into this topic.
    #[serde(default)]
    pub escalation_priority_boost: i32,
    /// Chats that may wait in this topic's queue; past it `start` answers `unavailable`
    /// and the widget shows its offline form (abuse-b).
    #[serde(default = "default_max_waiting")]
    pub max_waiting: u32,
    /// After closing a chat of this topic the agent gets no new offers for this long
    /// (status `wrap_up`); 0: none.
    #[serde(default)]
    pub wrap_up_s: u64,
    /// Service-level targets reported on and watched live.
    #[serde(default)]
    pub sla: super::desk::SlaTargets,
    /// The survey after close: `csat` (1–5) or `nps` (0–10).
    #[serde(default)]
    pub survey: super::desk::SurveyKind,
    /// A customer still waiting this long is offered to leave a message instead
    /// (`leave_message`); 0: never.
    #[serde(default = "default_leave_message_after_s")]
    pub leave_message_after_s: u64,
    /// Business hours (issue 18); absent: always open. Outside them `start` answers
    /// `unavailable` with reason `closed`.
    #[serde(default)]
    pub hours: Option<crate::hours::HoursConfig>,
    /// `hours`, compiled once (`business_hours`).
    #[serde(skip)]
    pub compiled_hours: crate::hours::CompiledHours,
}

impl TopicConfig {
    /// The topic's checked business hours; `None` when it has none (always open) or
    /// when they do not compile (refused at start by `validate`). Compiled once.
    pub fn business_hours(&self) -> Option<&crate::hours::Hours> {
        self.compiled_hours
            .0
            .get_or_init(|| self.hours.as_ref().and_then(|h| h.compile().ok()))
            .as_ref()
    }
}

pub(super) fn default_leave_message_after_s() -> u64 {
    300
}

pub(super) fn default_max_waiting() -> u32 {
    200
}

pub(super) fn default_offer_timeout_ms() -> u64 {
    15_000
}
pub(super) fn default_transfer_timeout_ms() -> u64 {
    60_000
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSettings {
    /// Offers an agent may let expire in a row before it is set away.
    pub max_missed_offers: u32,
    /// How long an agent whose connections all dropped keeps its conversations.
    pub agent_grace_ms: u64,
    /// A conversation whose customer has been gone this long is closed as `abandoned`.
    pub customer_idle_timeout_ms: u64,
    /// Prior for the handle-time estimate behind `queue.eta_ms`.
    pub default_handle_ms: u64,
    /// An agent that declined a chat or let its offer expire may be offered it again
    /// after this long (when nobody else took it meanwhile).
    pub exclusion_cooldown_ms: u64,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            max_missed_offers: 2,
            agent_grace_ms: 60_000,
            customer_idle_timeout_ms: 600_000,
            default_handle_ms: 300_000,
            exclusion_cooldown_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// First retry delay; doubles on each failure (with jitter) up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A delivery still failing after this long goes to the dead-letter list.
    pub give_up_after_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            give_up_after_ms: 24 * 3600 * 1000,
            request_timeout_ms: 10_000,
        }
    }
}

/// How long Redis keeps what a finished chat leaves behind. Without it every
/// conversation and ticket stays forever (a 10-minute load test filled 7 GB).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// A closed conversation's keys live this long after its ticket is stored, so a
    /// customer who reloads the widget still sees the chat and can rate it. The ticket
    /// holds the whole transcript, so keeping these forever buys nothing: must be positive.
    pub closed_conversation_s: u64,
    /// Tickets (and their ticket-log entries) live this long; 0 keeps them forever. Also
    /// how long a visitor's sticky-routing hint outlives the last ticket it came from.
    pub ticket_s: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            closed_conversation_s: 86_400,
            ticket_s: 30 * 86_400,
        }
    }
}

/// Ten years: anything longer is taken for a unit mistake (milliseconds) rather than
/// a wish, and keeps every TTL far from overflowing when turned into milliseconds.
pub(super) const MAX_RETENTION_S: u64 = 10 * 365 * 86_400;

impl RetentionSettings {
    pub fn closed_conversation_ms(&self) -> u64 {
        self.closed_conversation_s.saturating_mul(1000)
    }

    /// `None`: tickets are kept forever.
    pub fn ticket_ms(&self) -> Option<u64> {
        (self.ticket_s > 0).then(|| self.ticket_s.saturating_mul(1000))
    }
}

/// `[[canned_responses]]`: seeds Redis once per deployment, when it holds none
/// (issue 18; `docs/protocol.md`); later changes go through `/v1/canned`. Checked by
/// the rules of `crate::canned` at start (a leading `/` of the shortcut is dropped).
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    pub shortcut: String,
    pub text: String,
    /// A topic of the config; absent: global.
    #[serde(default)]
    pub topic: Option<String>,
}

impl CannedResponse {
    /// The shortcut as stored: without the leading `/` older configs wrote.
    pub fn shortcut(&self) -> &str {
        self.shortcut.strip_prefix('/').unwrap_or(&self.shortcut)
    }
}

/// The seed obeys the REST API's rules: valid fields, known topics, one shortcut per
/// scope, at most `canned::MAX_RESPONSES`.
pub(super) fn validate_canned(
    canned: &[CannedResponse],
    topics: &[TopicConfig],
) -> Result<(), String> {
    use crate::canned;
    if canned.len() > canned::MAX_RESPONSES {
        return Err(format!(
            "at most {} canned_responses",
            canned::MAX_RESPONSES
        ));
    }
    let mut scopes = std::collections::HashSet::new();
    for entry in canned {
        let shortcut = entry.shortcut();
        let what = |e: String| format!("canned_responses {shortcut:?}: {e}");
        canned::check_shortcut(shortcut).map_err(what)?;
        canned::check_text(&entry.text).map_err(what)?;
        if let Some(topic) = &entry.topic {
            if !topics.iter().any(|t| &t.name == topic) {
                return Err(what(format!("no topic {topic:?}")));
            }
        }
        if !scopes.insert((entry.topic.as_deref(), shortcut)) {
            return Err(what("the shortcut is listed twice for one topic".into()));
        }
    }
    Ok(())
}

// --- [auth] (issue 15): throttled failed logins -------------------------------------

/// Failed bearer-token attempts on the REST API, per client address: after
/// `max_failures` within `failure_window_s`, every bearer request from that address is
/// answered 429 `rate_limited` until the window ends. Successful requests never count.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub max_failures: u32,
    pub failure_window_s: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            max_failures: 10,
            failure_window_s: 60,
        }
    }
}

/// The shortest admin token `serve` accepts (the `demo` command's is shorter on purpose).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
// ---- access (issue 15 part A): who may connect, and from where ----

/// `[access]`: which peers are trusted proxies and which origins may open WebSockets.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSettings {
    /// Peers (addresses or CIDR blocks, e.g. `"10.0.0.0/8"`) whose `X-Forwarded-For`
    /// is believed: the client is the rightmost address in it that is not itself a
    /// trusted proxy. Empty (the default): the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Origins (`https://shop.example`) whose pages may open the widget's socket
    /// (`/v1/customer/ws`). Empty (the default): any origin, and requests without one.
    pub allowed_origins: Vec<String>,
    /// Origins besides the hub's own (the `Host` it is reached at) that may open the
    /// agent console's socket (`/v1/agent/ws`). Requests without `Origin` (non-browser
    /// clients) are allowed: browsers always send it.
    pub console_origins: Vec<String>,
}

// --- [flood] and customer input limits (abuse-b) ---

/// One flood limit: at most `limit` hits in a fixed window of `window_s` seconds
/// (opened by the first hit).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FloodRule {
    pub limit: u32,
    pub window_s: u64,
}

impl FloodRule {
    pub const fn new(limit: u32, window_s: u64) -> Self {
        FloodRule { limit, window_s }
    }

    pub fn window_ms(&self) -> u64 {
        self.window_s.saturating_mul(1000)
    }
}

/// Flood control for the public widget endpoint: limits per client address and per
/// visitor that hold across reconnects (counted in Redis), and the lengths of what a
/// customer may send.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FloodSettings {
    /// Addresses no flood limit applies to (the tests, the load harness, a health
    /// checker on the same host). Loopback by default; see `docs/decisions.md`.
    pub exempt: Vec<std::net::IpAddr>,
    /// Hellos without a session (new visitors) from one address.
    pub new_visitors_per_address: FloodRule,
    /// `start` from one address.
    pub starts_per_address: FloodRule,
    /// `start` by one visitor, whatever connection it comes over.
    pub starts_per_visitor: FloodRule,
    /// `message` from one address.
    pub messages_per_address: FloodRule,
    /// `message` by one visitor, across all its connections and reconnects.
    pub messages_per_visitor: FloodRule,
    /// Customer `name` (hello, identity, offline message): characters.
    pub max_name_chars: usize,
    /// Customer `email`: characters.
    pub max_email_chars: usize,
    /// Identity `user_id`: characters.
    pub max_user_id_chars: usize,
    /// `start.metadata`: entries, key characters, characters of a value's JSON.
    pub max_metadata_entries: usize,
    pub max_metadata_key_chars: usize,
    pub max_metadata_value_chars: usize,
    /// `rate.comment`: characters.
    pub max_comment_chars: usize,
    /// `message.client_msg_id`: characters.
    pub max_client_msg_id_chars: usize,
    /// Tags a customer's `close` may set; any other tag a customer sends is dropped.
    pub customer_tags: Vec<String>,
}

impl Default for FloodSettings {
    fn default() -> Self {
        FloodSettings {
            exempt: vec![
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ],
            new_visitors_per_address: FloodRule::new(60, 60),
            starts_per_address: FloodRule::new(30, 60),
            starts_per_visitor: FloodRule::new(5, 600),
            messages_per_address: FloodRule::new(600, 60),
            messages_per_visitor: FloodRule::new(120, 60),
            max_name_chars: 100,
            max_email_chars: 254,
            max_user_id_chars: 128,
            max_metadata_entries: 20,
            max_metadata_key_chars: 64,
            max_metadata_value_chars: 512,
            max_comment_chars: 1000,
            max_client_msg_id_chars: 128,
            customer_tags: Vec::new(),
        }
    }
}

impl FloodSettings {
    /// Whether flood limits apply to a client at `address`.
    pub fn applies_to(&self, address: std::net::IpAddr) -> bool {
        !self.exempt.contains(&address)
    }
}

/// Customer sessions and identity signatures.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySettings {
    /// An extended identity (with `issued_at`) older than this is refused with 4401.
    pub identity_max_age_s: u64,
    /// A visitor session token is accepted this long after it was issued.
    pub session_lifetime_s: u64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            identity_max_age_s: 86_400,
            session_lifetime_s: 30 * 86_400,
        }
    }
}

/// `[flood]`, `[identity]` and `max_waiting`: every limit positive, windows within a day.
pub(super) fn validate_abuse_limits(
    flood: &FloodSettings,
    identity: &IdentitySettings,
    topics: &[TopicConfig],
) -> Result<(), String> {
    for (name, rule) in [
        ("new_visitors_per_address", flood.new_visitors_per_address),
        ("starts_per_address", flood.starts_per_address),
        ("starts_per_visitor", flood.starts_per_visitor),
        ("messages_per_address", flood.messages_per_address),
        ("messages_per_visitor", flood.messages_per_visitor),
    ] {
        if rule.limit == 0 || rule.window_s == 0 || rule.window_s > 86_400 {
            return Err(format!(
                "flood.{name}: limit must be positive and window_s 1 to 86400"
            ));
        }
    }
    if [
        flood.max_name_chars,
        flood.max_email_chars,
        flood.max_user_id_chars,
        flood.max_metadata_entries,
        flood.max_metadata_key_chars,
        flood.max_metadata_value_chars,
        flood.max_comment_chars,
        flood.max_client_msg_id_chars,
    ]
    .contains(&0)
    {
        return Err("flood: every max_* length must be positive".into());
    }
    if identity.identity_max_age_s == 0 || identity.session_lifetime_s == 0 {
        return Err("identity: identity_max_age_s and session_lifetime_s must be positive".into());
    }
    if let Some(topic) = topics.iter().find(|t| t.max_waiting == 0) {
        return Err(format!(
            "topic {}: max_waiting must be positive",
            topic.name
        ));
    }
    Ok(())
}

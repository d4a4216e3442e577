//! Configuration: command-line flags (each with an environment variable) plus the TOML
//! file, merged and validated once at start-up. Flags win over the file.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// A secret string whose `Debug` never prints it, so it cannot leak into logs.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Real-time live-chat and routing hub"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the hub.
    Serve(ServeArgs),
    /// Run the hub with a demo configuration, starting a private Redis if none is reachable.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Redis URL, the system of record.
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0"
    )]
    pub redis_url: String,
    /// TOML configuration file.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Admin bearer token for the HTTP API (overrides the file).
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// HMAC key for customer identity signatures (overrides the file).
    #[arg(long, env = "SWITCHBOARD_IDENTITY_SECRET", hide_env_values = true)]
    pub identity_secret: Option<String>,
    /// Ticket webhook URL (overrides the file).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Webhook signing secret (overrides the file).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// This node's name among several hubs sharing one Redis (webhook outbox consumer).
    #[arg(long, env = "SWITCHBOARD_NODE_ID", default_value = "hub")]
    pub node_id: String,
    /// Log filter, e.g. `info` or `switchboard=debug`.
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory for the private Redis's data when one has to be started.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Port of the private Redis when one has to be started.
    #[arg(long, default_value_t = 6390)]
    pub redis_port: u16,
}

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
    /// goes out alone).
    pub send_queue_bytes: usize,
    pub ping_interval_ms: u64,
    /// Close a connection from which nothing (not even a pong) arrived for this long.
    pub idle_timeout_ms: u64,
    /// Upper bound on one Redis round trip before a request answers `unavailable`.
    pub store_timeout_ms: u64,
    pub history_limit_max: usize,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_text_bytes: 8 * 1024,
            hello_timeout_ms: 10_000,
            messages_per_10s: 50,
            send_queue: 512,
            send_queue_bytes: 32 * 1024 * 1024,
            ping_interval_ms: 20_000,
            idle_timeout_ms: 60_000,
            store_timeout_ms: 3_000,
            history_limit_max: 1_000,
            max_connections: 100_000,
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
}

fn default_offer_timeout_ms() -> u64 {
    15_000
}
fn default_transfer_timeout_ms() -> u64 {
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
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            max_missed_offers: 2,
            agent_grace_ms: 60_000,
            customer_idle_timeout_ms: 600_000,
            default_handle_ms: 300_000,
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
const MAX_RETENTION_S: u64 = 10 * 365 * 86_400;

impl RetentionSettings {
    pub fn closed_conversation_ms(&self) -> u64 {
        self.closed_conversation_s.saturating_mul(1000)
    }

    /// `None`: tickets are kept forever.
    pub fn ticket_ms(&self) -> Option<u64> {
        (self.ticket_s > 0).then(|| self.ticket_s.saturating_mul(1000))
    }
}

/// The TOML file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    admin_token: Option<Secret>,
    identity_secret: Option<Secret>,
    webhook_url: Option<String>,
    webhook_secret: Option<Secret>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    topic: Vec<TopicConfig>,
    #[serde(default)]
    router: RouterSettings,
    #[serde(default)]
    webhook: WebhookSettings,
    #[serde(default)]
    retention: RetentionSettings,
    #[serde(default)]
    canned_responses: Vec<CannedResponse>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    pub shortcut: String,
    pub text: String,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub redis_url: String,
    pub node_id: String,
    pub admin_token: Secret,
    pub identity_secret: Option<Secret>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<Secret>,
    pub limits: Limits,
    pub topics: Vec<TopicConfig>,
    pub router: RouterSettings,
    pub webhook: WebhookSettings,
    pub retention: RetentionSettings,
    pub canned_responses: Vec<CannedResponse>,
    /// A test-only crash point (`SWITCHBOARD_FAILPOINT`), honoured only by builds with
    /// the `failpoints` feature; always `None` otherwise.
    pub failpoint: Option<String>,
}

/// The failpoint named in the environment, in builds that have failpoints.
fn failpoint_from_env() -> Option<String> {
    if cfg!(feature = "failpoints") {
        std::env::var("SWITCHBOARD_FAILPOINT").ok()
    } else {
        None
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            redis_url: "redis://127.0.0.1:6379/0".into(),
            node_id: "hub".into(),
            admin_token: Secret::new("admin"),
            identity_secret: None,
            webhook_url: None,
            webhook_secret: None,
            limits: Limits::default(),
            topics: vec![TopicConfig {
                name: "general".into(),
                default: true,
                skills: vec![],
                priority: 0,
                offer_timeout_ms: default_offer_timeout_ms(),
                transfer_timeout_ms: default_transfer_timeout_ms(),
                expand: vec![],
                escalation_priority_boost: 0,
            }],
            router: RouterSettings::default(),
            webhook: WebhookSettings::default(),
            retention: RetentionSettings::default(),
            canned_responses: vec![],
            failpoint: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("bad config file {path}: {cause}")]
    Parse { path: String, cause: String },
    #[error("bad config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads the file (if any), applies the flags over it and validates the result.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
                    path: path.display().to_string(),
                    cause,
                })?;
                Self::parse_file(&text).map_err(|cause| ConfigError::Parse {
                    path: path.display().to_string(),
                    cause,
                })?
            }
            None => FileConfig::default(),
        };
        let defaults = Config::default();
        let config = Config {
            redis_url: args.redis_url.clone(),
            node_id: args.node_id.clone(),
            admin_token: args
                .admin_token
                .clone()
                .map(Secret::new)
                .or(file.admin_token)
                .unwrap_or_default(),
            identity_secret: args
                .identity_secret
                .clone()
                .map(Secret::new)
                .or(file.identity_secret),
            webhook_url: args.webhook_url.clone().or(file.webhook_url),
            webhook_secret: args
                .webhook_secret
                .clone()
                .map(Secret::new)
                .or(file.webhook_secret),
            limits: file.limits,
            topics: if file.topic.is_empty() {
                defaults.topics
            } else {
                file.topic
            },
            router: file.router,
            webhook: file.webhook,
            retention: file.retention,
            canned_responses: file.canned_responses,
            failpoint: failpoint_from_env(),
        };
        config.validate()?;
        Ok(config)
    }

    fn parse_file(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|err| err.message().to_string())
    }

    /// Parses a TOML text as the config file with no flags (tests and the demo use it).
    pub fn from_toml(text: &str, redis_url: &str) -> Result<Config, ConfigError> {
        let file = Self::parse_file(text).map_err(|cause| ConfigError::Parse {
            path: "<inline>".into(),
            cause,
        })?;
        let mut config = Config {
            redis_url: redis_url.to_string(),
            node_id: "hub".into(),
            admin_token: file.admin_token.unwrap_or_default(),
            identity_secret: file.identity_secret,
            webhook_url: file.webhook_url,
            webhook_secret: file.webhook_secret,
            limits: file.limits,
            topics: file.topic,
            router: file.router,
            webhook: file.webhook,
            retention: file.retention,
            canned_responses: file.canned_responses,
            failpoint: failpoint_from_env(),
        };
        if config.topics.is_empty() {
            config.topics = Config::default().topics;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.admin_token.is_empty() {
            return invalid(
                "admin_token is required (file, --admin-token or SWITCHBOARD_ADMIN_TOKEN)".into(),
            );
        }
        if self.webhook_url.is_some() && self.webhook_secret.as_ref().is_none_or(Secret::is_empty) {
            return invalid("webhook_url needs a webhook_secret to sign deliveries".into());
        }
        let limits = &self.limits;
        if limits.max_frame_bytes < 1024 || limits.max_text_bytes == 0 {
            return invalid(
                "limits.max_frame_bytes must be at least 1024 and max_text_bytes positive".into(),
            );
        }
        if limits.hello_timeout_ms == 0
            || limits.messages_per_10s == 0
            || limits.send_queue < 8
            || limits.send_queue_bytes < 64 * 1024
            || limits.ping_interval_ms == 0
            || limits.idle_timeout_ms <= limits.ping_interval_ms
            || limits.store_timeout_ms == 0
            || limits.history_limit_max == 0
            || limits.max_connections == 0
        {
            return invalid("limits: timeouts and counts must be positive, send_queue at least 8, send_queue_bytes at least 65536, idle_timeout_ms above ping_interval_ms".into());
        }
        let retention = &self.retention;
        if retention.closed_conversation_s == 0 {
            return invalid("retention.closed_conversation_s must be positive (the ticket keeps the transcript; raise it to keep closed chats longer)".into());
        }
        if retention.closed_conversation_s > MAX_RETENTION_S || retention.ticket_s > MAX_RETENTION_S
        {
            return invalid(format!(
                "retention: values are seconds, at most {MAX_RETENTION_S} (ten years)"
            ));
        }
        if retention.ticket_s > 0 && retention.ticket_s < retention.closed_conversation_s {
            return invalid("retention.ticket_s must be 0 (forever) or at least closed_conversation_s: a late rating updates the ticket".into());
        }
        if let (Some(_), Some(ticket_ms)) = (&self.webhook_url, retention.ticket_ms()) {
            if ticket_ms < self.webhook.give_up_after_ms {
                return invalid("retention.ticket_s must be 0 (forever) or cover webhook.give_up_after_ms: a ticket must outlive its delivery attempts".into());
            }
        }
        if self.topics.is_empty() {
            return invalid("at least one [[topic]] is needed".into());
        }
        let mut names = std::collections::HashSet::new();
        for topic in &self.topics {
            if topic.name.is_empty() || !names.insert(topic.name.as_str()) {
                return invalid(format!(
                    "topic names must be non-empty and unique: {:?}",
                    topic.name
                ));
            }
            if topic.offer_timeout_ms == 0 || topic.transfer_timeout_ms == 0 {
                return invalid(format!("topic {}: timeouts must be positive", topic.name));
            }
            for step in &topic.expand {
                if let Some(skill) = step.drop_skills.iter().find(|s| !topic.skills.contains(s)) {
                    return invalid(format!(
                        "topic {}: expand drops skill {skill:?} which the topic does not require",
                        topic.name
                    ));
                }
            }
        }
        if self.topics.iter().filter(|t| t.default).count() > 1 {
            return invalid("only one topic may be the default".into());
        }
        Ok(())
    }

    /// The topic used when a `start` names none or an unknown one.
    pub fn default_topic(&self) -> &TopicConfig {
        self.topics
            .iter()
            .find(|t| t.default)
            .unwrap_or(&self.topics[0])
    }

    pub fn topic(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.iter().find(|t| t.name == name)
    }

    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.hello_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_EXAMPLE: &str = r#"
admin_token = "s3cret-admin"
identity_secret = "site-secret"
webhook_url = "http://127.0.0.1:19000/tickets"
webhook_secret = "hook-secret"

[limits]
max_frame_bytes = 65536
max_text_bytes = 8192
hello_timeout_ms = 10000
messages_per_10s = 50

[[topic]]
name = "general"
default = true
skills = []
priority = 0
offer_timeout_ms = 15000
transfer_timeout_ms = 60000

[[topic]]
name = "billing_fr"
skills = ["billing", "fr"]
priority = 5
expand = [{ after_ms = 30000, drop_skills = ["fr"] }]
"#;

    #[test]
    fn contract_example_parses() {
        let config = Config::from_toml(CONTRACT_EXAMPLE, "redis://x").expect("valid");
        assert_eq!(config.topics.len(), 2);
        assert_eq!(config.default_topic().name, "general");
        assert_eq!(config.topic("billing_fr").map(|t| t.priority), Some(5));
        assert_eq!(format!("{:?}", config.admin_token), "Secret(***)");
    }

    #[test]
    fn unknown_keys_and_bad_expands_are_refused() {
        assert!(Config::from_toml("admin_token = \"a\"\nbogus = 1", "redis://x").is_err());
        let bad = "admin_token = \"a\"\n[[topic]]\nname = \"x\"\nskills = [\"a\"]\nexpand = [{ after_ms = 1, drop_skills = [\"b\"] }]";
        assert!(Config::from_toml(bad, "redis://x").is_err());
        assert!(
            Config::from_toml("", "redis://x").is_err(),
            "admin token required"
        );
    }

    fn with_retention(extra: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&format!("admin_token = \"a\"\n{extra}"), "redis://x")
    }

    #[test]
    fn retention_defaults_to_a_day_and_thirty_days() {
        let config = with_retention("").expect("valid");
        assert_eq!(config.retention, RetentionSettings::default());
        assert_eq!(config.retention.closed_conversation_ms(), 86_400_000);
        assert_eq!(config.retention.ticket_ms(), Some(30 * 86_400_000));
    }

    #[test]
    fn retention_is_read_and_zero_keeps_tickets_forever() {
        let config =
            with_retention("[retention]\nclosed_conversation_s = 60\nticket_s = 0").expect("valid");
        assert_eq!(config.retention.closed_conversation_s, 60);
        assert_eq!(config.retention.ticket_ms(), None);
        let config = with_retention("[retention]\nticket_s = 86400").expect("valid");
        assert_eq!(
            config.retention.closed_conversation_s, 86_400,
            "default kept"
        );
        assert_eq!(config.retention.ticket_ms(), Some(86_400_000));
    }

    #[test]
    fn bad_retention_is_refused() {
        for (toml, why) in [
            (
                "[retention]\nclosed_conversation_s = 0",
                "closed chats kept forever",
            ),
            (
                "[retention]\nclosed_conversation_s = 600\nticket_s = 60",
                "ticket before chat",
            ),
            ("[retention]\nticket_s = 999999999999", "unit mistake"),
            ("[retention]\nticket_s = -1", "negative"),
            ("[retention]\nticket_days = 3", "unknown key"),
        ] {
            assert!(with_retention(toml).is_err(), "{why}: {toml}");
        }
    }

    #[test]
    fn tickets_must_outlive_webhook_retries() {
        let webhook = "webhook_url = \"http://h/t\"\nwebhook_secret = \"s\"\n";
        let short = "[retention]\nclosed_conversation_s = 60\nticket_s = 3600";
        assert!(
            with_retention(short).is_ok(),
            "no webhook: nothing to outlive"
        );
        let err = with_retention(&format!("{webhook}{short}")).expect_err("below give_up_after_ms");
        assert!(err.to_string().contains("give_up_after_ms"), "{err}");
        let forever = "[retention]\nticket_s = 0";
        assert!(with_retention(&format!("{webhook}{forever}")).is_ok());
    }
}

//! Configuration: command-line flags (each with an environment variable) plus the TOML
//! file, merged and validated once at start-up. Flags win over the file.
//!
//! - `cli` — the flags; `sections` — the file's sections and their defaults;
//! - this file — the merged [`Config`], its validation, and masked secrets.

mod cli;
mod sections;

use std::time::Duration;

use serde::Deserialize;

use self::sections::{
    default_max_waiting, default_offer_timeout_ms, default_transfer_timeout_ms, MAX_RETENTION_S,
};
pub use self::{
    cli::{Cli, CliCommand, DemoArgs, ServeArgs},
    sections::{
        CannedResponse, Expand, FloodRule, FloodSettings, IdentitySettings, Limits,
        RetentionSettings, RouterSettings, TopicConfig, WebhookSettings,
    },
};

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
    #[serde(default)]
    flood: FloodSettings,
    #[serde(default)]
    identity: IdentitySettings,
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
    /// Flood control and customer input limits.
    pub flood: FloodSettings,
    /// Identity signature age and session lifetime.
    pub identity: IdentitySettings,
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
                max_waiting: default_max_waiting(),
            }],
            router: RouterSettings::default(),
            webhook: WebhookSettings::default(),
            retention: RetentionSettings::default(),
            canned_responses: vec![],
            flood: FloodSettings::default(),
            identity: IdentitySettings::default(),
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
            flood: file.flood,
            identity: file.identity,
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
            flood: file.flood,
            identity: file.identity,
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
        sections::validate_abuse_limits(&self.flood, &self.identity, &self.topics)
            .map_err(ConfigError::Invalid)?;
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

    // abuse-b: [flood], [identity], max_waiting
    #[test]
    fn flood_identity_and_queue_caps_have_defaults_and_are_checked() {
        let config = with_retention("").expect("valid");
        assert_eq!(config.flood, FloodSettings::default());
        assert!(!config.flood.applies_to("127.0.0.1".parse().expect("ip")));
        assert!(config.flood.applies_to("127.0.0.2".parse().expect("ip")));
        assert_eq!(config.default_topic().max_waiting, 200);
        assert_eq!(config.identity.session_lifetime_s, 30 * 86_400);
        let config = with_retention(
            "[flood]\nexempt = []\nstarts_per_visitor = { limit = 2, window_s = 60 }\ncustomer_tags = [\"resolved\"]\n[identity]\nidentity_max_age_s = 600",
        )
        .expect("valid");
        assert!(config.flood.applies_to("127.0.0.1".parse().expect("ip")));
        assert_eq!(config.flood.starts_per_visitor, FloodRule::new(2, 60));
        assert_eq!(config.identity.identity_max_age_s, 600);
        let config = with_retention("[flood]\nexempt = [\"127.0.0.9\", \"::1\"]").expect("valid");
        assert!(!config.flood.applies_to("127.0.0.9".parse().expect("ip")));
        assert!(config.flood.applies_to("127.0.0.1".parse().expect("ip")));
        for (toml, why) in [
            (
                "[flood]\nstarts_per_visitor = { limit = 0, window_s = 60 }",
                "zero limit",
            ),
            (
                "[flood]\nmessages_per_address = { limit = 5, window_s = 0 }",
                "zero window",
            ),
            ("[flood]\nmax_name_chars = 0", "zero length"),
            ("[flood]\nbogus = 1", "unknown key"),
            (
                "[identity]\nsession_lifetime_s = 0",
                "sessions that never last",
            ),
            (
                "[[topic]]\nname = \"g\"\nmax_waiting = 0",
                "a queue nobody may enter",
            ),
        ] {
            assert!(with_retention(toml).is_err(), "{why}: {toml}");
        }
    }
}

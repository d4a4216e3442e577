//! Configuration: command-line flags (each with an environment variable) plus the TOML
//! file, merged and validated once at start-up. Flags win over the file.
//!
//! - `cli` — the flags; `sections` — the file's sections and their defaults;
//! - this file — the merged [`Config`], its validation, and masked secrets.

mod attachments;
mod cli;
mod desk;
mod sections;

use std::time::Duration;

use serde::Deserialize;

use self::sections::{
    default_leave_message_after_s, default_max_waiting, default_offer_timeout_ms,
    default_transfer_timeout_ms, MAX_RETENTION_S,
};
pub use self::{
    attachments::{AttachmentSettings, ObjectStoreSettings, INLINE_TYPES},
    cli::{Cli, CliCommand, DemoArgs, ServeArgs, SimulateArgs},
    desk::{AgentSettings, ReportSettings, SlaMark, SlaMarks, SlaState, SlaTargets, SurveyKind},
    sections::{
        AccessSettings, AuthSettings, CannedResponse, Expand, FloodRule, FloodSettings,
        IdentitySettings, Limits, RetentionSettings, RouterSettings, TopicConfig, WebhookSettings,
        MIN_ADMIN_TOKEN_CHARS,
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

// --- Webhook URL (issue 15): its query string is often a secret ----------------------

/// The webhook URL. Its query string (often a token) never reaches a log: `Debug` and
/// `Display` print it redacted; only [`WebhookUrl::expose`] gives the whole URL.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn new(value: impl Into<String>) -> Self {
        WebhookUrl(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with its query string (and any user info) replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// `url` with the query string and user info masked, for logs.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, _) = url.split_once('#').unwrap_or((url, ""));
    let mut out = match before_fragment.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => before_fragment.to_string(),
    };
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            out = format!("{}***@{}", &out[..scheme_end + 3], &rest[at + 1..]);
        }
    }
    out
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookUrl({:?})", self.redacted())
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// An address or CIDR block (`10.0.0.0/8`, `::1`), for `access.trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr: std::net::IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The TOML file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    admin_token: Option<Secret>,
    identity_secret: Option<Secret>,
    webhook_url: Option<WebhookUrl>,
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
    auth: AuthSettings,
    #[serde(default)]
    access: AccessSettings,
    #[serde(default)]
    flood: FloodSettings,
    #[serde(default)]
    identity: IdentitySettings,
    #[serde(default)]
    agents: AgentSettings,
    #[serde(default)]
    reports: ReportSettings,
    #[serde(default)]
    attachments: AttachmentSettings,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub redis_url: String,
    pub node_id: String,
    pub admin_token: Secret,
    pub identity_secret: Option<Secret>,
    pub webhook_url: Option<WebhookUrl>,
    pub webhook_secret: Option<Secret>,
    pub limits: Limits,
    pub topics: Vec<TopicConfig>,
    pub router: RouterSettings,
    pub webhook: WebhookSettings,
    pub retention: RetentionSettings,
    pub canned_responses: Vec<CannedResponse>,
    pub auth: AuthSettings,
    /// `[access]`: trusted proxies and origin allowlists.
    pub access: AccessSettings,
    /// Flood control and customer input limits.
    pub flood: FloodSettings,
    /// Identity signature age and session lifetime.
    pub identity: IdentitySettings,
    /// `[agents]`: away reasons. `[reports]`: how long aggregates are kept.
    pub agents: AgentSettings,
    pub reports: ReportSettings,
    /// `[attachments]`: the object store and upload limits.
    pub attachments: AttachmentSettings,
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
            node_id: cli::random_node_id(),
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
                wrap_up_s: 0,
                sla: SlaTargets::default(),
                survey: SurveyKind::Csat,
                leave_message_after_s: default_leave_message_after_s(),
                hours: None,
                compiled_hours: Default::default(),
            }],
            router: RouterSettings::default(),
            webhook: WebhookSettings::default(),
            retention: RetentionSettings::default(),
            canned_responses: vec![],
            auth: AuthSettings::default(),
            access: AccessSettings::default(),
            flood: FloodSettings::default(),
            identity: IdentitySettings::default(),
            agents: AgentSettings::default(),
            reports: ReportSettings::default(),
            attachments: AttachmentSettings::default(),
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
            node_id: args.node_id.clone().unwrap_or_else(cli::random_node_id),
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
            webhook_url: args
                .webhook_url
                .clone()
                .map(WebhookUrl::new)
                .or(file.webhook_url),
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
            auth: file.auth,
            access: file.access,
            flood: file.flood,
            identity: file.identity,
            agents: file.agents,
            reports: file.reports,
            attachments: file.attachments,
            failpoint: failpoint_from_env(),
        };
        config.validate()?;
        // `serve` only: the `demo` command (built with `from_toml`) has a short one.
        if config.admin_token.expose().chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(ConfigError::Invalid(format!(
                "admin_token must be at least {MIN_ADMIN_TOKEN_CHARS} characters"
            )));
        }
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
            node_id: cli::random_node_id(),
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
            auth: file.auth,
            access: file.access,
            flood: file.flood,
            identity: file.identity,
            agents: file.agents,
            reports: file.reports,
            attachments: file.attachments,
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
        if let Some(url) = &self.webhook_url {
            let parsed = reqwest::Url::parse(url.expose());
            if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return invalid(format!("webhook_url is not an http(s) URL: {url}"));
            }
        }
        if self.auth.max_failures == 0 || self.auth.failure_window_s == 0 {
            return invalid("auth.max_failures and auth.failure_window_s must be positive".into());
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
        {
            return invalid("limits: timeouts and counts must be positive, send_queue at least 8, send_queue_bytes at least 65536, idle_timeout_ms above ping_interval_ms".into());
        }
        self.validate_admission()?;
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
        desk::validate_topics(&self.topics, &self.agents, &self.reports)
            .map_err(ConfigError::Invalid)?;
        sections::validate_abuse_limits(&self.flood, &self.identity, &self.topics)
            .map_err(ConfigError::Invalid)?;
        sections::validate_canned(&self.canned_responses, &self.topics)
            .map_err(ConfigError::Invalid)?;
        self.attachments.validate().map_err(ConfigError::Invalid)?;
        if self.topics.iter().filter(|t| t.default).count() > 1 {
            return invalid("only one topic may be the default".into());
        }
        Ok(())
    }

    // ---- admission and access (issue 15 part A) ----
    fn validate_admission(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let limits = &self.limits;
        if limits.max_connections_per_ip == 0
            || limits.max_upgrading == 0
            || limits.header_read_timeout_ms == 0
            || limits.history_drain_timeout_ms == 0
        {
            return invalid("limits: max_connections_per_ip, max_upgrading, header_read_timeout_ms and history_drain_timeout_ms must be positive".into());
        }
        if limits.send_queue_bytes_total < limits.send_queue_bytes {
            return invalid(
                "limits.send_queue_bytes_total must be at least send_queue_bytes".into(),
            );
        }
        for proxy in &self.access.trusted_proxies {
            if crate::config::IpNet::parse(proxy).is_none() {
                return invalid(format!(
                    "access.trusted_proxies: {proxy:?} is not an address or CIDR block"
                ));
            }
        }
        for origin in self
            .access
            .allowed_origins
            .iter()
            .chain(&self.access.console_origins)
        {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/');
            if !ok {
                return invalid(format!(
                    "access: origin {origin:?} must look like https://host[:port], no path"
                ));
            }
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
mod tests;

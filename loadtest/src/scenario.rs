//! The load shape: how many customers and agents, what they send and how fast, for how
//! long. Read from a TOML file (`--scenario`), then overridden by flags, then validated
//! once. It owns the shape, not the running of it.
//!
//! ```toml
//! customers = 200
//! agents = 50
//! capacity = 4
//! messages = 20          # per chat, after the opening text of `start`
//! rate = 2.0             # messages/s per customer; 0 = closed loop (next after the reply)
//! total_rate = 0         # if > 0: messages/s over the run, both ways; sets `rate`
//! message_size = 64      # bytes of text
//! duration_s = 60        # 0 = every customer has one chat; else chats repeat until then
//! ramp_up_s = 5
//! think_ms = 50          # agent think time before each reply
//! transfer_ratio = 0.1   # share of chats the agent hands off mid-chat
//! reconnect_ratio = 0.1  # share of chats whose customer drops and resumes mid-chat
//! echo = false           # true: clients get their own messages' events (the contract's default)
//!
//! [[topic]]
//! name = "general"
//! weight = 3
//!
//! [[topic]]
//! name = "billing"
//! weight = 1
//! skills = ["billing"]   # given to every agent, so any agent can take any topic
//! ```

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

/// A topic of the mix; it must exist in the hub's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicMix {
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
    /// Skills the hub's topic requires; every simulated agent is given them.
    #[serde(default)]
    pub skills: Vec<String>,
}

fn one() -> u32 {
    1
}

/// Where an agent hands a conversation off to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TransferTo {
    /// `to_topic`: the conversation's own topic (the router picks another agent).
    Topic,
    /// `to_agent`: the next simulated agent by index.
    Agent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    pub customers: usize,
    pub agents: usize,
    /// Concurrent conversations per agent.
    pub capacity: u32,
    /// Messages per chat after the opening text.
    pub messages: u32,
    /// Messages per second per customer; 0 is closed loop.
    pub rate: f64,
    /// When positive, replaces `rate`: the messages/s delivered over the whole run, both
    /// directions together (each customer message gets a reply), i.e.
    /// `rate = total_rate / (2 × customers)`.
    pub total_rate: f64,
    /// Most unanswered messages a customer has in flight; 0 picks 1 for a closed loop
    /// and 16 otherwise.
    pub window: u32,
    pub message_size: usize,
    pub duration_s: f64,
    pub ramp_up_s: f64,
    pub think_ms: u64,
    pub transfer_ratio: f64,
    pub transfer_to: TransferTo,
    pub reconnect_ratio: f64,
    /// Whether clients leave `echo` on in `hello` and get their own messages' events
    /// back. Off by default (issue 19): the ack stands for them, as in the widget and
    /// the console, and a message costs the hub one frame less.
    pub echo: bool,
    #[serde(rename = "topic")]
    pub topics: Vec<TopicMix>,
    /// How long a customer waits for an agent to join before giving up on the chat.
    pub join_timeout_ms: u64,
    /// How long a customer waits for the last replies before closing anyway.
    pub reply_timeout_ms: u64,
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            customers: 20,
            agents: 5,
            capacity: 4,
            messages: 10,
            rate: 1.0,
            total_rate: 0.0,
            window: 0,
            message_size: 64,
            duration_s: 0.0,
            ramp_up_s: 1.0,
            think_ms: 100,
            transfer_ratio: 0.0,
            transfer_to: TransferTo::Topic,
            reconnect_ratio: 0.0,
            echo: false,
            topics: vec![TopicMix {
                name: "general".into(),
                weight: 1,
                skills: vec![],
            }],
            join_timeout_ms: 30_000,
            reply_timeout_ms: 10_000,
            seed: 1,
        }
    }
}

/// Scenario flags; each overrides the file's value when given.
#[derive(Debug, Clone, Default, Args)]
pub struct ScenarioArgs {
    /// TOML scenario file (flags override its values).
    #[arg(long)]
    pub scenario: Option<std::path::PathBuf>,
    /// Simulated customers (concurrent chats).
    #[arg(long)]
    pub customers: Option<usize>,
    /// Simulated agents.
    #[arg(long)]
    pub agents: Option<usize>,
    /// Concurrent conversations per agent.
    #[arg(long)]
    pub capacity: Option<u32>,
    /// Messages per chat after the opening text.
    #[arg(long)]
    pub messages: Option<u32>,
    /// Messages per second per customer (0 = closed loop: next message after the reply).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Target messages/s delivered in total, both directions (sets the per-customer rate).
    #[arg(long)]
    pub total_rate: Option<f64>,
    /// Most unanswered messages in flight per customer (0 = 1 closed loop, 16 otherwise).
    #[arg(long)]
    pub window: Option<u32>,
    /// Bytes of text per message.
    #[arg(long)]
    pub message_size: Option<usize>,
    /// Seconds the load lasts (0 = one chat per customer).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds over which customers start.
    #[arg(long)]
    pub ramp_up: Option<f64>,
    /// Agent think time before each reply, in ms.
    #[arg(long)]
    pub think_ms: Option<u64>,
    /// Share of chats the agent transfers mid-chat (0..1).
    #[arg(long)]
    pub transfer_ratio: Option<f64>,
    /// Transfer to the conversation's topic or to another simulated agent.
    #[arg(long, value_enum)]
    pub transfer_to: Option<TransferTo>,
    /// Share of chats whose customer drops the socket mid-chat and resumes (0..1).
    #[arg(long)]
    pub reconnect_ratio: Option<f64>,
    /// Clients keep the contract's echo: each gets its own messages' events besides the
    /// acks (by default they say `echo: false` in `hello`).
    #[arg(long)]
    pub echo: bool,
    /// Topic of the mix as NAME[:WEIGHT[:SKILL+SKILL…]], repeatable (replaces the file's).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// How long a customer waits for an agent, in ms.
    #[arg(long)]
    pub join_timeout_ms: Option<u64>,
    /// How long a customer waits for its last replies, in ms.
    #[arg(long)]
    pub reply_timeout_ms: Option<u64>,
    /// Seed of the per-client random choices (topics, transfers, reconnects).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Parses `NAME[:WEIGHT[:SKILL+SKILL…]]`.
pub fn parse_topic(spec: &str) -> anyhow::Result<TopicMix> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() {
        bail!("--topic {spec:?}: the name is empty");
    }
    let weight = match parts.next() {
        None | Some("") => 1,
        Some(w) => w
            .parse()
            .with_context(|| format!("--topic {spec:?}: weight {w:?} is not a whole number"))?,
    };
    let skills = match parts.next() {
        None | Some("") => vec![],
        Some(s) => s.split('+').map(str::to_string).collect(),
    };
    if parts.next().is_some() {
        bail!("--topic {spec:?}: expected NAME[:WEIGHT[:SKILL+SKILL]]");
    }
    Ok(TopicMix {
        name: name.to_string(),
        weight,
        skills,
    })
}

impl Scenario {
    pub fn from_toml(text: &str) -> anyhow::Result<Scenario> {
        toml::from_str(text).map_err(|err| anyhow::anyhow!("bad scenario: {}", err.message()))
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        Scenario::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The file (if any) overridden by the flags, validated.
    pub fn from_args(args: &ScenarioArgs) -> anyhow::Result<Scenario> {
        let mut s = match &args.scenario {
            Some(path) => Scenario::from_file(path)?,
            None => Scenario::default(),
        };
        macro_rules! set {
            ($($field:ident <- $arg:ident),* $(,)?) => {
                $(if let Some(v) = args.$arg { s.$field = v; })*
            };
        }
        set!(
            customers <- customers,
            agents <- agents,
            capacity <- capacity,
            messages <- messages,
            rate <- rate,
            total_rate <- total_rate,
            window <- window,
            message_size <- message_size,
            duration_s <- duration,
            ramp_up_s <- ramp_up,
            think_ms <- think_ms,
            transfer_ratio <- transfer_ratio,
            transfer_to <- transfer_to,
            reconnect_ratio <- reconnect_ratio,
            join_timeout_ms <- join_timeout_ms,
            reply_timeout_ms <- reply_timeout_ms,
            seed <- seed,
        );
        if args.echo {
            s.echo = true;
        }
        if !args.topics.is_empty() {
            s.topics = args
                .topics
                .iter()
                .map(|t| parse_topic(t))
                .collect::<anyhow::Result<_>>()?;
        }
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.customers == 0 {
            bail!("customers must be at least 1");
        }
        if self.agents == 0 || self.capacity == 0 {
            bail!("agents and capacity must be at least 1");
        }
        let finite = [
            self.rate,
            self.total_rate,
            self.duration_s,
            self.ramp_up_s,
            self.transfer_ratio,
            self.reconnect_ratio,
        ];
        if finite.iter().any(|v| !v.is_finite() || *v < 0.0) {
            bail!("rate, duration, ramp-up and ratios must be finite and not negative");
        }
        if self.transfer_ratio > 1.0 || self.reconnect_ratio > 1.0 {
            bail!("transfer_ratio and reconnect_ratio are shares between 0 and 1");
        }
        if (self.transfer_ratio > 0.0 || self.reconnect_ratio > 0.0) && self.messages < 2 {
            bail!("transfers and reconnects happen mid-chat: messages must be at least 2");
        }
        if self.transfer_ratio > 0.0 && self.transfer_to == TransferTo::Agent && self.agents < 2 {
            bail!("transfers to an agent need at least 2 agents");
        }
        if self.topics.is_empty() || self.topics.iter().all(|t| t.weight == 0) {
            bail!("at least one topic with a positive weight is needed");
        }
        if self.message_size > 8 * 1024 {
            bail!("message_size above the hub's default text limit (8 KiB) would be refused");
        }
        if self.join_timeout_ms == 0 || self.reply_timeout_ms == 0 {
            bail!("timeouts must be positive");
        }
        Ok(())
    }

    /// Messages per second per customer (0 = closed loop), `total_rate` applied.
    pub fn effective_rate(&self) -> f64 {
        if self.total_rate > 0.0 {
            self.total_rate / (2.0 * self.customers.max(1) as f64)
        } else {
            self.rate
        }
    }

    /// The unanswered-message window a customer uses.
    pub fn effective_window(&self) -> u32 {
        match (self.window, self.effective_rate() > 0.0) {
            (0, false) => 1,
            (0, true) => 16,
            (w, _) => w,
        }
    }

    /// Time between two messages of one customer (zero in a closed loop).
    pub fn interval(&self) -> Duration {
        let rate = self.effective_rate();
        if rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        (self.duration_s > 0.0).then(|| Duration::from_secs_f64(self.duration_s))
    }

    /// When customer `index` starts, from the start of the load.
    pub fn start_offset(&self, index: usize) -> Duration {
        if self.customers <= 1 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.ramp_up_s * index as f64 / self.customers as f64)
    }

    /// The skills every agent gets: all that any topic of the mix requires, at level 5.
    pub fn agent_skills(&self) -> BTreeMap<String, u32> {
        self.topics
            .iter()
            .flat_map(|t| t.skills.iter())
            .map(|s| (s.clone(), 5))
            .collect()
    }

    /// Picks a topic by weight from a uniform draw in `[0, 1)`.
    pub fn pick_topic(&self, draw: f64) -> &str {
        let total: u64 = self.topics.iter().map(|t| u64::from(t.weight)).sum();
        let mut target = (draw.clamp(0.0, 1.0) * total as f64) as u64;
        for topic in &self.topics {
            let w = u64::from(topic.weight);
            if target < w {
                return &topic.name;
            }
            target -= w;
        }
        self.topics
            .iter()
            .rev()
            .find(|t| t.weight > 0)
            .map_or("general", |t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags() {
        let dir = std::env::temp_dir().join(format!("sb-lt-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("s.toml");
        std::fs::write(
            &path,
            "customers = 7\nrate = 0\n[[topic]]\nname = \"billing\"\nskills = [\"billing\"]\n",
        )
        .expect("write");
        let args = ScenarioArgs {
            scenario: Some(path),
            agents: Some(3),
            ..ScenarioArgs::default()
        };
        let s = Scenario::from_args(&args).expect("valid");
        assert_eq!((s.customers, s.agents, s.rate), (7, 3, 0.0));
        assert_eq!(s.effective_window(), 1);
        assert_eq!(s.interval(), Duration::ZERO);
        assert_eq!(s.agent_skills().get("billing"), Some(&5));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Scenario::from_toml("customerz = 1").is_err());
        let bad = Scenario {
            reconnect_ratio: 1.5,
            ..Scenario::default()
        };
        assert!(bad.validate().is_err());
        let bad = Scenario {
            rate: f64::NAN,
            ..Scenario::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn topic_specs_and_weights() {
        let t = parse_topic("billing_fr:3:billing+fr").expect("valid");
        assert_eq!(t.weight, 3);
        assert_eq!(t.skills, vec!["billing", "fr"]);
        assert!(parse_topic(":2").is_err());
        assert!(parse_topic("x:two").is_err());
        let s = Scenario {
            topics: vec![
                parse_topic("a:1").expect("a"),
                parse_topic("b:3").expect("b"),
            ],
            ..Scenario::default()
        };
        assert_eq!(s.pick_topic(0.0), "a");
        assert_eq!(s.pick_topic(0.24), "a");
        assert_eq!(s.pick_topic(0.26), "b");
        assert_eq!(s.pick_topic(0.999), "b");
        assert_eq!(s.pick_topic(1.0), "b");
    }

    #[test]
    fn total_rate_sets_the_per_customer_rate() {
        let s = Scenario {
            customers: 100,
            total_rate: 2000.0,
            ..Scenario::default()
        };
        assert_eq!(s.effective_rate(), 10.0);
        assert_eq!(s.interval(), Duration::from_millis(100));
        assert_eq!(s.effective_window(), 16);
    }

    #[test]
    fn ramp_up_spreads_starts() {
        let s = Scenario {
            customers: 4,
            ramp_up_s: 2.0,
            ..Scenario::default()
        };
        assert_eq!(s.start_offset(0), Duration::ZERO);
        assert_eq!(s.start_offset(2), Duration::from_secs(1));
    }
}

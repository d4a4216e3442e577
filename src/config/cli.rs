//! The command line: `serve` and `demo`, each flag with its environment variable, and
//! `simulate` (the what-if simulator, `docs/simulate.md`).

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

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
    /// Replay traffic through the routing rules on a virtual clock and report waits,
    /// abandonment, SLA and occupancy per topic (optionally two setups side by side).
    Simulate(SimulateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Redis URL, the system of record; or a comma-separated list of a Redis Cluster's
    /// seed nodes (a single URL of a cluster node is recognised as a cluster too).
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
    /// This node's name among several hubs sharing one Redis, in logs, metrics and
    /// `GET /v1/nodes` (default: a random id made at start).
    #[arg(long, env = "SWITCHBOARD_NODE_ID")]
    pub node_id: Option<String>,
    /// Log filter, e.g. `info` or `switchboard=debug`.
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Redis to use, e.g. `redis://127.0.0.1:6379/0`. Without it: one answering on
    /// 127.0.0.1:6379, else on `--redis-port`, else a private one started there.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Directory for the private Redis's data when one has to be started.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Port of the private Redis when one has to be started.
    #[arg(long, default_value_t = 6390)]
    pub redis_port: u16,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["traffic", "from_redis"])))]
pub struct SimulateArgs {
    /// The routing config: the hub's TOML file (`admin_token` may be left out).
    #[arg(long)]
    pub config: PathBuf,
    /// The team: a JSON list of agents (`docs/simulate.md`).
    #[arg(long)]
    pub agents: PathBuf,
    /// The traffic: JSON lines `{"at_ms","topic","handle_ms","patience_ms"?}`.
    #[arg(long)]
    pub traffic: Option<PathBuf>,
    /// Take the traffic from the tickets stored in this Redis instead.
    #[arg(long, requires_all = ["from", "to"])]
    pub from_redis: Option<String>,
    /// First day (YYYY-MM-DD, UTC) or instant (RFC 3339) of `--from-redis` traffic.
    #[arg(long, requires = "from_redis")]
    pub from: Option<String>,
    /// Last day (included) or instant (excluded) of `--from-redis` traffic.
    #[arg(long, requires = "from_redis")]
    pub to: Option<String>,
    /// A second setup to compare: a `.toml` routing config or a `.json` agents file.
    #[arg(long)]
    pub compare: Option<PathBuf>,
    /// How long an agent takes to accept an offer, in ms.
    #[arg(long, default_value_t = 3_000)]
    pub response_ms: u64,
    /// From `joined` to the agent's first message, in ms (for the first-response SLA).
    #[arg(long, default_value_t = 0)]
    pub first_reply_ms: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A node id for a node started without `--node-id`: short, and new at every start.
pub fn random_node_id() -> String {
    format!("n-{}", &crate::auth::random_token(6)[..8])
}

//! The command line: `serve` and `demo`, each flag with its environment variable.

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
    /// Directory for the private Redis's data when one has to be started.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Port of the private Redis when one has to be started.
    #[arg(long, default_value_t = 6390)]
    pub redis_port: u16,
}

/// A node id for a node started without `--node-id`: short, and new at every start.
pub fn random_node_id() -> String {
    format!("n-{}", &crate::auth::random_token(6)[..8])
}

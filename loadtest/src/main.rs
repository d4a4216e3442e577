//! `switchboard-loadtest`: parse flags, set up tracing, call the library, print the
//! summary, write the reports, and exit 0 (all good), 2 (loss, duplicates or disorder
//! found; for `abuse`: the suite failed; for `floor --durable`: frames lost) or 1 (the run
//! could not be done).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchboard_loadtest::{
    abuse::{abuse, AbuseOptions, Form},
    failover::KillPlan,
    floor::{
        self,
        durable::{hop::HopPublish, run_durable_floor, DurableTarget, Obligations},
    },
    idle::{idle, IdleOptions},
    record,
    report::{unix_ms, Report},
    run,
    scenario::{Scenario, ScenarioArgs},
    FloorRedis, HubTarget, RunOptions,
};

/// The harness shares the benchmark machine with the hub it measures, so its CPU is taken
/// from the hub's: glibc's malloc/free was about 6 % of it at saturation (a few strings
/// per frame). mimalloc keeps that churn cheap, as it does for the hub (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-loadtest",
    version,
    about = "Load-test harness for the Switchboard hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario against a hub (and the floor with the same shape), verify, report.
    Run(RunArgs),
    /// Run a scenario through the built-in pair relay only: raw, or with --durable each
    /// frame stored in Redis first.
    Floor(FloorArgs),
    /// Hold N idle customer connections and report the hub's memory per connection.
    Idle(IdleArgs),
    /// Attack a loopback hub from 127.0.0.2… while a legitimate chat runs; exit 2 if the
    /// chat suffered or the hub's RSS or descriptors went over their ceilings.
    Abuse(AbuseArgs),
    /// Play a schedule (the simulator's traffic format) against a hub with scripted agents
    /// (the simulator's agents file) and write what happened in the simulator's format,
    /// with each chat's observed wait (issue 17).
    Record(RecordArgs),
}

#[derive(Debug, Args)]
struct RecordArgs {
    /// The hub's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    hub: String,
    /// The hub's admin token (creates and deletes the scripted agents).
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// The chats to start: JSON lines `{"at_ms","topic","handle_ms","patience_ms"?}`.
    #[arg(long)]
    schedule: PathBuf,
    /// The team: the simulator's agents JSON (`id`, `skills`, `capacity`, `count`).
    #[arg(long)]
    agents: PathBuf,
    /// How long a scripted agent takes to accept an offer, in ms.
    #[arg(long, default_value_t = 500)]
    response_ms: u64,
    /// Prefix of the agents' ids on the hub.
    #[arg(long, default_value = "rec")]
    run_id: String,
    /// Write the traffic as the hub saw it here (for `switchboard simulate --traffic`).
    #[arg(long)]
    traffic_out: PathBuf,
    /// Write each chat's observed wait here (JSON lines).
    #[arg(long)]
    waits_out: PathBuf,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Write the JSON report here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long)]
    report_html: Option<PathBuf>,
    /// Never show the progress line (it is hidden anyway when stdout is not a terminal).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Args)]
struct HubArgs {
    /// The hub's base URL. `run` also takes the comma-separated base URLs of several nodes
    /// of one deployment: agents go round-robin over the 1st, 3rd, … of the list,
    /// customers over the 2nd, 4th, … (with two hubs: agents on the first, customers on
    /// the second, so every message crosses nodes), admin calls go to the first, and a
    /// client whose hub cannot be reached moves to the next in the list.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    hub: String,
    /// The hub's pid, to sample its RSS and CPU from /proc (local hub only; with several
    /// hubs, one of them).
    #[arg(long)]
    hub_pid: Option<u32>,
}

#[derive(Debug, Args)]
struct RedisArgs {
    /// Redis's pid, to sample its RSS and CPU too (local Redis only).
    #[arg(long)]
    redis_pid: Option<u32>,
    /// Redis's URL (one server, e.g. redis://127.0.0.1:6379/0), where the durable floor
    /// appends: for `run` the hub's Redis (without it the run has no durable floor).
    #[arg(long)]
    redis_url: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    hub: HubArgs,
    #[command(flatten)]
    redis: RedisArgs,
    /// A fresh Redis of the durable floor's own (one server, the hub's settings), instead
    /// of the hub's, which holds the hub's run by the time the floor runs.
    #[arg(long)]
    floor_redis_url: Option<String>,
    /// That Redis's pid, to sample its CPU in the durable floor's lines.
    #[arg(long, requires = "floor_redis_url")]
    floor_redis_pid: Option<u32>,
    /// The hub's admin token (creates and deletes the run's agents).
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Skip the floor runs (raw and durable).
    #[arg(long)]
    no_floor: bool,
    /// Skip the durable floor only.
    #[arg(long)]
    no_durable_floor: bool,
    /// Prefix of the run's agent ids (random by default).
    #[arg(long)]
    run_id: Option<String>,
    /// Send SIGKILL to the hub process --kill-pid this many seconds after the first
    /// customer starts; its clients reconnect to another hub of --hub and resume, and the
    /// run reports how long they took and still verifies that nothing was lost.
    #[arg(long, value_name = "S", requires = "kill_pid")]
    kill_node_after: Option<f64>,
    /// The pid of the hub process --kill-node-after kills (one of the hubs in --hub).
    #[arg(long, value_name = "PID", requires = "kill_node_after")]
    kill_pid: Option<u32>,
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Debug, Args)]
struct FloorArgs {
    /// The durable floor: append each frame to its pair's Redis stream (--redis-url)
    /// and forward it once Redis answered.
    #[arg(long, requires = "redis_url")]
    durable: bool,
    /// With --durable: how much of the protocol the relay does per message besides
    /// storing it. `relay` forwards the frame as it came (the durable floor); `acks`
    /// also acks each stored message to its author; `sequenced` also gives it its seq
    /// in one task per pair, stores the protocol's form and delivers an `event` frame.
    #[arg(long, value_enum, default_value_t = Obligations::Relay, requires = "durable")]
    obligations: Obligations,
    /// With --durable: two relay nodes on the one Redis, each pair's agent end on the
    /// first and its customer end on the second; the node that reads a frame appends it
    /// and publishes it to the other in one round trip: by a pipeline (the default), or
    /// by a script that publishes only once stored. The floor of the cross-node hop.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "pipeline", requires = "durable")]
    two_nodes: Option<HopPublish>,
    /// With --durable: worker threads of each relay node (default: one per core, as a
    /// hub's).
    #[arg(long, requires = "durable")]
    relay_threads: Option<usize>,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seconds to hold them once all are open.
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Debug, Args)]
struct AbuseArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// The hub's admin token (creates and deletes the legitimate agent).
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Small counts, a few seconds per attack (the default; for CI).
    #[arg(long, conflicts_with = "full")]
    short: bool,
    /// The counts: 20,000 connections, 1,000 chats, a 1,000-message history.
    #[arg(long)]
    full: bool,
    /// Fail if the legitimate chat's customer→agent p99 goes over this (default: 500
    /// short, 1000 full).
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// Fail if the hub's RSS goes over this, in MB (default: 128 short, 512 full).
    #[arg(long)]
    max_rss_mb: Option<f64>,
    /// Fail if the hub's open descriptors go over this (default: 768 short, 4096 full).
    #[arg(long)]
    max_fds: Option<u64>,
    /// Fail if more new legitimate connections than this fail.
    #[arg(long, default_value_t = 0)]
    max_probe_failures: u64,
    /// Fail if one visitor creates more conversations than this in the session-reuse
    /// attack (default: 50 short, 100 full).
    #[arg(long)]
    max_chats_per_visitor: Option<u64>,
    /// Fail if the hub still holds more half-sent requests than this when the
    /// slow-headers hold ends.
    #[arg(long, default_value_t = 0)]
    max_slow_held: u64,
    /// Legitimate messages per second (keep it under the hub's per-connection limit,
    /// and under its per-visitor one unless the legitimate address is exempt).
    #[arg(long)]
    legit_rate: Option<f64>,
    /// The legitimate clients' address.
    #[arg(long, default_value = "127.0.0.1")]
    legit_address: std::net::Ipv4Addr,
    /// Attacker addresses, from 127.0.0.2 up (the legitimate one skipped).
    #[arg(long)]
    attackers: Option<usize>,
    /// The hub's limits.max_frame_bytes.
    #[arg(long, default_value_t = 65536)]
    max_frame_bytes: usize,
    /// Write the JSON report here.
    #[arg(long)]
    report_json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,switchboard_loadtest=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchboard-loadtest: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("switchboard-loadtest: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Record(args) => {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))
            };
            let schedule = record::parse_schedule(&read(&args.schedule)?)?;
            let team = record::parse_team(&read(&args.agents)?)?;
            let options = record::RecordOptions {
                hub: args.hub,
                admin_token: args.admin_token,
                response_ms: args.response_ms,
                run_id: args.run_id,
            };
            let recording = record::record(&schedule, &team, &options).await?;
            std::fs::write(&args.traffic_out, recording.traffic_jsonl()?)
                .with_context(|| format!("cannot write {}", args.traffic_out.display()))?;
            let mut waits = String::new();
            for observed in &recording.observed {
                waits.push_str(&serde_json::to_string(observed)?);
                waits.push('\n');
            }
            std::fs::write(&args.waits_out, waits)
                .with_context(|| format!("cannot write {}", args.waits_out.display()))?;
            let sorted = recording.sorted_waits();
            let pick = |q: f64| {
                let rank = (q * sorted.len() as f64).ceil() as usize;
                sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
            };
            println!(
                "recorded {} chats: wait p50 {:?} ms, p90 {:?} ms; simulate with --response-ms {}",
                recording.traffic.len(),
                pick(0.5),
                pick(0.9),
                recording
                    .effective_response_ms()
                    .unwrap_or(args.response_ms)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let scenario = Scenario::from_args(&args.scenario)?;
            let kill = match (args.kill_node_after, args.kill_pid) {
                (Some(after), Some(pid)) => {
                    if !after.is_finite() || after < 0.0 {
                        anyhow::bail!("--kill-node-after must be a number of seconds, not {after}");
                    }
                    Some(KillPlan {
                        after: Duration::from_secs_f64(after),
                        pid,
                    })
                }
                _ => None,
            };
            let target = HubTarget {
                hub: args.hub.hub,
                admin_token: args.admin_token,
                hub_pid: args.hub.hub_pid,
                redis_pid: args.redis.redis_pid,
                redis_url: args.redis.redis_url,
                floor_redis: args.floor_redis_url.map(|url| FloorRedis {
                    url,
                    pid: args.floor_redis_pid,
                }),
            };
            let options = RunOptions {
                floor: !args.no_floor,
                durable_floor: !args.no_durable_floor,
                progress: !args.report.no_progress,
                run_id: args.run_id,
                kill,
            };
            let outcome = run(&scenario, &target, &options).await?;
            print!("{}", outcome.report.text_summary());
            if let Some(journal) = &outcome.report.durable_journal {
                if !journal.is_clean() {
                    // The hub's verdict decides the exit code; the durable floor's loss is
                    // the harness's own relay, reported here and in its figures.
                    eprintln!(
                        "switchboard-loadtest: the durable floor lost frames: {}",
                        journal.text()
                    );
                }
            }
            write_reports(&outcome.report, &args.report)?;
            if outcome.verdict.is_clean() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("switchboard-loadtest: {}", outcome.verdict.summary());
                Ok(ExitCode::from(2))
            }
        }
        Command::Floor(args) => {
            let scenario = Scenario::from_args(&args.scenario)?;
            switchboard_loadtest::run::warn_if_busy();
            let started = unix_ms();
            let show_progress = !args.report.no_progress;
            if args.durable {
                let target = DurableTarget {
                    // `requires` makes clap refuse --durable without it.
                    redis_url: args.redis.redis_url.unwrap_or_default(),
                    redis_pid: args.redis.redis_pid,
                    keep_streams: false,
                    obligations: args.obligations,
                    two_nodes: args.two_nodes,
                    relay_threads: args.relay_threads,
                };
                let durable = run_durable_floor(&scenario, &target, show_progress).await?;
                let clean = durable.journal.is_clean();
                let report = Report::for_durable_floor(scenario, started, durable);
                print!("{}", report.text_summary());
                write_reports(&report, &args.report)?;
                if !clean {
                    eprintln!("switchboard-loadtest: the durable floor lost frames (failed appends, or Redis holds other than what was appended)");
                    return Ok(ExitCode::from(2));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let figures = floor::run_floor(&scenario, show_progress).await?;
            let report = Report::for_floor(scenario, started, figures);
            print!("{}", report.text_summary());
            write_reports(&report, &args.report)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Abuse(args) => run_abuse(args).await,
        Command::Idle(args) => {
            one_hub(&args.hub.hub)?;
            if args.hub.hub_pid.is_none() {
                eprintln!("switchboard-loadtest: without --hub-pid the hub's memory cannot be read; only connection counts are reported");
            }
            let options = IdleOptions {
                hub: args.hub.hub,
                connections: args.connections,
                hub_pid: args.hub.hub_pid,
                concurrency: args.concurrency,
                hold: Duration::from_secs_f64(args.hold.max(0.0)),
                progress: !args.report.no_progress,
                ..IdleOptions::default()
            };
            switchboard_loadtest::run::warn_if_busy();
            let started = unix_ms();
            let (figures, process) = idle(&options).await?;
            let failed = figures.failed;
            let report = Report::for_idle(started, figures, process);
            print!("{}", report.text_summary());
            write_reports(&report, &args.report)?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `idle` and `abuse` measure one hub process: a list of hubs is a mistake there.
fn one_hub(hub: &str) -> anyhow::Result<()> {
    if hub.contains(',') {
        anyhow::bail!("--hub takes one URL here (a list of hubs is for `run`): {hub:?}");
    }
    Ok(())
}

async fn run_abuse(args: AbuseArgs) -> anyhow::Result<ExitCode> {
    one_hub(&args.hub.hub)?;
    let form = if args.full { Form::Full } else { Form::Short };
    let mut options = AbuseOptions::new(&args.hub.hub, &args.admin_token, form);
    options.hub_pid = args.hub.hub_pid;
    options.legit = args.legit_address;
    options.max_frame_bytes = args.max_frame_bytes;
    if let Some(n) = args.attackers {
        options.sizes.attackers = n;
    }
    let t = &mut options.thresholds;
    t.max_p99_ms = args.max_p99_ms.unwrap_or(t.max_p99_ms);
    t.max_rss_mb = args.max_rss_mb.unwrap_or(t.max_rss_mb);
    t.max_fds = args.max_fds.unwrap_or(t.max_fds);
    t.max_probe_failures = args.max_probe_failures;
    t.max_slow_held = args.max_slow_held;
    if let Some(rate) = args.legit_rate {
        options.sizes.legit_rate = rate;
    }
    t.max_chats_per_visitor = args
        .max_chats_per_visitor
        .unwrap_or(t.max_chats_per_visitor);
    if options.hub_pid.is_none() {
        eprintln!("switchboard-loadtest: without --hub-pid the hub's RSS and descriptors are neither read nor checked");
    }
    let report = abuse(&options).await?;
    print!("{}", report.text());
    if let Some(path) = &args.report_json {
        std::fs::write(path, report.to_json()?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn write_reports(report: &Report, args: &ReportArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.report_json {
        std::fs::write(path, report.to_json()?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.report_html {
        std::fs::write(path, report.to_html())
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

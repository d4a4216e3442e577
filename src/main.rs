//! The `switchboard` binary: parse flags, set up tracing, bind, start the hub.

use std::{io::Write, net::SocketAddr, path::Path, process::Command, time::Duration};

use anyhow::{bail, Context};
use clap::Parser;
use switchboard::config::{Cli, CliCommand, Config, DemoArgs, ServeArgs};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// glibc's allocator spent a fifth of the hub's CPU on a chat load (small frames
/// allocated on one thread and freed on another); mimalloc keeps such churn cheap and
/// returns freed memory to the OS sooner.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchboard: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            CliCommand::Serve(args) => serve(args).await,
            CliCommand::Demo(args) => demo(args).await,
            CliCommand::Simulate(args) => simulate(args).await,
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line, as the contract asks of a failed start.
            eprintln!("switchboard: {}", format!("{err:#}").replace('\n', " "));
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let mut filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // tungstenite logs every frame whole at `trace` (hello tokens, session secrets,
    // messages): never below `debug` for it, whatever the filter asks.
    for quiet in ["tungstenite=debug", "tokio_tungstenite=debug"] {
        match quiet.parse() {
            Ok(directive) => filter = filter.add_directive(directive),
            Err(err) => eprintln!("switchboard: bad built-in log directive {quiet}: {err}"),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing(&args.log);
    let config = Config::load(&args)?;
    start(args.listen, config).await
}

async fn start(listen: SocketAddr, config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = switchboard::Server::start(config, shutdown.clone()).await?;
    println!("switchboard listening on http://{addr}");
    std::io::stdout().flush()?;
    tokio::spawn(shutdown_on_signal(shutdown));
    server.serve(listener).await?;
    Ok(())
}

async fn shutdown_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

/// `switchboard simulate`: no tracing, no server; the table or JSON on stdout.
async fn simulate(args: switchboard::config::SimulateArgs) -> anyhow::Result<()> {
    let text = switchboard::simulate::run_command(&args).await?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

const DEMO_CONFIG: &str = r#"
admin_token = "demo-admin"
identity_secret = "demo-identity-secret"

[[topic]]
name = "general"
default = true
offer_timeout_ms = 30000

[[topic]]
name = "billing"
skills = ["billing"]
priority = 5

[[topic]]
name = "billing_fr"
skills = ["billing", "fr"]
priority = 5
expand = [{ after_ms = 30000, drop_skills = ["fr"] }]

[[topic]]
name = "tier2"
skills = ["tier2"]
priority = 10
escalation_priority_boost = 5

[[canned_responses]]
shortcut = "hi"
text = "Hi! Thanks for reaching out, how can I help?"

[[canned_responses]]
shortcut = "bye"
text = "Glad I could help. Have a great day!"
"#;

/// Where `demo` keeps the tokens it issued to its agents (one key per agent id), so a
/// restart on the same Redis signs the same consoles in. Demo only: the hub never reads it.
const DEMO_TOKEN_KEY: &str = "sb:demo:token:";

async fn redis_answers(url: &str) -> bool {
    switchboard::store::Store::connect(url, Duration::from_millis(500))
        .await
        .is_ok()
}

/// Finds a Redis for the demo: the one in the environment or on the default port, or a
/// private one started under `data_dir` (installing `redis-server` if it is missing).
async fn demo_redis(args: &DemoArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.redis_url {
        if !redis_answers(url).await {
            bail!("no Redis answers at {url}");
        }
        eprintln!("switchboard demo: using Redis at {url}");
        return Ok(url.clone());
    }
    let default = "redis://127.0.0.1:6379/0".to_string();
    if redis_answers(&default).await {
        eprintln!("switchboard demo: using Redis at {default}");
        return Ok(default);
    }
    let private = format!("redis://127.0.0.1:{}/0", args.redis_port);
    if redis_answers(&private).await {
        eprintln!(
            "switchboard demo: using Redis at {private} (a private one from an earlier start)"
        );
        return Ok(private);
    }
    if which("redis-server").is_none() {
        eprintln!("switchboard demo: redis-server is missing; installing it with apt-get");
        let installed = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server"])
            .status()
            .context("cannot run apt-get")?;
        if !installed.success() {
            bail!("could not install redis-server (are you root?)");
        }
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let dir = std::fs::canonicalize(&args.data_dir)?;
    let status = Command::new("redis-server")
        .args([
            "--port",
            &args.redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--appendonly",
            "yes",
        ])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .status()
        .context("cannot start redis-server")?;
    if !status.success() {
        bail!(
            "redis-server did not start; see {}",
            dir.join("redis.log").display()
        );
    }
    for _ in 0..50 {
        if redis_answers(&private).await {
            eprintln!(
                "switchboard demo: started a private Redis at {private} (data in {})",
                dir.display()
            );
            return Ok(private);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "redis-server started but does not answer on port {}",
        args.redis_port
    )
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| Path::new(candidate).is_file())
    })
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    init_tracing("info");
    let redis_url = demo_redis(&args).await?;
    let config = Config::from_toml(DEMO_CONFIG, &redis_url)?;
    let listen = args.listen;
    let base = format!("http://{listen}");
    let provision = tokio::spawn(async move {
        // Demo agents keep their tokens across restarts on the same Redis: each issued
        // token is kept under `DEMO_TOKEN_KEY` and reused while it still signs in.
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut redis = match redis::Client::open(redis_url.as_str()) {
            Ok(c) => c.get_multiplexed_async_connection().await.ok(),
            Err(_) => None,
        };
        let agents = [
            (
                "alice",
                "Alice",
                r#"{"billing":5,"fr":4,"tier2":3}"#,
                3,
                true,
            ),
            ("bob", "Bob", r#"{"billing":3}"#, 2, false),
        ];
        for (id, name, skills, capacity, supervisor) in agents {
            let key = format!("{DEMO_TOKEN_KEY}{id}");
            let kept: Option<String> = match redis.as_mut() {
                Some(r) => redis::cmd("GET")
                    .arg(&key)
                    .query_async(r)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            if let Some(token) = kept {
                let works = client
                    .get(format!("{base}/v1/canned"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if works {
                    // Same line as a fresh agent's (the POST's answer), so scripts parse both.
                    println!(
                        "demo agent {id}: {}",
                        serde_json::json!({"id": id, "token": token})
                    );
                    continue;
                }
            }
            let _absent_is_fine = client
                .delete(format!("{base}/v1/agents/{id}"))
                .bearer_auth("demo-admin")
                .send()
                .await;
            let body = format!(
                r#"{{"id":"{id}","name":"{name}","skills":{skills},"capacity":{capacity},"supervisor":{supervisor}}}"#
            );
            let created = client
                .post(format!("{base}/v1/agents"))
                .bearer_auth("demo-admin")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let token = match created {
                Ok(response) => response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["token"].as_str().map(str::to_owned)),
                Err(err) => {
                    eprintln!("demo agent {id} not created: {err}");
                    continue;
                }
            };
            let Some(token) = token else {
                eprintln!("demo agent {id} not created: no token in the answer");
                continue;
            };
            if let Some(r) = redis.as_mut() {
                let stored: redis::RedisResult<()> =
                    redis::cmd("SET").arg(&key).arg(&token).query_async(r).await;
                if let Err(err) = stored {
                    eprintln!("demo agent {id}: token not kept for the next start: {err}");
                }
            }
            println!(
                "demo agent {id}: {}",
                serde_json::json!({"id": id, "token": token})
            );
        }
        println!(
            "demo page: {base}/demo   agent console: {base}/console/   admin token: demo-admin"
        );
    });
    let served = start(listen, config).await;
    provision.abort();
    served
}

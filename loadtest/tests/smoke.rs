//! One short smoke run against the real hub: a private `redis-server` on a free port in a
//! temp dir, the `switchboard` binary on `127.0.0.1:0`, then a tiny scenario (with
//! transfers and reconnects) through the library API. It must finish with zero loss.
//!
//! The hub binary is taken from the workspace target dir (`$CARGO_TARGET_DIR`, else
//! `<workspace>/target`), `debug/switchboard`. `cargo test --workspace` builds it before
//! running tests; when it is missing (e.g. `cargo test -p switchboard-loadtest` on a fresh
//! checkout) the test builds it with `cargo build -p switchboard --bin switchboard`.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use switchboard_loadtest::{run, HubTarget, RunOptions, Scenario};

const ADMIN_TOKEN: &str = "smoke-admin-0123456789";

/// Kills the child when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

fn hub_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().expect("loadtest/ sits in the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    let binary = target.join("debug").join("switchboard");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "switchboard", "--bin", "switchboard"])
            .current_dir(workspace)
            .status()
            .expect("run cargo build for the hub");
        assert!(status.success(), "building the hub failed");
    }
    assert!(binary.exists(), "no hub binary at {}", binary.display());
    binary
}

/// Reads a child's lines on a thread; returns the receiver.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining so the child never blocks.
                continue;
            }
        }
    });
    rx
}

fn start_redis(dir: &Path) -> (Guard, u16) {
    for _ in 0..8 {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let lines = lines_of(child.stdout.take().expect("redis stdout"));
        let guard = Guard(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("Ready to accept connections") => return (guard, port),
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        // Most likely the port was taken in between: try another.
    }
    panic!("redis-server did not start");
}

fn start_hub(dir: &Path, redis_port: u16) -> (Guard, String, u32) {
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "admin_token = \"{ADMIN_TOKEN}\"\n\n[limits]\nmessages_per_10s = 100000\n\n\
             [[topic]]\nname = \"general\"\ndefault = true\n\n\
             [[topic]]\nname = \"billing\"\nskills = [\"billing\"]\n"
        ),
    )
    .expect("write the hub config");
    let mut child = Command::new(hub_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--redis-url"])
        .arg(format!("redis://127.0.0.1:{redis_port}/0"))
        .arg("--config")
        .arg(&config)
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the hub");
    let pid = child.id();
    let lines = lines_of(child.stdout.take().expect("hub stdout"));
    let guard = Guard(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some((_, addr)) = line.split_once("listening on http://") {
                    let addr = addr.split_whitespace().next().unwrap_or_default();
                    return (guard, format!("http://{addr}"), pid);
                }
            }
            Err(_) => break,
        }
    }
    panic!("the hub did not print `listening on http://…` within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_against_the_real_hub_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
    let (_hub, url, pid) = start_hub(dir.path(), redis_port);

    let scenario = Scenario {
        customers: 6,
        agents: 3,
        capacity: 3,
        messages: 6,
        rate: 20.0,
        think_ms: 5,
        ramp_up_s: 0.3,
        transfer_ratio: 0.5,
        reconnect_ratio: 0.5,
        topics: vec![
            switchboard_loadtest::scenario::parse_topic("general:2").expect("topic"),
            switchboard_loadtest::scenario::parse_topic("billing:1:billing").expect("topic"),
        ],
        seed: 7,
        ..Scenario::default()
    };
    let target = HubTarget {
        hub: url,
        admin_token: ADMIN_TOKEN.into(),
        hub_pid: Some(pid),
        redis_pid: None,
    };
    let options = RunOptions {
        floor: true,
        progress: false,
        run_id: Some("smoke".into()),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), run(&scenario, &target, &options))
        .await
        .expect("the smoke run finishes within 2 minutes")
        .expect("the smoke run completes");
    let summary = outcome.report.text_summary();
    assert!(outcome.verdict.is_clean(), "loss or duplicates:\n{summary}");
    let hub = outcome.report.hub.as_ref().expect("hub figures");
    assert_eq!(hub.conversations.started, 6, "{summary}");
    assert_eq!(hub.conversations.joined, 6, "{summary}");
    assert_eq!(hub.conversations.closed, 6, "{summary}");
    assert_eq!(hub.replies_missing, 0, "{summary}");
    assert!(hub.client_failures.is_empty(), "{summary}");
    // 6 chats × 7 customer messages, each with a reply: 84 acknowledged messages.
    assert_eq!(outcome.verdict.messages_checked, 84, "{summary}");
    // Every conversation was checked, and its records freed, as the chats ended: none
    // waited for the agents to stop, nor for the end of the run.
    assert_eq!(outcome.unverified_at_agent_stop, 0, "{summary}");
    assert_eq!(
        outcome.verdict.verified_early, outcome.verdict.conversations,
        "{summary}"
    );
    assert!(outcome.report.ratios.is_some(), "floor ran: {summary}");
    let sampled: Vec<&str> = hub.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(sampled, ["hub", "harness"], "processes sampled: {summary}");
}

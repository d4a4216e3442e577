//! What the harness's integration tests share: a private `redis-server` on a free port
//! in a temp dir and the `switchboard` binary on `127.0.0.1:0`, each killed when its
//! guard drops.
//!
//! The hub binary is taken from the workspace target dir (`$CARGO_TARGET_DIR`, else
//! `<workspace>/target`), `debug/switchboard`. `cargo test --workspace` builds it before
//! running tests; when it is missing (e.g. `cargo test -p switchboard-loadtest` on a fresh
//! checkout) it is built with `cargo build -p switchboard --bin switchboard`.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// At least 16 characters, as a hub outside `demo` requires (issue 15).
pub const ADMIN_TOKEN: &str = "loadtest-admin-token";

/// Kills the child when the test ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

pub fn hub_binary() -> PathBuf {
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
pub fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
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

pub fn start_redis(dir: &Path) -> (Guard, u16) {
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

/// The smoke runs' config: no limit the load would hit.
pub fn load_config() -> String {
    format!(
        "admin_token = \"{ADMIN_TOKEN}\"\n\n[limits]\nmessages_per_10s = 100000\n\n\
         [[topic]]\nname = \"general\"\ndefault = true\n\n\
         [[topic]]\nname = \"billing\"\nskills = [\"billing\"]\n"
    )
}

/// Starts the hub with `config` (TOML text); its guard, base URL and pid.
pub fn start_hub(dir: &Path, redis_port: u16, config: &str) -> (Guard, String, u32) {
    start_hub_node(dir, redis_port, config, None)
}

/// Starts one node of a deployment (`--node-id`, when given) on the Redis at
/// `redis_port`; its guard, base URL and pid. Nodes of one deployment share the config.
pub fn start_hub_node(
    dir: &Path,
    redis_port: u16,
    config: &str,
    node_id: Option<&str>,
) -> (Guard, String, u32) {
    let path = dir.join(format!("hub-{}.toml", node_id.unwrap_or("single")));
    std::fs::write(&path, config).expect("write the hub config");
    let mut command = Command::new(hub_binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--redis-url"])
        .arg(format!("redis://127.0.0.1:{redis_port}/0"))
        .arg("--config")
        .arg(&path);
    if let Some(node_id) = node_id {
        command.args(["--node-id", node_id]);
    }
    let mut child = command
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

//! Integration-test harness: a private `redis-server` and a `switchboard serve` process per
//! test, both on free ports, plus a WebSocket client that speaks the wire contract
//! (`docs/protocol.md`, `docs/decisions.md`).
//!
//! Nothing here sleeps to synchronize: every wait is "until this frame / line arrives, or
//! fail after a timeout", and a failure names what was awaited and what was seen instead
//! (frames on the socket, the tail of the hub's output). The one exception, [`eventually`],
//! re-asks at a short interval for state the hub only shows when asked (`/readyz`).
//!
//! - [`RedisServer`]: `redis-server` with AOF (`appendfsync always`) in a temp dir, so
//!   acknowledged data survives `kill()` + `restart()`.
//! - [`Hub`]: the `switchboard` binary; `kill9()`, `restart()`, `stop()`/`cont()`, REST
//!   helpers.
//! - [`TestConfig`]: the hub's TOML, with builders for per-test limits and timeouts.
//! - [`Ws`]: one WebSocket connection with a buffer, so a test can wait for one frame while
//!   unrelated frames are kept for later waits.
//!
//! More helpers (tickets, supervisors, the webhook receiver) are in [`extra`]; a Redis
//! Cluster ([`cluster::RedisCluster`]) is in [`cluster`].

#![allow(dead_code)]

use std::{
    collections::VecDeque,
    fmt::Display,
    io::{BufRead, BufReader, Read},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
    time::Instant,
};
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

/// Default timeout of every wait.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long the hub (and Redis) may take to print that it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The hub binary: cargo's, or `SWITCHBOARD_TEST_BIN` when set (a copy of this
/// checkout's build, when several checkouts share one target directory and each build
/// replaces `target/debug/switchboard`).
pub fn hub_bin() -> PathBuf {
    std::env::var_os("SWITCHBOARD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_switchboard")))
}

pub const ADMIN_TOKEN: &str = "admin-secret-for-tests";
pub const IDENTITY_SECRET: &str = "site-secret";

/// How many output lines of a child process are kept for failure messages.
const LOG_LINES: usize = 300;

/// Wall-clock milliseconds since the Unix epoch, as the hub stamps `ts` (same machine, same
/// clock), for bounds on the figures the hub computes.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

// ---------------------------------------------------------------------------------------
// Child processes and their output
// ---------------------------------------------------------------------------------------

/// The last lines a child printed (stdout and stderr interleaved).
#[derive(Clone, Default)]
pub struct OutputLog(Arc<Mutex<VecDeque<String>>>);

impl OutputLog {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines, one per line.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let skip = lines.len().saturating_sub(n);
        lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn contains(&self, needle: &str) -> bool {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().any(|line| line.contains(needle))
    }
}

/// Drains one output pipe of a child on a thread of its own, so the child never blocks on
/// a full pipe, whatever the test is doing. Each line goes to the log and to `lines`.
fn drain<R: Read + Send + 'static>(
    pipe: R,
    tag: &'static str,
    log: OutputLog,
    lines: mpsc::UnboundedSender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            log.push(format!("[{tag}] {line}"));
            // Only the start-up wait listens; once it is done the receiver is gone and the
            // line is simply kept in the log.
            let _ = lines.send(line);
        }
    });
}

/// Spawns `command` with both pipes drained; returns the child and a receiver of its lines
/// (closed once both pipes reach EOF, i.e. when the child has exited).
fn spawn_logged(
    mut command: Command,
    log: &OutputLog,
) -> std::io::Result<(Child, mpsc::UnboundedReceiver<String>)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(out) = child.stdout.take() {
        drain(out, "out", log.clone(), tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        drain(err, "err", log.clone(), tx);
    }
    Ok((child, rx))
}

/// Waits until a line satisfying `ready` arrives; returns it, or `None` if the child
/// exited (its pipes closed) or the deadline passed first.
async fn wait_for_line(
    lines: &mut mpsc::UnboundedReceiver<String>,
    timeout: Duration,
    ready: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) if ready(&line) => return Some(line),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

fn kill_and_reap(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        // SIGKILL also ends a SIGSTOPped process.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port that was free a moment ago (the listener is dropped before returning; callers
/// retry when someone else took it in between).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// A private `redis-server` with AOF persistence (`appendfsync always`) in a temp dir.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    log: OutputLog,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let log = OutputLog::default();
        for _attempt in 0..8 {
            let port = free_port();
            if let Some(child) = Self::spawn(port, dir.path(), &log).await {
                return RedisServer {
                    port,
                    dir,
                    child: Some(child),
                    log,
                };
            }
            // Most likely the port was taken between `free_port` and the bind: retry.
        }
        panic!(
            "redis-server did not start after 8 attempts; output:\n{}",
            log.tail(40)
        );
    }

    async fn spawn(port: u16, dir: &Path, log: &OutputLog) -> Option<Child> {
        let mut command = Command::new("redis-server");
        command.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]);
        let (child, mut lines) = spawn_logged(command, log).expect("spawn redis-server");
        let ready = wait_for_line(&mut lines, START_TIMEOUT, |l| {
            l.contains("Ready to accept connections")
        })
        .await;
        if ready.is_some() && redis_ping(port).await {
            return Some(child);
        }
        kill_and_reap(&mut Some(child));
        None
    }

    /// `redis://127.0.0.1:PORT/0`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL: no chance to write anything more (AOF `always` already has every write).
    pub fn kill(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// SIGSTOP: Redis hangs with its sockets open, like a server stuck on a slow disk.
    pub fn stop(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), "-STOP");
        }
    }

    /// SIGCONT after `stop()`.
    pub fn cont(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), "-CONT");
        }
    }

    /// SIGTERM and wait for the exit (a clean shutdown).
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "-TERM");
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data dir (data survives via the AOF).
    pub async fn restart(&mut self) {
        self.kill();
        for _attempt in 0..50 {
            if let Some(child) = Self::spawn(self.port, self.dir.path(), &self.log).await {
                self.child = Some(child);
                return;
            }
            // Only a port grabbed by someone else in the meantime gets here; nothing to wait
            // for but the next attempt.
            tokio::task::yield_now().await;
        }
        panic!(
            "redis-server did not restart on port {}; output:\n{}",
            self.port,
            self.log.tail(40)
        );
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.log.tail(n)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// `PING` over a raw socket, expecting `+PONG`.
pub async fn redis_ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        stream.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), attempt).await,
        Ok(Some(true))
    )
}

// ---------------------------------------------------------------------------------------
// Hub configuration
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    pub default: bool,
    pub skills: Vec<String>,
    pub priority: i32,
    pub offer_timeout_ms: u64,
    pub transfer_timeout_ms: u64,
    /// `(after_ms, drop_skills)`
    pub expand: Vec<(u64, Vec<String>)>,
}

impl TopicSpec {
    pub fn new(name: &str, skills: &[&str], priority: i32) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            default: false,
            skills: skills.iter().map(|s| s.to_string()).collect(),
            priority,
            offer_timeout_ms: 15_000,
            transfer_timeout_ms: 60_000,
            expand: Vec::new(),
        }
    }
}

/// The hub's TOML configuration. Only keys the contract (or the brief) names are written,
/// so the file stays valid under the hub's `deny_unknown_fields`.
///
/// Default topics:
/// - `general`: the default, no skills, priority 0;
/// - `billing`: skills `billing`, priority 0;
/// - `billing_fr`: skills `billing`+`fr`, priority 5, drops `fr` after 1500 ms;
/// - `urgent`: no skills, priority 10.
#[derive(Clone, Debug)]
pub struct TestConfig {
    pub limits: Vec<(String, String)>,
    pub router: Vec<(String, String)>,
    pub topics: Vec<TopicSpec>,
}

impl Default for TestConfig {
    fn default() -> Self {
        let mut general = TopicSpec::new("general", &[], 0);
        general.default = true;
        let mut billing_fr = TopicSpec::new("billing_fr", &["billing", "fr"], 5);
        billing_fr.expand = vec![(1500, vec!["fr".to_string()])];
        TestConfig {
            // Generous rate limit: several tests send bursts; the rate-limit test lowers it.
            limits: vec![("messages_per_10s".into(), "10000".into())],
            router: vec![
                ("max_missed_offers".into(), "2".into()),
                ("agent_grace_ms".into(), "60000".into()),
                ("customer_idle_timeout_ms".into(), "600000".into()),
            ],
            topics: vec![
                general,
                TopicSpec::new("billing", &["billing"], 0),
                billing_fr,
                TopicSpec::new("urgent", &[], 10),
            ],
        }
    }
}

fn set(entries: &mut Vec<(String, String)>, key: &str, value: String) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

impl TestConfig {
    /// Sets `[limits] key = value`.
    pub fn limit(mut self, key: &str, value: impl Display) -> Self {
        set(&mut self.limits, key, value.to_string());
        self
    }

    /// Sets `[router] key = value`.
    pub fn router(mut self, key: &str, value: impl Display) -> Self {
        set(&mut self.router, key, value.to_string());
        self
    }

    /// Sets `offer_timeout_ms` of every topic.
    pub fn offer_timeout_ms(mut self, ms: u64) -> Self {
        for topic in &mut self.topics {
            topic.offer_timeout_ms = ms;
        }
        self
    }

    /// Sets `transfer_timeout_ms` of every topic.
    pub fn transfer_timeout_ms(mut self, ms: u64) -> Self {
        for topic in &mut self.topics {
            topic.transfer_timeout_ms = ms;
        }
        self
    }

    pub fn topic(mut self, topic: TopicSpec) -> Self {
        self.topics.retain(|t| t.name != topic.name);
        self.topics.push(topic);
        self
    }

    pub fn to_toml(&self) -> String {
        let quote = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut out =
            format!("admin_token = {ADMIN_TOKEN:?}\nidentity_secret = {IDENTITY_SECRET:?}\n");
        out.push_str("\n[limits]\n");
        for (key, value) in &self.limits {
            out.push_str(&format!("{key} = {value}\n"));
        }
        out.push_str("\n[router]\n");
        for (key, value) in &self.router {
            out.push_str(&format!("{key} = {value}\n"));
        }
        for topic in &self.topics {
            out.push_str(&format!(
                "\n[[topic]]\nname = {:?}\ndefault = {}\nskills = {}\npriority = {}\noffer_timeout_ms = {}\ntransfer_timeout_ms = {}\n",
                topic.name,
                topic.default,
                quote(&topic.skills),
                topic.priority,
                topic.offer_timeout_ms,
                topic.transfer_timeout_ms
            ));
            if !topic.expand.is_empty() {
                let steps: Vec<String> = topic
                    .expand
                    .iter()
                    .map(|(after, drop)| {
                        format!("{{ after_ms = {after}, drop_skills = {} }}", quote(drop))
                    })
                    .collect();
                out.push_str(&format!("expand = [{}]\n", steps.join(", ")));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Hub
// ---------------------------------------------------------------------------------------

/// A running `switchboard serve` process.
pub struct Hub {
    addr: SocketAddr,
    child: Option<Child>,
    log: OutputLog,
    redis_url: String,
    config_path: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// Starts Redis and a hub with the default test configuration.
pub async fn setup() -> (RedisServer, Hub) {
    setup_with(TestConfig::default()).await
}

pub async fn setup_with(config: TestConfig) -> (RedisServer, Hub) {
    let redis = RedisServer::start().await;
    let hub = Hub::start(&redis, &config.to_toml()).await;
    (redis, hub)
}

impl Hub {
    pub async fn start(redis: &RedisServer, config_toml: &str) -> Hub {
        Self::start_url(&redis.url(), config_toml).await
    }

    /// A hub on any `--redis-url` (a Redis Cluster's seed list, say).
    pub async fn start_url(redis_url: &str, config_toml: &str) -> Hub {
        let dir = tempfile::tempdir().expect("temp dir for the hub config");
        let config_path = dir.path().join("switchboard.toml");
        std::fs::write(&config_path, config_toml).expect("write hub config");
        let log = OutputLog::default();
        let (child, addr) = Self::spawn(redis_url, &config_path, &log).await;
        Hub {
            addr,
            child: Some(child),
            log,
            redis_url: redis_url.to_string(),
            config_path,
            _dir: dir,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("http client"),
        }
    }

    async fn spawn(redis_url: &str, config: &Path, log: &OutputLog) -> (Child, SocketAddr) {
        let mut command = Command::new(hub_bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--redis-url", redis_url])
            .arg("--config")
            .arg(config)
            .env("NO_COLOR", "1");
        let (child, mut lines) = spawn_logged(command, log).expect("spawn switchboard");
        let mut child = Some(child);
        let line = wait_for_line(&mut lines, START_TIMEOUT, |l| {
            l.contains("listening on http://")
        })
        .await;
        let addr = line.as_deref().and_then(parse_listen_addr);
        match addr {
            Some(addr) => (child.take().expect("child"), addr),
            None => {
                let exited = child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                kill_and_reap(&mut child);
                let why = match exited {
                    Some(status) => format!("exited ({status}) before printing"),
                    None => format!("did not print within {START_TIMEOUT:?}"),
                };
                panic!(
                    "the hub {why} `listening on http://ADDR`; its output:\n{}",
                    log.tail(60)
                );
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("hub is running").id()
    }

    /// The last `n` lines the hub printed, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        self.log.tail(n)
    }

    pub fn output(&self) -> OutputLog {
        self.log.clone()
    }

    /// SIGKILL: the hub gets no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// A new process with the same Redis and config (on a new port; `addr()` follows).
    pub async fn restart(&mut self) {
        self.kill9();
        self.log.push("---- restart ----".into());
        let (child, addr) = Self::spawn(&self.redis_url, &self.config_path, &self.log).await;
        self.child = Some(child);
        self.addr = addr;
    }

    /// SIGSTOP: the process freezes (its sockets stay open).
    pub fn stop(&self) {
        signal(self.pid(), "-STOP");
    }

    /// SIGCONT after `stop()`.
    pub fn cont(&self) {
        signal(self.pid(), "-CONT");
    }

    // ---- HTTP ----

    /// `POST /v1/agents` as admin; returns the agent's token.
    pub async fn create_agent(
        &self,
        id: &str,
        name: &str,
        skills: &[(&str, u32)],
        capacity: u32,
        auto_accept: bool,
    ) -> String {
        let skills: serde_json::Map<String, Value> = skills
            .iter()
            .map(|(skill, level)| (skill.to_string(), json!(level)))
            .collect();
        let body = json!({
            "id": id, "name": name, "skills": skills, "capacity": capacity,
            "supervisor": false, "auto_accept": auto_accept,
        });
        let (status, reply) = self
            .http_json("POST", "/v1/agents", Some(ADMIN_TOKEN), Some(body))
            .await;
        assert_eq!(
            status, 201,
            "POST /v1/agents for {id}: expected 201, got {status} {reply}"
        );
        assert_eq!(reply["id"], id, "POST /v1/agents reply: {reply}");
        reply["token"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /v1/agents reply without token: {reply}"))
            .to_string()
    }

    /// `POST /v1/agents` as admin with a full body; returns the agent's token.
    pub async fn create_agent_with(&self, body: Value) -> String {
        let (status, reply) = self
            .http_json("POST", "/v1/agents", Some(ADMIN_TOKEN), Some(body.clone()))
            .await;
        assert_eq!(status, 201, "POST /v1/agents {body}: got {status} {reply}");
        reply["token"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /v1/agents reply without token: {reply}"))
            .to_string()
    }

    /// A plain request; returns the status and the body as text.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("http method");
        let mut request = self.http.request(method.clone(), self.http_url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nhub output:\n{}", self.log_tail(30)));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, text)
    }

    /// A request whose answer is parsed as JSON (`Value::Null` when the body is empty).
    pub async fn http_json(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.http(method, path, bearer, body).await;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!(
                    "{method} {path} answered {status} with a body that is not JSON ({e}): {text}"
                )
            })
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        self.http("GET", path, None, None).await
    }

    // ---- WebSockets ----

    pub async fn connect_customer(&self) -> Ws {
        Ws::connect(self, "/v1/customer/ws", "customer").await
    }

    pub async fn connect_agent(&self) -> Ws {
        Ws::connect(self, "/v1/agent/ws", "agent").await
    }

    /// A customer connection past `hello` (name "Ann" plus `extra` fields); returns it and
    /// the `welcome`.
    pub async fn customer(&self, extra: Value) -> (Ws, Value) {
        let mut ws = self.connect_customer().await;
        let mut opts = json!({"name": "Ann"});
        merge(&mut opts, extra);
        let welcome = ws.customer_hello(opts).await;
        (ws, welcome)
    }

    /// An agent connection past `hello`; returns it and the `welcome`.
    pub async fn agent(&self, token: &str) -> (Ws, Value) {
        let mut ws = self.connect_agent().await;
        ws.name = "agent".into();
        let welcome = ws.agent_login(token).await;
        if let Some(id) = welcome["agent"]["id"].as_str() {
            ws.name = format!("agent {id}");
        }
        (ws, welcome)
    }

    /// Creates an agent over REST, connects it and makes it available.
    pub async fn available_agent(
        &self,
        id: &str,
        name: &str,
        skills: &[(&str, u32)],
        capacity: u32,
    ) -> (Ws, String) {
        let token = self.create_agent(id, name, skills, capacity, false).await;
        let (mut ws, _welcome) = self.agent(&token).await;
        ws.go_available().await;
        (ws, token)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// `... listening on http://127.0.0.1:43121 ...` → the address.
fn parse_listen_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("listening on http://")? + "listening on http://".len();
    let addr: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.parse().ok()
}

/// Shallow-merges the fields of `extra` (an object) into `base`.
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        for (key, value) in extra {
            base.insert(key, value);
        }
    }
}

/// Hex HMAC-SHA256 of `user_id` under `secret`: a customer identity signature.
pub fn sign_identity(user_id: &str, secret: &str) -> String {
    hmac_hex(secret, user_id)
}

/// A verified identity for `hello`.
pub fn identity(user_id: &str, name: &str) -> Value {
    json!({
        "user_id": user_id, "name": name, "email": format!("{user_id}@example.com"),
        "signature": sign_identity(user_id, IDENTITY_SECRET),
    })
}

// ---------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------

/// How a connection ended.
#[derive(Clone, Debug)]
pub struct Closed {
    /// The close code of the server's Close frame; `None` when the socket ended without one.
    pub code: Option<u16>,
    pub reason: String,
}

enum ReadEnd {
    Timeout,
    Closed,
}

/// One WebSocket connection to the hub.
pub struct Ws {
    pub name: String,
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames received but not yet consumed by a wait.
    buffer: VecDeque<Value>,
    /// Every frame received, in order (for assertions and failure messages).
    seen: Vec<Value>,
    closed: Option<Closed>,
    next_req: u64,
    hub_log: OutputLog,
}

/// Frame type.
pub fn ty(frame: &Value) -> &str {
    frame["type"].as_str().unwrap_or("")
}

pub fn is_event(frame: &Value, conversation_id: &str, kind: &str) -> bool {
    ty(frame) == "event" && frame["conversation_id"] == conversation_id && frame["kind"] == kind
}

pub fn seq_of(frame: &Value) -> u64 {
    frame["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer seq in {frame}"))
}

impl Ws {
    pub async fn connect(hub: &Hub, path: &str, name: &str) -> Ws {
        let url = hub.ws_url(path);
        let (stream, _response) =
            match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url)).await {
                Ok(Ok(ok)) => ok,
                Ok(Err(e)) => panic!(
                    "WebSocket connect to {url} failed: {e}\nhub output:\n{}",
                    hub.log_tail(30)
                ),
                Err(_) => panic!(
                    "WebSocket connect to {url} timed out\nhub output:\n{}",
                    hub.log_tail(30)
                ),
            };
        Ws {
            name: name.to_string(),
            stream,
            buffer: VecDeque::new(),
            seen: Vec::new(),
            closed: None,
            next_req: 0,
            hub_log: hub.output(),
        }
    }

    /// Every frame received so far, in order.
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_ref()
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_raw(&frame.to_string()).await;
    }

    /// Sends a text frame as is (for malformed input).
    pub async fn send_raw(&mut self, text: &str) {
        let name = self.name.clone();
        match tokio::time::timeout(WAIT, self.stream.send(Message::text(text.to_string()))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "{name}: sending {} failed: {e}{}",
                abbreviate(text),
                self.context()
            ),
            Err(_) => panic!(
                "{name}: sending {} timed out{}",
                abbreviate(text),
                self.context()
            ),
        }
    }

    /// Closes the connection from the client side (a normal close).
    pub async fn close(mut self) {
        // The hub may already be gone (crash tests); either way the socket is dropped next.
        let _ = tokio::time::timeout(WAIT, self.stream.close(None)).await;
    }

    /// Drops the TCP connection without a Close frame (a crashed tab, a lost network).
    pub fn drop_connection(self) {
        drop(self);
    }

    /// Reads one frame from the socket (not the buffer) until `deadline`.
    async fn read_one(&mut self, deadline: Instant) -> Result<Value, ReadEnd> {
        if self.closed.is_some() {
            return Err(ReadEnd::Closed);
        }
        loop {
            let message = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Err(ReadEnd::Timeout),
                Ok(None) => {
                    self.closed = Some(Closed {
                        code: None,
                        reason: "stream ended without a Close frame".into(),
                    });
                    return Err(ReadEnd::Closed);
                }
                Ok(Some(Err(e))) => {
                    self.closed = Some(Closed {
                        code: None,
                        reason: format!("socket error without a Close frame: {e}"),
                    });
                    return Err(ReadEnd::Closed);
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!(
                            "{}: the hub sent a text frame that is not JSON ({e}): {}",
                            self.name,
                            abbreviate(text.as_str())
                        )
                    });
                    assert!(
                        value.get("type").and_then(Value::as_str).is_some(),
                        "{}: the hub sent a frame without a string `type`: {value}",
                        self.name
                    );
                    self.seen.push(value.clone());
                    return Ok(value);
                }
                Message::Binary(bytes) => panic!(
                    "{}: the hub sent a binary frame ({} bytes); the contract says text frames",
                    self.name,
                    bytes.len()
                ),
                Message::Close(frame) => {
                    self.closed = Some(match frame {
                        Some(frame) => Closed {
                            code: Some(u16::from(frame.code)),
                            reason: frame.reason.to_string(),
                        },
                        None => Closed {
                            code: None,
                            reason: "Close frame without a code".into(),
                        },
                    });
                    return Err(ReadEnd::Closed);
                }
                // Pings are answered by tungstenite itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    /// The next frame (buffered first), or `None` on timeout or close.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(frame) = self.buffer.pop_front() {
            return Some(frame);
        }
        self.read_one(Instant::now() + timeout).await.ok()
    }

    /// The first frame (buffered or new) matching `pred`; the others stay buffered, in
    /// order, for later waits. Fails after `timeout`, naming `what` and the frames seen.
    pub async fn wait_for_within(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(index) = self.buffer.iter().position(&pred) {
            return self.buffer.remove(index).expect("index in range");
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_one(deadline).await {
                Ok(frame) if pred(&frame) => return frame,
                Ok(frame) => self.buffer.push_back(frame),
                Err(ReadEnd::Timeout) => {
                    panic!(
                        "{}: timed out after {timeout:?} waiting for {what}{}",
                        self.name,
                        self.context()
                    )
                }
                Err(ReadEnd::Closed) => panic!(
                    "{}: the socket closed ({:?}) while waiting for {what}{}",
                    self.name,
                    self.closed,
                    self.context()
                ),
            }
        }
    }

    /// `wait_for_within` with the default timeout.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(what, WAIT, pred).await
    }

    /// Asserts that no frame matching `pred` is buffered or arrives within `duration`.
    /// Only for what the contract says must never arrive.
    pub async fn expect_no(
        &mut self,
        what: &str,
        duration: Duration,
        pred: impl Fn(&Value) -> bool,
    ) {
        if let Some(frame) = self.buffer.iter().find(|f| pred(f)) {
            panic!(
                "{}: unexpected {what}: {frame}{}",
                self.name,
                self.context()
            );
        }
        let deadline = Instant::now() + duration;
        loop {
            match self.read_one(deadline).await {
                Ok(frame) if pred(&frame) => {
                    panic!(
                        "{}: unexpected {what}: {frame}{}",
                        self.name,
                        self.context()
                    )
                }
                Ok(frame) => self.buffer.push_back(frame),
                Err(ReadEnd::Timeout) => return,
                Err(ReadEnd::Closed) => panic!(
                    "{}: the socket closed ({:?}) while checking that no {what} arrives{}",
                    self.name,
                    self.closed,
                    self.context()
                ),
            }
        }
    }

    /// Asserts that nothing at all arrives within `duration`.
    pub async fn expect_silence(&mut self, duration: Duration) {
        self.expect_no("frame (expected silence)", duration, |_| true)
            .await;
    }

    /// Waits for the server's Close frame and asserts its code. Frames before it are
    /// buffered.
    pub async fn expect_close(&mut self, code: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_one(deadline).await {
                Ok(frame) => self.buffer.push_back(frame),
                Err(ReadEnd::Timeout) => panic!(
                    "{}: timed out after {timeout:?} waiting for a Close frame with code {code}{}",
                    self.name,
                    self.context()
                ),
                Err(ReadEnd::Closed) => {
                    let closed = self.closed.clone().expect("closed is set");
                    assert_eq!(
                        closed.code,
                        Some(code),
                        "{}: expected close code {code}, got {closed:?}{}",
                        self.name,
                        self.context()
                    );
                    return;
                }
            }
        }
    }

    /// A fresh request id.
    pub fn req(&mut self) -> String {
        self.next_req += 1;
        format!("r{}", self.next_req)
    }

    /// Sends `frame` (adding a `req` if it has none) and returns the `ack` or `error` that
    /// carries its `req`; other frames stay buffered.
    pub async fn request(&mut self, frame: Value) -> Value {
        self.request_within(frame, WAIT).await
    }

    pub async fn request_within(&mut self, mut frame: Value, timeout: Duration) -> Value {
        let req = match frame.get("req").and_then(Value::as_str) {
            Some(req) => req.to_string(),
            None => {
                let req = self.req();
                frame["req"] = json!(req);
                req
            }
        };
        let what = format!("the ack or error for {frame}");
        self.send(frame).await;
        self.wait_for_within(&what, timeout, |f| {
            matches!(ty(f), "ack" | "error") && f["req"] == req.as_str()
        })
        .await
    }

    /// `request`, asserting an `ack`.
    pub async fn ok(&mut self, frame: Value) -> Value {
        let sent = frame.to_string();
        let reply = self.request(frame).await;
        assert_eq!(
            ty(&reply),
            "ack",
            "{}: expected an ack for {sent}, got {reply}{}",
            self.name,
            self.context()
        );
        reply
    }

    /// `request`, asserting an `error` with `code`.
    pub async fn err(&mut self, frame: Value, code: &str) -> Value {
        let sent = frame.to_string();
        let reply = self.request(frame).await;
        assert!(
            ty(&reply) == "error" && reply["code"] == code,
            "{}: expected error {code} for {sent}, got {reply}{}",
            self.name,
            self.context()
        );
        reply
    }

    /// Sends `hello` and returns the `welcome`.
    pub async fn hello(&mut self, hello: Value) -> Value {
        let what = format!("welcome after {hello}");
        self.send(hello).await;
        self.wait_for(&what, |f| ty(f) == "welcome").await
    }

    /// Customer `hello` with `opts` (session, name, email, identity) merged in.
    pub async fn customer_hello(&mut self, opts: Value) -> Value {
        let mut hello = json!({"type": "hello", "role": "customer"});
        merge(&mut hello, opts);
        self.hello(hello).await
    }

    /// Agent `hello` with `token`.
    pub async fn agent_login(&mut self, token: &str) -> Value {
        self.hello(json!({"type": "hello", "role": "agent", "token": token}))
            .await
    }

    /// `ping` → `ack`.
    pub async fn ping(&mut self) {
        self.ok(json!({"type": "ping"})).await;
    }

    // ---- agent helpers ----

    pub async fn set_status(&mut self, status: &str) -> Value {
        self.ok(json!({"type": "status", "status": status})).await
    }

    pub async fn go_available(&mut self) {
        self.set_status("available").await;
    }

    pub async fn wait_offer(&mut self) -> Value {
        self.wait_for("an offer", |f| ty(f) == "offer").await
    }

    pub async fn wait_offer_for(&mut self, conversation_id: &str) -> Value {
        let what = format!("an offer for {conversation_id}");
        self.wait_for(&what, |f| {
            ty(f) == "offer" && f["conversation_id"] == conversation_id
        })
        .await
    }

    pub async fn accept(&mut self, offer: &Value) -> Value {
        self.ok(json!({"type": "accept", "offer_id": offer["offer_id"]}))
            .await
    }

    /// Waits for the next offer, accepts it; returns its conversation id.
    pub async fn accept_next_offer(&mut self) -> String {
        let offer = self.wait_offer().await;
        self.accept(&offer).await;
        offer["conversation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("offer without conversation_id: {offer}"))
            .to_string()
    }

    // ---- conversation helpers ----

    /// `start` → the new conversation's id (asserting `seq` 1).
    pub async fn start_chat(&mut self, topic: &str, text: &str) -> String {
        let ack = self
            .ok(json!({"type": "start", "topic": topic, "text": text, "metadata": {}}))
            .await;
        assert_eq!(ack["seq"], 1, "start ack must carry seq 1: {ack}");
        ack["conversation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("start ack without conversation_id: {ack}"))
            .to_string()
    }

    /// `message` → its `seq`.
    pub async fn say(&mut self, conversation_id: &str, text: &str) -> u64 {
        let ack = self
            .ok(json!({"type": "message", "conversation_id": conversation_id, "text": text}))
            .await;
        seq_of(&ack)
    }

    /// Waits for the event of `kind` in `conversation_id`.
    pub async fn wait_event(&mut self, conversation_id: &str, kind: &str) -> Value {
        let what = format!("a {kind} event in {conversation_id}");
        self.wait_for(&what, |f| is_event(f, conversation_id, kind))
            .await
    }

    /// Waits for the event with `seq` in `conversation_id`.
    pub async fn wait_seq(&mut self, conversation_id: &str, seq: u64) -> Value {
        let what = format!("event seq {seq} in {conversation_id}");
        self.wait_for(&what, |f| {
            ty(f) == "event" && f["conversation_id"] == conversation_id && f["seq"] == seq
        })
        .await
    }

    /// The whole `history` after `after_seq`, following `more`.
    pub async fn history(&mut self, conversation_id: &str, after_seq: u64) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = after_seq;
        loop {
            let ack = self
                .ok(
                    json!({"type": "history", "conversation_id": conversation_id,
                           "after_seq": after, "limit": 200}),
                )
                .await;
            let page = ack["events"]
                .as_array()
                .unwrap_or_else(|| panic!("history ack without events: {ack}"))
                .clone();
            let more = ack["more"].as_bool().unwrap_or(false);
            if let Some(last) = page.last() {
                after = seq_of(last);
            }
            let empty = page.is_empty();
            events.extend(page);
            if !more || empty {
                return events;
            }
        }
    }

    fn context(&self) -> String {
        let skip = self.seen.len().saturating_sub(40);
        let frames: Vec<String> = self.seen[skip..]
            .iter()
            .map(|f| abbreviate(&f.to_string()))
            .collect();
        format!(
            "\n-- frames received on this socket ({} in all, last {}):\n{}\n-- close: {:?}\n-- hub output (tail):\n{}",
            self.seen.len(),
            frames.len(),
            frames.join("\n"),
            self.closed,
            self.hub_log.tail(25)
        )
    }
}

fn abbreviate(text: &str) -> String {
    if text.len() <= 400 {
        text.to_string()
    } else {
        let mut end = 400;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &text[..end], text.len())
    }
}

/// The `seq`s of a list of events.
pub fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(seq_of).collect()
}

/// The `kind`s of a list of events.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Repeats `attempt` until it returns `Some`, with a short pause between attempts, for
/// state the hub only exposes by being asked (readiness after an outage). Fails after
/// `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        // A retry interval, not a synchronization point: there is no event to wait for.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The entry of `conversation_id` in the `conversations` of a `welcome`; fails naming
/// `whose` welcome when it is not listed.
pub fn listed_in_welcome(welcome: &Value, conversation_id: &str, whose: &str) -> Value {
    welcome["conversations"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|c| c["conversation_id"] == conversation_id)
        })
        .unwrap_or_else(|| panic!("{whose} does not list {conversation_id}: {welcome}"))
        .clone()
}

/// A chat in progress: a customer and an agent (`alice`) who accepted it.
pub struct Chat {
    pub customer: Ws,
    pub agent: Ws,
    pub welcome: Value,
    pub agent_token: String,
    pub conversation_id: String,
}

/// Creates `alice`, connects a customer, starts a `general` chat and has alice accept it;
/// both sides have seen the `joined` event (seq 2).
pub async fn chat(hub: &Hub) -> Chat {
    let (mut agent, agent_token) = hub.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, welcome) = hub.customer(json!({})).await;
    let conversation_id = customer.start_chat("general", "Hello, I need help").await;
    let accepted = agent.accept_next_offer().await;
    assert_eq!(accepted, conversation_id);
    customer.wait_event(&conversation_id, "joined").await;
    agent.wait_event(&conversation_id, "joined").await;
    Chat {
        customer,
        agent,
        welcome,
        agent_token,
        conversation_id,
    }
}
pub mod cluster;
pub mod extra;
pub mod from_addr;
pub mod store_fixtures;

/// Hex HMAC-SHA256 of `message` under `secret`.
pub fn hmac_hex(secret: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length works");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
pub mod nodes;

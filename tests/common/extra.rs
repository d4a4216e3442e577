//! Helpers for the handoff, ticket and webhook tests (`tests/handoff.rs`,
//! `tests/tickets.rs`, `tests/tickets_api.rs`, `tests/webhook.rs`), on top of the shared
//! harness:
//!
//! - [`HubConfig`]: the harness's [`TestConfig`] plus the keys it does not write (webhook
//!   URL and secret, `[webhook]` and `[retention]` settings, per-topic
//!   `transfer_timeout_ms` and `escalation_priority_boost`); [`webhook_config`], the
//!   webhook tests' hub with quick retries.
//! - [`Hub::start_with_env`]: a hub process with extra environment variables (the
//!   test-only `SWITCHBOARD_FAILPOINT`); [`Hub::wait_exited`] for a hub that dies by itself.
//! - Ticket and supervisor REST helpers on [`Hub`].
//! - [`WebhookReceiver`]: an HTTP server inside the test that records every request with
//!   its method, path, headers and raw body, checks the `Switchboard-Signature` itself
//!   (independently of the hub's code), and can fail the next N requests (503, or a status
//!   of the test's choosing), answer 503 while "down", or not listen yet.
//!
//! As in the harness, nothing sleeps to synchronize: waits end on the awaited request or
//! state, with a deadline.

use std::{
    net::SocketAddr,
    process::{Command, ExitStatus},
    sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
};
use hmac::{Hmac, Mac};
use tokio::sync::watch;

use super::*;

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// [`TestConfig`] plus the keys the tests of tickets, handoffs and the webhook need.
#[derive(Clone, Debug, Default)]
pub struct HubConfig {
    pub base: TestConfig,
    /// Top-level `key = "value"` (strings).
    top_level: Vec<(String, String)>,
    /// `[webhook] key = value`.
    webhook: Vec<(String, String)>,
    /// `[retention] key = value`.
    retention: Vec<(String, String)>,
    /// `(topic, key, value)`: extra keys written into that topic's table.
    topic_keys: Vec<(String, String, String)>,
}

impl HubConfig {
    pub fn new(base: TestConfig) -> HubConfig {
        HubConfig {
            base,
            ..HubConfig::default()
        }
    }

    /// `webhook_url` and `webhook_secret`.
    pub fn webhook(mut self, url: &str, secret: &str) -> Self {
        set(&mut self.top_level, "webhook_url", url.to_string());
        set(&mut self.top_level, "webhook_secret", secret.to_string());
        self
    }

    /// `[webhook] key = value`.
    pub fn webhook_setting(mut self, key: &str, value: impl Display) -> Self {
        set(&mut self.webhook, key, value.to_string());
        self
    }

    /// `[retention] key = value`.
    pub fn retention(mut self, key: &str, value: impl Display) -> Self {
        set(&mut self.retention, key, value.to_string());
        self
    }

    /// `key = value` in the table of `topic` (which must exist in `base`), replacing the
    /// harness's own line for that key if it writes one.
    pub fn topic_key(mut self, topic: &str, key: &str, value: impl Display) -> Self {
        self.topic_keys
            .push((topic.to_string(), key.to_string(), value.to_string()));
        self
    }

    pub fn to_toml(&self) -> String {
        let mut toml = self.base.to_toml();
        for (topic, key, value) in &self.topic_keys {
            // `TestConfig::to_toml` writes each topic's name on a line of its own; the
            // topic's table runs to the next table header.
            let name_line = format!("\nname = {topic:?}\n");
            let start = toml
                .find(&name_line)
                .unwrap_or_else(|| panic!("topic {topic} is not in the test config:\n{toml}"))
                + name_line.len();
            let end = toml[start..]
                .find("\n[")
                .map_or(toml.len(), |at| start + at + 1);
            let line = format!("{key} = {value}\n");
            let existing = toml[start..end]
                .match_indices(&format!("{key} = "))
                .map(|(at, _)| start + at)
                .find(|&at| toml[..at].ends_with('\n'));
            match existing {
                // A key the harness already writes: replace its line.
                Some(at) => {
                    let line_end = toml[at..].find('\n').map_or(toml.len(), |e| at + e + 1);
                    toml.replace_range(at..line_end, &line);
                }
                None => toml.insert_str(start, &line),
            }
        }
        // Top-level keys must come before the first table.
        let mut head = String::new();
        for (key, value) in &self.top_level {
            head.push_str(&format!("{key} = {value:?}\n"));
        }
        toml.insert_str(0, &head);
        if !self.webhook.is_empty() {
            toml.push_str("\n[webhook]\n");
            for (key, value) in &self.webhook {
                toml.push_str(&format!("{key} = {value}\n"));
            }
        }
        if !self.retention.is_empty() {
            toml.push_str("\n[retention]\n");
            for (key, value) in &self.retention {
                toml.push_str(&format!("{key} = {value}\n"));
            }
        }
        toml
    }
}

/// The webhook tests' hub: deliveries to `url` signed with `secret`; retries start at
/// 300 ms and double (with jitter, up to half off) to at most 2 s.
pub fn webhook_config(url: &str, secret: &str) -> HubConfig {
    HubConfig::new(TestConfig::default())
        .webhook(url, secret)
        .webhook_setting("initial_backoff_ms", 300)
        .webhook_setting("max_backoff_ms", 2_000)
        .webhook_setting("give_up_after_ms", 600_000)
        .webhook_setting("request_timeout_ms", 2_000)
}

/// Redis and a hub started with `config`.
pub async fn setup_hub(config: &HubConfig) -> (RedisServer, Hub) {
    let redis = RedisServer::start().await;
    let hub = Hub::start(&redis, &config.to_toml()).await;
    (redis, hub)
}

// ---------------------------------------------------------------------------------------
// Hub: processes, REST
// ---------------------------------------------------------------------------------------

impl Hub {
    /// Like [`Hub::start`], with extra environment variables for the process (only this
    /// process: `restart()` later starts one without them).
    pub async fn start_with_env(
        redis: &RedisServer,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Hub {
        let dir = tempfile::tempdir().expect("temp dir for the hub config");
        let config_path = dir.path().join("switchboard.toml");
        std::fs::write(&config_path, config_toml).expect("write hub config");
        let log = OutputLog::default();
        let mut command = Command::new(hub_bin());
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--redis-url",
                &redis.url(),
            ])
            .arg("--config")
            .arg(&config_path)
            .env("NO_COLOR", "1");
        for (key, value) in env {
            command.env(key, value);
        }
        let (child, mut lines) = spawn_logged(command, &log).expect("spawn switchboard");
        let mut child = Some(child);
        let line = wait_for_line(&mut lines, START_TIMEOUT, |l| {
            l.contains("listening on http://")
        })
        .await;
        let Some(addr) = line.as_deref().and_then(parse_listen_addr) else {
            kill_and_reap(&mut child);
            panic!(
                "the hub (env {env:?}) did not print `listening on http://ADDR`; its output:\n{}",
                log.tail(60)
            );
        };
        Hub {
            addr,
            child,
            log,
            redis_url: redis.url(),
            config_path,
            _dir: dir,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("http client"),
        }
    }

    /// `switchboard ARGS` exactly as given (no harness flags), with the environment `env`
    /// added and every inherited `SWITCHBOARD_*` variable removed, run in a temp dir of its
    /// own; waits for `listening on http://ADDR`. For tests of the command line itself
    /// (flags read from the environment, the `demo` command). `restart()` is not for
    /// such a hub: it would start `serve` with the harness's flags.
    pub async fn start_command(args: &[&str], env: &[(&str, &str)]) -> Hub {
        let dir = tempfile::tempdir().expect("temp dir for the hub");
        let log = OutputLog::default();
        let mut command = Command::new(hub_bin());
        command
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SWITCHBOARD_") {
                command.env_remove(key);
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let (child, mut lines) = spawn_logged(command, &log).expect("spawn switchboard");
        let mut child = Some(child);
        let line = wait_for_line(&mut lines, START_TIMEOUT, |l| {
            l.contains("listening on http://")
        })
        .await;
        let Some(addr) = line.as_deref().and_then(parse_listen_addr) else {
            kill_and_reap(&mut child);
            panic!(
                "`switchboard {}` (env {env:?}) did not print `listening on http://ADDR`; its output:\n{}",
                args.join(" "),
                log.tail(60)
            );
        };
        Hub {
            addr,
            child,
            log,
            redis_url: String::new(),
            config_path: PathBuf::new(),
            _dir: dir,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("http client"),
        }
    }

    /// Waits until the hub process ends by itself (a failpoint) and returns how it ended.
    /// Call after an event that shows it is going down (its sockets closed).
    pub async fn wait_exited(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("the hub was started");
            if let Some(status) = child.try_wait().expect("try_wait on the hub") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the hub did not exit within {timeout:?}; its output:\n{}",
                self.log_tail(30)
            );
            // A retry interval: process exit has no event to wait for here.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /v1/agents` for a supervisor (not available for chats); returns its token.
    pub async fn create_supervisor(&self, id: &str, name: &str) -> String {
        let body = json!({
            "id": id, "name": name, "skills": {}, "capacity": 1,
            "supervisor": true, "auto_accept": false,
        });
        let (status, reply) = self
            .http_json("POST", "/v1/agents", Some(ADMIN_TOKEN), Some(body))
            .await;
        assert_eq!(
            status, 201,
            "POST /v1/agents for supervisor {id}: {status} {reply}"
        );
        reply["token"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /v1/agents reply without token: {reply}"))
            .to_string()
    }

    /// A connected supervisor (it stays `away`).
    pub async fn supervisor(&self, id: &str, name: &str) -> (Ws, String) {
        let token = self.create_supervisor(id, name).await;
        let (ws, welcome) = self.agent(&token).await;
        assert_eq!(
            welcome["agent"]["supervisor"], true,
            "welcome of supervisor {id}: {welcome}"
        );
        (ws, token)
    }

    /// `GET /v1/tickets/{id}` as admin: status and body.
    pub async fn ticket(&self, ticket_id: &str) -> (u16, Value) {
        self.http_json(
            "GET",
            &format!("/v1/tickets/{ticket_id}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await
    }

    /// The ticket once it is stored (the flush may trail the `closed` event a little).
    pub async fn wait_ticket(&self, ticket_id: &str) -> Value {
        let what = format!("ticket {ticket_id} at GET /v1/tickets/{ticket_id}");
        eventually(&what, WAIT, || async {
            match self.ticket(ticket_id).await {
                (200, ticket) => Some(ticket),
                (404, _) => None,
                (status, body) => panic!("GET /v1/tickets/{ticket_id}: unexpected {status} {body}"),
            }
        })
        .await
    }

    /// One page of `GET /v1/tickets?after=&limit=` as admin.
    pub async fn tickets_page(&self, after: Option<&str>, limit: usize) -> Value {
        let path = match after {
            Some(cursor) => format!("/v1/tickets?after={cursor}&limit={limit}"),
            None => format!("/v1/tickets?limit={limit}"),
        };
        let (status, page) = self.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 200, "GET {path}: {status} {page}");
        assert!(
            page["tickets"].is_array(),
            "GET {path}: no `tickets` array: {page}"
        );
        page
    }

    /// Every ticket, oldest first, following `next`.
    pub async fn all_tickets(&self) -> Vec<Value> {
        let mut tickets = Vec::new();
        let mut after: Option<String> = None;
        for _page in 0..1000 {
            let page = self.tickets_page(after.as_deref(), 100).await;
            tickets.extend(page["tickets"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => return tickets,
            }
        }
        panic!("GET /v1/tickets: more than 1000 pages; the cursor does not advance?");
    }

    /// The tickets of one conversation, from the full list.
    pub async fn tickets_of(&self, conversation_id: &str) -> Vec<Value> {
        self.all_tickets()
            .await
            .into_iter()
            .filter(|t| t["conversation_id"] == conversation_id)
            .collect()
    }

    /// The value of a counter in `GET /metrics` (summed over matching label sets): lines
    /// starting with `name{` that contain every `label` (`outcome="failed"`).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200, "GET /metrics: {status}");
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter(|line| labels.iter().all(|label| line.contains(label)))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The string `field` (`kind`, `text`, …) of each event of a ticket's transcript that
/// has one, in order (panics when the ticket has no transcript).
pub fn transcript_values<'a>(ticket: &'a Value, field: &str) -> Vec<&'a str> {
    ticket["transcript"]
        .as_array()
        .unwrap_or_else(|| panic!("no transcript: {ticket}"))
        .iter()
        .filter_map(|event| event[field].as_str())
        .collect()
}

/// An event of `conversation_id` with `kind` among `events` (panics naming them if none).
pub fn find_event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event among {events:?}"))
}

/// Agent ids of a ticket's `agents` (objects with `id`, or plain ids).
pub fn agent_ids(ticket: &Value) -> Vec<String> {
    ticket["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("ticket without an agents array: {ticket}"))
        .iter()
        .map(|a| a["id"].as_str().or(a.as_str()).unwrap_or("?").to_string())
        .collect()
}

/// Every event a customer saw on its socket, plus its whole history: none may be a note
/// or carry a note field.
pub async fn assert_customer_never_saw_a_note(customer: &mut Ws, conversation_id: &str) {
    let history = customer.history(conversation_id, 0).await;
    let live: Vec<Value> = customer.seen().to_vec();
    for (source, frames) in [("live", &live), ("history", &history)] {
        for frame in frames.iter() {
            assert!(
                frame["kind"] != "note" && frame.get("note").is_none(),
                "the customer received a note ({source}): {frame}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Webhook receiver
// ---------------------------------------------------------------------------------------

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct WebhookDelivery {
    /// `POST` for a delivery.
    pub method: String,
    /// The request path (`/tickets` for a delivery).
    pub path: String,
    pub idempotency_key: Option<String>,
    pub signature: Option<String>,
    /// `Ok` when the signature header is valid for the raw body under the secret and its
    /// timestamp is within 300 s of now; otherwise why not.
    pub verified: Result<(), String>,
    /// The body as received (what the signature covers).
    pub raw_body: String,
    /// The body parsed as JSON (a string saying why when it is not JSON).
    pub body: Value,
    /// The status the receiver answered.
    pub status: u16,
    pub at: Instant,
}

impl WebhookDelivery {
    pub fn acknowledged(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn is_for(&self, ticket_id: &str) -> bool {
        self.idempotency_key.as_deref() == Some(ticket_id)
    }
}

struct ReceiverState {
    secret: String,
    /// Requests still to be failed (with `fail_status`) before answering normally.
    fail_next: AtomicUsize,
    fail_status: AtomicU16,
    /// Answer 503 to everything while set.
    down: AtomicBool,
    log: watch::Sender<Vec<WebhookDelivery>>,
}

/// An HTTP server inside the test standing in for a ticket system: `POST /tickets`. Every
/// request is recorded, also one with another method or path (answered 404).
pub struct WebhookReceiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Until `listen()`, the receiver's port, held by a socket that is bound but does not
    /// listen: connections are refused, and no other socket can take the port in the
    /// meantime (a port only found free once was taken by a concurrent test's connection).
    reserved: Option<tokio::net::TcpSocket>,
}

impl WebhookReceiver {
    /// Listening at once on a free port.
    pub async fn start(secret: &str) -> WebhookReceiver {
        let mut receiver = WebhookReceiver::not_listening(secret);
        receiver.listen().await;
        receiver
    }

    /// Not listening yet (connections are refused) on a port held for it; `listen()`
    /// later.
    pub fn not_listening(secret: &str) -> WebhookReceiver {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket for the receiver");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("hold a port for the receiver");
        let addr = socket.local_addr().expect("receiver address");
        let (log, _) = watch::channel(Vec::new());
        WebhookReceiver {
            addr,
            state: Arc::new(ReceiverState {
                secret: secret.to_string(),
                fail_next: AtomicUsize::new(0),
                fail_status: AtomicU16::new(503),
                down: AtomicBool::new(false),
                log,
            }),
            server: None,
            reserved: Some(socket),
        }
    }

    /// Starts listening on the reserved port.
    pub async fn listen(&mut self) {
        let socket = self
            .reserved
            .take()
            .expect("the receiver is already listening");
        let listener = socket
            .listen(1024)
            .unwrap_or_else(|e| panic!("listen as the webhook receiver on {}: {e}", self.addr));
        self.serve(listener);
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&self.state));
        self.server = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.expect("webhook receiver");
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}/tickets", self.addr)
    }

    /// The next `n` requests are answered 503.
    pub fn fail_next(&self, n: usize) {
        self.fail_next_with(n, 503);
    }

    /// The next `n` requests are answered `status`.
    pub fn fail_next_with(&self, n: usize, status: u16) {
        self.state.fail_status.store(status, Ordering::SeqCst);
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// While down, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.state.log.borrow().clone()
    }

    /// Waits until the deliveries so far satisfy `done`; returns them.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[WebhookDelivery]) -> bool,
    ) -> Vec<WebhookDelivery> {
        let mut log = self.state.log.subscribe();
        let waited = tokio::time::timeout(timeout, log.wait_for(|d| done(d))).await;
        match waited {
            Ok(Ok(deliveries)) => deliveries.clone(),
            _ => panic!(
                "webhook receiver: timed out after {timeout:?} waiting for {what}; deliveries:\n{}",
                describe(&self.deliveries())
            ),
        }
    }

    /// Waits for request number `index` (0 is the first this receiver got); returns it.
    pub async fn nth(&self, what: &str, index: usize, timeout: Duration) -> WebhookDelivery {
        let deliveries = self.wait_until(what, timeout, |d| d.len() > index).await;
        deliveries[index].clone()
    }

    /// Waits for an acknowledged (2xx) delivery of `ticket_id`; returns all deliveries.
    pub async fn wait_delivered(&self, ticket_id: &str, timeout: Duration) -> Vec<WebhookDelivery> {
        let what = format!("an acknowledged delivery of {ticket_id}");
        self.wait_until(&what, timeout, |d| {
            d.iter().any(|d| d.is_for(ticket_id) && d.acknowledged())
        })
        .await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// One line per delivery, for failure messages.
pub fn describe(deliveries: &[WebhookDelivery]) -> String {
    if deliveries.is_empty() {
        return "(none)".into();
    }
    deliveries
        .iter()
        .map(|d| {
            format!(
                "{} {} key={:?} status={} verified={:?} signature={:?} ticket_id={}",
                d.method,
                d.path,
                d.idempotency_key,
                d.status,
                d.verified,
                d.signature,
                d.body["ticket_id"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let signature = header("switchboard-signature");
    let verified = match &signature {
        Some(signature) => verify_signature(&state.secret, signature, &body, 300),
        None => Err("no Switchboard-Signature header".into()),
    };
    let raw_body = String::from_utf8_lossy(&body).to_string();
    let parsed = serde_json::from_slice(&body)
        .unwrap_or_else(|e| Value::String(format!("body is not JSON ({e}): {raw_body}")));
    let routed = method == Method::POST && uri.path() == "/tickets";
    let failing = routed
        && state
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let status = if !routed {
        StatusCode::NOT_FOUND
    } else if state.down.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if failing {
        StatusCode::from_u16(state.fail_status.load(Ordering::SeqCst))
            .expect("a valid failure status")
    } else if verified.is_err() {
        // A real receiver drops unsigned or forged deliveries.
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let delivery = WebhookDelivery {
        method: method.to_string(),
        path: uri.path().to_string(),
        idempotency_key: header("idempotency-key"),
        signature,
        verified,
        raw_body,
        body: parsed,
        status: status.as_u16(),
        at: Instant::now(),
    };
    state.log.send_modify(|log| log.push(delivery));
    status
}

/// The `t` and `v1` parts of a `Switchboard-Signature` header (`t=<unix seconds>,v1=<hex>`),
/// each `None` when missing.
pub fn signature_parts(header: &str) -> (Option<&str>, Option<&str>) {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    (t, v1)
}

/// Checks `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` the way a receiver
/// would (as `docs/tickets.md` shows), with its own HMAC rather than the hub's code.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    tolerance_s: u64,
) -> Result<(), String> {
    let (t, v1) = signature_parts(header);
    let t = t.ok_or("no t= in the signature")?;
    let v1 = v1.ok_or("no v1= in the signature")?;
    let seconds: u64 = t
        .parse()
        .map_err(|_| format!("t={t} is not unix seconds"))?;
    let now_s = now_ms() / 1000;
    if now_s.abs_diff(seconds) > tolerance_s {
        return Err(format!(
            "t={seconds} is more than {tolerance_s} s from now ({now_s})"
        ));
    }
    let expected = hex::decode(v1).map_err(|_| format!("v1={v1} is not hex"))?;
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length works");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| "v1 is not the HMAC-SHA256 of \"<t>.<body>\" under the secret".to_string())
}

//! The `switchboard` process itself (contract, "Starting the server"; README):
//!
//! - it exits non-zero with one line on stderr, `switchboard: <reason>`, when it cannot
//!   start: Redis unreachable, a bad config file, the listen port taken;
//! - every flag of `switchboard serve` is read from its environment variable
//!   (`SWITCHBOARD_LISTEN`, `_REDIS_URL`, `_CONFIG`, `_ADMIN_TOKEN`, `_IDENTITY_SECRET`,
//!   `_WEBHOOK_URL`, `_WEBHOOK_SECRET`, `_NODE_ID`, `_LOG`: the `env` of each flag in
//!   `src/config.rs`), and flags win over it;
//! - `switchboard demo` listens, creates its demo agents and serves `/demo`.
//!
//! Every process here is started with the `SWITCHBOARD_*` variables of the test's own
//! environment removed, so only what a test sets is seen. The demo is pointed at the
//! test's Redis with `SWITCHBOARD_REDIS_URL` (which `demo` reads before trying
//! 127.0.0.1:6379), so it never touches a Redis of the machine.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use common::extra::*;
use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Start failures
// ---------------------------------------------------------------------------------------

/// How a process expected to fail at start ended.
struct Exited {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `switchboard ARGS` (only `env` from the `SWITCHBOARD_*` variables) and waits for
/// it to exit by itself; fails if it is still running after the start timeout.
async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> Exited {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWITCHBOARD_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().expect("spawn switchboard");
    let output = tokio::time::timeout(START_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`switchboard {}` was still running after {START_TIMEOUT:?}; it should have \
                 refused to start",
                args.join(" ")
            )
        })
        .expect("wait for switchboard");
    Exited {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// Non-zero exit, nothing listening, and stderr exactly one line `switchboard: …`
/// mentioning each of `mentions`.
fn assert_refused_to_start(exited: &Exited, case: &str, mentions: &[&str]) {
    assert!(
        !exited.status.success(),
        "{case}: exited with {} (stdout {:?}, stderr {:?})",
        exited.status,
        exited.stdout,
        exited.stderr
    );
    assert!(
        !exited.stdout.contains("listening on"),
        "{case}: it said it listens: {:?}",
        exited.stdout
    );
    let lines: Vec<&str> = exited.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: stderr must be one line, got {lines:#?}"
    );
    assert!(
        lines[0].starts_with("switchboard: "),
        "{case}: the line must start with `switchboard: `: {:?}",
        lines[0]
    );
    for mention in mentions {
        assert!(
            lines[0].to_lowercase().contains(&mention.to_lowercase()),
            "{case}: the reason should mention {mention:?}: {:?}",
            lines[0]
        );
    }
}

/// A config file in `dir` holding `toml`.
fn write_config(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, toml).expect("write a config file");
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[tokio::test]
async fn start_with_redis_unreachable_exits_non_zero_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "ok.toml", &TestConfig::default().to_toml());
    // A port nobody listens on (bound a moment ago and released).
    let dead = format!("redis://127.0.0.1:{}/0", free_port());
    let exited = run_to_exit(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &dead,
            "--config",
            path_str(&config),
        ],
        &[],
    )
    .await;
    assert_refused_to_start(&exited, "redis unreachable", &["redis"]);

    // A Redis that accepts connections but never answers (SIGSTOP): the start gives up
    // after the store timeout instead of hanging.
    let redis = RedisServer::start().await;
    let toml = TestConfig::default()
        .limit("store_timeout_ms", 500)
        .to_toml();
    let config = write_config(dir.path(), "short.toml", &toml);
    redis.stop();
    let exited = run_to_exit(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis.url(),
            "--config",
            path_str(&config),
        ],
        &[],
    )
    .await;
    redis.cont();
    assert_refused_to_start(&exited, "redis hung", &["redis"]);
}

#[tokio::test]
async fn start_with_a_bad_config_file_exits_non_zero_with_one_line() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let good = TestConfig::default().to_toml();
    let cases = [
        (
            "not TOML",
            "admin_token = \"a\"\n[[topic]\nname = \"x\"\n".to_string(),
        ),
        ("an unknown key", format!("bogus_key = 1\n{good}")),
        (
            "a mistyped value",
            good.replace("messages_per_10s = 10000", "messages_per_10s = \"many\""),
        ),
        (
            "two default topics",
            good.replace(
                "name = \"urgent\"\ndefault = false",
                "name = \"urgent\"\ndefault = true",
            ),
        ),
    ];
    for (case, toml) in cases {
        assert_ne!(toml, good, "{case}: the bad config is the good one");
        let config = write_config(dir.path(), "bad.toml", &toml);
        let exited = run_to_exit(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--redis-url",
                &redis.url(),
                "--config",
                path_str(&config),
            ],
            &[],
        )
        .await;
        assert_refused_to_start(&exited, case, &["config"]);
    }
    // A config file that does not exist.
    let missing = dir.path().join("missing.toml");
    let exited = run_to_exit(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis.url(),
            "--config",
            path_str(&missing),
        ],
        &[],
    )
    .await;
    assert_refused_to_start(
        &exited,
        "a missing config file",
        &["config", "missing.toml"],
    );
}

#[tokio::test]
async fn start_on_a_port_already_taken_exits_non_zero_with_one_line() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "ok.toml", &TestConfig::default().to_toml());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to hold");
    let addr = taken.local_addr().expect("held address").to_string();
    let exited = run_to_exit(
        &[
            "serve",
            "--listen",
            &addr,
            "--redis-url",
            &redis.url(),
            "--config",
            path_str(&config),
        ],
        &[],
    )
    .await;
    assert_refused_to_start(&exited, "port taken", &[&addr]);
    drop(taken);
}

// ---------------------------------------------------------------------------------------
// Flags from the environment
// ---------------------------------------------------------------------------------------

const ENV_ADMIN: &str = "admin-from-env-0123456789";
const ENV_IDENTITY: &str = "identity-from-env";
const ENV_HOOK_SECRET: &str = "hook-secret-from-env";
const ENV_NODE: &str = "node-from-env";
/// The hub logs this at `info` before it listens.
const INFO_LINE: &str = "state restored from redis";

/// The consumers of the webhook outbox's consumer group, read from Redis.
async fn outbox_consumers(redis: &RedisServer) -> Vec<String> {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis");
    let consumers: Vec<std::collections::HashMap<String, String>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg("sb:{tickets}:outbox")
        .arg("webhook")
        .query_async(&mut conn)
        .await
        .expect("XINFO CONSUMERS of the webhook outbox");
    consumers
        .into_iter()
        .filter_map(|mut consumer| consumer.remove("name"))
        .collect()
}

/// A customer `hello` with an identity signed under `secret`.
fn identity_hello(secret: &str) -> Value {
    json!({"type": "hello", "role": "customer", "identity": {
        "user_id": "u42", "name": "Ann", "email": "ann@example.com",
        "signature": sign_identity("u42", secret),
    }})
}

#[tokio::test]
async fn every_serve_flag_is_read_from_its_environment_variable() {
    let redis = RedisServer::start().await;
    let receiver = WebhookReceiver::start(ENV_HOOK_SECRET).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // The file's admin token and identity secret (the harness's) are overridden by the
    // environment; its text limit is the file's own effect.
    let toml = TestConfig::default().limit("max_text_bytes", 100).to_toml();
    let config = write_config(dir.path(), "env.toml", &toml);
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [
        ("SWITCHBOARD_LISTEN", listen.as_str()),
        ("SWITCHBOARD_REDIS_URL", &redis.url()),
        ("SWITCHBOARD_CONFIG", path_str(&config)),
        ("SWITCHBOARD_ADMIN_TOKEN", ENV_ADMIN),
        ("SWITCHBOARD_IDENTITY_SECRET", ENV_IDENTITY),
        ("SWITCHBOARD_WEBHOOK_URL", &receiver.url()),
        ("SWITCHBOARD_WEBHOOK_SECRET", ENV_HOOK_SECRET),
        ("SWITCHBOARD_NODE_ID", ENV_NODE),
        ("SWITCHBOARD_LOG", "warn"),
    ];
    let hub = Hub::start_command(&["serve"], &env).await;

    // SWITCHBOARD_LISTEN: it listens there.
    assert_eq!(hub.addr().to_string(), listen, "{}", hub.log_tail(10));
    let (status, _) = hub.get("/healthz").await;
    assert_eq!(status, 200);

    // SWITCHBOARD_ADMIN_TOKEN: the admin token, over the file's.
    let body = json!({"id": "alice", "name": "Alice", "skills": {}, "capacity": 3});
    let (status, reply) = hub
        .http_json("POST", "/v1/agents", Some(ADMIN_TOKEN), Some(body.clone()))
        .await;
    assert_eq!(status, 401, "the file's admin token still works: {reply}");
    let (status, reply) = hub
        .http_json("POST", "/v1/agents", Some(ENV_ADMIN), Some(body))
        .await;
    assert_eq!(status, 201, "the environment's admin token: {reply}");
    let alice_token = reply["token"].as_str().expect("agent token").to_string();

    // SWITCHBOARD_IDENTITY_SECRET: identities signed with it are verified, the file's
    // secret no longer is.
    let mut ws = hub.connect_customer().await;
    ws.send(identity_hello(IDENTITY_SECRET)).await;
    ws.expect_close(4401, WAIT).await;
    let mut customer = hub.connect_customer().await;
    let welcome = customer.hello(identity_hello(ENV_IDENTITY)).await;
    assert_eq!(welcome["verified"], true, "{welcome}");

    // SWITCHBOARD_CONFIG: the file's limits apply (max_text_bytes = 100).
    let (mut alice, _) = hub.agent(&alice_token).await;
    alice.go_available().await;
    let conv = customer.start_chat("general", "hello").await;
    alice.accept_next_offer().await;
    customer.wait_event(&conv, "joined").await;
    customer
        .err(
            json!({"type": "message", "conversation_id": conv, "text": "x".repeat(101)}),
            "too_large",
        )
        .await;
    customer.say(&conv, &"x".repeat(100)).await;

    // SWITCHBOARD_WEBHOOK_URL and _SECRET: the ticket goes there, signed with that secret.
    let closed = alice
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let ticket_id = closed["ticket_id"].as_str().expect("ticket_id").to_string();
    let deliveries = receiver
        .wait_delivered(&ticket_id, Duration::from_secs(10))
        .await;
    let delivery = deliveries
        .iter()
        .find(|d| d.is_for(&ticket_id) && d.acknowledged())
        .expect("an acknowledged delivery");
    assert_eq!(
        delivery.verified,
        Ok(()),
        "signature under SWITCHBOARD_WEBHOOK_SECRET"
    );

    // SWITCHBOARD_NODE_ID: the outbox consumer that delivered it carries that name.
    let consumers = outbox_consumers(&redis).await;
    assert_eq!(consumers, vec![ENV_NODE.to_string()], "outbox consumers");

    // SWITCHBOARD_LOG = warn: the `info` line every start logs (see the next test) is
    // not there. It was written before `listening on`, seconds ago.
    assert!(
        !hub.output().contains(INFO_LINE),
        "an info line with SWITCHBOARD_LOG=warn:\n{}",
        hub.log_tail(20)
    );

    // SWITCHBOARD_REDIS_URL: the hub's Redis is this one; readiness follows it.
    let (status, _) = hub.get("/readyz").await;
    assert_eq!(status, 200, "{}", hub.log_tail(10));
    let mut redis = redis;
    redis.kill();
    eventually(
        "/readyz failing once the test's Redis is gone",
        WAIT,
        || async { (hub.get("/readyz").await.0 != 200).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn flags_win_over_their_environment_variables() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "flags.toml", &TestConfig::default().to_toml());
    let dead_redis = format!("redis://127.0.0.1:{}/0", free_port());
    let env = [
        ("SWITCHBOARD_REDIS_URL", dead_redis.as_str()),
        ("SWITCHBOARD_ADMIN_TOKEN", ENV_ADMIN),
        ("SWITCHBOARD_LOG", "warn"),
    ];
    let hub = Hub::start_command(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis.url(),
            "--config",
            path_str(&config),
            "--admin-token",
            "admin-from-flag-0123456789",
            "--log",
            "info",
        ],
        &env,
    )
    .await;
    let (status, _) = hub.get("/readyz").await;
    assert_eq!(status, 200, "--redis-url over SWITCHBOARD_REDIS_URL");
    let (status, body) = hub
        .http_json("GET", "/v1/agents", Some(ENV_ADMIN), None)
        .await;
    assert_eq!(
        status, 401,
        "SWITCHBOARD_ADMIN_TOKEN over --admin-token: {body}"
    );
    let (status, body) = hub
        .http_json(
            "GET",
            "/v1/agents",
            Some("admin-from-flag-0123456789"),
            None,
        )
        .await;
    assert_eq!(status, 200, "--admin-token: {body}");
    let output = hub.output();
    eventually("the info line with --log info", WAIT, || {
        let output = output.clone();
        async move { output.contains(INFO_LINE).then_some(()) }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------

const DEMO_ADMIN: &str = "demo-admin";

/// `demo agent ID: {"id":"ID","token":"…"}` as printed by the demo: the token.
fn printed_token(output: &OutputLog, id: &str) -> Option<String> {
    let prefix = format!("demo agent {id}: ");
    let tail = output.tail(300);
    let line = tail.lines().find_map(|l| {
        let at = l.find(&prefix)?;
        Some(l[at + prefix.len()..].to_string())
    })?;
    let reply: Value = serde_json::from_str(&line).ok()?;
    reply["token"].as_str().map(str::to_string)
}

#[tokio::test]
async fn demo_listens_creates_its_agents_and_serves_the_demo_page() {
    let redis = RedisServer::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    // A private Redis must not be needed; should the demo want one anyway, it would go on
    // this unused port, under the hub's temp dir.
    let private_port = free_port().to_string();
    let hub = Hub::start_command(
        &[
            "demo",
            "--listen",
            &listen,
            "--redis-port",
            &private_port,
            "--data-dir",
            "demo-data",
        ],
        &[("SWITCHBOARD_REDIS_URL", &redis.url())],
    )
    .await;
    assert_eq!(hub.addr().to_string(), listen, "{}", hub.log_tail(10));

    // The demo agents exist (the demo creates them once it is up) with its admin token.
    let agents = eventually("alice and bob in GET /v1/agents", WAIT, || async {
        let (status, body) = hub
            .http_json("GET", "/v1/agents", Some(DEMO_ADMIN), None)
            .await;
        assert_eq!(status, 200, "GET /v1/agents with {DEMO_ADMIN}: {body}");
        let agents = body["agents"].as_array()?.clone();
        let has = |id: &str| agents.iter().any(|a| a["id"] == id);
        (has("alice") && has("bob")).then_some(agents)
    })
    .await;
    let alice = agents
        .iter()
        .find(|a| a["id"] == "alice")
        .expect("alice listed");
    assert_eq!(alice["supervisor"], true, "{alice}");
    assert_eq!(alice["capacity"], 3, "{alice}");

    // They live in the test's Redis.
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis");
    let mut ids: Vec<String> = redis::cmd("HKEYS")
        .arg("sb:{agents}:profiles")
        .query_async(&mut conn)
        .await
        .expect("HKEYS of the agent profiles");
    ids.sort();
    assert_eq!(ids, vec!["alice", "bob"], "agents in the test's Redis");

    // The printed tokens log the agents in.
    let output = hub.output();
    let demo_page_line = format!("demo page: http://{listen}/demo");
    eventually("the demo's closing line", WAIT, || {
        let output = output.clone();
        let line = demo_page_line.clone();
        async move { output.contains(&line).then_some(()) }
    })
    .await;
    for id in ["alice", "bob"] {
        let token = printed_token(&output, id)
            .unwrap_or_else(|| panic!("no token printed for {id}:\n{}", output.tail(30)));
        let (_ws, welcome) = hub.agent(&token).await;
        assert_eq!(welcome["agent"]["id"], id, "{welcome}");
    }

    // The demo page, the widget and the console are served.
    for (path, content_type) in [
        ("/demo", "text/html"),
        ("/widget.js", "javascript"),
        ("/console/", "text/html"),
    ] {
        let response = reqwest::get(hub.http_url(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        let got = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            got.contains(content_type),
            "GET {path}: content-type {got:?}, expected {content_type}"
        );
        let body = response.text().await.unwrap_or_default();
        if content_type == "text/html" {
            assert!(
                body.to_lowercase().contains("<html"),
                "GET {path} is not an HTML page: {body:.200}"
            );
        }
    }
    let (status, page) = hub.get("/demo").await;
    assert_eq!(status, 200);
    assert!(page.contains("widget.js"), "the demo page loads the widget");
    assert!(
        !hub.output().contains("started a private redis"),
        "the demo started a private Redis:\n{}",
        hub.log_tail(20)
    );
}

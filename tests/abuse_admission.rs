//! Admission under abuse (issue 15, part A): floods from one address are refused fast
//! with 503 and counted, half-sent headers are closed, WebSocket caps (per address,
//! total, upgrades without `hello`) hold, a trusted proxy's `X-Forwarded-For` names
//! the client, origins are checked, and `/healthz` keeps answering throughout.

mod common;
#[path = "common/loopback.rs"]
mod loopback;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use loopback::*;
use serde_json::json;
use tokio::{io::AsyncWriteExt, time::Instant};
use tokio_tungstenite::tungstenite::Message;

async fn hub_with(config: TestConfig, access: &str) -> (RedisServer, Hub) {
    let redis = RedisServer::start().await;
    let toml = format!("{}\n[access]\n{access}\n", config.to_toml());
    let hub = Hub::start(&redis, &toml).await;
    (redis, hub)
}

#[tokio::test]
async fn a_connection_flood_from_one_address_is_refused_fast_and_health_answers() {
    let config = TestConfig::default()
        .limit("max_connections_per_ip", 20)
        .limit("header_read_timeout_ms", 3000);
    // The header timeout is well above the time it takes to open the 200 connections on
    // a busy machine: an admitted one closed early would free its slot for a later one.
    let (_redis, hub) = hub_with(config, "").await;
    let fds_before = open_fds(hub.pid());

    // 200 connections from one address that never send a byte.
    let mut reads = Vec::new();
    for _ in 0..200 {
        let mut stream = tcp_from("127.0.0.2", hub.addr(), None).await;
        let opened = Instant::now();
        reads.push(tokio::spawn(async move {
            let (text, ended) = read_to_end_within(&mut stream, Duration::from_secs(6)).await;
            (opened.elapsed(), text, ended)
        }));
    }
    // Meanwhile everyone else is served.
    let fds_during = open_fds(hub.pid());
    let asked = Instant::now();
    let (status, _) = http_from("127.0.0.1", &hub, "/healthz", &[]).await;
    let health_ms = asked.elapsed().as_millis();
    assert_eq!(status, 200, "/healthz during the flood");
    let (mut customer, _) = hub.customer(json!({})).await;
    let conversation_id = customer.start_chat("general", "still here?").await;
    customer.say(&conversation_id, "yes").await;
    // A half-sent header from another address is closed after the header timeout.
    let mut half = tcp_from("127.0.0.3", hub.addr(), None).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("half a request");
    let sent = Instant::now();
    let (_, half_closed) = read_to_end_within(&mut half, Duration::from_secs(6)).await;
    let half_ms = sent.elapsed().as_millis();
    assert!(half_closed, "a half-sent header stayed open 6 s");

    let mut refused = Vec::new();
    let mut held = Vec::new();
    for read in reads {
        let (elapsed, text, ended) = read.await.expect("reader");
        assert!(ended, "a silent connection stayed open 6 s (got {text:?})");
        if text.starts_with("HTTP/1.1 503") {
            refused.push(elapsed);
        } else {
            held.push(elapsed);
        }
    }
    let slowest_refusal = refused.iter().max().copied().unwrap_or_default();
    eprintln!(
        "flood: {} refused (slowest {slowest_refusal:?}), {} held then closed; /healthz {health_ms} ms; half header closed after {half_ms} ms; fds {fds_before} before, {fds_during} during",
        refused.len(),
        held.len()
    );
    assert_eq!(refused.len(), 180, "all past the per-address cap refused");
    assert!(
        slowest_refusal < Duration::from_millis(500),
        "refusals are immediate"
    );
    assert!(
        held.iter().all(|t| *t >= Duration::from_millis(2900)),
        "the 20 admitted connections were closed by the header timeout, not before: {held:?}"
    );
    assert!(half_ms >= 2900, "closed by the timeout ({half_ms} ms)");
    assert!(
        fds_during < fds_before + 60,
        "refused connections hold no descriptor"
    );
    assert_eq!(
        metric(
            &hub,
            "switchboard_admission_refused_total{reason=\"http_per_ip\"}"
        )
        .await,
        180.0
    );
    assert!(
        metric(
            &hub,
            "switchboard_admission_refused_total{reason=\"header_timeout\"}"
        )
        .await
            >= 21.0
    );
    let lines = hub.log_tail(300).matches("refusing connections").count();
    assert!(
        lines <= 2,
        "refusals are logged once per interval, not per connection ({lines} lines)"
    );
}

#[tokio::test]
async fn websocket_caps_hold_per_address_in_total_and_before_hello() {
    let config = TestConfig::default()
        .limit("max_connections", 5)
        .limit("max_connections_per_ip", 3)
        .limit("max_upgrading", 2);
    let (_redis, hub) = hub_with(config, "").await;
    let path = "/v1/customer/ws";
    let hello = Message::text(json!({"type": "hello", "role": "customer"}).to_string());

    // Three from .2 said hello; the fourth from .2 is one too many for its address.
    let mut from_two = Vec::new();
    for _ in 0..3 {
        let mut ws = ws_from("127.0.0.2", &hub, path, &[], None)
            .await
            .expect("admitted");
        ws.send(hello.clone()).await.expect("hello");
        // Handled (welcomed), so it no longer counts as an upgrade in progress.
        let welcomed = tokio::time::timeout(WAIT, async {
            while let Some(Ok(frame)) = ws.next().await {
                if frame.to_text().is_ok_and(|t| t.contains("\"welcome\"")) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(welcomed, Ok(true), "a welcome for the hello from 127.0.0.2");
        from_two.push(ws);
    }
    let asked = Instant::now();
    assert_eq!(
        ws_from("127.0.0.2", &hub, path, &[], None).await.err(),
        Some(503)
    );
    eprintln!("per-address refusal took {:?}", asked.elapsed());
    // Two from .3 never say hello: upgrades in progress are capped.
    let silent_a = ws_from("127.0.0.3", &hub, path, &[], None)
        .await
        .expect("upgrading 1");
    let mut silent_b = ws_from("127.0.0.3", &hub, path, &[], None)
        .await
        .expect("upgrading 2");
    assert_eq!(
        ws_from("127.0.0.4", &hub, path, &[], None).await.err(),
        Some(503),
        "a third upgrade without hello"
    );
    // Once one says hello, the total cap (5) is what refuses. Until the hub has handled
    // that hello (a round trip to Redis for the flood counters) the refusal may still be
    // the upgrade cap's, so wait for the total cap's own count.
    silent_b.send(hello.clone()).await.expect("hello");
    eventually("the total cap to refuse", WAIT, || async {
        let refused = ws_from("127.0.0.4", &hub, path, &[], None).await.err() == Some(503);
        let by_total = metric(
            &hub,
            "switchboard_admission_refused_total{reason=\"ws_total\"}",
        )
        .await
            >= 1.0;
        (refused && by_total).then_some(())
    })
    .await;
    let (status, _) = http_from("127.0.0.4", &hub, "/healthz", &[]).await;
    assert_eq!(status, 200, "health answers at the WebSocket cap");
    let (status, _) = http_from("127.0.0.4", &hub, "/metrics", &[]).await;
    assert_eq!(status, 200, "metrics answer at the WebSocket cap");
    // A place comes back when a connection ends.
    drop(from_two.pop());
    drop(silent_a);
    eventually("a place to come back", WAIT, || async {
        ws_from("127.0.0.4", &hub, path, &[], None)
            .await
            .ok()
            .map(drop)
    })
    .await;
    for reason in ["ws_per_ip", "upgrading", "ws_total"] {
        let count = metric(
            &hub,
            &format!("switchboard_admission_refused_total{{reason=\"{reason}\"}}"),
        )
        .await;
        assert!(count >= 1.0, "{reason} counted");
    }
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_others_cannot() {
    let config = TestConfig::default().limit("max_connections_per_ip", 2);
    let (_redis, hub) = hub_with(config, "trusted_proxies = [\"127.0.0.5\"]").await;
    let path = "/v1/customer/ws";
    let client = |ip: &'static str| [("x-forwarded-for", ip)];
    let mut kept = Vec::new();
    for _ in 0..2 {
        kept.push(
            ws_from(
                "127.0.0.5",
                &hub,
                path,
                &client("6.6.6.6, 203.0.113.9"),
                None,
            )
            .await
            .expect("admitted"),
        );
    }
    assert_eq!(
        ws_from(
            "127.0.0.5",
            &hub,
            path,
            &client("1.1.1.1, 203.0.113.9"),
            None
        )
        .await
        .err(),
        Some(503),
        "the rightmost address is the client, whatever is forged left of it"
    );
    // Another client behind the same proxy has places of its own.
    kept.push(
        ws_from("127.0.0.5", &hub, path, &client("203.0.113.10"), None)
            .await
            .expect("another client"),
    );
    // An untrusted peer's header is ignored: it is counted as itself.
    for _ in 0..2 {
        kept.push(
            ws_from("127.0.0.6", &hub, path, &client("203.0.113.77"), None)
                .await
                .expect("counted as 127.0.0.6"),
        );
    }
    assert_eq!(
        ws_from("127.0.0.6", &hub, path, &client("203.0.113.78"), None)
            .await
            .err(),
        Some(503)
    );
}

#[tokio::test]
async fn origins_are_checked_and_pages_carry_security_headers() {
    let (_redis, hub) = hub_with(
        TestConfig::default(),
        "allowed_origins = [\"https://shop.example\"]\nconsole_origins = [\"https://admin.example\"]",
    )
    .await;
    let widget = "/v1/customer/ws";
    let console = "/v1/agent/ws";
    let origin = |o: &'static str| [("origin", o)];
    assert_eq!(
        ws_from(
            "127.0.0.2",
            &hub,
            widget,
            &origin("https://evil.example"),
            None
        )
        .await
        .err(),
        Some(403)
    );
    assert!(ws_from(
        "127.0.0.2",
        &hub,
        widget,
        &origin("https://shop.example"),
        None
    )
    .await
    .is_ok());
    assert_eq!(
        ws_from(
            "127.0.0.2",
            &hub,
            console,
            &origin("https://shop.example"),
            None
        )
        .await
        .err(),
        Some(403),
        "the console is not the widget's sites"
    );
    let own = format!("http://{}", hub.addr());
    let own: &'static str = Box::leak(own.into_boxed_str());
    assert!(ws_from("127.0.0.2", &hub, console, &origin(own), None)
        .await
        .is_ok());
    assert!(ws_from(
        "127.0.0.2",
        &hub,
        console,
        &origin("https://admin.example"),
        None
    )
    .await
    .is_ok());
    assert_eq!(
        metric(
            &hub,
            "switchboard_admission_refused_total{reason=\"origin\"}"
        )
        .await,
        2.0
    );

    let header = |response: &str, name: &str| -> Option<String> {
        response
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .lines()
            .find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
    };
    let (status, console_page) = http_from("127.0.0.1", &hub, "/console/", &[]).await;
    assert_eq!(status, 200);
    let csp = header(&console_page, "content-security-policy").expect("console CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(
        header(&console_page, "x-frame-options").as_deref(),
        Some("DENY")
    );
    assert_eq!(
        header(&console_page, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        header(&console_page, "referrer-policy").as_deref(),
        Some("no-referrer")
    );
    let (_, demo) = http_from("127.0.0.1", &hub, "/demo", &[]).await;
    let csp = header(&demo, "content-security-policy").expect("demo CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let (_, widget_js) = http_from("127.0.0.1", &hub, "/widget.js", &[]).await;
    assert_eq!(
        header(&widget_js, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        header(&widget_js, "content-security-policy").is_none(),
        "the widget runs under its embedding page's policy"
    );
}

/// Out of descriptors: the hub backs off instead of spinning on `accept`, logs it once
/// per interval, and answers `/healthz` again once the header timeout has cleared the
/// silent connections (before, they stayed open and health checks timed out).
#[tokio::test]
async fn out_of_descriptors_the_hub_backs_off_and_recovers() {
    use std::{
        io::{BufRead, BufReader},
        process::{Command, Stdio},
        sync::{Arc, Mutex},
    };
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("switchboard.toml");
    let config = TestConfig::default().limit("header_read_timeout_ms", 1000);
    std::fs::write(&config_path, config.to_toml()).expect("config");
    // A hard limit of 64 descriptors: the hub cannot raise it.
    let mut child = Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis.url(),
        ])
        .arg("--config")
        .arg(&config_path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the hub under prlimit");
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("http://").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr: std::net::SocketAddr = rx
        .recv_timeout(START_TIMEOUT)
        .expect("the hub printed its address")
        .parse()
        .expect("address");
    let pid = child.id();

    // 120 silent connections from four addresses (under the per-address cap).
    let mut flood = Vec::new();
    for n in 0..120 {
        flood.push(tcp_from(&format!("127.0.0.{}", 2 + n % 4), addr, None).await);
    }
    let cpu_before = cpu_time(pid);
    let window = Instant::now();
    // Health answers once the header timeout has freed descriptors.
    let health = eventually(
        "/healthz under descriptor shortage",
        Duration::from_secs(20),
        || async {
            let asked = Instant::now();
            let answered = tokio::time::timeout(
                Duration::from_secs(3),
                http_to("127.0.0.9", addr, "/healthz", &[]),
            )
            .await;
            matches!(answered, Ok((200, _))).then(|| asked.elapsed())
        },
    )
    .await;
    let elapsed = window.elapsed();
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let backoff_lines = log.matches("accept failed, backing off").count();
    eprintln!(
        "descriptor shortage: /healthz answered after {elapsed:?} (that request {health:?}); hub CPU {cpu:?} meanwhile; {backoff_lines} back-off lines"
    );
    assert!(
        backoff_lines >= 1,
        "the shortage was hit and logged:\n{log}"
    );
    assert!(
        backoff_lines <= 1 + (elapsed.as_secs() / 10) as usize,
        "logged once per interval, not per attempt:\n{log}"
    );
    assert!(
        cpu < elapsed / 2,
        "no accept busy loop: {cpu:?} of CPU in {elapsed:?}"
    );
    drop(flood);
    let _ = child.kill();
    let _ = child.wait();
}

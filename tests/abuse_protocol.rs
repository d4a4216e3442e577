//! Protocol violations and what the logs keep (issue 15, part A): invalid UTF-8 in a
//! text frame closes with 1007, a reserved opcode with 1002 (before and after `hello`),
//! and a hub logging at `trace` writes no frame content: no token, no session.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        protocol::frame::{
            coding::{Data, OpCode},
            Frame,
        },
        Message,
    },
};

/// Sends `frame` raw on a fresh customer socket (after `hello` when `after_hello`) and
/// returns the close code the hub answers with.
async fn close_code_for(hub: &Hub, frame: Frame, after_hello: bool) -> Option<u16> {
    let (mut ws, _) = connect_async(hub.ws_url("/v1/customer/ws"))
        .await
        .expect("connect");
    if after_hello {
        let hello = json!({"type": "hello", "role": "customer"}).to_string();
        ws.send(Message::text(hello)).await.expect("hello");
        loop {
            let next = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("welcome");
            if let Some(Ok(Message::Text(text))) = next {
                if text.contains("\"welcome\"") {
                    break;
                }
            }
        }
    }
    ws.send(Message::Frame(frame))
        .await
        .expect("send raw frame");
    tokio::time::timeout(WAIT, async {
        while let Some(next) = ws.next().await {
            match next {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the hub closed the socket")
}

fn text_frame(payload: &[u8]) -> Frame {
    Frame::message(payload.to_vec(), OpCode::Data(Data::Text), true)
}

#[tokio::test]
async fn invalid_utf8_closes_1007_and_reserved_opcodes_1002() {
    let (_redis, hub) = setup().await;
    let bad_utf8: &[u8] = b"{\"type\":\"ping\",\"req\":\"\xc3\x28\"}";
    let reserved = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Reserved(3)), true);
    for after_hello in [false, true] {
        assert_eq!(
            close_code_for(&hub, text_frame(bad_utf8), after_hello).await,
            Some(1007),
            "invalid UTF-8 (after hello: {after_hello})"
        );
        assert_eq!(
            close_code_for(&hub, reserved.clone(), after_hello).await,
            Some(1002),
            "reserved opcode (after hello: {after_hello})"
        );
    }
}

#[tokio::test]
async fn trace_logging_writes_no_frame_content() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(&config_path, TestConfig::default().to_toml()).expect("config");
    // Our own process: the whole log is needed, not the harness's last lines.
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis.url(),
        ])
        .arg("--config")
        .arg(&config_path)
        .env("SWITCHBOARD_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the hub");
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let collector = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("http://").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(START_TIMEOUT)
        .expect("the hub printed its address");

    // An agent logs in with its token; a customer gets a session.
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("http://{addr}/v1/agents"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"id": "alice", "name": "Alice", "skills": {}, "capacity": 1}))
        .send()
        .await
        .expect("create agent")
        .json()
        .await
        .expect("agent json");
    let token = created["token"].as_str().expect("token").to_string();
    let (mut agent, _) = connect_async(format!("ws://{addr}/v1/agent/ws"))
        .await
        .expect("agent connects");
    let hello = json!({"type": "hello", "role": "agent", "token": token}).to_string();
    agent.send(Message::text(hello)).await.expect("agent hello");
    let welcome = tokio::time::timeout(WAIT, agent.next())
        .await
        .expect("agent welcome")
        .expect("frame")
        .expect("ok");
    assert!(
        welcome.to_text().unwrap_or("").contains("welcome"),
        "{welcome:?}"
    );
    let (mut customer, _) = connect_async(format!("ws://{addr}/v1/customer/ws"))
        .await
        .expect("customer connects");
    let hello = json!({"type": "hello", "role": "customer", "name": "Ann"}).to_string();
    customer
        .send(Message::text(hello))
        .await
        .expect("customer hello");
    let welcome = tokio::time::timeout(WAIT, customer.next())
        .await
        .expect("customer welcome")
        .expect("frame")
        .expect("ok");
    let welcome: serde_json::Value =
        serde_json::from_str(welcome.to_text().expect("text")).expect("json");
    let session = welcome["session"].as_str().expect("session").to_string();

    // Stop the hub and read everything it wrote.
    drop((agent, customer));
    let _ = child.kill();
    let _ = child.wait();
    collector.join().expect("log collector");
    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        log.contains("connection caps"),
        "the whole log was read: {log}"
    );
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for (what, secret) in [("agent token", &token), ("customer session", &session)] {
        assert!(
            !log.contains(secret.as_str()),
            "the {what} is in the trace log"
        );
        assert!(
            !log.contains(&hex(secret)),
            "the {what} is in the trace log, hex-encoded"
        );
    }
    assert!(
        !log.contains("Received message") && !log.contains("<FRAME>"),
        "frames are not logged"
    );
}

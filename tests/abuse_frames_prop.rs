//! Request handlers under random input (issue 15): a bounded number of random and
//! mutated frames (frame-shaped JSON of every type, plausible frames, byte mutations of
//! both) go over a real socket to a real hub, on both endpoints. Every frame with a
//! readable `req` is answered by exactly one `ack` or `error` carrying it, and the
//! socket stays open (or closes only with a documented code).

mod common;
#[allow(dead_code)]
#[path = "common/frames.rs"]
mod frames;

use std::collections::BTreeSet;

use common::*;
use frames::*;
use proptest::{
    collection,
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use serde_json::{json, Value};

const FRAMES_PER_ENDPOINT: usize = 300;

/// Deterministic frames: the same run every time, so a failure can be replayed.
fn frames(seed_offset: usize) -> Vec<String> {
    let mut runner = TestRunner::deterministic();
    let strategy = (
        proptest::prop_oneof![frame_object(), plausible_frame()],
        collection::vec(mutation(), 0..3),
        0u8..4,
    );
    let mut out = Vec::new();
    for i in 0..FRAMES_PER_ENDPOINT + seed_offset {
        let (mut frame, mutations, how) = strategy
            .new_tree(&mut runner)
            .expect("a value from the strategy")
            .current();
        if i < seed_offset {
            continue;
        }
        // Most frames get a unique readable req; the rest keep whatever they have.
        if how > 0 {
            if let Some(object) = frame.as_object_mut() {
                object.insert("req".into(), json!(format!("q{i}z")));
            }
        }
        let text = frame.to_string();
        out.push(if how == 3 {
            mutate(&text, &mutations)
        } else {
            text
        });
    }
    out
}

async fn throw_frames(ws: &mut Ws, texts: Vec<String>) {
    let mut asked = BTreeSet::new();
    for text in texts {
        let req = readable_req(&text);
        if let Some(req) = &req {
            if !asked.insert(req.clone()) {
                continue; // a mutation made a req seen before: its answer would be ambiguous
            }
        }
        ws.send_raw(&text).await;
        if let Some(req) = req {
            let answer = ws
                .wait_for(&format!("the answer to {text}"), |f| {
                    matches!(ty(f), "ack" | "error") && f["req"] == req.as_str()
                })
                .await;
            if ty(&answer) == "error" {
                let code = answer["code"].as_str().unwrap_or_default();
                assert!(
                    [
                        "bad_request",
                        "unauthorized",
                        "forbidden",
                        "not_found",
                        "conflict",
                        "too_large",
                        "rate_limited",
                        "unavailable"
                    ]
                    .contains(&code),
                    "an error code outside the contract: {answer}"
                );
            }
        }
        if let Some(closed) = ws.closed() {
            assert!(
                matches!(closed.code, Some(1009 | 1013)),
                "closed with an undocumented code after {text}: {closed:?}"
            );
            return;
        }
    }
    // The socket still works, and nothing was answered twice.
    ws.ok(json!({"type": "ping", "req": "final-ping"})).await;
    asked.insert("final-ping".to_string());
    for req in &asked {
        let answers = ws
            .seen()
            .iter()
            .filter(|f| matches!(ty(f), "ack" | "error") && f["req"] == req.as_str())
            .count();
        assert_eq!(answers, 1, "req {req} answered {answers} times");
    }
    let unanswerable: Vec<&Value> = ws
        .seen()
        .iter()
        .filter(|f| {
            f.get("req")
                .is_some_and(|r| r.as_str().is_some_and(|r| !asked.contains(r)))
        })
        .filter(|f| matches!(ty(f), "ack" | "error"))
        .collect();
    assert!(
        unanswerable.is_empty(),
        "answers to reqs never asked: {unanswerable:?}"
    );
}

#[tokio::test]
async fn customer_endpoint_answers_each_request_once() {
    let (_redis, hub) = setup().await;
    let (mut ws, _) = hub.customer(json!({})).await;
    throw_frames(&mut ws, frames(0)).await;
}

#[tokio::test]
async fn agent_endpoint_answers_each_request_once() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 2, false).await;
    let (mut ws, _) = hub.agent(&token).await;
    throw_frames(&mut ws, frames(FRAMES_PER_ENDPOINT)).await;
}

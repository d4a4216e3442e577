//! The team lead's desk through the real hub: away reasons and wrap-up over the wire,
//! the routing audit at `/v1/conversations/{id}/routing`, live SLA marks on the
//! conversation list, and NPS surveys. Real hub binary, real redis-server.

mod common;

use std::time::Duration;

use common::{extra::*, *};
use serde_json::{json, Value};
use tokio::time::Instant;

fn desk_config() -> HubConfig {
    HubConfig::new(TestConfig::default())
        .topic_key("general", "wrap_up_s", 2)
        .topic_key("billing", "survey", "\"nps\"")
        .topic_key(
            "billing",
            "sla",
            "{ wait_ms = 400, first_response_ms = 60000 }",
        )
}

#[tokio::test]
async fn away_takes_a_configured_reason_and_refuses_others() {
    let (_redis, hub) = setup_hub(&desk_config()).await;
    let token = hub.create_agent("ann", "Ann", &[], 2, false).await;
    let (mut ann, welcome) = hub.agent(&token).await;
    let reasons = welcome["agent"]["away_reasons"].clone();
    assert!(
        reasons
            .as_array()
            .is_some_and(|r| r.contains(&json!("lunch"))),
        "welcome lists the away reasons: {welcome}"
    );
    let ack = ann
        .ok(json!({"type": "status", "status": "away", "reason": "lunch"}))
        .await;
    assert_eq!(ack["status"], "away", "{ack}");
    let err = ann
        .err(
            json!({"type": "status", "status": "away", "reason": "nap"}),
            "bad_request",
        )
        .await;
    assert!(
        err["message"].as_str().unwrap_or("").contains("lunch"),
        "{err}"
    );
    ann.err(
        json!({"type": "status", "status": "available", "reason": "lunch"}),
        "bad_request",
    )
    .await;
    ann.err(
        json!({"type": "status", "status": "wrap_up"}),
        "bad_request",
    )
    .await;
    let (status, agents) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200);
    let me = &agents["agents"][0];
    assert_eq!(
        (me["status"].clone(), me["away_reason"].clone()),
        (json!("away"), json!("lunch")),
        "{agents}"
    );
}

#[tokio::test]
async fn closing_a_chat_starts_wrap_up_and_the_next_offer_waits_for_its_end() {
    let (_redis, hub) = setup_hub(&desk_config()).await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 1).await;
    let (mut first, _) = hub.customer(json!({"name": "Carl"})).await;
    let conv = first.start_chat("general", "one").await;
    let offer = ann.wait_offer_for(&conv).await;
    ann.accept(&offer).await;
    ann.ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    let wrap = ann
        .wait_for("wrap-up status", |f| {
            ty(f) == "status" && f["status"] == "wrap_up"
        })
        .await;
    let ends = wrap["ends_in_ms"].as_u64().unwrap_or(0);
    assert!((1..=2000).contains(&ends), "{wrap}");
    let wrapped_at = Instant::now();

    let (mut second, _) = hub.customer(json!({"name": "Dora"})).await;
    let conv2 = second.start_chat("general", "two").await;
    let offer2 = ann.wait_offer_for(&conv2).await;
    assert!(
        wrapped_at.elapsed() >= Duration::from_millis(1500),
        "offered {:?} into a 2 s wrap-up",
        wrapped_at.elapsed()
    );
    let back = ann
        .seen()
        .iter()
        .find(|f| ty(f) == "status" && f["reason"] == "wrap_up_ended")
        .cloned();
    assert_eq!(back.map(|f| f["status"].clone()), Some(json!("available")));
    ann.accept(&offer2).await;
}

#[tokio::test]
async fn an_agent_ends_its_wrap_up_early_by_going_available() {
    let (_redis, hub) = setup_hub(&desk_config().topic_key("general", "wrap_up_s", 600)).await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 1).await;
    let (mut first, _) = hub.customer(json!({})).await;
    let conv = first.start_chat("general", "one").await;
    let offer = ann.wait_offer_for(&conv).await;
    ann.accept(&offer).await;
    ann.ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    ann.wait_for("wrap-up", |f| ty(f) == "status" && f["status"] == "wrap_up")
        .await;
    let (mut second, _) = hub.customer(json!({})).await;
    let conv2 = second.start_chat("general", "two").await;
    ann.expect_no("an offer in wrap-up", Duration::from_millis(300), |f| {
        ty(f) == "offer"
    })
    .await;
    ann.go_available().await;
    ann.wait_offer_for(&conv2).await;
}

#[tokio::test]
async fn the_routing_audit_explains_each_decision() {
    let (_redis, hub) = setup_hub(&desk_config()).await;
    let (mut ann, _) = hub
        .available_agent("ann", "Ann", &[("billing", 3)], 2)
        .await;
    let (_ben, _) = hub.available_agent("ben", "Ben", &[], 2).await;
    let cat_token = hub
        .create_agent("cat", "Cat", &[("billing", 1)], 2, false)
        .await;
    let (mut cat, _) = hub.agent(&cat_token).await;
    cat.ok(json!({"type": "status", "status": "away", "reason": "meeting"}))
        .await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("billing", "invoice").await;
    let offer = ann.wait_offer_for(&conv).await;
    ann.ok(json!({"type": "decline", "offer_id": offer["offer_id"]}))
        .await;

    let path = format!("/v1/conversations/{conv}/routing");
    let (status, body) = hub.http_json("GET", &path, None, None).await;
    assert_eq!(status, 401, "{body}");
    let decisions = wait_decisions(&hub, &path, 3).await;
    let offered = &decisions[0];
    assert_eq!(offered["event"], "offered", "{offered}");
    assert_eq!(offered["rule"], "ranking");
    assert_eq!(offered["chosen"], "ann");
    assert_eq!(offered["candidates"][0]["agent"], "ann");
    assert_eq!(offered["candidates"][0]["level_sum"], 3);
    assert!(offered["at"]
        .as_u64()
        .is_some_and(|at| at.abs_diff(now_ms()) < 60_000));
    let reasons: Vec<(Value, Value)> = offered["passed_over"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|x| (x["agent"].clone(), x["reason"].clone()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        reasons.contains(&(json!("ben"), json!("missing_skill"))),
        "{offered}"
    );
    assert!(
        reasons.contains(&(json!("cat"), json!("away"))),
        "{offered}"
    );
    assert_eq!(decisions[1]["event"], "declined");
    assert_eq!(decisions[1]["agent"], "ann");
    assert_eq!(decisions[2]["event"], "queued", "nobody else may take it");
    assert_eq!(decisions[2]["rule"], "no_eligible_agent");
    let ann_now = decisions[2]["passed_over"]
        .as_array()
        .and_then(|p| p.iter().find(|x| x["agent"] == "ann").cloned());
    assert_eq!(
        ann_now.map(|x| x["reason"].clone()),
        Some(json!("declined_before"))
    );

    let (status, _) = hub
        .http_json(
            "GET",
            "/v1/conversations/c_0000000000000000/routing",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// The audit is written off the routing path: wait until `n` decisions are stored.
async fn wait_decisions(hub: &Hub, path: &str, n: usize) -> Vec<Value> {
    eventually("the routing decisions", Duration::from_secs(10), || async {
        let (status, body) = hub.http_json("GET", path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 200, "{body}");
        let decisions = body["decisions"].as_array().cloned().unwrap_or_default();
        (decisions.len() >= n).then_some(decisions)
    })
    .await
}

#[tokio::test]
async fn live_conversations_carry_sla_marks() {
    let (_redis, hub) = setup_hub(&desk_config()).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("billing", "nobody yet").await;
    let sla_of = |body: &Value| {
        body["conversations"]
            .as_array()
            .and_then(|list| {
                list.iter()
                    .find(|c| c["conversation_id"] == conv.as_str())
                    .cloned()
            })
            .map(|c| c["sla"].clone())
            .unwrap_or(Value::Null)
    };
    // Waiting past the 400 ms target with nobody to answer: breached.
    eventually(
        "the wait target breached",
        Duration::from_secs(10),
        || async {
            let (_, body) = hub
                .http_json("GET", "/v1/conversations", Some(ADMIN_TOKEN), None)
                .await;
            let sla = sla_of(&body);
            let state = sla["wait"]["state"].as_str().unwrap_or("").to_string();
            assert!(
                ["ok", "at_risk", "breached"].contains(&state.as_str()),
                "{sla}"
            );
            assert_eq!(sla["wait"]["target_ms"], 400);
            assert_eq!(sla["first_response"]["state"], "ok");
            (state == "breached").then_some(())
        },
    )
    .await;
    let (mut ann, _) = hub
        .available_agent("ann", "Ann", &[("billing", 1)], 1)
        .await;
    let offer = ann.wait_offer_for(&conv).await;
    ann.accept(&offer).await;
    ann.say(&conv, "hello").await;
    let (_, body) = hub
        .http_json("GET", "/v1/conversations", Some(ADMIN_TOKEN), None)
        .await;
    let sla = sla_of(&body);
    assert_eq!(
        sla["wait"]["state"], "breached",
        "answered late stays breached: {sla}"
    );
    assert_eq!(sla["first_response"]["state"], "met", "{sla}");

    // Its ticket counts the breach once in the Prometheus counter.
    ann.ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    let breaches = ["topic=\"billing\"", "target=\"wait\""];
    eventually("the breach counted", Duration::from_secs(10), || async {
        (hub.metric("switchboard_sla_breaches_total", &breaches)
            .await
            == 1.0)
            .then_some(())
    })
    .await;
    let first_response = ["topic=\"billing\"", "target=\"first_response\""];
    assert_eq!(
        hub.metric("switchboard_sla_breaches_total", &first_response)
            .await,
        0.0
    );
}

#[tokio::test]
async fn nps_topics_take_zero_to_ten_and_say_so() {
    let (_redis, hub) = setup_hub(&desk_config()).await;
    let (mut ann, _) = hub
        .available_agent("ann", "Ann", &[("billing", 1)], 2)
        .await;
    for (topic, score, accepted) in [
        ("billing", 0, true),
        ("general", 0, false),
        ("general", 7, false),
    ] {
        let (mut customer, _) = hub.customer(json!({})).await;
        let req = customer.req();
        customer
            .send(json!({"type": "start", "req": req, "topic": topic, "text": "hi"}))
            .await;
        let ack = customer
            .wait_for("start ack", |f| ty(f) == "ack" && f["req"] == req.as_str())
            .await;
        let conv = ack["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let survey = if topic == "billing" {
            json!("nps")
        } else {
            Value::Null
        };
        assert_eq!(ack["survey"], survey, "{ack}");
        let offer = ann.wait_offer_for(&conv).await;
        ann.accept(&offer).await;
        customer
            .ok(json!({"type": "close", "conversation_id": conv}))
            .await;
        let rate = json!({"type": "rate", "conversation_id": conv, "score": score});
        if accepted {
            customer.ok(rate).await;
        } else {
            customer.err(rate, "bad_request").await;
        }
        ann.wait_event(&conv, "closed").await;
    }
}

#[tokio::test]
async fn agent_time_in_each_state_reaches_the_reports() {
    let (_redis, hub) = setup_hub(&desk_config()).await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 1).await;
    // The time in a state is what is measured here, not a synchronization point.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ann.ok(json!({"type": "status", "status": "away", "reason": "lunch"}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ann.go_available().await;
    let path = "/v1/reports?bucket=hour&by=agent";
    let time = eventually(
        "ann's state time in the reports",
        Duration::from_secs(10),
        || async {
            let (status, body) = hub.http_json("GET", path, Some(ADMIN_TOKEN), None).await;
            assert_eq!(status, 200, "{body}");
            let ann = body["totals"]
                .as_array()
                .and_then(|t| t.iter().find(|f| f["group"] == "ann").cloned())?;
            let time = ann["agent_time"].clone();
            (time["away_by_reason"]["lunch"].as_u64()? >= 250).then_some(time)
        },
    )
    .await;
    let available = time["available_ms"].as_u64().unwrap_or(0);
    assert!((250..60_000).contains(&available), "{time}");
    // Away before going available at login has no reason: away_ms covers both.
    let away = time["away_ms"].as_u64().unwrap_or(0);
    assert!(
        away >= time["away_by_reason"]["lunch"].as_u64().unwrap_or(u64::MAX),
        "{time}"
    );
    assert_eq!(time["busy_ms"], 0, "{time}");
}

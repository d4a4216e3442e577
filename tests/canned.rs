//! Canned responses (issue 18) against a real hub and Redis: CRUD by the admin, the
//! supervisor's topic rule and the 403s, validation (400, 404, 409, the cap), changes
//! seen without a restart, and the config's seed taken only by an empty Redis.

mod common;

use common::*;
use serde_json::{json, Value};

/// A supervisor holding `skills` (level 3 each); returns its token.
async fn supervisor_with(hub: &Hub, id: &str, skills: &[&str]) -> String {
    let skills: serde_json::Map<String, Value> =
        skills.iter().map(|s| (s.to_string(), json!(3))).collect();
    hub.create_agent_with(json!({
        "id": id, "name": id, "skills": skills, "capacity": 1, "supervisor": true,
    }))
    .await
}

async fn create(hub: &Hub, token: &str, body: Value) -> (u16, Value) {
    hub.http_json("POST", "/v1/canned", Some(token), Some(body))
        .await
}

/// `GET path` with `token`; the `canned_responses` as `(shortcut, topic, text)`.
async fn listed(hub: &Hub, token: &str, path: &str) -> Vec<(String, Option<String>, String)> {
    let (status, body) = hub.http_json("GET", path, Some(token), None).await;
    assert_eq!(status, 200, "GET {path}: {status} {body}");
    body["canned_responses"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: no canned_responses in {body}"))
        .iter()
        .map(|r| {
            (
                r["shortcut"].as_str().unwrap_or_default().to_string(),
                r["topic"].as_str().map(str::to_string),
                r["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn item(shortcut: &str, topic: Option<&str>, text: &str) -> (String, Option<String>, String) {
    (
        shortcut.to_string(),
        topic.map(str::to_string),
        text.to_string(),
    )
}

#[tokio::test]
async fn admin_crud_is_seen_by_agents_without_a_restart() {
    let (_redis, hub) = setup().await;
    let agent = hub.create_agent("ann", "Ann", &[], 1, false).await;
    assert!(listed(&hub, &agent, "/v1/canned").await.is_empty());

    let before = now_ms();
    let (status, refund) = create(
        &hub,
        ADMIN_TOKEN,
        json!({"shortcut": "refund", "text": "Hi {customer.name}, refunded.", "topic": "billing"}),
    )
    .await;
    assert_eq!(status, 201, "{refund}");
    let id = refund["id"].as_str().expect("id").to_string();
    assert_eq!(refund["topic"], "billing");
    assert!(refund["updated_at"].as_u64().expect("updated_at") >= before);
    let (status, hi) = create(
        &hub,
        ADMIN_TOKEN,
        json!({"shortcut": "hi", "text": "Hello!"}),
    )
    .await;
    assert_eq!(status, 201, "{hi}");
    assert_eq!(hi["topic"], Value::Null, "global: {hi}");

    let both = vec![
        item("hi", None, "Hello!"),
        item("refund", Some("billing"), "Hi {customer.name}, refunded."),
    ];
    assert_eq!(listed(&hub, &agent, "/v1/canned").await, both);
    assert_eq!(listed(&hub, &agent, "/v1/canned?topic=billing").await, both);
    assert_eq!(
        listed(&hub, &agent, "/v1/canned?topic=general").await,
        vec![item("hi", None, "Hello!")]
    );
    assert_eq!(listed(&hub, &agent, "/v1/config/canned").await, both);

    // A change is served at once, by the same running hub.
    let path = format!("/v1/canned/{id}");
    let (status, changed) = hub
        .http_json(
            "PATCH",
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"text": "Refunded."})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["shortcut"], "refund", "unchanged fields stay");
    assert_eq!(
        listed(&hub, &agent, "/v1/canned?topic=billing").await[1],
        item("refund", Some("billing"), "Refunded.")
    );
    // `"topic": null` makes it global.
    let (status, moved) = hub
        .http_json(
            "PATCH",
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"topic": null})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        listed(&hub, &agent, "/v1/canned?topic=general").await,
        vec![
            item("hi", None, "Hello!"),
            item("refund", None, "Refunded.")
        ]
    );

    let (status, body) = hub.http("DELETE", &path, Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        listed(&hub, &agent, "/v1/canned").await,
        vec![item("hi", None, "Hello!")]
    );
    let (status, body) = hub.http("DELETE", &path, Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = hub
        .http_json(
            "PATCH",
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"text": "x"})),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    // The shortcut of a deleted response is free again.
    let (status, body) = create(
        &hub,
        ADMIN_TOKEN,
        json!({"shortcut": "refund", "text": "Again", "topic": "billing"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn supervisors_manage_the_topics_whose_skills_they_hold() {
    let (_redis, hub) = setup().await;
    let lead = supervisor_with(&hub, "lead", &["billing"]).await;
    let agent = hub
        .create_agent("ann", "Ann", &[("billing", 5)], 1, false)
        .await;
    let body = |topic: Value| json!({"shortcut": "s", "text": "t", "topic": topic});

    // `billing` and `general` (no skills) are the lead's; `billing_fr` also needs `fr`.
    let (status, own) = create(&hub, &lead, body(json!("billing"))).await;
    assert_eq!(status, 201, "{own}");
    let (status, reply) = create(&hub, &lead, body(json!("general"))).await;
    assert_eq!(status, 201, "{reply}");
    for topic in [json!("billing_fr"), Value::Null] {
        let (status, reply) = create(&hub, &lead, body(topic.clone())).await;
        assert_eq!(
            (status, &reply["code"]),
            (403, &json!("forbidden")),
            "{topic}: {reply}"
        );
    }

    // A global one (the admin's) and one of `billing_fr` cannot be changed by the lead.
    let (_, global) = create(&hub, ADMIN_TOKEN, body(Value::Null)).await;
    let (_, fr) = create(&hub, ADMIN_TOKEN, body(json!("billing_fr"))).await;
    for other in [&global, &fr] {
        let path = format!("/v1/canned/{}", other["id"].as_str().expect("id"));
        let (status, reply) = hub
            .http_json("PATCH", &path, Some(&lead), Some(json!({"text": "mine"})))
            .await;
        assert_eq!(status, 403, "PATCH {other}: {reply}");
        let (status, reply) = hub.http("DELETE", &path, Some(&lead), None).await;
        assert_eq!(status, 403, "DELETE {other}: {reply}");
    }
    // Nor move its own out of its topics.
    let own_path = format!("/v1/canned/{}", own["id"].as_str().expect("id"));
    for topic in [Value::Null, json!("billing_fr")] {
        let (status, reply) = hub
            .http_json(
                "PATCH",
                &own_path,
                Some(&lead),
                Some(json!({"topic": topic})),
            )
            .await;
        assert_eq!(status, 403, "move to {topic}: {reply}");
    }
    let (status, reply) = hub
        .http_json(
            "PATCH",
            &own_path,
            Some(&lead),
            Some(json!({"text": "Mine."})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");

    // A plain agent reads only; no token is 401.
    let (status, reply) = create(&hub, &agent, body(json!("billing"))).await;
    assert_eq!(
        (status, &reply["code"]),
        (403, &json!("forbidden")),
        "{reply}"
    );
    let (status, _) = hub
        .http_json("PATCH", &own_path, Some(&agent), Some(json!({"text": "x"})))
        .await;
    assert_eq!(status, 403);
    let (status, _) = hub.http("DELETE", &own_path, Some(&agent), None).await;
    assert_eq!(status, 403);
    let (status, _) = hub.http("GET", "/v1/canned", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(listed(&hub, &agent, "/v1/canned").await.len(), 4);

    let (status, reply) = hub.http("DELETE", &own_path, Some(&lead), None).await;
    assert_eq!(status, 204, "{reply}");
}

#[tokio::test]
async fn bad_fields_are_400_duplicates_409_and_the_count_is_capped() {
    let (_redis, hub) = setup().await;
    let bad = [
        json!({"shortcut": "Refund", "text": "t"}),
        json!({"shortcut": "re fund", "text": "t"}),
        json!({"shortcut": "", "text": "t"}),
        json!({"shortcut": "x".repeat(33), "text": "t"}),
        json!({"shortcut": "ok", "text": ""}),
        json!({"shortcut": "ok", "text": "  \n "}),
        json!({"shortcut": "ok", "text": "é".repeat(2001)}),
        json!({"shortcut": "ok", "text": "bell\u{7}"}),
        json!({"shortcut": "ok", "text": "t", "topic": "no_such_topic"}),
        json!({"shortcut": "ok", "text": "t", "colour": "red"}),
        json!({"text": "t"}),
    ];
    for body in bad {
        let (status, reply) = create(&hub, ADMIN_TOKEN, body.clone()).await;
        assert_eq!(
            (status, &reply["code"]),
            (400, &json!("bad_request")),
            "{body}: {reply}"
        );
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, reply) = hub
        .http("POST", "/v1/canned", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 400, "no body: {reply}");

    let (status, reply) = create(
        &hub,
        ADMIN_TOKEN,
        json!({"shortcut": "x".repeat(32), "text": "é".repeat(2000)}),
    )
    .await;
    assert_eq!(status, 201, "the longest allowed: {reply}");

    // Unique per scope: the same shortcut in another scope is fine.
    let refund = |topic: Value| json!({"shortcut": "refund", "text": "t", "topic": topic});
    let (status, global) = create(&hub, ADMIN_TOKEN, refund(Value::Null)).await;
    assert_eq!(status, 201, "{global}");
    let (status, billing) = create(&hub, ADMIN_TOKEN, refund(json!("billing"))).await;
    assert_eq!(status, 201, "{billing}");
    for topic in [Value::Null, json!("billing")] {
        let (status, reply) = create(&hub, ADMIN_TOKEN, refund(topic)).await;
        assert_eq!(
            (status, &reply["code"]),
            (409, &json!("conflict")),
            "{reply}"
        );
    }
    // Moving one onto the other's scope collides too; a bad PATCH field is 400.
    let path = format!("/v1/canned/{}", billing["id"].as_str().expect("id"));
    let (status, reply) = hub
        .http_json(
            "PATCH",
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"topic": null})),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    let (status, reply) = hub
        .http_json(
            "PATCH",
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"shortcut": "A"})),
        )
        .await;
    assert_eq!(status, 400, "{reply}");

    // At most 500 in all (three exist).
    for n in 3..500 {
        let (status, reply) = create(
            &hub,
            ADMIN_TOKEN,
            json!({"shortcut": format!("c{n}"), "text": "t"}),
        )
        .await;
        assert_eq!(status, 201, "response {n}: {reply}");
    }
    let (status, reply) = create(&hub, ADMIN_TOKEN, json!({"shortcut": "c500", "text": "t"})).await;
    assert_eq!(
        (status, &reply["code"]),
        (409, &json!("conflict")),
        "{reply}"
    );
    assert!(
        reply["message"].as_str().is_some_and(|m| m.contains("500")),
        "{reply}"
    );
}

fn seeded_config() -> String {
    TestConfig::default().to_toml()
        + r#"
[[canned_responses]]
shortcut = "/hi"
text = "Hello {customer.name}!"

[[canned_responses]]
shortcut = "refund"
text = "Your refund is on its way."
topic = "billing"
"#
}

#[tokio::test]
async fn the_config_seeds_an_empty_redis_once() {
    let redis = RedisServer::start().await;
    let mut hub = Hub::start(&redis, &seeded_config()).await;
    let seeded = vec![
        item("hi", None, "Hello {customer.name}!"),
        item("refund", Some("billing"), "Your refund is on its way."),
    ];
    assert_eq!(listed(&hub, ADMIN_TOKEN, "/v1/canned").await, seeded);

    // Deleting them all does not bring them back at the next start.
    let (_, body) = hub
        .http_json("GET", "/v1/canned", Some(ADMIN_TOKEN), None)
        .await;
    for record in body["canned_responses"].as_array().expect("list") {
        let path = format!("/v1/canned/{}", record["id"].as_str().expect("id"));
        let (status, reply) = hub.http("DELETE", &path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 204, "{reply}");
    }
    hub.restart().await;
    assert!(listed(&hub, ADMIN_TOKEN, "/v1/canned").await.is_empty());
}

#[tokio::test]
async fn the_config_does_not_seed_a_redis_that_has_responses() {
    let redis = RedisServer::start().await;
    let mut first = Hub::start(&redis, &TestConfig::default().to_toml()).await;
    let (status, reply) = create(
        &first,
        ADMIN_TOKEN,
        json!({"shortcut": "own", "text": "Ours"}),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    first.kill9();
    // An existing deployment adds a seed to its config: Redis keeps what it has.
    let second = Hub::start(&redis, &seeded_config()).await;
    assert_eq!(
        listed(&second, ADMIN_TOKEN, "/v1/canned").await,
        vec![item("own", None, "Ours")]
    );
}

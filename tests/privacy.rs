//! Issue 15 (part C), data protection: an admin exports and erases everything held
//! about one customer, by visitor id or by a verified customer's user id —
//! conversations (state, events, idempotency keys), tickets, the sticky-routing hint,
//! the index — and each export and erasure is in the audit log. An erasure is refused
//! (409) while the customer has an open conversation; other customers are untouched.

mod common;

use common::extra::HubConfig;
use common::*;
use serde_json::{json, Value};
use switchboard::store::keys;

async fn redis_conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis")
}

async fn exists(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(conn)
        .await
        .expect("EXISTS")
        == 1
}

async fn offline(customer: &mut Ws, text: &str) -> String {
    let ack = customer
        .ok(
            json!({"type": "offline_message", "topic": "general", "name": "Ann",
                   "email": "ann@example.com", "text": text}),
        )
        .await;
    ack["ticket_id"].as_str().expect("ticket_id").to_string()
}

/// The export of `id`, once it holds `tickets` tickets (the flush indexes them just
/// after storing them).
async fn export_with(hub: &Hub, id: &str, tickets: usize) -> Value {
    let path = format!("/v1/customers/{id}/export");
    eventually("the export holding every ticket", WAIT, || {
        let path = path.clone();
        async move {
            let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
            assert_eq!(status, 200, "{body}");
            (body["data"]["tickets"].as_array().map(Vec::len) == Some(tickets)).then_some(body)
        }
    })
    .await
}

#[tokio::test]
async fn an_admin_exports_and_erases_one_customer_with_an_audit_trail() {
    let (redis, hub) = setup().await;
    let mut conn = redis_conn(&redis).await;
    let Chat {
        agent: mut alice,
        agent_token: alice_token,
        mut customer,
        welcome,
        conversation_id: c,
    } = chat(&hub).await;
    let ann = welcome["visitor_id"]
        .as_str()
        .expect("visitor_id")
        .to_string();
    customer
        .ok(
            json!({"type": "message", "conversation_id": c, "text": "my card is 4111",
                   "client_msg_id": "m-1"}),
        )
        .await;
    let closed = alice
        .ok(json!({"type": "close", "conversation_id": c, "resolution": "resolved"}))
        .await;
    let chat_ticket = closed["ticket_id"].as_str().expect("ticket_id").to_string();
    customer.wait_event(&c, "closed").await;
    let offline_ticket = offline(&mut customer, "and call me").await;

    // Bo, another customer, is mid-chat.
    let (mut bo, bo_welcome) = hub.customer(json!({"name": "Bo"})).await;
    let bo_id = bo_welcome["visitor_id"]
        .as_str()
        .expect("visitor_id")
        .to_string();
    let bo_chat = bo.start_chat("general", "Bo here").await;
    alice.accept_next_offer().await;

    // Admin only.
    for (method, path) in [
        ("GET", format!("/v1/customers/{ann}/export")),
        ("DELETE", format!("/v1/customers/{ann}")),
        ("GET", "/v1/audit".to_string()),
    ] {
        let (status, body) = hub.http_json(method, &path, Some(&alice_token), None).await;
        assert_eq!(status, 403, "{method} {path} by an agent: {body}");
        let (status, _) = hub.http(method, &path, None, None).await;
        assert_eq!(status, 401, "{method} {path} without a token");
    }

    // Export: everything held about Ann, nothing about Bo.
    let export = export_with(&hub, &ann, 2).await;
    let data = &export["data"];
    assert_eq!(export["customer"]["visitor_id"], ann.as_str(), "{export}");
    assert_eq!(data["last_agent"], "alice", "{data}");
    assert_eq!(data["open_conversation"], Value::Null, "{data}");
    let conversations = data["conversations"].as_array().expect("conversations");
    assert_eq!(conversations.len(), 1, "{data}");
    assert_eq!(conversations[0]["conversation_id"], c.as_str());
    assert_eq!(conversations[0]["state"]["visitor_id"], ann.as_str());
    assert_eq!(conversations[0]["client_msg_ids"]["m-1"], "3");
    let texts: Vec<&str> = conversations[0]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(texts.contains(&"my card is 4111"), "{texts:?}");
    let mut tickets: Vec<&str> = data["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|t| t["ticket_id"].as_str())
        .collect();
    tickets.sort();
    let mut expected = vec![chat_ticket.as_str(), offline_ticket.as_str()];
    expected.sort();
    assert_eq!(tickets, expected);
    assert!(
        !export.to_string().contains(&bo_id),
        "Bo's data in Ann's export"
    );

    // Bo's conversation is open: no erasure until it is closed.
    let (status, body) = hub
        .http_json(
            "DELETE",
            &format!("/v1/customers/{bo_id}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "conflict", "{body}");

    // Erase Ann.
    let (status, body) = hub
        .http_json(
            "DELETE",
            &format!("/v1/customers/{ann}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["erased"]["conversations"], 1, "{body}");
    assert_eq!(body["erased"]["tickets"], 2, "{body}");
    for key in [
        keys::conversation(&c),
        keys::events(&c),
        keys::client_msg_ids(&c),
        keys::ticket(&chat_ticket),
        keys::ticket(&offline_ticket),
        keys::visitor_last_agent(&ann),
        keys::visitor_records(&ann),
        keys::visitor_tickets(&ann),
        keys::visitor_served(&ann),
    ] {
        assert!(!exists(&mut conn, &key).await, "{key} is still there");
    }
    // The history indexes of other keys skip (and drop) the erased tickets.
    let (status, page) = hub
        .http_json("GET", "/v1/tickets?from=0", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(
        (status, page["tickets"].clone()),
        (200, json!([])),
        "{page}"
    );
    let (status, _) = hub
        .http(
            "GET",
            &format!("/v1/conversations/{c}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = hub
        .http(
            "GET",
            &format!("/v1/tickets/{chat_ticket}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let page = hub.all_tickets().await;
    assert!(page.is_empty(), "erased tickets still listed: {page:?}");
    let export = export_with(&hub, &ann, 0).await;
    assert_eq!(export["data"]["conversations"], json!([]), "{export}");
    assert_eq!(export["data"]["last_agent"], Value::Null, "{export}");

    // Bo is untouched and his chat goes on.
    assert!(exists(&mut conn, &keys::conversation(&bo_chat)).await);
    bo.say(&bo_chat, "still here").await;

    // The audit log: who did what to whom, when, oldest first.
    let (status, audit) = hub
        .http_json("GET", "/v1/audit", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["entries"].as_array().expect("entries");
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["customer"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(actions.first(), Some(&("export", ann.as_str())), "{audit}");
    assert!(actions.contains(&("erase", ann.as_str())), "{audit}");
    let erase = entries
        .iter()
        .find(|e| e["action"] == "erase")
        .expect("erase entry");
    assert_eq!(erase["who"], "admin", "{erase}");
    assert_eq!(erase["address"], "127.0.0.1", "{erase}");
    assert_eq!(erase["detail"]["tickets"], 2, "{erase}");
    assert!(now_ms().abs_diff(erase["at"].as_u64().expect("at")) < 60_000);
    let first = entries[0]["id"].as_str().expect("id");
    let (status, rest) = hub
        .http_json(
            "GET",
            &format!("/v1/audit?after={first}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        rest["entries"].as_array().map(Vec::len),
        Some(entries.len() - 1)
    );
    let (status, _) = hub
        .http("GET", "/v1/audit?after=nonsense", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_verified_customer_is_found_by_user_id() {
    let (_redis, hub) = common::extra::setup_hub(&HubConfig::new(TestConfig::default())).await;
    let (mut customer, welcome) = hub
        .customer(json!({"identity": identity("u77", "Ann")}))
        .await;
    let visitor = welcome["visitor_id"]
        .as_str()
        .expect("visitor_id")
        .to_string();
    let ticket = offline(&mut customer, "please call").await;

    let export = export_with(&hub, "u77", 1).await;
    assert_eq!(export["customer"]["user_id"], "u77", "{export}");
    assert_eq!(
        export["customer"]["visitor_id"],
        visitor.as_str(),
        "{export}"
    );
    assert_eq!(export["data"]["tickets"][0]["ticket_id"], ticket.as_str());
    // The same customer by its visitor id, and `by=` when an id reads either way.
    export_with(&hub, &visitor, 1).await;
    let path = format!("/v1/customers/{visitor}/export?by=visitor");
    let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["visitor_id"], visitor.as_str(), "{body}");
    let (status, _) = hub
        .http(
            "GET",
            "/v1/customers/u77/export?by=nobody",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 400);

    let (status, body) = hub
        .http_json("DELETE", "/v1/customers/u77", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["erased"]["tickets"], 1, "{body}");
    let (status, _) = hub
        .http(
            "GET",
            &format!("/v1/tickets/{ticket}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

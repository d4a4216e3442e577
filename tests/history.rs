//! Customer history (issue 18): `GET /v1/tickets` filters (customer, visitor, agent,
//! topic, tag, rating, from/to), newest-first order, paging that stays put while
//! tickets are flushed between pages, index entries expiring with their ticket, a flush
//! repeated after a crash indexing once, and who may ask (an agent: only customers it
//! serves or served, 403 otherwise; also for one ticket's transcript).

mod common;

use std::time::Duration;

use common::extra::{setup_hub, transcript_values, HubConfig};
use common::*;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use switchboard::store::keys;

async fn redis_conn(redis: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(redis.url())
        .unwrap_or_else(|err| panic!("redis url {}: {err}", redis.url()));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("connect to the test's redis: {err}"))
}

async fn query_int(conn: &MultiplexedConnection, cmd: &str, key: &str) -> i64 {
    let mut conn = conn.clone();
    redis::cmd(cmd)
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("{cmd} {key}: {err}"))
}

fn ids(page: &Value) -> Vec<String> {
    page["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("no tickets array: {page}"))
        .iter()
        .map(|t| t["ticket_id"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// `GET /v1/tickets?<query>` as `token`, expecting 200.
async fn page(hub: &Hub, token: &str, query: &str) -> Value {
    let path = format!("/v1/tickets?{query}");
    let (status, body) = hub.http_json("GET", &path, Some(token), None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Waits until `query` lists `ticket_id` (the indexes trail the stored ticket a little).
async fn wait_listed(hub: &Hub, query: &str, ticket_id: &str) {
    let what = format!("{ticket_id} in GET /v1/tickets?{query}");
    eventually(&what, WAIT, || async {
        ids(&page(hub, ADMIN_TOKEN, query).await)
            .contains(&ticket_id.to_string())
            .then_some(())
    })
    .await;
}

/// Waits until the visitor may start again (its last chat's flush has finished).
async fn wait_free(conn: &MultiplexedConnection, visitor: &str) {
    eventually("the visitor's open slot freed", WAIT, || async {
        (query_int(conn, "EXISTS", &keys::visitor_open(visitor)).await == 0).then_some(())
    })
    .await;
}

/// A chat of `customer` on `topic` served by `agent`, closed with `tags` and rated
/// `rating`; returns its ticket once every index has it.
async fn served(
    hub: &Hub,
    conn: &MultiplexedConnection,
    (customer, visitor): (&mut Ws, &str),
    agent: &mut Ws,
    topic: &str,
    tags: &[&str],
    rating: Option<u8>,
) -> Value {
    wait_free(conn, visitor).await;
    let c = customer.start_chat(topic, "Hello again").await;
    let offer = agent.wait_offer_for(&c).await;
    agent.accept(&offer).await;
    customer.wait_event(&c, "joined").await;
    let ack = agent
        .ok(json!({"type": "close", "conversation_id": c, "resolution": "resolved", "tags": tags}))
        .await;
    let ticket_id = ack["ticket_id"].as_str().expect("ticket_id").to_string();
    wait_listed(hub, &format!("visitor={visitor}"), &ticket_id).await;
    if let Some(score) = rating {
        customer
            .ok(json!({"type": "rate", "conversation_id": c, "score": score}))
            .await;
        wait_listed(hub, &format!("rating={score}"), &ticket_id).await;
    }
    hub.wait_ticket(&ticket_id).await
}

fn visitor_of(welcome: &Value) -> String {
    welcome["visitor_id"]
        .as_str()
        .expect("visitor_id")
        .to_string()
}

#[tokio::test]
async fn filters_and_newest_first() {
    let (redis, hub) = setup().await;
    let conn = redis_conn(&redis).await;
    let (mut alice, _) = hub.available_agent("alice", "Alice", &[], 3).await;
    let (mut ann, ann_welcome) = hub
        .customer(json!({"identity": identity("u-ann", "Ann")}))
        .await;
    let ann_v = visitor_of(&ann_welcome);
    let t1 = served(
        &hub,
        &conn,
        (&mut ann, &ann_v),
        &mut alice,
        "general",
        &["refund"],
        Some(5),
    )
    .await;

    let (mut bob, _) = hub
        .available_agent("bob", "Bob", &[("billing", 3)], 3)
        .await;
    let (mut xavier, x_welcome) = hub.customer(json!({})).await;
    let x_v = visitor_of(&x_welcome);
    let t2 = served(
        &hub,
        &conn,
        (&mut xavier, &x_v),
        &mut bob,
        "billing",
        &["vip"],
        None,
    )
    .await;
    let t3 = served(
        &hub,
        &conn,
        (&mut ann, &ann_v),
        &mut bob,
        "billing",
        &["refund", "vip"],
        Some(2),
    )
    .await;
    let id = |t: &Value| t["ticket_id"].as_str().expect("ticket_id").to_string();
    let (t1, t2, t3, c3) = (
        id(&t1),
        id(&t2),
        id(&t3),
        t3["closed_at"].as_u64().expect("closed_at"),
    );
    let c2 = hub.wait_ticket(&t2).await["closed_at"]
        .as_u64()
        .expect("closed_at");
    assert!(c2 < c3, "the chats closed one after the other");

    let cases: Vec<(String, Vec<&String>)> = vec![
        ("customer=u-ann&order=newest".into(), vec![&t3, &t1]),
        ("customer=u-ann".into(), vec![&t1, &t3]),
        (format!("visitor={ann_v}&order=newest"), vec![&t3, &t1]),
        (format!("visitor={x_v}"), vec![&t2]),
        ("agent=bob".into(), vec![&t2, &t3]),
        ("agent=alice&order=newest".into(), vec![&t1]),
        ("topic=billing&order=newest".into(), vec![&t3, &t2]),
        ("tag=refund".into(), vec![&t1, &t3]),
        ("tag=vip&agent=bob&customer=u-ann".into(), vec![&t3]),
        ("rating=5".into(), vec![&t1]),
        ("rating=2".into(), vec![&t3]),
        ("rating=4".into(), vec![]),
        (format!("from={c3}"), vec![&t3]),
        (format!("to={}&order=newest", c2 + 1), vec![&t2, &t1]),
        (format!("agent=bob&from={c2}&to={c3}"), vec![&t2]),
        ("order=newest".into(), vec![&t3, &t2, &t1]),
        ("".into(), vec![&t1, &t2, &t3]),
    ];
    for (query, expected) in cases {
        let body = page(&hub, ADMIN_TOKEN, &query).await;
        let got = ids(&body);
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(got, expected, "GET /v1/tickets?{query}");
        // Filtered on their stored form, listed whole (`store::ticket_form`).
        for ticket in body["tickets"].as_array().into_iter().flatten() {
            assert!(
                ticket.get("transcript_of").is_none()
                    && transcript_values(ticket, "kind").contains(&"closed"),
                "GET /v1/tickets?{query}: {ticket}"
            );
        }
    }

    for bad in [
        "rating=11",
        "rating=x",
        "order=sideways",
        "from=yesterday",
        "from=5&to=5",
        "topic=nope",
        "limit=many",
        "visitor=abc",
        "agent=bad%20id",
        "tag=",
        "customer=u-ann&after=garbage",
        "customer=u-ann&after=1-0",
        "after=1-t_3",
        "customer=u-ann&visitor=v_other",
    ] {
        let path = format!("/v1/tickets?{bad}");
        let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn pages_stay_put_while_tickets_are_flushed() {
    let (_redis, hub) = setup().await;
    let (mut ann, welcome) = hub.customer(json!({})).await;
    let visitor = visitor_of(&welcome);
    let offline = |n: usize| {
        json!({"type": "offline_message", "topic": "general", "name": "Ann",
               "email": "ann@example.com", "text": format!("message {n}")})
    };
    let mut made = Vec::new();
    for n in 0..7 {
        made.push(
            ann.ok(offline(n)).await["ticket_id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    // Their order in the index: close time, then ticket id (two may share a ms).
    let mut oldest_first = Vec::new();
    for id in &made {
        let ticket = hub.wait_ticket(id).await;
        oldest_first.push((ticket["closed_at"].as_u64().expect("closed_at"), id.clone()));
    }
    oldest_first.sort();
    let oldest_first: Vec<String> = oldest_first.into_iter().map(|(_, id)| id).collect();
    let newest_first: Vec<String> = oldest_first.iter().rev().cloned().collect();
    wait_listed(&hub, &format!("visitor={visitor}"), &made[6]).await;

    for (order, expected) in [("newest", newest_first), ("oldest", oldest_first)] {
        let mut seen: Vec<String> = Vec::new();
        let mut added: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        for round in 0.. {
            assert!(round < 20, "{order}: the cursor does not end: {seen:?}");
            let cursor = after
                .as_ref()
                .map(|a| format!("&after={a}"))
                .unwrap_or_default();
            let body = page(
                &hub,
                ADMIN_TOKEN,
                &format!("visitor={visitor}&order={order}&limit=2{cursor}"),
            )
            .await;
            seen.extend(ids(&body));
            // Between the pages, new tickets of the same customer are flushed (a few:
            // oldest first, they are read too).
            for _ in 0..usize::from(added.len() < 6) * 2 {
                let n = 100 + added.len();
                added.push(
                    ann.ok(offline(n)).await["ticket_id"]
                        .as_str()
                        .expect("id")
                        .to_string(),
                );
            }
            match body["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => break,
            }
        }
        let older: Vec<String> = seen
            .iter()
            .filter(|id| expected.contains(id))
            .cloned()
            .collect();
        assert_eq!(
            older, expected,
            "{order}: every older ticket once, in order: {seen:?}"
        );
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{order}: no ticket twice: {seen:?}"
        );
        if order == "newest" {
            assert_eq!(
                seen, expected,
                "newest first: tickets flushed meanwhile never shift the pages"
            );
        }
    }
}

#[tokio::test]
async fn index_entries_expire_with_their_ticket() {
    let config = HubConfig::new(TestConfig::default())
        .retention("closed_conversation_s", 1)
        .retention("ticket_s", 2);
    let (redis, hub) = setup_hub(&config).await;
    let conn = redis_conn(&redis).await;
    let (mut ann, welcome) = hub.customer(json!({})).await;
    let visitor = visitor_of(&welcome);
    let ack = ann
        .ok(
            json!({"type": "offline_message", "topic": "billing", "name": "Ann",
                   "email": "ann@example.com", "text": "Call me"}),
        )
        .await;
    let ticket_id = ack["ticket_id"].as_str().expect("ticket_id").to_string();
    wait_listed(&hub, &format!("visitor={visitor}"), &ticket_id).await;
    wait_listed(&hub, "topic=billing", &ticket_id).await;
    let index = keys::visitor_tickets(&visitor);
    let ttl = query_int(&conn, "PTTL", &index).await;
    assert!(
        ttl > 0 && ttl <= 2_000,
        "the index expires with the ticket: PTTL {ttl}"
    );

    eventually("the ticket expired", Duration::from_secs(10), || async {
        (hub.ticket(&ticket_id).await.0 == 404).then_some(())
    })
    .await;
    for query in [
        format!("visitor={visitor}"),
        "topic=billing".into(),
        "from=1".into(),
    ] {
        assert_eq!(
            ids(&page(&hub, ADMIN_TOKEN, &query).await),
            Vec::<String>::new(),
            "{query}"
        );
    }
    eventually(
        "the visitor's index gone",
        Duration::from_secs(10),
        || async { (query_int(&conn, "EXISTS", &index).await == 0).then_some(()) },
    )
    .await;
    let topic_entries = query_int(&conn, "ZCARD", &keys::topic_tickets("billing")).await;
    assert_eq!(
        topic_entries, 0,
        "a read prunes the entries of expired tickets"
    );
}

#[tokio::test]
async fn agents_see_only_customers_they_serve() {
    let (redis, hub) = setup().await;
    let conn = redis_conn(&redis).await;
    let (mut alice, alice_token) = hub.available_agent("alice", "Alice", &[], 3).await;
    let (mut ann, welcome) = hub
        .customer(json!({"identity": identity("u-ann", "Ann")}))
        .await;
    let visitor = visitor_of(&welcome);
    let t1 = served(
        &hub,
        &conn,
        (&mut ann, &visitor),
        &mut alice,
        "general",
        &[],
        None,
    )
    .await;
    let t1 = t1["ticket_id"].as_str().expect("ticket_id").to_string();
    let bob_token = hub
        .create_agent("bob", "Bob", &[("billing", 3)], 3, false)
        .await;
    let status = |token: &str, path: String| {
        let token = token.to_string();
        let hub = &hub;
        async move { hub.http_json("GET", &path, Some(&token), None).await.0 }
    };

    // alice served Ann: her history and its transcripts.
    let mine = page(&hub, &alice_token, "customer=u-ann&order=newest").await;
    assert_eq!(ids(&mine), vec![t1.clone()]);
    assert_eq!(
        ids(&page(&hub, &alice_token, &format!("visitor={visitor}")).await),
        vec![t1.clone()]
    );
    assert_eq!(status(&alice_token, format!("/v1/tickets/{t1}")).await, 200);
    // Not without a customer, and not another customer.
    assert_eq!(status(&alice_token, "/v1/tickets".into()).await, 403);
    assert_eq!(
        status(&alice_token, "/v1/tickets?agent=alice".into()).await,
        403
    );
    assert_eq!(
        status(&alice_token, "/v1/tickets?customer=u-zed".into()).await,
        403
    );
    // bob never served Ann.
    assert_eq!(
        status(&bob_token, "/v1/tickets?customer=u-ann".into()).await,
        403
    );
    assert_eq!(status(&bob_token, format!("/v1/tickets/{t1}")).await, 403);

    // Ann comes back on billing; bob takes it: now he sees her history.
    let (mut bob, _) = hub.agent(&bob_token).await;
    bob.go_available().await;
    wait_free(&conn, &visitor).await;
    let c = ann.start_chat("billing", "Me again").await;
    let offer = bob.wait_offer_for(&c).await;
    bob.accept(&offer).await;
    bob.wait_event(&c, "joined").await;
    assert_eq!(
        ids(&page(&hub, &bob_token, "customer=u-ann").await),
        vec![t1.clone()]
    );
    assert_eq!(status(&bob_token, format!("/v1/tickets/{t1}")).await, 200);

    let supervisor = hub.create_supervisor("sam", "Sam").await;
    assert_eq!(
        status(&supervisor, "/v1/tickets?agent=alice".into()).await,
        200
    );
    assert_eq!(status(&supervisor, format!("/v1/tickets/{t1}")).await, 200);
}

/// A hub killed after storing a ticket: the restarted hub flushes again, and the ticket
/// is in each index once.
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (the test command enables it)"
)]
#[tokio::test]
async fn a_flush_repeated_after_a_crash_indexes_once() {
    let redis = RedisServer::start().await;
    let toml = TestConfig::default().to_toml();
    let env = [("SWITCHBOARD_FAILPOINT", "after_ticket_counted")];
    let mut hub = Hub::start_with_env(&redis, &toml, &env).await;
    let conn = redis_conn(&redis).await;
    let mut chat = chat(&hub).await;
    let id = chat.conversation_id.clone();
    let visitor = visitor_of(&chat.welcome);
    chat.agent
        .send(json!({"type": "close", "conversation_id": id, "resolution": "resolved"}))
        .await;
    let status = hub.wait_exited(WAIT).await;
    assert!(!status.success(), "the hub should have aborted: {status}");
    hub.restart().await;
    wait_free(&conn, &visitor).await;
    let listed = ids(&page(&hub, ADMIN_TOKEN, &format!("visitor={visitor}")).await);
    assert_eq!(listed.len(), 1, "{listed:?}");
    for key in [
        keys::visitor_tickets(&visitor),
        keys::agent_tickets("alice"),
        keys::closed_tickets(),
    ] {
        assert_eq!(query_int(&conn, "ZCARD", &key).await, 1, "{key}");
    }
}

//! The hub on a Redis Cluster (issue 16, the store part): one hub given the cluster's
//! seed list, or a single node's URL, runs a whole chat — offer, accept, messages both
//! ways, a reconnect that resumes with history, close and the ticket — with every
//! conversation's keys in their own slot and the shared indexes in theirs.

mod common;

use std::time::Duration;

use common::{
    cluster::RedisCluster,
    store_fixtures::{append, create_conversation, customer_message, Append},
    *,
};
use serde_json::json;
use switchboard::protocol::StoredEvent;
use switchboard::store::{AgentRecord, PlainAppended, PlainEvent, Store};

/// Start to ticket: the conversation's keys, the visitor's, the open index, the agent
/// profiles and the ticket log are spread over the masters.
async fn whole_chat(hub: &Hub) {
    let Chat {
        mut customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(hub).await;

    let seq = agent.say(&conv, "Hi, Alice here").await;
    assert_eq!(seq, 3);
    customer.wait_seq(&conv, seq).await;
    let seq = customer.say(&conv, "My order is late").await;
    assert_eq!(seq, 4);
    agent.wait_seq(&conv, seq).await;

    // The customer drops off and comes back with its session.
    customer.close().await;
    let seq = agent.say(&conv, "It ships today").await;
    let (mut customer, welcome2) = hub.customer(json!({"session": welcome["session"]})).await;
    let listed = listed_in_welcome(&welcome2, &conv, "welcome after reconnecting");
    assert_eq!(listed["last_seq"], seq, "{listed}");
    let events = customer.history(&conv, 0).await;
    assert_eq!(seqs(&events), vec![1, 2, 3, 4, 5], "{events:?}");
    assert_eq!(events[4]["text"], "It ships today", "{events:?}");
    let seq = customer.say(&conv, "Thanks!").await;
    agent.wait_seq(&conv, seq).await;

    let ack = agent
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("close ack without ticket_id: {ack}"))
        .to_string();
    customer.wait_event(&conv, "closed").await;
    let ticket = hub.wait_ticket(&ticket_id).await;
    assert_eq!(ticket["conversation_id"], conv.as_str(), "{ticket}");
    assert_eq!(hub.tickets_of(&conv).await.len(), 1);
    // Customer history (issue 18): its indexes live in other slots, each written alone.
    let path = format!(
        "/v1/tickets?order=newest&agent=alice&visitor={}",
        welcome["visitor_id"].as_str().unwrap_or("?")
    );
    eventually("the ticket in the history indexes", WAIT, || async {
        let (status, page) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        (status == 200 && page["tickets"][0]["ticket_id"] == ticket_id.as_str()).then_some(())
    })
    .await;
    // A cross-slot script or pipeline fails on a cluster; one retried in the background
    // (the ticket sweep) would still show up in the log.
    for symptom in ["CROSSSLOT", "crossed slots", "MOVED", "ERROR"] {
        assert!(
            !hub.output().contains(symptom),
            "the hub logged {symptom}:\n{}",
            hub.log_tail(60)
        );
    }
}

#[tokio::test]
async fn a_whole_chat_runs_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    // The shared indexes sit on three different masters, so a chat that reaches its
    // ticket has written to every one of them.
    let mut masters = Vec::new();
    for key in [
        "sb:{agents}:profiles",
        "sb:{tickets}:log",
        "sb:{open}:conversations",
    ] {
        masters.push(cluster.master_for_key(key).await);
    }
    masters.sort_unstable();
    masters.dedup();
    assert_eq!(masters.len(), 3, "{masters:?}");
    let hub = Hub::start_url(&cluster.url_list(), &TestConfig::default().to_toml()).await;
    whole_chat(&hub).await;
}

#[tokio::test]
async fn a_single_seed_url_of_a_cluster_node_is_detected_as_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let hub = Hub::start_url(&cluster.node_url(), &TestConfig::default().to_toml()).await;
    whole_chat(&hub).await;
}

/// The store calls that touch several keys at once (transactions of `{agents}` and
/// `{tickets}` keys, the visitor's index, an erasure's `DEL`s) on a cluster whose
/// three masters each serve some of them.
#[tokio::test]
async fn multi_key_store_calls_keep_to_one_slot() {
    let cluster = RedisCluster::start(3, 0).await;
    let store = Store::connect(&cluster.url_list(), Duration::from_secs(20))
        .await
        .unwrap_or_else(|err| panic!("connect to the cluster: {err}"));
    assert!(store.is_cluster());
    let fail = |what: &str, err: switchboard::store::StoreError| -> ! {
        panic!(
            "{what} on a cluster: {err}\nnodes:\n{}",
            cluster.log_tail(20)
        )
    };

    let agent = AgentRecord {
        id: "a_cl".into(),
        name: "Cluster".into(),
        skills: Default::default(),
        capacity: 1,
        supervisor: false,
        auto_accept: false,
        token_hash: "hash_cl".into(),
    };
    let created = store.create_agent(&agent).await;
    assert!(created.unwrap_or_else(|e| fail("create_agent", e)));
    store
        .delete_agent(&agent)
        .await
        .unwrap_or_else(|e| fail("delete_agent", e));
    let found = store.agent_by_token_hash("hash_cl").await;
    assert!(found
        .unwrap_or_else(|e| fail("agent_by_token_hash", e))
        .is_none());

    create_conversation(&store, "c_cl", "v_cl").await;
    append(
        &store,
        "c_cl",
        &[Append::event(customer_message("v_cl", "two"))],
    )
    .await;
    // The plain append's pipeline (its fence refused in one case) and its publish.
    let stored = StoredEvent::json(2, &customer_message("v_cl", "three")).expect("json");
    let events = [PlainEvent {
        stored: &stored,
        note: "",
    }];
    let behind = store
        .append_plain("c_cl", "node", 1, &events)
        .await
        .unwrap_or_else(|e| fail("append_plain behind", e));
    assert!(
        matches!(behind, PlainAppended::Behind { last: 2 }),
        "{behind:?}"
    );
    let listed = store.listen("c_cl", "other").await;
    assert!(listed.unwrap_or_else(|e| fail("listen", e)));
    match store.append_plain("c_cl", "node", 2, &events).await {
        Ok(PlainAppended::Stored {
            seq: 3,
            publication,
        }) => {
            assert!(!publication.is_empty(), "the other node listens");
            let published = store.publish_live(publication).await;
            published.unwrap_or_else(|e| fail("publish_live", e));
        }
        Ok(other) => panic!("not stored as seq 3: {other:?}"),
        Err(e) => fail("append_plain", e),
    }
    for ticket in ["t_cl1", "t_cl2"] {
        let stored = store.store_ticket(ticket, "{}", true, Some(60_000)).await;
        assert!(stored.unwrap_or_else(|e| fail("store_ticket", e)));
        store
            .index_visitor_ticket("v_cl", ticket, Some("c_cl"), Some(60_000))
            .await
            .unwrap_or_else(|e| fail("index_visitor_ticket", e));
    }
    let page = store.tickets(None, 10).await;
    assert_eq!(page.unwrap_or_else(|e| fail("tickets", e)).tickets.len(), 2);
    store
        .ensure_outbox_group("webhook")
        .await
        .unwrap_or_else(|e| fail("ensure_outbox_group", e));
    let entries = store.read_outbox("webhook", "node", false, 10).await;
    let entries = entries.unwrap_or_else(|e| fail("read_outbox", e));
    assert_eq!(entries.len(), 2, "{entries:?}");
    store
        .ack_outbox("webhook", &entries[0].entry_id, Some("t_cl1"))
        .await
        .unwrap_or_else(|e| fail("ack_outbox", e));
    let dead = store.dead_letters().await;
    assert_eq!(dead.unwrap_or_else(|e| fail("dead_letters", e)), ["t_cl1"]);

    let erased = store.erase_customer("v_cl").await;
    let erased = erased.unwrap_or_else(|e| fail("erase_customer", e));
    assert_eq!(
        (erased.conversations, erased.tickets, erased.outbox_entries),
        (1, 2, 1)
    );
    let dead = store.dead_letters().await;
    assert!(dead.unwrap_or_else(|e| fail("dead_letters", e)).is_empty());
    let history = store.history("c_cl", 0, 10).await;
    assert!(history.unwrap_or_else(|e| fail("history", e)).0.is_empty());
}

/// The canned-response scripts (issue 18: seed, create, update, delete) on a cluster:
/// their keys share `{canned}`, so each runs on one master.
#[tokio::test]
async fn canned_response_scripts_keep_to_one_slot() {
    use switchboard::store::{CannedRecord, CannedWrite};
    let cluster = RedisCluster::start(3, 0).await;
    let store = Store::connect(&cluster.url_list(), Duration::from_secs(20))
        .await
        .unwrap_or_else(|err| panic!("connect to the cluster: {err}"));
    let fail = |what: &str, err: switchboard::store::StoreError| -> ! {
        panic!(
            "{what} on a cluster: {err}\nnodes:\n{}",
            cluster.log_tail(20)
        )
    };
    let record = |id: &str, shortcut: &str, topic: Option<&str>| CannedRecord {
        id: id.into(),
        shortcut: shortcut.into(),
        text: "t".into(),
        topic: topic.map(str::to_string),
        updated_at: 1,
    };

    let seeded = store.seed_canned(&[record("cr_1", "hi", None)]).await;
    assert_eq!(seeded.unwrap_or_else(|e| fail("seed_canned", e)), 1);
    let again = store.seed_canned(&[record("cr_9", "yo", None)]).await;
    assert_eq!(again.unwrap_or_else(|e| fail("seed_canned", e)), 0, "once");
    let billing = record("cr_2", "hi", Some("billing"));
    let created = store.create_canned(&billing, 500).await;
    assert_eq!(
        created.unwrap_or_else(|e| fail("create_canned", e)),
        CannedWrite::Done
    );
    let (old, old_json) = store
        .canned("cr_2")
        .await
        .unwrap_or_else(|e| fail("canned", e))
        .expect("created");
    let moved = record("cr_2", "hi", None);
    let clash = store.update_canned(&old, &old_json, &moved).await;
    assert_eq!(
        clash.unwrap_or_else(|e| fail("update_canned", e)),
        CannedWrite::Duplicate
    );
    let renamed = record("cr_2", "hello", None);
    let updated = store.update_canned(&old, &old_json, &renamed).await;
    assert_eq!(
        updated.unwrap_or_else(|e| fail("update_canned", e)),
        CannedWrite::Done
    );
    let stale = store.delete_canned(&old, &old_json).await;
    assert_eq!(
        stale.unwrap_or_else(|e| fail("delete_canned", e)),
        CannedWrite::Changed
    );
    let (current, json) = store
        .canned("cr_2")
        .await
        .unwrap_or_else(|e| fail("canned", e))
        .expect("still there");
    let deleted = store.delete_canned(&current, &json).await;
    assert_eq!(
        deleted.unwrap_or_else(|e| fail("delete_canned", e)),
        CannedWrite::Done
    );
    let all = store
        .canned_all()
        .await
        .unwrap_or_else(|e| fail("canned_all", e));
    assert_eq!(all, vec![record("cr_1", "hi", None)]);
}

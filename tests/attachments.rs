//! Files and images (issue 18): customers and agents upload a file over HTTP, then send a
//! `message` naming it; everyone in the conversation fetches it through a short-lived
//! signed link. Every bad upload gets a clear error and leaves nothing stored; files
//! expire with their conversation's retention. Real hub binary, real redis-server, the
//! default local-directory object store.

mod common;

use std::{path::Path, time::Duration};

use common::*;
use serde_json::{json, Value};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
const PDF: &[u8] = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<<>>\nendobj\n";

/// A hub whose files go to `dir`, with `[attachments]` lines and any further sections.
async fn hub_with_files(redis: &RedisServer, dir: &Path, settings: &str, more: &str) -> Hub {
    let toml = format!(
        "{}\n[attachments]\n{settings}\n[attachments.store]\nkind = \"local\"\ndirectory = {:?}\n{more}",
        TestConfig::default().to_toml(),
        dir.display().to_string()
    );
    Hub::start(redis, &toml).await
}

/// The files the object store holds, by relative path.
fn stored_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

struct Upload<'a> {
    conversation: &'a str,
    token: Option<&'a str>,
    content_type: &'a str,
    name: &'a str,
    bytes: Vec<u8>,
}

async fn upload(hub: &Hub, up: Upload<'_>) -> (u16, Value) {
    let url = hub.http_url(&format!(
        "/v1/conversations/{}/attachments?name={}",
        up.conversation, up.name
    ));
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", up.content_type)
        .body(up.bytes);
    if let Some(token) = up.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("upload");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn session_of(welcome: &Value) -> String {
    welcome["session"]
        .as_str()
        .expect("welcome.session")
        .to_string()
}

#[tokio::test]
async fn an_image_and_a_pdf_go_both_ways_and_every_bad_upload_is_refused_whole() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = hub_with_files(&redis, dir.path(), "max_bytes = 100000", "").await;
    let Chat {
        mut customer,
        mut agent,
        welcome,
        agent_token,
        conversation_id: conv,
    } = chat(&hub).await;
    let session = session_of(&welcome);

    // The customer sends a screenshot.
    let (status, file) = upload(
        &hub,
        Upload {
            conversation: &conv,
            token: Some(&session),
            content_type: "image/png",
            name: "screen%20shot.png",
            bytes: PNG.to_vec(),
        },
    )
    .await;
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["name"], "screen shot.png");
    assert_eq!(file["size"], PNG.len());
    assert_eq!(file["type"], "image/png");
    let id = file["id"].as_str().expect("id").to_string();
    customer
        .ok(json!({"type": "message", "conversation_id": conv, "attachment": id, "client_msg_id": "m-file"}))
        .await;
    let event = agent
        .wait_for("the message with the file", |f| {
            f["type"] == "event" && f["attachment"]["id"] == id.as_str()
        })
        .await;
    assert_eq!(event["text"], "", "{event}");
    assert_eq!(event["attachment"]["name"], "screen shot.png");

    // The agent fetches a link and the image, shown inline and never sniffed.
    let (status, link) = hub
        .http_json(
            "GET",
            &format!("/v1/conversations/{conv}/attachments/{id}"),
            Some(&agent_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let url = link["url"].as_str().expect("url").to_string();
    let response = reqwest::get(hub.http_url(&url)).await.expect("download");
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-disposition").starts_with("inline"));
    assert!(header("content-security-policy").contains("sandbox"));
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);

    // The agent answers with a PDF, with text: a download, not shown inline.
    let (status, pdf) = upload(
        &hub,
        Upload {
            conversation: &conv,
            token: Some(&agent_token),
            content_type: "application/pdf",
            name: "invoice.pdf",
            bytes: PDF.to_vec(),
        },
    )
    .await;
    assert_eq!(status, 201, "{pdf}");
    let pdf_id = pdf["id"].as_str().expect("id").to_string();
    agent
        .ok(json!({"type": "message", "conversation_id": conv, "text": "Your invoice", "attachment": pdf_id}))
        .await;
    let event = customer
        .wait_for("the agent's file", |f| {
            f["type"] == "event" && f["attachment"]["id"] == pdf_id.as_str()
        })
        .await;
    assert_eq!(event["text"], "Your invoice");
    let pdf_url = pdf["url"].as_str().expect("url in the upload's answer");
    let response = reqwest::get(hub.http_url(pdf_url)).await.expect("download");
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");

    // A file cannot be sent by someone who did not upload it, nor an unknown one.
    agent
        .err(
            json!({"type": "message", "conversation_id": conv, "attachment": id}),
            "not_found",
        )
        .await;
    customer
        .err(
            json!({"type": "message", "conversation_id": conv, "attachment": "a_00000000"}),
            "not_found",
        )
        .await;

    // Every bad upload: its error, and nothing more stored.
    let before = stored_files(dir.path());
    assert_eq!(before.len(), 2, "{before:?}");
    let (_, other_welcome) = hub.customer(json!({})).await;
    let stranger = session_of(&other_welcome);
    let outsider_token = hub.create_agent("olga", "Olga", &[], 1, false).await;
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let cases: Vec<(&str, Upload<'_>, u16, &str)> = vec![
        (
            "over the size limit",
            Upload {
                conversation: &conv,
                token: Some(&session),
                content_type: "image/png",
                name: "big.png",
                bytes: [PNG, &vec![0u8; 100_000]].concat(),
            },
            400,
            "too_large",
        ),
        (
            "a type outside the allowlist",
            Upload {
                conversation: &conv,
                token: Some(&session),
                content_type: "text/html",
                name: "x.html",
                bytes: html.clone(),
            },
            400,
            "bad_request",
        ),
        (
            "HTML said to be a PNG",
            Upload {
                conversation: &conv,
                token: Some(&session),
                content_type: "image/png",
                name: "x.png",
                bytes: html.clone(),
            },
            400,
            "bad_request",
        ),
        (
            "a PNG said to be a JPEG",
            Upload {
                conversation: &conv,
                token: Some(&session),
                content_type: "image/jpeg",
                name: "x.jpg",
                bytes: PNG.to_vec(),
            },
            400,
            "bad_request",
        ),
        (
            "a PDF said to be text",
            Upload {
                conversation: &conv,
                token: Some(&session),
                content_type: "text/plain",
                name: "x.txt",
                bytes: PDF.to_vec(),
            },
            400,
            "bad_request",
        ),
        (
            "another visitor's conversation",
            Upload {
                conversation: &conv,
                token: Some(&stranger),
                content_type: "image/png",
                name: "x.png",
                bytes: PNG.to_vec(),
            },
            403,
            "forbidden",
        ),
        (
            "an agent not in the conversation",
            Upload {
                conversation: &conv,
                token: Some(&outsider_token),
                content_type: "image/png",
                name: "x.png",
                bytes: PNG.to_vec(),
            },
            403,
            "forbidden",
        ),
        (
            "no token",
            Upload {
                conversation: &conv,
                token: None,
                content_type: "image/png",
                name: "x.png",
                bytes: PNG.to_vec(),
            },
            401,
            "unauthorized",
        ),
        (
            "a forged session",
            Upload {
                conversation: &conv,
                token: Some("v_1.1.abcd"),
                content_type: "image/png",
                name: "x.png",
                bytes: PNG.to_vec(),
            },
            401,
            "unauthorized",
        ),
        (
            "no such conversation",
            Upload {
                conversation: "c_ffffffffffffffff",
                token: Some(&session),
                content_type: "image/png",
                name: "x.png",
                bytes: PNG.to_vec(),
            },
            403,
            "forbidden",
        ),
    ];
    for (what, up, status, code) in cases {
        let (got, body) = upload(&hub, up).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            !body["message"].as_str().unwrap_or_default().is_empty(),
            "{what}: a clear message"
        );
    }
    // Over the limit without a Content-Length (a chunked body): cut off, not buffered.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..30).map(|_| Ok(vec![7u8; 8192])).collect();
    let response = reqwest::Client::new()
        .post(hub.http_url(&format!("/v1/conversations/{conv}/attachments?name=s.png")))
        .bearer_auth(&session)
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("chunked upload");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(body["code"], "too_large", "{body}");
    assert_eq!(
        stored_files(dir.path()),
        before,
        "a refused upload left something"
    );

    // Links: only the conversation's own people get one; a link opens one file, as signed.
    let status = link_status(&hub, &conv, &id, &stranger).await;
    assert_eq!(status, 403);
    let status = link_status(&hub, &conv, &id, &outsider_token).await;
    assert_eq!(status, 403);
    let status = link_status(&hub, &conv, &id, &session).await;
    assert_eq!(status, 200);
    assert_eq!(
        hub.get(&url.replace(&id, &pdf_id)).await.0,
        403,
        "a link opened another file"
    );
    assert_eq!(hub.get(&url.replace("expires=", "expires=1")).await.0, 403);
    assert_eq!(
        hub.get(&format!("/v1/attachments/{conv}/{id}")).await.0,
        401
    );
}

#[tokio::test]
async fn a_link_stops_working_when_it_expires() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = hub_with_files(&redis, dir.path(), "", "").await;
    let Chat {
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (status, file) = upload(
        &hub,
        Upload {
            conversation: &conv,
            token: Some(&session_of(&welcome)),
            content_type: "text/plain",
            name: "notes.txt",
            bytes: "order 1234, <b>not</b> bold".as_bytes().to_vec(),
        },
    )
    .await;
    assert_eq!(status, 201, "{file}");
    let id = file["id"].as_str().expect("id");
    // Links signed with the hub's own secret: one a second ago, one a minute ahead.
    let secret = redis_get(&redis, "sb:{config}:session_secret").await;
    let now = switchboard::clock::now_ms();
    let signed = |expires: u64| {
        let sig = switchboard::auth::sign_attachment(&secret, &conv, id, expires);
        format!("/v1/attachments/{conv}/{id}?expires={expires}&sig={sig}")
    };
    let (status, body) = hub.get(&signed(now - 1000)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
    let response = reqwest::get(hub.http_url(&signed(now + 60_000)))
        .await
        .expect("download");
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        disposition.starts_with("attachment"),
        "text is never shown inline: {disposition}"
    );
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain")
    );
}

#[tokio::test]
async fn files_expire_with_their_conversation_and_limits_hold() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = hub_with_files(
        &redis,
        dir.path(),
        "max_per_conversation = 2\nsweep_interval_s = 1",
        "\n[retention]\nclosed_conversation_s = 1\nticket_s = 2\n",
    )
    .await;
    let Chat {
        mut customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let session = session_of(&welcome);
    let png = |name: &'static str| Upload {
        conversation: &conv,
        token: Some(&session),
        content_type: "image/png",
        name,
        bytes: PNG.to_vec(),
    };
    assert_eq!(upload(&hub, png("a.png")).await.0, 201);
    let (status, second) = upload(&hub, png("b.png")).await;
    assert_eq!(status, 201);
    let (status, third) = upload(&hub, png("c.png")).await;
    assert_eq!(
        (status, third["code"].as_str()),
        (400, Some("too_large")),
        "{third}"
    );
    assert_eq!(stored_files(dir.path()).len(), 2);

    agent
        .ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    customer.wait_event(&conv, "closed").await;
    // Nothing may be added once the chat has ended.
    let (status, late) = upload(&hub, png("late.png")).await;
    assert!(status == 409 || status == 403, "{status} {late}");
    // Retention: the ticket lives 2 s, then the sweep deletes the files.
    eventually(
        "the files deleted after the ticket's retention",
        Duration::from_secs(20),
        || async { stored_files(dir.path()).is_empty().then_some(()) },
    )
    .await;
    let id = second["id"].as_str().expect("id");
    assert_eq!(link_status(&hub, &conv, id, &session).await, 404);
    assert!(
        hub.metric("switchboard_attachments_deleted_total", &[])
            .await
            >= 2.0
    );
}

/// An upload of `slow.png` that sends its first chunk and then waits for the rest: it
/// holds an upload slot until the sender is dropped (then it ends, 201).
async fn slow_upload(
    hub: &Hub,
    conv: &str,
    session: &str,
) -> (
    tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    tokio::task::JoinHandle<reqwest::Result<u16>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tx.send(Ok(PNG.to_vec())).await.expect("first chunk");
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let url = hub.http_url(&format!(
        "/v1/conversations/{conv}/attachments?name=slow.png"
    ));
    let session = session.to_string();
    let slow = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(session)
            .header("content-type", "image/png")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    (tx, slow)
}

#[tokio::test]
async fn uploads_at_once_are_capped_and_the_widget_may_call_from_its_site() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = hub_with_files(&redis, dir.path(), "max_concurrent_uploads = 1", "").await;
    let Chat {
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let session = session_of(&welcome);

    // A slow upload holds the only slot: the next is refused at once, not queued.
    let (mut tx, mut slow) = slow_upload(&hub, &conv, &session).await;
    // The probe's bytes are not a PNG: until the slow upload holds the slot it is
    // refused as a bad file (400) and stores nothing, so probing cannot use up the
    // conversation's quota on a slow machine. A slow upload that came while a probe held
    // the slot was itself refused: it starts again.
    let deadline = std::time::Instant::now() + WAIT;
    let refused = loop {
        if slow.is_finished() {
            // Refused before its body was read: a 429, or a reset while it still sent.
            let status = (&mut slow).await.expect("slow upload task");
            assert!(
                status.as_ref().map_or(true, |code| *code == 429),
                "the slow upload ended: {status:?}"
            );
            (tx, slow) = slow_upload(&hub, &conv, &session).await;
        }
        let (status, body) = upload(
            &hub,
            Upload {
                conversation: &conv,
                token: Some(&session),
                content_type: "image/png",
                name: "b.png",
                bytes: b"not a png".to_vec(),
            },
        )
        .await;
        assert!(
            status == 429 || status == 400,
            "probe answered {status}: {body}"
        );
        if status == 429 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for a second upload refused while the first holds the slot"
        );
        // A retry interval, not a synchronization point: nothing says the slot is held.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    drop(tx);
    let status = slow.await.expect("slow upload task").expect("slow upload");
    assert_eq!(status, 201);
    let (status, _) = upload(
        &hub,
        Upload {
            conversation: &conv,
            token: Some(&session),
            content_type: "image/png",
            name: "c.png",
            bytes: PNG.to_vec(),
        },
    )
    .await;
    assert_eq!(status, 201, "the slot is free again");

    // CORS: the widget on a customer's site may upload and ask for links.
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            hub.http_url(&format!("/v1/conversations/{conv}/attachments")),
        )
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(response.status().as_u16(), 204);
    let allowed = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        allowed("access-control-allow-origin"),
        "https://shop.example"
    );
    assert!(allowed("access-control-allow-headers").contains("authorization"));
}

#[tokio::test]
async fn erasing_a_customer_deletes_its_files() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = hub_with_files(&redis, dir.path(), "sweep_interval_s = 1", "").await;
    let Chat {
        mut customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (status, _) = upload(
        &hub,
        Upload {
            conversation: &conv,
            token: Some(&session_of(&welcome)),
            content_type: "image/png",
            name: "id-card.png",
            bytes: PNG.to_vec(),
        },
    )
    .await;
    assert_eq!(status, 201);
    agent
        .ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    customer.wait_event(&conv, "closed").await;
    let visitor = welcome["visitor_id"].as_str().expect("visitor_id");
    // The ticket is stored (and the conversation indexed) shortly after the close.
    eventually("the customer erased", WAIT, || async {
        let (status, body) = hub
            .http_json(
                "DELETE",
                &format!("/v1/customers/{visitor}"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        (status == 200 && body["erased"]["conversations"] == 1).then_some(())
    })
    .await;
    // Tickets live 30 days by default: only the erasure makes the files go now.
    eventually(
        "the erased customer's files deleted",
        Duration::from_secs(10),
        || async { stored_files(dir.path()).is_empty().then_some(()) },
    )
    .await;
}

/// The status of asking for a fresh link to a file with `token`.
async fn link_status(hub: &Hub, conv: &str, id: &str, token: &str) -> u16 {
    hub.http_json(
        "GET",
        &format!("/v1/conversations/{conv}/attachments/{id}"),
        Some(token),
        None,
    )
    .await
    .0
}

/// `GET key` on the test's Redis.
async fn redis_get(redis: &RedisServer, key: &str) -> String {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("GET")
}

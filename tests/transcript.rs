//! After the chat (issue 18): a customer downloads the transcript of its closed chat
//! through a short-lived signed link the hub gives it; internal notes never appear, HTML
//! is escaped, and the link opens nothing else. Real hub binary, real redis-server.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_customer_downloads_its_closed_chat() {
    let (_redis, hub) = setup().await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 2).await;
    let (mut customer, _) = hub.customer(json!({"name": "Carl"})).await;
    let conv = customer
        .start_chat("general", "my <b>order</b> is late")
        .await;
    let offer = ann.wait_offer_for(&conv).await;
    ann.accept(&offer).await;
    ann.say(&conv, "Looking into it").await;
    ann.ok(json!({"type": "note", "conversation_id": conv, "text": "VIP, refund quietly"}))
        .await;
    customer
        .err(
            json!({"type": "transcript", "conversation_id": conv}),
            "conflict",
        )
        .await;
    ann.ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    customer.wait_event(&conv, "closed").await;

    let ack = customer
        .ok(json!({"type": "transcript", "conversation_id": conv}))
        .await;
    let url = ack["url"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with(&format!("/v1/transcript/{conv}?")), "{ack}");
    let (status, text) = hub.get(&url).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Carl: my <b>order</b> is late"), "{text}");
    assert!(text.contains("Ann: Looking into it"), "{text}");
    assert!(text.contains("Ann joined the chat"), "{text}");
    assert!(!text.contains("VIP"), "a note leaked: {text}");

    let (status, html) = hub.get(&format!("{url}&format=html")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("my &lt;b&gt;order&lt;/b&gt; is late"),
        "{html}"
    );
    assert!(!html.contains("<b>order"), "{html}");
    let response = reqwest::get(hub.http_url(&url)).await.expect("GET");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(
        header("content-disposition").starts_with("attachment"),
        "{}",
        header("content-disposition")
    );

    // The link opens this transcript only, and only as signed.
    let (status, _) = hub.get(&format!("/v1/transcript/{conv}")).await;
    assert_eq!(status, 401);
    let tampered = url.replace("expires=", "expires=9");
    assert_eq!(hub.get(&tampered).await.0, 403);
    let (mut other, _) = hub.customer(json!({})).await;
    other
        .err(
            json!({"type": "transcript", "conversation_id": conv}),
            "not_found",
        )
        .await;
    ann.err(
        json!({"type": "transcript", "conversation_id": conv}),
        "forbidden",
    )
    .await;
}

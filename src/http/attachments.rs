//! Files in a conversation over HTTP (issue 18):
//! - `POST /v1/conversations/{id}/attachments?name=` — upload, with the customer's
//!   session token or an agent token; the body is the file, `Content-Type` its type;
//! - `GET /v1/conversations/{id}/attachments/{attachment}` — a fresh signed link;
//! - `GET /v1/attachments/{id}/{attachment}?expires=&sig=` — the file, through that link
//!   (so an `<img>` can show it: no token travels in a URL).
//!
//! The widget calls the first two from the customer's site, so they answer CORS
//! preflights for the origins allowed to open the widget's socket.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{auth, ApiResult};
use crate::{
    admission::client,
    attachments::{self, StoredAttachment},
    config::INLINE_TYPES,
    conversation::{Author, Permission},
    error::Error,
    hub::Hub,
    protocol::{Attachment, Role},
    store::Added,
};

/// Who is asking: a customer by its session token, or a bearer of an agent token.
enum Asker {
    Visitor(String),
    Staff(auth::Caller),
}

async fn asker(hub: &Hub, headers: &HeaderMap) -> Result<Asker, Error> {
    let token = auth::bearer(headers)?;
    // Session tokens are `<visitor>.<issued>.<hmac>`; agent tokens have no dot.
    if token.contains('.') {
        return match crate::session::visitor_of_session(hub, token).await? {
            Ok(visitor) => Ok(Asker::Visitor(visitor)),
            Err(why) => Err(Error::Unauthorized(why.into())),
        };
    }
    auth::caller(hub, headers).await.map(Asker::Staff)
}

/// CORS for the widget: the origins that may open its socket may call these too.
fn cors(hub: &Hub, headers: &HeaderMap, mut response: Response) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    if let Some(origin) = origin {
        if client::widget_origin_ok(&hub.config.access, headers) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

/// The preflight of an upload or a link request from the customer's site.
pub async fn preflight(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    cors(&hub, &headers, response)
}

#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
}

pub async fn upload(
    State(hub): State<Arc<Hub>>,
    Path(conversation_id): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let outcome = store_upload(&hub, &conversation_id, query, &headers, body).await;
    let label = match &outcome {
        Ok(_) => "stored",
        Err(Error::TooLarge(_)) => "too_large",
        Err(Error::BadRequest(_)) => "bad_type",
        Err(Error::Forbidden(_) | Error::Unauthorized(_) | Error::NotFound(_)) => "forbidden",
        Err(Error::RateLimitedBecause(_)) => "busy",
        Err(_) => "failed",
    };
    hub.metrics
        .attachment_uploads
        .with_label_values(&[label])
        .inc();
    let response = match outcome {
        Ok(body) => (StatusCode::CREATED, Json(body)).into_response(),
        Err(err) => super::ApiError(err).into_response(),
    };
    cors(&hub, &headers, response)
}

async fn store_upload(
    hub: &Hub,
    conversation_id: &str,
    query: UploadQuery,
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, Error> {
    let asker = asker(hub, headers).await?;
    let settings = hub.attachments.settings();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > settings.max_bytes as u64) {
        return Err(too_large(settings.max_bytes));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(attachments::content_type_of)
        .ok_or_else(|| Error::bad_request("Content-Type must say the file's type"))?;
    let not_yours = || Error::forbidden(format!("not a conversation of yours: {conversation_id}"));
    if !attachments::plain_id(conversation_id) {
        return Err(not_yours());
    }
    let record = hub
        .store
        .conversation(conversation_id)
        .await?
        .ok_or_else(not_yours)?;
    let (by_role, by_id) = match &asker {
        Asker::Visitor(visitor) if *visitor == record.visitor_id => {
            (Role::Customer, visitor.clone())
        }
        Asker::Staff(auth::Caller::Agent(agent)) => {
            let author = Author::Agent {
                id: agent.id.clone(),
                supervisor: agent.supervisor,
            };
            hub.conversations
                .members(conversation_id, author, Permission::Member)
                .await
                .map_err(|_| not_yours())?;
            (Role::Agent, agent.id.clone())
        }
        _ => return Err(not_yours()),
    };
    if !record.is_open() {
        return Err(Error::conflict("the chat has ended: files cannot be added"));
    }
    let _slot = hub.attachments.upload_slot()?;
    let timeout = Duration::from_secs(settings.upload_timeout_s);
    let bytes = tokio::time::timeout(timeout, read_body(body, settings.max_bytes))
        .await
        .map_err(|_| Error::bad_request("the upload took too long"))??;
    hub.attachments.check(&content_type, &bytes)?;

    let attachment = Attachment {
        id: crate::auth::random_id("a_"),
        name: attachments::clean_name(query.name.as_deref().unwrap_or_default()),
        size: bytes.len() as u64,
        content_type,
    };
    let stored = StoredAttachment {
        attachment: attachment.clone(),
        by_role,
        by_id,
        visitor_id: record.visitor_id.clone(),
        created_at: crate::clock::now_ms(),
    };
    let json = serde_json::to_string(&stored).map_err(|_| Error::Unavailable)?;
    // Scheduled before the bytes exist, described only after: whatever fails between,
    // no file is left that the sweep would not find.
    hub.store.note_attachments(conversation_id).await?;
    hub.attachments
        .put(conversation_id, &attachment.id, bytes)
        .await?;
    let added = hub
        .store
        .add_attachment(
            conversation_id,
            &attachment.id,
            json,
            settings.max_per_conversation,
        )
        .await;
    let refused = match added {
        Ok(Added::Stored) => None,
        Ok(Added::Full) => Some(Error::TooLarge(format!(
            "a conversation holds at most {} files",
            settings.max_per_conversation
        ))),
        Ok(Added::NotOpen) => Some(Error::conflict("the chat has ended: files cannot be added")),
        Err(err) => Some(err.into()),
    };
    if let Some(err) = refused {
        if hub
            .attachments
            .delete(conversation_id, &attachment.id)
            .await
            .is_err()
        {
            tracing::warn!(
                conversation_id,
                "an unrecorded upload stays until the conversation's files expire"
            );
        }
        return Err(err);
    }
    let (url, expires_at) = link(hub, conversation_id, &attachment.id);
    let mut body = serde_json::to_value(&attachment).map_err(|_| Error::Unavailable)?;
    body["url"] = json!(url);
    body["expires_at"] = json!(expires_at);
    Ok(body)
}

fn too_large(max: usize) -> Error {
    Error::TooLarge(format!("the file is over {max} bytes"))
}

/// The body, refused as soon as it passes `max` bytes (never held beyond that).
async fn read_body(body: Body, max: usize) -> Result<bytes::Bytes, Error> {
    let mut stream = body.into_data_stream();
    let mut buffer = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Error::bad_request("the upload was cut off"))?;
        if buffer.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// A signed download link and when it stops working (Unix ms).
fn link(hub: &Hub, conversation_id: &str, attachment_id: &str) -> (String, u64) {
    let ttl_ms = hub.attachments.settings().link_ttl_s.saturating_mul(1000);
    let expires = crate::clock::now_ms().saturating_add(ttl_ms);
    let sig =
        crate::auth::sign_attachment(&hub.session_secret, conversation_id, attachment_id, expires);
    (
        format!("/v1/attachments/{conversation_id}/{attachment_id}?expires={expires}&sig={sig}"),
        expires,
    )
}

async fn described(
    hub: &Hub,
    conversation_id: &str,
    attachment_id: &str,
) -> Result<StoredAttachment, Error> {
    attachments::find(&hub.store, conversation_id, attachment_id)
        .await?
        .ok_or_else(|| Error::not_found("no such file (it may have expired)"))
}

/// `GET /v1/conversations/{id}/attachments/{attachment}`: a fresh link, for the
/// conversation's customer, its agents (those who may read the customer's history) and
/// supervisors.
pub async fn link_for(
    State(hub): State<Arc<Hub>>,
    Path((conversation_id, attachment_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        let asker = asker(&hub, &headers).await?;
        let stored = described(&hub, &conversation_id, &attachment_id).await?;
        let allowed = match &asker {
            Asker::Visitor(visitor) => *visitor == stored.visitor_id,
            Asker::Staff(caller) if caller.is_admin_or_supervisor() => true,
            Asker::Staff(auth::Caller::Agent(agent)) => {
                auth::serves(&hub, &agent.id, &stored.visitor_id).await?
            }
            Asker::Staff(auth::Caller::Admin) => true,
        };
        if !allowed {
            return Err(Error::forbidden("not a conversation of yours"));
        }
        let (url, expires_at) = link(&hub, &conversation_id, &attachment_id);
        let mut body = serde_json::to_value(&stored.attachment).map_err(|_| Error::Unavailable)?;
        body["url"] = json!(url);
        body["expires_at"] = json!(expires_at);
        Ok::<_, Error>(body)
    }
    .await;
    let response = match answer {
        Ok(body) => Json(body).into_response(),
        Err(err) => super::ApiError(err).into_response(),
    };
    cors(&hub, &headers, response)
}

#[derive(Deserialize)]
pub struct LinkQuery {
    expires: Option<u64>,
    sig: Option<String>,
}

/// `GET /v1/attachments/{id}/{attachment}?expires=&sig=`: the file itself. Raster images
/// are shown inline; everything else is a download, and nothing served here may run:
/// `nosniff`, a sandboxing CSP, and the stored (checked) type.
pub async fn download(
    State(hub): State<Arc<Hub>>,
    Path((conversation_id, attachment_id)): Path<(String, String)>,
    Query(query): Query<LinkQuery>,
) -> ApiResult<Response> {
    let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
        return Err(Error::Unauthorized("a signed link is needed".into()).into());
    };
    if !crate::auth::verify_attachment(
        &hub.session_secret,
        &conversation_id,
        &attachment_id,
        expires,
        sig,
    ) {
        return Err(Error::forbidden("the link is not valid").into());
    }
    if crate::clock::now_ms() > expires {
        return Err(Error::forbidden("the link has expired: ask for a new one").into());
    }
    let stored = described(&hub, &conversation_id, &attachment_id).await?;
    let bytes = hub
        .attachments
        .get(&conversation_id, &attachment_id)
        .await?
        .ok_or_else(|| Error::not_found("no such file (it may have expired)"))?;
    let attachment = &stored.attachment;
    let inline = INLINE_TYPES.contains(&attachment.content_type.as_str());
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        ascii_name(&attachment.name),
        percent_encode(&attachment.name)
    );
    let left_s = expires.saturating_sub(crate::clock::now_ms()) / 1000;
    let mut response = bytes.into_response();
    let out = response.headers_mut();
    if let Ok(kind) = HeaderValue::from_str(&attachment.content_type) {
        out.insert(header::CONTENT_TYPE, kind);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        out.insert(header::CONTENT_DISPOSITION, value);
    }
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("private, max-age={left_s}")) {
        out.insert(header::CACHE_CONTROL, value);
    }
    // The widget shows images on the customer's site.
    out.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    Ok(response)
}

/// The name for old clients: ASCII only, others as `_`.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 8187 encoding of a file name (`filename*`).
fn percent_encode(name: &str) -> String {
    let mut out = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

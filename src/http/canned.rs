//! `/v1/canned` (issue 18): canned responses read by every agent and changed by the
//! admin (any) or a supervisor (those of topics whose skills it holds). The rules are
//! `crate::canned`; the records and their atomic changes are `store/canned.rs`. Also
//! `GET /v1/config/canned`, the older read, which serves the same records.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    Json,
};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::{
    auth::{self, Caller},
    ApiResult,
};
use crate::{
    canned,
    error::Error,
    hub::Hub,
    store::{CannedRecord, CannedWrite},
};

/// How often a change is retried when the record changed under it (another writer
/// between the read and the script).
const ATTEMPTS: usize = 5;

#[derive(Deserialize)]
pub struct ListQuery {
    topic: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCanned {
    shortcut: String,
    text: String,
    #[serde(default)]
    topic: Option<String>,
}

/// A `PATCH` body: absent fields stay; `"topic": null` makes the response global.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CannedChange {
    shortcut: Option<String>,
    text: Option<String>,
    #[serde(default, deserialize_with = "present")]
    topic: Option<Option<String>>,
}

/// A field that is present (maybe `null`), as opposed to absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|err| Error::bad_request(format!("bad body: {err}")))
}

/// The fields' rules and the topic's existence.
fn check(hub: &Hub, shortcut: &str, text: &str, topic: Option<&str>) -> Result<(), Error> {
    canned::check_shortcut(shortcut).map_err(Error::BadRequest)?;
    canned::check_text(text).map_err(Error::BadRequest)?;
    if let Some(topic) = topic {
        if hub.config.topic(topic).is_none() {
            return Err(Error::bad_request(format!("no topic {topic:?}")));
        }
    }
    Ok(())
}

/// Anyone but a plain agent may try to change canned responses.
fn writer(caller: &Caller) -> Result<(), Error> {
    if caller.is_admin_or_supervisor() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only admins and supervisors change canned responses",
        ))
    }
}

/// Whether `caller` may change responses of `topic` (`None`: global). The topic
/// exists (checked before).
fn may_manage(hub: &Hub, caller: &Caller, topic: Option<&str>) -> Result<(), Error> {
    let agent = match caller {
        Caller::Admin => return Ok(()),
        Caller::Agent(agent) => agent,
    };
    writer(caller)?;
    let Some(name) = topic else {
        return Err(Error::forbidden(
            "global canned responses are changed by the admin only",
        ));
    };
    let skills = hub
        .config
        .topic(name)
        .map(|t| t.skills.as_slice())
        .unwrap_or_default();
    if canned::supervisor_manages(&agent.skills, skills) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "topic {name:?} requires skills {skills:?}: a supervisor manages the canned responses of topics whose skills it holds"
        )))
    }
}

fn outcome(write: CannedWrite, record: &CannedRecord) -> Result<(), Error> {
    match write {
        CannedWrite::Done => Ok(()),
        CannedWrite::Duplicate => Err(Error::conflict(format!(
            "shortcut {:?} exists already {}",
            record.shortcut,
            match &record.topic {
                Some(topic) => format!("for topic {topic:?}"),
                None => "among the global responses".into(),
            }
        ))),
        CannedWrite::Full => Err(Error::conflict(format!(
            "at most {} canned responses; delete some first",
            canned::MAX_RESPONSES
        ))),
        CannedWrite::Missing => Err(Error::not_found(format!(
            "no canned response {}",
            record.id
        ))),
        CannedWrite::Changed => Err(Error::conflict(
            "the canned response changed meanwhile; try again",
        )),
    }
}

/// `GET /v1/canned?topic=` (any agent): the global responses and those of `topic`, or
/// every response without `topic`. A topic the config does not know has none.
pub async fn list(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    auth::caller(&hub, &headers).await?;
    let Query(query) = query.map_err(|err| Error::bad_request(format!("bad query: {err}")))?;
    let topic = query.topic.filter(|t| !t.is_empty());
    let records: Vec<CannedRecord> = hub
        .store
        .canned_all()
        .await?
        .into_iter()
        .filter(|r| match (&topic, &r.topic) {
            (None, _) | (_, None) => true,
            (Some(wanted), Some(own)) => wanted == own,
        })
        .collect();
    Ok(Json(json!({ "canned_responses": records })))
}

/// `GET /v1/config/canned` (any agent): every response, as `GET /v1/canned`.
pub async fn config_list(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    auth::caller(&hub, &headers).await?;
    let records = hub.store.canned_all().await?;
    Ok(Json(json!({ "canned_responses": records })))
}

/// `POST /v1/canned` → 201 with the record.
pub async fn create(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    writer(&caller)?;
    let new: NewCanned = parse(&body)?;
    check(&hub, &new.shortcut, &new.text, new.topic.as_deref())?;
    may_manage(&hub, &caller, new.topic.as_deref())?;
    let record = CannedRecord {
        id: crate::auth::random_id("cr_"),
        shortcut: new.shortcut,
        text: new.text,
        topic: new.topic,
        updated_at: crate::clock::now_ms(),
    };
    let write = hub
        .store
        .create_canned(&record, canned::MAX_RESPONSES)
        .await?;
    outcome(write, &record)?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// `PATCH /v1/canned/{id}` → 200 with the record. Moving a response to another topic
/// needs the right to both.
pub async fn update(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    writer(&caller)?;
    let change: CannedChange = parse(&body)?;
    for _attempt in 0..ATTEMPTS {
        let (old, old_json) = hub
            .store
            .canned(&id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no canned response {id}")))?;
        may_manage(&hub, &caller, old.topic.as_deref())?;
        let new = CannedRecord {
            id: old.id.clone(),
            shortcut: change
                .shortcut
                .clone()
                .unwrap_or_else(|| old.shortcut.clone()),
            text: change.text.clone().unwrap_or_else(|| old.text.clone()),
            topic: change.topic.clone().unwrap_or_else(|| old.topic.clone()),
            updated_at: crate::clock::now_ms(),
        };
        check(&hub, &new.shortcut, &new.text, new.topic.as_deref())?;
        may_manage(&hub, &caller, new.topic.as_deref())?;
        let write = hub.store.update_canned(&old, &old_json, &new).await?;
        if write != CannedWrite::Changed {
            outcome(write, &new)?;
            return Ok(Json(new));
        }
    }
    Err(Error::conflict("the canned response kept changing; try again").into())
}

/// `DELETE /v1/canned/{id}` → 204.
pub async fn remove(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    writer(&caller)?;
    for _attempt in 0..ATTEMPTS {
        let (old, old_json) = hub
            .store
            .canned(&id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no canned response {id}")))?;
        may_manage(&hub, &caller, old.topic.as_deref())?;
        match hub.store.delete_canned(&old, &old_json).await? {
            CannedWrite::Changed => continue,
            write => {
                outcome(write, &old)?;
                return Ok(StatusCode::NO_CONTENT);
            }
        }
    }
    Err(Error::conflict("the canned response kept changing; try again").into())
}

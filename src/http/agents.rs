//! `/v1/agents`: create, list, change and remove agents (admin), list (supervisors).

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    Json,
};
use serde::Deserialize;
use serde_json::json;

use super::{auth, ApiResult};
use crate::{
    error::Error,
    hub::Hub,
    store::{AgentRecord, AgentUpdate},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    id: String,
    name: String,
    #[serde(default)]
    skills: BTreeMap<String, u32>,
    #[serde(default = "one")]
    capacity: u32,
    #[serde(default)]
    supervisor: bool,
    #[serde(default)]
    auto_accept: bool,
}

fn one() -> u32 {
    1
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn validate(agent: &AgentRecord) -> Result<(), Error> {
    if agent.name.trim().is_empty() || agent.name.len() > 128 {
        return Err(Error::bad_request("name must be 1 to 128 bytes"));
    }
    if agent.capacity == 0 || agent.capacity > 1000 {
        return Err(Error::bad_request("capacity must be 1 to 1000"));
    }
    if agent.skills.len() > 100 || agent.skills.keys().any(|s| s.is_empty() || s.len() > 64) {
        return Err(Error::bad_request(
            "skills must be at most 100 names of 1 to 64 bytes",
        ));
    }
    Ok(())
}

fn public(agent: &AgentRecord) -> serde_json::Value {
    json!({
        "id": agent.id, "name": agent.name, "skills": agent.skills, "capacity": agent.capacity,
        "supervisor": agent.supervisor, "auto_accept": agent.auto_accept,
    })
}

pub async fn create(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Json<NewAgent>,
) -> ApiResult<impl IntoResponse> {
    auth::admin(&hub, &headers).await?;
    let Json(new) = body;
    if !valid_id(&new.id) {
        return Err(Error::bad_request("id must match [A-Za-z0-9_.-]{1,64}").into());
    }
    let token = format!("sbat_{}", crate::auth::random_token(24));
    let agent = AgentRecord {
        id: new.id,
        name: new.name,
        skills: new.skills,
        capacity: new.capacity,
        supervisor: new.supervisor,
        auto_accept: new.auto_accept,
        token_hash: crate::auth::token_hash(&token),
    };
    validate(&agent)?;
    if !hub.store.create_agent(&agent).await? {
        return Err(Error::conflict(format!("agent {} exists", agent.id)).into());
    }
    hub.agents.insert(agent.clone());
    hub.router.upsert_agent(agent.clone());
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": agent.id, "token": token})),
    ))
}

pub async fn list(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> ApiResult<impl IntoResponse> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    let routing = hub.router.agents().await;
    // Tabs at the other live nodes, as of their last heartbeat (at most a second old);
    // this node's own count is read live below.
    let mut elsewhere: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (node, record) in hub.store.live_nodes().await? {
        if node == hub.node.id {
            continue;
        }
        if let Ok(record) = serde_json::from_str::<crate::routing::recovery::NodeRecord>(&record) {
            for (agent, n) in record.agent_tabs {
                *elsewhere.entry(agent).or_default() += n;
            }
        }
    }
    let agents: Vec<_> = hub
        .store
        .agents()
        .await?
        .iter()
        .map(|agent| {
            let mut view = public(agent);
            let state = routing.iter().find(|s| s.id == agent.id);
            view["status"] = json!(state
                .map(|s| s.status)
                .unwrap_or(crate::protocol::AgentStatus::Offline));
            view["load"] = json!(state.map(|s| s.load).unwrap_or(0));
            view["away_reason"] = json!(state.and_then(|s| s.away_reason.clone()));
            view["wrap_up_ends_in_ms"] = json!(state.and_then(|s| s.wrap_up_ends_in_ms));
            let here = hub
                .registry
                .count(&crate::registry::PartyKey::Agent(agent.id.clone()));
            let others = elsewhere.get(&agent.id).copied().unwrap_or(0);
            view["connections"] = json!(here + others);
            view
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `GET /v1/transfer-targets`: whom any agent may hand a chat to — the other agents
/// (id, name, status, load, capacity; nothing else of their profiles) and the topics.
/// The transfer dialog's picker; `GET /v1/agents` stays for admins and supervisors.
pub async fn transfer_targets(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let caller = auth::caller(&hub, &headers).await?;
    let me = match &caller {
        auth::Caller::Agent(agent) => Some(agent.id.clone()),
        auth::Caller::Admin => None,
    };
    let routing = hub.router.agents().await;
    let agents: Vec<_> = hub
        .store
        .agents()
        .await?
        .iter()
        .filter(|agent| Some(&agent.id) != me.as_ref())
        .map(|agent| {
            let state = routing.iter().find(|s| s.id == agent.id);
            json!({
                "id": agent.id,
                "name": agent.name,
                "status": state
                    .map(|s| s.status)
                    .unwrap_or(crate::protocol::AgentStatus::Offline),
                "load": state.map(|s| s.load).unwrap_or(0),
                "capacity": agent.capacity,
            })
        })
        .collect();
    let topics: Vec<&str> = hub.config.topics.iter().map(|t| t.name.as_str()).collect();
    Ok(Json(json!({ "agents": agents, "topics": topics })))
}

pub async fn update(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Json<AgentUpdate>,
) -> ApiResult<impl IntoResponse> {
    auth::admin(&hub, &headers).await?;
    let mut agent = hub
        .store
        .agent(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no agent {id}")))?;
    agent.apply(body.0);
    validate(&agent)?;
    hub.store.save_agent(&agent).await?;
    hub.agents.insert(agent.clone());
    hub.router.upsert_agent(agent.clone());
    Ok(Json(public(&agent)))
}

pub async fn remove(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    auth::admin(&hub, &headers).await?;
    let agent = hub
        .store
        .agent(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no agent {id}")))?;
    hub.store.delete_agent(&agent).await?;
    hub.agents.remove(&id);
    hub.router.remove_agent(&id);
    Ok(StatusCode::NO_CONTENT)
}

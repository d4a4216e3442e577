//! Bearer-token callers of the REST API: the admin, or an agent (maybe a supervisor).

use axum::http::HeaderMap;

use crate::{auth, error::Error, hub::Hub, store::AgentRecord};

pub enum Caller {
    Admin,
    Agent(AgentRecord),
}

impl Caller {
    pub fn is_admin_or_supervisor(&self) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Agent(agent) => agent.supervisor,
        }
    }
}

pub async fn caller(hub: &Hub, headers: &HeaderMap) -> Result<Caller, Error> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unauthorized("a bearer token is required".into()))?;
    if auth::same_secret(token, hub.config.admin_token.expose()) {
        return Ok(Caller::Admin);
    }
    match hub
        .store
        .agent_by_token_hash(&auth::token_hash(token))
        .await?
    {
        Some(agent) => Ok(Caller::Agent(agent)),
        None => Err(Error::Unauthorized("unknown token".into())),
    }
}

pub async fn admin(hub: &Hub, headers: &HeaderMap) -> Result<(), Error> {
    match caller(hub, headers).await? {
        Caller::Admin => Ok(()),
        Caller::Agent(_) => Err(Error::forbidden("admin only")),
    }
}

pub async fn admin_or_supervisor(hub: &Hub, headers: &HeaderMap) -> Result<Caller, Error> {
    let caller = caller(hub, headers).await?;
    if caller.is_admin_or_supervisor() {
        Ok(caller)
    } else {
        Err(Error::forbidden("admins and supervisors only"))
    }
}

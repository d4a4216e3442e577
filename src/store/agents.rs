//! Agent profiles and their tokens. Tokens are never stored, only their SHA-256, so a
//! leaked Redis dump does not leak credentials.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{keys, Store, StoreResult};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub skills: BTreeMap<String, u32>,
    pub capacity: u32,
    #[serde(default)]
    pub supervisor: bool,
    #[serde(default)]
    pub auto_accept: bool,
    pub token_hash: String,
}

/// A partial change from `PATCH /v1/agents/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdate {
    pub name: Option<String>,
    pub skills: Option<BTreeMap<String, u32>>,
    pub capacity: Option<u32>,
    pub supervisor: Option<bool>,
    pub auto_accept: Option<bool>,
}

impl AgentRecord {
    pub fn apply(&mut self, update: AgentUpdate) {
        if let Some(name) = update.name {
            self.name = name;
        }
        if let Some(skills) = update.skills {
            self.skills = skills;
        }
        if let Some(capacity) = update.capacity {
            self.capacity = capacity;
        }
        if let Some(supervisor) = update.supervisor {
            self.supervisor = supervisor;
        }
        if let Some(auto_accept) = update.auto_accept {
            self.auto_accept = auto_accept;
        }
    }
}

impl Store {
    /// Stores a new agent; false when the id is taken.
    pub async fn create_agent(&self, agent: &AgentRecord) -> StoreResult<bool> {
        let json = serde_json::to_string(agent)?;
        let mut conn = self.conn();
        let id = agent.id.clone();
        let token_hash = agent.token_hash.clone();
        self.run("create_agent", async move {
            let created: bool = redis::cmd("HSETNX")
                .arg(keys::agents())
                .arg(&id)
                .arg(json)
                .query_async(&mut conn)
                .await?;
            if created {
                redis::cmd("HSET")
                    .arg(keys::agent_tokens())
                    .arg(token_hash)
                    .arg(&id)
                    .query_async::<i64>(&mut conn)
                    .await?;
            }
            Ok(created)
        })
        .await
    }

    pub async fn save_agent(&self, agent: &AgentRecord) -> StoreResult<()> {
        let json = serde_json::to_string(agent)?;
        let mut conn = self.conn();
        let id = agent.id.clone();
        self.run("save_agent", async move {
            redis::cmd("HSET")
                .arg(keys::agents())
                .arg(id)
                .arg(json)
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }

    pub async fn agent(&self, id: &str) -> StoreResult<Option<AgentRecord>> {
        let mut conn = self.conn();
        let id = id.to_string();
        let json: Option<String> = self
            .run("agent", async move {
                redis::cmd("HGET")
                    .arg(keys::agents())
                    .arg(id)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(json.map(|text| serde_json::from_str(&text)).transpose()?)
    }

    pub async fn agents(&self) -> StoreResult<Vec<AgentRecord>> {
        let mut conn = self.conn();
        let all: HashMap<String, String> = self
            .run("agents", async move {
                redis::cmd("HGETALL")
                    .arg(keys::agents())
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut agents = all
            .values()
            .map(|text| serde_json::from_str::<AgentRecord>(text))
            .collect::<Result<Vec<_>, _>>()?;
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(agents)
    }

    pub async fn delete_agent(&self, agent: &AgentRecord) -> StoreResult<()> {
        let mut conn = self.conn();
        let id = agent.id.clone();
        let token_hash = agent.token_hash.clone();
        self.run("delete_agent", async move {
            redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(keys::agents())
                .arg(id)
                .ignore()
                .cmd("HDEL")
                .arg(keys::agent_tokens())
                .arg(token_hash)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// The agent a token belongs to, looked up by the token's hash.
    pub async fn agent_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<AgentRecord>> {
        let mut conn = self.conn();
        let hash = token_hash.to_string();
        let id: Option<String> = self
            .run("agent_by_token", async move {
                redis::cmd("HGET")
                    .arg(keys::agent_tokens())
                    .arg(hash)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        match id {
            Some(id) => self.agent(&id).await,
            None => Ok(None),
        }
    }
}

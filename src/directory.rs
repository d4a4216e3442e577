//! Agent profiles as last stored, for the sessions: who is a supervisor, what an agent
//! is called, whether a transfer target exists. Written only where profiles change (the
//! REST API) and at start-up; the router gets its own routing view by message.
//! A sharded map whose entries are shared (`Arc`): a reader takes a reference count,
//! never a copy, and never holds the shard across an `.await`.

use std::sync::Arc;

use dashmap::DashMap;

use crate::store::AgentRecord;

#[derive(Default)]
pub struct Directory {
    agents: DashMap<String, Arc<AgentRecord>>,
}

impl Directory {
    pub fn get(&self, id: &str) -> Option<Arc<AgentRecord>> {
        self.agents.get(id).map(|entry| Arc::clone(entry.value()))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.agents.contains_key(id)
    }

    pub fn insert(&self, agent: AgentRecord) {
        self.agents.insert(agent.id.clone(), Arc::new(agent));
    }

    pub fn remove(&self, id: &str) {
        self.agents.remove(id);
    }

    pub fn ids(&self) -> Vec<String> {
        self.agents
            .iter()
            .map(|entry| entry.key().clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

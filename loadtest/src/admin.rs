//! The hub's HTTP API as the harness uses it: create the run's agents (ids prefixed by the
//! run id) and delete them at the end, and turn the hub's base URL into WebSocket URLs.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// A hub endpoint, from its base URL (`http://127.0.0.1:8080`).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub http: String,
    pub customer_ws: String,
    pub agent_ws: String,
}

impl Endpoints {
    pub fn new(base: &str) -> anyhow::Result<Endpoints> {
        let http = base.trim_end_matches('/').to_string();
        let ws = if let Some(rest) = http.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = http.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            bail!("--hub must start with http:// or https://, got {base:?}");
        };
        Ok(Endpoints {
            customer_ws: format!("{ws}/v1/customer/ws"),
            agent_ws: format!("{ws}/v1/agent/ws"),
            http,
        })
    }
}

#[derive(Debug, Serialize)]
struct NewAgent<'a> {
    id: &'a str,
    name: &'a str,
    skills: &'a BTreeMap<String, u32>,
    capacity: u32,
    supervisor: bool,
    auto_accept: bool,
}

#[derive(Debug, Deserialize)]
struct Created {
    token: String,
}

/// Admin calls with the admin bearer token.
#[derive(Clone)]
pub struct Admin {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("base", &self.base)
            .field("token", &"***")
            .finish()
    }
}

impl Admin {
    pub fn new(base: &str, token: &str) -> anyhow::Result<Admin> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .context("build the HTTP client")?;
        Ok(Admin {
            client,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// Creates an agent; returns its token.
    pub async fn create_agent(
        &self,
        id: &str,
        skills: &BTreeMap<String, u32>,
        capacity: u32,
    ) -> anyhow::Result<String> {
        let body = NewAgent {
            id,
            name: id,
            skills,
            capacity,
            supervisor: false,
            auto_accept: false,
        };
        let response = self
            .client
            .post(format!("{}/v1/agents", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST /v1/agents for {id}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST /v1/agents for {id}: {status} {text}");
        }
        let created: Created = response
            .json()
            .await
            .with_context(|| format!("POST /v1/agents for {id}: unreadable answer"))?;
        Ok(created.token)
    }

    pub async fn delete_agent(&self, id: &str) -> anyhow::Result<()> {
        let response = self
            .client
            .delete(format!("{}/v1/agents/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("DELETE /v1/agents/{id}"))?;
        let status = response.status();
        if !status.is_success() && status != reqwest::StatusCode::NOT_FOUND {
            bail!("DELETE /v1/agents/{id}: {status}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_from_the_base() {
        let e = Endpoints::new("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(e.customer_ws, "ws://127.0.0.1:8080/v1/customer/ws");
        assert_eq!(e.agent_ws, "ws://127.0.0.1:8080/v1/agent/ws");
        assert_eq!(e.http, "http://127.0.0.1:8080");
        assert!(Endpoints::new("127.0.0.1:8080").is_err());
    }
}

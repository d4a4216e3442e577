//! What an agent (the console) may do: set its status, answer offers, write messages
//! and internal notes, hand off or escalate, close; supervisors also monitor, and may
//! note, transfer or close any conversation. Also the requests both roles share.

use std::sync::Arc;

use super::{
    connection::{HandshakeError, Reply},
    conversation::{AppendRequest, Author, Permission},
    registry::{ConnTx, PartyKey},
    requests, Hub,
};
use crate::{
    auth,
    error::{Error, Result},
    protocol::{
        AckBody, AgentInfo, Audience, ClientFrame, ConversationSummary, EventBody, Hello, Party,
        Role, ServerFrame, PROTOCOL_VERSION,
    },
    store::{AgentRecord, Requirement},
};

pub struct AgentSession {
    pub agent: AgentRecord,
    /// Conversations this connection monitors (supervisors), to clean up on close.
    monitoring: Vec<String>,
}

impl AgentSession {
    pub async fn start(
        hub: &Arc<Hub>,
        hello: Hello,
        conn: &ConnTx,
    ) -> Result<(Self, ServerFrame), HandshakeError> {
        let token = hello
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| HandshakeError::BadHello("agent hello needs a token".into()))?;
        let agent = hub
            .store
            .agent_by_token_hash(&auth::token_hash(&token))
            .await?
            .ok_or_else(|| HandshakeError::BadCredentials("unknown agent token".into()))?;
        let party = PartyKey::Agent(agent.id.clone());
        let first = hub.registry.add(party.clone(), conn.clone()) == 1;
        let (status, conversations) = hub.router.agent_connected(&agent.id, first).await;
        let mut summaries = Vec::new();
        for id in conversations {
            match hub.store.conversation(&id).await {
                Ok(Some(record)) if record.is_open() => summaries.push(ConversationSummary {
                    conversation_id: record.id,
                    state: record.state,
                    last_seq: record.last_seq,
                }),
                Ok(_) => {}
                Err(err) => {
                    hub.registry.remove(&party, conn.id);
                    return Err(err.into());
                }
            }
        }
        let welcome = ServerFrame::Welcome {
            protocol: PROTOCOL_VERSION,
            session: None,
            visitor_id: None,
            verified: None,
            online: None,
            agent: Some(AgentInfo {
                id: agent.id.clone(),
                name: agent.name.clone(),
                skills: agent.skills.clone(),
                capacity: agent.capacity,
                supervisor: agent.supervisor,
            }),
            status: Some(status),
            conversations: summaries,
        };
        Ok((
            AgentSession {
                agent,
                monitoring: Vec::new(),
            },
            welcome,
        ))
    }

    pub fn disconnected(&mut self, hub: &Arc<Hub>, conn: &ConnTx) {
        hub.registry.unmonitor_all(conn.id, &self.monitoring);
        if hub
            .registry
            .remove(&PartyKey::Agent(self.agent.id.clone()), conn.id)
            == 0
        {
            hub.router.agent_disconnected(&self.agent.id);
        }
    }

    fn party(&self) -> Party {
        Party {
            role: Role::Agent,
            id: self.agent.id.clone(),
            name: Some(self.agent.name.clone()),
        }
    }

    fn author(&self) -> Author {
        Author::Agent {
            id: self.agent.id.clone(),
            supervisor: self.agent.supervisor,
        }
    }

    pub fn speaker(&self) -> requests::Speaker {
        requests::Speaker {
            author: self.author(),
            party: self.party(),
            audience: Audience::Staff,
        }
    }

    /// The requests only this role makes (the shared ones are in `requests`).
    pub async fn handle(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: Option<String>,
        frame: ClientFrame,
    ) -> Result<Reply> {
        if let Some(profile) = hub.agents.get(&self.agent.id) {
            self.agent = profile.clone();
        }
        let max_text = hub.config.limits.max_text_bytes;
        match frame {
            ClientFrame::Hello(_) => Err(Error::bad_request("already said hello")),
            ClientFrame::Ping {}
            | ClientFrame::Message { .. }
            | ClientFrame::History { .. }
            | ClientFrame::Typing { .. }
            | ClientFrame::Read { .. } => Err(Error::bad_request("handled by the shared requests")),
            ClientFrame::Status { status } => {
                let status = hub.router.set_status(&self.agent.id, status).await?;
                Ok(Reply::Ack(AckBody {
                    status: Some(status),
                    ..AckBody::default()
                }))
            }
            ClientFrame::Accept { offer_id } => {
                hub.router
                    .accept(&self.agent.id, &offer_id, req.map(|r| (conn.clone(), r)))
                    .await?;
                Ok(Reply::Done)
            }
            ClientFrame::Decline { offer_id } => {
                hub.router.decline(&self.agent.id, &offer_id).await?;
                Ok(Reply::Ack(AckBody::default()))
            }
            ClientFrame::Note {
                conversation_id,
                text,
            } => {
                requests::check_text(hub, &text)?;
                let request = AppendRequest {
                    author: self.author(),
                    permission: Permission::Staff,
                    body: EventBody::Note {
                        from: self.party(),
                        text,
                    },
                    client_msg_id: None,
                    requirement: Requirement::Open,
                    updates: vec![],
                    ack: req.map(|r| (conn.clone(), r, AckBody::default())),
                    errors_to: None,
                };
                requests::expect_stored(
                    hub.conversations.append(&conversation_id, request).await?,
                    &conversation_id,
                )
            }
            ClientFrame::Close {
                conversation_id,
                resolution,
                tags,
            } => {
                let resolution = resolution
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| "resolved".into());
                if resolution.len() > 64 || tags.len() > 32 || tags.iter().any(|t| t.len() > 64) {
                    return Err(Error::bad_request("resolution and tags must be short"));
                }
                hub.close_conversation(
                    &conversation_id,
                    self.author(),
                    Party {
                        name: None,
                        ..self.party()
                    },
                    resolution,
                    tags,
                    req.map(|r| (conn.clone(), r)),
                )
                .await?;
                Ok(Reply::Done)
            }
            ClientFrame::Transfer {
                conversation_id,
                to_agent,
                to_topic,
                note,
            } => {
                if let Some(note) = &note {
                    if note.len() > max_text {
                        return Err(Error::TooLarge(format!("note is over {max_text} bytes")));
                    }
                }
                self.transfer(hub, conn, req, conversation_id, to_agent, to_topic, note)
                    .await
            }
            ClientFrame::Monitor { conversation_id } => {
                if !self.agent.supervisor {
                    return Err(Error::forbidden("only supervisors can monitor"));
                }
                let members = hub
                    .conversations
                    .members(&conversation_id, self.author(), Permission::Staff)
                    .await?;
                hub.registry.monitor(&conversation_id, conn.clone());
                if !self.monitoring.contains(&conversation_id) {
                    self.monitoring.push(conversation_id.clone());
                }
                Ok(Reply::Ack(AckBody {
                    conversation_id: Some(conversation_id),
                    last_seq: Some(members.last_seq),
                    ..AckBody::default()
                }))
            }
            ClientFrame::Unmonitor { conversation_id } => {
                hub.registry.unmonitor(&conversation_id, conn.id);
                self.monitoring.retain(|c| *c != conversation_id);
                Ok(Reply::Ack(AckBody::default()))
            }
            ClientFrame::Start { .. }
            | ClientFrame::Rate { .. }
            | ClientFrame::OfflineMessage { .. } => Err(Error::forbidden("agents cannot do that")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn transfer(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: Option<String>,
        conversation_id: String,
        to_agent: Option<String>,
        to_topic: Option<String>,
        note: Option<String>,
    ) -> Result<Reply> {
        let target = match (to_agent, to_topic) {
            (Some(agent), None) => Target::Agent(agent),
            (None, Some(topic)) => Target::Topic(topic),
            _ => {
                return Err(Error::bad_request(
                    "transfer needs exactly one of to_agent and to_topic",
                ))
            }
        };
        match &target {
            Target::Agent(agent) if !hub.agents.contains_key(agent) => {
                return Err(Error::not_found(format!("no agent {agent}")))
            }
            Target::Agent(agent) if *agent == self.agent.id => {
                return Err(Error::bad_request("cannot transfer to yourself"))
            }
            Target::Topic(topic) if hub.config.topic(topic).is_none() => {
                return Err(Error::not_found(format!("no topic {topic}")))
            }
            _ => {}
        }
        let members = hub
            .conversations
            .members(&conversation_id, self.author(), Permission::Staff)
            .await?;
        let Some(owner) = members.agent.clone() else {
            return Err(Error::conflict(
                "the conversation has no agent to hand off from",
            ));
        };
        let (to_agent, to_topic) = match &target {
            Target::Agent(agent) => (Some(agent.clone()), None),
            Target::Topic(topic) => (None, Some(topic.clone())),
        };
        let request = AppendRequest {
            author: self.author(),
            permission: Permission::Staff,
            body: EventBody::Transfer {
                from_agent: owner.clone(),
                to_agent,
                to_topic,
                note: note.clone(),
            },
            client_msg_id: None,
            requirement: Requirement::Open,
            updates: vec![],
            ack: req.map(|r| (conn.clone(), r, AckBody::default())),
            errors_to: None,
        };
        requests::expect_stored(
            hub.conversations.append(&conversation_id, request).await?,
            &conversation_id,
        )?;
        // The transfer event is stored; whether anyone takes it is told separately
        // (`transfer_failed` to the requester, or `joined`/`left`).
        hub.router
            .transfer(conversation_id, owner, self.agent.id.clone(), target, note);
        Ok(Reply::Done)
    }
}

/// Where a conversation is handed to.
#[derive(Debug, Clone)]
pub enum Target {
    Agent(String),
    Topic(String),
}

//! What an agent (the console) may do: set its status, answer offers, write messages
//! and internal notes, hand off or escalate, close; supervisors also monitor, and may
//! note, transfer or close any conversation. Also the requests both roles share.

use std::sync::Arc;

use super::{
    shared::{self, Speaker},
    HandshakeError, Reply,
};
use crate::{
    auth,
    conversation::{expect_stored, Ack, AppendRequest, Author, Close, Permission},
    error::{Error, Result},
    hub::Hub,
    protocol::{
        AckBody, AgentInfo, AgentStatus, Audience, ClientFrame, ConversationSummary, EventBody,
        Hello, Party, Role, ServerFrame, PROTOCOL_VERSION,
    },
    registry::{ConnTx, PartyKey},
    routing::Target,
    store::AgentRecord,
};

pub struct AgentSession {
    pub id: String,
    /// The profile as of the last frame: the directory has the current one (a supervisor
    /// demoted by the API loses the right at the next frame).
    profile: Arc<AgentRecord>,
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
        hub.registry.add(party.clone(), conn.clone());
        let (status, conversations) = hub.router.agent_connected(&agent.id).await;
        let mut summaries = Vec::new();
        for id in conversations {
            match hub.store.conversation(&id).await {
                Ok(Some(record)) if record.is_open() => {
                    // This node hears the conversation from now on, whichever stores.
                    hub.conversations.watch_soon(&record.id, None, None, None);
                    summaries.push(ConversationSummary {
                        survey: None,
                        conversation_id: record.id,
                        state: record.state,
                        last_seq: record.last_seq,
                    })
                }
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
            verified_fields: None,
            online: None,
            topics: None,
            agent: Some(AgentInfo {
                id: agent.id.clone(),
                name: agent.name.clone(),
                skills: agent.skills.clone(),
                capacity: agent.capacity,
                supervisor: agent.supervisor,
                away_reasons: hub.config.agents.away_reasons.clone(),
            }),
            status: Some(status),
            conversations: summaries,
        };
        Ok((
            AgentSession {
                id: agent.id.clone(),
                profile: Arc::new(agent),
                monitoring: Vec::new(),
            },
            welcome,
        ))
    }

    pub fn disconnected(&mut self, hub: &Arc<Hub>, conn: &ConnTx) {
        hub.registry.unmonitor_all(conn.id, &self.monitoring);
        if hub
            .registry
            .remove(&PartyKey::Agent(self.id.clone()), conn.id)
            == 0
        {
            hub.router.agent_disconnected(&self.id);
        }
    }

    fn party(&self) -> Party {
        Party {
            role: Role::Agent,
            id: self.id.clone(),
            name: Some(self.profile.name.clone()),
        }
    }

    fn author(&self) -> Author {
        Author::Agent {
            id: self.id.clone(),
            supervisor: self.profile.supervisor,
        }
    }

    /// Who speaks, with the profile as the directory has it now.
    pub fn speaker(&mut self, hub: &Hub) -> Speaker {
        if let Some(profile) = hub.agents.get(&self.id) {
            self.profile = profile;
        }
        Speaker {
            author: self.author(),
            party: self.party(),
            audience: Audience::Staff,
        }
    }

    /// The requests only this role makes (the shared ones are in `shared`). The profile
    /// was refreshed by [`AgentSession::speaker`] for this frame.
    pub async fn handle(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: Option<String>,
        frame: ClientFrame,
    ) -> Result<Reply> {
        let max_text = hub.config.limits.max_text_bytes;
        match frame {
            ClientFrame::Status { status, reason } => {
                let reason = checked_status(hub, status, reason)?;
                let status = hub.router.set_status(&self.id, status, reason).await?;
                Ok(Reply::Ack(AckBody {
                    status: Some(status),
                    ..AckBody::default()
                }))
            }
            ClientFrame::Accept { offer_id } => {
                hub.router
                    .accept(&self.id, &offer_id, req.map(|r| Ack::to(conn, r)))
                    .await?;
                Ok(Reply::Done)
            }
            ClientFrame::Decline { offer_id } => {
                hub.router.decline(&self.id, &offer_id).await?;
                Ok(Reply::Ack(AckBody::default()))
            }
            ClientFrame::Take { conversation_id } => {
                hub.router.claim(&conversation_id, &self.id).await?;
                Ok(Reply::Ack(AckBody {
                    conversation_id: Some(conversation_id),
                    ..AckBody::default()
                }))
            }
            ClientFrame::Assign {
                conversation_id,
                agent,
            } => {
                if !self.profile.supervisor {
                    return Err(Error::forbidden(
                        "only supervisors can assign conversations",
                    ));
                }
                hub.router.claim(&conversation_id, &agent).await?;
                Ok(Reply::Ack(AckBody {
                    conversation_id: Some(conversation_id),
                    ..AckBody::default()
                }))
            }
            ClientFrame::Note {
                conversation_id,
                text,
            } => {
                shared::check_text(hub, &text)?;
                let mut request = AppendRequest::new(
                    self.author(),
                    Permission::Staff,
                    EventBody::Note {
                        from: self.party(),
                        text,
                    },
                );
                request.ack = req.map(|r| Ack::to(conn, r));
                expect_stored(
                    hub.conversations.append(&conversation_id, request).await?,
                    &conversation_id,
                )?;
                Ok(Reply::Done)
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
                let close = Close {
                    author: self.author(),
                    by: Party {
                        name: None,
                        ..self.party()
                    },
                    resolution,
                    tags,
                };
                hub.conversations
                    .close(&conversation_id, close, req.map(|r| Ack::to(conn, r)))
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
                if !self.profile.supervisor {
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
            ClientFrame::Hello(_)
            | ClientFrame::Ping {}
            | ClientFrame::Message { .. }
            | ClientFrame::History { .. }
            | ClientFrame::Typing { .. }
            | ClientFrame::Read { .. } => Err(Error::bad_request("handled by the shared requests")),
            ClientFrame::Start { .. }
            | ClientFrame::Rate { .. }
            | ClientFrame::Transcript { .. }
            | ClientFrame::Presence { .. }
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
            Target::Agent(agent) if !hub.agents.contains(agent) => {
                return Err(Error::not_found(format!("no agent {agent}")))
            }
            Target::Agent(agent) if *agent == self.id => {
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
        let mut request = AppendRequest::new(
            self.author(),
            Permission::Staff,
            EventBody::Transfer {
                from_agent: owner,
                to_agent,
                to_topic,
                note: note.clone(),
            },
        );
        request.ack = req.map(|r| Ack::to(conn, r));
        expect_stored(
            hub.conversations.append(&conversation_id, request).await?,
            &conversation_id,
        )?;
        // The transfer event is stored; whether anyone takes it is told separately
        // (`transfer_failed` to the requester, or `joined`/`left`).
        hub.router
            .transfer(conversation_id, self.id.clone(), target, note);
        Ok(Reply::Done)
    }
}

/// What a tab may ask for: `available`, or `away` with no reason or one from the
/// configured list. Wrap-up and offline are the hub's to set.
fn checked_status(
    hub: &Hub,
    status: AgentStatus,
    reason: Option<String>,
) -> Result<Option<String>> {
    match (status, reason) {
        (AgentStatus::Available, None) => Ok(None),
        (AgentStatus::Away, None) => Ok(None),
        (AgentStatus::Away, Some(reason)) if hub.config.agents.allows(&reason) => Ok(Some(reason)),
        (AgentStatus::Away, Some(reason)) => Err(Error::bad_request(format!(
            "unknown away reason {reason:?}; configured: {}",
            hub.config.agents.away_reasons.join(", ")
        ))),
        (AgentStatus::Available, Some(_)) => {
            Err(Error::bad_request("a reason goes with away only"))
        }
        (AgentStatus::WrapUp | AgentStatus::Offline, _) => Err(Error::bad_request(
            "status must be available or away (wrap_up and offline are set by the hub)",
        )),
    }
}

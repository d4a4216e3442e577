//! What a customer (the website widget) may do: start one conversation, write in it,
//! read its history, close and rate it, or leave an offline message.

use std::{net::IpAddr, sync::Arc};

use super::{
    flood, input,
    shared::{self, Speaker},
    HandshakeError, Reply,
};
use crate::{
    auth,
    conversation::{Ack, AppendRequest, Author, Close, Permission},
    error::{Error, Result},
    hub::Hub,
    protocol::{
        AckBody, Audience, ClientFrame, ConversationSummary, CustomerInfo, EventBody, Hello,
        Identity, Party, Role, ServerFrame, PROTOCOL_VERSION,
    },
    registry::{ConnTx, PartyKey},
    routing::QueuedConversation,
    store::{AppendOutcome, FloodKind, NewConversation, Requirement},
};

pub struct CustomerSession {
    pub visitor_id: String,
    /// The client's address (flood limits count per address).
    pub client: IpAddr,
    pub name: Option<String>,
    pub email: Option<String>,
    pub verified: bool,
    /// Which fields the identity signature covered (`None`: no identity).
    pub verified_fields: Option<Vec<String>>,
}

impl CustomerSession {
    /// Authenticates the `hello`, registers the connection and builds the `welcome`.
    pub async fn start(
        hub: &Arc<Hub>,
        hello: Hello,
        conn: &ConnTx,
        client: IpAddr,
    ) -> Result<(Self, ServerFrame), HandshakeError> {
        let flood = &hub.config.flood;
        let bad_hello = |err: Error| HandshakeError::BadHello(err.to_string());
        let mut session = CustomerSession {
            visitor_id: String::new(),
            client,
            name: input::name(hello.name, flood.max_name_chars).map_err(bad_hello)?,
            email: input::email(hello.email, flood.max_email_chars).map_err(bad_hello)?,
            verified: false,
            verified_fields: None,
        };
        if hello.session.is_none() {
            // A new visitor (or a verified one on a new device): counted per address.
            flood::check(hub, client, None, FloodKind::NewVisitor)
                .await
                .map_err(|err| match err {
                    Error::Unavailable => HandshakeError::Unavailable,
                    other => HandshakeError::RateLimited(other.to_string()),
                })?;
        }
        if let Some(identity) = hello.identity {
            session.verify(hub, identity)?;
        } else if let Some(token) = hello.session {
            session.visitor_id = session.open(hub, &token).await?;
        } else {
            session.visitor_id = auth::random_id("v_");
        }
        let party = PartyKey::Visitor(session.visitor_id.clone());
        hub.registry.add(party, conn.clone());
        let welcome = match session.welcome(hub).await {
            Ok(welcome) => welcome,
            Err(err) => {
                session.disconnected(hub, conn);
                return Err(err);
            }
        };
        Ok((session, welcome))
    }

    /// Checks an `identity` (the contract's form or the extended one) and takes the
    /// visitor id, name and email it vouches for.
    fn verify(&mut self, hub: &Hub, identity: Identity) -> Result<(), HandshakeError> {
        let flood = &hub.config.flood;
        let Some(secret) = &hub.config.identity_secret else {
            return Err(HandshakeError::BadCredentials(
                "identity verification is not configured".into(),
            ));
        };
        let bad_hello = |err: Error| HandshakeError::BadHello(err.to_string());
        input::identifier(
            "identity.user_id",
            &identity.user_id,
            flood.max_user_id_chars,
        )
        .map_err(bad_hello)?;
        // Signed fields must be printable: the canonical string puts each on a line.
        for (what, value) in [
            ("identity.name", &identity.name),
            ("identity.email", &identity.email),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().any(char::is_control))
            {
                return Err(HandshakeError::BadHello(format!(
                    "{what} must not hold control characters"
                )));
            }
        }
        let name = input::name(identity.name.clone(), flood.max_name_chars).map_err(bad_hello)?;
        let email =
            input::email(identity.email.clone(), flood.max_email_chars).map_err(bad_hello)?;
        let fields = match identity.issued_at {
            None => {
                if !auth::verify_identity(secret.expose(), &identity.user_id, &identity.signature) {
                    return Err(HandshakeError::BadCredentials(
                        "identity signature does not match".into(),
                    ));
                }
                // The contract's form signs the user id only: the name and email beside
                // it are shown, but not as verified.
                vec!["user_id".to_string()]
            }
            Some(issued_at) => {
                if !auth::verify_identity_extended(
                    secret.expose(),
                    &identity.user_id,
                    identity.name.as_deref(),
                    identity.email.as_deref(),
                    issued_at,
                    &identity.signature,
                ) {
                    return Err(HandshakeError::BadCredentials(
                        "identity signature does not match".into(),
                    ));
                }
                let now_s = crate::clock::now_ms() / 1000;
                let max_age = hub.config.identity.identity_max_age_s;
                if now_s.saturating_sub(issued_at) > max_age || issued_at > now_s + 300 {
                    return Err(HandshakeError::BadCredentials(format!(
                        "identity signature expired (older than {max_age} s) or issued in the future"
                    )));
                }
                let mut fields = vec!["user_id".to_string()];
                fields.extend(name.is_some().then(|| "name".to_string()));
                fields.extend(email.is_some().then(|| "email".to_string()));
                fields
            }
        };
        self.visitor_id = auth::verified_visitor_id(secret.expose(), &identity.user_id);
        self.verified = true;
        self.verified_fields = Some(fields);
        self.name = name.or(self.name.take());
        self.email = email.or(self.email.take());
        Ok(())
    }

    /// The visitor of a `session` token: valid signature, within its lifetime, not
    /// revoked.
    async fn open(&self, hub: &Hub, token: &str) -> Result<String, HandshakeError> {
        match super::visitor_of_session(hub, token).await? {
            Ok(visitor_id) => Ok(visitor_id),
            Err(refusal) => Err(HandshakeError::BadCredentials(refusal.into())),
        }
    }

    async fn welcome(&self, hub: &Arc<Hub>) -> Result<ServerFrame, HandshakeError> {
        let mut conversations = Vec::new();
        if let Some(id) = hub
            .store
            .visitor_open_conversation(&self.visitor_id)
            .await?
        {
            if let Some(record) = hub.store.conversation(&id).await? {
                if record.is_open() {
                    hub.router.customer_presence(&record.id, true);
                    // This node hears the conversation from now on, whichever stores.
                    hub.conversations.watch_soon(&record.id, None, None, None);
                    conversations.push(ConversationSummary {
                        survey: input::nps_survey(hub, &record.topic),
                        conversation_id: record.id,
                        state: record.state,
                        last_seq: record.last_seq,
                    });
                }
            }
        }
        let now = crate::clock::now_ms();
        let (online, topics) =
            super::hours::welcome_status(&hub.config, &hub.router.staffing().await, None, now);
        Ok(ServerFrame::Welcome {
            protocol: PROTOCOL_VERSION,
            session: Some(auth::make_session(
                &hub.session_secret,
                &self.visitor_id,
                now,
            )),
            visitor_id: Some(self.visitor_id.clone()),
            verified: Some(self.verified),
            verified_fields: self.verified_fields.clone(),
            online: Some(online),
            topics,
            agent: None,
            status: None,
            conversations,
        })
    }

    pub fn disconnected(&mut self, hub: &Arc<Hub>, conn: &ConnTx) {
        let party = PartyKey::Visitor(self.visitor_id.clone());
        if hub.registry.remove(&party, conn.id) == 0 {
            // The last tab closed: the abandonment clock starts for its open conversation.
            let hub = Arc::clone(hub);
            let visitor_id = self.visitor_id.clone();
            hub.tracker.clone().spawn(async move {
                if hub.registry.count(&PartyKey::Visitor(visitor_id.clone())) > 0 {
                    return;
                }
                if let Ok(Some(id)) = hub.store.visitor_open_conversation(&visitor_id).await {
                    hub.router.customer_presence(&id, false);
                }
            });
        }
    }

    fn party(&self) -> Party {
        Party {
            role: Role::Customer,
            id: self.visitor_id.clone(),
            name: self.name.clone(),
        }
    }

    fn author(&self) -> Author {
        Author::Visitor(self.visitor_id.clone())
    }

    /// The customer-only checks of a `message`: its `client_msg_id` and the flood limits.
    pub async fn check_message(&self, hub: &Hub, client_msg_id: Option<&str>) -> Result<()> {
        self.check_client_msg_id(hub, client_msg_id)?;
        flood::check(hub, self.client, Some(&self.visitor_id), FloodKind::Message).await
    }

    /// The part of [`Self::check_message`] that waits for nothing.
    pub fn check_client_msg_id(&self, hub: &Hub, client_msg_id: Option<&str>) -> Result<()> {
        match client_msg_id {
            Some(id) => input::identifier(
                "client_msg_id",
                id,
                hub.config.flood.max_client_msg_id_chars,
            ),
            None => Ok(()),
        }
    }

    /// Whether this customer's requests are counted against the flood limits (in Redis).
    pub fn floods_counted(&self, hub: &Hub) -> bool {
        hub.config.flood.applies_to(self.client)
    }

    pub fn speaker(&self) -> Speaker {
        Speaker {
            author: self.author(),
            party: self.party(),
            audience: Audience::Customer,
        }
    }

    /// The requests only this role makes (the shared ones are in `shared`).
    pub async fn handle(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: Option<String>,
        frame: ClientFrame,
    ) -> Result<Reply> {
        let max_text = hub.config.limits.max_text_bytes;
        let flood = &hub.config.flood;
        match frame {
            ClientFrame::Start {
                topic,
                text,
                metadata,
            } => {
                shared::check_text(hub, &text)?;
                let metadata = metadata.unwrap_or_default();
                input::metadata(&metadata, flood)?;
                if serde_json::to_string(&metadata)
                    .map(|m| m.len())
                    .unwrap_or(usize::MAX)
                    > max_text
                {
                    return Err(Error::TooLarge("metadata is too large".into()));
                }
                flood::check(hub, self.client, Some(&self.visitor_id), FloodKind::Start).await?;
                self.start_conversation(hub, conn, req, topic, text, metadata)
                    .await
            }
            ClientFrame::Close {
                conversation_id,
                tags,
                ..
            } => {
                let close = Close {
                    author: self.author(),
                    by: self.party(),
                    resolution: "customer_left".into(),
                    // Customers set no ticket tags, unless the operator allows some.
                    tags: input::customer_tags(tags, &flood.customer_tags),
                };
                hub.conversations
                    .close(&conversation_id, close, req.map(|r| Ack::to(conn, r)))
                    .await?;
                Ok(Reply::Done)
            }
            ClientFrame::Rate {
                conversation_id,
                score,
                comment,
            } => {
                input::check_score(hub, &conversation_id, score).await?;
                if comment.as_ref().is_some_and(|c| c.len() > max_text) {
                    return Err(Error::TooLarge(format!("comment is over {max_text} bytes")));
                }
                let comment = input::comment(comment, flood.max_comment_chars)?;
                let mut request = AppendRequest::new(
                    self.author(),
                    Permission::Customer,
                    EventBody::Rating { score, comment },
                );
                request.requirement = Requirement::ClosedUnrated;
                request.ack = req.map(|r| Ack::to(conn, r));
                match hub.conversations.append(&conversation_id, request).await? {
                    AppendOutcome::Stored(_) | AppendOutcome::Duplicate(_) => {
                        let hub = Arc::clone(hub);
                        let id = conversation_id.clone();
                        hub.tracker.clone().spawn(async move {
                            if let Err(err) = hub.tickets.attach_rating(&id).await {
                                tracing::warn!(conversation_id = %id, cause = %err, "rating not yet on the ticket");
                            }
                        });
                        Ok(Reply::Done)
                    }
                    AppendOutcome::NotFound => Err(Error::not_found(format!(
                        "no conversation {conversation_id}"
                    ))),
                    AppendOutcome::WrongState => Err(Error::conflict(
                        "only a closed, unrated conversation can be rated",
                    )),
                }
            }
            ClientFrame::Presence { topic } => Ok(Reply::Ack(
                super::hours::presence(hub, topic.as_deref()).await?,
            )),
            ClientFrame::Transcript { conversation_id } => {
                let url = input::transcript_link(hub, &self.visitor_id, &conversation_id).await?;
                Ok(Reply::Ack(AckBody {
                    url: Some(url),
                    ..AckBody::default()
                }))
            }
            ClientFrame::OfflineMessage {
                topic,
                name,
                email,
                text,
            } => {
                shared::check_text(hub, &text)?;
                let email = input::email(Some(email), flood.max_email_chars)?
                    .filter(|e| e.contains('@') && !e.contains(char::is_whitespace))
                    .ok_or_else(|| Error::bad_request("a valid email is required"))?;
                let name = input::name(name, flood.max_name_chars)?;
                let topic = hub
                    .config
                    .topic(topic.as_deref().unwrap_or_default())
                    .unwrap_or_else(|| hub.config.default_topic())
                    .name
                    .clone();
                let ticket_id = hub
                    .tickets
                    .offline_message(
                        &self.visitor_id,
                        name.or(self.name.clone()),
                        email,
                        self.verified,
                        topic,
                        text,
                    )
                    .await?;
                Ok(Reply::Ack(AckBody {
                    ticket_id: Some(ticket_id),
                    ..AckBody::default()
                }))
            }
            ClientFrame::Hello(_)
            | ClientFrame::Ping {}
            | ClientFrame::Message { .. }
            | ClientFrame::History { .. }
            | ClientFrame::Typing { .. }
            | ClientFrame::Read { .. } => Err(Error::bad_request("handled by the shared requests")),
            ClientFrame::Status { .. }
            | ClientFrame::Accept { .. }
            | ClientFrame::Decline { .. }
            | ClientFrame::Take { .. }
            | ClientFrame::Assign { .. }
            | ClientFrame::Transfer { .. }
            | ClientFrame::Note { .. }
            | ClientFrame::Monitor { .. }
            | ClientFrame::Unmonitor { .. } => Err(Error::forbidden("customers cannot do that")),
        }
    }

    async fn start_conversation(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: Option<String>,
        topic: Option<String>,
        text: String,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Reply> {
        let topic = hub
            .config
            .topic(topic.as_deref().unwrap_or_default())
            .unwrap_or_else(|| hub.config.default_topic())
            .clone();
        super::hours::check_open(&topic, crate::clock::now_ms())?;
        let waiting = hub.router.waiting(&topic.name).await;
        if waiting >= topic.max_waiting as usize {
            return Err(Error::QueueFull(format!(
                "{waiting} chats are waiting in {}: please leave an offline message",
                topic.name
            )));
        }
        let id = auth::random_id("c_");
        if let Some(existing) = hub.store.claim_visitor_slot(&self.visitor_id, &id).await? {
            let still_open = hub
                .store
                .conversation(&existing)
                .await?
                .is_some_and(|r| r.is_open());
            if still_open {
                return Err(Error::conflict(format!(
                    "conversation {existing} is still open"
                )));
            }
            // A stale claim (a crash between claim and create, or a missed release).
            hub.store
                .release_visitor_slot(&self.visitor_id, &existing)
                .await?;
            if hub
                .store
                .claim_visitor_slot(&self.visitor_id, &id)
                .await?
                .is_some()
            {
                return Err(Error::conflict("another conversation was just started"));
            }
        }
        let now = crate::clock::now_ms();
        let preview: String = text.chars().take(140).collect();
        let new = NewConversation {
            id: id.clone(),
            visitor_id: self.visitor_id.clone(),
            topic: topic.name.clone(),
            priority: topic.priority,
            customer_name: self.name.clone(),
            customer_email: self.email.clone(),
            verified: self.verified,
            metadata,
            created_at: now,
            first_message: EventBody::Message {
                from: self.party(),
                text,
                client_msg_id: None,
                attachment: None,
            },
            preview: preview.clone(),
        };
        let ack = req.map(|r| {
            Ack::to(conn, r).with(AckBody {
                conversation_id: Some(id.clone()),
                survey: input::nps_survey(hub, &topic.name),
                ..AckBody::default()
            })
        });
        if let Err(err) = hub.conversations.create(new, ack).await {
            // Best effort: a stale claim is also repaired by the next start.
            if let Err(release) = hub.store.release_visitor_slot(&self.visitor_id, &id).await {
                tracing::debug!(cause = %release, "visitor slot left for the next start to repair");
            }
            return Err(err);
        }
        let preferred_agent = if self.verified {
            hub.store.last_agent(&self.visitor_id).await.unwrap_or(None)
        } else {
            None
        };
        hub.router.enqueue(QueuedConversation {
            id,
            visitor_id: self.visitor_id.clone(),
            topic: topic.name,
            customer: CustomerInfo {
                id: self.visitor_id.clone(),
                name: self.name.clone(),
                email: self.email.clone(),
                verified: self.verified,
                verified_fields: self.verified_fields.clone(),
            },
            preview,
            waiting_since_ms: now,
            preferred_agent,
            customer_present: true,
        });
        Ok(Reply::Done)
    }
}

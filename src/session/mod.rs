//! Sessions: what each role may ask, once the transport has a `hello`.
//!
//! - this file — the [`Session`] of one connection: authentication at the start, one
//!   dispatch of each frame by role, clean-up at the end;
//! - `shared` — the requests both roles make the same way (messages, history, typing,
//!   read receipts) and the text checks in front of them;
//! - `customer`, `agent` — what only that role may do;
//! - `hours` — business hours as customers see them (`welcome`, refused `start`);
//! - `flood` — the customer flood limits (per address and visitor, counted in Redis);
//! - `input` — checks of what a customer types (lengths, blank-looking texts, names).
//!
//! Nothing here touches a socket: answers go out through the connection's [`ConnTx`].

mod agent;
mod customer;
mod flood;
mod hours;
mod input;
mod shared;

use std::{net::IpAddr, sync::Arc};

use self::{agent::AgentSession, customer::CustomerSession};
use crate::{
    error::{Error, Result},
    hub::Hub,
    protocol::{AckBody, ClientFrame, Hello, HistoryPage, Role, ServerFrame},
    registry::ConnTx,
};

/// The visitor a customer session token belongs to, or why it is refused (`not
/// valid`, `expired`, `revoked`). The WebSocket `hello` and the transcript download
/// both open sessions this way.
pub async fn visitor_of_session(
    hub: &Hub,
    token: &str,
) -> crate::store::StoreResult<std::result::Result<String, &'static str>> {
    let Some((visitor_id, issued_ms)) = crate::auth::open_session(&hub.session_secret, token)
    else {
        return Ok(Err("session token is not valid"));
    };
    let lifetime_ms = hub.config.identity.session_lifetime_s.saturating_mul(1000);
    if crate::clock::now_ms().saturating_sub(issued_ms) > lifetime_ms {
        return Ok(Err("session expired"));
    }
    if let Some(revoked_ms) = hub.store.visitor_revoked_at(&visitor_id).await? {
        if issued_ms <= revoked_ms {
            return Ok(Err("session revoked"));
        }
    }
    Ok(Ok(visitor_id))
}

/// What a handled request answers.
pub enum Reply {
    /// Send an ack with these fields (if the frame had a `req`).
    Ack(AckBody),
    /// Answer `history` with this page (if the frame had a `req`).
    Page(HistoryPage),
    /// The ack was already queued (by the conversation or routing task) or nothing is due.
    Done,
}

/// What [`Session::handle_now`] did with a frame.
pub enum Handled {
    /// Answered, without waiting for anything.
    Now(Result<Reply>),
    /// Not yet: it waits for Redis or another task, in [`Session::handle`].
    Later(ClientFrame),
}

/// Why a handshake failed, as a close code.
#[derive(Debug)]
pub enum HandshakeError {
    BadHello(String),
    BadCredentials(String),
    Unavailable,
    /// A flood limit refused the hello (closed with 1013: try again later).
    RateLimited(String),
}

impl HandshakeError {
    /// The WebSocket close code and reason.
    pub fn close(&self) -> (u16, &str) {
        match self {
            HandshakeError::BadHello(why) => (4400, why),
            HandshakeError::BadCredentials(why) => (4401, why),
            HandshakeError::Unavailable => (1013, "storage unavailable, retry"),
            HandshakeError::RateLimited(why) => (1013, why),
        }
    }
}

impl From<crate::store::StoreError> for HandshakeError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::warn!(cause = %err, "storage unavailable during handshake");
        HandshakeError::Unavailable
    }
}

/// The session of one connection: its role's half, and what its `hello` asked of
/// delivery.
pub struct Session {
    role: RoleSession,
    /// `hello`'s `echo` (issue 19): whether this connection is sent the events of its own
    /// acked messages.
    echo: bool,
}

/// The role-specific half of a connection.
enum RoleSession {
    Customer(CustomerSession),
    Agent(AgentSession),
}

impl Session {
    /// Authenticates the `hello` of a `role` connection from `client` (the client's
    /// address), registers the connection and builds the `welcome`.
    pub async fn start(
        hub: &Arc<Hub>,
        role: Role,
        hello: Hello,
        conn: &ConnTx,
        client: IpAddr,
    ) -> Result<(Session, ServerFrame), HandshakeError> {
        if hello.role != role {
            return Err(HandshakeError::BadHello(
                "wrong role for this endpoint".into(),
            ));
        }
        let echo = hello.echo;
        let (role, welcome) = match role {
            Role::Agent => AgentSession::start(hub, hello, conn)
                .await
                .map(|(s, w)| (RoleSession::Agent(s), w))?,
            Role::Customer | Role::System => CustomerSession::start(hub, hello, conn, client)
                .await
                .map(|(s, w)| (RoleSession::Customer(s), w))?,
        };
        Ok((Session { role, echo }, welcome))
    }

    /// Records who this is on the connection's span.
    pub fn record_identity(&self, span: &tracing::Span) {
        match &self.role {
            RoleSession::Customer(customer) => {
                span.record("visitor_id", customer.visitor_id.as_str())
            }
            RoleSession::Agent(agent) => span.record("agent_id", agent.id.as_str()),
        };
    }

    /// Answers `frame` at once when that waits for nothing, or hands it back for
    /// [`Session::handle`]. Such are most frames of a busy chat: a `message` without a
    /// file, from an agent, or from a customer whom the flood limits (counted in Redis)
    /// do not count. The reader is spared a boxed future for each.
    pub fn handle_now(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: &Option<String>,
        frame: ClientFrame,
    ) -> Handled {
        match frame {
            ClientFrame::Message {
                conversation_id,
                text,
                client_msg_id,
                attachment: None,
            } if self.says_now(hub) => Handled::Now(self.say_now(
                hub,
                conn,
                req.clone(),
                &conversation_id,
                text,
                client_msg_id,
            )),
            frame => Handled::Later(frame),
        }
    }

    /// Whether a `message` without a file needs nothing awaited from this session: an
    /// agent's never does, a customer's does when the flood limits count it.
    fn says_now(&self, hub: &Hub) -> bool {
        match &self.role {
            RoleSession::Customer(customer) => !customer.floods_counted(hub),
            RoleSession::Agent(_) => true,
        }
    }

    /// A `message` without a file, when [`Session::says_now`].
    fn say_now(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: Option<String>,
        conversation_id: &str,
        text: String,
        client_msg_id: Option<String>,
    ) -> Result<Reply> {
        if let RoleSession::Customer(customer) = &self.role {
            customer.check_client_msg_id(hub, client_msg_id.as_deref())?;
        }
        let speaker = self.speaker(hub);
        let said = self.said(text, client_msg_id, None);
        shared::message(hub, conn, req, conversation_id, speaker, said)
    }

    /// What a `message` says, with this connection's `echo`.
    fn said(
        &self,
        text: String,
        client_msg_id: Option<String>,
        attachment: Option<crate::protocol::Attachment>,
    ) -> shared::Said {
        shared::Said {
            text,
            client_msg_id,
            attachment,
            echo: self.echo,
        }
    }

    fn speaker(&mut self, hub: &Hub) -> shared::Speaker {
        match &mut self.role {
            RoleSession::Customer(customer) => customer.speaker(),
            RoleSession::Agent(agent) => agent.speaker(hub),
        }
    }

    /// Handles one request, whichever role asks.
    pub async fn handle(
        &mut self,
        hub: &Arc<Hub>,
        conn: &ConnTx,
        req: Option<String>,
        frame: ClientFrame,
    ) -> Result<Reply> {
        let speaker = self.speaker(hub);
        match frame {
            ClientFrame::Hello(_) => Err(Error::bad_request("already said hello")),
            ClientFrame::Ping {} => Ok(Reply::Ack(AckBody::default())),
            ClientFrame::Message {
                conversation_id,
                text,
                client_msg_id,
                attachment,
            } => {
                if let RoleSession::Customer(customer) = &self.role {
                    customer
                        .check_message(hub, client_msg_id.as_deref())
                        .await?;
                }
                let attachment = match attachment {
                    Some(id) => Some(
                        shared::attachment_of(hub, &conversation_id, &id, &speaker.party).await?,
                    ),
                    None => None,
                };
                let said = self.said(text, client_msg_id, attachment);
                shared::message(hub, conn, req, &conversation_id, speaker, said)
            }
            ClientFrame::History {
                conversation_id,
                after_seq,
                limit,
            } => shared::history(hub, conn, &conversation_id, speaker, after_seq, limit).await,
            ClientFrame::Typing {
                conversation_id,
                on,
            } => shared::typing(hub, conn, conversation_id, speaker, on).await,
            ClientFrame::Read {
                conversation_id,
                seq,
            } => shared::read(hub, conn, conversation_id, speaker, seq).await,
            frame => match &mut self.role {
                RoleSession::Customer(customer) => customer.handle(hub, conn, req, frame).await,
                RoleSession::Agent(agent) => agent.handle(hub, conn, req, frame).await,
            },
        }
    }

    /// The connection closed.
    pub fn disconnected(&mut self, hub: &Arc<Hub>, conn: &ConnTx) {
        match &mut self.role {
            RoleSession::Customer(customer) => customer.disconnected(hub, conn),
            RoleSession::Agent(agent) => agent.disconnected(hub, conn),
        }
    }
}

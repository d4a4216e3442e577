//! One task per WebSocket: the `hello` handshake, then a reader loop that parses each
//! frame once and dispatches it, and a writer task fed by a bounded queue that also
//! sends the server's pings. Whatever ends the connection, the writer gets to send a
//! Close frame with the reason.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{
    stream::{SplitSink, SplitStream},
    SinkExt, StreamExt,
};
use tokio::{sync::mpsc, time::Instant};
use tracing::Instrument;

use super::{
    agent::AgentSession,
    customer::CustomerSession,
    registry::{ConnTx, Kick},
    requests, Hub,
};
use crate::{
    error::Error,
    protocol::{AckBody, Audience, ClientFrame, FrameText, Inbound, Role, ServerFrame},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Customer,
    Agent,
}

/// Why a handshake failed, as a close code.
#[derive(Debug)]
pub enum HandshakeError {
    BadHello(String),
    BadCredentials(String),
    Unavailable,
}

impl From<crate::store::StoreError> for HandshakeError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::warn!(cause = %err, "storage unavailable during handshake");
        HandshakeError::Unavailable
    }
}

/// What a handled request answers.
pub enum Reply {
    /// Send an ack with these fields (if the frame had a `req`).
    Ack(AckBody),
    /// The ack was already queued (by the conversation task) or nothing is due.
    Done,
}

/// The role-specific half of a connection.
pub enum Session {
    Customer(CustomerSession),
    Agent(AgentSession),
}

/// A sliding ten-second window of frame arrival times.
struct RateLimit {
    limit: usize,
    seen: std::collections::VecDeque<Instant>,
}

impl RateLimit {
    fn allow(&mut self, now: Instant) -> bool {
        while self
            .seen
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(10))
        {
            self.seen.pop_front();
        }
        if self.seen.len() >= self.limit {
            return false;
        }
        self.seen.push_back(now);
        true
    }
}

enum Incoming {
    Text(FrameText),
    TooLarge,
    Closed,
}

async fn next_text(
    stream: &mut SplitStream<WebSocket>,
    max_frame: usize,
    last_heard: &mut Instant,
) -> Incoming {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                *last_heard = Instant::now();
                if text.len() > max_frame {
                    return Incoming::TooLarge;
                }
                return Incoming::Text(text);
            }
            Some(Ok(Message::Binary(bytes))) => {
                *last_heard = Instant::now();
                if bytes.len() > max_frame {
                    return Incoming::TooLarge;
                }
                // Binary frames are not part of the protocol; treat them as text so the
                // client gets a `bad_request` rather than silence.
                return Incoming::Text(String::from_utf8_lossy(&bytes).into_owned().into());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => *last_heard = Instant::now(),
            Some(Ok(Message::Close(_))) | None => return Incoming::Closed,
            Some(Err(err)) => {
                // tungstenite refuses frames beyond the hard size limit before we see them.
                let text = err.to_string();
                if text.contains("too long")
                    || text.contains("Space limit")
                    || text.contains("capacity")
                {
                    return Incoming::TooLarge;
                }
                return Incoming::Closed;
            }
        }
    }
}

async fn close_now(mut sink: SplitSink<WebSocket, Message>, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The peer may already be gone; there is nobody left to tell.
    let _peer_gone = tokio::time::timeout(
        Duration::from_secs(2),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

pub async fn serve(hub: Arc<Hub>, socket: WebSocket, endpoint: Endpoint) {
    let conn_id = hub.registry.next_conn_id();
    let span = tracing::info_span!(
        "conn",
        conn_id,
        role = ?endpoint,
        agent_id = tracing::field::Empty,
        visitor_id = tracing::field::Empty
    );
    run(hub, socket, endpoint, conn_id).instrument(span).await
}

async fn run(hub: Arc<Hub>, socket: WebSocket, endpoint: Endpoint, conn_id: u64) {
    let limits = hub.config.limits.clone();
    let (sink, mut stream) = socket.split();
    let mut last_heard = Instant::now();

    let first = tokio::time::timeout(
        hub.config.hello_timeout(),
        next_text(&mut stream, limits.max_frame_bytes, &mut last_heard),
    )
    .await;
    let text = match first {
        Err(_) => return close_now(sink, 4408, "no hello in time").await,
        Ok(Incoming::TooLarge) => return close_now(sink, 1009, "frame too large").await,
        Ok(Incoming::Closed) => return,
        Ok(Incoming::Text(text)) => text,
    };
    let hello = match Inbound::parse(&text) {
        Ok(Inbound {
            frame: ClientFrame::Hello(hello),
            ..
        }) => hello,
        Ok(_) => return close_now(sink, 4400, "the first frame must be hello").await,
        Err(failure) => {
            return close_now(sink, 4400, &format!("bad hello: {}", failure.message)).await
        }
    };
    let expected = match endpoint {
        Endpoint::Customer => Role::Customer,
        Endpoint::Agent => Role::Agent,
    };
    if hello.role != expected {
        return close_now(sink, 4400, "wrong role for this endpoint").await;
    }

    let audience = match endpoint {
        Endpoint::Customer => Audience::Customer,
        Endpoint::Agent => Audience::Staff,
    };
    let (conn, rx) = ConnTx::new(
        conn_id,
        audience,
        limits.send_queue,
        limits.send_queue_bytes,
        hub.metrics.slow_reader_closes.clone(),
    );
    let started = match endpoint {
        Endpoint::Customer => CustomerSession::start(&hub, hello, &conn)
            .await
            .map(|(s, w)| (Session::Customer(s), w)),
        Endpoint::Agent => AgentSession::start(&hub, hello, &conn)
            .await
            .map(|(s, w)| (Session::Agent(s), w)),
    };
    let (mut session, welcome) = match started {
        Ok(started) => started,
        Err(HandshakeError::BadHello(why)) => return close_now(sink, 4400, &why).await,
        Err(HandshakeError::BadCredentials(why)) => return close_now(sink, 4401, &why).await,
        Err(HandshakeError::Unavailable) => {
            return close_now(sink, 1013, "storage unavailable, retry").await
        }
    };
    match &session {
        Session::Customer(customer) => {
            tracing::Span::current().record("visitor_id", customer.visitor_id.as_str())
        }
        Session::Agent(agent) => {
            tracing::Span::current().record("agent_id", agent.agent.id.as_str())
        }
    };
    // The session registered this connection already, so events may be queued; the
    // welcome goes out first, straight to the socket, then the writer drains the queue.
    let role_label = match endpoint {
        Endpoint::Customer => "customer",
        Endpoint::Agent => "agent",
    };
    hub.metrics
        .connections
        .with_label_values(&[role_label])
        .inc();
    let mut sink = sink;
    let welcome_sent = sink.send(Message::Text(welcome.to_text())).await.is_ok();
    let writer = tokio::spawn(
        write_loop(
            sink,
            rx,
            conn.clone(),
            Duration::from_millis(limits.ping_interval_ms),
            hub.shutdown.clone(),
        )
        .in_current_span(),
    );

    if welcome_sent {
        read_loop(&hub, &mut session, &conn, &mut stream, last_heard).await;
    }

    conn.killed().cancel();
    match &mut session {
        Session::Customer(customer) => customer.disconnected(&hub, &conn),
        Session::Agent(agent) => agent.disconnected(&hub, &conn),
    }
    hub.metrics
        .connections
        .with_label_values(&[role_label])
        .dec();
    if tokio::time::timeout(Duration::from_secs(3), writer)
        .await
        .is_err()
    {
        tracing::debug!("writer did not finish in time");
    }
}

async fn read_loop(
    hub: &Arc<Hub>,
    session: &mut Session,
    conn: &ConnTx,
    stream: &mut SplitStream<WebSocket>,
    mut last_heard: Instant,
) {
    let limits = &hub.config.limits;
    let idle_timeout = Duration::from_millis(limits.idle_timeout_ms);
    let mut idle_check =
        tokio::time::interval(Duration::from_millis(limits.ping_interval_ms.min(5_000)));
    let mut rate = RateLimit {
        limit: limits.messages_per_10s as usize,
        seen: Default::default(),
    };
    // Waiters registered once, not once per frame.
    let killed = conn.killed().cancelled();
    tokio::pin!(killed);
    let shutting_down = hub.shutdown.cancelled();
    tokio::pin!(shutting_down);
    loop {
        let incoming = tokio::select! {
            incoming = next_text(stream, limits.max_frame_bytes, &mut last_heard) => incoming,
            _ = idle_check.tick() => {
                if last_heard.elapsed() > idle_timeout {
                    conn.kick(Kick::Idle);
                    return;
                }
                continue;
            }
            _ = &mut killed => return,
            _ = &mut shutting_down => {
                conn.kick(Kick::ShuttingDown);
                return;
            }
        };
        let text = match incoming {
            Incoming::Text(text) => text,
            Incoming::TooLarge => {
                conn.kick(Kick::FrameTooLarge);
                return;
            }
            Incoming::Closed => return,
        };
        let inbound = match Inbound::parse(&text) {
            Ok(inbound) => inbound,
            Err(failure) => {
                send_error(hub, conn, failure.req, &Error::BadRequest(failure.message));
                continue;
            }
        };
        let Inbound { req, frame } = inbound;
        if frame.counts_against_rate_limit() && !rate.allow(Instant::now()) {
            send_error(hub, conn, req, &Error::RateLimited);
            continue;
        }
        let speaker = match session {
            Session::Customer(customer) => customer.speaker(),
            Session::Agent(agent) => agent.speaker(),
        };
        let outcome = match requests::shared(hub, conn, req.clone(), frame, speaker).await {
            Ok(outcome) => outcome,
            Err(frame) => match session {
                Session::Customer(customer) => customer.handle(hub, conn, req.clone(), frame).await,
                Session::Agent(agent) => agent.handle(hub, conn, req.clone(), frame).await,
            },
        };
        match outcome {
            Ok(Reply::Ack(body)) => {
                if let Some(req) = req {
                    hub.metrics.acks.inc();
                    conn.send(&ServerFrame::ack(req, body));
                }
            }
            Ok(Reply::Done) => {}
            Err(err) => send_error(hub, conn, req, &err),
        }
    }
}

pub fn send_error(hub: &Hub, conn: &ConnTx, req: Option<String>, err: &Error) {
    hub.metrics
        .errors
        .with_label_values(&[err.code().as_str()])
        .inc();
    conn.send(&ServerFrame::error(req, err));
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<FrameText>,
    conn: ConnTx,
    ping_every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let killed_token = conn.killed().clone();
    let killed = killed_token.cancelled();
    tokio::pin!(killed);
    let shutting_down = shutdown.cancelled();
    tokio::pin!(shutting_down);
    loop {
        tokio::select! {
            biased;
            _ = &mut killed => break,
            _ = &mut shutting_down => {
                conn.kick(Kick::ShuttingDown);
                break;
            }
            next = rx.recv() => {
                let Some(text) = next else { break };
                // Batch whatever else is queued into one flush.
                conn.taken(text.len());
                let mut write = sink.feed(Message::Text(text)).await;
                while write.is_ok() {
                    match rx.try_recv() {
                        Ok(more) => {
                            conn.taken(more.len());
                            write = sink.feed(Message::Text(more)).await;
                        }
                        Err(_) => break,
                    }
                }
                let flushed = tokio::select! {
                    flushed = async { write?; sink.flush().await } => flushed.is_ok(),
                    _ = &mut killed => false,
                };
                if !flushed {
                    // Still try to say why (bounded by `close_now`): a slow reader that
                    // reads again gets its 1013 after what was already on the wire.
                    conn.killed().cancel();
                    break;
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    conn.killed().cancel();
                    return;
                }
            }
        }
    }
    let (code, reason) = conn
        .kick_reason()
        .map(Kick::close_code)
        .unwrap_or((1000, "bye"));
    close_now(sink, code, reason).await;
}

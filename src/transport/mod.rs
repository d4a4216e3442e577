//! Transport: one task per WebSocket. The `hello` handshake, then a reader loop that
//! parses each frame once and hands it to the connection's [`Session`], and a writer
//! task fed by a bounded queue that also sends the server's pings. Whatever ends the
//! connection, the writer gets to send a Close frame with the reason. Both tasks are
//! on the node's task tracker, so shutdown waits for every Close frame.
//!
//! - `frames` — reading frames (size limit, liveness, rate limit);
//! - `writer` — the writer task and closing.

mod frames;
mod writer;

use std::{net::IpAddr, sync::Arc, time::Duration};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{stream::SplitStream, SinkExt, StreamExt};
use tokio::time::Instant;
use tracing::Instrument;

use self::{
    frames::{next_text, Incoming, RateLimit, Violation},
    writer::{close_now, write_loop},
};
use crate::{
    admission::WsPermit,
    error::Error,
    hub::Hub,
    protocol::{Audience, ClientFrame, Inbound, Role, ServerFrame},
    registry::{ConnTx, Kick},
    session::{Handled, Reply, Session},
};

/// The two WebSocket endpoints, one per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Customer,
    Agent,
}

impl Endpoint {
    fn role(self) -> Role {
        match self {
            Endpoint::Customer => Role::Customer,
            Endpoint::Agent => Role::Agent,
        }
    }

    fn audience(self) -> Audience {
        match self {
            Endpoint::Customer => Audience::Customer,
            Endpoint::Agent => Audience::Staff,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Endpoint::Customer => "customer",
            Endpoint::Agent => "agent",
        }
    }
}

/// Serves one upgraded socket until it closes (spawned on the node's task tracker).
pub async fn serve(
    hub: Arc<Hub>,
    socket: WebSocket,
    endpoint: Endpoint,
    client: IpAddr,
    permit: WsPermit,
) {
    let conn_id = hub.registry.next_conn_id();
    let span = tracing::info_span!(
        "conn",
        conn_id,
        role = ?endpoint,
        %client,
        agent_id = tracing::field::Empty,
        visitor_id = tracing::field::Empty
    );
    run(hub, socket, endpoint, conn_id, client, permit)
        .instrument(span)
        .await
}

async fn run(
    hub: Arc<Hub>,
    socket: WebSocket,
    endpoint: Endpoint,
    conn_id: u64,
    client: IpAddr,
    mut permit: WsPermit,
) {
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
        Ok(Incoming::Violation(violation)) => {
            let (code, reason) = violation.close_code();
            return close_now(sink, code, reason).await;
        }
        Ok(Incoming::Closed) => return,
        Ok(Incoming::Text(text)) => text,
    };
    // Said hello: no longer among the upgrades in progress (the connection still counts
    // until `permit` is dropped, when this returns).
    permit.hello_done();
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

    let (conn, rx) = ConnTx::new(
        conn_id,
        endpoint.audience(),
        limits.send_queue,
        limits.send_queue_bytes,
        Arc::clone(&hub.send_budget),
        hub.metrics.slow_reader_closes.clone(),
        hub.shutdown.child_token(),
    );
    // Boxed for the same reason as a request in `read_loop`: its state is freed before
    // the connection settles into reading.
    let (mut session, welcome) =
        match Box::pin(Session::start(&hub, endpoint.role(), hello, &conn, client)).await {
            Ok(started) => started,
            Err(failure) => {
                let (code, reason) = failure.close();
                return close_now(sink, code, reason).await;
            }
        };
    session.record_identity(&tracing::Span::current());
    // The session registered this connection already, so events may be queued; the
    // welcome goes out first, straight to the socket, then the writer drains the queue.
    let connections = hub
        .metrics
        .connections
        .with_label_values(&[endpoint.label()]);
    connections.inc();
    let mut sink = sink;
    let welcome_sent = sink.send(Message::Text(welcome.to_text())).await.is_ok();
    let writer = hub.tracker.spawn(
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
    session.disconnected(&hub, &conn);
    connections.dec();
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
    let mut rate = RateLimit::new(limits.messages_per_10s as usize);
    // Registered once, not once per frame. The connection's token is a child of the
    // node's shutdown token, so it is the only one waited on.
    let killed = conn.killed().cancelled();
    tokio::pin!(killed);
    loop {
        // In this order: a frame already read is taken without polling the idle timer,
        // and a killed connection stops reading however fast frames come.
        let incoming = tokio::select! {
            biased;
            _ = &mut killed => return,
            incoming = next_text(stream, limits.max_frame_bytes, &mut last_heard) => incoming,
            _ = idle_check.tick() => {
                if last_heard.elapsed() > idle_timeout {
                    conn.kick(Kick::Idle);
                    return;
                }
                continue;
            }
        };
        let text = match incoming {
            Incoming::Text(text) => text,
            Incoming::TooLarge => {
                conn.kick(Kick::FrameTooLarge);
                return;
            }
            Incoming::Violation(violation) => {
                conn.kick(match violation {
                    Violation::Framing => Kick::ProtocolError,
                    Violation::InvalidUtf8 => Kick::InvalidUtf8,
                });
                return;
            }
            Incoming::Closed => return,
        };
        // Every frame but `ping` counts, a frame that does not parse too: otherwise
        // malformed frames would buy an error reply each without limit.
        let (req, frame) = match Inbound::parse(&text) {
            Ok(Inbound { req, frame }) => {
                // `last_heard` is when this frame came.
                if frame.counts_against_rate_limit() && !rate.allow(last_heard) {
                    send_error(hub, conn, req, &Error::RateLimited);
                    continue;
                }
                (req, frame)
            }
            Err(failure) => {
                let err = if rate.allow(last_heard) {
                    Error::BadRequest(failure.message)
                } else {
                    Error::RateLimited
                };
                send_error(hub, conn, failure.req, &err);
                continue;
            }
        };
        let outcome = match session.handle_now(hub, conn, &req, frame) {
            Handled::Now(outcome) => outcome,
            // Boxed: an idle connection waits in this loop, and an inline request future
            // would make every connection's task as large as the largest request's state.
            Handled::Later(frame) => Box::pin(session.handle(hub, conn, req.clone(), frame)).await,
        };
        match outcome {
            Ok(Reply::Ack(body)) => {
                if let Some(req) = req {
                    hub.metrics.acks.inc();
                    conn.send(&ServerFrame::ack(req, body));
                }
            }
            Ok(Reply::Page(page)) => {
                if let Some(req) = req {
                    hub.metrics.acks.inc();
                    conn.push(page.ack_text(&req));
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

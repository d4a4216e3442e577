//! The protocol steps the attacks and the legitimate pair share: where the hub is, a
//! customer `hello` over a socket bound to a chosen address, and waiting for the answer
//! to one request, each outcome named the way the report counts it. No attack logic.

use std::{net::IpAddr, net::SocketAddr, time::Duration};

use tokio::time::timeout;

use super::net::{anyhow_kind, ws_from, Addresses};
use crate::{
    admin::Endpoints,
    wire::{In, Out},
    ws::{ConnIds, Recv, Ws},
};

/// The hub under attack and the addresses the suite uses.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoints: Endpoints,
    pub hub: SocketAddr,
    pub addrs: Addresses,
    pub ids: ConnIds,
}

/// How long any single answer may take before the suite counts it as none.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// `close 1009`, or that the socket ended without a Close frame.
pub fn close_label(code: Option<u16>) -> String {
    match code {
        Some(code) => format!("close {code}"),
        None => "closed without a Close frame".into(),
    }
}

/// The answer to one request.
#[derive(Debug)]
pub enum Answer {
    Ack {
        conversation_id: Option<String>,
        events: usize,
    },
    Error(String),
    Closed(Option<u16>),
    /// The socket failed (reset, protocol error).
    Failed(String),
    TimedOut,
}

impl Answer {
    /// The report's name for it (`error rate_limited`, `close 1013`, …).
    pub fn kind(&self) -> String {
        match self {
            Answer::Ack { .. } => "ack".into(),
            Answer::Error(code) => format!("error {code}"),
            Answer::Closed(code) => close_label(*code),
            Answer::Failed(kind) => kind.clone(),
            Answer::TimedOut => format!("no answer in {} s", ANSWER_TIMEOUT.as_secs()),
        }
    }
}

/// Reads until the answer to `req` (or an error without `req`, which answers a frame the
/// hub could not read), skipping other frames.
pub async fn answer(ws: &mut Ws, req: Option<&str>) -> Answer {
    let wait = async {
        loop {
            match ws.recv().await {
                Ok(Recv::Frame(In::Ack {
                    req: got,
                    conversation_id,
                    events,
                    ..
                })) if Some(got.as_str()) == req => {
                    return Answer::Ack {
                        conversation_id,
                        events: events.map_or(0, |e| e.len()),
                    }
                }
                Ok(Recv::Frame(In::Error { req: got, code, .. }))
                    if got.as_deref() == req || got.is_none() =>
                {
                    return Answer::Error(code)
                }
                Ok(Recv::Frame(_)) => continue,
                Ok(Recv::Closed(code)) => return Answer::Closed(code),
                Err(err) => return Answer::Failed(anyhow_kind(&err)),
            }
        }
    };
    timeout(ANSWER_TIMEOUT, wait)
        .await
        .unwrap_or(Answer::TimedOut)
}

/// A customer connection from `local` that has had its `welcome`; with the visitor's
/// session token. The error is the report's name for what happened instead.
pub async fn customer(
    target: &Target,
    local: IpAddr,
    session: Option<&str>,
    recv_buffer: Option<u32>,
) -> Result<(Ws, String), String> {
    let open = async {
        let stream = ws_from(
            local,
            target.hub,
            &target.endpoints.customer_ws,
            recv_buffer,
        )
        .await
        .map_err(|err| err.kind())?;
        let mut ws = Ws::from_stream(stream, &target.ids);
        ws.send(&Out::Hello {
            role: "customer",
            token: None,
            session,
            name: None,
            echo: None,
        })
        .await
        .map_err(|err| anyhow_kind(&err))?;
        loop {
            match ws.recv().await {
                Ok(Recv::Frame(In::Welcome { session, .. })) => {
                    return Ok((ws, session.unwrap_or_default()))
                }
                Ok(Recv::Frame(In::Error { code, .. })) => {
                    return Err(format!("hello: error {code}"))
                }
                Ok(Recv::Frame(_)) => continue,
                Ok(Recv::Closed(code)) => return Err(format!("hello: {}", close_label(code))),
                Err(err) => return Err(format!("hello: {}", anyhow_kind(&err))),
            }
        }
    };
    timeout(ANSWER_TIMEOUT, open)
        .await
        .unwrap_or_else(|_| Err(format!("no welcome in {} s", ANSWER_TIMEOUT.as_secs())))
}

/// Starts a chat; the conversation id, or the report's name for the refusal.
pub async fn start(ws: &mut Ws, topic: &str, text: &str) -> Result<String, String> {
    let req = ws.req();
    ws.send(&Out::Start {
        req: &req,
        topic,
        text,
    })
    .await
    .map_err(|err| anyhow_kind(&err))?;
    match answer(ws, Some(&req)).await {
        Answer::Ack {
            conversation_id: Some(id),
            ..
        } => Ok(id),
        other => Err(other.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_named_for_the_report() {
        assert_eq!(
            Answer::Error("rate_limited".into()).kind(),
            "error rate_limited"
        );
        assert_eq!(Answer::Closed(Some(1009)).kind(), "close 1009");
        assert_eq!(Answer::Closed(None).kind(), "closed without a Close frame");
        assert_eq!(
            Answer::Ack {
                conversation_id: None,
                events: 0
            }
            .kind(),
            "ack"
        );
        assert_eq!(Answer::TimedOut.kind(), "no answer in 5 s");
    }
}

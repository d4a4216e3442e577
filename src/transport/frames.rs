//! Reading frames off a socket: text frames within the size limit, every frame counted
//! as a sign of life, and the per-connection rate limit.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{stream::SplitStream, StreamExt};
use tokio::time::Instant;

use crate::protocol::FrameText;

/// A sliding ten-second window of frame arrival times.
pub(super) struct RateLimit {
    limit: usize,
    seen: std::collections::VecDeque<Instant>,
}

impl RateLimit {
    pub(super) fn new(limit: usize) -> Self {
        RateLimit {
            limit,
            seen: Default::default(),
        }
    }

    pub(super) fn allow(&mut self, now: Instant) -> bool {
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

pub(super) enum Incoming {
    Text(FrameText),
    TooLarge,
    /// A protocol violation: close with this code (1002 bad framing or reserved
    /// opcode, 1007 invalid UTF-8 in a text frame).
    Violation(Violation),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Violation {
    /// 1002: reserved opcode or bits, an unmasked client frame, bad fragmentation.
    Framing,
    /// 1007: a text frame that is not UTF-8.
    InvalidUtf8,
}

impl Violation {
    pub(super) fn close_code(self) -> (u16, &'static str) {
        match self {
            Violation::Framing => (1002, "protocol error"),
            Violation::InvalidUtf8 => (1007, "invalid UTF-8 in a text frame"),
        }
    }
}

/// What a read error means for the close code, if anything.
fn classify(err: axum::Error) -> Incoming {
    use tungstenite::error::Error as WsError;
    let inner = err.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Utf8(_)) => Incoming::Violation(Violation::InvalidUtf8),
        Some(WsError::Protocol(_)) => Incoming::Violation(Violation::Framing),
        // tungstenite refuses frames beyond the hard size limit before we see them.
        Some(WsError::Capacity(_)) => Incoming::TooLarge,
        _ => Incoming::Closed,
    }
}

pub(super) async fn next_text(
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
            Some(Err(err)) => return classify(err),
        }
    }
}

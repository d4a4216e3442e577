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
    Closed,
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

//! One client WebSocket connection: connect with Nagle off, send typed frames, read typed
//! frames. Pings are answered by tungstenite while reading. It owns no protocol state
//! beyond the request counter; the simulators decide what the frames mean.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{
        protocol::{frame::coding::CloseCode, CloseFrame, WebSocketConfig},
        Message,
    },
    MaybeTlsStream, WebSocketStream,
};

use crate::wire::{In, Out};

pub type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Hands out connection ids, so a verifier can tell two connections of one client apart.
#[derive(Debug, Default, Clone)]
pub struct ConnIds(Arc<AtomicU64>);

impl ConnIds {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What reading the socket gave.
#[derive(Debug)]
pub enum Recv {
    Frame(In),
    /// The peer closed the socket (with its close code, if any) or the stream ended.
    Closed(Option<u16>),
}

/// Socket buffers for the harness's own side. Small, so that thousands of idle client
/// connections do not cost the machine the memory the hub is being measured with, and
/// because tungstenite zero-fills the free part of its read buffer before every read
/// attempt: at 16 KiB that memset was a sixth of the harness's CPU, taken from the hub
/// it shares the cores with. The buffer grows for a larger frame (a history page).
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// The floor relay's server-side sockets: the hub's own settings (2 KiB read, 8 KiB
/// write; see `src/http/mod.rs`), so the floor is not slowed by tungstenite's 128 KiB
/// default read buffer, which it would zero-fill before every read.
pub fn relay_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(8 * 1024)
}

/// Opens a WebSocket to `url` (e.g. `ws://127.0.0.1:8080/v1/customer/ws`).
pub async fn connect(url: &str) -> anyhow::Result<Stream> {
    let (stream, _response) =
        tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true)
            .await
            .with_context(|| format!("cannot open a WebSocket to {url}"))?;
    Ok(stream)
}

/// Opens a WebSocket to `url` over an already connected TCP stream (one bound to a chosen
/// local address, say). The error is tungstenite's own, so callers can tell an HTTP
/// refusal (its status) from a reset.
pub async fn connect_over(
    tcp: TcpStream,
    url: &str,
) -> Result<Stream, tokio_tungstenite::tungstenite::Error> {
    let (stream, _response) = tokio_tungstenite::client_async_with_config(
        url,
        MaybeTlsStream::Plain(tcp),
        Some(client_config()),
    )
    .await?;
    Ok(stream)
}

/// A client connection with typed frames.
pub struct Ws {
    stream: Stream,
    /// Unique within the run.
    pub conn: u64,
    next_req: u64,
}

impl Ws {
    pub async fn connect(url: &str, ids: &ConnIds) -> anyhow::Result<Ws> {
        Ok(Ws {
            stream: connect(url).await?,
            conn: ids.next(),
            next_req: 0,
        })
    }

    /// Wraps a stream opened some other way ([`connect_over`]).
    pub fn from_stream(stream: Stream, ids: &ConnIds) -> Ws {
        Ws {
            stream,
            conn: ids.next(),
            next_req: 0,
        }
    }

    /// A fresh `req` for the next request on this connection.
    pub fn req(&mut self) -> String {
        self.next_req += 1;
        format!("r{}", self.next_req)
    }

    pub async fn send(&mut self, frame: &Out<'_>) -> anyhow::Result<()> {
        let text = frame.to_text().context("serialize a client frame")?;
        self.stream
            .send(Message::Text(text.into()))
            .await
            .context("send a frame")
    }

    /// Sends any WebSocket message as it is (a malformed frame, a binary one, a raw
    /// [`Message::Frame`]).
    pub async fn send_raw(&mut self, message: Message) -> anyhow::Result<()> {
        self.stream.send(message).await.context("send a frame")
    }

    /// The next WebSocket message as it is, unparsed (`None`: the stream ended). For
    /// reading a lot cheaply, when only whether it comes matters.
    pub async fn next_message(
        &mut self,
    ) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.stream.next().await
    }

    /// The next protocol frame. Cancel-safe: a frame is never half-consumed.
    pub async fn recv(&mut self) -> anyhow::Result<Recv> {
        loop {
            match self.stream.next().await {
                None => return Ok(Recv::Closed(None)),
                Some(Err(err)) => return Err(err).context("read a frame"),
                Some(Ok(Message::Text(text))) => {
                    let frame = In::parse(text.as_str())
                        .with_context(|| format!("unreadable server frame: {}", text.as_str()))?;
                    return Ok(Recv::Frame(frame));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Recv::Closed(frame.map(|f| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// A clean close (Close frame, then wait briefly for the peer's).
    pub async fn close(mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into(),
        };
        if self.stream.close(Some(frame)).await.is_ok() {
            let drain = async { while let Some(Ok(_)) = self.stream.next().await {} };
            // The hub answers the Close at once; do not hang on one that does not.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
        }
    }

    /// Drops the TCP connection without a Close frame, as a lost network does.
    pub fn drop_abruptly(self) {
        drop(self.stream);
    }
}

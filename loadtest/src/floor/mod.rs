//! The floor: the least any chat relay must do, measured on the same machine with the
//! same load shape as the hub. A WebSocket server on raw tokio-tungstenite pairs two
//! sockets by URL path (`/pair/<n>`) and relays every frame of one to the other: no JSON
//! parsing, no routing. It has the hub's connection shape (a reader loop and a writer fed
//! by a bounded queue per socket) and runs on a runtime of its own with as many worker
//! threads as the machine has cores, as the hub process would.
//!
//! Two modes: the raw floor forwards at once (no storage); the durable floor
//! ([`durable`], issue 19) first appends each frame to its pair's Redis stream and forwards
//! it once Redis answered. This module owns the relay server; [`load`] the measured load,
//! and [`clients`] the pairs' two ends.

pub mod clients;
pub mod durable;
mod load;

pub(crate) use load::{load, Relays};
pub use load::{relay_threads, run_floor};

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request, Response},
    Message,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use durable::{
    hop::{self, HopNode},
    sequenced::{self, PairTx},
    Journal, JournalSpec, Obligations,
};

/// The name of the relay runtime's threads, by which their CPU is told from the clients'.
const RELAY_THREADS: &str = "floor-relay";

/// Frames queued for one socket of the relay.
const QUEUE: usize = 512;

type Tx = mpsc::Sender<Message>;

struct Waiting {
    tx: Tx,
    partner: oneshot::Sender<Paired>,
}

/// What the second socket of a pair hands the first.
struct Paired {
    partner: Tx,
    /// The pair's task, when the relay sequences ([`Obligations::Sequenced`]).
    sequencer: Option<PairTx>,
}

/// Sockets waiting for their partner, by path. A std `Mutex`: held for one map operation,
/// never across an `.await`.
type Lobby = Arc<Mutex<HashMap<String, Waiting>>>;

/// What the relay does with a frame before it forwards it.
#[derive(Clone)]
enum Mode {
    /// Nothing: the raw floor.
    Raw,
    /// Append it to the pair's Redis stream and wait for Redis: the durable floor, doing
    /// as much more of the protocol as the obligations say.
    Durable(Arc<Journal>, Obligations),
}

/// What the server does with its sockets.
#[derive(Clone)]
enum Serving {
    /// Pairs both ends of a pair here, by path, and relays between them.
    Pairs(Mode),
    /// Is one of the two nodes of the durable floor across nodes ([`durable::hop`]): each
    /// socket's partner is on the other node.
    Hop(Arc<HopNode>),
}

/// Sent back by the relay thread once the durable relay has its Redis connection.
type Ready = oneshot::Sender<anyhow::Result<Arc<Journal>>>;

/// The longest the durable relay may take to connect to Redis.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// The relay server, on a runtime (and threads) of its own.
pub struct FloorServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FloorServer {
    /// Starts the raw relay on `127.0.0.1:0` with `threads` worker threads.
    pub fn start(threads: usize) -> anyhow::Result<FloorServer> {
        FloorServer::spawn(threads, None)
    }

    /// Starts the durable relay: the same server, whose sockets append every frame to
    /// Redis before forwarding it. Its Redis connection is made on the relay's own runtime,
    /// so that the Redis client's task is relay CPU, as it would be in any server.
    pub async fn start_durable(
        threads: usize,
        spec: JournalSpec,
    ) -> anyhow::Result<(FloorServer, Arc<Journal>)> {
        let (ready, connected) = oneshot::channel();
        let server = FloorServer::spawn(threads, Some((spec, ready)))?;
        let journal = tokio::time::timeout(CONNECT_LIMIT, connected)
            .await
            .context("the durable relay did not reach Redis in time")?
            .context("the durable relay thread ended before it reached Redis")??;
        Ok((server, journal))
    }

    fn spawn(threads: usize, durable: Option<(JournalSpec, Ready)>) -> anyhow::Result<FloorServer> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("bind the floor relay")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(RELAY_THREADS)
            .enable_all()
            .build()
            .context("build the floor relay runtime")?;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("floor-relay".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let serving = match durable {
                        None => Serving::Pairs(Mode::Raw),
                        Some((spec, ready)) => match durable_serving(spec).await {
                            Ok((serving, journal)) => {
                                let _ = ready.send(Ok(journal));
                                serving
                            }
                            Err(err) => {
                                let _ = ready.send(Err(err));
                                return;
                            }
                        },
                    };
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, token, serving).await,
                        Err(err) => warn!(cause = %err, "floor relay cannot listen"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .context("start the floor relay thread")?;
        Ok(FloorServer {
            addr,
            shutdown,
            thread: Some(thread),
        })
    }

    pub fn url(&self, pair: usize) -> String {
        format!("ws://{}/pair/{pair}", self.addr)
    }

    pub fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the floor relay thread panicked");
            }
        }
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The durable relay's way of serving, connected to Redis on the relay's runtime.
async fn durable_serving(spec: JournalSpec) -> anyhow::Result<(Serving, Arc<Journal>)> {
    let obligations = spec.obligations;
    let hop = spec.hop.clone();
    let redis_url = spec.redis_url.clone();
    let journal = Arc::new(Journal::connect(spec).await?);
    let serving = match hop {
        None => Serving::Pairs(Mode::Durable(Arc::clone(&journal), obligations)),
        Some(hop) => Serving::Hop(HopNode::connect(&redis_url, hop, Arc::clone(&journal)).await?),
    };
    Ok((serving, journal))
}

/// Accepts sockets until `shutdown`.
async fn serve(listener: TcpListener, shutdown: CancellationToken, serving: Serving) {
    let lobby: Lobby = Arc::default();
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let lobby = Arc::clone(&lobby);
                    let serving = serving.clone();
                    tasks.spawn(async move {
                        let ended = match serving {
                            Serving::Pairs(mode) => relay(stream, lobby, mode).await,
                            Serving::Hop(node) => hop::relay(stream, node).await,
                        };
                        if let Err(err) = ended {
                            debug!(cause = %err, "floor relay connection ended");
                        }
                    });
                }
                Err(err) => {
                    warn!(cause = %err, "floor relay accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// One socket: find its partner, then forward every data frame to it.
async fn relay(stream: TcpStream, lobby: Lobby, mode: Mode) -> anyhow::Result<()> {
    let (socket, path) = accept(stream, |_| {}).await?;
    let (sink, mut source) = socket.split();
    let (tx, rx) = mpsc::channel::<Message>(QUEUE);
    let writer = spawn_writer(sink, rx);

    enum Found {
        Partner(Paired),
        Wait(oneshot::Receiver<Paired>),
    }
    // The first socket of a pair is side 0, the second side 1.
    let mut side = 1;
    let found = {
        let mut lobby = lobby.lock().unwrap_or_else(|p| p.into_inner());
        match lobby.remove(&path) {
            Some(waiting) => {
                // The second socket starts the pair's task when the relay sequences: it
                // holds both writers, and is the only writer of the pair's stream.
                let sequencer = match &mode {
                    Mode::Durable(journal, Obligations::Sequenced) => {
                        let (pair_tx, pair_rx) = sequenced::pair_channel();
                        let journal = Arc::clone(journal);
                        let key = journal.key_for_path(&path);
                        let conversation = format!("p{}", path.trim_start_matches("/pair/"));
                        let writers = [waiting.tx.clone(), tx.clone()];
                        tokio::spawn(async move {
                            sequenced::run_pair(&journal, key, conversation, writers, pair_rx)
                                .await;
                        });
                        Some(pair_tx)
                    }
                    _ => None,
                };
                let paired = Paired {
                    partner: tx.clone(),
                    sequencer: sequencer.clone(),
                };
                if waiting.partner.send(paired).is_err() {
                    bail!("the partner on {path} left before pairing");
                }
                Found::Partner(Paired {
                    partner: waiting.tx,
                    sequencer,
                })
            }
            None => {
                side = 0;
                let (partner_tx, partner_rx) = oneshot::channel();
                lobby.insert(
                    path.clone(),
                    Waiting {
                        tx: tx.clone(),
                        partner: partner_tx,
                    },
                );
                Found::Wait(partner_rx)
            }
        }
    };
    // Only the partner (or the pair's task) keeps our sender, and with acks a weak handle
    // of our own: when the partner's reader ends, our writer ends.
    let own = tx.downgrade();
    drop(tx);
    let Paired { partner, sequencer } = match found {
        Found::Partner(paired) => paired,
        Found::Wait(rx) => rx.await.context("never paired")?,
    };
    match (mode, sequencer) {
        (Mode::Raw, _) => {
            while let Some(frame) = source.next().await {
                let frame = frame?;
                match frame {
                    Message::Text(_) | Message::Binary(_) => {}
                    Message::Close(_) => break,
                    _ => continue,
                }
                if partner.send(frame).await.is_err() {
                    break;
                }
            }
        }
        (Mode::Durable(_, Obligations::Sequenced), Some(pair)) => {
            drop(partner);
            sequenced::post_parsed(&mut source, side, &pair).await?;
            return writer_done(writer).await;
        }
        (Mode::Durable(journal, obligations), _) => {
            let key = journal.key_for_path(&path);
            let acks = (obligations == Obligations::Acks).then_some(&own);
            durable::forward_appended(&mut source, &partner, acks, journal.as_ref(), &key).await?;
        }
    }
    drop(partner);
    writer_done(writer).await
}

/// Accepts a relay socket: its handshake, with `on_path` called with the request's path
/// before the handshake is answered. Returns the socket and its path.
// The handshake callback's `Result<Response, ErrorResponse>` is tungstenite's signature.
#[allow(clippy::result_large_err)]
async fn accept(
    stream: TcpStream,
    on_path: impl FnOnce(&str) + Send + Unpin,
) -> anyhow::Result<(tokio_tungstenite::WebSocketStream<TcpStream>, String)> {
    stream.set_nodelay(true)?;
    let path = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&path);
    let callback =
        move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
            let path = request.uri().path();
            on_path(path);
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = path.to_string();
            Ok(response)
        };
    let socket = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(crate::ws::relay_config()),
    )
    .await?;
    let path = std::mem::take(&mut *path.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((socket, path))
}

/// A socket's writer: writes what its queue holds, flushing once per burst, until every
/// sender of the queue is gone, then closes the socket.
fn spawn_writer<S>(mut sink: S, mut rx: mpsc::Receiver<Message>) -> tokio::task::JoinHandle<()>
where
    S: futures_util::Sink<Message> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        'outer: while let Some(frame) = rx.recv().await {
            if sink.feed(frame).await.is_err() {
                break;
            }
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(frame).await.is_err() {
                    break 'outer;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        // The partner is gone (or we are): say goodbye properly.
        let _ = sink.close().await;
    })
}

async fn writer_done(writer: tokio::task::JoinHandle<()>) -> anyhow::Result<()> {
    writer.await.context("floor writer task")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{scenario::Scenario, ws};

    #[tokio::test]
    async fn the_relay_pairs_and_forwards_both_ways() {
        let server = FloorServer::start(1).expect("relay starts");
        let mut a = ws::connect(&server.url(7)).await.expect("a connects");
        let mut b = ws::connect(&server.url(7)).await.expect("b connects");
        a.send(Message::Text("hello b".into()))
            .await
            .expect("a sends");
        b.send(Message::Text("hello a".into()))
            .await
            .expect("b sends");
        let got_b = tokio::time::timeout(Duration::from_secs(5), b.next()).await;
        let got_a = tokio::time::timeout(Duration::from_secs(5), a.next()).await;
        assert!(matches!(got_b, Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "hello b"));
        assert!(matches!(got_a, Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "hello a"));
        server.stop();
    }

    #[tokio::test]
    async fn a_tiny_floor_run_delivers_everything() {
        let scenario = Scenario {
            customers: 3,
            messages: 5,
            rate: 50.0,
            think_ms: 1,
            ramp_up_s: 0.1,
            ..Scenario::default()
        };
        let figures = run_floor(&scenario, false).await.expect("floor runs");
        // 3 pairs × 6 messages, each answered: 36 deliveries.
        assert_eq!(figures.messages.delivered, 36, "{figures:?}");
        assert_eq!(figures.replies_missing, 0);
        assert!(
            figures.client_failures.is_empty(),
            "{:?}",
            figures.client_failures
        );
    }
}

//! The floor: the least any chat relay must do, measured on the same machine with the
//! same load shape as the hub. A WebSocket server on raw tokio-tungstenite pairs two
//! sockets by URL path (`/pair/<n>`) and relays every frame of one to the other: no JSON
//! parsing, no routing, no storage. It has the hub's connection shape (a reader loop and a
//! writer fed by a bounded queue per socket) and runs on a runtime of its own with as many
//! worker threads as the machine has cores, as the hub process would.
//!
//! The floor's clients send the same `message` frames (same JSON, same size) as the hub's
//! customers and agents, at the same rate and window, and parse what they receive, so the
//! client-side cost is the same and the ratio speaks about the server.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{atomic::Ordering, Arc, Mutex},
    time::Duration,
};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use rustc_hash::FxHashSet;
use serde::Deserialize;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
    task::JoinSet,
    time::Instant,
};
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request, Response},
    Message,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    metrics::{Clock, Lat, Metrics},
    pacer::{rearm, Pacer},
    payload,
    procfs::{Samplers, Watched},
    progress::Progress,
    report::LoadFigures,
    scenario::Scenario,
    wire::Out,
    ws,
};

/// The name of the relay runtime's threads, by which their CPU is told from the clients'.
const RELAY_THREADS: &str = "floor-relay";

/// Frames queued for one socket of the relay.
const QUEUE: usize = 512;

type Tx = mpsc::Sender<Message>;

struct Waiting {
    tx: Tx,
    partner: oneshot::Sender<Tx>,
}

/// Sockets waiting for their partner, by path. A std `Mutex`: held for one map operation,
/// never across an `.await`.
type Lobby = Arc<Mutex<HashMap<String, Waiting>>>;

/// The relay server, on a runtime (and threads) of its own.
pub struct FloorServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FloorServer {
    /// Starts the relay on `127.0.0.1:0` with `threads` worker threads.
    pub fn start(threads: usize) -> anyhow::Result<FloorServer> {
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
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, token).await,
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

/// Accepts sockets until `shutdown`.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let lobby: Lobby = Arc::default();
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let lobby = Arc::clone(&lobby);
                    tasks.spawn(async move {
                        if let Err(err) = relay(stream, lobby).await {
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
// The handshake callback's `Result<Response, ErrorResponse>` is tungstenite's signature.
#[allow(clippy::result_large_err)]
async fn relay(stream: TcpStream, lobby: Lobby) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let path = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&path);
    let callback =
        move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = request.uri().path().to_string();
            Ok(response)
        };
    let socket = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(crate::ws::relay_config()),
    )
    .await?;
    let path = std::mem::take(&mut *path.lock().unwrap_or_else(|p| p.into_inner()));
    let (mut sink, mut source) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let writer = tokio::spawn(async move {
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
    });

    enum Found {
        Partner(Tx),
        Wait(oneshot::Receiver<Tx>),
    }
    let found = {
        let mut lobby = lobby.lock().unwrap_or_else(|p| p.into_inner());
        match lobby.remove(&path) {
            Some(waiting) => {
                if waiting.partner.send(tx.clone()).is_err() {
                    bail!("the partner on {path} left before pairing");
                }
                Found::Partner(waiting.tx)
            }
            None => {
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
    // Only the partner keeps our sender: when its reader ends, our writer ends.
    drop(tx);
    let partner = match found {
        Found::Partner(partner) => partner,
        Found::Wait(rx) => rx.await.context("never paired")?,
    };
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
    drop(partner);
    writer.await.context("floor writer task")?;
    Ok(())
}

/// A relayed `message` frame, as far as the floor's clients read it.
#[derive(Deserialize)]
struct Relayed {
    text: String,
}

/// Runs the scenario's shape through a fresh relay: one pair per customer.
pub async fn run_floor(scenario: &Scenario, show_progress: bool) -> anyhow::Result<LoadFigures> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = FloorServer::start(threads)?;
    let metrics = Arc::new(Metrics::new(Clock::new()));
    let progress = Progress::start(
        "floor",
        Arc::clone(&metrics),
        scenario.duration(),
        show_progress,
    );
    // The relay runs in this process: the process's CPU is clients and relay together,
    // and the relay's own runtime threads are sampled apart.
    let samplers = Samplers::watch(
        &[
            ("harness+relay", Watched::Process(std::process::id())),
            ("relay", Watched::Threads(std::process::id(), RELAY_THREADS)),
        ],
        Duration::from_secs(1),
    );
    let scenario = Arc::new(scenario.clone());
    let t0 = Instant::now() + Duration::from_millis(50);
    let deadline = scenario.duration().map(|d| t0 + d);
    let mut pairs = JoinSet::new();
    for i in 0..scenario.customers {
        let url = server.url(i);
        let start = t0 + scenario.start_offset(i);
        pairs.spawn(pair(
            i,
            url,
            Arc::clone(&scenario),
            Arc::clone(&metrics),
            start,
            deadline,
        ));
    }
    let mut failures = Vec::new();
    while let Some(joined) = pairs.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failures.push(format!("{err:#}")),
            Err(err) => failures.push(format!("a floor pair panicked: {err}")),
        }
    }
    progress.finish();
    // Sample before the relay's threads exit: an exited thread's CPU no longer shows.
    let processes = samplers.stop().await;
    server.stop();
    let mut figures = LoadFigures::from_metrics("floor", &metrics);
    figures.client_failures = failures;
    figures.processes = processes;
    Ok(figures)
}

async fn pair(
    index: usize,
    url: String,
    scenario: Arc<Scenario>,
    metrics: Arc<Metrics>,
    start: Instant,
    deadline: Option<Instant>,
) -> anyhow::Result<()> {
    tokio::time::sleep_until(start).await;
    let agent_side = ws::connect(&url).await?;
    metrics.connection_opened();
    let customer_side = ws::connect(&url).await?;
    metrics.connection_opened();
    let agent = tokio::spawn(floor_agent(
        agent_side,
        Arc::clone(&scenario),
        Arc::clone(&metrics),
    ));
    let result = floor_customer(index, customer_side, &scenario, &metrics, deadline).await;
    metrics.connection_closed();
    let agent_result = agent.await.context("floor agent task")?;
    metrics.connection_closed();
    result.and(agent_result)
}

fn message_frame(conversation: &str, req: u64, text: &str, id: &str) -> anyhow::Result<Message> {
    let req = format!("r{req}");
    let json = Out::Message {
        req: &req,
        conversation_id: conversation,
        text,
        client_msg_id: id,
    }
    .to_text()?;
    Ok(Message::Text(json.into()))
}

/// The customer end of a pair: chats of `messages + 1` messages at the scenario's rate.
async fn floor_customer(
    index: usize,
    mut socket: ws::Stream,
    scenario: &Scenario,
    metrics: &Metrics,
    deadline: Option<Instant>,
) -> anyhow::Result<()> {
    let conversation = format!("p{index}");
    let per_chat = scenario.messages + 1;
    let reply_timeout = Duration::from_millis(scenario.reply_timeout_ms);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    // Two timers for the pair, not two per frame read (see `rearm`), as the hub's customers.
    let send_timer = tokio::time::sleep_until(far);
    let drain_timer = tokio::time::sleep_until(far);
    tokio::pin!(send_timer, drain_timer);
    let mut req = 0u64;
    let mut chat = 0u32;
    loop {
        let mut pacer = Pacer::new(
            scenario.interval(),
            scenario.effective_window(),
            Instant::now(),
        );
        let mut awaiting: FxHashSet<String> = FxHashSet::default();
        let mut n = 0u32;
        let mut drain_until: Option<Instant> = None;
        loop {
            let stop_sending = n >= per_chat || deadline.is_some_and(|d| Instant::now() >= d);
            if stop_sending {
                if awaiting.is_empty() {
                    break;
                }
                let until = *drain_until.get_or_insert_with(|| Instant::now() + reply_timeout);
                if Instant::now() >= until {
                    metrics
                        .counters
                        .replies_missing
                        .fetch_add(awaiting.len() as u64, Ordering::Relaxed);
                    break;
                }
            }
            let send_at = if stop_sending {
                None
            } else {
                pacer.next_send()
            };
            rearm(send_timer.as_mut(), send_at);
            rearm(drain_timer.as_mut(), drain_until);
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let relayed: Relayed = serde_json::from_str(text.as_str()).context("floor frame")?;
                        if let Some(stamp) = payload::decode(&relayed.text) {
                            metrics.record(Lat::AgentToCustomer, metrics.clock.since(stamp.sent_us));
                            if stamp.replies_to().is_some_and(|id| awaiting.remove(id)) {
                                pacer.on_reply();
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return Err(err).context("floor customer read"),
                    None => bail!("the floor relay closed pair {index}"),
                },
                () = &mut send_timer, if send_at.is_some() => {
                    let id = payload::customer_msg_id(index, chat, n);
                    n += 1;
                    req += 1;
                    let text = payload::encode(metrics.clock.now_us(), &id, payload::FLAG_PLAIN, scenario.message_size);
                    socket.send(message_frame(&conversation, req, &text, &id)?).await.context("floor customer send")?;
                    metrics.sent();
                    awaiting.insert(id);
                    pacer.on_sent(Instant::now());
                }
                () = &mut drain_timer, if drain_until.is_some() => {}
            }
        }
        chat += 1;
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    // Closing our side ends the relay of both sockets; the agent end then sees the close.
    socket.close(None).await.ok();
    while let Some(Ok(_)) = socket.next().await {}
    Ok(())
}

/// The agent end of a pair: answer each message after the think time.
async fn floor_agent(
    mut socket: ws::Stream,
    scenario: Arc<Scenario>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let think = Duration::from_millis(scenario.think_ms);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut due: VecDeque<(Instant, String)> = VecDeque::new();
    let mut req = 0u64;
    // One reply timer, not one per frame read (see `rearm`).
    let reply_timer = tokio::time::sleep_until(far);
    tokio::pin!(reply_timer);
    loop {
        let next = due.front().map(|d| d.0);
        rearm(reply_timer.as_mut(), next);
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let relayed: Relayed = serde_json::from_str(text.as_str()).context("floor frame")?;
                    if let Some(stamp) = payload::decode(&relayed.text) {
                        metrics.record(Lat::CustomerToAgent, metrics.clock.since(stamp.sent_us));
                        due.push_back((Instant::now() + think, stamp.id.to_string()));
                    }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err).context("floor agent read"),
            },
            () = &mut reply_timer, if next.is_some() => {
                if let Some((_, customer_msg)) = due.pop_front() {
                    let id = payload::reply_id(&customer_msg);
                    req += 1;
                    let text = payload::encode(metrics.clock.now_us(), &id, payload::FLAG_PLAIN, scenario.message_size);
                    socket.send(message_frame("p", req, &text, &id)?).await.context("floor agent send")?;
                    metrics.sent();
                }
            }
        }
    }
    socket.close(None).await.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

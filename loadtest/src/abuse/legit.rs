//! The legitimate side, from its own address: an agent created over REST with the admin
//! token (capacity 1, so the flood's chats are never offered to it) and a customer in one
//! chat with it, the customer sending at a steady rate while the attacks run, the agent
//! timing each message (customer send → agent reads the event) into the current window;
//! and the probes, a new `/healthz` request and a new customer `hello` every second, which
//! show whether the hub still lets a newcomer in. It never attacks.

use std::{collections::HashSet, sync::Arc, time::Duration};

use anyhow::{bail, Context};
use rustc_hash::FxHashMap;
use tokio::{task::JoinHandle, time::timeout};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{
    client::{close_label, customer, start, Target, ANSWER_TIMEOUT},
    net::{anyhow_kind, ws_from},
    report::{LegitFigures, Tally},
    window::Windows,
};
use crate::{
    admin::Admin,
    metrics::Clock,
    payload,
    wire::{In, Out},
    ws::{Recv, Ws},
};

/// The topic of the legitimate chat: unknown to the hub, so the default one.
const TOPIC: &str = "abuse-legit";

/// What the customer side ends with.
#[derive(Debug, Default)]
struct CustomerEnd {
    sent: u64,
    acked: Vec<String>,
    errors: Tally,
    unanswered: u64,
    ended_early: Option<String>,
}

/// What the agent side ends with.
#[derive(Debug, Default)]
struct AgentEnd {
    received: HashSet<String>,
    ended_early: Option<String>,
}

/// The running pair.
pub struct Legit {
    admin: Admin,
    agent_id: String,
    conversation_id: String,
    stop_customer: CancellationToken,
    stop_agent: CancellationToken,
    customer: JoinHandle<(CustomerEnd, Ws)>,
    agent: JoinHandle<AgentEnd>,
}

async fn agent_hello(target: &Target, token: &str) -> anyhow::Result<Ws> {
    let stream = ws_from(
        target.addrs.legit_ip(),
        target.hub,
        &target.endpoints.agent_ws,
        None,
    )
    .await
    .map_err(|err| anyhow::anyhow!("the legitimate agent cannot connect: {}", err.kind()))?;
    let mut ws = Ws::from_stream(stream, &target.ids);
    ws.send(&Out::Hello {
        role: "agent",
        token: Some(token),
        session: None,
        name: None,
        echo: None,
    })
    .await?;
    loop {
        match timeout(ANSWER_TIMEOUT, ws.recv())
            .await
            .context("no agent welcome")??
        {
            Recv::Frame(In::Welcome { .. }) => break,
            Recv::Frame(In::Error { code, .. }) => bail!("agent hello refused: {code}"),
            Recv::Frame(_) => continue,
            Recv::Closed(code) => bail!("agent hello: {}", close_label(code)),
        }
    }
    let req = ws.req();
    ws.send(&Out::Status {
        req: &req,
        status: "available",
    })
    .await?;
    Ok(ws)
}

/// The agent takes the offer of `conversation_id` (declining any other) and waits until
/// it has joined.
async fn agent_join(ws: &mut Ws, conversation_id: &str) -> anyhow::Result<()> {
    let wait = async {
        loop {
            match ws.recv().await? {
                Recv::Frame(In::Offer {
                    offer_id,
                    conversation_id: offered,
                    ..
                }) => {
                    let req = ws.req();
                    if offered == conversation_id {
                        ws.send(&Out::Accept {
                            req: &req,
                            offer_id: &offer_id,
                        })
                        .await?;
                    } else {
                        ws.send(&Out::Decline {
                            req: &req,
                            offer_id: &offer_id,
                        })
                        .await?;
                    }
                }
                Recv::Frame(In::Event(event))
                    if event.conversation_id == conversation_id && event.kind == "joined" =>
                {
                    return Ok(());
                }
                Recv::Frame(_) => continue,
                Recv::Closed(code) => bail!("the agent was closed: {}", close_label(code)),
            }
        }
    };
    timeout(Duration::from_secs(30), wait)
        .await
        .context("the legitimate agent was not offered its chat within 30 s")?
}

impl Legit {
    /// Creates the agent, connects both, starts the chat and waits until the agent has
    /// joined; then both run until [`Legit::finish`].
    pub async fn start(
        target: &Target,
        admin_token: &str,
        rate: f64,
        windows: Arc<Windows>,
    ) -> anyhow::Result<Legit> {
        let admin = Admin::new(&target.endpoints.http, admin_token)?;
        let agent_id = format!("abuse-{}-{}", std::process::id(), crate::report::unix_ms());
        let token = admin
            .create_agent(&agent_id, &Default::default(), 1)
            .await
            .context("create the legitimate agent")?;
        let mut agent = agent_hello(target, &token).await?;
        let (mut cust, _session) = customer(target, target.addrs.legit_ip(), None, None)
            .await
            .map_err(|kind| anyhow::anyhow!("the legitimate customer cannot connect: {kind}"))?;
        let conversation_id = start(&mut cust, TOPIC, "hello, I need help")
            .await
            .map_err(|kind| anyhow::anyhow!("the legitimate chat cannot start: {kind}"))?;
        agent_join(&mut agent, &conversation_id).await?;

        let clock = Clock::new();
        let stop_customer = CancellationToken::new();
        let stop_agent = CancellationToken::new();
        let customer = tokio::spawn(run_customer(
            cust,
            conversation_id.clone(),
            rate,
            clock,
            stop_customer.clone(),
        ));
        let agent = tokio::spawn(run_agent(
            agent,
            conversation_id.clone(),
            clock,
            windows,
            stop_agent.clone(),
        ));
        Ok(Legit {
            admin,
            agent_id,
            conversation_id,
            stop_customer,
            stop_agent,
            customer,
            agent,
        })
    }

    /// Stops the customer, gives the last messages time to arrive, stops the agent,
    /// closes the chat and deletes the agent.
    pub async fn finish(self, windows: &Windows) -> LegitFigures {
        self.stop_customer.cancel();
        let (cust, mut ws) = match self.customer.await {
            Ok(end) => end,
            Err(err) => {
                self.stop_agent.cancel();
                return LegitFigures {
                    ended_early: vec![format!("customer task failed: {err}")],
                    ..LegitFigures::default()
                };
            }
        };
        // The agent has the last acked message by now, unless the hub lost it or is
        // late; give it a moment, then stop.
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.stop_agent.cancel();
        let agent = self.agent.await.unwrap_or_else(|err| AgentEnd {
            ended_early: Some(format!("agent task failed: {err}")),
            ..AgentEnd::default()
        });
        let req = ws.req();
        if ws
            .send(&Out::Close {
                req: &req,
                conversation_id: &self.conversation_id,
            })
            .await
            .is_ok()
        {
            let _ = super::client::answer(&mut ws, Some(&req)).await;
        }
        ws.close().await;
        if let Err(err) = self.admin.delete_agent(&self.agent_id).await {
            warn!(cause = %err, "cannot delete the legitimate agent");
        }
        let lost = cust
            .acked
            .iter()
            .filter(|id| !agent.received.contains(*id))
            .count() as u64;
        LegitFigures {
            sent: cust.sent,
            acked: cust.acked.len() as u64,
            delivered: agent.received.len() as u64,
            lost,
            unanswered: cust.unanswered,
            errors: cust.errors,
            ended_early: cust
                .ended_early
                .map(|why| format!("customer: {why}"))
                .into_iter()
                .chain(agent.ended_early.map(|why| format!("agent: {why}")))
                .collect(),
            overall: windows.overall(),
        }
    }
}

async fn run_customer(
    mut ws: Ws,
    conversation_id: String,
    rate: f64,
    clock: Clock,
    stop: CancellationToken,
) -> (CustomerEnd, Ws) {
    let mut end = CustomerEnd::default();
    let mut pending: FxHashMap<String, String> = FxHashMap::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let settle = async {
        stop.cancelled().await;
        // Unanswered requests get this long after the stop.
        tokio::time::sleep(ANSWER_TIMEOUT).await;
    };
    tokio::pin!(settle);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = &mut settle => break,
            _ = stop.cancelled(), if !stopping => stopping = true,
            _ = tick.tick(), if !stopping => {
                let id = format!("legit-{}", end.sent);
                let text = payload::encode(clock.now_us(), &id, payload::FLAG_PLAIN, 64);
                let req = ws.req();
                let sent = ws.send(&Out::Message {
                    req: &req,
                    conversation_id: &conversation_id,
                    text: &text,
                    client_msg_id: &id,
                }).await;
                if let Err(err) = sent {
                    end.ended_early = Some(anyhow_kind(&err));
                    break;
                }
                end.sent += 1;
                pending.insert(req, id);
            }
            received = ws.recv() => match received {
                Ok(Recv::Frame(In::Ack { req, .. })) => {
                    if let Some(id) = pending.remove(&req) {
                        end.acked.push(id);
                    }
                }
                Ok(Recv::Frame(In::Error { req, code, .. })) => {
                    if let Some(req) = req {
                        pending.remove(&req);
                    }
                    end.errors.add(code);
                }
                Ok(Recv::Frame(_)) => {}
                Ok(Recv::Closed(code)) => {
                    end.ended_early = Some(close_label(code));
                    break;
                }
                Err(err) => {
                    end.ended_early = Some(anyhow_kind(&err));
                    break;
                }
            },
        }
        if stopping && pending.is_empty() {
            break;
        }
    }
    end.unanswered = pending.len() as u64;
    (end, ws)
}

async fn run_agent(
    mut ws: Ws,
    conversation_id: String,
    clock: Clock,
    windows: Arc<Windows>,
    stop: CancellationToken,
) -> AgentEnd {
    let mut end = AgentEnd::default();
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => break,
            received = ws.recv() => received,
        };
        match received {
            Ok(Recv::Frame(In::Event(event)))
                if event.conversation_id == conversation_id
                    && event.is_message_from("customer") =>
            {
                let Some(stamp) = event.text.as_deref().and_then(payload::decode) else {
                    continue;
                };
                if end.received.insert(stamp.id.to_string()) {
                    windows.latency(clock.since(stamp.sent_us));
                }
            }
            Ok(Recv::Frame(In::Offer { offer_id, .. })) => {
                // Full at capacity 1, it should get none; a real agent would not take
                // a stranger's chat mid-conversation either.
                let req = ws.req();
                let _ = ws
                    .send(&Out::Decline {
                        req: &req,
                        offer_id: &offer_id,
                    })
                    .await;
            }
            Ok(Recv::Frame(_)) => {}
            Ok(Recv::Closed(code)) => {
                end.ended_early = Some(close_label(code));
                return end;
            }
            Err(err) => {
                end.ended_early = Some(anyhow_kind(&err));
                return end;
            }
        }
    }
    ws.close().await;
    end
}

/// Probes the hub once a second from the legitimate address until `stop`.
pub fn probe(target: &Target, windows: Arc<Windows>, stop: CancellationToken) -> JoinHandle<()> {
    let target = target.clone();
    tokio::spawn(async move {
        let http = match reqwest::Client::builder()
            .local_address(target.addrs.legit_ip())
            .timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(0)
            .build()
        {
            Ok(client) => client,
            Err(err) => {
                warn!(cause = %err, "cannot build the probe's HTTP client; no probes");
                return;
            }
        };
        let healthz = format!("{}/healthz", target.endpoints.http);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (health, hello) = tokio::join!(probe_health(&http, &healthz), probe_hello(&target));
            windows.probe(&health);
            windows.probe(&hello);
        }
    })
}

async fn probe_health(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(response) if response.status().is_success() => "ok".into(),
        Ok(response) => format!("healthz: HTTP {}", response.status().as_u16()),
        Err(err) if err.is_timeout() => "healthz: timed out".into(),
        Err(err) if err.is_connect() => "healthz: cannot connect".into(),
        Err(_) => "healthz: failed".into(),
    }
}

async fn probe_hello(target: &Target) -> String {
    match timeout(
        Duration::from_secs(3),
        customer(target, target.addrs.legit_ip(), None, None),
    )
    .await
    {
        Ok(Ok((ws, _))) => {
            ws.close().await;
            "ok".into()
        }
        Ok(Err(kind)) => format!("customer hello: {kind}"),
        Err(_) => "customer hello: timed out".into(),
    }
}

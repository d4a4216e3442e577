//! The `idle` subcommand as a library call: open N customer connections (`hello` only),
//! hold them, and read the hub's resident memory before, while held and after closing, to
//! report the hub's memory per idle connection. Each held connection keeps reading, so the
//! hub's pings are answered and nothing times out.

use std::{collections::BTreeMap, io::IsTerminal, sync::Arc, time::Duration};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget};
use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinSet,
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    admin::Endpoints,
    procfs::{self, ProcSummary, Sampler},
    report::IdleFigures,
    wire::{In, Out},
    ws::{ConnIds, Recv, Ws},
};

#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub hub: String,
    pub connections: usize,
    pub hub_pid: Option<u32>,
    /// Connections being opened at once.
    pub concurrency: usize,
    /// How long to hold them all once open.
    pub hold: Duration,
    /// Pause before each memory reading, so the hub's allocator settles.
    pub settle: Duration,
    pub progress: bool,
}

impl Default for IdleOptions {
    fn default() -> Self {
        IdleOptions {
            hub: "http://127.0.0.1:8080".into(),
            connections: 1000,
            hub_pid: None,
            concurrency: 256,
            hold: Duration::from_secs(10),
            settle: Duration::from_secs(3),
            progress: true,
        }
    }
}

fn rss_mb(pid: Option<u32>) -> Option<f64> {
    let pid = pid?;
    match procfs::rss_kb(pid) {
        Ok(kb) => Some(kb as f64 / 1024.0),
        Err(err) => {
            warn!(pid, cause = %err, "cannot read the hub's RSS");
            None
        }
    }
}

async fn hello(url: &str, ids: &ConnIds) -> anyhow::Result<Ws> {
    let mut ws = Ws::connect(url, ids).await?;
    ws.send(&Out::Hello {
        role: "customer",
        token: None,
        session: None,
        name: None,
        echo: None,
    })
    .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.recv())
            .await
            .context("no welcome within 30 s")??
        {
            Recv::Frame(In::Welcome { .. }) => return Ok(ws),
            Recv::Frame(In::Error { code, .. }) => anyhow::bail!("hello refused: {code}"),
            Recv::Frame(_) => continue,
            Recv::Closed(code) => anyhow::bail!("closed before welcome (code {code:?})"),
        }
    }
}

/// Opens, holds and closes the connections; returns the figures and the hub's samples.
pub async fn idle(options: &IdleOptions) -> anyhow::Result<(IdleFigures, Option<ProcSummary>)> {
    let endpoints = Endpoints::new(&options.hub)?;
    let wanted = options.connections as u64 + 256;
    let limit = procfs::raise_fd_limit(wanted).context("raise the open-file limit")?;
    if limit < wanted {
        warn!(
            limit,
            wanted, "the open-file limit is below what the connections need"
        );
    }
    let sampler = options
        .hub_pid
        .map(|pid| Sampler::start("hub", pid, Duration::from_secs(1)));
    tokio::time::sleep(options.settle.min(Duration::from_secs(1))).await;
    let rss_before = rss_mb(options.hub_pid);

    let bar = ProgressBar::new(options.connections as u64);
    if !(options.progress && std::io::stdout().is_terminal()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let ids = ConnIds::default();
    let gate = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let stop = CancellationToken::new();
    let (results, mut results_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for _ in 0..options.connections {
        let (gate, stop, results, ids) = (
            Arc::clone(&gate),
            stop.clone(),
            results.clone(),
            ids.clone(),
        );
        let url = endpoints.customer_ws.clone();
        tasks.spawn(async move {
            let opened = {
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                hello(&url, &ids).await
            };
            let mut ws = match opened {
                Ok(ws) => ws,
                Err(err) => {
                    let _ = results.send(Err(format!("{err:#}")));
                    return;
                }
            };
            // The receiver lives until every task has reported.
            let _ = results.send(Ok(()));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    received = ws.recv() => match received {
                        Ok(Recv::Frame(_)) => {}
                        Ok(Recv::Closed(_)) | Err(_) => return,
                    },
                }
            }
            ws.close().await;
        });
    }
    drop(results);
    let mut connected = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..options.connections {
        match results_rx.recv().await {
            Some(Ok(())) => connected += 1,
            Some(Err(err)) => {
                // Keep the cause short: the first line, without the URL.
                let key: String = err
                    .split(':')
                    .next_back()
                    .unwrap_or(&err)
                    .trim()
                    .chars()
                    .take(80)
                    .collect();
                *errors.entry(key).or_default() += 1;
            }
            None => break,
        }
        bar.inc(1);
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let failed = options.connections - connected;
    info!(
        connected,
        failed,
        seconds = connect_seconds,
        "idle connections open"
    );

    tokio::time::sleep(options.settle).await;
    let rss_held = rss_mb(options.hub_pid);
    let harness_rss_mb = procfs::rss_kb(std::process::id())
        .ok()
        .map(|kb| kb as f64 / 1024.0);
    tokio::time::sleep(options.hold).await;
    // Hold over: the lowest-noise reading is the later of the two if they differ little.
    let rss_held = match (rss_held, rss_mb(options.hub_pid)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    tokio::time::sleep(options.settle).await;
    let rss_after_close = rss_mb(options.hub_pid);
    let process = match sampler {
        Some(sampler) => Some(sampler.stop().await),
        None => None,
    };
    let rss_per_connection_kb = match (rss_before, rss_held) {
        (Some(before), Some(held)) if connected > 0 => {
            Some((held - before) * 1024.0 / connected as f64)
        }
        _ => None,
    };
    let figures = IdleFigures {
        requested: options.connections,
        connected,
        failed,
        errors,
        connect_seconds,
        hold_seconds: options.hold.as_secs_f64(),
        hub_pid: options.hub_pid,
        rss_before_mb: rss_before,
        rss_held_mb: rss_held,
        rss_after_close_mb: rss_after_close,
        rss_per_connection_kb,
        harness_rss_mb,
    };
    Ok((figures, process))
}

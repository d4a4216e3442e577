//! The durable floor's run: the relay's load with Redis sampled beside it, then, on a
//! connection of the harness's own and outside the measured load, the count of what
//! Redis holds (`XLEN` of every stream) and the deletion of the run's streams. They are
//! deleted at the end rather than trimmed on each append (`MAXLEN ~`): that keeps the
//! per-message work to one `XADD`, and the hub, too, keeps its events while it runs.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tracing::{debug, warn};

use super::{
    connect,
    hop::{HopPublish, HopSpec},
    stream_key, Journal, JournalSpec, Obligations,
};
use crate::{
    floor::{load, relay_threads, FloorServer, Relays},
    procfs::Watched,
    report::LoadFigures,
    scenario::Scenario,
};

/// Keys counted or deleted per command at the end of the run.
const CLEANUP_CHUNK: usize = 500;

/// What the durable relay appended, and what Redis held at the end.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct JournalFigures {
    /// Frames Redis answered for (`XADD` gave an id): the frames the relay forwarded.
    pub appended: u64,
    /// Frames whose append failed (an error answer, or none in time): never forwarded.
    /// Across two nodes also a stored frame the other node could not hand to its socket
    /// (none there, or its queue full), and a push it could not read.
    pub failed: u64,
    /// Pipelines sent; each holds what one socket had read by then, one `XADD` a frame.
    pub pipelines: u64,
    /// Entries in the run's streams once the load was over (`XLEN`, summed), read on a
    /// connection of the harness's own before the streams were deleted.
    pub stored: u64,
    /// The run's streams, one per pair.
    pub streams: u64,
    /// Whether the streams were deleted at the end (tests keep them to read them).
    pub deleted: bool,
    /// Redis's `appendonly` and `appendfsync` at the start (`CONFIG GET`), when readable.
    pub appendonly: Option<String>,
    pub appendfsync: Option<String>,
    /// The run's tag, which names its streams ([`stream_key`]).
    pub tag: String,
}

impl JournalFigures {
    /// Nothing failed, and Redis holds exactly what the relay appended and forwarded.
    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.stored == self.appended
    }

    /// One line for the terminal and the HTML report.
    pub fn text(&self) -> String {
        let per_pipeline = if self.pipelines > 0 {
            self.appended as f64 / self.pipelines as f64
        } else {
            0.0
        };
        format!(
            "durable: {} frames appended in {} pipelines ({per_pipeline:.1} per pipeline), {} failed; \
             {} entries in Redis's {} streams at the end (XLEN){}; Redis appendonly {}, appendfsync {}{}",
            self.appended,
            self.pipelines,
            self.failed,
            self.stored,
            self.streams,
            if self.deleted { ", then deleted" } else { ", kept" },
            self.appendonly.as_deref().unwrap_or("unknown"),
            self.appendfsync.as_deref().unwrap_or("unknown"),
            if self.is_clean() {
                ""
            } else {
                " — NOT CLEAN: frames failed or Redis does not hold what was appended"
            }
        )
    }
}

/// Where the durable floor appends, and what else it samples.
#[derive(Debug, Clone)]
pub struct DurableTarget {
    /// One Redis server (not a cluster): the hub's, in `run`.
    pub redis_url: String,
    /// Redis's pid, to sample its CPU (and its children's: the AOF rewrites).
    pub redis_pid: Option<u32>,
    /// Leave the run's streams in Redis (tests read them); by default they are deleted.
    pub keep_streams: bool,
    /// How much of the protocol the relay does per message (by default: store and
    /// forward, the durable floor).
    pub obligations: Obligations,
    /// Two relay nodes, each pair's ends on different ones, publishing to each other as
    /// given ([`super::hop`]); with [`Obligations::Relay`] only. `None`: one node.
    pub two_nodes: Option<HopPublish>,
    /// Worker threads of each relay node; by default one per core, as a hub's.
    pub relay_threads: Option<usize>,
}

/// The durable floor's figures.
#[derive(Debug, Clone)]
pub struct DurableFloor {
    pub figures: LoadFigures,
    pub journal: JournalFigures,
}

/// Runs the scenario's shape through a fresh durable relay: one pair per customer.
pub async fn run_durable_floor(
    scenario: &Scenario,
    target: &DurableTarget,
    show_progress: bool,
) -> anyhow::Result<DurableFloor> {
    if target.redis_url.contains(',') {
        anyhow::bail!("the durable floor appends to one Redis server, not a list or cluster");
    }
    // The harness's own connection: settings now, counts and deletion at the end, all
    // outside the measured load.
    let mut check = connect(&target.redis_url).await?;
    let appendonly = config_get(&mut check, "appendonly").await;
    let appendfsync = config_get(&mut check, "appendfsync").await;
    if appendonly.as_deref() != Some("yes") || appendfsync.as_deref() != Some("everysec") {
        warn!(
            appendonly = appendonly.as_deref().unwrap_or("unknown"),
            appendfsync = appendfsync.as_deref().unwrap_or("unknown"),
            "Redis does not run with the benchmarks' AOF settings (appendonly yes, appendfsync everysec)"
        );
    }
    let tag = format!("df{:06x}", rand::random::<u32>() & 0xff_ffff);
    let spec = JournalSpec {
        redis_url: target.redis_url.clone(),
        tag: tag.clone(),
        obligations: target.obligations,
        hop: None,
    };
    let threads = target.relay_threads.unwrap_or_else(relay_threads).max(1);
    let (relays, journals) = if let Some(publish) = target.two_nodes {
        if target.obligations != Obligations::Relay {
            anyhow::bail!("the durable floor runs on two nodes without further obligations only");
        }
        let node = |name| JournalSpec {
            hop: Some(HopSpec::of(&tag, name, publish)),
            ..spec.clone()
        };
        let (agents, on_a) = FloorServer::start_durable(threads, node('a')).await?;
        let (customers, on_b) = FloorServer::start_durable(threads, node('b')).await?;
        (Relays::Two { agents, customers }, vec![on_a, on_b])
    } else {
        let (server, journal) = FloorServer::start_durable(threads, spec).await?;
        (Relays::One(server), vec![journal])
    };
    let also: Vec<(&str, Watched)> = target
        .redis_pid
        .map(|pid| ("redis", Watched::Process(pid)))
        .into_iter()
        .collect();
    let label = match target.obligations {
        Obligations::Relay => match target.two_nodes {
            None => "durable floor",
            Some(HopPublish::Pipeline) => "durable floor, two nodes",
            Some(HopPublish::Script) => "durable floor, two nodes, publishing by script",
        },
        Obligations::Acks => "durable floor with acks",
        Obligations::Sequenced => "durable floor, sequenced",
    };
    let mut figures = load(relays, scenario, label, &also, show_progress).await?;
    let keys: Vec<String> = (0..scenario.customers)
        .map(|pair| stream_key(&tag, pair))
        .collect();
    // Delete even when the count failed: a run must not leave its streams behind.
    let stored = stream_lengths(&mut check, &keys).await;
    if !target.keep_streams {
        delete(&mut check, &keys).await?;
    }
    let stored = stored?;
    let journal = JournalFigures {
        appended: sum(&journals, |j| &j.appended),
        failed: sum(&journals, |j| &j.failed),
        pipelines: sum(&journals, |j| &j.pipelines),
        stored,
        streams: keys.len() as u64,
        deleted: !target.keep_streams,
        appendonly,
        appendfsync,
        tag,
    };
    if journal.failed > 0 {
        // In the figures' errors too, so that the durable floor's usual lines show it.
        figures
            .errors
            .insert("append_failed".into(), journal.failed);
    }
    if !journal.is_clean() {
        warn!(
            appended = journal.appended,
            failed = journal.failed,
            stored = journal.stored,
            "the durable floor lost frames or Redis holds other than what was appended"
        );
    }
    Ok(DurableFloor { figures, journal })
}

/// A counter summed over the nodes' journals.
fn sum(journals: &[Arc<Journal>], counter: impl Fn(&Journal) -> &AtomicU64) -> u64 {
    journals
        .iter()
        .map(|journal| counter(journal).load(Ordering::Relaxed))
        .sum()
}

/// `CONFIG GET name`, or `None` when Redis does not allow it (e.g. a managed Redis).
async fn config_get(conn: &mut MultiplexedConnection, name: &str) -> Option<String> {
    let answer: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await;
    match answer {
        Ok(pair) => pair.into_iter().nth(1),
        Err(err) => {
            debug!(cause = %err, name, "CONFIG GET failed");
            None
        }
    }
}

/// The summed `XLEN` of `keys` (a missing key counts 0).
pub async fn stream_lengths(
    conn: &mut MultiplexedConnection,
    keys: &[String],
) -> anyhow::Result<u64> {
    let mut total = 0;
    for chunk in keys.chunks(CLEANUP_CHUNK) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("XLEN").arg(key);
        }
        let lengths: Vec<u64> = pipe
            .query_async(conn)
            .await
            .context("XLEN of the run's streams")?;
        total += lengths.iter().sum::<u64>();
    }
    Ok(total)
}

/// Deletes `keys` (`UNLINK`: Redis frees them in the background).
pub async fn delete(conn: &mut MultiplexedConnection, keys: &[String]) -> anyhow::Result<()> {
    for chunk in keys.chunks(CLEANUP_CHUNK) {
        redis::cmd("UNLINK")
            .arg(chunk)
            .exec_async(conn)
            .await
            .context("UNLINK the run's streams")?;
    }
    Ok(())
}

/// A connection of the caller's own, e.g. for a test to read the streams.
pub async fn connect_redis(url: &str) -> anyhow::Result<MultiplexedConnection> {
    connect(url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_run_and_the_pair() {
        assert_eq!(stream_key("df1", 7), "floor:{df1-pair-7}:events");
        let figures = JournalFigures {
            appended: 10,
            stored: 10,
            ..JournalFigures::default()
        };
        assert!(figures.is_clean());
        assert!(!JournalFigures {
            failed: 1,
            ..figures.clone()
        }
        .is_clean());
        assert!(!JournalFigures {
            stored: 11,
            ..figures
        }
        .is_clean());
    }
}

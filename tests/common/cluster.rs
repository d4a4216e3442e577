//! A private Redis Cluster for tests: `redis-server --cluster-enabled yes` processes
//! with AOF (`appendfsync always`), each in a directory of its own under one temp dir,
//! joined by `redis-cli --cluster create`.
//!
//! Like [`RedisServer`](super::RedisServer) nothing here sleeps to synchronize: start-up
//! waits for each node's ready line, and the cluster's state (`cluster_state:ok`, who
//! serves which slots) is re-asked at a short interval until it holds or a deadline
//! passes, naming what was awaited and the nodes' output.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::Duration,
};

use redis::Value;

use super::{eventually, kill_and_reap, spawn_logged, wait_for_line, OutputLog, START_TIMEOUT};

/// How long the cluster may take to form, or to fail over after a master died
/// (`cluster-node-timeout` is 2 s; detection, election and the slot map's spread take
/// a few more).
pub const CLUSTER_WAIT: Duration = Duration::from_secs(30);

/// The cluster bus listens on the client port + 10,000.
const BUS_OFFSET: u16 = 10_000;

struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct RedisCluster {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
    log: OutputLog,
}

impl RedisCluster {
    /// `masters` masters (at least 3, as `redis-cli --cluster create` demands), each
    /// with `replicas_per_master` replicas; returns once every node says
    /// `cluster_state:ok`.
    pub async fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let log = OutputLog::default();
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            _dir: dir,
            log,
        };
        let count = masters * (1 + replicas_per_master);
        while cluster.nodes.len() < count {
            let port = free_cluster_port(&cluster.nodes);
            let node_dir = cluster._dir.path().join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            // A port taken between the probe and the bind: the node fails; try another.
            if let Some(child) = spawn_node(port, &node_dir, &cluster.log).await {
                cluster.nodes.push(Node {
                    port,
                    dir: node_dir,
                    child: Some(child),
                });
            }
        }
        cluster.create(replicas_per_master).await;
        cluster.wait_ok("the new cluster").await;
        cluster
    }

    async fn create(&self, replicas_per_master: usize) {
        let mut command = tokio::process::Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        command
            .arg("--cluster-replicas")
            .arg(replicas_per_master.to_string())
            .arg("--cluster-yes")
            .kill_on_drop(true);
        let output = tokio::time::timeout(CLUSTER_WAIT, command.output())
            .await
            .unwrap_or_else(|_| panic!("redis-cli --cluster create: no end in {CLUSTER_WAIT:?}"))
            .expect("run redis-cli");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}\n{}\nnodes:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log.tail(40)
        );
    }

    /// Every seed, comma-separated: `redis://127.0.0.1:P1,redis://127.0.0.1:P2,…`.
    pub fn url_list(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URL of one node (the first), for a hub given a single seed.
    pub fn node_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].port)
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.port)
            .collect()
    }

    /// The ports of the masters that serve slots now, as a live node sees it.
    pub async fn master_ports(&self) -> Vec<u16> {
        let slots = self.slots().await;
        let mut ports: Vec<u16> = slots.iter().map(|range| range.master).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The port of the master serving `key`'s slot now.
    pub async fn master_for_key(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let slot: i64 = query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .unwrap_or_else(|err| panic!("CLUSTER KEYSLOT on {port}: {err}"));
        let slot = u16::try_from(slot).expect("slot fits u16");
        self.slots()
            .await
            .iter()
            .find(|range| (range.start..=range.end).contains(&slot))
            .map(|range| range.master)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// SIGKILL of one node: no chance to write anything more.
    pub fn kill(&mut self, port: u16) {
        let node = self.node_mut(port);
        kill_and_reap(&mut node.child);
    }

    /// Starts a killed node again on its port, directory and cluster config file; it
    /// rejoins the cluster (as a replica when its slots moved meanwhile).
    pub async fn restart(&mut self, port: u16) {
        self.kill(port);
        let dir = self.node_mut(port).dir.clone();
        for _attempt in 0..50 {
            if let Some(child) = spawn_node(port, &dir, &self.log).await {
                self.node_mut(port).child = Some(child);
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!(
            "cluster node {port} did not restart; output:\n{}",
            self.log.tail(40)
        );
    }

    /// Waits until no slot is served by `killed_port` any more, every slot is served,
    /// and every live node says `cluster_state:ok`.
    pub async fn wait_failover(&self, killed_port: u16) {
        let what = format!("a failover away from {killed_port}");
        let live = self.live_ports();
        eventually(&what, CLUSTER_WAIT, || {
            let live = live.clone();
            async move {
                for port in &live {
                    let ranges = slot_ranges(*port).await?;
                    let covered: u32 = ranges
                        .iter()
                        .map(|r| u32::from(r.end) - u32::from(r.start) + 1)
                        .sum();
                    if covered != 16_384 || ranges.iter().any(|r| r.master == killed_port) {
                        return None;
                    }
                }
                all_ok(&live).await.then_some(())
            }
        })
        .await;
    }

    /// Waits until every live node says `cluster_state:ok` and every replica has a
    /// live link to its master (a replica that never synced cannot take over).
    pub async fn wait_ok(&self, what: &str) {
        let live = self.live_ports();
        let what = format!("cluster_state:ok and synced replicas on every node of {what}");
        eventually(&what, CLUSTER_WAIT, || {
            let live = live.clone();
            async move { (all_ok(&live).await && all_synced(&live).await).then_some(()) }
        })
        .await;
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.log.tail(n)
    }

    async fn slots(&self) -> Vec<SlotRange> {
        for port in self.live_ports() {
            if let Some(ranges) = slot_ranges(port).await {
                return ranges;
            }
        }
        panic!("no live node answers CLUSTER SLOTS");
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            kill_and_reap(&mut node.child);
        }
    }
}

/// A free port below 55,000 whose bus port (+10,000) is free too, not already used by
/// one of `taken`.
fn free_cluster_port(taken: &[Node]) -> u16 {
    let bindable = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    for _attempt in 0..10_000 {
        let port = super::free_port();
        let in_use = taken
            .iter()
            .any(|n| n.port == port || n.port + BUS_OFFSET == port || port + BUS_OFFSET == n.port);
        if port < 55_000 && !in_use && bindable(port + BUS_OFFSET) {
            return port;
        }
    }
    // The kernel's ephemeral range sits mostly above 55,000 on some systems: pick from
    // below it by hand.
    (20_000..55_000)
        .find(|&port| {
            !taken
                .iter()
                .any(|n| n.port == port || n.port + BUS_OFFSET == port)
                && bindable(port)
                && bindable(port + BUS_OFFSET)
        })
        .expect("a free port pair for a cluster node")
}

async fn spawn_node(port: u16, dir: &Path, log: &OutputLog) -> Option<Child> {
    let mut command = Command::new("redis-server");
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &format!("nodes-{port}.conf"),
        "--cluster-node-timeout",
        "2000",
        // A replica's first sync starts at once (the default waits 5 s for more
        // replicas); a replica that never synced cannot take over.
        "--repl-diskless-sync-delay",
        "0",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir.to_str().expect("utf-8 temp dir"),
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]);
    let (child, mut lines) = spawn_logged(command, log).expect("spawn redis-server");
    let ready = wait_for_line(&mut lines, START_TIMEOUT, |l| {
        l.contains("Ready to accept connections")
    })
    .await;
    let mut child = Some(child);
    if ready.is_some() && super::redis_ping(port).await {
        return child.take();
    }
    kill_and_reap(&mut child);
    None
}

/// One range of `CLUSTER SLOTS`: its slots and the port of the master serving them.
struct SlotRange {
    start: u16,
    end: u16,
    master: u16,
}

/// `CLUSTER SLOTS` as one node sees it; `None` when it does not answer.
async fn slot_ranges(port: u16) -> Option<Vec<SlotRange>> {
    let reply: Value = query(port, redis::cmd("CLUSTER").arg("SLOTS")).await.ok()?;
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges
        .iter()
        .map(|range| {
            let Value::Array(parts) = range else {
                return None;
            };
            let Value::Array(master) = parts.get(2)? else {
                return None;
            };
            Some(SlotRange {
                start: redis::from_redis_value_ref(parts.first()?).ok()?,
                end: redis::from_redis_value_ref(parts.get(1)?).ok()?,
                master: redis::from_redis_value_ref(master.get(1)?).ok()?,
            })
        })
        .collect()
}

/// Whether every node in `ports` answers `CLUSTER INFO` with `cluster_state:ok`.
async fn all_ok(ports: &[u16]) -> bool {
    for port in ports {
        let info: Result<String, _> = query(*port, redis::cmd("CLUSTER").arg("INFO")).await;
        if !info.is_ok_and(|info| info.lines().any(|l| l.trim() == "cluster_state:ok")) {
            return false;
        }
    }
    true
}

/// Whether every replica in `ports` has its link to its master up.
async fn all_synced(ports: &[u16]) -> bool {
    for port in ports {
        let info: Result<String, _> = query(*port, redis::cmd("INFO").arg("replication")).await;
        let Ok(info) = info else { return false };
        let replica = info.lines().any(|l| l.trim() == "role:slave");
        if replica && !info.lines().any(|l| l.trim() == "master_link_status:up") {
            return false;
        }
    }
    true
}

/// One command to one node, on a connection of its own, bounded by a short timeout.
pub async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    let attempt = async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        cmd.query_async::<T>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer from {port} in 2s")),
    }
}

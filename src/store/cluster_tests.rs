//! Tests of the topology helpers the rest of the crate calls (`pubsub_client_for`,
//! `wait_replicated`) on real `redis-server` processes: a one-master cluster with one
//! replica, built by hand (`CLUSTER ADDSLOTSRANGE`, `MEET`, `REPLICATE`), and a lone
//! server. The full cluster harness (`redis-cli --cluster create`, failover) is in
//! `tests/common/cluster.rs`; these helpers are crate-private, so they are tested here.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{Store, StoreError};

/// A `redis-server` killed on drop.
pub(crate) struct Node {
    pub(crate) port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port below 55,000 whose cluster bus port (+10,000) is free too.
fn free_port_pair() -> u16 {
    let bindable = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    (0..1000)
        .filter_map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .ok()
        })
        .map(|addr| addr.port())
        .find(|&port| port < 55_000 && bindable(port + 10_000))
        .or_else(|| (30_000..55_000).find(|&p| bindable(p) && bindable(p + 10_000)))
        .expect("a free port pair")
}

/// A `redis-server` on a free port (`cluster`: with clustering enabled, no slots yet).
pub(crate) async fn start(cluster: bool) -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port_pair();
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if cluster {
        command.args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]);
    }
    let child = command.spawn().expect("spawn redis-server");
    let node = Node {
        port,
        child,
        _dir: dir,
    };
    until("redis-server answers PING", || async {
        query::<String>(port, &redis::cmd("PING")).await.ok()
    })
    .await;
    node
}

async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}

/// Re-asks `check` every 50 ms until it returns `Some`, failing after 20 s.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // A polling interval: the state is only seen by asking.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn port_of(client: &redis::Client) -> Option<u16> {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(_, port) => Some(*port),
        _ => None,
    }
}

/// A one-node cluster serving every slot (enough to catch a cross-slot script or
/// pipeline, which Redis refuses even on one node).
pub(crate) async fn lone_master() -> Node {
    let master = start(true).await;
    let _: () = query(
        master.port,
        redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(0)
            .arg(16_383),
    )
    .await
    .expect("ADDSLOTSRANGE");
    until("cluster_state:ok", || async {
        let state: String = query(master.port, redis::cmd("CLUSTER").arg("INFO"))
            .await
            .ok()?;
        state.contains("cluster_state:ok").then_some(())
    })
    .await;
    master
}

/// One master serving every slot, and its replica.
async fn master_with_replica() -> (Node, Node) {
    let master = lone_master().await;
    let replica = start(true).await;
    let id: String = query(master.port, redis::cmd("CLUSTER").arg("MYID"))
        .await
        .expect("MYID");
    let _: () = query(
        replica.port,
        redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(master.port),
    )
    .await
    .expect("MEET");
    // Knowing the master's id is not enough: a replica that has not yet heard which
    // slots its master serves claims none of them when it takes over.
    until("the replica to know the master and its slots", || async {
        let nodes: String = query(replica.port, redis::cmd("CLUSTER").arg("NODES"))
            .await
            .ok()?;
        nodes
            .lines()
            .any(|line| line.starts_with(id.as_str()) && line.ends_with(" 0-16383"))
            .then_some(())
    })
    .await;
    let _: () = query(
        replica.port,
        redis::cmd("CLUSTER").arg("REPLICATE").arg(&id),
    )
    .await
    .expect("REPLICATE");
    until("a synced replica and cluster_state:ok", || async {
        let replication: String = query(replica.port, redis::cmd("INFO").arg("replication"))
            .await
            .ok()?;
        let state: String = query(master.port, redis::cmd("CLUSTER").arg("INFO"))
            .await
            .ok()?;
        (replication.contains("master_link_status:up") && state.contains("cluster_state:ok"))
            .then_some(())
    })
    .await;
    (master, replica)
}

#[tokio::test]
async fn on_a_cluster_the_helpers_ask_the_slots_master() {
    let (master, replica) = master_with_replica().await;
    let url = format!("redis://127.0.0.1:{}", master.port);
    let store = Store::connect(&url, Duration::from_millis(1_000))
        .await
        .expect("connect to the cluster through one seed");
    assert!(store.is_cluster(), "a single seed URL of a cluster node");

    let client = store
        .pubsub_client_for("sb:{c_1}:live")
        .await
        .expect("the channel's master");
    assert_eq!(port_of(&client), Some(master.port));

    store.next_id("sb:{c_1}:n").await.expect("a write");
    store
        .wait_replicated("sb:{c_1}:n")
        .await
        .expect("the replica acknowledges");

    // The replica takes over (no election needed): the helpers follow the new topology.
    let _: () = query(
        replica.port,
        redis::cmd("CLUSTER").arg("FAILOVER").arg("TAKEOVER"),
    )
    .await
    .expect("FAILOVER TAKEOVER");
    until("pubsub_client_for to name the new master", || async {
        let client = store.pubsub_client_for("sb:{c_1}:live").await.ok()?;
        (port_of(&client) == Some(replica.port)).then_some(())
    })
    .await;
    until(
        "WAIT on the new master, once the old one replicates it",
        || async {
            store.next_id("sb:{c_1}:n").await.ok()?;
            store.wait_replicated("sb:{c_1}:n").await.ok()
        },
    )
    .await;

    drop(master);
    store.next_id("sb:{c_1}:n").await.expect("a write");
    let waited = store.wait_replicated("sb:{c_1}:n").await;
    assert!(
        matches!(waited, Err(StoreError::Unavailable(_))),
        "no replica left: {waited:?}"
    );
}

#[tokio::test]
async fn on_one_server_the_helpers_use_it() {
    let server = start(false).await;
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let store = Store::connect(&url, Duration::from_millis(500))
        .await
        .expect("connect");
    assert!(!store.is_cluster());
    let client = store
        .pubsub_client_for("sb:{c_1}:live")
        .await
        .expect("client");
    assert_eq!(port_of(&client), Some(server.port));
    let waited = store.wait_replicated("sb:{c_1}:n").await;
    assert!(
        matches!(waited, Err(StoreError::Unavailable(_))),
        "no replica: {waited:?}"
    );
}

//! The kind of Redis the hub talks to: one server, or a Redis Cluster. Owns connecting
//! (telling the two apart from `--redis-url`), the one connection type every store call
//! uses ([`RedisConn`], a `ConnectionLike` either way), and the topology questions the
//! live feed and the acknowledgement path ask: which master serves a slot, and `WAIT`
//! on the master that took a key's writes.
//!
//! Must not know what is stored: key layout and scripts live in the other store modules.

use std::time::Duration;

use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
    Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture, Value,
};

use super::{StoreError, StoreResult};

/// One multiplexed connection to a single Redis, or to every node of a cluster (the
/// cluster client routes each command by its key's slot and follows MOVED/ASK). Cheap
/// to clone: clones share the connection.
#[derive(Clone)]
pub(crate) enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisConn {
    /// Sends `cmd` to the master serving `key`'s slot (on one server: to it), over the
    /// connection that carried the earlier writes to that master.
    pub(crate) async fn on_master_of(&mut self, key: &str, cmd: Cmd) -> redis::RedisResult<Value> {
        match self {
            RedisConn::Single(conn) => cmd.query_async(conn).await,
            RedisConn::Cluster(conn) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                conn.route_command(cmd, routing).await
            }
        }
    }

    /// `CLUSTER SLOTS`, asked of the master the client knows for `key`'s slot; when
    /// that one does not answer within `patience` (it may be the master that died),
    /// of any node.
    async fn cluster_slots(&mut self, key: &str, patience: Duration) -> redis::RedisResult<Value> {
        let ask = || redis::cmd("CLUSTER").arg("SLOTS").clone();
        let first = tokio::time::timeout(patience, self.on_master_of(key, ask())).await;
        let err = match first {
            Ok(Ok(slots)) => return Ok(slots),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer in {patience:?}"),
        };
        tracing::debug!(cause = %err, "CLUSTER SLOTS on the slot's master failed: asking any node");
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        match self {
            RedisConn::Cluster(conn) => conn.route_command(ask(), routing).await,
            RedisConn::Single(conn) => ask().query_async(conn).await,
        }
    }
}

/// What connecting found: the two connections (writes and small reads; large reads) and
/// how to reach a single node for pub/sub.
pub(crate) struct Connected {
    pub conn: RedisConn,
    pub bulk: RedisConn,
    pub topology: Topology,
}

/// How to open a plain client to the node that serves a channel.
#[derive(Clone)]
pub(crate) enum Topology {
    /// One server: every channel is on it.
    Single(redis::Client),
    /// A cluster: the seed's settings (credentials, TLS, database) with the address of
    /// whichever master the cluster names at the time of asking.
    Cluster(ConnectionInfo),
}

impl Topology {
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Topology::Cluster(_))
    }
}

/// Connects to `url`: a comma-separated list is a cluster's seed nodes; a single URL is
/// asked `INFO cluster` and, when clustering is enabled there, used as the only seed.
/// Each of the two steps (asking, connecting) is bounded by `timeout`.
pub(crate) async fn connect(url: &str, timeout: Duration) -> StoreResult<Connected> {
    let seeds: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let bad =
        |err: redis::RedisError| StoreError::Unavailable(format!("bad redis url {url:?}: {err}"));
    let infos = seeds
        .iter()
        .map(|seed| seed.into_connection_info())
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let [first, ..] = infos.as_slice() else {
        return Err(StoreError::Unavailable(format!(
            "bad redis url {url:?}: empty"
        )));
    };
    let first = first.clone();
    let connect = async {
        if infos.len() > 1 || cluster_enabled(first.clone(), timeout).await? {
            connect_cluster(infos, timeout).await
        } else {
            connect_single(first, timeout).await
        }
    };
    let limit = timeout.saturating_mul(2);
    tokio::time::timeout(limit, connect)
        .await
        .map_err(|_| StoreError::Unavailable(format!("no answer from {url} in {limit:?}")))?
        .map_err(StoreError::from)
}

/// Asks one server whether it runs in cluster mode (`INFO cluster`).
async fn cluster_enabled(info: ConnectionInfo, timeout: Duration) -> redis::RedisResult<bool> {
    let client = redis::Client::open(info)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(&mut conn)
        .await?;
    Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1"))
}

async fn connect_single(info: ConnectionInfo, timeout: Duration) -> redis::RedisResult<Connected> {
    let client = redis::Client::open(info)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    let conn = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
    let bulk = ConnectionManager::new_with_config(client.clone(), config).await?;
    Ok(Connected {
        conn: RedisConn::Single(conn),
        bulk: RedisConn::Single(bulk),
        topology: Topology::Single(client),
    })
}

/// The cluster client: per-attempt connection and response timeouts of `timeout`, and
/// the whole request (retries, reconnects, redirections included) bounded by it too, so
/// a dead master answers `unavailable` within the store timeout; a few quick retries
/// ride out MOVED/ASK and a failover's refreshed slot map.
async fn connect_cluster(
    seeds: Vec<ConnectionInfo>,
    timeout: Duration,
) -> redis::RedisResult<Connected> {
    let Some(seed) = seeds.first().cloned() else {
        return Err((redis::ErrorKind::InvalidClientConfig, "no seed node").into());
    };
    let client = ClusterClientBuilder::new(seeds)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .overall_response_timeout(Some(timeout))
        .retries(3)
        .min_retry_wait(20)
        .max_retry_wait(250)
        .build()?;
    let conn = client.get_async_connection().await?;
    let bulk = client.get_async_connection().await?;
    Ok(Connected {
        conn: RedisConn::Cluster(conn),
        bulk: RedisConn::Cluster(bulk),
        topology: Topology::Cluster(seed),
    })
}

/// The slot of a key or channel: CRC16 (XMODEM) of the name, or of its hash tag (the
/// part between the first `{` and the next `}`, when not empty), modulo 16384 — the
/// rule Redis Cluster applies to keys and to `SPUBLISH` channels alike. (The crate's
/// `Slot` keeps its number private, so it is computed here; a test checks both agree.)
pub(crate) fn slot_of(name: &str) -> u16 {
    let bytes = name.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &bytes[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16_xmodem(tagged.unwrap_or(bytes)) % 16384
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    })
}

/// The address of the master serving `slot` in a `CLUSTER SLOTS` reply.
pub(crate) fn master_of(slots: &Value, slot: u16) -> Option<(String, u16)> {
    let Value::Array(ranges) = slots else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let Value::Array(parts) = range else {
            return None;
        };
        let start: u16 = redis::from_redis_value_ref(parts.first()?).ok()?;
        let end: u16 = redis::from_redis_value_ref(parts.get(1)?).ok()?;
        if !(start..=end).contains(&slot) {
            return None;
        }
        let Value::Array(node) = parts.get(2)? else {
            return None;
        };
        let host: String = redis::from_redis_value_ref(node.first()?).ok()?;
        let port: u16 = redis::from_redis_value_ref(node.get(1)?).ok()?;
        Some((host, port))
    })
}

/// The seed's settings with another node's address (TLS kept when the seed used it).
pub(crate) fn node_info(seed: &ConnectionInfo, host: String, port: u16) -> ConnectionInfo {
    let addr = match seed.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    };
    seed.clone().set_addr(addr)
}

impl super::Store {
    /// Whether the store runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.topology.is_cluster()
    }

    /// A plain client for the node that serves `channel`'s slot (hash-tag rules, as for
    /// keys), for a pub/sub connection of its own. One server: that server. A cluster:
    /// the master `CLUSTER SLOTS` names now — asked on every call, so after a failover
    /// it is the promoted replica. The question goes to the master the cluster client
    /// knows for that slot and, should that one fail (it may be the one that died), to
    /// any node.
    // Called by the live feed (cross-node fan-out), which is being written alongside.
    #[allow(dead_code)]
    pub(crate) async fn pubsub_client_for(&self, channel: &str) -> StoreResult<redis::Client> {
        let seed = match &self.topology {
            Topology::Single(client) => return Ok(client.clone()),
            Topology::Cluster(seed) => seed,
        };
        let slot = slot_of(channel);
        let mut conn = self.conn();
        let key = channel.to_string();
        let patience = self.timeout / 2;
        let asked = self
            .run("cluster_slots", async move {
                conn.cluster_slots(&key, patience).await
            })
            .await?;
        let (host, port) = master_of(&asked, slot).ok_or_else(|| {
            StoreError::Unavailable(format!("no master serves slot {slot} ({channel})"))
        })?;
        redis::Client::open(node_info(seed, host, port)).map_err(StoreError::from)
    }

    /// Waits until at least one replica has every write this hub sent so far to the
    /// master of `key`'s slot: `WAIT 1 <ms>` on the multiplexed connection that carried
    /// them (a cluster: routed to that master). `Unavailable` when no replica
    /// acknowledged in time — the write itself may still be on the master. `<ms>` is
    /// nine tenths of the store timeout, so Redis answers (with the count) before the
    /// connection's own response timeout, also the store timeout, gives up on it.
    // Called by the conversation task before an ack when `limits.replicated_acks` is on.
    pub(crate) async fn wait_replicated(&self, key: &str) -> StoreResult<()> {
        let wait_ms = wait_ms(self.timeout);
        let mut conn = self.conn();
        let key_owned = key.to_string();
        let acked: Value = self
            .run("wait_replicated", async move {
                let mut cmd = redis::cmd("WAIT");
                cmd.arg(1).arg(wait_ms);
                conn.on_master_of(&key_owned, cmd).await
            })
            .await?;
        let acked: i64 = redis::from_redis_value_ref(&acked)
            .map_err(|err| StoreError::Corrupt(format!("WAIT answered {acked:?}: {err}")))?;
        if acked >= 1 {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "no replica acknowledged the writes to {key} within {wait_ms} ms"
            )))
        }
    }
}

/// The `WAIT` timeout for a store timeout: nine tenths of it, at least 1 ms (0 would
/// block forever).
fn wait_ms(timeout: Duration) -> u64 {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    (ms / 10 * 9).max(1)
}

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    #[test]
    fn slots_agree_with_the_redis_crate() {
        for name in [
            "sb:{c_9f2}:events",
            "sb:{open}:conversations",
            "sb:{tickets}:log",
            "foo",
            "123456789",
            "{}empty-tag",
            "a{b}c{d}",
            "no{close",
            "sb:{c_0}:live",
        ] {
            assert_eq!(
                Slot::new(super::slot_of(name)),
                Some(Slot::for_key(name)),
                "{name}"
            );
        }
        // The CRC16/XMODEM check value.
        assert_eq!(super::slot_of("123456789"), 0x31C3);
    }
}

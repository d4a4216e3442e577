//! Admission: who may hold a connection, and how many. Every cap is counted here, every
//! refusal is counted in `admission_refused_total{reason}` and logged at most once per
//! interval (an attack must not turn into a log flood). This module decides; it does
//! not read frames or know what a session is.
//!
//! Two kinds of connection are counted apart, so health checks and pages keep working
//! while chats fill the WebSocket cap:
//! - **plain HTTP** connections (pages, REST, `/healthz`, `/metrics`, handshakes not yet
//!   upgraded): at most `max_http_connections`, and `max_connections_per_ip` from one TCP
//!   peer (trusted proxies excepted). Counted from `accept` until the connection ends or
//!   is upgraded; refused at accept with a canned 503.
//! - **WebSocket** connections: at most `max_connections`, `max_connections_per_ip` from
//!   one client address (behind a trusted proxy: the forwarded one) and `max_upgrading`
//!   still without their `hello`. Refused with 503 before the upgrade.
//!
//! Both defaults come from the file-descriptor limit, which [`listen::raise_fd_limit`]
//! raises to its hard limit at start: of the descriptors left after a spare for Redis,
//! the webhook client and files, an eighth (64 to 16,384) goes to plain HTTP and the
//! rest to WebSockets, so the two caps together never run the process out of
//! descriptors; if they still run out (other processes, a low system-wide limit), the
//! accept loop backs off instead of spinning.
//!
//! - `client` — the client's address (forwarded headers) and the `Origin` checks;
//! - `listen` — the accept loop: header-read timeout, the HTTP caps, descriptor limit.

pub mod client;
pub mod listen;

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use dashmap::DashMap;

use crate::{config::Limits, metrics::Metrics};

/// Why a connection, an upgrade or a request was refused: the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_http_connections` plain HTTP connections are open.
    HttpTotal,
    /// The TCP peer holds `max_connections_per_ip` plain HTTP connections.
    HttpPerIp,
    /// `max_connections` WebSocket connections are open.
    WsTotal,
    /// The client address holds `max_connections_per_ip` WebSocket connections.
    WsPerIp,
    /// `max_upgrading` WebSocket connections are waiting for their `hello`.
    Upgrading,
    /// The `Origin` is not allowed for the endpoint.
    Origin,
    /// No whole request header within `header_read_timeout_ms`: half-sent, or an idle
    /// keep-alive connection (browsers keep some; counted, not logged).
    HeaderTimeout,
    /// `accept` failed for want of descriptors or memory.
    AcceptError,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::HttpTotal => "http_total",
            Refusal::HttpPerIp => "http_per_ip",
            Refusal::WsTotal => "ws_total",
            Refusal::WsPerIp => "ws_per_ip",
            Refusal::Upgrading => "upgrading",
            Refusal::Origin => "origin",
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::AcceptError => "accept_error",
        }
    }

    /// What the refused client is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::HttpTotal | Refusal::WsTotal => "the hub is at its connection limit",
            Refusal::HttpPerIp | Refusal::WsPerIp => "too many connections from your address",
            Refusal::Upgrading => "too many connections are still starting",
            Refusal::Origin => "origin not allowed",
            Refusal::HeaderTimeout => "request header too slow",
            Refusal::AcceptError => "out of resources",
        }
    }

    const ALL: [Refusal; 8] = [
        Refusal::HttpTotal,
        Refusal::HttpPerIp,
        Refusal::WsTotal,
        Refusal::WsPerIp,
        Refusal::Upgrading,
        Refusal::Origin,
        Refusal::HeaderTimeout,
        Refusal::AcceptError,
    ];
}

/// The caps in force, resolved from the config and the descriptor limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub ws_total: usize,
    pub http_total: usize,
    pub per_ip: usize,
    pub upgrading: usize,
}

/// Descriptors kept out of both caps: Redis connections, the webhook client, the
/// listener, epoll, log files.
const SPARE_FDS: u64 = 128;

impl Caps {
    /// `0` in the config means "size from `fd_limit`" (see the module head).
    pub fn resolve(limits: &Limits, fd_limit: u64) -> Caps {
        let usable = usize::try_from(fd_limit.saturating_sub(SPARE_FDS))
            .unwrap_or(usize::MAX)
            .max(128);
        let http_total = match limits.max_http_connections {
            0 => (usable / 8).clamp(64, 16_384),
            n => n,
        };
        let ws_total = match limits.max_connections {
            0 => usable.saturating_sub(http_total).max(64),
            n => n,
        };
        Caps {
            ws_total,
            http_total,
            per_ip: limits.max_connections_per_ip,
            upgrading: limits.max_upgrading,
        }
    }
}

/// Logs at most once per interval; counts what it held back.
pub struct LogEvery {
    interval: Duration,
    start: Instant,
    next_ms: AtomicU64,
    held: AtomicU64,
}

impl LogEvery {
    pub fn new(interval: Duration) -> Self {
        LogEvery {
            interval,
            start: Instant::now(),
            next_ms: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this occurrence should be logged (`n` were held back since the
    /// last one logged), `None` when it is held back.
    pub fn ready(&self) -> Option<u64> {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let step = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(step),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.held.swap(0, Ordering::Relaxed));
        }
        self.held.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// The node's admission state: open counts by kind and by address.
pub struct Admission {
    caps: Caps,
    trusted: Vec<crate::config::IpNet>,
    ws: AtomicUsize,
    http: AtomicUsize,
    upgrading: AtomicUsize,
    ws_per_ip: DashMap<IpAddr, usize>,
    http_per_ip: DashMap<IpAddr, usize>,
    metrics: Metrics,
    refusal_log: LogEvery,
}

impl Admission {
    pub fn new(caps: Caps, trusted: &[String], metrics: Metrics) -> Arc<Admission> {
        for reason in Refusal::ALL {
            metrics
                .admission_refused
                .with_label_values(&[reason.label()])
                .reset();
        }
        Arc::new(Admission {
            caps,
            // Validated with the config: an entry that does not parse cannot be here.
            trusted: trusted
                .iter()
                .filter_map(|t| crate::config::IpNet::parse(t))
                .collect(),
            ws: AtomicUsize::new(0),
            http: AtomicUsize::new(0),
            upgrading: AtomicUsize::new(0),
            ws_per_ip: DashMap::new(),
            http_per_ip: DashMap::new(),
            metrics,
            refusal_log: LogEvery::new(Duration::from_secs(10)),
        })
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(peer))
    }

    pub(crate) fn trusted(&self) -> &[crate::config::IpNet] {
        &self.trusted
    }

    /// Counts a refusal and logs it (at most once per interval).
    pub fn refused(&self, reason: Refusal, client: Option<IpAddr>) {
        self.metrics
            .admission_refused
            .with_label_values(&[reason.label()])
            .inc();
        if reason == Refusal::HeaderTimeout {
            // Idle keep-alive connections of well-behaved browsers end this way too.
            tracing::debug!(client = ?client, "closing a connection without a request head in time");
            return;
        }
        if let Some(held_back) = self.refusal_log.ready() {
            tracing::warn!(
                reason = reason.label(),
                client = ?client,
                held_back,
                "refusing connections (one line per 10 s; see admission_refused_total)"
            );
        }
    }

    /// A plain HTTP connection from TCP peer `peer`, counted until the slot is dropped.
    pub fn admit_http(self: &Arc<Self>, peer: IpAddr) -> Result<HttpSlot, Refusal> {
        if self.http.fetch_add(1, Ordering::AcqRel) >= self.caps.http_total {
            self.http.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::HttpTotal);
        }
        let per_ip = !self.is_trusted_proxy(peer);
        if per_ip && !take(&self.http_per_ip, peer, self.caps.per_ip) {
            self.http.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::HttpPerIp);
        }
        self.metrics.http_connections.inc();
        Ok(HttpSlot {
            gate: Arc::clone(self),
            peer: per_ip.then_some(peer),
        })
    }

    /// A WebSocket upgrade from `client`, counted as upgrading until
    /// [`WsPermit::hello_done`] and as a connection until the permit is dropped.
    pub fn admit_ws(self: &Arc<Self>, client: IpAddr) -> Result<WsPermit, Refusal> {
        if self.upgrading.fetch_add(1, Ordering::AcqRel) >= self.caps.upgrading {
            self.upgrading.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Upgrading);
        }
        if self.ws.fetch_add(1, Ordering::AcqRel) >= self.caps.ws_total {
            self.ws.fetch_sub(1, Ordering::AcqRel);
            self.upgrading.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::WsTotal);
        }
        if !take(&self.ws_per_ip, client, self.caps.per_ip) {
            self.ws.fetch_sub(1, Ordering::AcqRel);
            self.upgrading.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::WsPerIp);
        }
        self.metrics.upgrading.inc();
        Ok(WsPermit {
            gate: Arc::clone(self),
            client,
            upgrading: true,
        })
    }
}

/// Takes one of `cap` places of `ip` in `map`; false when all are taken.
fn take(map: &DashMap<IpAddr, usize>, ip: IpAddr, cap: usize) -> bool {
    let mut count = map.entry(ip).or_insert(0);
    if *count >= cap {
        return false;
    }
    *count += 1;
    true
}

fn give_back(map: &DashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(mut count) = map.get_mut(&ip) {
        *count = count.saturating_sub(1);
    }
    map.remove_if(&ip, |_, count| *count == 0);
}

/// A plain HTTP connection's place; given back on drop.
pub struct HttpSlot {
    gate: Arc<Admission>,
    /// `None` for a trusted proxy (not counted by address).
    peer: Option<IpAddr>,
}

impl Drop for HttpSlot {
    fn drop(&mut self) {
        self.gate.http.fetch_sub(1, Ordering::AcqRel);
        self.gate.metrics.http_connections.dec();
        if let Some(peer) = self.peer {
            give_back(&self.gate.http_per_ip, peer);
        }
    }
}

/// A WebSocket connection's place; given back on drop.
pub struct WsPermit {
    gate: Arc<Admission>,
    client: IpAddr,
    upgrading: bool,
}

impl WsPermit {
    /// The connection said `hello` (or ended): it no longer counts as upgrading.
    pub fn hello_done(&mut self) {
        if std::mem::take(&mut self.upgrading) {
            self.gate.upgrading.fetch_sub(1, Ordering::AcqRel);
            self.gate.metrics.upgrading.dec();
        }
    }
}

impl Drop for WsPermit {
    fn drop(&mut self) {
        self.hello_done();
        self.gate.ws.fetch_sub(1, Ordering::AcqRel);
        give_back(&self.gate.ws_per_ip, self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(caps: Caps) -> Arc<Admission> {
        Admission::new(caps, &["10.0.0.0/8".to_string()], Metrics::new())
    }

    const CAPS: Caps = Caps {
        ws_total: 3,
        http_total: 3,
        per_ip: 2,
        upgrading: 2,
    };

    #[test]
    fn ws_caps_hold_and_places_come_back() {
        let gate = gate(CAPS);
        let a: IpAddr = "127.0.0.2".parse().expect("ip");
        let b: IpAddr = "127.0.0.3".parse().expect("ip");
        let mut first = gate.admit_ws(a).expect("first");
        first.hello_done();
        let mut second = gate.admit_ws(a).expect("second");
        second.hello_done();
        assert_eq!(gate.admit_ws(a).err(), Some(Refusal::WsPerIp));
        let upgrading = gate.admit_ws(b).expect("third, from b");
        assert_eq!(gate.admit_ws(b).err(), Some(Refusal::WsTotal));
        drop(first);
        let again = gate.admit_ws(b).expect("a place came back");
        assert_eq!(
            gate.admit_ws(b).err(),
            Some(Refusal::Upgrading),
            "two still without hello"
        );
        drop((upgrading, again, second));
        assert!(gate.ws_per_ip.is_empty(), "no entry left behind");
        assert_eq!(gate.ws.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn http_per_ip_skips_trusted_proxies() {
        let gate = gate(CAPS);
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let slots: Vec<_> = (0..3)
            .map(|_| {
                gate.admit_http(proxy)
                    .expect("proxy not capped per address")
            })
            .collect();
        assert_eq!(gate.admit_http(proxy).err(), Some(Refusal::HttpTotal));
        drop(slots);
        let c: IpAddr = "127.0.0.9".parse().expect("ip");
        let _kept = (gate.admit_http(c), gate.admit_http(c));
        assert_eq!(gate.admit_http(c).err(), Some(Refusal::HttpPerIp));
    }

    #[test]
    fn caps_are_sized_from_the_descriptor_limit() {
        let limits = Limits::default();
        let caps = Caps::resolve(&limits, 1_048_576);
        assert_eq!(caps.http_total, 16_384);
        assert_eq!(caps.ws_total + caps.http_total, 1_048_576 - 128);
        let small = Caps::resolve(&limits, 1024);
        assert_eq!((small.http_total, small.ws_total), (112, 784));
    }

    #[test]
    fn log_every_holds_back_within_the_interval() {
        let log = LogEvery::new(Duration::from_secs(3600));
        assert_eq!(log.ready(), Some(0));
        assert_eq!(log.ready(), None);
        assert_eq!(log.ready(), None);
    }
}

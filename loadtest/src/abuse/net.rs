//! Where the suite's traffic comes from and goes to: the hub's loopback address, the
//! legitimate clients' local address and the attackers' (`127.0.0.2`, `127.0.0.3`, …,
//! never the legitimate one), sockets bound to one of them before they connect, and
//! short names for how a connection attempt or a read ended. It sends nothing itself.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use anyhow::{bail, Context};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite;

use crate::ws::{connect_over, Stream};

/// The hub's socket address from its base URL; only loopback hubs are accepted, as the
/// suite must never flood anything else.
pub fn hub_addr(base: &str) -> anyhow::Result<SocketAddr> {
    let rest = base.trim_end_matches('/').strip_prefix("http://").context(
        "--hub must be http://127.x.x.x:PORT (the abuse suite speaks plain HTTP to loopback only)",
    )?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("--hub must name an IP address and port, got {authority:?}"))?;
    if !addr.ip().is_loopback() {
        bail!("the abuse suite only attacks a hub on loopback, not {addr}");
    }
    Ok(addr)
}

/// The legitimate clients' address and the attackers'.
#[derive(Debug, Clone)]
pub struct Addresses {
    pub legit: Ipv4Addr,
    attackers: Vec<Ipv4Addr>,
}

impl Addresses {
    /// `count` attacker addresses from `127.0.0.2` upwards, skipping `legit`.
    pub fn new(legit: Ipv4Addr, count: usize) -> anyhow::Result<Addresses> {
        if !legit.is_loopback() {
            bail!("the legitimate clients' address must be on loopback, not {legit}");
        }
        let attackers: Vec<Ipv4Addr> = (2..=254u8)
            .map(|last| Ipv4Addr::new(127, 0, 0, last))
            .filter(|addr| *addr != legit)
            .take(count.max(1))
            .collect();
        Ok(Addresses { legit, attackers })
    }

    /// The attacker address for the `i`-th connection (round robin).
    pub fn attacker(&self, i: usize) -> IpAddr {
        IpAddr::V4(self.attackers[i % self.attackers.len()])
    }

    pub fn attacker_count(&self) -> usize {
        self.attackers.len()
    }

    pub fn legit_ip(&self) -> IpAddr {
        IpAddr::V4(self.legit)
    }

    /// `127.0.0.2–127.0.0.5`, for the report.
    pub fn attackers_label(&self) -> String {
        match (self.attackers.first(), self.attackers.last()) {
            (Some(first), Some(last)) if first != last => format!("{first}–{last}"),
            (Some(first), _) => first.to_string(),
            _ => String::new(),
        }
    }
}

/// A TCP connection to `hub` from `local` (any free port). `recv_buffer` shrinks the
/// socket's receive buffer, so that a client that stops reading leaves the bytes with
/// the hub rather than in this machine's kernel.
pub async fn tcp_from(
    local: IpAddr,
    hub: SocketAddr,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::new(local, 0))?;
    let stream = socket.connect(hub).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// How opening a WebSocket from `local` failed.
#[derive(Debug)]
pub enum OpenError {
    Connect(io::Error),
    Handshake(tungstenite::Error),
}

impl OpenError {
    /// A short label for the report (`connect: refused`, `HTTP 503`, …).
    pub fn kind(&self) -> String {
        match self {
            OpenError::Connect(err) => format!("connect: {}", io_kind(err)),
            OpenError::Handshake(err) => ws_error_kind(err),
        }
    }
}

/// A WebSocket to `url` (on `hub`) from `local`.
pub async fn ws_from(
    local: IpAddr,
    hub: SocketAddr,
    url: &str,
    recv_buffer: Option<u32>,
) -> Result<Stream, OpenError> {
    let tcp = tcp_from(local, hub, recv_buffer)
        .await
        .map_err(OpenError::Connect)?;
    connect_over(tcp, url).await.map_err(OpenError::Handshake)
}

/// A short name for an IO error.
pub fn io_kind(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "refused".into(),
        io::ErrorKind::ConnectionReset => "reset".into(),
        io::ErrorKind::ConnectionAborted => "aborted".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::UnexpectedEof => "closed (EOF)".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        io::ErrorKind::AddrNotAvailable => "no local port left".into(),
        kind => match err.raw_os_error() {
            Some(libc::EMFILE) | Some(libc::ENFILE) => "out of file descriptors".into(),
            _ => format!("{kind:?}").to_lowercase(),
        },
    }
}

/// A short name for a WebSocket error: an HTTP refusal by its status, IO by its kind.
pub fn ws_error_kind(err: &tungstenite::Error) -> String {
    match err {
        tungstenite::Error::Http(response) => format!("HTTP {}", response.status().as_u16()),
        tungstenite::Error::Io(err) => io_kind(err),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "closed".into(),
        tungstenite::Error::Protocol(err) => {
            let text = err.to_string();
            if text.contains("without closing handshake") {
                "closed without a Close frame".into()
            } else {
                format!("protocol error ({text})")
            }
        }
        tungstenite::Error::Capacity(_) => "frame too large for the harness".into(),
        other => other.to_string(),
    }
}

/// The kind of an error from [`crate::ws::Ws`] (an `anyhow` chain around tungstenite's).
pub fn anyhow_kind(err: &anyhow::Error) -> String {
    if let Some(err) = err.downcast_ref::<tungstenite::Error>() {
        return ws_error_kind(err);
    }
    if let Some(err) = err.downcast_ref::<io::Error>() {
        return io_kind(err);
    }
    "unreadable answer".into()
}

/// `HTTP 503` from the first bytes an HTTP server wrote, if they are a status line.
pub fn http_status(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(64))?).ok()?;
    let mut parts = text.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hubs() {
        assert_eq!(
            hub_addr("http://127.0.0.1:8080/").expect("loopback"),
            "127.0.0.1:8080".parse().expect("addr")
        );
        assert!(hub_addr("http://10.0.0.1:8080").is_err());
        assert!(hub_addr("https://127.0.0.1:8080").is_err());
        assert!(hub_addr("http://localhost:8080").is_err());
    }

    #[test]
    fn attackers_never_share_the_legitimate_address() {
        let addrs = Addresses::new(Ipv4Addr::new(127, 0, 0, 3), 3).expect("loopback");
        let used: Vec<IpAddr> = (0..6).map(|i| addrs.attacker(i)).collect();
        let expect = |last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        assert_eq!(
            used,
            [
                expect(2),
                expect(4),
                expect(5),
                expect(2),
                expect(4),
                expect(5)
            ]
        );
        assert_eq!(addrs.attackers_label(), "127.0.0.2–127.0.0.5");
        assert!(Addresses::new(Ipv4Addr::new(10, 0, 0, 1), 2).is_err());
    }

    #[test]
    fn reads_status_lines() {
        assert_eq!(
            http_status(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(http_status(b"HTTP/1.0 408 Request Timeout"), Some(408));
        assert_eq!(http_status(b"\x88\x02\x03\xe8"), None);
        assert_eq!(http_status(b""), None);
    }
}

//! Playing other clients from other loopback addresses (127.0.0.2, 127.0.0.3, …): raw
//! TCP, raw HTTP and WebSocket handshakes bound to a chosen source address, plus what
//! the abuse tests measure of the hub process (RSS, open descriptors, a metric).

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue},
    WebSocketStream,
};

use crate::common::{Hub, WAIT};

/// A TCP connection to `to` from source address `from` (e.g. "127.0.0.2"). With
/// `rcvbuf`, a small receive buffer: a client that does not read fills it fast.
pub async fn tcp_from(from: &str, to: SocketAddr, rcvbuf: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("tcp socket");
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    let source: SocketAddr = format!("{from}:0").parse().expect("source address");
    socket.bind(source).expect("bind a loopback source address");
    tokio::time::timeout(WAIT, socket.connect(to))
        .await
        .unwrap_or_else(|_| panic!("connect from {from} timed out"))
        .unwrap_or_else(|e| panic!("connect from {from}: {e}"))
}

/// Reads until EOF or `within`; returns what was read and whether EOF (or a reset) came.
pub async fn read_to_end_within(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// One HTTP/1.1 request (with `Connection: close`) from `from`; the status and the
/// whole response (head and body).
pub async fn http_from(
    from: &str,
    hub: &Hub,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    http_to(from, hub.addr(), path, headers).await
}

/// Like [`http_from`], to any address.
pub async fn http_to(
    from: &str,
    to: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut stream = tcp_from(from, to, None).await;
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {to}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let (response, ended) = read_to_end_within(&mut stream, WAIT).await;
    assert!(
        ended,
        "GET {path}: no end of response within {WAIT:?}: {response}"
    );
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: not an HTTP response: {response:?}"));
    (status, response)
}

pub type RawWs = WebSocketStream<TcpStream>;

/// A WebSocket handshake from `from` with extra request headers: the socket, or the
/// HTTP status the hub refused it with.
pub async fn ws_from(
    from: &str,
    hub: &Hub,
    path: &str,
    headers: &[(&str, &str)],
    rcvbuf: Option<u32>,
) -> Result<RawWs, u16> {
    let stream = tcp_from(from, hub.addr(), rcvbuf).await;
    let mut request = hub.ws_url(path).into_client_request().expect("ws request");
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName =
            name.parse().expect("header name");
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("header value"));
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream)).await {
        Err(_) => panic!("WebSocket handshake from {from} timed out"),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Ok(Err(e)) => panic!("WebSocket handshake from {from}: {e}"),
    }
}

/// The hub's resident memory, in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// CPU time the process has used (user + system), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; the
    // kernel counts them in 100ths of a second on every Linux we run on.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The hub's open file descriptors.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// The value of one sample of `/metrics` (`name{labels}` exactly as printed), 0 if absent.
pub async fn metric(hub: &Hub, series: &str) -> f64 {
    let (status, text) = hub.get("/metrics").await;
    assert_eq!(status, 200, "/metrics answered {status}");
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (without_node_label(name) == series)
                .then(|| value.parse().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

/// `name{node="n-1",reason="x"}` → `name{reason="x"}`, `name{node="n-1"}` → `name`: every
/// series of a hub carries its node id, which a test does not know in advance.
pub fn without_node_label(series: &str) -> String {
    let Some(start) = series.find("node=\"") else {
        return series.to_string();
    };
    let Some(len) = series[start + 6..].find('"') else {
        return series.to_string();
    };
    let end = start + 6 + len + 1;
    let (before, after) = (&series[..start], &series[end..]);
    let after = after.strip_prefix(',').unwrap_or(after);
    let joined = format!("{before}{after}");
    joined.replace("{}", "").replace(",}", "}")
}

//! Who the client is and where its page came from: the client address (the TCP peer,
//! or behind a trusted proxy the rightmost untrusted `X-Forwarded-For` entry) and the
//! `Origin` checks of the two WebSocket endpoints. Pure functions of the request head.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};

use crate::config::{AccessSettings, IpNet};

/// The client's address. Only a trusted proxy's `X-Forwarded-For` is believed; in it,
/// the rightmost entry that is not itself a trusted proxy is the client (entries further
/// left were written by the client and may be forged). Falls back to the peer.
pub fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            // Garbage before a trusted hop: nothing further left can be believed.
            return peer;
        };
        if !is_trusted(ip) {
            return ip;
        }
    }
    peer
}

/// An `X-Forwarded-For` entry: an address, or one with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

fn listed(list: &[String], origin: &str) -> bool {
    list.iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
}

/// The widget's socket: any origin when `allowed_origins` is empty, else only those
/// listed. A request without `Origin` is not from a browser page (browsers always send
/// it on WebSocket handshakes) and is let through: the check protects pages, not the
/// protocol.
pub fn widget_origin_ok(access: &AccessSettings, headers: &HeaderMap) -> bool {
    match origin(headers) {
        None => true,
        Some(_) if access.allowed_origins.is_empty() => true,
        Some(origin) => listed(&access.allowed_origins, origin),
    }
}

/// The console's socket: same origin as the hub (the `Origin`'s host and port equal
/// the `Host` header, or behind a trusted proxy `X-Forwarded-Host`), or listed in
/// `console_origins`. Without `Origin`: as for the widget.
pub fn console_origin_ok(
    access: &AccessSettings,
    headers: &HeaderMap,
    behind_trusted_proxy: bool,
) -> bool {
    let Some(origin) = origin(headers) else {
        return true;
    };
    if listed(&access.console_origins, origin) {
        return true;
    }
    let Some(origin_host) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let host_header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let forwarded = behind_trusted_proxy
        .then(|| host_header("x-forwarded-host"))
        .flatten();
    [forwarded, host_header("host")]
        .into_iter()
        .flatten()
        .any(|host| host.eq_ignore_ascii_case(origin_host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| IpNet::parse(n)).collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/8", "::1"]);
        let forged = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4")]);
        let stranger: SocketAddr = "127.0.0.2:4000".parse().expect("addr");
        assert_eq!(
            client_addr(stranger, &forged, &trusted),
            stranger.ip(),
            "an untrusted peer's header is ignored"
        );
        let proxy: SocketAddr = "10.0.0.5:4000".parse().expect("addr");
        assert_eq!(
            client_addr(proxy, &forged, &trusted),
            "1.2.3.4".parse::<IpAddr>().expect("ip"),
            "the rightmost entry, not the forged leftmost"
        );
        let chained = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.4, 10.9.9.9"),
        ]);
        assert_eq!(
            client_addr(proxy, &chained, &trusted),
            "1.2.3.4".parse::<IpAddr>().expect("ip"),
            "trusted hops are skipped, header lines joined"
        );
        let garbage = headers(&[("x-forwarded-for", "1.2.3.4, nonsense")]);
        assert_eq!(client_addr(proxy, &garbage, &trusted), proxy.ip());
        assert_eq!(client_addr(proxy, &HeaderMap::new(), &trusted), proxy.ip());
    }

    #[test]
    fn widget_origins() {
        let mut access = AccessSettings::default();
        let from = |o: &str| headers(&[("origin", o)]);
        assert!(widget_origin_ok(&access, &from("https://evil.example")));
        access.allowed_origins = vec!["https://shop.example".into()];
        assert!(widget_origin_ok(&access, &from("https://shop.example")));
        assert!(widget_origin_ok(&access, &from("HTTPS://SHOP.example")));
        assert!(!widget_origin_ok(&access, &from("https://evil.example")));
        assert!(!widget_origin_ok(&access, &from("null")));
        assert!(widget_origin_ok(&access, &HeaderMap::new()));
    }

    #[test]
    fn console_is_same_origin_by_default() {
        let mut access = AccessSettings::default();
        let req = |origin: &str| headers(&[("origin", origin), ("host", "hub.example:8080")]);
        assert!(console_origin_ok(
            &access,
            &req("http://hub.example:8080"),
            false
        ));
        assert!(console_origin_ok(
            &access,
            &req("https://hub.example:8080"),
            false
        ));
        assert!(!console_origin_ok(
            &access,
            &req("https://evil.example"),
            false
        ));
        assert!(!console_origin_ok(
            &access,
            &req("https://hub.example"),
            false
        ));
        access.console_origins = vec!["https://admin.example".into()];
        assert!(console_origin_ok(
            &access,
            &req("https://admin.example"),
            false
        ));
        let proxied = headers(&[
            ("origin", "https://chat.example"),
            ("host", "10.0.0.7:8080"),
            ("x-forwarded-host", "chat.example"),
        ]);
        assert!(console_origin_ok(&access, &proxied, true));
        assert!(!console_origin_ok(&access, &proxied, false));
    }
}

//! Clients from other loopback addresses (127.0.0.2, 127.0.0.3, …): each plays another
//! client machine, so per-address limits can be tested from one host. Linux routes the
//! whole 127.0.0.0/8 to the loopback interface.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;

use super::{merge, Hub, Ws, WAIT};

/// `127.0.0.n`.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

impl Ws {
    /// A WebSocket to `path` whose client socket is bound to `local`.
    pub async fn connect_from(hub: &Hub, path: &str, name: &str, local: IpAddr) -> Ws {
        let url = hub.ws_url(path);
        let connect = async {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(local, 0))?;
            let tcp = socket.connect(hub.addr()).await?;
            tokio_tungstenite::client_async(url.as_str(), MaybeTlsStream::Plain(tcp))
                .await
                .map_err(std::io::Error::other)
        };
        let (stream, _response) = match tokio::time::timeout(WAIT, connect).await {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) => panic!(
                "WebSocket connect to {url} from {local} failed: {e}\nhub output:\n{}",
                hub.log_tail(30)
            ),
            Err(_) => panic!("WebSocket connect to {url} from {local} timed out"),
        };
        Ws {
            name: format!("{name}@{local}"),
            stream,
            buffer: Default::default(),
            seen: Vec::new(),
            closed: None,
            next_req: 0,
            hub_log: hub.output(),
        }
    }
}

impl Hub {
    /// A customer connection from `local`, not yet past `hello`.
    pub async fn connect_customer_from(&self, local: IpAddr) -> Ws {
        Ws::connect_from(self, "/v1/customer/ws", "customer", local).await
    }

    /// A customer from `local` past `hello` (name "Ann" plus `extra`); it and the welcome.
    pub async fn customer_from(&self, local: IpAddr, extra: Value) -> (Ws, Value) {
        let mut ws = self.connect_customer_from(local).await;
        let mut opts = json!({"name": "Ann"});
        merge(&mut opts, extra);
        let welcome = ws.customer_hello(opts).await;
        (ws, welcome)
    }
}

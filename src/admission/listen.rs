//! The accept loop (in place of `axum::serve`, which has no header-read timeout): each
//! accepted connection takes a plain-HTTP place or is refused at once with a canned
//! 503; hyper serves it with `header_read_timeout` (half-sent or idle keep-alive
//! connections are closed) and with upgrades, so WebSockets leave the HTTP count when
//! they upgrade. Running out of descriptors backs off briefly instead of spinning.
//! Also raises the descriptor limit at start.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_service::Service;

use super::{Admission, LogEvery, Refusal};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(cause = %std::io::Error::last_os_error(), "cannot read the descriptor limit");
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        } else {
            tracing::warn!(cause = %std::io::Error::last_os_error(), "cannot raise the descriptor limit");
        }
    }
    limit.rlim_cur
}

/// What an over-cap client reads before the hub closes the connection (no request is
/// read: nothing of it is needed to refuse).
fn canned_503(reason: Refusal) -> String {
    let body = format!(
        "{{\"code\":\"unavailable\",\"message\":\"{}\"}}",
        reason.message()
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Is this accept error a shortage of descriptors or memory (back off) rather than one
/// connection's failure (carry on)?
fn is_resource_shortage(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Serves `app` on `listener` until `shutdown`; each connection runs on `tracker`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    gate: Arc<Admission>,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // A request head (and what is read ahead of it) may take 32 KiB, not hyper's
    // ~400 KB: an HTTP place then costs at most that much, whatever a client sends.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(32 * 1024);
    let builder = Arc::new(builder);
    let shortage_log = LogEvery::new(Duration::from_secs(10));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_resource_shortage(&err) => {
                gate.metrics
                    .admission_refused
                    .with_label_values(&[Refusal::AcceptError.label()])
                    .inc();
                if let Some(held_back) = shortage_log.ready() {
                    tracing::error!(cause = %err, held_back, "accept failed, backing off (one line per 10 s)");
                }
                // Back off (not a synchronization): the pending connections wait in the
                // kernel's backlog until descriptors come back.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            }
            Err(err) => {
                tracing::debug!(cause = %err, "accept failed");
                continue;
            }
        };
        let slot = match gate.admit_http(peer.ip()) {
            Ok(slot) => slot,
            Err(reason) => {
                gate.refused(reason, Some(peer.ip()));
                // Never waits: a client that does not read its refusal just loses it.
                let _unread = stream.try_write(canned_503(reason).as_bytes());
                continue;
            }
        };
        // Chat frames are small and latency-bound: never let Nagle hold them back.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(cause = %err, "cannot set TCP_NODELAY");
        }
        let (app, builder, gate, shutdown) = (
            app.clone(),
            Arc::clone(&builder),
            Arc::clone(&gate),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            let _slot = slot;
            serve_connection(stream, peer, app, &builder, &gate, shutdown).await;
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    builder: &hyper::server::conn::http1::Builder,
    gate: &Admission,
    shutdown: CancellationToken,
) {
    // The handlers read the peer as `ConnectInfo<SocketAddr>`, as under `axum::serve`.
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { app.call(request.map(axum::body::Body::new)).await }
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = served {
        if err.is_timeout() {
            gate.refused(Refusal::HeaderTimeout, Some(peer.ip()));
        } else {
            tracing::debug!(cause = %err, "http connection ended with an error");
        }
    }
}

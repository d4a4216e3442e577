//! The widget, the agent console and the demo page, embedded in the binary so one file
//! deploys, with their security headers: every response is `nosniff` with
//! `Referrer-Policy: no-referrer`; the console may not be framed and runs only its own
//! scripts and styles, talking only to the hub it came from; the demo page may not be
//! framed by other sites; `widget.js` (and `widget-locales.js`, its texts in other
//! languages) is embedded on customers' sites, so it gets no CSP of its own (the
//! embedding page's applies).

use std::sync::Arc;

use axum::{
    extract::Path,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};
use rust_embed::RustEmbed;

use crate::hub::Hub;

#[derive(RustEmbed)]
#[folder = "web-widget/"]
#[exclude = "node_modules/*"]
#[exclude = "*.test.*"]
struct Assets;

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            // Every embedded text file is UTF-8; saying so matters for widget-locales.js,
            // a classic script that would otherwise be decoded in the embedding page's
            // encoding (its French and Arabic texts garbled on a windows-1252 site).
            let mut mime = file.metadata.mimetype().to_string();
            if mime.starts_with("text/") && !mime.contains("charset") {
                mime.push_str("; charset=utf-8");
            }
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The WebSocket URLs of the hub the page was loaded from, for `connect-src` (older
/// browsers do not count `ws:` as `'self'`). `None` when the `Host` is not a plain
/// host[:port] (nothing of it may reach the policy).
fn own_sockets(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plain.then(|| format!(" ws://{host} wss://{host}"))
}

/// A page's Content-Security-Policy: scripts only from the hub, sockets only to it.
fn page_policy(headers: &HeaderMap, inline_styles: bool, framed_by_self: bool) -> String {
    let styles = if inline_styles {
        "'self' 'unsafe-inline'"
    } else {
        "'self'"
    };
    let ancestors = if framed_by_self { "'self'" } else { "'none'" };
    format!(
        "default-src 'none'; script-src 'self'; style-src {styles}; img-src 'self' data:; \
         connect-src 'self'{}; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}",
        own_sockets(headers).unwrap_or_default()
    )
}

fn with_policy(mut response: Response, policy: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The console: never framed (`X-Frame-Options` for browsers without CSP 2).
fn console_asset(path: &str, headers: &HeaderMap) -> Response {
    let mut response = with_policy(asset(path), page_policy(headers, false, false));
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Headers every response gets (pages, REST, health, metrics).
pub async fn common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/demo") }))
        .route("/widget.js", get(|| async { asset("widget.js") }))
        // The widget's texts in other languages, loaded by widget.js when needed.
        .route(
            "/widget-locales.js",
            get(|| async { asset("widget-locales.js") }),
        )
        .route(
            "/demo",
            // The demo shop has inline styles, and the widget styles itself inline.
            get(|headers: HeaderMap| async move {
                with_policy(asset("demo.html"), page_policy(&headers, true, true))
            }),
        )
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|headers: HeaderMap| async move { console_asset("console/index.html", &headers) }),
        )
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move {
                console_asset(&format!("console/{path}"), &headers)
            }),
        )
}

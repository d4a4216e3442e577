//! The widget, the agent console and the demo page, embedded in the binary so one file
//! deploys.

use std::sync::Arc;

use axum::{
    extract::Path,
    http::{header, StatusCode},
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
            let mime = file.metadata.mimetype().to_string();
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

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/demo") }))
        .route("/widget.js", get(|| async { asset("widget.js") }))
        .route("/demo", get(|| async { asset("demo.html") }))
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(|| async { asset("console/index.html") }))
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>| async move { asset(&format!("console/{path}")) }),
        )
}

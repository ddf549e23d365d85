//! The viewer page (`web/`: plain HTML, JS and CSS), embedded at build time, and the routes that
//! serve it under `/frontend/`. The agent serves it next to its signaling; the streaming frontend
//! serves the same page next to its signaling relay. `relay.rs`: the WebSocket relay both use.

pub mod relay;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

pub const INDEX_HTML: &str = include_str!("../web/index.html");
pub const VIEWER_JS: &str = include_str!("../web/viewer.js");
pub const VIEWER_CSS: &str = include_str!("../web/viewer.css");

/// Only this origin's scripts, styles, sockets and frames; no plugins; framed only by this
/// origin (the frontend's start page frames the viewer).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
    img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// A static page or asset with the headers every one of ours carries.
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `/frontend/` (and `/frontend`, `/frontend/index.html`), `/frontend/viewer.js`, `/frontend/viewer.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/frontend",
            get(|| async { Redirect::permanent("/frontend/") }),
        )
        .route(
            "/frontend/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/frontend/index.html",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/frontend/viewer.js",
            get(|| async { asset("text/javascript; charset=utf-8", VIEWER_JS) }),
        )
        .route(
            "/frontend/viewer.css",
            get(|| async { asset("text/css; charset=utf-8", VIEWER_CSS) }),
        )
}

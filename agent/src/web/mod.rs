//! The HTTP port: the viewer page (`/frontend/`), signaling (`/signaling`), health, readiness
//! and metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::signaling::{self, Hub};

/// The viewer page, embedded at build time (source in `agent/web/`).
const INDEX_HTML: &str = include_str!("../../web/index.html");
const VIEWER_JS: &str = include_str!("../../web/viewer.js");
const VIEWER_CSS: &str = include_str!("../../web/viewer.css");

/// Only this origin's scripts, styles and sockets; no frames, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
    img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

#[derive(Clone)]
pub struct WebState {
    pub metrics: Metrics,
    /// True while the agent accepts commands; false before start-up finished and while stopping.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: WebState, hub: Arc<Hub>, api: crate::api::ApiState) -> Router {
    let page = Router::new()
        .route("/", get(|| async { Redirect::permanent("/frontend/") }))
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
        );
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(page)
        .merge(
            Router::new()
                .route("/signaling", get(signaling::socket::upgrade))
                .with_state(hub),
        )
        .merge(
            Router::new()
                .route("/api/{id}", get(crate::api::socket::by_path))
                .with_state(api),
        )
}

/// The dedicated signaling port: every path upgrades (the original clients use `/`).
pub fn signaling_router(hub: Arc<Hub>) -> Router {
    Router::new()
        .fallback(signaling::socket::upgrade)
        .with_state(hub)
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
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
}

async fn readyz(State(state): State<WebState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<WebState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

//! The HTTP port: the viewer page (`/frontend/`), signaling (`/signaling`), health, readiness
//! and metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::signaling::{self, Hub};

#[derive(Clone)]
pub struct WebState {
    pub metrics: Metrics,
    /// True while the agent accepts commands; false before start-up finished and while stopping.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: WebState, hub: Arc<Hub>, api: crate::api::ApiState) -> Router {
    // The viewer page itself lives in the openspace-viewer crate (shared with the frontend).
    let page = Router::new()
        .route("/", get(|| async { Redirect::permanent("/frontend/") }))
        .merge(openspace_viewer::routes());
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
